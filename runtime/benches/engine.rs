//! The executors on the hand-written test firewall (`tests/common`): `sn` on 1 and 2
//! cores with a co-locating key, `locks` and `tm` on 1 and 2 cores on read-mostly
//! traffic. Packets per second through `Engine::process` (threads, per-core order, merge);
//! steering (`Engine::dispatch`, the NIC's job in hardware) is timed on its own. A fresh
//! engine per iteration, so that every iteration sees the same state history.
//! The official benches run generated NFs; these measure the runtime's own overhead.
//! `record/*`: what a `record` run does per chunk besides the NF: `run` collecting
//! observations, against `run_chunk_encoded` streaming patched entries into a record
//! writer (the driver's path), one engine for all iterations (state carries over).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maestro_runtime::exec::engine::{Engine, RunOptions, Schedule};
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::wire::{FrameEncoding, RecordFileWriter, RecordHeader, WireError};
use maestro_runtime::exec::Strategy;

const FW_RSS_JSON: &str = include_str!("../tests/common/fw-rss-4cores.json");

fn nic(cores: usize) -> NicModel {
    let cfg = NicConfig::from_json(FW_RSS_JSON).expect("fixture loads");
    NicModel::new(&cfg.with_cores(cores), cores).expect("valid config")
}

fn bench_engine(c: &mut Criterion) {
    let trace = common::read_mostly_trace(1, 512, 50_000);
    let mut group = c.benchmark_group("engine_read_mostly");
    group.throughput(Throughput::Elements(trace.len() as u64));
    group.sample_size(10);
    for strategy in [Strategy::Seq, Strategy::Sn, Strategy::Locks, Strategy::Tm] {
        let core_counts: &[usize] = if strategy == Strategy::Seq {
            &[1]
        } else {
            &[1, 2]
        };
        for &cores in core_counts {
            let opts = RunOptions {
                strategy,
                cores,
                schedule: Schedule::Threads { pin: true },
                ..RunOptions::default()
            };
            let name = format!("{}/{cores}", strategy.name());
            group.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        let e: Engine<common::TestFw> =
                            Engine::new(nic(cores), opts.clone()).expect("engine");
                        let d = e.dispatch(trace.clone());
                        (e, d)
                    },
                    |(mut e, d)| e.process(d),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    // The serial part of every run: steering and queueing on the calling thread.
    let e: Engine<common::TestFw> = Engine::new(
        nic(2),
        RunOptions {
            strategy: Strategy::Sn,
            cores: 2,
            ..RunOptions::default()
        },
    )
    .expect("engine");
    group.bench_function("dispatch/2", |b| {
        b.iter_batched(
            || trace.clone(),
            |packets| e.dispatch(packets),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_record(c: &mut Criterion) {
    let trace = common::read_mostly_trace(2, 512, 16_384);
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(trace.len() as u64));
    group.sample_size(20);
    for (strategy, cores) in [(Strategy::Seq, 1), (Strategy::Sn, 2)] {
        let opts = RunOptions {
            strategy,
            cores,
            schedule: Schedule::Threads { pin: false },
            ..RunOptions::default()
        };
        let name = format!("{}/{cores}", strategy.name());
        let mut e: Engine<common::TestFw> = Engine::new(nic(cores), opts.clone()).expect("engine");
        group.bench_function(format!("{name}/run"), |b| {
            b.iter(|| e.run(trace.clone()).observations.len())
        });
        let header = RecordHeader {
            nf: "fw".into(),
            strategy,
            cores: cores as u32,
            schedule: "threads-unpinned".into(),
            mutant: None,
            rtm: "not applicable".into(),
            parse_mode: "strict".into(),
            renamed: vec![],
            frames: FrameEncoding::InputPatches,
        };
        let mut w = RecordFileWriter::from_writer("sink", Box::new(std::io::sink()), &header)
            .expect("writer");
        let encoder = w.encoder();
        let mut memos = Vec::new();
        let mut e: Engine<common::TestFw> = Engine::new(nic(cores), opts).expect("engine");
        group.bench_function(format!("{name}/encoded"), |b| {
            b.iter(|| {
                e.run_chunk_encoded(&trace, &encoder, &mut memos)
                    .for_each(|_, encoded, record| w.entry_encoded(encoded, record, &[]))
                    .map_err(|e: WireError| e.to_string())
                    .expect("sink")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_engine, bench_record);
criterion_main!(benches);
