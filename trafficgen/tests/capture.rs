//! Writing traces to capture files and reading them back with the runtime's reader.

use std::path::PathBuf;

use maestro_runtime::capture::{
    CaptureFormat, CaptureItem, CaptureReader, CaptureRecord, CaptureWriter, DeviceMap,
    PortAssigner,
};
use maestro_runtime::InputPacket;
use maestro_trafficgen::{
    write_file, write_pcap, FlowSpec, SizeMix, TraceConfig, TraceError, TraceGen,
};

fn config() -> TraceConfig {
    TraceConfig {
        seed: 5,
        packets: 3_000,
        frame_size: 128,
        rate_pps: 3_000_000, // 333.33 ns apart: sub-microsecond timestamps
        start_ns: 1_700_000_000_123_456_789,
        reply_ratio: 0.4,
        lan_port: 2,
        wan_port: 0,
        flows: FlowSpec {
            count: 200,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        ..TraceConfig::default()
    }
}

fn records(reader: CaptureReader) -> Vec<CaptureRecord> {
    reader
        .map(|item| match item {
            CaptureItem::Packet(r) => r,
            CaptureItem::Refused(r) => panic!("refused record: {r:?}"),
        })
        .collect()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("maestro-trafficgen-{}-{name}", std::process::id()))
}

fn check_pcapng(recs: &[CaptureRecord], want: &[InputPacket]) {
    assert_eq!(recs.len(), want.len());
    for (r, p) in recs.iter().zip(want) {
        assert_eq!(r.interface, Some(u32::from(p.port)));
        assert_eq!(r.time_ns, p.time_ns);
        assert_eq!(r.orig_len as usize, p.data.len());
        assert_eq!(r.data, p.data);
    }
}

#[test]
fn pcapng_file_round_trip() {
    let want: Vec<_> = TraceGen::new(config()).unwrap().collect();
    let path = temp("rt.pcapng");
    assert_eq!(
        write_pcap(&config(), &path, CaptureFormat::PcapNg).unwrap(),
        3_000
    );
    let reader = CaptureReader::open(&path).unwrap();
    assert_eq!(reader.format(), CaptureFormat::PcapNg);
    let recs = records(reader);
    std::fs::remove_file(&path).unwrap();
    check_pcapng(&recs, &want);
}

#[test]
fn pcap_file_round_trip_with_flow_device_map() {
    let c = config();
    let want: Vec<_> = TraceGen::new(c.clone()).unwrap().collect();
    let path = temp("rt.pcap");
    write_pcap(&c, &path, CaptureFormat::Pcap).unwrap();
    let recs = records(CaptureReader::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(recs.len(), want.len());
    // Plain pcap has no interfaces; every flow opens on the LAN side, so the Flow device
    // map gives every packet its original port back.
    let mut ports = PortAssigner::new(DeviceMap::Flow, c.lan_port, c.wan_port);
    for (r, p) in recs.iter().zip(&want) {
        assert_eq!(r.data, p.data);
        // Microsecond or nanosecond resolution, never more than 1 µs off.
        assert!(r.time_ns <= p.time_ns && p.time_ns - r.time_ns < 1_000);
        assert_eq!(ports.assign(r), Ok(p.port));
    }
}

#[test]
fn in_memory_writer() {
    let c = config();
    let want: Vec<_> = TraceGen::new(c.clone()).unwrap().collect();
    let mut w = CaptureWriter::to_vec(CaptureFormat::PcapNg, c.port_count().unwrap());
    let mut g = TraceGen::new(c).unwrap();
    assert_eq!(g.write_capture(&mut w).unwrap(), 3_000);
    let bytes = w.finish().unwrap().unwrap();
    check_pcapng(
        &records(CaptureReader::from_bytes("mem", bytes).unwrap()),
        &want,
    );
}

#[test]
fn bad_config_and_bad_path() {
    let bad = TraceConfig {
        frame_size: 10,
        ..config()
    };
    let path = temp("never.pcap");
    assert!(matches!(
        write_pcap(&bad, &path, CaptureFormat::Pcap),
        Err(TraceError::FrameSize { .. })
    ));
    assert!(!path.exists(), "no file for an invalid config");
    let top = TraceConfig {
        lan_port: u16::MAX,
        ..config()
    };
    assert!(matches!(
        top.port_count(),
        Err(TraceError::PortTooLarge { .. })
    ));
    let e = write_pcap(&config(), &temp("no/such/dir/x.pcap"), CaptureFormat::Pcap);
    assert!(matches!(e, Err(TraceError::Capture(_))), "{e:?}");
}

/// What the runtime's CaptureWriter makes of a trace.
fn via_capture_writer(c: &TraceConfig, format: CaptureFormat) -> Vec<u8> {
    let mut w = CaptureWriter::to_vec(format, c.port_count().unwrap());
    TraceGen::new(c.clone())
        .unwrap()
        .write_capture(&mut w)
        .unwrap();
    w.finish().unwrap().unwrap()
}

/// The same trace written one packet at a time through `CaptureWriter::write`.
fn packet_by_packet(c: &TraceConfig, format: CaptureFormat) -> Vec<u8> {
    let mut w = CaptureWriter::to_vec(format, c.port_count().unwrap());
    for p in TraceGen::new(c.clone()).unwrap() {
        w.write_input(&p).unwrap();
    }
    w.finish().unwrap().unwrap()
}

#[test]
fn in_place_writing_matches_packet_by_packet_writing_byte_for_byte() {
    let imix = TraceConfig {
        sizes: SizeMix::Imix,
        zipf_s: 1.1,
        ..config()
    };
    // Odd frame lengths exercise pcapng's padding.
    let odd = TraceConfig {
        sizes: "65:1,66:1,67:1,68:1,1517:1".parse().unwrap(),
        rate_bps: Some(10_000_000_000),
        ..config()
    };
    // A trace bigger than the writer's 1 MiB output buffer: several flushes.
    let big = TraceConfig {
        packets: 40_000,
        ..config()
    };
    for c in [config(), imix, odd, big] {
        for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
            let want = packet_by_packet(&c, format);
            let got = via_capture_writer(&c, format);
            assert_eq!(got.len(), want.len(), "{format}");
            assert!(got == want, "{format}: bytes differ");
            // And through a file.
            let path = temp(&format!("fast.{format}"));
            assert_eq!(write_pcap(&c, &path, format).unwrap(), c.packets);
            let file = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(file == want, "{format}: file differs");
        }
    }
}

#[test]
fn write_file_keeps_the_callers_statistics() {
    let c = config();
    let mut gen = TraceGen::new(c.clone()).unwrap().with_stats();
    let path = temp("stats.pcapng");
    assert_eq!(
        write_file(&mut gen, &path, CaptureFormat::PcapNg).unwrap(),
        3_000
    );
    std::fs::remove_file(&path).unwrap();
    let s = gen.stats().unwrap();
    assert_eq!(s.packets, 3_000);
    assert_eq!(s.frame_bytes, 3_000 * 124);
}

#[test]
fn classic_pcap_refuses_timestamps_past_2106() {
    let c = TraceConfig {
        start_ns: (u64::from(u32::MAX) + 1) * 1_000_000_000,
        packets: 10,
        ..config()
    };
    let path = temp("late.pcap");
    let e = write_pcap(&c, &path, CaptureFormat::Pcap).unwrap_err();
    assert!(e.to_string().contains("pcapng"), "{e}");
    assert!(!path.exists(), "refused before creating the file");
    // pcapng has 64-bit timestamps.
    let path = temp("late.pcapng");
    assert_eq!(write_pcap(&c, &path, CaptureFormat::PcapNg).unwrap(), 10);
    let recs = records(CaptureReader::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(recs[0].time_ns, c.start_ns);
}
