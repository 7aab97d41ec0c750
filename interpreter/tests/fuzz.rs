//! Random packets never make the interpreter panic, and every packet gives exactly one
//! observation.

use maestro_analyzer::parse_and_check;
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter};
use maestro_runtime::packet::ParseMode;
use proptest::prelude::*;

const FW: &str = include_str!("../../docs/examples/fw.nf");

/// Every state kind, driven by packet bytes (including out-of-range indexes).
const SINK: &str = r#"
nf sink "Exercises every state kind with indexes taken from the packet";
device a = 0;
device b = 1;
device c = 2;
config cap: u32 = 8;
record K { ip: ip4, port: u16, m: mac }
state t: table<K, u32>(capacity: cap, ttl: 50ns);
state backends: table<ip4>(capacity: 4, ttl: 100ns);
state ring: cht(height: 7, backends: backends);
state m: map<u16, i64>(capacity: 4);
state v: vector<K>(capacity: cap);
state d: dchain(capacity: 4, ttl: 30ns);
state s: sketch<K>(width: 16, ttl: 40ns, threshold: 2);
state p: sets<u16>(sets: 4, per_set: 2);
process {
    t.expire();
    backends.expire();
    d.expire();
    s.expire();
    let raw = pkt.len as u32;
    let e = pkt.eth.type;
    if e % 3 == 0 { backends.add(pkt.eth.src as u64 as u32 as ip4); }
    parse ipv4 else {
        if let x = d.allocate() { d.refresh(x + raw); d.free(raw % 5); }
        if let bi = ring.find(raw as u64) { forward(bi as device); }
        flood;
    }
    let mut idx: u32 = pkt.ip.id as u32 % 10;
    let k = K { ip: pkt.ip.src, port: pkt.ip.len, m: pkt.eth.dst };
    v.set(idx, k);
    let old = v.get(idx + 1);
    if let i = t.add(k, raw) {
        t.set_value(i + idx, raw);
        idx = t.value(i);
    }
    if t.has_index(idx) { t.refresh(idx); let kk = t.key(idx); s.touch(kk); }
    s.touch(old);
    if s.over(k) { drop; }
    let small: i64 = pkt.ip.ttl as i64 - 100;
    m.put(e, small / (pkt.ip.tos as i64) % -3);
    if let z = m.get(e) { if z < -1 { drop; } }
    p.insert(idx % 6, e);
    if p.count(idx) > 1 { p.clear(idx); }
    let shifted = (raw << idx) >> (e as u32) | mul_div(raw, idx, e as u32);
    let h = hash(k, shifted, now, in, small, pkt.ip.frag, pkt.ip.ihl) % 4;
    parse l4 else { forward(h as device); }
    pkt.l4.sport = pkt.l4.dport ^ 0xFFFF;
    pkt.ip.dst = pkt.ip.src & 255.255.0.0;
    forward((sat_sub(h, 1) + min(e, 2) as u32) as device);
}
"#;

fn interp(src: &str, mode: ParseMode) -> Interpreter {
    let prog = parse_and_check("t.nf", src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    Interpreter::new(
        &prog,
        InterpOptions {
            parse_mode: mode,
            ..InterpOptions::default()
        },
    )
    .unwrap()
}

/// Random frames, half of them shaped like IPv4 so that deep paths run.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        (
            prop::collection::vec(any::<u8>(), 12..=12),
            0x40u8..0x50,
            prop::collection::vec(any::<u8>(), 8..=8),
            prop::sample::select(vec![6u8, 17, 1]),
            prop::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(eth, vihl, mid, proto, rest)| {
                let mut f = eth;
                f.extend_from_slice(&[0x08, 0x00, vihl, 0]);
                let total = (20 + rest.len().saturating_sub(10)) as u16;
                f.extend_from_slice(&total.to_be_bytes());
                f.extend_from_slice(&mid[..5]);
                f.push(proto);
                f.extend_from_slice(&rest);
                f
            }),
    ]
}

fn packets() -> impl Strategy<Value = Vec<InputPacket>> {
    prop::collection::vec((0u16..4, 0u64..20, frame()), 1..12).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(port, dt, data)| {
                t += dt;
                InputPacket {
                    port,
                    time_ns: t,
                    data,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn fw_handles_any_bytes(pkts in packets()) {
        let mut nf = interp(FW, ParseMode::Strict);
        let obs = nf.run(&pkts);
        prop_assert_eq!(obs.len(), pkts.len());
        prop_assert_eq!(nf.fault_count(), 0);
    }

    #[test]
    fn every_state_kind_handles_any_bytes(
        pkts in packets(),
        compat in any::<bool>(),
        times in prop::collection::vec(0u64..200, 12),
        scramble in any::<bool>(),
    ) {
        let mode = if compat { ParseMode::MaestroCompat } else { ParseMode::Strict };
        let mut nf = interp(SINK, mode);
        let mut pkts = pkts;
        if scramble {
            // Time going backwards breaks the dchain contract but must not panic.
            for (p, t) in pkts.iter_mut().zip(times) {
                p.time_ns = t;
            }
        }
        for p in &pkts {
            let (obs, _faults) = nf.process_with_report(p);
            if let Some(b) = obs.bytes() {
                prop_assert_eq!(b.len(), p.data.len());
            }
        }
    }
}
