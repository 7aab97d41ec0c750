//! Capture reading and writing: round trips through both formats, every timestamp
//! encoding pcap and pcapng allow, and the public captures in `shared/pcaps`.

use std::path::{Path, PathBuf};

use maestro_runtime::capture::{
    CaptureError, CaptureFormat, CaptureItem, CaptureReader, CaptureRecord, CaptureWriter,
    DeviceMap, PortAssigner, TimestampResolution,
};

/// Byte-order-aware builder for hand-made capture files.
struct Enc {
    big: bool,
    buf: Vec<u8>,
}

impl Enc {
    fn new(big: bool) -> Self {
        Enc {
            big,
            buf: Vec::new(),
        }
    }
    fn u16(&mut self, x: u16) -> &mut Self {
        let b = if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        let b = if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    fn pad(&mut self) -> &mut Self {
        while self.buf.len() & 3 != 0 {
            self.buf.push(0);
        }
        self
    }
    fn opt(&mut self, code: u16, value: &[u8]) -> &mut Self {
        self.u16(code).u16(value.len() as u16).bytes(value).pad()
    }
    fn end_opts(&mut self) -> &mut Self {
        self.u16(0).u16(0)
    }
}

fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Enc::new(big);
    let len = 12 + body.len().div_ceil(4) * 4;
    b.u32(btype)
        .u32(len as u32)
        .bytes(body)
        .pad()
        .u32(len as u32);
    b.buf
}

fn shb(big: bool) -> Vec<u8> {
    let mut body = Enc::new(big);
    body.u32(0x1a2b_3c4d)
        .u16(1)
        .u16(0)
        .u32(0xffff_ffff)
        .u32(0xffff_ffff);
    block(big, 0x0a0d_0d0a, &body.buf)
}

fn idb(big: bool, linktype: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Enc::new(big);
    body.u16(linktype).u16(0).u32(snaplen);
    if !opts.is_empty() {
        for (c, v) in opts {
            body.opt(*c, v);
        }
        body.end_opts();
    }
    block(big, 1, &body.buf)
}

fn epb(big: bool, iface: u32, ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Enc::new(big);
    body.u32(iface)
        .u32((ticks >> 32) as u32)
        .u32(ticks as u32)
        .u32(data.len() as u32)
        .u32(orig)
        .bytes(data)
        .pad();
    block(big, 6, &body.buf)
}

fn classic(magic: u32, big: bool, snaplen: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let mut e = Enc::new(big);
    e.u32(magic).u16(2).u16(4).u32(0).u32(0).u32(snaplen).u32(1);
    for (sec, frac, data, orig) in records {
        e.u32(*sec)
            .u32(*frac)
            .u32(data.len() as u32)
            .u32(*orig)
            .bytes(data);
    }
    e.buf
}

fn packets(r: CaptureReader) -> Vec<CaptureRecord> {
    r.map(|item| match item {
        CaptureItem::Packet(p) => p,
        CaptureItem::Refused(r) => panic!("refused: {r}"),
    })
    .collect()
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| n.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// (port, time_ns, bytes) of a few packets with awkward lengths and timestamps.
fn sample() -> Vec<(u16, u64, Vec<u8>)> {
    vec![
        (0, 0, frame(1, 60)),
        (1, 1, frame(2, 61)),
        (1, 999_999_999, frame(3, 1514)),
        (0, 1_000_000_000, frame(4, 14)),
        (2, 1_700_000_000_123_456_789, frame(5, 0)),
        (0, 1_700_000_000_123_456_790, frame(6, 9000)),
    ]
}

#[test]
fn pcap_round_trip_keeps_bytes_and_nanoseconds() {
    let mut w = CaptureWriter::to_vec(CaptureFormat::Pcap, 3);
    for (port, t, d) in sample() {
        w.write(port, t, &d).unwrap();
    }
    let bytes = w.finish().unwrap().unwrap();
    assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1], "nanosecond magic");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let r = CaptureReader::from_bytes("rt.pcap", bytes).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcap);
    assert_eq!(r.timestamp_resolution(), Some(TimestampResolution::Nano));
    let got = packets(r);
    assert_eq!(got.len(), sample().len());
    for (i, (rec, (_, t, d))) in got.iter().zip(sample()).enumerate() {
        assert_eq!(rec.index, i as u64);
        assert_eq!(rec.interface, None, "classic pcap has no ports");
        assert_eq!(rec.time_ns, t);
        assert_eq!(rec.orig_len as usize, d.len());
        assert_eq!(rec.data, d);
    }
}

#[test]
fn pcapng_round_trip_keeps_ports_bytes_and_nanoseconds() {
    let mut w = CaptureWriter::to_vec(CaptureFormat::PcapNg, 3);
    for (port, t, d) in sample() {
        w.write(port, t, &d).unwrap();
    }
    // Beyond what classic pcap can hold.
    w.write(1, u64::MAX, &frame(7, 42)).unwrap();
    let bytes = w.finish().unwrap().unwrap();
    let r = CaptureReader::from_bytes("rt.pcapng", bytes).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    assert_eq!(r.timestamp_resolution(), None);
    let got = packets(r);
    let mut want = sample();
    want.push((1, u64::MAX, frame(7, 42)));
    assert_eq!(got.len(), want.len());
    let mut ports = PortAssigner::new(DeviceMap::Auto, 7, 8);
    for (rec, (port, t, d)) in got.iter().zip(want) {
        assert_eq!(rec.interface, Some(u32::from(port)));
        assert_eq!(ports.assign(rec), Ok(port));
        assert_eq!(rec.time_ns, t);
        assert_eq!(rec.data, d);
        assert_eq!(rec.orig_len as usize, d.len());
    }
}

#[test]
fn pcapng_writer_declares_named_nanosecond_interfaces() {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption as O;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut w = CaptureWriter::to_vec(CaptureFormat::PcapNg, 2);
    w.write(1, 5, &frame(1, 20)).unwrap();
    let bytes = w.finish().unwrap().unwrap();
    let mut r = PcapNgReader::new(&bytes[..]).unwrap();
    let mut names = vec![];
    let mut epb_iface = None;
    while let Some(b) = r.next_block() {
        match b.unwrap() {
            Block::InterfaceDescription(idb) => {
                assert_eq!(u32::from(idb.linktype), 1);
                assert!(idb.options.contains(&O::IfTsResol(9)));
                for o in &idb.options {
                    if let O::IfName(n) = o {
                        names.push(n.to_string());
                    }
                }
            }
            Block::EnhancedPacket(p) => epb_iface = Some(p.interface_id),
            _ => {}
        }
    }
    assert_eq!(names, ["port0", "port1"]);
    assert_eq!(epb_iface, Some(1));
}

#[test]
fn file_round_trip_streams_through_the_filesystem() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
        let path = dir.join(format!("capture_io_roundtrip.{format}"));
        let mut w = CaptureWriter::create(&path, format, 2).unwrap();
        for i in 0..2000u64 {
            w.write(
                (i % 2) as u16,
                i * 1_000_003,
                &frame(i as u8, 60 + (i % 200) as usize),
            )
            .unwrap();
        }
        assert_eq!(w.finish().unwrap(), None);
        assert_eq!(CaptureFormat::from_path(&path), format);
        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.path(), path.as_path());
        let got = packets(r);
        assert_eq!(got.len(), 2000);
        for (i, rec) in got.iter().enumerate() {
            let i = i as u64;
            assert_eq!(rec.time_ns, i * 1_000_003);
            assert_eq!(rec.data, frame(i as u8, 60 + (i % 200) as usize));
            if format == CaptureFormat::PcapNg {
                assert_eq!(rec.interface, Some((i % 2) as u32));
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn writer_errors_name_the_problem() {
    for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
        let mut w = CaptureWriter::to_vec(format, 2);
        let e = w.write(2, 0, &[0; 60]).unwrap_err();
        assert!(
            matches!(
                e,
                CaptureError::PortOutOfRange {
                    port: 2,
                    ports: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("port 2"), "{e}");
        let e = w.write(0, 0, &vec![0; 300_000]).unwrap_err();
        assert!(e.to_string().contains("snap length"), "{e}");
        w.write(0, 0, &[1; 60]).unwrap();
    }
    let mut w = CaptureWriter::to_vec(CaptureFormat::Pcap, 1);
    let e = w.write(0, u64::MAX, &[0; 60]).unwrap_err();
    assert!(e.to_string().contains("pcapng"), "{e}");
    let e = CaptureWriter::create(Path::new("/nonexistent/dir/x.pcap"), CaptureFormat::Pcap, 1)
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dir/x.pcap"), "{e}");
}

#[test]
fn classic_pcap_in_every_magic_and_byte_order() {
    let d = frame(1, 64);
    for (magic, big, nanos) in [
        (0xa1b2_c3d4, false, false),
        (0xa1b2_c3d4, true, false),
        (0xa1b2_3c4d, false, true),
        (0xa1b2_3c4d, true, true),
    ] {
        let file = classic(
            magic,
            big,
            65535,
            &[
                (1_500_000_000, 123_456, &d, 64),
                (1_500_000_001, 7, &d, 1500),
            ],
        );
        let r = CaptureReader::from_bytes("v.pcap", file).unwrap();
        let res = if nanos {
            TimestampResolution::Nano
        } else {
            TimestampResolution::Micro
        };
        assert_eq!(r.timestamp_resolution(), Some(res));
        let got = packets(r);
        let mult = if nanos { 1 } else { 1000 };
        assert_eq!(got[0].time_ns, 1_500_000_000_000_000_000 + 123_456 * mult);
        assert_eq!(got[1].time_ns, 1_500_000_001_000_000_000 + 7 * mult);
        assert_eq!(got[0].data, d);
        // Cut by the snap length: delivered with the captured bytes and the wire length.
        assert_eq!((got[1].data.len(), got[1].orig_len), (64, 1500));
    }
}

#[test]
fn pcapng_timestamps_follow_each_interfaces_resolution() {
    for big in [false, true] {
        let d = frame(9, 60);
        let mut file = shb(big);
        file.extend(idb(big, 1, 0, &[])); // default: microseconds
        file.extend(idb(big, 1, 0, &[(9, vec![3])])); // milliseconds
        file.extend(idb(big, 1, 0, &[(9, vec![0x80 | 10])])); // 2^-10 s
        file.extend(idb(big, 1, 0, &[(9, vec![12])])); // picoseconds
        let off: u64 = 1_000;
        // if_tsoffset: a 64-bit number of seconds in the section's byte order.
        let off_bytes = if big {
            off.to_be_bytes()
        } else {
            off.to_le_bytes()
        }
        .to_vec();
        file.extend(idb(big, 1, 0, &[(9, vec![9]), (14, off_bytes)])); // ns + 1000 s
        file.extend(epb(big, 0, 1_700_000_000_000_001, &d, 60));
        file.extend(epb(big, 1, 1_700_000_000_002, &d, 60));
        file.extend(epb(big, 2, 3 * 1024 + 512, &d, 60));
        file.extend(epb(big, 3, 5_000_000_000_123, &d, 60));
        file.extend(epb(big, 4, 42, &d, 60));
        let got = packets(CaptureReader::from_bytes("ts.pcapng", file).unwrap());
        let times: Vec<u64> = got.iter().map(|p| p.time_ns).collect();
        assert_eq!(
            times,
            [
                1_700_000_000_000_001_000,
                1_700_000_000_002_000_000,
                3_500_000_000,
                5_000_000_000,
                1_000_000_000_042,
            ],
            "big endian: {big}"
        );
        let ifaces: Vec<_> = got.iter().map(|p| p.interface).collect();
        assert_eq!(ifaces, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
    }
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    for big in [false, true] {
        let d = frame(3, 61);
        let mut file = shb(big);
        file.extend(idb(big, 1, 0, &[(9, vec![9])]));
        file.extend(epb(big, 0, 77, &d, 61));
        // Simple Packet Block: no timestamp (takes the previous one), padding excluded.
        let mut spb = Enc::new(big);
        spb.u32(61).bytes(&d).pad();
        file.extend(block(big, 3, &spb.buf));
        // Obsolete Packet Block: interface u16, drops u16, timestamp high/low.
        let mut pb = Enc::new(big);
        pb.u16(0)
            .u16(0)
            .u32(1)
            .u32(2)
            .u32(61)
            .u32(100)
            .bytes(&d)
            .pad();
        file.extend(block(big, 2, &pb.buf));
        let got = packets(CaptureReader::from_bytes("old.pcapng", file).unwrap());
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].data, d, "SPB padding must not leak into the frame");
        assert_eq!((got[1].time_ns, got[1].interface), (77, Some(0)));
        assert_eq!(got[2].time_ns, (1u64 << 32) + 2);
        assert_eq!((got[2].data.len(), got[2].orig_len), (61, 100));
    }
}

#[test]
fn pcapng_sections_blocks_and_options_the_crate_rejects() {
    let d = frame(4, 60);
    let mut file = shb(false);
    // if_tzone is 4 bytes per the spec; pcap-file 2.0 insists on 1 and rejects the IDB.
    file.extend(idb(false, 1, 0, &[(10, vec![0, 0, 0, 0]), (9, vec![9])]));
    // Blocks we do not need are skipped: interface statistics, name resolution, custom.
    file.extend(block(false, 5, &[0; 12]));
    file.extend(block(false, 4, &[0, 0, 0, 0]));
    file.extend(block(false, 0x0000_0bad, &[1, 2, 3, 4, 5, 6, 7, 8]));
    // An EPB whose flags option has the wrong length: pcap-file rejects it, the packet is fine.
    let mut body = Enc::new(false);
    body.u32(0).u32(0).u32(500).u32(60).u32(60).bytes(&d);
    body.opt(2, &[1, 2, 3]).end_opts();
    file.extend(block(false, 6, &body.buf));
    // A new, big-endian section: interfaces start again from 0.
    file.extend(shb(true));
    file.extend(idb(true, 1, 0, &[]));
    file.extend(epb(true, 0, 2, &d, 60));
    // pcap-file's own reader gives up on that IDB (so the fallback is what we test).
    let mut crate_reader = pcap_file::pcapng::PcapNgReader::new(&file[..]).unwrap();
    assert!(crate_reader.next_block().unwrap().is_err());
    let got = packets(CaptureReader::from_bytes("mixed.pcapng", file).unwrap());
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].time_ns, got[0].interface), (500, Some(0)));
    assert_eq!((got[1].time_ns, got[1].interface), (2_000, Some(0)));
    assert!(got.iter().all(|p| p.data == d));
}

/// The public captures of `shared/pcaps`, with their known packet counts.
#[test]
fn shared_captures_read_completely() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    if !dir.is_dir() {
        println!(
            "skipping: {} not found (the shared captures sit beside the checkout)",
            dir.display()
        );
        return;
    }
    let expected = [
        ("zeek-wikipedia.pcap", 136),
        ("suricata-verify-frag-eth-vlan-ip-tcp-syn.pcap", 3),
        ("zeek-ipv6-fragmented-dns.pcap", 8),
        ("castan-dpdk-nat-hashring-castan.pcap", 40),
        ("suricata-verify-hashaf-flow-v4-v6-collision.pcap", 2),
    ];
    for (name, count) in expected {
        let path = dir.join(name);
        let mut r = CaptureReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut ports = PortAssigner::new(DeviceMap::Auto, 0, 1);
        let mut per_port = [0u32; 2];
        let mut last_index = None;
        for item in &mut r {
            let CaptureItem::Packet(p) = item else {
                panic!("{name}: refused {item:?}")
            };
            assert!(last_index < Some(p.index));
            last_index = Some(p.index);
            assert!(p.data.len() <= p.orig_len as usize);
            per_port[usize::from(ports.assign(&p).unwrap())] += 1;
        }
        assert_eq!((r.packets(), r.refused()), (count, 0), "{name}");
        if name.starts_with("zeek-wikipedia") {
            // A browsing session: requests on the LAN port, answers on the WAN port.
            assert!(per_port[0] > 0 && per_port[1] > 0, "{per_port:?}");
        }
        if name.starts_with("castan") {
            // 40 one-packet flows: each opens its conversation.
            assert_eq!(per_port, [40, 0]);
        }
    }
}
