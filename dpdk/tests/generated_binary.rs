//! The generated `fw` binary, built through maestro-build with its `dpdk` feature (in the
//! builder cache the other suites use: one build with the feature, and the one without
//! is theirs), run as `fw dpdk` on net_pcap vdevs:
//! - a capture replayed with `--rx-order timestamp` leaves every port exactly as
//!   `fw run --out` writes it, per port and per core (each output frame carries its
//!   input's time, which names the core the NIC model steered it to), for `seq`, `sn`
//!   on 2 cores, and `locks`/`tm` on 2 cores (fw's flows stay on one core under the
//!   symmetric RSS, and nothing expires, so their outputs are deterministic too);
//! - EAL and port errors are `DpdkError`'s messages with their fixes, exit code 2;
//! - built without the feature, `fw dpdk` says how to get it, exit code 2.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{symmetric_nic, trace};
use maestro_build::{retry_busy, Builder, Built, DPDK_FEATURE};
use maestro_dpdk::pcap::read_frames;
use maestro_generator::{write_crate, CrateOptions, GenOptions};
use maestro_runtime::capture::{CaptureFormat, CaptureItem, CaptureReader, CaptureWriter};
use maestro_runtime::exec::NicModel;
use maestro_runtime::InputPacket;

const PACKETS: usize = 2000;
/// EAL without NIC, hugepages or shared files, on two lcores.
const EAL: &str = "--no-huge -m 256 --no-pci --no-shconf --no-telemetry -l 0-1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `nfs/fw` as `maestro-equivalence`'s `GeneratedBinary::build` does (package
/// `fw-nf`, default strategy `seq`), with `features`, in the shared test cache.
fn build_fw(features: &[&str]) -> Built {
    let program = maestro_analyzer::load_nf(&repo().join("nfs/fw"), &[]).expect("fw loads");
    let package = format!("{}-nf", program.name.replace('_', "-"));
    let options = CrateOptions {
        package: package.clone(),
        runtime_path: Builder::runtime_dir(),
        default_strategy: "seq".to_string(),
        gen: GenOptions::default(),
    };
    Builder::new(Some(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
    ))
    .with_progress(false)
    .build_with_features(&package, features, |dir| {
        write_crate(&program, dir, &options)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("fw builds with {features:?}: {e}"))
}

fn run(binary: &Path, args: &[&str]) -> Output {
    retry_busy(|| Command::new(binary).args(args).output()).expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_capture(path: &Path, packets: &[InputPacket]) {
    let mut w = CaptureWriter::create(path, CaptureFormat::PcapNg, 2).expect("capture");
    for p in packets {
        w.write(p.port, p.time_ns, &p.data).expect("write");
    }
    w.finish().expect("finish");
}

/// `fw run --out`'s frames: `[port][core]`, each frame given to the core of the input
/// it came from (found by its time, which is unique in the trace).
fn run_outputs(
    path: &Path,
    core_of_time: &BTreeMap<u64, usize>,
    cores: usize,
) -> Vec<Vec<Vec<Vec<u8>>>> {
    let mut out = vec![vec![Vec::new(); cores]; 2];
    for item in CaptureReader::open(path).expect("run output") {
        let CaptureItem::Packet(r) = item else {
            panic!("unreadable record in {}", path.display());
        };
        let port = r.interface.expect("pcapng interface = port") as usize;
        let core = core_of_time[&r.time_ns];
        out[port][core].push(r.data);
    }
    out
}

#[test]
fn fw_dpdk_replays_leave_the_ports_as_fw_run_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let built = build_fw(&[DPDK_FEATURE]);
    let bin = &built.binary;
    let packets = trace(0xf00d, PACKETS);
    let capture = d.join("in.pcapng");
    write_capture(&capture, &packets);
    let cfg = symmetric_nic(2);
    let rss = d.join("rss.json");
    std::fs::write(&rss, serde_json::to_string(&cfg).expect("json")).expect("rss file");
    let (cap, rss_s) = (
        capture.to_str().expect("utf-8"),
        rss.to_str().expect("utf-8"),
    );

    for (strategy, cores) in [("seq", 1usize), ("sn", 2), ("locks", 2), ("tm", 2)] {
        let name = format!("{strategy} on {cores} core(s)");
        let nic = NicModel::new(&cfg.with_cores(cores), cores).expect("nic");
        let core_of_time: BTreeMap<u64, usize> = packets
            .iter()
            .map(|p| (p.time_ns, usize::from(nic.steer(p.port, &p.data).core)))
            .collect();
        let cores_s = cores.to_string();
        let reference = d.join(format!("run-{strategy}.pcapng"));
        let mut args = vec![
            "run",
            "--pcap",
            cap,
            "--out",
            reference.to_str().expect("utf-8"),
            "--strategy",
            strategy,
            "--cores",
            &cores_s,
        ];
        if cores > 1 {
            args.extend(["--rss", rss_s]);
        }
        let out = run(bin, &args);
        assert!(out.status.success(), "{name}: run: {}", text(&out.stderr));
        let want = run_outputs(&reference, &core_of_time, cores);

        let out_dir = d.join(format!("dpdk-{strategy}"));
        let mut args = vec![
            "dpdk",
            "--pcap",
            cap,
            "--out",
            out_dir.to_str().expect("utf-8"),
            "--rx-order",
            "timestamp",
            "--eal",
            EAL,
            "--cores",
            &cores_s,
            "--json",
        ];
        if cores > 1 {
            args.extend(["--rss", rss_s]);
        }
        // The default strategy goes in when none is named; name it otherwise.
        if strategy != "seq" {
            args.extend(["--strategy", strategy]);
        }
        let out = run(bin, &args);
        if text(&out.stderr).contains("cannot create its runtime files") {
            // The machine cannot run EAL at all (no /dev/shm, no /var/run), as in the
            // other DPDK tests: say so and stop.
            eprintln!(
                "SKIPPED: DPDK's EAL cannot start here: {}",
                text(&out.stderr)
            );
            return;
        }
        assert!(
            out.status.success(),
            "{name}: dpdk: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("a JSON summary");
        assert_eq!(summary["strategy"], strategy, "{name}");
        assert_eq!(summary["accounting"], "ok", "{name}");
        assert_eq!(
            summary["rx"], PACKETS as u64,
            "{name}: every packet received"
        );
        assert_eq!(summary["replay"]["packets"], PACKETS as u64, "{name}");
        assert_eq!(summary["replay"]["sub_microsecond_times"], 0, "{name}");
        assert_eq!(
            summary["per_core"].as_array().map(Vec::len),
            Some(cores),
            "{name}"
        );
        let mut sent = 0;
        for (port, per_core) in want.iter().enumerate() {
            for (core, frames) in per_core.iter().enumerate() {
                let file = out_dir.join(format!("tx-p{port}-q{core}.pcap"));
                let got = read_frames(&file).expect("tx capture");
                assert_eq!(
                    got.len(),
                    frames.len(),
                    "{name}: frames out of port {port} from core {core}"
                );
                for (i, (g, w)) in got.iter().zip(frames).enumerate() {
                    assert_eq!(g, w, "{name}: port {port} core {core} frame {i}");
                }
                sent += got.len();
            }
        }
        assert_eq!(summary["tx"], sent as u64, "{name}");
        assert!(sent > PACKETS / 2, "{name}: most packets pass: {sent}");
        if cores > 1 {
            for c in 0..cores {
                assert!(
                    summary["per_core"][c]["rx"].as_u64() > Some(100),
                    "{name}: core {c} worked: {}",
                    summary["per_core"][c]
                );
            }
        }
        if strategy == "locks" {
            assert_eq!(summary["protocol"]["read_passes"], PACKETS as u64, "{name}");
        }
    }

    // Errors: what is wrong and how to fix it, exit code 2.
    let out = run(
        bin,
        &[
            "dpdk",
            "--eal",
            &format!("{EAL} --vdev=net_pcap0,rx_pcap=/nonexistent.pcap"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("a virtual device could not be created"),
        "{}",
        text(&out.stderr)
    );
    let out = run(bin, &["dpdk", "--eal", EAL, "--strategy", "sn"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no Ethernet ports") && text(&out.stderr).contains("--vdev"),
        "{}",
        text(&out.stderr)
    );
    let out = run(bin, &["dpdk", "--eal", &format!("{EAL} --vdev=net_null0")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has 2 port(s) but the run was given 1"),
        "{}",
        text(&out.stderr)
    );
    let out = run(bin, &["dpdk", "--cores", "two"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--cores"),
        "{}",
        text(&out.stderr)
    );
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if meminfo.contains("HugePages_Total:       0") {
        let out = run(bin, &["dpdk", "--eal", "--no-pci --no-shconf -l 0"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--no-huge -m 256"),
            "no hugepages: the fix is named: {}",
            text(&out.stderr)
        );
    }
    let out = run(bin, &["dpdk", "--help"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("--rx-order"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn without_the_feature_dpdk_says_how_to_get_it() {
    let built = build_fw(&[]);
    let out = run(&built.binary, &["dpdk", "--eal", EAL]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("without the `dpdk` feature"), "{err}");
    assert!(err.contains("--features dpdk"), "{err}");
    assert!(err.contains("--backend dpdk"), "{err}");
    // The other commands are there.
    assert!(run(&built.binary, &["info"]).status.success());
}
