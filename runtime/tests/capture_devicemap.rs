//! `--device-map`: parsing, display, and the port each rule gives.

use etherparse::PacketBuilder;
use maestro_runtime::capture::{CaptureRecord, DeviceMap, PortAssigner, DEVICE_MAP_HELP};
use proptest::prelude::*;

const LAN: u16 = 0;
const WAN: u16 = 1;

fn rec(data: Vec<u8>, interface: Option<u32>) -> CaptureRecord {
    CaptureRecord {
        index: 0,
        interface,
        time_ns: 0,
        orig_len: data.len() as u32,
        data,
    }
}

fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut v = vec![];
    b.write(&mut v, b"x").unwrap();
    v
}

fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1000);
    let mut v = vec![];
    b.write(&mut v, b"").unwrap();
    v
}

fn vlan_tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .single_vlan(10.try_into().unwrap())
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1000);
    let mut v = vec![];
    b.write(&mut v, b"").unwrap();
    v
}

fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv6(src, dst, 64)
        .udp(sport, dport);
    let mut v = vec![];
    b.write(&mut v, b"q").unwrap();
    v
}

fn icmp4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .icmpv4_echo_request(1, 1);
    let mut v = vec![];
    b.write(&mut v, b"ping").unwrap();
    v
}

fn arp(src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let mut v = dst_mac.to_vec();
    v.extend_from_slice(&src_mac);
    v.extend_from_slice(&[0x08, 0x06]);
    v.extend_from_slice(&[0; 28]);
    v
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [93, 184, 216, 34];

#[test]
fn parse_and_display_round_trip() {
    let cases = [
        ("auto", DeviceMap::Auto),
        ("interface", DeviceMap::Interface),
        ("flow", DeviceMap::Flow),
        ("port:0", DeviceMap::Port(0)),
        ("port:65535", DeviceMap::Port(65535)),
        (
            "subnet:10.0.0.0/8",
            DeviceMap::Subnet {
                net: 0x0a00_0000,
                prefix: 8,
            },
        ),
        (
            "subnet:192.168.1.7/32",
            DeviceMap::Subnet {
                net: 0xc0a8_0107,
                prefix: 32,
            },
        ),
        ("subnet:0.0.0.0/0", DeviceMap::Subnet { net: 0, prefix: 0 }),
    ];
    for (text, map) in cases {
        assert_eq!(text.parse::<DeviceMap>().unwrap(), map, "{text}");
        assert_eq!(map.to_string(), text);
    }
    assert_eq!(DeviceMap::default(), DeviceMap::Auto);
    for bad in [
        "",
        "Flow",
        "port:",
        "port:65536",
        "port:-1",
        "subnet:10.0.0.0",
        "subnet:10.0.0/8",
        "subnet:10.0.0.0/33",
        "lan",
    ] {
        let e = bad.parse::<DeviceMap>().unwrap_err();
        assert!(e.to_string().contains("subnet:A.B.C.D/P"), "{bad}: {e}");
    }
    for form in ["auto", "interface", "flow", "port:N", "subnet:A.B.C.D/P"] {
        assert!(DEVICE_MAP_HELP.contains(form), "{form}");
    }
}

#[test]
fn flow_opener_is_lan_and_replies_are_wan() {
    let mut p = PortAssigner::new(DeviceMap::Flow, LAN, WAN);
    // A opens a TCP connection to B:80.
    assert_eq!(p.assign(&rec(tcp4(A, 40000, B, 80), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(tcp4(B, 80, A, 40000), None)), Ok(WAN));
    assert_eq!(p.assign(&rec(tcp4(A, 40000, B, 80), None)), Ok(LAN));
    // B opens its own connection to A: B is the LAN side of that conversation.
    assert_eq!(p.assign(&rec(tcp4(B, 5000, A, 22), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(tcp4(A, 22, B, 5000), None)), Ok(WAN));
    // Same ports over UDP: another conversation.
    assert_eq!(p.assign(&rec(udp4(B, 80, A, 40000), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(udp4(A, 40000, B, 80), None)), Ok(WAN));
}

#[test]
fn flow_looks_through_vlan_tags_and_handles_ipv6() {
    let mut p = PortAssigner::new(DeviceMap::Flow, 5, 6);
    assert_eq!(p.assign(&rec(vlan_tcp4(A, 1, B, 2), None)), Ok(5));
    // The untagged reply belongs to the same conversation.
    assert_eq!(p.assign(&rec(tcp4(B, 2, A, 1), None)), Ok(6));
    let x = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let y = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    assert_eq!(p.assign(&rec(udp6(y, x, 53, 3333), None)), Ok(5));
    assert_eq!(p.assign(&rec(udp6(x, y, 3333, 53), None)), Ok(6));
}

#[test]
fn flow_uses_address_pairs_for_other_ip_and_mac_pairs_otherwise() {
    let mut p = PortAssigner::new(DeviceMap::Flow, LAN, WAN);
    assert_eq!(p.assign(&rec(icmp4(B, A), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(icmp4(A, B), None)), Ok(WAN));
    // A fragment without ports: address pair.
    let mut frag = udp4(A, 1, B, 2);
    frag[20..22].copy_from_slice(&0x2001u16.to_be_bytes()); // MF, offset 8
    assert_eq!(
        p.assign(&rec(frag, None)),
        Ok(WAN),
        "A->B, opened by B with ICMP"
    );
    let m1 = [0x02, 0, 0, 0, 0, 1];
    let m2 = [0x02, 0, 0, 0, 0, 2];
    assert_eq!(p.assign(&rec(arp(m1, m2), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(arp(m2, m1), None)), Ok(WAN));
    // Runts still get a port.
    assert_eq!(p.assign(&rec(vec![1, 2, 3], None)), Ok(LAN));
    assert_eq!(p.assign(&rec(vec![], None)), Ok(LAN));
}

#[test]
fn subnet_rule() {
    let mut p = PortAssigner::new("subnet:10.0.0.0/8".parse().unwrap(), LAN, WAN);
    assert_eq!(p.assign(&rec(udp4(A, 1, B, 2), None)), Ok(LAN));
    assert_eq!(p.assign(&rec(udp4(B, 2, A, 1), None)), Ok(WAN));
    assert_eq!(p.assign(&rec(vlan_tcp4(B, 2, A, 1), None)), Ok(WAN));
    assert_eq!(
        p.assign(&rec(udp6([1; 16], [2; 16], 1, 2), None)),
        Ok(LAN),
        "non-IPv4"
    );
    assert_eq!(p.assign(&rec(arp([1; 6], [2; 6]), None)), Ok(LAN));
    let mut host = PortAssigner::new("subnet:93.184.216.34/32".parse().unwrap(), LAN, WAN);
    assert_eq!(host.assign(&rec(udp4(B, 2, A, 1), None)), Ok(LAN));
    assert_eq!(host.assign(&rec(udp4(A, 2, B, 1), None)), Ok(WAN));
    let mut all = PortAssigner::new("subnet:0.0.0.0/0".parse().unwrap(), LAN, WAN);
    assert_eq!(all.assign(&rec(udp4(B, 2, A, 1), None)), Ok(LAN));
    // Host bits of the subnet are ignored.
    let mut sloppy = PortAssigner::new("subnet:10.9.9.9/8".parse().unwrap(), LAN, WAN);
    assert_eq!(sloppy.assign(&rec(udp4(A, 1, B, 2), None)), Ok(LAN));
}

#[test]
fn interface_port_and_auto_rules() {
    let pkt = udp4(A, 1, B, 2);
    let mut i = PortAssigner::new(DeviceMap::Interface, LAN, WAN);
    assert_eq!(i.assign(&rec(pkt.clone(), Some(3))), Ok(3));
    let e = i.assign(&rec(pkt.clone(), None)).unwrap_err();
    assert!(e.contains("--device-map"), "{e}");
    assert!(i.assign(&rec(pkt.clone(), Some(70_000))).is_err());
    let mut fixed = PortAssigner::new(DeviceMap::Port(9), LAN, WAN);
    assert_eq!(fixed.assign(&rec(pkt.clone(), Some(3))), Ok(9));
    let mut auto = PortAssigner::new(DeviceMap::Auto, LAN, WAN);
    assert_eq!(auto.assign(&rec(pkt.clone(), Some(2))), Ok(2));
    assert_eq!(
        auto.assign(&rec(udp4(B, 2, A, 1), None)),
        Ok(LAN),
        "flow: first seen"
    );
    assert_eq!(auto.assign(&rec(pkt, None)), Ok(WAN));
    assert_eq!(auto.map(), DeviceMap::Auto);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn assignment_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..100),
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), Just(0x88a8), any::<u16>()],
        interface in proptest::option::of(any::<u32>()),
        prefix in 0u8..=32,
    ) {
        let mut data = data;
        if data.len() >= 14 {
            data[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        let r = rec(data, interface);
        for map in [DeviceMap::Auto, DeviceMap::Interface, DeviceMap::Flow, DeviceMap::Port(1), DeviceMap::Subnet { net: 0x0a00_0000, prefix }] {
            let mut p = PortAssigner::new(map, LAN, WAN);
            let _ = p.assign(&r);
            let _ = p.assign(&r);
        }
        // Out-of-range prefixes built directly (not parsed) must not panic either.
        let _ = PortAssigner::new(DeviceMap::Subnet { net: 1, prefix: 200 }, LAN, WAN).assign(&r);
    }
}
