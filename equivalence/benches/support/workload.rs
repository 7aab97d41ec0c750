//! The checker benchmark's workload, shared by `benches/checker.rs` (criterion) and
//! `examples/checker_cpu.rs` (wall, CPU and page faults per iteration): a 1M-packet
//! synthetic fw trace (40,000 flows, half of the later packets replies) checked by the
//! interpreter, the generated `seq` and `sn` on 2 cores, and the comparisons. The
//! generated binary is built before (cached in the target directory).

use maestro_build::Builder;
use maestro_equivalence::report::{SourceKind, SourceReport, VerifyReport};
use maestro_equivalence::verify::{Source, Verifier, VerifyOptions};
use maestro_runtime::exec::Strategy;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};

pub const PACKETS: u64 = 1_000_000;

/// The prepared verifier and trace; dropped, it removes its scratch folder.
pub struct Workload {
    verifier: Verifier,
    source: Source,
    work: std::path::PathBuf,
}

impl Workload {
    pub fn prepare() -> Workload {
        // As `maestro verify` does.
        maestro_runtime::memory::retain_freed_memory();
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut opts = VerifyOptions::new(manifest.join("../nfs/fw"));
        opts.strategies = vec![Strategy::Sn];
        opts.cores = 2;
        opts.seeds = 0;
        let builder =
            Builder::new(Some(manifest.join("../target/maestro-cache-bench"))).with_progress(false);
        let work = opts.work_dir.clone();
        let verifier = Verifier::prepare(opts, &builder, Box::new(|_| {})).expect("fw builds");
        let base = TraceConfig::default();
        let config = TraceConfig {
            packets: PACKETS,
            seed: 7,
            reply_ratio: 0.5,
            flows: FlowSpec {
                count: 40_000,
                ..base.flows.clone()
            },
            ..base
        };
        let packets: Vec<_> = TraceGen::new(config).expect("trace").collect();
        let source = Source {
            report: SourceReport {
                name: "synthetic:1M".into(),
                kind: SourceKind::Synthetic,
                purpose: "benchmark".into(),
                packets: packets.len() as u64,
                refused: 0,
                refused_reasons: Vec::new(),
            },
            packets,
        };
        Workload {
            verifier,
            source,
            work,
        }
    }

    /// One check of the trace, as `maestro verify` makes it; panics on a divergence.
    pub fn check(&self) -> VerifyReport {
        let mut report = VerifyReport::new("fw", false);
        self.verifier
            .check_source(&self.source, &[Strategy::Sn], &mut report)
            .expect("checks");
        assert!(report.strategies.iter().all(|r| r.failures == 0));
        report
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
