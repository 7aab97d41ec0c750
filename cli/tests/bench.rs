//! `maestro bench` end to end: a tiny sweep through the real binary, and a bad one.
//! Generated builds are cached under the test target directory (as in `cli.rs`), so a
//! run after the equivalence or CLI tests does not build nop again.

use std::path::PathBuf;
use std::process::{Command, Output};

use maestro_bench_lab::csv::{read_rows, HEADER};
use maestro_bench_lab::Status;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maestro"))
        .arg("bench")
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env(
            "MAESTRO_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
        )
        .output()
        .expect("maestro runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh folder for this test in this process (removed at the end of the test).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("maestro-cli-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tiny_sweep_exits_0_and_writes_results() {
    let out_dir = scratch("tiny");
    let out = bench(&[
        "--nf",
        "nop",
        "--strategies",
        "seq",
        "--cores",
        "1",
        "--packets",
        "5k",
        "--reps",
        "1",
        "--out",
        out_dir.to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("[1/1] nop seq on 1 core"), "{log}");
    assert!(log.contains("1 runs, 0 failed"), "{log}");

    let csv = out_dir.join("results.csv");
    let content = std::fs::read_to_string(&csv).expect("results.csv written");
    assert_eq!(content.lines().next(), Some(HEADER.join(",").as_str()));
    let rows = read_rows(&csv).expect("results.csv reads back");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (r.nf.as_str(), r.strategy.as_str(), r.cores),
        ("nop", "seq", 1)
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.packets, 5_000);
    assert!(r.mpps.is_some_and(|m| m > 0.0), "{r:?}");
    assert!(r.nf_mpps().is_some(), "NF-only time recorded: {r:?}");
    for f in [
        "summary.md",
        "machine.json",
        "plots/nop-64-churn0-zipf0.svg",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} written");
    }

    // Redrawn from the CSV alone.
    std::fs::remove_file(out_dir.join("summary.md")).unwrap();
    let out = bench(&["--out", out_dir.to_str().unwrap(), "--report-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(md.contains("| seq | 1 |"), "{md}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn bad_sweeps_exit_2_naming_the_flag() {
    let out_dir = scratch("bad");
    let dir = out_dir.to_str().unwrap();
    let out = bench(&["--nf", "nop", "--cores", "0", "--out", dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cores") && err.contains("start at 1"),
        "{err}"
    );

    let out = bench(&["--nf", "nop,nosuch", "--out", dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--nf") && err.contains("unknown NF `nosuch`"),
        "{err}"
    );

    // Nothing measured, nothing written.
    assert!(!out_dir.join("results.csv").exists());

    // A results.csv that does not read: exit 2, naming the file and the line.
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(
        out_dir.join("results.csv"),
        HEADER.join(",") + "\nnop,seq,one\n",
    )
    .unwrap();
    let out = bench(&["--out", dir, "--report-only"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("results.csv, line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&out_dir);
}
