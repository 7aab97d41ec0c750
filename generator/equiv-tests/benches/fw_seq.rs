//! fw, sequential, in memory: the generated code against a hand-written firewall on the
//! same trace (64-byte UDP frames, 40,000 uniform flows, half of the later packets
//! replies from WAN), one core, a fresh NF per iteration, each timed run right after an
//! untimed run of the other firewall ([`alternating`]). Criterion's throughput is the
//! packets per second of one core. Run:
//! `cargo bench -p maestro-generated-tests --bench fw_seq -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use maestro_generated_tests::fw_default;
use maestro_generated_tests::handwritten_fw::Firewall;
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};
use std::time::{Duration, Instant};

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

/// Packets `process` forwarded: what both firewalls compute, so neither loop is optimised
/// away.
fn run<N>(nf: &mut N, packets: &[InputPacket], process: fn(&mut N, &InputPacket) -> bool) -> usize {
    packets.iter().filter(|p| process(nf, p)).count()
}

fn generated(nf: &mut fw_default::Nf, p: &InputPacket) -> bool {
    nf.process(p).bytes().is_some()
}

fn handwritten(nf: &mut Firewall, p: &InputPacket) -> bool {
    nf.process(p).bytes().is_some()
}

fn new_generated() -> fw_default::Nf {
    fw_default::Nf::with_shards(ParseMode::Strict, 1).expect("NF starts")
}

fn new_handwritten() -> Firewall {
    Firewall::new(65536, 100_000_000_000).expect("NF starts")
}

/// How to make a firewall and run one packet through it.
type MakeAndRun<N> = (fn() -> N, fn(&mut N, &InputPacket) -> bool);

/// Times `timed` on a fresh NF, each run right after an untimed run of `other` on its own
/// fresh NF, so that both firewalls find the allocator in the same state (tables just
/// freed). Timed one after the other instead, whichever criterion runs second inherits
/// warm pages and looks up to 10% faster. Construction and drop are not timed.
fn alternating<A: 'static, B: 'static>(
    packets: &[InputPacket],
    timed: MakeAndRun<A>,
    other: MakeAndRun<B>,
) -> impl FnMut(u64) -> Duration + '_ {
    move |iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let mut o = (other.0)();
            black_box(run(&mut o, packets, other.1));
            drop(o);
            let mut nf = (timed.0)();
            let start = Instant::now();
            let sent = run(&mut nf, packets, timed.1);
            total += start.elapsed();
            black_box(sent);
            drop(nf);
        }
        total
    }
}

fn fw_seq(c: &mut Criterion) {
    let packets = trace();
    let mut group = c.benchmark_group("fw-seq");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    let g = (
        new_generated as fn() -> _,
        generated as fn(&mut _, &_) -> bool,
    );
    let h = (
        new_handwritten as fn() -> _,
        handwritten as fn(&mut _, &_) -> bool,
    );
    group.bench_function("generated", |b| b.iter_custom(alternating(&packets, g, h)));
    group.bench_function("handwritten", |b| {
        b.iter_custom(alternating(&packets, h, g))
    });
    group.finish();
}

criterion_group!(benches, fw_seq);
criterion_main!(benches);
