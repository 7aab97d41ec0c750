//! Solving time per NF with the GF(2) engine (analysis done once, outside the timing).

use criterion::{criterion_group, criterion_main, Criterion};
use maestro_rss::{solve, SolveOptions};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("solve");
    for nf in ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"] {
        let prog = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[]).expect("library NF");
        let analysis = maestro_analyzer::analyze(&prog).expect("analysis");
        let opts = SolveOptions::default();
        g.bench_function(nf, |b| {
            b.iter(|| solve(&analysis, &opts).expect("solvable"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
