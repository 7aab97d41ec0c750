//! End-to-end tests of the `maestro` binary: exit codes, accounting, error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn maestro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("maestro runs")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("maestro-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn generate(path: &Path, flows: &str, packets: &str) {
    let out = maestro(&[
        "trafficgen",
        "--flows",
        flows,
        "--packets",
        packets,
        "--reply-ratio",
        "0.5",
        "--udp-share",
        "0.5",
        "--seed",
        "3",
        "--out",
        path.to_str().expect("utf-8 temp path"),
    ]);
    assert!(out.status.success(), "trafficgen: {}", text(&out));
}

#[test]
fn run_accounts_for_every_packet_and_writes_pcapng() {
    let trace = scratch("trace.pcapng");
    generate(&trace, "50", "2000");
    let out_file = scratch("fw-out.pcapng");
    let out = maestro(&[
        "run",
        "nfs/fw",
        "--pcap",
        trace.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    };
    assert_eq!(n("records"), 2000);
    assert_eq!(n("packets") + n("refused"), n("records"));
    assert_eq!(n("forwarded") + n("flooded") + n("dropped"), n("packets"));
    // Every flow starts on LAN, so every reply has its request before it: nothing drops.
    assert_eq!(n("dropped"), 0, "{summary}");
    assert_eq!(n("written"), n("forwarded"));
    // The output reads back with the output port as interface id.
    let reader =
        maestro_runtime::capture::CaptureReader::open(&out_file).expect("output capture opens");
    let mut count = 0;
    for item in reader {
        match item {
            maestro_runtime::capture::CaptureItem::Packet(r) => {
                assert!(matches!(r.interface, Some(0) | Some(1)));
                count += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(count, n("written"));
}

#[test]
fn text_summary_names_ports_and_counts() {
    let trace = scratch("nat-trace.pcapng");
    generate(&trace, "20", "500");
    let out = maestro(&[
        "run",
        "nfs/nat",
        "--pcap",
        trace.to_str().unwrap(),
        "--set",
        "start_port=1000",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for word in ["records", "forwarded", "dropped", "port 1"] {
        assert!(t.contains(word), "summary mentions {word}: {t}");
    }
}

#[test]
fn a_bad_capture_is_an_input_error_naming_the_file() {
    let bad = scratch("garbage.pcap");
    std::fs::write(&bad, b"this is not a capture at all").unwrap();
    let out = maestro(&["run", "nfs/fw", "--pcap", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("garbage.pcap"), "{}", text(&out));
}

#[test]
fn a_missing_capture_is_an_input_error() {
    let out = maestro(&["run", "nfs/fw", "--pcap", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("/nonexistent/x.pcap"), "{}", text(&out));
}

#[test]
fn an_nf_source_error_has_line_and_column() {
    let nf = scratch("broken.nf");
    std::fs::write(
        &nf,
        "nf broken \"x\";\ndevice lan = 0;\ndevice wan = 1;\nprocess {\n    forward(nowhere);\n}\n",
    )
    .unwrap();
    let out = maestro(&["check", nf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("broken.nf:5:13"), "{}", text(&out));
}

#[test]
fn a_bad_override_is_an_input_error() {
    let out = maestro(&["check", "nfs/fw", "--set", "max_flows=lots"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("max_flows"), "{}", text(&out));
    let out = maestro(&["check", "nfs/fw", "--set", "no_such_thing=1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn check_lists_every_library_nf() {
    for nf in [
        "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
    ] {
        let out = maestro(&["check", &format!("nfs/{nf}")]);
        assert!(out.status.success(), "{nf}: {}", text(&out));
    }
}

/// `maestro` with generated-code builds cached under the test target directory.
fn maestro_cached(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .current_dir(repo())
        .env(
            "MAESTRO_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
        )
        .output()
        .expect("maestro runs")
}

/// One test builds the generated fw once and uses it for `run --strategy` and `verify`,
/// so CI pays for one build.
#[test]
fn generated_fw_runs_on_two_cores_and_verifies_equivalent() {
    let trace = scratch("verify-trace.pcapng");
    generate(&trace, "40", "1500");
    let out_file = scratch("fw-sn-out.pcapng");
    let out = maestro_cached(&[
        "run",
        "nfs/fw",
        "--pcap",
        trace.to_str().unwrap(),
        "--strategy",
        "sn",
        "--cores",
        "2",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("sn, 2 core(s)"), "{t}");
    assert!(t.contains("records            1500"), "{t}");
    assert!(out_file.is_file());

    let json = scratch("fw-verify.json");
    let out = maestro_cached(&[
        "verify",
        "nfs/fw",
        "--pcap",
        trace.to_str().unwrap(),
        "--seeds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("verify fw: 1 source(s), 1500 packets"), "{t}");
    for strategy in ["seq", "sn", "locks", "tm"] {
        assert!(
            t.lines()
                .any(|l| l.trim_start().starts_with(strategy) && l.ends_with("equivalent")),
            "no equivalent {strategy} run in:\n{t}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written"))
            .expect("report is JSON");
    assert_eq!(report["nf"], "fw");
    assert_eq!(report["strategies"].as_array().map(Vec::len), Some(7));
}

#[test]
fn verify_refuses_a_missing_capture_with_exit_2() {
    let out = maestro_cached(&["verify", "nfs/fw", "--pcap", "no/such/file.pcap"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("no/such/file.pcap"), "{t}");
}

#[test]
fn shared_nothing_is_refused_for_a_locks_nf() {
    let trace = scratch("bridge-trace.pcapng");
    generate(&trace, "5", "20");
    let out = maestro_cached(&[
        "run",
        "nfs/bridge",
        "--pcap",
        trace.to_str().unwrap(),
        "--strategy",
        "sn",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("cannot run shared-nothing"), "{t}");
}
