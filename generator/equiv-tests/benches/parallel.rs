//! fw through the runtime's executors on 1 and 2 cores (OS threads, pinned): `sn` with
//! the RSS configuration the solver gives fw, `locks` and `tm`. Each iteration starts a
//! fresh engine, warms its table with 200,000 packets (every one of the 40,000 uniform
//! flows is seen, except a handful), then times only `Engine::process` of the next
//! 500,000 packets, dispatched beforehand: read-mostly traffic (more than 99% of the
//! packets belong to established flows; the bench prints the exact share of writes).
//! 64-byte UDP frames, half of the later packets replies. Run:
//! `cargo bench -p maestro-generated-tests --bench parallel -- --warm-up-time 1 --measurement-time 3`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maestro_analyzer::AnalyzeOptions;
use maestro_generated_tests::fw_default::Nf;
use maestro_runtime::exec::engine::{Dispatched, Engine, RunOptions, Schedule};
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::Strategy;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};

const WARM: usize = 200_000;
const TIMED: usize = 500_000;

fn trace() -> Vec<InputPacket> {
    let config = TraceConfig {
        packets: (WARM + TIMED) as u64,
        frame_size: 64,
        reply_ratio: 0.5,
        seed: 7,
        flows: FlowSpec {
            count: 40_000,
            ..FlowSpec::default()
        },
        ..TraceConfig::default()
    };
    TraceGen::new(config).expect("valid trace config").collect()
}

/// fw's RSS configuration from its analysis (co-locates a flow and its replies).
fn fw_nic() -> NicConfig {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../nfs/fw");
    let program = maestro_analyzer::load_nf(&dir, &[]).expect("fw loads");
    let analysis =
        maestro_analyzer::analyze_with(&program, &AnalyzeOptions::default()).expect("analyzes");
    let opts = maestro_rss::SolveOptions {
        cores: 2,
        ..maestro_rss::SolveOptions::default()
    };
    let rss = maestro_rss::solve(&analysis, &opts).expect("RSS solves");
    NicConfig::from_json(&maestro_rss::export::json(&rss)).expect("NIC config reads")
}

fn engine(nic: &NicConfig, strategy: Strategy, cores: usize) -> Engine<Nf> {
    let model = NicModel::new(&nic.with_cores(cores), cores).expect("NIC model");
    let opts = RunOptions {
        strategy,
        cores,
        schedule: Schedule::Threads { pin: true },
        ..RunOptions::default()
    };
    Engine::new(model, opts).expect("engine starts")
}

fn parallel(c: &mut Criterion) {
    let packets = trace();
    let nic = fw_nic();
    let mut group = c.benchmark_group("fw-parallel");
    group.throughput(Throughput::Elements(TIMED as u64));
    group.sample_size(10);
    for strategy in [Strategy::Sn, Strategy::Locks, Strategy::Tm] {
        for cores in [1, 2] {
            // The chunks are dispatched once; iterations take clones.
            let e = engine(&nic, strategy, cores);
            let warm: Dispatched = e.dispatch(packets[..WARM].to_vec());
            let timed: Dispatched = e.dispatch(packets[WARM..].to_vec());
            // What the timed chunk does, for the report.
            let mut probe = engine(&nic, strategy, cores);
            probe.process(warm.clone());
            let before = probe.stats().total();
            probe.process(timed.clone());
            let after = probe.stats().total();
            eprintln!(
                "fw {} on {cores} cores: timed chunk {} packets, {} under the write lock, {} read passes, {} tm fallbacks, RTM {:?}",
                strategy.name(),
                after.packets - before.packets,
                after.writes - before.writes,
                after.read_passes - before.read_passes,
                after.tm_fallbacks - before.tm_fallbacks,
                probe.rtm_status(),
            );
            group.bench_function(format!("{}/{cores}-cores", strategy.name()), |b| {
                b.iter_batched(
                    || {
                        let mut e = engine(&nic, strategy, cores);
                        e.process(warm.clone());
                        (e, timed.clone())
                    },
                    |(mut e, d)| {
                        let out = e.process(d);
                        (e, out)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parallel);
criterion_main!(benches);
