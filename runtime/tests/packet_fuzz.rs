//! Random frames through every getter, setter and `finish`, in both modes: nothing may
//! panic, and whatever `finish` recomputes must verify.

use maestro_runtime::packet::{
    ipv4_header_checksum, l4_checksum_ipv4, layout, PacketMut, PacketView, ParseMode,
};
use proptest::prelude::*;

fn mode() -> impl Strategy<Value = ParseMode> {
    prop_oneof![Just(ParseMode::Strict), Just(ParseMode::MaestroCompat)]
}

/// Mostly-IPv4 frames: a plausible header with random fields, so the deep paths run.
fn ipv4ish() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..140),
        any::<u8>(),
        prop_oneof![Just(6u8), Just(17u8), any::<u8>()],
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(mut f, vihl, proto, total, fit_total)| {
            if f.len() >= 34 {
                f[12] = 0x08;
                f[13] = 0x00;
                f[14] = vihl;
                f[23] = proto;
                let total = if fit_total {
                    (f.len() - 14) as u16 - (total % 8).min((f.len() - 14) as u16)
                } else {
                    total
                };
                f[16..18].copy_from_slice(&total.to_be_bytes());
            }
            f
        })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..80), ipv4ish()]
}

fn read_everything(v: &PacketView) {
    let _ = (
        v.len(),
        v.is_empty(),
        v.eth_dst(),
        v.eth_src(),
        v.eth_type(),
    );
    let l = *v.layout();
    assert!(l.l4.is_none() || l.ipv4.is_some(), "l4 implies ipv4");
    if let Some(ip) = v.ipv4() {
        let _ = (
            ip.src(),
            ip.dst(),
            ip.src_u32(),
            ip.dst_u32(),
            ip.proto(),
            ip.ttl(),
        );
        let _ = (
            ip.tos(),
            ip.ihl(),
            ip.total_len(),
            ip.id(),
            ip.frag(),
            ip.version(),
        );
        let _ = ip.checksum();
    }
    let _ = v.l4_ports();
    let _ = l4_checksum_ipv4(v.bytes(), &l);
    let _ = ipv4_header_checksum(v.bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn views_never_panic(frame in any_frame(), mode in mode()) {
        read_everything(&PacketView::new(&frame, mode));
    }

    #[test]
    fn writes_and_finish_never_panic(
        frame in any_frame(),
        mode in mode(),
        writes in proptest::collection::vec((0u8..8, any::<u32>()), 0..6),
    ) {
        let mut f = frame.clone();
        let mut m = PacketMut::new(&mut f, mode);
        let l = *m.layout();
        let mut ip_written = false;
        let mut l4_field_written = false;
        for (what, x) in writes {
            match what {
                0 => m.set_eth_dst([x as u8; 6]),
                1 => m.set_eth_src([(x >> 8) as u8; 6]),
                2 => { let ok = m.set_ip_src(x); prop_assert_eq!(ok, l.ipv4.is_some()); ip_written |= ok; l4_field_written |= ok; }
                3 => { let ok = m.set_ip_dst(x); prop_assert_eq!(ok, l.ipv4.is_some()); ip_written |= ok; l4_field_written |= ok; }
                4 => { let ok = m.set_ip_ttl(x as u8); prop_assert_eq!(ok, l.ipv4.is_some()); ip_written |= ok; }
                5 => { let ok = m.set_ip_tos(x as u8); prop_assert_eq!(ok, l.ipv4.is_some()); ip_written |= ok; }
                6 => { let ok = m.set_l4_sport(x as u16); prop_assert_eq!(ok, l.l4.is_some()); l4_field_written |= ok; }
                _ => { let ok = m.set_l4_dport(x as u16); prop_assert_eq!(ok, l.l4.is_some()); l4_field_written |= ok; }
            }
            read_everything(&m.view());
        }
        m.finish();
        prop_assert_eq!(f.len(), frame.len());
        // The layout depends only on bytes the setters never touch.
        prop_assert_eq!(layout(&f, mode), l);
        if ip_written {
            let ihl_len = 4 * usize::from(f[14] & 0x0f);
            let len = if ihl_len >= 20 && 14 + ihl_len <= f.len() { ihl_len } else { 20 };
            prop_assert_eq!(ipv4_header_checksum(&f[14..14 + len]), u16::from_be_bytes([f[24], f[25]]));
        }
        if l4_field_written {
            if let (Some(l4), Some(sum)) = (l.l4, l4_checksum_ipv4(&f, &l)) {
                let off = l4 + if f[23] == 6 { 16 } else { 6 };
                prop_assert_eq!(u16::from_be_bytes([f[off], f[off + 1]]), sum);
            }
        }
    }
}
