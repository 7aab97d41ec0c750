//! fw, sequential, in memory: the generated code against a hand-written firewall on the
//! same trace (64-byte UDP frames, 40,000 uniform flows, half of the later packets
//! replies from WAN), one core, a fresh NF per iteration. Criterion's throughput is the
//! packets per second of one core. Run:
//! `cargo bench -p maestro-generated-tests --bench fw_seq -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use maestro_generated_tests::fw_default;
use maestro_generated_tests::handwritten_fw::Firewall;
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};

const PACKETS: u64 = 1_000_000;

fn trace() -> Vec<InputPacket> {
    let config = TraceConfig {
        packets: PACKETS,
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

fn fw_seq(c: &mut Criterion) {
    let packets = trace();
    let mut group = c.benchmark_group("fw-seq");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    group.bench_function("generated", |b| {
        b.iter_batched(
            || fw_default::Nf::with_shards(ParseMode::Strict, 1).expect("NF starts"),
            |mut nf| {
                let sent = packets
                    .iter()
                    .filter(|p| nf.process(p).bytes().is_some())
                    .count();
                (nf, sent)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("handwritten", |b| {
        b.iter_batched(
            || Firewall::new(65536, 100_000_000_000).expect("NF starts"),
            |mut nf| {
                let sent = packets
                    .iter()
                    .filter(|p| nf.process(p).bytes().is_some())
                    .count();
                (nf, sent)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, fw_seq);
criterion_main!(benches);
