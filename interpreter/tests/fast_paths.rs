//! The interpreter's specialised paths mean what the general ones do: keys decoded into
//! a local's record, packed and unpacked table keys, scalar table values kept as bits,
//! and conditions evaluated without boolean values. Each program's expected outputs are
//! worked out by hand from the language's rules.

use etherparse::PacketBuilder;
use maestro_analyzer::parse_and_check;
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter, Observation};

fn interp(name: &str, src: &str) -> Interpreter {
    let prog = parse_and_check(name, src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    Interpreter::new(&prog, InterpOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// A UDP frame from `src` to `dst` MAC with these ports and TTL, arriving on port 0.
fn packet(src: [u8; 6], dst: [u8; 6], sport: u16, dport: u16, ttl: u8) -> InputPacket {
    let mut data = Vec::new();
    PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 7], [198, 51, 100, 9], ttl)
        .udp(sport, dport)
        .write(&mut data, b"x")
        .expect("frame");
    InputPacket {
        port: 0,
        time_ns: 1,
        data,
    }
}

fn udp(sport: u16, dport: u16, ttl: u8) -> InputPacket {
    packet([0xaa; 6], [0xbb; 6], sport, dport, ttl)
}

/// (sport, dport) of a forwarded frame.
fn ports(o: &Observation) -> (u16, u16) {
    let b = o.bytes().expect("forwarded");
    (
        u16::from_be_bytes([b[34], b[35]]),
        u16::from_be_bytes([b[36], b[37]]),
    )
}

const KEYS: &str = r#"
nf keys "Reads table keys into a record local, shared or not, in range or not";
device lan = 0;
device wan = 1;
record K { a: u16, b: u16 }
state t: table<K>(capacity: 4, ttl: 1s);
state keep: vector<K>(capacity: 1);
process {
    parse l4 else { drop; }
    t.add(K { a: pkt.l4.sport, b: pkt.l4.dport });
    // The key the previous packet kept.
    let old = keep.get(0);
    let mut k = t.key(0);
    keep.set(0, k);
    // `k` is now shared with the vector: this read must leave the kept key alone.
    k = t.key(pkt.ip.ttl as u32);
    pkt.l4.sport = old.a + k.a;
    pkt.l4.dport = old.b + k.b;
    forward(wan);
}
"#;

#[test]
fn keys_read_into_locals_leave_shared_records_alone() {
    let mut nf = interp("keys.nf", KEYS);
    // Index 0 = (10, 20); nothing kept yet; index 1 was never used: the zero key.
    assert_eq!(ports(&nf.process(&udp(10, 20, 1))), (0, 0));
    // Index 1 = (30, 40); kept (10, 20).
    assert_eq!(ports(&nf.process(&udp(30, 40, 1))), (40, 60));
    // Index 2 = (50, 60); index 9 is out of range: a fault, and the zero key.
    assert_eq!(nf.fault_count(), 0);
    assert_eq!(ports(&nf.process(&udp(50, 60, 9))), (10, 20));
    assert_eq!(nf.fault_count(), 1);
    let fault = nf.last_fault().expect("a fault");
    assert!(
        fault.message.contains("`t.key` with index 9, outside 0..4"),
        "{fault}"
    );
    // Index 3 = (1, 2), read through index 3; the zero key handed out by the fault is
    // still zero afterwards.
    assert_eq!(ports(&nf.process(&udp(1, 2, 3))), (11, 22));
    assert_eq!(ports(&nf.process(&udp(7, 7, 9))), (10, 20));
    assert_eq!(ports(&nf.process(&udp(7, 7, 2))), (60, 80));
}

const VALUES: &str = r#"
nf values "Keys too wide to pack, and scalar table values of several types";
device lan = 0;
device wan = 1;
record Wide { x: mac, y: mac, z: mac }
state peers: table<Wide, mac>(capacity: 4, ttl: 1s);
state seen: map<Wide, u16>(capacity: 4);
state credit: table<u16, i64>(capacity: 4, ttl: 1s);
state flag: table<u16, bool>(capacity: 4, ttl: 1s);
process {
    parse l4 else { drop; }
    let w = Wide { x: pkt.eth.src, y: pkt.eth.src, z: pkt.eth.src };
    // The first frame from a MAC records its destination; later ones are sent there.
    if let i = peers.get(w) {
        pkt.eth.dst = peers.value(i);
    } else {
        peers.add(w, pkt.eth.dst);
    }
    let mut n: u16 = 1;
    if let c = seen.get(w) {
        n = c + 1;
        seen.erase(w);
    }
    seen.put(w, n);
    // A negative balance per destination port; port 8 raises the flag at index 0 (the
    // flag table's first entry), the others are never written and read false.
    if let j = credit.add(pkt.l4.dport, pkt.l4.sport as i64 - 1000) {
        if pkt.l4.dport == 8 {
            flag.add(pkt.l4.dport, true);
        }
    }
    let mut out: u16 = 0;
    if let j = credit.get(pkt.l4.dport) {
        if credit.value(j) < -500 && !flag.value(j) {
            out = (0 - credit.value(j)) as u16;
        }
    }
    pkt.l4.sport = n;
    pkt.l4.dport = out;
    forward(wan);
}
"#;

#[test]
fn wide_keys_and_scalar_values_round_trip() {
    let mut nf = interp("values.nf", VALUES);
    let (a, b, c) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);
    let dst = |o: &Observation| -> [u8; 6] {
        let b = o.bytes().expect("forwarded");
        b[..6].try_into().expect("six bytes")
    };
    // a -> b: a's first frame; port 7 (credit index 0) gets 100 - 1000 = -900, and
    // flag 0 was never written: out = 900.
    let o = nf.process(&packet(a, b, 100, 7, 64));
    assert_eq!((dst(&o), ports(&o)), (b, (1, 900)));
    // a -> c: sent to a's recorded b instead; port 8 (index 1) gets 600 - 1000 = -400,
    // not below -500, and raises flag 0.
    let o = nf.process(&packet(a, c, 600, 8, 64));
    assert_eq!((dst(&o), ports(&o)), (b, (2, 0)));
    // b -> a: b's first frame; port 9 (index 2) gets -1000, flag 2 was never written.
    let o = nf.process(&packet(b, a, 0, 9, 64));
    assert_eq!((dst(&o), ports(&o)), (a, (1, 1000)));
    // a -> c again: to b, a's third frame; port 7 keeps -900 (the add is refused) but
    // flag 0 is up now.
    let o = nf.process(&packet(a, c, 5, 7, 64));
    assert_eq!((dst(&o), ports(&o)), (b, (3, 0)));
    // c -> a: c's first frame; port 9 still -1000.
    let o = nf.process(&packet(c, a, 5, 9, 64));
    assert_eq!((dst(&o), ports(&o)), (a, (1, 1000)));
    assert_eq!(nf.fault_count(), 0);
}

const CONDS: &str = r#"
nf conds "Conditions of every shape";
device lan = 0;
device wan = 1;
config limit: u16 = 100;
process {
    parse l4 else { drop; }
    let s = pkt.l4.sport;
    let d = pkt.l4.dport;
    let big = s > limit;
    let mut bits: u16 = 0;
    if s == d { bits = bits | 1; }
    if s != limit { bits = bits | 2; }
    if big && d < limit { bits = bits | 4; }
    if !big || s == 7 { bits = bits | 8; }
    if !(s < d) && !(d == 0) { bits = bits | 16; }
    if (s & 1) == 1 || big && !(d > 5) { bits = bits | 32; }
    if in == lan { bits = bits | 64; }
    if big { bits = bits | 128; }
    pkt.l4.sport = bits;
    forward(wan);
}
"#;

#[test]
fn conditions_mean_what_their_operators_say() {
    let mut nf = interp("conds.nf", CONDS);
    for (s, d) in [
        (0u16, 0u16),
        (7, 7),
        (100, 3),
        (101, 3),
        (101, 200),
        (250, 5),
        (3, 9),
        (9, 3),
        (100, 100),
    ] {
        let big = s > 100;
        let mut want = 0u16;
        want |= (s == d) as u16;
        want |= ((s != 100) as u16) << 1;
        want |= ((big && d < 100) as u16) << 2;
        want |= ((!big || s == 7) as u16) << 3;
        want |= ((s >= d && d != 0) as u16) << 4;
        want |= ((s & 1 == 1 || big && d <= 5) as u16) << 5;
        want |= 1 << 6;
        want |= (big as u16) << 7;
        assert_eq!(ports(&nf.process(&udp(s, d, 64))).0, want, "s {s} d {d}");
    }
}
