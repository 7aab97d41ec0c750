//! Throughput of the checker itself: one 1M-packet synthetic fw trace through the
//! reference interpreter, the generated `seq` and `sn` on 2 cores (real threads), and
//! the comparisons, end to end (`support/workload.rs`). The one-time build of the
//! generated binary happens before timing.
//!
//! What one iteration does (`Verifier::check_source`): the interpreter thread starts and
//! the packet file is written; both binaries run at once beside it (separate
//! processes); each record file is read as its run ends and compared once the reference
//! is ready. The machine's load changes the number a lot: report it with the result.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod support {
    pub mod workload;
}
use support::workload::{Workload, PACKETS};

fn checker(c: &mut Criterion) {
    let workload = Workload::prepare();
    let mut group = c.benchmark_group("checker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PACKETS));
    group.bench_function("fw_1M_interp_seq_sn2_compare", |b| {
        b.iter(|| workload.check())
    });
    group.finish();
}

criterion_group!(benches, checker);
criterion_main!(benches);
