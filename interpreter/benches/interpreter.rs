//! Interpreter throughput on the library firewall and NAT: a synthetic in-memory trace of
//! 1M packets (40,000 uniform UDP flows, 64-byte frames, half of the later packets
//! replies from WAN), replayed through a fresh interpreter each iteration.
//!
//! This is the baseline generated code must beat. Run: `cargo bench -p maestro-interpreter`.
//! `*/1M-packets-into` is the same through `process_into` with one reused frame buffer,
//! as the equivalence checker's reference runs.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maestro_interpreter::{Action, InterpOptions, Interpreter};
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

fn interpreter_throughput(c: &mut Criterion) {
    let packets = trace();
    let mut group = c.benchmark_group("interpreter");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    for nf in ["fw", "nat"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../nfs")
            .join(nf);
        let program = maestro_analyzer::load_nf(&dir, &[]).expect("library NF loads");
        group.bench_function(format!("{nf}/1M-packets"), |b| {
            b.iter_batched(
                || Interpreter::new(&program, InterpOptions::default()).expect("NF starts"),
                |mut interp| {
                    let mut forwarded = 0u64;
                    for p in &packets {
                        if interp.process(p).bytes().is_some() {
                            forwarded += 1;
                        }
                    }
                    forwarded
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("{nf}/1M-packets-into"), |b| {
            b.iter_batched(
                || Interpreter::new(&program, InterpOptions::default()).expect("NF starts"),
                |mut interp| {
                    let mut forwarded = 0u64;
                    let mut frame = Vec::new();
                    for p in &packets {
                        if interp.process_into(p, &mut frame) != Action::Drop {
                            forwarded += 1;
                        }
                    }
                    forwarded
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, interpreter_throughput);
criterion_main!(benches);
