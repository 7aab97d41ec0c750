//! `maestro verify` end to end on the NF library, through the generated binaries (built
//! once into the test target's cache): the correct parallelizations of all 9 NFs show no
//! unexplained divergence on synthetic traffic, and adversarial traffic kills every
//! built-in mutant that applies to any of them.

use std::path::PathBuf;

use maestro_build::Builder;
use maestro_equivalence::report::{SourceKind, Verdict, VerifyReport};
use maestro_equivalence::verify::{Verifier, VerifyOptions};

fn builder() -> Builder {
    Builder::new(Some(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
    ))
    .with_progress(false)
}

fn nf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfs")
        .join(name)
}

fn verify(opts: VerifyOptions) -> VerifyReport {
    let name = opts.nf.display().to_string();
    let v = Verifier::prepare(opts, &builder(), Box::new(|_| {}))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    v.run().unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_library_nf_is_equivalent_on_synthetic_traffic() {
    for name in [
        "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
    ] {
        let mut opts = VerifyOptions::new(nf(name));
        opts.seeds = 1;
        opts.work_dir =
            std::env::temp_dir().join(format!("maestro-verify-test-{}-{name}", std::process::id()));
        let report = verify(opts);
        assert_ne!(
            report.verdict(),
            Verdict::Diverges,
            "{name}:\n{}",
            report.render_text(5)
        );
        assert_eq!(report.exit_code(), 0, "{name}:\n{}", report.render_text(5));
        // seq against the interpreter, then every valid strategy on threads and a seed.
        let runs = report.strategies.len();
        assert!(runs >= 5, "{name}: only {runs} runs");
        assert!(
            report.strategies.iter().all(|r| r.packets > 10_000),
            "{name}: the synthetic trace was not run"
        );
    }
}

/// `--set` values of one NF's run.
type Overrides = &'static [(&'static str, &'static str)];

/// Every (mutant, NF) pair that applies, and the fewest that must apply per NF (so that a
/// catalog that quietly skips everything fails): 36 pairs over the library.
const APPLICABLE: [(&str, usize, Overrides); 9] = [
    ("nop", 0, &[]),
    ("sbridge", 0, &[]),
    ("bridge", 3, &[("capacity", "64")]),
    ("pol", 5, &[("capacity", "64")]),
    ("fw", 7, &[("max_flows", "64")]),
    ("nat", 8, &[("max_flows", "64")]),
    ("lb", 3, &[("flow_capacity", "64")]),
    ("cl", 5, &[("max_flows", "256")]),
    ("psd", 5, &[("capacity", "64")]),
];

/// Adversarial traffic alone kills every applicable mutant of every library NF. Small
/// tables keep the table-full traces short in a debug build (the capacity is still
/// filled, and probed at the first entry's deadline); per-key limits (psd's 64 ports per
/// source, cl's 64 flows per client), expiry times and thresholds keep the NFs' defaults
/// (cl's flow table stays above its threshold per core, or no client could reach it).
/// Random traces are left out: they are not what is asserted.
#[test]
fn adversarial_traffic_kills_every_applicable_mutant() {
    let mut total = 0;
    for (name, at_least, overrides) in APPLICABLE {
        let mut opts = VerifyOptions::new(nf(name));
        opts.overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        opts.adversarial = true;
        opts.mutants = true;
        opts.seeds = 0;
        opts.random_traces = 0;
        opts.work_dir = std::env::temp_dir().join(format!(
            "maestro-verify-mutants-{}-{name}",
            std::process::id()
        ));
        let report = verify(opts);
        assert_ne!(
            report.verdict(),
            Verdict::Diverges,
            "{name}:\n{}",
            report.render_text(5)
        );
        let applicable: Vec<_> = report
            .mutants
            .iter()
            .filter(|m| m.skipped.is_none())
            .collect();
        assert!(
            applicable.len() >= at_least,
            "{name}: {} mutants ran, expected at least {at_least}",
            applicable.len()
        );
        total += applicable.len();
        for m in applicable {
            let by_adversarial = m
                .results
                .iter()
                .any(|r| r.source == SourceKind::Adversarial && r.killed);
            assert!(
                by_adversarial,
                "{name}: mutant {} survived adversarial traffic:\n{}",
                m.mutant,
                report.render_text(3)
            );
        }
    }
    assert!(total >= 36, "{total} applicable (mutant, NF) pairs");
}
