//! The Toeplitz hash and RETA lookup against the Microsoft / Intel 82599 verification
//! vectors (`shared/spec/rss.md`, `perf-anchors.md` §C.2), in every implementation form,
//! plus the algebraic properties the solver relies on.

use std::net::{Ipv4Addr, Ipv6Addr};

use maestro_runtime::rss::{
    convert_rss_key, key_window, le_words, softrss, softrss_be, toeplitz_bitwise, HashInput,
    HashType, Reta, RssError, Toeplitz, MICROSOFT_KEY,
};
use proptest::prelude::*;

#[path = "common/vectors.rs"]
mod vectors;
use vectors::{V4, V6};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("test vector address")
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("test vector address")
}

/// The Microsoft key padded to 52 bytes (i40e/ice), as Knot's test does.
fn key52() -> Vec<u8> {
    let mut k = MICROSOFT_KEY.to_vec();
    k.extend([0u8; 12]);
    k
}

#[test]
fn worked_byte_string_ipv4_1() {
    let bytes = [
        0x42, 0x09, 0x95, 0xbb, 0xa1, 0x8e, 0x64, 0x50, 0x0a, 0xea, 0x06, 0xe6,
    ];
    let input = HashInput::ipv4(v4("66.9.149.187"), v4("161.142.100.80"), 2794, 1766, true);
    assert_eq!(input.as_bytes(), &bytes);
    assert_eq!(toeplitz_bitwise(&MICROSOFT_KEY, &bytes), 0x51ccc178);
}

#[test]
fn ipv4_vectors_all_forms_40_and_52_byte_keys() {
    let converted = convert_rss_key(&MICROSOFT_KEY);
    for key in [MICROSOFT_KEY.to_vec(), key52()] {
        let t = Toeplitz::new(&key).unwrap();
        for &(s, sp, d, dp, h2, h4) in &V4 {
            let (s, d) = (v4(s), v4(d));
            let i2 = HashInput::ipv4(s, d, sp, dp, false);
            let i4 = HashInput::ipv4(s, d, sp, dp, true);
            // Byte-oriented: bitwise reference and tables.
            assert_eq!(
                toeplitz_bitwise(&key, i2.as_bytes()),
                h2,
                "bitwise 2-tuple {s}"
            );
            assert_eq!(
                toeplitz_bitwise(&key, i4.as_bytes()),
                h4,
                "bitwise 4-tuple {s}"
            );
            assert_eq!(t.hash(&i2).unwrap(), h2, "table 2-tuple {s}");
            assert_eq!(t.hash(&i4).unwrap(), h4, "table 4-tuple {s}");
            // rte_softrss: host-order words; the tuple struct declares dport before sport,
            // so on little-endian the third word is sport << 16 | dport.
            let w2 = [u32::from(s), u32::from(d)];
            let w4 = [
                u32::from(s),
                u32::from(d),
                (u32::from(sp) << 16) | u32::from(dp),
            ];
            assert_eq!(softrss(&w2, &key), h2, "softrss 2-tuple {s}");
            assert_eq!(softrss(&w4, &key), h4, "softrss 4-tuple {s}");
            // rte_softrss_be: network-order memory, converted key.
            assert_eq!(softrss_be(&le_words(i2.as_bytes()), &converted), h2);
            assert_eq!(softrss_be(&le_words(i4.as_bytes()), &converted), h4);
        }
    }
}

#[test]
fn ipv6_vectors_all_forms_40_and_52_byte_keys() {
    let converted = convert_rss_key(&MICROSOFT_KEY);
    for key in [MICROSOFT_KEY.to_vec(), key52()] {
        let t = Toeplitz::new(&key).unwrap();
        assert!(t.supports(HashType::Ipv6Ports));
        for &(s, sp, d, dp, h2, h4) in &V6 {
            let (s, d) = (v6(s), v6(d));
            let i2 = HashInput::ipv6(s, d, sp, dp, false);
            let i4 = HashInput::ipv6(s, d, sp, dp, true);
            assert_eq!(i4.as_bytes().len(), HashType::Ipv6Ports.input_len());
            assert_eq!(toeplitz_bitwise(&key, i2.as_bytes()), h2, "bitwise v6 {s}");
            assert_eq!(
                toeplitz_bitwise(&key, i4.as_bytes()),
                h4,
                "bitwise v6 ports {s}"
            );
            assert_eq!(t.hash(&i2).unwrap(), h2, "table v6 {s}");
            assert_eq!(t.hash(&i4).unwrap(), h4, "table v6 ports {s}");
            let mut words: Vec<u32> = s
                .octets()
                .chunks(4)
                .chain(d.octets().chunks(4))
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(softrss(&words, &key), h2, "softrss v6 {s}");
            words.push((u32::from(sp) << 16) | u32::from(dp));
            assert_eq!(softrss(&words, &key), h4, "softrss v6 ports {s}");
            assert_eq!(softrss_be(&le_words(i4.as_bytes()), &converted), h4);
        }
    }
}

#[test]
fn symmetric_key_vectors() {
    let key: Vec<u8> = [0x6d, 0x5a].repeat(20);
    let t = Toeplitz::new(&key).unwrap();
    let expect4 = [0x9fcc9fcc, 0x60d760d7, 0x3a3e3a3e, 0xd26ed26e, 0xf23ef23e];
    let expect2 = [0x0a590a59, 0x7ba97ba9, 0xa55aa55a, 0xf8a7f8a7, 0x57545754];
    for (i, &(s, sp, d, dp, _, _)) in V4.iter().enumerate() {
        let (s, d) = (v4(s), v4(d));
        let fwd = t.hash(&HashInput::ipv4(s, d, sp, dp, true)).unwrap();
        let rev = t.hash(&HashInput::ipv4(d, s, dp, sp, true)).unwrap();
        assert_eq!(fwd, expect4[i]);
        assert_eq!(rev, expect4[i]);
        assert_eq!(
            t.hash(&HashInput::ipv4(s, d, 0, 0, false)).unwrap(),
            expect2[i]
        );
    }
    let expect6 = [0x13eb13eb, 0x36913691, 0x08090809];
    for (i, &(s, sp, d, dp, _, _)) in V6.iter().enumerate() {
        let h = t
            .hash(&HashInput::ipv6(v6(s), v6(d), sp, dp, true))
            .unwrap();
        assert_eq!(h, expect6[i]);
    }
    // The Microsoft key is not symmetric.
    let ms = Toeplitz::new(&MICROSOFT_KEY).unwrap();
    let rev = HashInput::ipv4(v4("161.142.100.80"), v4("66.9.149.187"), 1766, 2794, true);
    assert_eq!(ms.hash(&rev).unwrap(), 0xfde799b2);
}

#[test]
fn reta_uses_low_bits() {
    for size in [64usize, 128, 512, 2048] {
        let reta = Reta::round_robin(size, 16).unwrap();
        assert_eq!(reta.len(), size);
        assert_eq!(reta.index(0x51ccc178), 0x51ccc178 & (size - 1));
        assert_eq!(
            reta.queue(0x51ccc178),
            ((0x51ccc178 & (size - 1)) % 16) as u16
        );
    }
    // 0x51ccc178 & 0x1ff = 0x178 = 376.
    assert_eq!(Reta::round_robin(512, 4).unwrap().index(0x51ccc178), 376);
    assert_eq!(
        Reta::round_robin(500, 4),
        Err(RssError::BadRetaSize { size: 500 })
    );
    assert!(Reta::new(vec![0; 1]).is_err());
    assert!(Reta::round_robin(128, 0).is_err());
}

#[test]
fn errors_are_reported_not_panics() {
    assert_eq!(
        Toeplitz::new(&[1, 2, 3]).unwrap_err(),
        RssError::KeyTooShort { len: 3 }
    );
    let short = Toeplitz::new(&MICROSOFT_KEY[..12]).unwrap();
    assert!(!short.supports(HashType::Ipv4Ports));
    let input = HashInput::ipv4(v4("1.2.3.4"), v4("5.6.7.8"), 1, 2, true);
    let err = short.hash(&input).unwrap_err();
    assert!(err.to_string().contains("at least 16 bytes"), "{err}");
    assert!(Toeplitz::from_hex("6d5g").is_err());
    assert!(Toeplitz::from_hex("6d5").is_err());
    let t = Toeplitz::from_hex(
        "6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa",
    )
    .unwrap();
    assert_eq!(t.key(), &MICROSOFT_KEY);
}

#[test]
fn key_window_matches_definition() {
    // Window 0 is the first four key bytes; window 8 starts at byte 1.
    assert_eq!(key_window(&MICROSOFT_KEY, 0), 0x6d5a56da);
    assert_eq!(key_window(&MICROSOFT_KEY, 8), 0x5a56da25);
    // Past the end reads zeros.
    assert_eq!(key_window(&MICROSOFT_KEY, 40 * 8 - 8), 0xfa00_0000);
}

fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 40),
        prop::collection::vec(any::<u8>(), 52)
    ]
}

proptest! {
    #[test]
    fn table_equals_bitwise(key in key_strategy(), input in prop::collection::vec(any::<u8>(), 0..=36)) {
        let t = Toeplitz::new(&key).unwrap();
        prop_assert_eq!(t.hash_bytes(&input).unwrap(), toeplitz_bitwise(&key, &input));
    }

    #[test]
    fn linear_in_input(key in key_strategy(), a in prop::array::uniform32(any::<u8>()), b in prop::array::uniform32(any::<u8>())) {
        let t = Toeplitz::new(&key).unwrap();
        let x: Vec<u8> = a.iter().zip(&b).map(|(p, q)| p ^ q).collect();
        prop_assert_eq!(t.hash_bytes(&x).unwrap(), t.hash_bytes(&a).unwrap() ^ t.hash_bytes(&b).unwrap());
        prop_assert_eq!(t.hash_bytes(&[0u8; 32]).unwrap(), 0);
    }

    #[test]
    fn linear_in_key(k1 in prop::collection::vec(any::<u8>(), 40), k2 in prop::collection::vec(any::<u8>(), 40), input in prop::collection::vec(any::<u8>(), 12)) {
        let k: Vec<u8> = k1.iter().zip(&k2).map(|(p, q)| p ^ q).collect();
        prop_assert_eq!(toeplitz_bitwise(&k, &input), toeplitz_bitwise(&k1, &input) ^ toeplitz_bitwise(&k2, &input));
    }

    #[test]
    fn key52_equals_its_40_byte_prefix(key in prop::collection::vec(any::<u8>(), 52), input in prop::collection::vec(any::<u8>(), 0..=36)) {
        let a = Toeplitz::new(&key).unwrap();
        let b = Toeplitz::new(&key[..40]).unwrap();
        prop_assert_eq!(a.hash_bytes(&input).unwrap(), b.hash_bytes(&input).unwrap());
    }

    #[test]
    fn dpdk_forms_agree(key in prop::collection::vec(any::<u8>(), 40), s in any::<u32>(), d in any::<u32>(), sp in any::<u16>(), dp in any::<u16>()) {
        let input = HashInput::ipv4(s.into(), d.into(), sp, dp, true);
        let h = toeplitz_bitwise(&key, input.as_bytes());
        prop_assert_eq!(softrss(&[s, d, (u32::from(sp) << 16) | u32::from(dp)], &key), h);
        prop_assert_eq!(softrss_be(&le_words(input.as_bytes()), &convert_rss_key(&key)), h);
    }

    #[test]
    fn symmetric_key_folds(s in any::<u32>(), d in any::<u32>(), sp in any::<u16>(), dp in any::<u16>()) {
        let key: Vec<u8> = [0x6d, 0x5a].repeat(20);
        let t = Toeplitz::new(&key).unwrap();
        let h = t.hash(&HashInput::ipv4(s.into(), d.into(), sp, dp, true)).unwrap();
        prop_assert_eq!(h >> 16, h & 0xffff);
        let fold = ((s >> 16) ^ s ^ (d >> 16) ^ d ^ u32::from(sp) ^ u32::from(dp)) & 0xffff;
        prop_assert_eq!(t.hash_bytes(&(fold as u16).to_be_bytes()).unwrap(), h);
    }
}
