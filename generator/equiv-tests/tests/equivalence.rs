//! Generated sequential code equals the reference interpreter, packet by packet, on every
//! library NF: synthetic traces (with default and with tiny capacities and timeouts, so
//! tables fill and entries expire), odd and random frames, and every shared capture.
//! Fault counts must match too.

mod common;

use common::{captures, program, sides, variant_odd, variant_sets, variant_trace, MODES};
use maestro_generated_tests::{make, VARIANTS};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;

/// Replays packets through both and asserts equal observations and fault counts.
fn assert_equivalent(
    nf: &str,
    variant: &str,
    mode: ParseMode,
    what: &str,
    packets: &[InputPacket],
) {
    let prog = program(nf, variant_sets(nf, variant));
    let mut interp = Interpreter::new(
        &prog,
        InterpOptions {
            parse_mode: mode,
            ..InterpOptions::default()
        },
    )
    .expect("interpreter starts");
    let mut gen = make(nf, variant, mode).expect("generated NF starts");
    for (i, p) in packets.iter().enumerate() {
        let want = interp.process(p);
        let got = gen.process(p);
        assert_eq!(
            got,
            want,
            "{nf} ({variant}, {mode:?}) on {what}: packet {i} ({} bytes, port {}, t={}) differs",
            p.data.len(),
            p.port,
            p.time_ns
        );
    }
    assert_eq!(
        gen.fault_count(),
        interp.fault_count(),
        "{nf} ({variant}, {mode:?}) on {what}: fault counts differ"
    );
}

#[test]
fn every_generated_variant_matches_the_interpreter_on_synthetic_traces() {
    for (nf, variant, _) in VARIANTS {
        let trace = variant_trace(nf, variant, 11, 6_000);
        for mode in MODES {
            assert_equivalent(nf, variant, mode, "a synthetic trace", &trace);
        }
    }
}

#[test]
fn every_generated_variant_matches_the_interpreter_on_odd_frames() {
    for (nf, variant, _) in VARIANTS {
        let odd = variant_odd(nf, variant);
        for mode in MODES {
            assert_equivalent(nf, variant, mode, "odd frames", &odd);
        }
    }
}

#[test]
fn every_generated_variant_matches_the_interpreter_on_the_shared_captures() {
    for (nf, variant, sets) in VARIANTS {
        let (lan, wan) = sides(&program(nf, sets));
        for (name, packets) in captures(lan, wan) {
            for mode in MODES {
                assert_equivalent(nf, variant, mode, &name, &packets);
            }
        }
    }
}
