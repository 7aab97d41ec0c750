//! `process_into` (caller buffer) and `process` (owned frame) agree on every packet:
//! same action, same frame, same faults, over the library NFs and a faulting program.

use std::path::PathBuf;

use maestro_analyzer::{load_nf, parse_and_check, NfProgram};
use maestro_interpreter::{Action, InputPacket, InterpOptions, Interpreter, Observation};
use maestro_runtime::packet::ParseMode;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};

/// What the runs of one test covered, so the test can insist it saw every case.
#[derive(Default, Debug)]
struct Seen {
    drop: usize,
    forward: usize,
    flood: usize,
    /// Sent frames that differ from their input.
    rewritten: usize,
    /// Sent frames rewritten beyond the MACs (IPv4/L4 writes, checksum updates).
    headers_rewritten: usize,
    faults: u64,
}

/// A trace with repeated flows, replies from WAN, and every 7th frame cut short (down
/// to a bare or partial Ethernet header), so short-frame rules run too.
fn trace(seed: u64, packets: u64) -> Vec<InputPacket> {
    let base = TraceConfig::default();
    let config = TraceConfig {
        packets,
        seed,
        reply_ratio: 0.5,
        flows: FlowSpec {
            count: 64,
            ..base.flows.clone()
        },
        ..base
    };
    let mut trace: Vec<InputPacket> = TraceGen::new(config).expect("trace config").collect();
    for (i, p) in trace.iter_mut().enumerate() {
        if i % 7 == 3 {
            p.data.truncate(i % 40);
        }
    }
    trace
}

/// Runs `packets` through two interpreters of `program`, one with `process` and one with
/// `process_into` on a single reused buffer, and checks they agree after every packet.
fn compare(program: &NfProgram, mode: ParseMode, packets: &[InputPacket], seen: &mut Seen) {
    let options = InterpOptions {
        parse_mode: mode,
        ..InterpOptions::default()
    };
    let mut owned = Interpreter::new(program, options).expect("state allocation");
    let mut into = Interpreter::new(program, options).expect("state allocation");
    // Stale content the first call must clear.
    let mut frame = vec![0xee; 1600];
    for (i, p) in packets.iter().enumerate() {
        let expected = owned.process(p);
        let action = into.process_into(p, &mut frame);
        let name = &program.name;
        match (&expected, action) {
            (Observation::Drop, Action::Drop) => {
                assert!(frame.is_empty(), "{name} packet {i}: drop left a frame");
                seen.drop += 1;
            }
            (Observation::Forward { port, bytes }, Action::Forward(q)) => {
                assert_eq!(*port, q, "{name} packet {i}: port");
                assert_eq!(bytes, &frame, "{name} packet {i}: forwarded frame");
                seen.forward += 1;
            }
            (Observation::Flood { bytes }, Action::Flood) => {
                assert_eq!(bytes, &frame, "{name} packet {i}: flooded frame");
                seen.flood += 1;
            }
            (o, a) => panic!("{name} packet {i}: process gave {o:?}, process_into {a:?}"),
        }
        assert_eq!(
            action.into_observation(frame.clone()),
            expected,
            "{name} packet {i}: into_observation"
        );
        if let Some(b) = expected.bytes() {
            seen.rewritten += usize::from(b != &p.data[..]);
            seen.headers_rewritten += usize::from(b.get(12..) != p.data.get(12..));
        }
        assert_eq!(owned.fault_count(), into.fault_count(), "{name} packet {i}");
        assert_eq!(owned.last_fault(), into.last_fault(), "{name} packet {i}");
    }
    assert_eq!(owned.faults(), into.faults(), "{}", program.name);
    seen.faults += into.fault_count();
}

#[test]
fn library_nfs_agree_on_every_packet() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nfs");
    let mut seen = Seen::default();
    let mut nfs = 0;
    for name in [
        "bridge", "cl", "fw", "lb", "nat", "nop", "pol", "psd", "sbridge",
    ] {
        let program = load_nf(&root.join(name), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (seed, mode) in [(1, ParseMode::Strict), (2, ParseMode::MaestroCompat)] {
            compare(&program, mode, &trace(seed, 1500), &mut seen);
        }
        nfs += 1;
    }
    assert_eq!(nfs, 9);
    assert!(seen.drop > 0, "{seen:?}");
    assert!(seen.forward > 0, "{seen:?}");
    assert!(seen.flood > 0, "{seen:?}");
    assert!(seen.rewritten > 0, "{seen:?}");
    assert!(seen.headers_rewritten > 0, "{seen:?}");
}

/// Every action, MAC-only and header rewrites, out-of-range forwards (faults), and sends
/// of frames too short for the headers they write.
const MIXED: &str = r#"
nf mixed "Picks its action and rewrites from the packet";
device a = 0;
device b = 1;
process {
    pkt.eth.src = 02:00:00:00:00:01;
    let k = pkt.len % 6;
    if k == 0 { drop; }
    if k == 1 { flood; }
    parse ipv4 else { forward(k as device); }
    if k == 2 { pkt.ip.ttl = pkt.ip.ttl - 1; }
    parse l4 else { forward((k % 3) as device); }
    if k == 3 { pkt.l4.dport = 4242; pkt.ip.dst = 10.1.2.3; }
    forward((k % 2) as device);
}
"#;

#[test]
fn actions_rewrites_and_faults_agree() {
    let program = parse_and_check("mixed.nf", MIXED, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let mut packets = trace(3, 2000);
    // Frame lengths of every residue, so each branch runs on whole and on cut frames.
    for (i, p) in packets.iter_mut().enumerate() {
        if i % 5 == 1 {
            p.data.push(i as u8);
        }
        if i % 11 == 2 {
            p.data.extend_from_slice(&[0, 1, 2]);
        }
    }
    let mut seen = Seen::default();
    for mode in [ParseMode::Strict, ParseMode::MaestroCompat] {
        compare(&program, mode, &packets, &mut seen);
    }
    assert!(seen.drop > 0, "{seen:?}");
    assert!(seen.forward > 0, "{seen:?}");
    assert!(seen.flood > 0, "{seen:?}");
    assert!(seen.rewritten > 0, "{seen:?}");
    assert!(seen.headers_rewritten > 0, "{seen:?}");
    assert!(seen.faults > 0, "{seen:?}");
}

#[test]
fn a_dropped_packet_leaves_the_buffer_empty_and_a_sent_one_fills_it() {
    let program = parse_and_check("mixed.nf", MIXED, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let mut nf = Interpreter::new(&program, InterpOptions::default()).expect("state allocation");
    let mut frame = vec![7u8; 3];
    // 60 bytes: k == 0, dropped before any send.
    let drop = InputPacket {
        port: 0,
        time_ns: 1,
        data: vec![0x11; 60],
    };
    assert_eq!(nf.process_into(&drop, &mut frame), Action::Drop);
    assert!(frame.is_empty());
    // 61 bytes: k == 1, flooded with the source MAC rewritten and the rest as it came.
    let flood = InputPacket {
        port: 0,
        time_ns: 2,
        data: vec![0x22; 61],
    };
    assert_eq!(nf.process_into(&flood, &mut frame), Action::Flood);
    assert_eq!(frame.len(), 61);
    assert_eq!(&frame[6..12], &[2, 0, 0, 0, 0, 1]);
    assert_eq!(&frame[..6], &[0x22; 6]);
    assert_eq!(&frame[12..], &[0x22; 49]);
}
