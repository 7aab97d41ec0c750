//! `maestro generate`'s crates build without warnings and run: every library NF is
//! written with `write_crate` into one temporary directory and all nine are built by ONE
//! `cargo build --release --offline` over a temporary workspace listing them (so the
//! runtime and its dependencies compile once), with `RUSTFLAGS=-D warnings`. Each binary
//! then prints its `info` and runs a capture with its default strategy.
//!
//! Slow (a release build, a few minutes on two cores): it is the only test that
//! compiles the crates exactly as users get them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use maestro_generator::{write_crate, CrateOptions, GenOptions};
use maestro_runtime::capture::{CaptureFormat, CaptureWriter};

/// (NF, the binary's default strategy): every strategy is some crate's default; `sn`
/// only where the analysis allows it.
const CRATES: [(&str, &str); 9] = [
    ("nop", "seq"),
    ("sbridge", "sn"),
    ("bridge", "locks"),
    ("pol", "sn"),
    ("fw", "sn"),
    ("nat", "locks"),
    ("lb", "tm"),
    ("cl", "sn"),
    ("psd", "tm"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A capture of `packets` synthetic packets on ports 0/1 (pcapng: interface = port).
fn capture(path: &Path) {
    let trace = common::synthetic(0, 1, 4, 40, 500, 0.0, 1_000_000);
    let mut w = CaptureWriter::create(path, CaptureFormat::PcapNg, 2).expect("capture opens");
    for p in &trace {
        w.write_input(p).expect("capture writes");
    }
    w.finish().expect("capture closes");
}

#[test]
fn every_library_nf_builds_as_a_crate_without_warnings_and_runs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path();
    let runtime = repo().join("runtime").canonicalize().expect("runtime dir");
    let mut members = Vec::new();
    for (nf, strategy) in CRATES {
        let program = common::program(nf, &[]);
        let package = format!("{nf}-{strategy}");
        let out = root.join(&package);
        let files = write_crate(
            &program,
            &out,
            &CrateOptions {
                package: package.clone(),
                runtime_path: runtime.clone(),
                default_strategy: strategy.to_string(),
                gen: GenOptions::default(),
            },
        )
        .expect("crate written");
        assert_eq!(files.len(), 5, "{nf}");
        // Each crate is a workspace of its own; here they are members of one, so their
        // `[workspace]` tables go (and the release profile moves to the root).
        let manifest = out.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        assert!(text.contains("[workspace]"), "{nf}: own workspace");
        assert!(text.contains("codegen-units = 1"), "{nf}: release profile");
        let member = text.replace(
            "# A workspace of its own, so the crate builds wherever it is written.\n[workspace]\n",
            "",
        );
        let member = member[..member.find("[profile.release]").expect("profile")].to_string();
        std::fs::write(&manifest, member).expect("manifest rewritten");
        members.push(package);
    }
    let list: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n\n[profile.release]\ndebug = 1\ncodegen-units = 1\nlto = \"thin\"\n",
            list.join(", ")
        ),
    )
    .expect("workspace manifest");
    // The repository's lock file pins the same dependency versions, offline.
    std::fs::copy(repo().join("Cargo.lock"), root.join("Cargo.lock")).expect("lock file");
    let target = root.join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--offline", "--workspace"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-D warnings")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "the generated crates do not build cleanly"
    );

    let pcap = root.join("trace.pcapng");
    capture(&pcap);
    for (nf, strategy) in CRATES {
        let bin = target.join("release").join(format!("{nf}-{strategy}"));
        let info = Command::new(&bin)
            .arg("info")
            .output()
            .expect("binary runs");
        assert!(info.status.success(), "{nf} info");
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info is JSON");
        assert_eq!(info["nf"], *nf);
        let renamed = info["renamed"].as_array().map_or(0, Vec::len);
        assert_eq!(renamed, usize::from(nf == "nat"), "{nf} renamed fields");
        // No `--strategy`: the binary's default; an explicit one still wins.
        for (args, want) in [
            (vec!["run", "--json", "--pcap"], strategy),
            (vec!["run", "--json", "--strategy", "seq", "--pcap"], "seq"),
        ] {
            let out = Command::new(&bin)
                .args(&args)
                .arg(&pcap)
                .output()
                .expect("binary runs");
            assert!(
                out.status.success(),
                "{nf} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("summary is JSON");
            assert_eq!(summary["strategy"], want, "{nf} {args:?}");
            assert_eq!(summary["packets"], 500, "{nf} {args:?}");
        }
    }
}
