//! Header rewrites with checksum updates, faults, and the `hash` built-in.

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use maestro_analyzer::parse_and_check;
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter, Observation};
use maestro_runtime::hash::crc32c_step;

const NAT: &str = r#"
nf mini_nat "Rewrites the source of outbound flows; WAN replies are dropped";

device lan = 0;
device wan = 1;

config external_ip: ip4 = 192.0.2.1;
config first_port: u16 = 1000;

record Flow { sport: u16, dport: u16, src: ip4, dst: ip4, proto: u8 }

state flows: table<Flow>(capacity: 16, ttl: 10s);

process {
    flows.expire();
    parse l4 else { drop; }
    if in == wan { drop; }
    let f = Flow { sport: pkt.l4.sport, dport: pkt.l4.dport, src: pkt.ip.src,
                   dst: pkt.ip.dst, proto: pkt.ip.proto };
    let mut index: u32 = 0;
    if let i = flows.get(f) {
        flows.refresh(i);
        index = i;
    } else if let i = flows.add(f) {
        index = i;
    } else {
        drop;
    }
    pkt.ip.src = external_ip;
    pkt.l4.sport = first_port + index as u16;
    pkt.ip.ttl = pkt.ip.ttl - 1;
    forward(wan);
}
"#;

fn interp(src: &str) -> Interpreter {
    let prog = parse_and_check("t.nf", src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    Interpreter::new(&prog, InterpOptions::default()).unwrap()
}

fn packet(port: u16, t: u64, tcp: bool, sport: u16) -> InputPacket {
    let b =
        PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6]).ipv4([10, 0, 0, 7], [198, 51, 100, 9], 64);
    let payload = b"hello, checksums";
    let mut data = Vec::new();
    if tcp {
        let b = b.tcp(sport, 443, 12345, 1024);
        b.write(&mut data, payload).unwrap();
    } else {
        let b = b.udp(sport, 53);
        b.write(&mut data, payload).unwrap();
    }
    InputPacket {
        port,
        time_ns: t,
        data,
    }
}

/// Parses a frame and checks both checksums; returns (src ip, sport, ttl).
fn verify(bytes: &[u8]) -> ([u8; 4], u16, u8) {
    let h = PacketHeaders::from_ethernet_slice(bytes).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        panic!("no IPv4 header")
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 checksum"
    );
    let payload = h.payload.slice();
    let sport = match &h.transport {
        Some(TransportHeader::Udp(u)) => {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(ip, payload).unwrap(),
                "UDP checksum"
            );
            u.source_port
        }
        Some(TransportHeader::Tcp(t)) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(ip, payload).unwrap(),
                "TCP checksum"
            );
            t.source_port
        }
        other => panic!("unexpected transport {other:?}"),
    };
    (ip.source, sport, ip.time_to_live)
}

#[test]
fn nat_rewrite_keeps_checksums_valid() {
    let mut nf = interp(NAT);
    for (n, tcp) in [(0u16, false), (1, true), (2, false)] {
        let p = packet(0, 10 + n as u64, tcp, 4000 + n);
        let before = verify(&p.data);
        assert_eq!(before, ([10, 0, 0, 7], 4000 + n, 64));
        let out = nf.process(&p);
        let Observation::Forward { port, bytes } = &out else {
            panic!("expected a forward, got {out:?}")
        };
        assert_eq!(*port, 1);
        assert_eq!(verify(bytes), ([192, 0, 2, 1], 1000 + n, 63));
    }
    // The same flow again keeps its index.
    let out = nf.process(&packet(0, 20, true, 4001));
    assert_eq!(verify(out.bytes().unwrap()).1, 1001);
    assert_eq!(nf.process(&packet(1, 21, true, 4001)), Observation::Drop);
}

#[test]
fn faults_are_recorded_and_the_packet_goes_on() {
    let src = r#"
nf faulty "Out-of-range accesses";
device a = 0;
device b = 1;
state v: vector<u32>(capacity: 4);
process {
    v.set(7, 5);
    let x = v.get(9);
    if x == 0 {
        forward(3 as device);
    }
    drop;
}
"#;
    let mut nf = interp(src);
    let p = InputPacket {
        port: 0,
        time_ns: 1,
        data: vec![0; 60],
    };
    let (obs, faults) = nf.process_with_report(&p);
    assert_eq!(obs, Observation::Drop);
    assert_eq!(faults.len(), 3, "{faults:?}");
    assert!(faults[0].location.starts_with("t.nf:7:5"), "{}", faults[0]);
    assert!(faults[0].message.contains("v.set"), "{}", faults[0]);
    assert!(faults[1].location.starts_with("t.nf:8:13"), "{}", faults[1]);
    assert!(faults[2].message.contains("port 3"), "{}", faults[2]);
    assert_eq!(nf.fault_count(), 3);
    nf.process(&p);
    assert_eq!(nf.fault_count(), 6);
}

#[test]
fn forward_to_input_port_is_a_drop() {
    let src = r#"
nf echo "Sends everything back";
device a = 0;
device b = 1;
process { forward(in); }
"#;
    let mut nf = interp(src);
    let p = InputPacket {
        port: 1,
        time_ns: 1,
        data: vec![1, 2, 3],
    };
    assert_eq!(nf.process(&p), Observation::Drop);
    assert_eq!(nf.fault_count(), 0);
}

#[test]
fn hash_reads_wire_bytes_little_endian() {
    let p = packet(0, 1, false, 4000);
    // src 10.0.0.7, sport 4000: the C struct hash sees the wire bytes as a
    // little-endian u32 / u16.
    let mut acc = crc32c_step(0, u32::from_le_bytes([10, 0, 0, 7]));
    acc = crc32c_step(acc, u16::from_le_bytes(4000u16.to_be_bytes()) as u32);
    for b in [0xbbu8; 6] {
        acc = crc32c_step(acc, b as u32);
    }
    let src = format!(
        r#"
nf h "hash check";
device a = 0;
device b = 1;
record K {{ ip: ip4, port: u16 }}
process {{
    parse l4 else {{ drop; }}
    if hash(K {{ ip: pkt.ip.src, port: pkt.l4.sport }}, pkt.eth.dst) == {acc} {{
        forward(b);
    }}
    drop;
}}
"#
    );
    let mut nf = interp(&src);
    assert!(matches!(
        nf.process(&p),
        Observation::Forward { port: 1, .. }
    ));
}

#[test]
fn reads_see_earlier_writes() {
    let src = r#"
nf w "write then read";
device a = 0;
device b = 1;
process {
    parse ipv4 else { drop; }
    pkt.ip.ttl = 7;
    if pkt.ip.ttl == 7 { forward(b); }
    drop;
}
"#;
    let mut nf = interp(src);
    let out = nf.process(&packet(0, 1, false, 1));
    let Observation::Forward { bytes, .. } = out else {
        panic!("expected a forward")
    };
    assert_eq!(verify(&bytes).2, 7);
}

#[test]
fn state_allocation_errors_name_the_object_and_parameter() {
    let src = r#"
nf big "too big";
device a = 0;
state d: dchain(capacity: 2_000_000, ttl: 1s);
process { drop; }
"#;
    let prog = parse_and_check("t.nf", src, &[], None).unwrap();
    let err = match Interpreter::new(&prog, InterpOptions::default()) {
        Ok(_) => panic!("a 2M dchain was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("cannot allocate state `d` (a dchain): parameter `capacity`: "),
        "{err}"
    );
}

#[test]
fn interpreter_and_program_can_move_between_threads() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<Interpreter>();
    sync::<maestro_analyzer::NfProgram>();
}

#[test]
fn last_fault_is_the_most_recent() {
    let src = r#"
nf f "faults";
device a = 0;
device b = 1;
state v: vector<u8>(capacity: 2);
process {
    let x = v.get(pkt.len as u32);
    forward(b);
}
"#;
    let mut nf = interp(src);
    assert!(nf.last_fault().is_none());
    for len in [5usize, 1, 9] {
        nf.process(&InputPacket {
            port: 0,
            time_ns: 1,
            data: vec![0; len],
        });
    }
    assert_eq!(nf.fault_count(), 2);
    let last = nf.last_fault().unwrap().to_string();
    assert!(last.contains("index 9"), "{last}");
    assert!(last.starts_with("t.nf:7:13: NF fault: "), "{last}");
}
