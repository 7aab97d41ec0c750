//! Memory does not grow with the trace: a long trace with every feature on (Zipf, churn,
//! keep-alives, replies, IMIX, statistics) streams to a pcapng writer on /dev/null while
//! the process's peak resident set (VmHWM) is read after 1M and after 4M packets.
//!
//! Memory is O(flows + churn × 2 × expiry): retired 5-tuples stay reserved for twice the
//! expiry. The 1M-packet mark (15 ms of trace time) is past that 10 ms window, so from
//! there on nothing may grow.
//!
//! Alone in its test binary, so no other test's allocations blur the figure. Linux only
//! (it needs /proc/self/status); elsewhere it says so and passes.

use std::path::Path;

use maestro_runtime::capture::{CaptureFormat, CaptureWriter};
use maestro_trafficgen::{FlowSpec, SizeMix, TraceConfig, TraceGen};

/// Peak resident set size of this process, in kB.
fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn peak_memory_is_flat_from_1m_to_4m_packets() {
    let null = Path::new("/dev/null");
    if vm_hwm_kb().is_none() || !null.exists() {
        eprintln!("no /proc/self/status or /dev/null: memory test skipped");
        return;
    }
    let config = TraceConfig {
        flows: FlowSpec {
            count: 10_000,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        packets: 4_000_000,
        zipf_s: 1.26,
        sizes: SizeMix::Imix,
        rate_bps: Some(200_000_000_000),
        reply_ratio: 0.3,
        expiry_ns: Some(5_000_000),
        churn_fpm: 200_000_000,
        seed: 1,
        ..TraceConfig::default()
    };
    let mut gen = TraceGen::new(config.clone()).unwrap().with_stats();
    let mut writer =
        CaptureWriter::create(null, CaptureFormat::PcapNg, config.port_count().unwrap()).unwrap();
    let mut buf = Vec::new();
    let mut at_1m = 0;
    let mut n = 0u64;
    while let Some((port, time)) = gen.next_into(&mut buf) {
        writer.write(port, time, &buf).unwrap();
        n += 1;
        if n == 1_000_000 {
            at_1m = vm_hwm_kb().unwrap();
        }
    }
    writer.finish().unwrap();
    let at_4m = vm_hwm_kb().unwrap();
    let stats = gen.stats().unwrap();
    eprintln!(
        "VmHWM after 1M packets: {at_1m} kB, after 4M: {at_4m} kB ({} flows, {} replacements)",
        stats.flows, stats.replacements
    );
    assert_eq!(n, 4_000_000);
    // Hundreds of thousands of flows come and go; the resident peak must not follow.
    assert!(stats.replacements > 100_000, "{}", stats.replacements);
    assert!(
        at_4m.saturating_sub(at_1m) < 2_048,
        "peak RSS grew from {at_1m} kB to {at_4m} kB between 1M and 4M packets"
    );
}
