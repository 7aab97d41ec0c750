//! Fuzz-style: random bytes, and random mutations and truncations of valid pcap and
//! pcapng files, fed to the reader and drained. Nothing may panic, and the reader must
//! stay consistent (increasing indexes, bounded output, finished means finished).

use maestro_runtime::capture::{CaptureFormat, CaptureItem, CaptureReader, CaptureWriter};
use proptest::prelude::*;

fn valid(format: CaptureFormat, sizes: &[usize]) -> Vec<u8> {
    let mut w = CaptureWriter::to_vec(format, 3);
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|j| (i * 7 + j) as u8).collect();
        w.write((i % 3) as u16, (i as u64) * 1_000_001, &data)
            .unwrap();
    }
    w.finish().unwrap().unwrap()
}

fn drain(bytes: Vec<u8>) {
    let len = bytes.len();
    let Ok(mut r) = CaptureReader::from_bytes("fuzz", bytes) else {
        return;
    };
    let _ = (r.format(), r.timestamp_resolution());
    let mut last = None;
    let mut n = 0usize;
    while let Some(item) = r.next_item() {
        let index = match &item {
            CaptureItem::Packet(p) => {
                assert!(p.data.len() <= len);
                p.index
            }
            CaptureItem::Refused(x) => {
                assert!(!x.reason.is_empty());
                assert!(x.byte_offset <= len as u64);
                x.index
            }
        };
        assert!(last < Some(index), "indexes increase");
        last = Some(index);
        n += 1;
        // Every record or block takes at least 12 bytes.
        assert!(n <= len / 12 + 1, "more items than the input can hold");
    }
    assert_eq!(r.next_item(), None);
    assert_eq!(r.packets() + r.refused(), n as u64);
}

fn format() -> impl Strategy<Value = CaptureFormat> {
    prop_oneof![Just(CaptureFormat::Pcap), Just(CaptureFormat::PcapNg)]
}

/// A valid capture with random bytes overwritten, then possibly truncated.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        format(),
        proptest::collection::vec(0usize..120, 0..6),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        proptest::option::of(any::<usize>()),
    )
        .prop_map(|(format, sizes, edits, cut)| {
            let mut b = valid(format, &sizes);
            for (at, v) in edits {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] = v;
                }
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            b
        })
}

/// Random bytes behind a real magic, so the record parsers see garbage too.
fn magic_then_garbage() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(vec![0xd4, 0xc3, 0xb2, 0xa1]),
            Just(vec![0xa1, 0xb2, 0x3c, 0x4d]),
            Just(vec![0x0a, 0x0d, 0x0d, 0x0a]),
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(mut m, rest)| {
            m.extend(rest);
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2500))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        drain(bytes);
    }

    #[test]
    fn garbage_after_a_magic_never_panics(bytes in magic_then_garbage()) {
        drain(bytes);
    }

    #[test]
    fn mutated_captures_never_panic(bytes in mutated()) {
        drain(bytes);
    }
}
