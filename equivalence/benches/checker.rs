//! Throughput of the checker itself: one 1M-packet synthetic fw trace through the
//! reference interpreter, the generated `seq` and `sn` on 2 cores (real threads), and
//! the comparisons, end to end. The one-time build of the generated binary happens before
//! timing (cached in the target directory).
//!
//! What one iteration does (`Verifier::check_source`): the interpreter thread starts and
//! the packet file is written; both binaries run at once beside it (separate
//! processes); each record file is read as its run ends and compared once the reference
//! is ready. The machine's load changes the number a lot: report it with the result.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maestro_build::Builder;
use maestro_equivalence::report::{SourceKind, SourceReport, VerifyReport};
use maestro_equivalence::verify::{Source, Verifier, VerifyOptions};
use maestro_runtime::exec::Strategy;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};

const PACKETS: u64 = 1_000_000;

fn checker(c: &mut Criterion) {
    // As `maestro verify` does.
    maestro_runtime::memory::retain_freed_memory();
    let nf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nfs/fw");
    let mut opts = VerifyOptions::new(&nf);
    opts.strategies = vec![Strategy::Sn];
    opts.cores = 2;
    opts.seeds = 0;
    let cache =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/maestro-cache-bench");
    let builder = Builder::new(Some(cache)).with_progress(false);
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
    let mut group = c.benchmark_group("checker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PACKETS));
    group.bench_function("fw_1M_interp_seq_sn2_compare", |b| {
        b.iter(|| {
            let mut report = VerifyReport::new("fw", false);
            verifier
                .check_source(&source, &[Strategy::Sn], &mut report)
                .expect("checks");
            assert!(report.strategies.iter().all(|r| r.failures == 0));
            report
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&work);
}

criterion_group!(benches, checker);
criterion_main!(benches);
