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
