//! Malformed captures: each gives a clear error (file, offset, what to do) or a refused
//! record, and never a panic.

use std::path::Path;

use maestro_runtime::capture::{
    CaptureError, CaptureFormat, CaptureItem, CaptureReader, CaptureWriter, RefusedRecord,
};

fn le_pcap_header(snaplen: u32, linktype: u32) -> Vec<u8> {
    let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&snaplen.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    v
}

fn le_record(caplen: u32, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![];
    for x in [1u32, 2, caplen, orig] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn le_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len().div_ceil(4) * 4) as u32;
    let mut v = btype.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    while v.len() & 3 != 0 {
        v.push(0);
    }
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn le_shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&[0xff; 8]);
    le_block(0x0a0d_0d0a, &body)
}

fn le_idb(linktype: u16, snaplen: u32) -> Vec<u8> {
    let mut body = linktype.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&snaplen.to_le_bytes());
    le_block(1, &body)
}

fn le_epb(iface: u32, data: &[u8]) -> Vec<u8> {
    let mut body = vec![];
    for x in [iface, 0, 1000, data.len() as u32, data.len() as u32] {
        body.extend_from_slice(&x.to_le_bytes());
    }
    body.extend_from_slice(data);
    le_block(6, &body)
}

fn open_err(bytes: Vec<u8>) -> CaptureError {
    CaptureReader::from_bytes("bad.pcap", bytes).unwrap_err()
}

fn items(bytes: Vec<u8>) -> Vec<CaptureItem> {
    let mut r = CaptureReader::from_bytes("bad.pcap", bytes).unwrap();
    let all: Vec<_> = (&mut r).collect();
    assert_eq!(r.next_item(), None, "stays finished");
    all
}

fn refused(item: &CaptureItem) -> &RefusedRecord {
    match item {
        CaptureItem::Refused(r) => r,
        CaptureItem::Packet(p) => panic!("expected a refusal, got packet #{}", p.index),
    }
}

fn is_packet(item: &CaptureItem) -> bool {
    matches!(item, CaptureItem::Packet(_))
}

#[test]
fn empty_file() {
    let e = open_err(vec![]);
    assert!(matches!(e, CaptureError::Empty { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("bad.pcap: empty file"), "{msg}");
}

#[test]
fn bad_magic_names_file_offset_and_fix() {
    let e = open_err(vec![0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        e,
        CaptureError::BadMagic {
            found: [0x12, 0x34, 0x56, 0x78],
            ..
        }
    ));
    let msg = e.to_string();
    assert!(msg.contains("bad.pcap"), "{msg}");
    assert!(msg.contains("magic 0x12345678 at offset 0"), "{msg}");
    assert!(msg.contains("editcap -F pcap"), "{msg}");
    let gz = open_err(vec![0x1f, 0x8b, 8, 0, 0, 0]).to_string();
    assert!(gz.contains("gunzip"), "{gz}");
    let text = open_err(b"# hello, this is a README".to_vec()).to_string();
    assert!(text.contains("not a pcap or pcapng file"), "{text}");
}

#[test]
fn files_too_short_for_a_magic() {
    for n in 1..4 {
        let e = open_err(vec![0xd4; n]);
        assert!(matches!(e, CaptureError::Header { offset: 0, .. }), "{e}");
        assert!(e.to_string().contains("too short"), "{e}");
    }
}

#[test]
fn truncated_global_header() {
    let mut h = le_pcap_header(65535, 1);
    h.truncate(10);
    let e = open_err(h);
    assert!(matches!(e, CaptureError::Header { offset: 0, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("bad.pcap") && msg.contains("truncated") && msg.contains("10 of 24"),
        "{msg}"
    );
}

#[test]
fn kuznetzov_pcap_is_explained() {
    let mut h = le_pcap_header(65535, 1);
    h[..4].copy_from_slice(&[0x34, 0xcd, 0xb2, 0xa1]);
    let e = open_err(h);
    assert!(e.to_string().contains("Kuznetzov"), "{e}");
}

#[test]
fn non_ethernet_link_type() {
    let e = open_err(le_pcap_header(65535, 113)); // Linux cooked capture
    assert!(
        matches!(e, CaptureError::LinkType { linktype: 113, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("not Ethernet"), "{e}");
}

#[test]
fn missing_file() {
    let e = CaptureReader::open(Path::new("/nonexistent/trace.pcap")).unwrap_err();
    assert!(matches!(e, CaptureError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/trace.pcap"), "{e}");
}

#[test]
fn header_only_pcap_is_an_empty_capture() {
    assert!(items(le_pcap_header(65535, 1)).is_empty());
}

#[test]
fn truncated_last_record_is_refused_and_ends_the_file() {
    let mut f = le_pcap_header(65535, 1);
    f.extend(le_record(60, 60, &[1; 60]));
    let second = f.len() as u64;
    let mut rec = le_record(60, 60, &[2; 60]);
    rec.truncate(16 + 25);
    f.extend(rec);
    let all = items(f);
    assert_eq!(all.len(), 2);
    assert!(is_packet(&all[0]));
    let r = refused(&all[1]);
    assert_eq!((r.index, r.byte_offset), (1, second));
    assert!(
        r.reason.contains("truncated") && r.reason.contains("only 25 remain"),
        "{r}"
    );
    assert!(
        r.to_string()
            .starts_with(&format!("record #1 at byte offset {second}:")),
        "{r}"
    );
}

#[test]
fn truncated_record_header_is_refused() {
    let mut f = le_pcap_header(65535, 1);
    f.extend(le_record(60, 60, &[1; 60]));
    f.extend([0u8; 5]);
    let all = items(f);
    assert_eq!(all.len(), 2);
    assert!(refused(&all[1]).reason.contains("5 of 16"), "{:?}", all[1]);
}

#[test]
fn caplen_above_snaplen_is_refused_and_reading_goes_on() {
    let mut f = le_pcap_header(100, 1);
    f.extend(le_record(60, 60, &[1; 60]));
    f.extend(le_record(150, 150, &[2; 150]));
    f.extend(le_record(100, 1500, &[3; 100])); // cut by the snap length: fine
    let all = items(f);
    assert_eq!(all.len(), 3);
    assert!(
        refused(&all[1]).reason.contains("snap length 100"),
        "{:?}",
        all[1]
    );
    let CaptureItem::Packet(p) = &all[2] else {
        panic!()
    };
    assert_eq!((p.index, p.data.len(), p.orig_len), (2, 100, 1500));
}

#[test]
fn zero_snaplen_means_the_libpcap_maximum() {
    let mut f = le_pcap_header(0, 1);
    f.extend(le_record(60, 60, &[1; 60]));
    assert!(is_packet(&items(f)[0]));
}

#[test]
fn absurd_caplen_stops_without_reading_it() {
    let mut f = le_pcap_header(65535, 1);
    f.extend(le_record(60, 60, &[1; 60]));
    f.extend(le_record(0xffff_fff0, 60, &[2; 60]));
    f.extend(le_record(60, 60, &[3; 60]));
    let all = items(f);
    assert_eq!(all.len(), 2, "nothing after an untrustworthy length");
    let r = refused(&all[1]);
    assert!(
        r.reason.contains("absurd") && r.reason.contains("4294967280"),
        "{r}"
    );
    assert_eq!(r.byte_offset, 24 + 76);
}

#[test]
fn pcapng_bad_byte_order_magic() {
    let mut f = le_shb();
    f[8..12].copy_from_slice(b"junk");
    let e = CaptureReader::from_bytes("g.pcapng", f).unwrap_err();
    assert!(matches!(e, CaptureError::Header { offset: 0, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("g.pcapng") && msg.contains("byte-order magic"),
        "{msg}"
    );
}

#[test]
fn pcapng_garbage_after_the_magic() {
    for tail in [&[][..], &[1, 2, 3][..], &[0xff; 9][..], &[7; 40][..]] {
        let mut f = vec![0x0a, 0x0d, 0x0d, 0x0a];
        f.extend_from_slice(tail);
        let e = CaptureReader::from_bytes("g.pcapng", f).unwrap_err();
        assert!(matches!(e, CaptureError::Header { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("g.pcapng: bad capture header at byte offset 0"),
            "{e}"
        );
    }
}

#[test]
fn pcapng_unsupported_version() {
    let mut f = le_shb();
    f[12] = 2;
    let e = CaptureReader::from_bytes("v2.pcapng", f).unwrap_err();
    assert!(e.to_string().contains("major version 2"), "{e}");
}

#[test]
fn pcapng_record_level_problems_are_refused_and_reading_goes_on() {
    let mut f = le_shb();
    f.extend(le_idb(1, 100)); // interface 0: Ethernet, snaplen 100
    f.extend(le_idb(113, 0)); // interface 1: not Ethernet
    f.extend(le_epb(0, &[1; 60]));
    f.extend(le_epb(5, &[2; 60])); // no such interface
    f.extend(le_epb(1, &[3; 60])); // wrong link type
    f.extend(le_epb(0, &[4; 120])); // above the snap length
    let mut short = 0u32.to_le_bytes().to_vec(); // an EPB body too short for its fields
    short.extend_from_slice(&[0; 8]);
    f.extend(le_block(6, &short));
    f.extend(le_epb(0, &[5; 60]));
    let all = items(f);
    assert_eq!(all.len(), 6);
    assert!(is_packet(&all[0]) && is_packet(&all[5]));
    assert!(
        refused(&all[1]).reason.contains("interface 5"),
        "{:?}",
        all[1]
    );
    assert!(
        refused(&all[2]).reason.contains("link type 113"),
        "{:?}",
        all[2]
    );
    assert!(
        refused(&all[3]).reason.contains("snap length 100"),
        "{:?}",
        all[3]
    );
    assert!(
        refused(&all[4]).reason.contains("malformed"),
        "{:?}",
        all[4]
    );
    let idx: Vec<u64> = all
        .iter()
        .map(|i| match i {
            CaptureItem::Packet(p) => p.index,
            CaptureItem::Refused(r) => r.index,
        })
        .collect();
    assert_eq!(idx, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn pcapng_framing_problems_stop_after_a_refusal() {
    let base = || {
        let mut f = le_shb();
        f.extend(le_idb(1, 0));
        f.extend(le_epb(0, &[1; 60]));
        f
    };
    // Truncated last block.
    let mut f = base();
    let at = f.len() as u64;
    let mut last = le_epb(0, &[2; 60]);
    last.truncate(50);
    f.extend(last);
    let all = items(f);
    assert_eq!(all.len(), 2);
    let r = refused(&all[1]);
    assert_eq!(r.byte_offset, at);
    assert!(r.reason.contains("truncated"), "{r}");
    // Length not a multiple of 4.
    let mut f = base();
    let mut bad = le_epb(0, &[2; 60]);
    bad[4] = bad[4].wrapping_add(1);
    f.extend(bad);
    f.extend(le_epb(0, &[3; 60]));
    let all = items(f);
    assert_eq!(all.len(), 2);
    assert!(
        refused(&all[1]).reason.contains("invalid total length"),
        "{:?}",
        all[1]
    );
    // Trailer disagrees with the header.
    let mut f = base();
    let mut bad = le_epb(0, &[2; 60]);
    let n = bad.len();
    bad[n - 4] ^= 0x40;
    f.extend(bad);
    let all = items(f);
    assert!(
        refused(&all[1]).reason.contains("at its end"),
        "{:?}",
        all[1]
    );
    // Absurd length: refused without reading 4 GB.
    let mut f = base();
    f.extend(6u32.to_le_bytes());
    f.extend(0xffff_fff0u32.to_le_bytes());
    f.extend([0; 64]);
    let all = items(f);
    assert!(refused(&all[1]).reason.contains("absurd"), "{:?}", all[1]);
    // A few stray bytes at the end.
    let mut f = base();
    f.extend([1, 2, 3]);
    let all = items(f);
    assert!(
        refused(&all[1]).reason.contains("truncated block header"),
        "{:?}",
        all[1]
    );
}

#[test]
fn mutated_valid_files_never_panic_at_any_truncation() {
    for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
        let mut w = CaptureWriter::to_vec(format, 2);
        for i in 0..4u8 {
            w.write(
                u16::from(i % 2),
                u64::from(i) * 1000,
                &vec![i; 50 + usize::from(i)],
            )
            .unwrap();
        }
        let bytes = w.finish().unwrap().unwrap();
        for cut in 0..bytes.len() {
            if let Ok(r) = CaptureReader::from_bytes("cut", bytes[..cut].to_vec()) {
                let all: Vec<_> = r.collect();
                // Whatever was whole is delivered; a cut record is reported.
                let refusals = all.iter().filter(|i| !is_packet(i)).count();
                assert!(refusals <= 1, "{format} cut at {cut}: {all:?}");
            }
        }
    }
}
