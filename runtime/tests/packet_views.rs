//! Packet views: the acceptance rules of nf-semantics.md §1.4 in both modes, field
//! getters and setters, and checksum recomputation cross-checked against etherparse.

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, NetHeaders, PacketBuilder, PacketHeaders, PayloadSlice,
    TransportHeader,
};
use maestro_runtime::packet::{
    ipv4_header_checksum, l4_checksum_ipv4, layout, Layout, PacketMut, PacketView, ParseMode,
};

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4([10, 0, 0, 1], [192, 168, 1, 2], 64)
        .udp(1234, 80);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4([172, 16, 0, 9], [8, 8, 4, 4], 17)
        .tcp(40000, 443, 0x1234_5678, 1024)
        .syn()
        .options_raw(&[2, 4, 5, 0xb4])
        .unwrap();
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

/// A UDP frame whose IPv4 header carries `options` (IHL > 5), built by etherparse.
fn udp_frame_with_options(options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, [10, 1, 1, 1], [10, 2, 2, 2]).unwrap();
    ip.options = options.try_into().unwrap();
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ip(IpHeaders::Ipv4(ip, Default::default()))
        .udp(5353, 53);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

fn ip_csum(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[24], f[25]])
}

fn both() -> [ParseMode; 2] {
    [ParseMode::Strict, ParseMode::MaestroCompat]
}

/// The checksums etherparse computes for a frame: (IPv4 header, TCP/UDP).
fn etherparse_checksums(frame: &[u8]) -> (u16, u16) {
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        panic!("not ipv4")
    };
    let l4 = match (&h.transport, &h.payload) {
        (Some(TransportHeader::Udp(u)), PayloadSlice::Udp(p)) => {
            u.calc_checksum_ipv4(ip, p).unwrap()
        }
        (Some(TransportHeader::Tcp(t)), PayloadSlice::Tcp(p)) => {
            // etherparse does not map a TCP checksum of 0 to 0xFFFF; DPDK does.
            match t.calc_checksum_ipv4(ip, p).unwrap() {
                0 => 0xffff,
                c => c,
            }
        }
        other => panic!("no tcp/udp: {other:?}"),
    };
    (ip.calc_header_checksum(), l4)
}

fn stored_l4_checksum(frame: &[u8]) -> u16 {
    let off = match frame[23] {
        6 => 34 + 16,
        17 => 34 + 6,
        _ => panic!(),
    };
    u16::from_be_bytes([frame[off], frame[off + 1]])
}

#[test]
fn default_mode_is_strict() {
    assert_eq!(ParseMode::default(), ParseMode::Strict);
    assert_eq!(
        "maestro-compat".parse::<ParseMode>().unwrap(),
        ParseMode::MaestroCompat
    );
    assert_eq!(ParseMode::MaestroCompat.to_string(), "maestro-compat");
    assert!("vigor".parse::<ParseMode>().is_err());
}

#[test]
fn plain_udp_parses_in_both_modes() {
    let f = udp_frame(b"hello");
    for mode in both() {
        let v = PacketView::new(&f, mode);
        assert_eq!(
            *v.layout(),
            Layout {
                ipv4: Some(14),
                l4: Some(34),
                ip_total_len_ok: true
            }
        );
        assert_eq!(v.len(), f.len());
        assert_eq!(v.eth_src(), SRC_MAC);
        assert_eq!(v.eth_dst(), DST_MAC);
        assert_eq!(v.eth_type(), 0x0800);
        let ip = v.ipv4().unwrap();
        assert_eq!(ip.src(), [10, 0, 0, 1]);
        assert_eq!(ip.src_u32(), 0x0a00_0001);
        assert_eq!(ip.dst_u32(), 0xc0a8_0102);
        assert_eq!(ip.proto(), 17);
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.tos(), 0);
        assert_eq!(ip.ihl(), 5);
        assert_eq!(ip.version(), 4);
        assert_eq!(usize::from(ip.total_len()), f.len() - 14);
        assert_eq!(ip.frag(), 0x4000, "etherparse sets DF");
        assert_eq!(ip.checksum(), ip_csum(&f));
        assert_eq!(v.l4_ports(), Some((1234, 80)));
    }
    // The stored checksum verifies.
    assert_eq!(ipv4_header_checksum(&f[14..34]), ip_csum(&f));
}

#[test]
fn ip_options_move_l4_in_strict_mode_only() {
    let f = udp_frame_with_options(&[1, 1, 1, 0], b"xyz"); // NOP NOP NOP EOL
    assert_eq!(f[14] & 0x0f, 6);
    let strict = layout(&f, ParseMode::Strict);
    assert_eq!(strict.l4, Some(38));
    assert_eq!(
        PacketView::new(&f, ParseMode::Strict).l4_ports(),
        Some((5353, 53))
    );
    let compat = layout(&f, ParseMode::MaestroCompat);
    assert_eq!(compat.ipv4, Some(14));
    assert_eq!(compat.l4, Some(34), "Maestro ignores IHL");
    // In compat mode the "ports" are the option bytes.
    assert_eq!(
        PacketView::new(&f, ParseMode::MaestroCompat).l4_ports(),
        Some((0x0101, 0x0100))
    );
}

#[test]
fn ihl_below_five_is_refused_by_strict_only() {
    let mut f = udp_frame(b"abcd");
    f[14] = 0x44;
    assert_eq!(layout(&f, ParseMode::Strict), Layout::default());
    let c = layout(&f, ParseMode::MaestroCompat);
    assert_eq!((c.ipv4, c.l4), (Some(14), Some(34)));
}

#[test]
fn total_length_check_is_strict_only() {
    let mut f = udp_frame(b"abcd");
    let too_long = (f.len() - 14 + 1) as u16;
    f[16..18].copy_from_slice(&too_long.to_be_bytes());
    assert_eq!(layout(&f, ParseMode::Strict), Layout::default());
    let c = layout(&f, ParseMode::MaestroCompat);
    assert_eq!(c.ipv4, Some(14));
    assert_eq!(c.l4, Some(34));
    assert!(!c.ip_total_len_ok);
    // Exactly the bytes after Ethernet is fine; shorter too (Ethernet padding).
    let exact = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&exact.to_be_bytes());
    assert!(layout(&f, ParseMode::Strict).ip_total_len_ok);
    f[16..18].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(layout(&f, ParseMode::Strict).l4, Some(34));
}

#[test]
fn version_nibble_is_never_checked() {
    let mut f = udp_frame(b"abcd");
    f[14] = 0x65; // "IPv6" with IHL 5
    for mode in both() {
        let l = layout(&f, mode);
        assert_eq!((l.ipv4, l.l4), (Some(14), Some(34)), "{mode}");
        assert_eq!(PacketView::new(&f, mode).ipv4().unwrap().version(), 6);
    }
}

#[test]
fn ethertype_and_minimum_lengths() {
    let f = udp_frame(b"");
    // 14 + 20 bytes is enough for IPv4 (with total_length fitting).
    let mut short = f[..34].to_vec();
    short[16..18].copy_from_slice(&20u16.to_be_bytes());
    for mode in both() {
        let l = layout(&short, mode);
        assert_eq!(l.ipv4, Some(14));
        assert_eq!(l.l4, None, "no L4 bytes");
        assert_eq!(layout(&short[..33], mode), Layout::default());
    }
    // L4 needs 4 bytes.
    let mut l4_3 = f[..37].to_vec();
    l4_3[16..18].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(layout(&l4_3, ParseMode::Strict).l4, None);
    let mut l4_4 = f[..38].to_vec();
    l4_4[16..18].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(layout(&l4_4, ParseMode::Strict).l4, Some(34));
    // A VLAN tag hides IPv4 from the NFs.
    let mut vlan = f.clone();
    vlan[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    assert_eq!(layout(&vlan, ParseMode::Strict), Layout::default());
    // Other protocols: IPv4 but no L4.
    let mut icmp = f.clone();
    icmp[23] = 1;
    let l = layout(&icmp, ParseMode::Strict);
    assert_eq!((l.ipv4, l.l4), (Some(14), None));
}

#[test]
fn non_first_fragment_ports_are_payload_bytes() {
    let mut f = udp_frame(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    f[20..22].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8 bytes, no MF
    let v = PacketView::new(&f, ParseMode::Strict);
    assert_eq!(v.ipv4().unwrap().frag(), 1);
    assert_eq!(
        v.l4_ports(),
        Some((1234, 80)),
        "no fragment handling: read as is"
    );
}

#[test]
fn short_frames_read_missing_ethernet_bytes_as_zero() {
    let f = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
    let v = PacketView::new(&f, ParseMode::Strict);
    assert_eq!(v.eth_dst(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(v.eth_src(), [7, 8, 9, 0, 0, 0]);
    assert_eq!(v.eth_type(), 0);
    assert_eq!(v.len(), 9);
    assert!(v.ipv4().is_none() && v.l4_ports().is_none());
    let e = PacketView::new(&[], ParseMode::MaestroCompat);
    assert!(e.is_empty());
    assert_eq!((e.eth_dst(), e.eth_type()), ([0; 6], 0));
    // Writes are ignored on short frames.
    let mut g = f;
    let mut m = PacketMut::new(&mut g, ParseMode::Strict);
    m.set_eth_dst([0xff; 6]);
    m.set_eth_src([0xff; 6]);
    assert!(!m.set_ip_src(1) && !m.set_ip_ttl(1) && !m.set_l4_sport(1));
    m.finish();
    assert_eq!(g, f);
}

#[test]
fn mac_writes_change_no_checksum() {
    let orig = udp_frame(b"payload");
    let mut f = orig.clone();
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    m.set_eth_src([9; 6]);
    m.set_eth_dst([8; 6]);
    assert_eq!(m.view().eth_src(), [9; 6]);
    m.finish();
    assert_eq!(&f[..6], &[8; 6]);
    assert_eq!(&f[6..12], &[9; 6]);
    assert_eq!(&f[12..], &orig[12..]);
}

#[test]
fn address_and_port_rewrites_match_etherparse_udp() {
    for payload in [&b""[..], b"a", b"odd!!", b"an even payload.", &[0xff; 301]] {
        let mut f = udp_frame(payload);
        let mut m = PacketMut::new(&mut f, ParseMode::Strict);
        assert!(m.set_ip_src(0xc633_6401));
        assert!(m.set_ip_dst(0x0a0a_0a0a));
        assert!(m.set_l4_sport(61000));
        assert!(m.set_l4_dport(8080));
        m.finish();
        let v = PacketView::new(&f, ParseMode::Strict);
        assert_eq!(v.ipv4().unwrap().src(), [198, 51, 100, 1]);
        assert_eq!(v.l4_ports(), Some((61000, 8080)));
        let (ip, l4) = etherparse_checksums(&f);
        assert_eq!(ip_csum(&f), ip);
        assert_eq!(stored_l4_checksum(&f), l4);
        assert_eq!(l4_checksum_ipv4(&f, v.layout()), Some(l4));
    }
}

#[test]
fn address_and_port_rewrites_match_etherparse_tcp() {
    for payload in [&b""[..], b"GET / HTTP/1.1\r\n\r\n", b"x"] {
        let mut f = tcp_frame(payload);
        let mut m = PacketMut::new(&mut f, ParseMode::MaestroCompat);
        assert!(m.set_ip_dst(0x0102_0304));
        assert!(m.set_l4_dport(22));
        assert!(m.set_ip_tos(0x10));
        m.finish();
        let (ip, l4) = etherparse_checksums(&f);
        assert_eq!(ip_csum(&f), ip);
        assert_eq!(stored_l4_checksum(&f), l4);
        assert_eq!(f[15], 0x10);
    }
}

#[test]
fn ttl_only_recomputes_the_ip_checksum() {
    let orig = tcp_frame(b"data");
    let mut f = orig.clone();
    // Spoil the L4 checksum: a TTL write must not repair it.
    f[50] ^= 0xff;
    let spoiled_l4 = stored_l4_checksum(&f);
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    assert!(m.set_ip_ttl(1));
    m.finish();
    assert_eq!(f[22], 1);
    assert_eq!(ip_csum(&f), etherparse_checksums(&f).0);
    assert_eq!(stored_l4_checksum(&f), spoiled_l4);
}

#[test]
fn port_only_recomputes_the_l4_checksum() {
    let mut f = udp_frame(b"data");
    f[24] ^= 0x55; // a wrong IP checksum stays wrong: no IPv4 field was written
    let bad_ip = ip_csum(&f);
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    assert!(m.set_l4_sport(7));
    m.finish();
    assert_eq!(ip_csum(&f), bad_ip);
    assert_eq!(stored_l4_checksum(&f), etherparse_checksums(&f).1);
}

#[test]
fn udp_checksum_zero_is_not_preserved() {
    let mut f = udp_frame(b"no checksum");
    f[40..42].copy_from_slice(&[0, 0]);
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    assert!(m.set_ip_src(0x0b00_0001));
    m.finish();
    let c = stored_l4_checksum(&f);
    assert_ne!(c, 0);
    assert_eq!(c, etherparse_checksums(&f).1);
}

/// Fills the last two payload bytes so that the L4 checksum computes to 0.
fn force_zero_l4_checksum(f: &mut [u8]) {
    let n = f.len();
    f[n - 2..].copy_from_slice(&[0, 0]);
    let l = layout(f, ParseMode::Strict);
    let c = l4_checksum_ipv4(f, &l).unwrap();
    // Adding the word !sum to the sum makes it 0xFFFF, whose complement is 0.
    f[n - 2..].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn computed_zero_becomes_ffff_for_udp_and_tcp() {
    for mut f in [udp_frame(&[7; 10]), tcp_frame(&[7; 10])] {
        force_zero_l4_checksum(&mut f);
        let l = layout(&f, ParseMode::Strict);
        assert_eq!(l4_checksum_ipv4(&f, &l), Some(0xffff));
        let mut m = PacketMut::new(&mut f, ParseMode::Strict);
        assert!(m.set_l4_sport(m.view().l4_ports().unwrap().0));
        m.finish();
        assert_eq!(stored_l4_checksum(&f), 0xffff);
    }
}

#[test]
fn snaplen_cut_frame_keeps_its_l4_checksum() {
    let full = udp_frame(&[3; 40]);
    let mut f = full[..full.len() - 10].to_vec(); // total_length still claims 40 payload bytes
                                                  // Strict mode refuses it (total_length > bytes), compat mode parses it.
    assert_eq!(layout(&f, ParseMode::Strict).ipv4, None);
    let old_l4 = stored_l4_checksum(&f);
    let mut m = PacketMut::new(&mut f, ParseMode::MaestroCompat);
    assert!(m.set_ip_src(0x0102_0304));
    assert!(m.set_l4_dport(9));
    assert_eq!(l4_checksum_ipv4(m.view().bytes(), m.layout()), None);
    m.finish();
    assert_eq!(
        stored_l4_checksum(&f),
        old_l4,
        "segment not whole: left as it was"
    );
    assert_eq!(ip_csum(&f), ipv4_header_checksum(&f[14..34]));
}

#[test]
fn options_are_covered_by_both_checksums_in_strict_mode() {
    let mut f = udp_frame_with_options(&[0x94, 0x04, 0, 0], b"router alert"); // RA option
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    assert!(m.set_ip_dst(0xe000_0001));
    assert!(m.set_l4_sport(1));
    m.finish();
    let (ip, l4) = etherparse_checksums(&f);
    assert_eq!(ip_csum(&f), ip);
    assert_eq!(u16::from_be_bytes([f[38 + 6], f[38 + 7]]), l4);
    assert_eq!(ipv4_header_checksum(&f[14..38]), ip);
}

/// A from-scratch one's-complement sum, to check maestro-compat's L4-at-34 checksum.
fn reference_sum(words: &[u8]) -> u32 {
    let mut s: u32 = 0;
    for c in words.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s
}

#[test]
fn compat_mode_sums_from_offset_34_like_dpdk() {
    let mut f = udp_frame_with_options(&[1, 1, 1, 1, 1, 1, 1, 0], b"0123456789");
    let l = layout(&f, ParseMode::MaestroCompat);
    assert_eq!(l.l4, Some(34));
    // rte_ipv4_udptcp_cksum(ip, l4 = ip + 20): total_length - 4*IHL bytes from offset 34,
    // with the "checksum field" at offset 34 + 6 (inside the options here).
    let l4_len = usize::from(u16::from_be_bytes([f[16], f[17]])) - 28;
    f[40..42].copy_from_slice(&[0, 0]);
    let mut pseudo = f[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(l4_len as u16).to_be_bytes());
    let mut s = reference_sum(&pseudo) + reference_sum(&f[34..34 + l4_len]);
    if s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let mut expect = !(s as u16);
    if expect == 0 {
        expect = 0xffff;
    }
    assert_eq!(l4_checksum_ipv4(&f, &l), Some(expect));
}

#[test]
fn l4_checksum_needs_a_sane_total_length() {
    let mut f = udp_frame(b"abc");
    f[16..18].copy_from_slice(&10u16.to_be_bytes()); // shorter than the IP header
    let l = layout(&f, ParseMode::MaestroCompat);
    assert_eq!(l4_checksum_ipv4(&f, &l), None);
    // Too short to hold the UDP checksum field.
    f[16..18].copy_from_slice(&24u16.to_be_bytes());
    let l = layout(&f, ParseMode::Strict);
    assert!(l.l4.is_some());
    assert_eq!(l4_checksum_ipv4(&f, &l), None);
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    assert!(m.set_l4_sport(1));
    m.finish();
}
