//! Record locals are reassigned in place when nothing else holds them (an allocation
//! saved per packet); a record stored in state, or read by the new value itself, must
//! keep its old contents.

use etherparse::PacketBuilder;
use maestro_analyzer::parse_and_check;
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter, Observation};

const SRC: &str = r#"
nf records "Stores the previous packet's ports and swaps a record through itself";

device lan = 0;
device wan = 1;

record Pair { a: u16, b: u16 }

state last: vector<Pair>(capacity: 1);

process {
    parse l4 else { drop; }
    // What the previous packet stored (the zero pair at first).
    let prev = last.get(0);
    let mut p = Pair { a: pkt.l4.sport, b: pkt.l4.dport };
    last.set(0, p);
    // Reads p while assigning p: every field is evaluated first.
    p = Pair { a: p.b, b: p.a };
    // And again, now that the vector holds the first record: p's record is shared no
    // more (the swap made a new one), so this one is reused, while the stored one keeps
    // this packet's ports.
    p = Pair { a: p.a + 1, b: p.b + 1 };
    pkt.l4.sport = prev.a + p.a;
    pkt.l4.dport = prev.b + p.b;
    forward(wan);
}
"#;

fn packet(sport: u16, dport: u16) -> InputPacket {
    let mut data = Vec::new();
    PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6])
        .ipv4([10, 0, 0, 7], [198, 51, 100, 9], 64)
        .udp(sport, dport)
        .write(&mut data, b"x")
        .unwrap();
    InputPacket {
        port: 0,
        time_ns: 1,
        data,
    }
}

fn ports(o: &Observation) -> (u16, u16) {
    let b = o.bytes().expect("forwarded");
    (
        u16::from_be_bytes([b[34], b[35]]),
        u16::from_be_bytes([b[36], b[37]]),
    )
}

#[test]
fn stored_and_self_referencing_records_keep_their_values() {
    let prog = parse_and_check("records.nf", SRC, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let mut interp = Interpreter::new(&prog, InterpOptions::default()).unwrap();
    // Packet 1: prev = (0, 0); p swapped = (20, 10), then (21, 11).
    assert_eq!(ports(&interp.process(&packet(10, 20))), (21, 11));
    // Packet 2: prev = (10, 20) as stored by packet 1 (not what p became after);
    // p = (400, 300) -> (401, 301).
    assert_eq!(ports(&interp.process(&packet(300, 400))), (411, 321));
    // Packet 3: prev = (300, 400).
    assert_eq!(ports(&interp.process(&packet(1, 2))), (303, 402));
}
