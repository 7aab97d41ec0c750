//! Path tracing: what the interpreter records for the path-coverage checker.

use crate::{InputPacket, InterpOptions, Interpreter, Observation};
use maestro_analyzer::{parse_and_check, Decision, NfProgram};

const FW: &str = include_str!("../../docs/examples/fw.nf");

fn fw() -> (NfProgram, Interpreter) {
    let prog = parse_and_check("fw.nf", FW, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let interp = Interpreter::new(&prog, InterpOptions::default()).unwrap();
    (prog, interp)
}

/// A UDP frame 10.0.0.1:5000 -> 192.0.2.80:80, or the reply when `reply`.
fn udp(port: u16, time_ns: u64, reply: bool) -> InputPacket {
    let (src, dst, sport, dport) = if reply {
        ([192, 0, 2, 80], [10, 0, 0, 1], 80, 5000)
    } else {
        ([10, 0, 0, 1], [192, 0, 2, 80], 5000, 80)
    };
    let b = etherparse::PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut data = Vec::new();
    b.write(&mut data, &[0u8; 8]).unwrap();
    InputPacket {
        port,
        time_ns,
        data,
    }
}

/// Byte offset of the statement that starts with `text` on 1-based `line`.
fn at(prog: &NfProgram, line: u32, text: &str) -> u32 {
    let src = &prog.source.text;
    let start: usize = src
        .split_inclusive('\n')
        .take(line as usize - 1)
        .map(str::len)
        .sum();
    let col = src[start..].find(text).unwrap();
    (start + col) as u32
}

fn line_of(src: &str, text: &str) -> u32 {
    src.lines().position(|l| l.contains(text)).unwrap() as u32 + 1
}

#[test]
fn tracing_is_off_by_default_and_changes_no_observation() {
    let (_, mut plain) = fw();
    let (_, mut traced) = fw();
    assert!(!plain.path_tracing());
    assert!(plain.last_path().is_none());
    traced.set_path_tracing(true);
    for (i, p) in [udp(0, 1, false), udp(1, 2, true), udp(1, 3, false)]
        .iter()
        .enumerate()
    {
        assert_eq!(plain.process(p), traced.process(p), "packet {i}");
        assert!(plain.last_path().is_none());
        assert_eq!(traced.last_path().unwrap().port, p.port);
    }
}

#[test]
fn a_wan_hit_records_every_decision_and_its_action() {
    let (prog, mut nf) = fw();
    let src = FW;
    let (obs, lan) = nf.process_traced(&udp(0, 1, false));
    assert!(matches!(obs, Observation::Forward { port: 1, .. }));
    let (obs, wan) = nf.process_traced(&udp(1, 2, true));
    assert!(matches!(obs, Observation::Forward { port: 0, .. }));
    assert!(
        !nf.path_tracing(),
        "process_traced leaves tracing as it was"
    );

    let parse = at(&prog, line_of(src, "parse l4 else"), "parse l4");
    let if_wan = at(&prog, line_of(src, "if in == wan"), "if in == wan");
    let reply_get = at(&prog, line_of(src, "if let i = flows.get(key)"), "if let");
    let lan_get = {
        // The second `if let i = flows.get(key)` (the LAN side).
        let l = src
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("if let i = flows.get(key)"))
            .nth(1)
            .unwrap()
            .0 as u32
            + 1;
        at(&prog, l, "if let")
    };
    let d = |at, taken| Decision { at, taken };
    assert_eq!(
        lan.decisions,
        vec![d(parse, true), d(if_wan, false), d(lan_get, false)]
    );
    assert_eq!(
        lan.action,
        at(&prog, line_of(src, "forward(wan);"), "forward")
    );
    assert_eq!(
        wan.decisions,
        vec![d(parse, true), d(if_wan, true), d(reply_get, true)]
    );
    assert_eq!(wan.port, 1);
    assert_eq!(
        wan.action,
        at(&prog, line_of(src, "forward(out);"), "forward")
    );
}

#[test]
fn a_packet_that_fails_to_parse_records_the_failure() {
    let (prog, mut nf) = fw();
    nf.set_path_tracing(true);
    let mut arp = udp(0, 1, false);
    arp.data[12] = 0x08;
    arp.data[13] = 0x06;
    assert_eq!(nf.process(&arp), Observation::Drop);
    let t = nf.last_path().unwrap().clone();
    let parse = at(&prog, line_of(FW, "parse l4 else"), "parse l4");
    assert_eq!(
        t.decisions,
        vec![Decision {
            at: parse,
            taken: false
        }]
    );
    // The drop inside the parse-failure block.
    let drop_at = parse as usize + FW[parse as usize..].find("drop").unwrap();
    assert_eq!(t.action, drop_at as u32);
    // Turning tracing off stops recording.
    nf.set_path_tracing(false);
    nf.process(&udp(0, 2, false));
    assert!(nf.last_path().is_none());
}
