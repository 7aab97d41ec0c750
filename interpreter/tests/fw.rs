//! The firewall of `docs/nf-language.md`, run packet by packet.

use etherparse::PacketBuilder;
use maestro_analyzer::parse_and_check;
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter, Observation};

/// The example of `docs/nf-language.md`.
const FW: &str = include_str!("../../docs/examples/fw.nf");

const LAN: u16 = 0;
const WAN: u16 = 1;
const HOST: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [192, 0, 2, 80];

fn fw(overrides: &[(&str, &str)]) -> Interpreter {
    let o: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let prog = parse_and_check("fw.nf", FW, &o, None).unwrap_or_else(|e| panic!("{e}"));
    Interpreter::new(&prog, InterpOptions::default()).unwrap()
}

fn udp(port: u16, time_ns: u64, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> InputPacket {
    let b = PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let payload = [1u8, 2, 3, 4];
    let mut data = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut data, &payload).unwrap();
    InputPacket {
        port,
        time_ns,
        data,
    }
}

fn outbound(t: u64, sport: u16) -> InputPacket {
    udp(LAN, t, HOST, SERVER, sport, 80)
}

fn reply(t: u64, dport: u16) -> InputPacket {
    udp(WAN, t, SERVER, HOST, 80, dport)
}

fn forwarded_port(o: &Observation) -> Option<u16> {
    match o {
        Observation::Forward { port, .. } => Some(*port),
        _ => None,
    }
}

#[test]
fn wan_before_lan_is_dropped() {
    let mut nf = fw(&[]);
    assert_eq!(nf.process(&reply(1, 5000)), Observation::Drop);
}

#[test]
fn lan_then_reply_is_forwarded_with_macs_rewritten() {
    let mut nf = fw(&[]);
    let out = nf.process(&outbound(1, 5000));
    let Observation::Forward { port, bytes } = &out else {
        panic!("expected a forward, got {out:?}")
    };
    assert_eq!(*port, WAN);
    assert_eq!(&bytes[0..6], &[0x01, 0x23, 0x45, 0x67, 0x89, 0x01]); // wan_peer
    assert_eq!(&bytes[6..12], &[0x02, 0, 0, 0, 0, 0x01]); // wan_mac
                                                          // Only the MACs change.
    assert_eq!(&bytes[12..], &outbound(1, 5000).data[12..]);

    let back = nf.process(&reply(2, 5000));
    let Observation::Forward { port, bytes } = &back else {
        panic!("expected a forward, got {back:?}")
    };
    assert_eq!(*port, LAN);
    assert_eq!(&bytes[0..6], &[0x01, 0x23, 0x45, 0x67, 0x89, 0x00]); // lan_peer
    assert_eq!(&bytes[6..12], &[0x02, 0, 0, 0, 0, 0x00]); // lan_mac
                                                          // Another port pair is not a reply.
    assert_eq!(nf.process(&reply(3, 5001)), Observation::Drop);
}

#[test]
fn expiry_is_strict_at_the_ttl_boundary() {
    let ttl = 1_000u64;
    let t = 5_000u64;
    let set = [("expiration_time", "1000")];

    let mut nf = fw(&set);
    assert_eq!(forwarded_port(&nf.process(&outbound(t, 7))), Some(WAN));
    assert_eq!(forwarded_port(&nf.process(&reply(t + ttl, 7))), Some(LAN));

    let mut nf = fw(&set);
    assert_eq!(forwarded_port(&nf.process(&outbound(t, 7))), Some(WAN));
    assert_eq!(nf.process(&reply(t + ttl + 1, 7)), Observation::Drop);
}

#[test]
fn full_table_still_forwards_but_replies_are_dropped() {
    let mut nf = fw(&[("max_flows", "1")]);
    assert_eq!(forwarded_port(&nf.process(&outbound(1, 100))), Some(WAN));
    // The table is full: the second flow is forwarded but not recorded.
    assert_eq!(forwarded_port(&nf.process(&outbound(2, 200))), Some(WAN));
    assert_eq!(nf.process(&reply(3, 200)), Observation::Drop);
    assert_eq!(forwarded_port(&nf.process(&reply(4, 100))), Some(LAN));
    assert_eq!(nf.fault_count(), 0);
}

#[test]
fn non_ip_and_short_frames_are_dropped() {
    let mut nf = fw(&[]);
    let frames: Vec<Vec<u8>> = vec![vec![], vec![0; 5], vec![0xff; 14], vec![0; 60]];
    for data in frames {
        let p = InputPacket {
            port: LAN,
            time_ns: 1,
            data,
        };
        assert_eq!(nf.process(&p), Observation::Drop);
    }
}

#[test]
fn run_gives_one_observation_per_packet() {
    let mut nf = fw(&[]);
    let packets = vec![outbound(1, 1), reply(2, 1), reply(3, 2)];
    let obs = nf.run(&packets);
    assert_eq!(obs.len(), 3);
    assert_eq!(forwarded_port(&obs[0]), Some(WAN));
    assert_eq!(forwarded_port(&obs[1]), Some(LAN));
    assert_eq!(obs[2], Observation::Drop);
}
