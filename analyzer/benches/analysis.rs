//! Times the whole analysis (symbolic execution, classes, access model, R1–R5, report) of
//! each library NF, and of all nine together. Loading and checking the source is outside
//! the timed loop. Run: `cargo bench -p maestro-analyzer --bench analysis`.

use criterion::{criterion_group, criterion_main, Criterion};
use maestro_analyzer::{analyze, load_nf, NfProgram};
use std::path::PathBuf;
use std::time::Duration;

const NFS: [&str; 9] = [
    "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
];

fn programs() -> Vec<(&'static str, NfProgram)> {
    NFS.iter()
        .map(|name| {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../nfs")
                .join(name);
            let prog = load_nf(&dir, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            (*name, prog)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let progs = programs();
    let mut group = c.benchmark_group("analyze");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, prog) in &progs {
        group.bench_function(*name, |b| {
            b.iter(|| analyze(prog).unwrap_or_else(|e| panic!("{name}: {e}")))
        });
    }
    group.bench_function("all-9", |b| {
        b.iter(|| {
            for (name, prog) in &progs {
                analyze(prog).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
