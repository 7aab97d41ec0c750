//! Generated sequential code against the reference interpreter on fw, nat and pol: a
//! synthetic in-memory trace of 1M packets (half of the later packets replies from WAN),
//! replayed through a fresh NF each iteration. Run:
//! `cargo bench -p maestro-generated-tests --bench seq_vs_interpreter`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{TraceConfig, TraceGen};

const PACKETS: u64 = 1_000_000;

fn trace() -> Vec<InputPacket> {
    let config = TraceConfig {
        packets: PACKETS,
        reply_ratio: 0.5,
        seed: 7,
        ..TraceConfig::default()
    };
    TraceGen::new(config).expect("valid trace config").collect()
}

fn seq_vs_interpreter(c: &mut Criterion) {
    let packets = trace();
    let mut group = c.benchmark_group("seq-vs-interpreter");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    for nf in ["fw", "nat", "pol"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../nfs")
            .join(nf);
        let program = maestro_analyzer::load_nf(&dir, &[]).expect("library NF loads");
        group.bench_function(format!("{nf}/interpreter"), |b| {
            b.iter_batched(
                || Interpreter::new(&program, InterpOptions::default()).expect("NF starts"),
                |mut interp| {
                    packets
                        .iter()
                        .filter(|p| interp.process(p).bytes().is_some())
                        .count()
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("{nf}/generated-seq"), |b| {
            b.iter_batched(
                || {
                    maestro_generated_tests::make(nf, "default", ParseMode::Strict)
                        .expect("generated NF starts")
                },
                |mut gen| {
                    packets
                        .iter()
                        .filter(|p| gen.process(p).bytes().is_some())
                        .count()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, seq_vs_interpreter);
criterion_main!(benches);
