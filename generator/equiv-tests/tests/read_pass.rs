//! The read-only pass of the `locks` strategy (`process_read`) is exact, without any
//! engine: two instances A and B of every variant run side by side. For each packet A
//! first tries `process_read` with a fresh log: when it succeeds, its observation must
//! be B's `process` observation, and A then applies the logged refreshes
//! (`apply_refresh`), which must leave it in B's state (later packets check that);
//! when it asks for the write lock, A runs `process`. Observations and fault counts
//! must match throughout. This checks the read pass's decisions, its write detection
//! (expiry included), and the refresh log, exactly.

mod common;

use common::{captures, program, sides, variant_odd, variant_trace, MODES};
use maestro_generated_tests::{make, VARIANTS};
use maestro_runtime::exec::RefreshLog;
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;

/// How a trace went: packets decided by the read pass, packets that needed the write
/// pass, refreshes applied from logs.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    read: u64,
    write: u64,
    refreshes: u64,
}

fn side_by_side(
    nf: &str,
    variant: &str,
    mode: ParseMode,
    what: &str,
    packets: &[InputPacket],
) -> Tally {
    let mut a = make(nf, variant, mode).expect("generated NF starts");
    let mut b = make(nf, variant, mode).expect("generated NF starts");
    let mut tally = Tally::default();
    for (i, p) in packets.iter().enumerate() {
        let want = b.process(p);
        let mut log = RefreshLog::default();
        let got = match a.process_read(p, &mut log) {
            Ok(obs) => {
                tally.read += 1;
                for r in log.entries() {
                    a.apply_refresh(r);
                    tally.refreshes += 1;
                }
                obs
            }
            Err(_) => {
                tally.write += 1;
                a.process(p)
            }
        };
        assert_eq!(
            got, want,
            "{nf} ({variant}, {mode:?}) on {what}: packet {i} (port {}, t={}) differs",
            p.port, p.time_ns
        );
    }
    assert_eq!(
        a.fault_count(),
        b.fault_count(),
        "{nf} ({variant}, {mode:?}) on {what}: fault counts differ (a read pass hid a fault)"
    );
    tally
}

#[test]
fn the_read_pass_is_exact_on_synthetic_traces() {
    let mut totals = std::collections::HashMap::new();
    for (nf, variant, _) in VARIANTS {
        let trace = variant_trace(nf, variant, 11, 6_000);
        for mode in MODES {
            let t = side_by_side(nf, variant, mode, "a synthetic trace", &trace);
            totals.insert((*nf, *variant, mode), t);
        }
    }
    // The test has teeth only if both outcomes happen: established flows are decided by
    // the read pass (with refreshes), new ones need the write pass.
    let fw = totals[&("fw", "default", ParseMode::Strict)];
    assert!(
        fw.read > 1_000 && fw.write > 100 && fw.refreshes > 1_000,
        "{fw:?}"
    );
    let nop = totals[&("nop", "default", ParseMode::Strict)];
    assert_eq!(nop.write, 0, "nop never writes: {nop:?}");
    // Small tables expire all the time: expiry must send packets to the write pass.
    let small = totals[&("fw", "small", ParseMode::Strict)];
    assert!(small.write > fw.write, "{small:?} vs {fw:?}");
    // The connection limiter refreshes its sketch from the read pass.
    let cl = totals[&("cl", "default", ParseMode::Strict)];
    assert!(cl.read > 0 && cl.refreshes > 0, "{cl:?}");
}

#[test]
fn the_read_pass_is_exact_on_odd_frames() {
    for (nf, variant, _) in VARIANTS {
        let odd = variant_odd(nf, variant);
        for mode in MODES {
            side_by_side(nf, variant, mode, "odd frames", &odd);
        }
    }
}

#[test]
fn the_read_pass_is_exact_on_the_shared_captures() {
    for (nf, variant, sets) in VARIANTS {
        let (lan, wan) = sides(&program(nf, sets));
        for (name, packets) in captures(lan, wan) {
            side_by_side(nf, variant, ParseMode::Strict, &name, &packets);
        }
    }
}

#[test]
fn a_full_refresh_log_asks_for_the_write_lock() {
    // Every established-flow packet of fw refreshes: with a log of one entry, the
    // second read-only packet between writes must fall back to the write pass.
    let trace = variant_trace("fw", "default", 11, 2_000);
    let mut a = make("fw", "default", ParseMode::Strict).expect("starts");
    let mut b = make("fw", "default", ParseMode::Strict).expect("starts");
    let mut log = RefreshLog::new(1);
    let mut full = 0;
    for p in &trace {
        let want = b.process(p);
        let mark = log.len();
        let got = match a.process_read(p, &mut log) {
            Ok(obs) => obs,
            Err(_) => {
                if log.len() == 1 && mark == 1 {
                    full += 1;
                }
                log.truncate(mark);
                // The writer applies the logged refreshes first, as the engine does.
                for r in log.drain().collect::<Vec<_>>() {
                    a.apply_refresh(&r);
                }
                a.process(p)
            }
        };
        assert_eq!(got, want);
    }
    assert!(full > 0, "the one-entry log never filled");
}
