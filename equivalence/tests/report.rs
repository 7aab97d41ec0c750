//! The report: verdicts, exit codes, JSON names and the short text form.

use maestro_equivalence::report::{
    Divergence, DivergenceClass, Level, MutantResult, MutantRow, ObjectProof, ProofStatus,
    SourceKind, SourceReport, StrategyReport, Verdict, VerifyReport, EXIT_DIVERGES,
    EXIT_EQUIVALENT,
};
use maestro_runtime::exec::Strategy;
use maestro_runtime::Observation;

fn run(strategy: Strategy) -> StrategyReport {
    StrategyReport::new(
        strategy,
        2,
        "seed:7",
        "capture:fw.pcap",
        Level::Strict,
        1000,
    )
}

#[test]
fn class_names_are_those_of_the_spec() {
    let names: Vec<String> = DivergenceClass::ALL
        .iter()
        .map(|c| serde_json::to_string(c).expect("json"))
        .collect();
    assert_eq!(
        names,
        vec![
            "\"sharding\"",
            "\"output\"",
            "\"renaming\"",
            "\"order\"",
            "\"serialization\"",
            "\"capacity\"",
            "\"time\""
        ]
    );
    assert!(DivergenceClass::ALL
        .iter()
        .all(|c| serde_json::to_string(c).expect("json") == format!("\"{}\"", c.name())));
    assert!(DivergenceClass::Capacity.is_envelope() && DivergenceClass::Time.is_envelope());
    assert!(!DivergenceClass::Output.is_envelope());
    assert_eq!(
        serde_json::to_string(&Level::ModuloRenaming).expect("json"),
        "\"modulo_renaming\""
    );
    assert_eq!(
        serde_json::to_string(&Verdict::EquivalentWithinEnvelopes).expect("json"),
        "\"equivalent_within_envelopes\""
    );
}

#[test]
fn envelopes_warn_unless_strict_and_failures_fail() {
    let mut r = run(Strategy::Sn);
    assert_eq!(r.seed, Some(7));
    assert_eq!(r.verdict, Verdict::Equivalent);
    r.add(Divergence::new(
        DivergenceClass::Capacity,
        Some(10),
        "table full on core 1",
    ));
    r.add(Divergence::new(
        DivergenceClass::Capacity,
        Some(12),
        "again",
    ));
    assert_eq!(r.verdict, Verdict::EquivalentWithinEnvelopes);
    assert_eq!(r.failures, 0);
    assert_eq!(r.envelope_counts(), vec![(DivergenceClass::Capacity, 2)]);
    assert_eq!(r.counts[0].first.packet_index, Some(10));
    assert!(!r.fails(false) && r.fails(true));
    let mut report = VerifyReport::new("fw", false);
    report.strategies.push(r.clone());
    assert_eq!(report.exit_code(), EXIT_EQUIVALENT);
    report.strict = true;
    assert_eq!(report.exit_code(), EXIT_DIVERGES);
    report.strict = false;
    r.add(Divergence::new(DivergenceClass::Output, Some(3), "dropped"));
    assert_eq!(r.verdict, Verdict::Diverges);
    report.strategies.push(r);
    assert_eq!(report.exit_code(), EXIT_DIVERGES);
    assert_eq!(report.verdict(), Verdict::Diverges);
}

#[test]
fn kept_divergences_are_bounded_but_all_are_counted() {
    let mut r = run(Strategy::Locks);
    r.keep = 3;
    for i in 0..10 {
        r.add(Divergence::new(
            DivergenceClass::Serialization,
            Some(i),
            "replay differs",
        ));
    }
    assert_eq!(r.divergences.len(), 3);
    assert_eq!(r.failures, 10);
    assert_eq!(r.count(DivergenceClass::Serialization), 10);
    let mut report = VerifyReport::new("fw", false);
    report.strategies.push(r);
    let text = report.render_text(2);
    assert!(text.contains("... 8 more"), "{text}");
}

#[test]
fn surviving_mutants_fail_the_run_and_skipped_ones_do_not() {
    let mut report = VerifyReport::new("fw", false);
    report.strategies.push(run(Strategy::Sn));
    let row = |name: &str, killed: bool, skipped: Option<&str>| MutantRow {
        mutant: name.into(),
        description: "d".into(),
        strategy: Strategy::Sn,
        results: vec![
            MutantResult {
                source: SourceKind::Capture,
                killed: false,
                by: None,
                class: None,
            },
            MutantResult {
                source: SourceKind::Adversarial,
                killed,
                by: killed.then(|| "co-location:lan-wan".into()),
                class: killed.then_some(DivergenceClass::Output),
            },
        ],
        skipped: skipped.map(String::from),
    };
    report.mutants.push(row("ms-default-key", true, None));
    report
        .mutants
        .push(row("reta-differs", false, Some("single port")));
    assert_eq!(report.exit_code(), EXIT_EQUIVALENT);
    let rates = report.kill_rates();
    assert_eq!(rates[&SourceKind::Adversarial], (1, 1));
    assert_eq!(rates[&SourceKind::Capture], (0, 1));
    report.mutants.push(row("key-ignores-field", false, None));
    assert_eq!(report.exit_code(), EXIT_DIVERGES);
    let text = report.render_text(5);
    assert!(
        text.contains("SURVIVED")
            && text.contains("killed(output)")
            && text.contains("skipped: single port"),
        "{text}"
    );
}

#[test]
fn text_is_short_and_json_is_complete() {
    let mut report = VerifyReport::new("nat", false);
    report.sources.push(SourceReport {
        name: "capture:nat.pcap".into(),
        kind: SourceKind::Capture,
        purpose: "a real capture".into(),
        packets: 1000,
        refused: 2,
        refused_reasons: vec!["record #4: truncated".into()],
    });
    let mut r = run(Strategy::Sn);
    r.level = Level::ModuloRenaming;
    r.add(
        Divergence::new(DivergenceClass::Renaming, Some(42), "rho maps 3 two ways")
            .with_observations(
                Some(Observation::Drop),
                Some(Observation::Forward {
                    port: 1,
                    bytes: vec![0; 60],
                }),
            )
            .with_objects(vec!["flows".into()])
            .with_cores(vec![1, 0, 1]),
    );
    report.strategies.push(r);
    report.proof.objects.push(ObjectProof {
        object: "flows".into(),
        status: ProofStatus::Proved,
        reason: "all 3 constraints proved".into(),
    });
    report.notes.push("a note".into());
    let text = report.render_text(5);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 8, "{text}");
    assert!(
        lines[0].starts_with("verify nat: 1 source(s), 1000 packets (2 capture records refused)"),
        "{text}"
    );
    let d = lines
        .iter()
        .find(|l| l.contains("packet #42"))
        .expect("divergence line");
    assert!(
        d.contains("packet #42")
            && d.contains("[flows]")
            && d.contains("cores 0,1")
            && d.contains("expected drop, got forward to 1 (60 B)"),
        "{d}"
    );
    assert!(text.contains("proved by Z3 for [flows]"));
    let json = report.to_json();
    let back = VerifyReport::from_json(&json).expect("round trip");
    assert_eq!(back, report);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["schema"], "maestro-verify");
    assert_eq!(v["strategies"][0]["strategy"], "sn");
    assert_eq!(v["strategies"][0]["divergences"][0]["class"], "renaming");
    assert_eq!(
        v["strategies"][0]["divergences"][0]["actual"]["action"],
        "forward"
    );
}
