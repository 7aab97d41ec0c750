//! Solving time per NF with each engine, and the Z3 co-location proof of the result
//! (analysis done once, outside the timing). Default options: 512-entry RETA, 52-byte
//! keys, 16 cores, 32 samples (both engines stop early once a key set reaches the best
//! possible score).

use criterion::{criterion_group, criterion_main, Criterion};
use maestro_rss::{solve, z3check, Engine, SolveOptions};

const NFS: [&str; 7] = ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"];

fn bench(c: &mut Criterion) {
    let analyses: Vec<_> = NFS
        .iter()
        .map(|nf| {
            let prog =
                maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[]).expect("library NF");
            (*nf, maestro_analyzer::analyze(&prog).expect("analysis"))
        })
        .collect();
    let mut g = c.benchmark_group("solve");
    for (nf, analysis) in &analyses {
        let opts = SolveOptions::default();
        g.bench_function(*nf, |b| {
            b.iter(|| solve(analysis, &opts).expect("solvable"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("solve-z3");
    g.sample_size(10);
    for (nf, analysis) in &analyses {
        let opts = SolveOptions {
            engine: Engine::Z3,
            ..SolveOptions::default()
        };
        g.bench_function(*nf, |b| {
            b.iter(|| solve(analysis, &opts).expect("solvable"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("prove");
    g.sample_size(10);
    for (nf, analysis) in &analyses {
        let cfg = solve(analysis, &SolveOptions::default()).expect("solvable");
        g.bench_function(*nf, |b| {
            b.iter(|| z3check::prove(analysis, &cfg).expect("provable"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
