//! A tiny real sweep (nop and fw, seq and sn, 1 and 2 cores, 20k packets, 1 repetition)
//! through the generated binaries, its files checked; bad configurations; a failing
//! binary recorded as a failed row. The generated binaries come from the builder cache
//! the equivalence tests use (`CARGO_TARGET_TMPDIR/maestro-cache`), so a CI run that
//! already built them does not build them again.

use std::path::{Path, PathBuf};

use maestro_bench_lab::config::{parse_nfs, FrameSize};
use maestro_bench_lab::csv::{read_rows, HEADER};
use maestro_bench_lab::{Event, Plan, ReportOptions, Status, SweepConfig};
use maestro_build::Builder;
use maestro_runtime::exec::Strategy;

fn builder() -> Builder {
    Builder::new(Some(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
    ))
    .with_progress(false)
}

/// The `<text>` contents of an SVG, which must parse as XML.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

fn tiny(out: &Path) -> SweepConfig {
    let mut c = SweepConfig::new(parse_nfs("nop,fw").unwrap(), out);
    c.strategies = vec![Strategy::Seq, Strategy::Sn];
    c.cores = vec![1, 2];
    c.sizes = vec![FrameSize::Fixed(64)];
    c.packets = 20_000;
    c.reps = 1;
    // CI may have a single CPU; this test checks the files, not the scaling.
    c.allow_oversubscribe = true;
    c
}

#[test]
fn tiny_sweep_writes_csv_machine_plots_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let mut log = |e: Event<'_>| lines.push(e.to_string());
    let plan = Plan::prepare(tiny(dir.path()), &builder(), &mut log).unwrap();
    // Per NF: seq on 1 core, sn on 1 and 2 cores.
    assert_eq!(plan.points.len(), 6);
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    // nop and fw start flows on the LAN side and have no churn: one shared trace.
    assert_eq!(plan.traces.len(), 1, "{:?}", plan.traces);
    assert!(plan.traces[0].starts_with(dir.path().join("traces")));
    let outcome = plan
        .run(&ReportOptions::default(), &mut |e| {
            lines.push(e.to_string())
        })
        .unwrap();
    let progress: Vec<&String> = lines.iter().filter(|l| l.starts_with('[')).collect();
    assert_eq!(progress.len(), 6, "{lines:#?}");
    assert!(
        progress[0].starts_with("[1/6] nop seq on 1 core"),
        "{}",
        progress[0]
    );
    assert!(progress[5].contains("Mpps"), "{}", progress[5]);

    // The CSV: header, one row per point and repetition, all measured.
    let csv = std::fs::read_to_string(&outcome.csv).unwrap();
    assert_eq!(csv.lines().next().unwrap(), HEADER.join(","));
    let rows = read_rows(&outcome.csv).unwrap();
    assert_eq!(rows.len(), plan.points.len() * plan.config.reps as usize);
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert!(r.mpps.unwrap() > 0.0 && r.processing_seconds.unwrap() > 0.0);
        assert_eq!(r.packets, 20_000);
        assert_eq!(r.packets_per_core.iter().sum::<u64>(), 20_000, "{r:?}");
        assert_eq!(r.packets_per_core.len(), r.cores, "{r:?}");
        let spread = r.spread.unwrap();
        assert!((1.0..=r.cores as f64).contains(&spread), "{r:?}");
        // fw forwards every LAN-initiated packet; so does nop.
        assert_eq!(r.forwarded, Some(20_000), "{r:?}");
        // The binary's phases, recorded and adding up to its processing time.
        let (d, n, c) = (
            r.dispatch_seconds.unwrap(),
            r.nf_seconds.unwrap(),
            r.collect_seconds.unwrap(),
        );
        assert!(n > 0.0 && d >= 0.0 && c >= 0.0, "{r:?}");
        let total = r.processing_seconds.unwrap();
        assert!((d + n + c - total).abs() < 1e-6, "{r:?}");
        assert!(r.nf_mpps().unwrap() >= r.mpps.unwrap() * 0.999, "{r:?}");
    }
    let sn2 = rows
        .iter()
        .find(|r| r.nf == "fw" && r.strategy == "sn" && r.cores == 2)
        .unwrap();
    // 40,000 uniform flows over two cores by the solved RSS keys: close to even.
    assert!(sn2.spread.unwrap() < 1.2, "{sn2:?}");

    // machine.json describes this machine.
    let machine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&outcome.machine).unwrap()).unwrap();
    assert!(machine["cpus"].as_u64().unwrap() >= 1);
    assert!(!machine["cpu_model"].as_str().unwrap().is_empty());
    assert!(machine["memory_bytes"].as_u64().unwrap() > 0);
    assert!(machine["finished"].as_str().unwrap().ends_with('Z'));
    assert!(machine["rtm"].is_boolean() && machine["kernel"].is_string());
    assert!(dir.path().join("sweep.json").is_file());
    assert!(dir.path().join("rss/fw-2.json").is_file());

    // One plot per NF (one traffic setting), naming the strategies; and its NF-only
    // twin.
    assert_eq!(outcome.report.plots.len(), 2);
    assert_eq!(outcome.report.nf_plots.len(), 2);
    let fw_svg = std::fs::read_to_string(dir.path().join("plots/fw-64-churn0-zipf0.svg")).unwrap();
    let texts = svg_texts(&fw_svg);
    let has = |t: &[String], want: &str| t.iter().any(|x| x.contains(want));
    assert!(
        texts.iter().any(|t| t == "sn"),
        "sn in the legend: {texts:?}"
    );
    assert!(has(&texts, "seq, 1 core (reference)"), "{texts:?}");
    assert!(has(&texts, "ideal: seq × cores"), "{texts:?}");
    assert!(
        has(&texts, "fw: 64 B, churn 0 flows/min, Zipf 0"),
        "{texts:?}"
    );
    assert!(has(&texts, "Measured on "), "machine caption: {texts:?}");
    assert!(!fw_svg.contains("published"), "no baselines unless asked");
    let nf_svg =
        std::fs::read_to_string(dir.path().join("plots/fw-64-churn0-zipf0-nf.svg")).unwrap();
    let texts = svg_texts(&nf_svg);
    assert!(
        has(&texts, "(NF only)") && texts.iter().any(|t| t == "sn"),
        "{texts:?}"
    );

    // The summary has a row per (strategy, cores) with the speed-ups.
    let md = std::fs::read_to_string(&outcome.report.summary).unwrap();
    assert!(
        md.contains("## fw: 64 B, churn 0 flows/min, Zipf 0"),
        "{md}"
    );
    assert!(
        md.contains("| seq | 1 |") && md.contains("| sn | 2 |"),
        "{md}"
    );
    assert!(md.contains("Runs: 6 (6 ok, 0 failed, 0 timed out)"), "{md}");
    assert!(md.contains("NF-only Mpps is packets over"), "{md}");

    // Redrawing from the CSV alone gives the same summary.
    std::fs::remove_file(&outcome.report.summary).unwrap();
    let again = maestro_bench_lab::write_report(dir.path(), &ReportOptions::default()).unwrap();
    assert_eq!(std::fs::read_to_string(again.summary).unwrap(), md);
}

#[test]
fn failing_binary_is_a_failed_row_and_strategies_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = tiny(dir.path());
    // bridge is not shared-nothing: sn is skipped and said so.
    c.nfs = parse_nfs("bridge").unwrap();
    c.cores = vec![1];
    c.packets = 2_000;
    c.reps = 2;
    let mut steps = Vec::new();
    let mut plan = Plan::prepare(c, &builder(), &mut |e| steps.push(e.to_string())).unwrap();
    assert_eq!(plan.points.len(), 1, "only seq remains");
    assert_eq!(plan.skipped.len(), 1);
    assert!(plan.skipped[0].contains("sn skipped"), "{:?}", plan.skipped);
    assert!(steps.iter().any(|s| s.contains("sn skipped")));
    // Replace the binary by one that fails the way a crashing NF would.
    let fake = dir.path().join("crash.sh");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'thread main panicked: boom' >&2\nexit 101\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    plan.points[0].binary = fake;
    let outcome = plan.run(&ReportOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(outcome.failures(), 2);
    let rows = read_rows(&outcome.csv).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.status, Status::Failed);
        assert!(
            r.error.contains("exit 101") && r.error.contains("boom"),
            "{r:?}"
        );
        assert_eq!(r.mpps, None);
    }
    let md = std::fs::read_to_string(&outcome.report.summary).unwrap();
    assert!(
        md.contains("## Failed runs") && md.contains("exit 101"),
        "{md}"
    );
    assert!(md.contains("Skipped: bridge: sn skipped"), "{md}");
}

#[test]
fn bad_configurations_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let b = builder();
    let prepare = |c: SweepConfig| Plan::prepare(c, &b, &mut |_| {}).unwrap_err().to_string();

    let e = parse_nfs("fw,nosuch").unwrap_err().to_string();
    assert!(e.contains("unknown NF `nosuch`") && e.contains("fw"), "{e}");
    let e = maestro_bench_lab::config::parse_strategies("seq,htm")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`htm`") && e.contains("seq, sn, locks, tm"),
        "{e}"
    );
    let e = maestro_bench_lab::config::parse_sizes("64,32")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`32`") && e.contains("imix"), "{e}");
    let e = maestro_bench_lab::config::parse_cores("0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("start at 1"), "{e}");

    let mut c = tiny(dir.path());
    c.cores = vec![0, 1];
    assert!(prepare(c).contains("start at 1"));
    let mut c = tiny(dir.path());
    c.cores = vec![maestro_bench_lab::machine::cpus() + 1];
    c.allow_oversubscribe = false;
    let e = prepare(c);
    assert!(e.contains("--allow-oversubscribe"), "{e}");
    let mut c = tiny(dir.path());
    c.strategies.clear();
    assert!(prepare(c).contains("--strategies is empty"));
    let mut c = tiny(dir.path());
    c.zipf = vec![3.0];
    assert!(prepare(c).contains("Zipf"));
    // Nothing was written for refused sweeps.
    assert!(!dir.path().join("results.csv").exists());
}
