//! Trace files, one per distinct trace configuration, cached in the sweep's `traces/`.
//!
//! Points that differ only in NF, strategy or cores replay the same file: fw and nat
//! (both LAN-initiated, same expiry) share every trace, and a rerun into the same folder
//! regenerates nothing. A file's name carries its parameters and a digest of the whole
//! `TraceConfig`; the config sits beside it as JSON and must match exactly for reuse.

use std::path::{Path, PathBuf};

use maestro_runtime::capture::CaptureFormat;
use maestro_trafficgen::{FlowSpec, SizeMix, TraceConfig};

use crate::config::{FrameSize, SweepConfig};
use crate::LabError;

/// The knobs a point's trace depends on, besides the sweep-wide ones.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpec {
    pub size: FrameSize,
    pub churn_fpm: u64,
    pub zipf: f64,
    /// Where flows start (the NF's LAN port, or its WAN port for WAN-facing NFs).
    pub ingress_port: u16,
    /// The other side (replies).
    pub egress_port: u16,
    /// The NF's flow expiry; the generator needs it with churn (keep-alives, no reuse).
    pub expiry_ns: u64,
}

/// The generator's configuration for `spec` under `sweep`.
pub fn trace_config(sweep: &SweepConfig, spec: &TraceSpec) -> TraceConfig {
    let (frame_size, sizes) = match spec.size {
        FrameSize::Fixed(n) => (n, SizeMix::Fixed),
        FrameSize::Imix => (64, SizeMix::Imix),
    };
    TraceConfig {
        flows: FlowSpec {
            count: sweep.flows,
            ..FlowSpec::default()
        },
        seed: sweep.seed,
        packets: sweep.packets,
        frame_size,
        rate_pps: sweep.rate_pps,
        reply_ratio: sweep.reply_ratio,
        lan_port: spec.ingress_port,
        wan_port: spec.egress_port,
        zipf_s: spec.zipf,
        sizes,
        rate_bps: sweep.bit_rate,
        churn_fpm: spec.churn_fpm,
        // Without churn no expiry is needed, and leaving it out lets NFs with different
        // expiries share the trace.
        expiry_ns: (spec.churn_fpm > 0).then_some(spec.expiry_ns),
        ..TraceConfig::default()
    }
}

/// A readable file stem: `64B-churn0-zipf0-in0-<digest>`.
pub fn trace_name(spec: &TraceSpec, config: &TraceConfig) -> String {
    let size = match spec.size {
        FrameSize::Fixed(n) => format!("{n}B"),
        FrameSize::Imix => "imix".into(),
    };
    let json = serde_json::to_string(config).unwrap_or_default();
    format!(
        "{size}-churn{}-zipf{}-in{}-{:016x}",
        spec.churn_fpm,
        spec.zipf,
        spec.ingress_port,
        fnv1a(json.as_bytes())
    )
}

/// 64-bit FNV-1a: a stable digest (std's hasher is not stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The trace file for `config` in `dir`: reused when an identical one is there, else
/// generated (into a temporary name, then renamed, so an interrupted write is never
/// mistaken for a trace). Returns the path and whether it was generated now.
pub fn ensure_trace(
    dir: &Path,
    name: &str,
    config: &TraceConfig,
) -> Result<(PathBuf, bool), LabError> {
    std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    let path = dir.join(format!("{name}.pcapng"));
    let meta = dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(config).map_err(|e| LabError::Parse {
        path: meta.clone(),
        reason: e.to_string(),
    })?;
    if path.is_file() && std::fs::read_to_string(&meta).is_ok_and(|m| m == json) {
        return Ok((path, false));
    }
    let partial = dir.join(format!("{name}.pcapng.partial-{}", std::process::id()));
    let written = maestro_trafficgen::write_pcap(config, &partial, CaptureFormat::PcapNg);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(LabError::Trace {
            name: name.to_string(),
            source,
        });
    }
    std::fs::rename(&partial, &path).map_err(LabError::io(&path))?;
    std::fs::write(&meta, json).map_err(LabError::io(&meta))?;
    Ok((path, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TraceSpec {
        TraceSpec {
            size: FrameSize::Fixed(64),
            churn_fpm: 0,
            zipf: 0.0,
            ingress_port: 0,
            egress_port: 1,
            expiry_ns: 100_000_000_000,
        }
    }

    #[test]
    fn names_follow_the_config() {
        let sweep = SweepConfig::new(Vec::new(), "/tmp/unused");
        let a = trace_config(&sweep, &spec());
        assert_eq!(a.expiry_ns, None);
        let mut s2 = spec();
        s2.expiry_ns = 1;
        // Expiry only matters with churn: same trace.
        assert_eq!(
            trace_name(&spec(), &a),
            trace_name(&s2, &trace_config(&sweep, &s2))
        );
        s2.churn_fpm = 1000;
        let b = trace_config(&sweep, &s2);
        assert_eq!(b.expiry_ns, Some(1));
        assert_ne!(trace_name(&spec(), &a), trace_name(&s2, &b));
        let imix = TraceSpec {
            size: FrameSize::Imix,
            ..spec()
        };
        let c = trace_config(&sweep, &imix);
        assert_eq!(c.sizes, SizeMix::Imix);
        assert!(trace_name(&imix, &c).starts_with("imix-churn0-zipf0-in0-"));
    }

    #[test]
    fn cache_reuses_identical_traces() {
        let dir = tempfile::tempdir().unwrap();
        let mut sweep = SweepConfig::new(Vec::new(), dir.path());
        sweep.packets = 500;
        let cfg = trace_config(&sweep, &spec());
        let name = trace_name(&spec(), &cfg);
        let (p1, made1) = ensure_trace(dir.path(), &name, &cfg).unwrap();
        let (p2, made2) = ensure_trace(dir.path(), &name, &cfg).unwrap();
        assert!(made1 && !made2);
        assert_eq!(p1, p2);
        assert!(std::fs::metadata(&p1).unwrap().len() > 500 * 60);
    }
}
