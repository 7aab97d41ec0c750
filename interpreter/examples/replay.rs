//! Replays a synthetic trace through a library NF, for profiling the interpreter
//! (callgrind, perf, `/usr/bin/time`) outside criterion.
//!
//! `cargo run --release -p maestro-interpreter --example replay -- [--into] fw 100000
//! [flows [packets/s [udp share [seed [zipf]]]]]`
//! With `--into` each packet goes through `Interpreter::process_into` with one reused
//! frame buffer (as the checker's compact reference does) instead of `process`; the
//! printed checksum is the same either way.
//! The trace is the benchmark's (40,000 uniform UDP flows, half of the later packets
//! replies from WAN). Prints how many packets left and a checksum of the outputs, so two
//! builds can be compared for identical behaviour.

use std::path::PathBuf;

use maestro_interpreter::{Action, InterpOptions, Interpreter};
use maestro_runtime::{InputPacket, Observation};
use maestro_trafficgen::{TraceConfig, TraceGen};

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let into = args.next_if(|a| a == "--into").is_some();
    let nf = args.next().unwrap_or_else(|| "fw".to_string());
    let packets: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    // Optional knobs, to vary the trace when comparing builds: flows, packets per
    // second (slow rates make flows expire), UDP share, seed, Zipf exponent.
    let mut num = || args.next().and_then(|s| s.parse::<f64>().ok());
    let base = TraceConfig::default();
    let (flows, rate, udp, seed, zipf) = (num(), num(), num(), num(), num());
    let config = TraceConfig {
        packets,
        reply_ratio: 0.5,
        seed: seed.map_or(7, |s| s as u64),
        rate_pps: rate.map_or(base.rate_pps, |r| r as u64),
        zipf_s: zipf.unwrap_or(base.zipf_s),
        flows: maestro_trafficgen::FlowSpec {
            count: flows.map_or(base.flows.count, |f| f as u32),
            udp_share: udp.unwrap_or(base.flows.udp_share),
            ..base.flows.clone()
        },
        ..base
    };
    let trace: Vec<InputPacket> = match TraceGen::new(config) {
        Ok(g) => g.collect(),
        Err(e) => {
            eprintln!("bad trace config: {e}");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfs")
        .join(&nf);
    let program = match maestro_analyzer::load_nf(&dir, &[]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot load {}: {e}", dir.display());
            std::process::exit(2);
        }
    };
    let mut interp = match Interpreter::new(&program, InterpOptions::default()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("cannot start {nf}: {e}");
            std::process::exit(2);
        }
    };
    let start = std::time::Instant::now();
    let (forwarded, sum) = if into {
        run_into(&mut interp, &trace)
    } else {
        run(&mut interp, &trace)
    };
    let elapsed = start.elapsed();
    println!(
        "{nf}: {packets} packets, {forwarded} left, outputs {sum:016x}, {} faults, {:.1} ns/packet",
        interp.fault_count(),
        elapsed.as_nanos() as f64 / packets.max(1) as f64
    );
}

/// The measured part (callgrind: `--toggle-collect=replay::run
/// --toggle-collect=replay::fold`, which leaves the checksum out). Each observation is
/// dropped at once, as the benchmark does.
#[inline(never)]
fn run(interp: &mut Interpreter, trace: &[InputPacket]) -> (u64, u64) {
    let mut sum = 0xcbf2_9ce4_8422_2325u64;
    let mut forwarded = 0u64;
    for p in trace {
        let o = interp.process(p);
        let (tag, bytes) = match &o {
            Observation::Drop => (0u64, &[][..]),
            Observation::Forward { port, bytes } => (1 + *port as u64, &bytes[..]),
            Observation::Flood { bytes } => (u64::MAX, &bytes[..]),
        };
        forwarded += fold(&mut sum, tag, bytes);
    }
    (forwarded, sum)
}

/// `run` through `process_into` with one reused frame buffer (callgrind:
/// `--toggle-collect=replay::run_into --toggle-collect=replay::fold`).
#[inline(never)]
fn run_into(interp: &mut Interpreter, trace: &[InputPacket]) -> (u64, u64) {
    let mut sum = 0xcbf2_9ce4_8422_2325u64;
    let mut forwarded = 0u64;
    let mut frame = Vec::new();
    for p in trace {
        let tag = match interp.process_into(p, &mut frame) {
            Action::Drop => 0u64,
            Action::Forward(port) => 1 + port as u64,
            Action::Flood => u64::MAX,
        };
        forwarded += fold(&mut sum, tag, &frame);
    }
    (forwarded, sum)
}

/// Folds an action tag and output frame into an FNV-1a checksum over ports and bytes
/// (equal across builds and modes iff the outputs are); 1 if the packet left the NF.
#[inline(never)]
fn fold(sum: &mut u64, tag: u64, bytes: &[u8]) -> u64 {
    for b in tag.to_le_bytes().iter().chain(bytes) {
        *sum = (*sum ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    (tag != 0) as u64
}
