//! One run of a generated binary: `<binary> run --pcap T --strategy S --cores N [--rss R]
//! --json`, its JSON summary read back. Never an error: whatever goes wrong (cannot
//! start, non-zero exit, no JSON, too few packets, timeout) becomes the measurement's
//! status and message, so the CSV shows it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use maestro_runtime::exec::Strategy;
use serde::Deserialize;

use crate::csv::Status;

/// What to run.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub binary: PathBuf,
    pub trace: PathBuf,
    pub strategy: Strategy,
    pub cores: usize,
    /// RSS configuration (JSON) for parallel strategies.
    pub rss: Option<PathBuf>,
    /// Packets in the trace: a run that processes fewer failed.
    pub expected_packets: u64,
    pub no_pin: bool,
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub status: Status,
    pub error: String,
    pub processing_seconds: Option<f64>,
    pub mpps: Option<f64>,
    pub packets_per_core: Vec<u64>,
    pub forwarded: Option<u64>,
    pub dropped: Option<u64>,
    pub flooded: Option<u64>,
    pub refused: Option<u64>,
    pub rtm: String,
    pub wall_seconds: f64,
    /// The phases of `processing_seconds` (`None` from a binary built before the
    /// runtime reported them).
    pub dispatch_seconds: Option<f64>,
    pub nf_seconds: Option<f64>,
    pub collect_seconds: Option<f64>,
}

impl Measurement {
    fn failed(status: Status, error: String, wall: Duration) -> Measurement {
        Measurement {
            status,
            error,
            processing_seconds: None,
            mpps: None,
            packets_per_core: Vec::new(),
            forwarded: None,
            dropped: None,
            flooded: None,
            refused: None,
            rtm: String::new(),
            wall_seconds: wall.as_secs_f64(),
            dispatch_seconds: None,
            nf_seconds: None,
            collect_seconds: None,
        }
    }

    /// Max over mean of the packets per core, over all `cores` cores (a core that got
    /// nothing counts as 0): 1.0 is an even spread, `cores` means one core got it all.
    pub fn spread(&self, cores: usize) -> Option<f64> {
        spread(&self.packets_per_core, cores)
    }
}

/// Max over mean of `per_core` padded with zeros to `cores` entries.
pub fn spread(per_core: &[u64], cores: usize) -> Option<f64> {
    let n = cores.max(per_core.len());
    let total: u64 = per_core.iter().sum();
    if n == 0 || total == 0 {
        return None;
    }
    let max = per_core.iter().copied().max().unwrap_or(0);
    Some(max as f64 / (total as f64 / n as f64))
}

/// The fields of the binary's `run --json` summary the lab uses.
#[derive(Debug, Deserialize)]
struct Summary {
    packets: u64,
    refused: u64,
    refused_examples: Vec<String>,
    forwarded: u64,
    dropped: u64,
    flooded: u64,
    packets_per_core: Vec<u64>,
    #[serde(default)]
    rtm: String,
    processing_seconds: f64,
    mpps: f64,
    /// Optional: a cached binary built from an older runtime does not print them.
    #[serde(default)]
    dispatch_seconds: Option<f64>,
    #[serde(default)]
    nf_seconds: Option<f64>,
    #[serde(default)]
    collect_seconds: Option<f64>,
}

/// The last `max` characters of a process's output, on one line.
fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.char_indices().rev().nth(max).map_or(0, |(i, _)| i + 1);
    text[start..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Runs the binary once.
pub fn run_point(req: &RunRequest) -> Measurement {
    let mut cmd = Command::new(&req.binary);
    cmd.arg("run")
        .arg("--pcap")
        .arg(&req.trace)
        .args(["--strategy", req.strategy.name()])
        .args(["--cores", &req.cores.to_string()])
        .arg("--json");
    if let Some(rss) = &req.rss {
        cmd.arg("--rss").arg(rss);
    }
    if req.no_pin {
        cmd.arg("--no-pin");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = match maestro_build::retry_busy(|| cmd.spawn()) {
        Ok(c) => c,
        Err(e) => {
            return Measurement::failed(
                Status::Failed,
                format!("cannot start {}: {e}", req.binary.display()),
                start.elapsed(),
            )
        }
    };
    // Drain both pipes on their own threads so a chatty binary never blocks on a full
    // pipe while this thread waits for it to exit.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() >= req.timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break child.wait().ok(),
        }
    };
    let wall = start.elapsed();
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if timed_out {
        return Measurement::failed(
            Status::Timeout,
            format!(
                "killed after the {} s timeout (raise --timeout); stderr: {}",
                req.timeout.as_secs(),
                tail(&stderr, 300)
            ),
            wall,
        );
    }
    let Some(status) = status else {
        return Measurement::failed(Status::Failed, "cannot wait for the binary".into(), wall);
    };
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        };
        return Measurement::failed(
            Status::Failed,
            format!("the binary failed ({how}): {}", tail(&stderr, 400)),
            wall,
        );
    }
    let summary: Summary = match serde_json::from_slice(&stdout) {
        Ok(s) => s,
        Err(e) => {
            return Measurement::failed(
                Status::Failed,
                format!(
                    "no JSON summary on stdout ({e}); stdout: {}; stderr: {}",
                    tail(&stdout, 200),
                    tail(&stderr, 200)
                ),
                wall,
            )
        }
    };
    let mut m = Measurement {
        status: Status::Ok,
        error: String::new(),
        processing_seconds: Some(summary.processing_seconds),
        mpps: Some(summary.mpps),
        packets_per_core: summary.packets_per_core,
        forwarded: Some(summary.forwarded),
        dropped: Some(summary.dropped),
        flooded: Some(summary.flooded),
        refused: Some(summary.refused),
        rtm: summary.rtm,
        wall_seconds: wall.as_secs_f64(),
        dispatch_seconds: summary.dispatch_seconds,
        nf_seconds: summary.nf_seconds,
        collect_seconds: summary.collect_seconds,
    };
    if summary.packets != req.expected_packets {
        m.status = Status::Failed;
        m.error = format!(
            "processed {} of the trace's {} packets ({} refused{})",
            summary.packets,
            req.expected_packets,
            summary.refused,
            summary
                .refused_examples
                .first()
                .map(|e| format!(", e.g. {e}"))
                .unwrap_or_default()
        );
    } else if !(summary.mpps.is_finite() && summary.mpps > 0.0) {
        m.status = Status::Failed;
        m.error = format!("the binary reported {} Mpps", summary.mpps);
    }
    m
}

/// Whether `path` is an executable file (for clear errors before a sweep starts).
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn req(binary: PathBuf) -> RunRequest {
        RunRequest {
            binary,
            trace: PathBuf::from("/nonexistent.pcapng"),
            strategy: Strategy::Sn,
            cores: 2,
            rss: None,
            expected_packets: 10,
            no_pin: false,
            timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn spreads() {
        assert_eq!(spread(&[50, 50], 2), Some(1.0));
        assert_eq!(spread(&[100], 2), Some(2.0));
        assert_eq!(spread(&[0, 0], 2), None);
        assert_eq!(spread(&[30, 10], 2), Some(1.5));
    }

    #[test]
    fn failures_become_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let m = run_point(&req(script(dir.path(), "a", "echo boom >&2; exit 3")));
        assert_eq!(m.status, Status::Failed);
        assert!(
            m.error.contains("exit 3") && m.error.contains("boom"),
            "{}",
            m.error
        );

        let m = run_point(&req(script(dir.path(), "b", "echo not json")));
        assert_eq!(m.status, Status::Failed);
        assert!(m.error.contains("no JSON"), "{}", m.error);

        let ok = r#"echo '{"packets":10,"refused":0,"refused_examples":[],"forwarded":10,"dropped":0,"flooded":0,"packets_per_core":[4,6],"rtm":"not applicable","processing_seconds":0.5,"mpps":0.00002}'"#;
        let m = run_point(&req(script(dir.path(), "c", ok)));
        assert_eq!(m.status, Status::Ok, "{}", m.error);
        assert_eq!(m.packets_per_core, vec![4, 6]);
        assert_eq!(m.spread(2), Some(1.2));
        // A binary without the phase fields (built before them) still measures.
        assert_eq!((m.nf_seconds, m.dispatch_seconds), (None, None));

        let phased = ok.replace(
            "\"mpps\":0.00002",
            "\"mpps\":0.00002,\"dispatch_seconds\":0.1,\"nf_seconds\":0.3,\"collect_seconds\":0.1",
        );
        let m = run_point(&req(script(dir.path(), "p", &phased)));
        assert_eq!(m.status, Status::Ok, "{}", m.error);
        assert_eq!(
            (m.dispatch_seconds, m.nf_seconds, m.collect_seconds),
            (Some(0.1), Some(0.3), Some(0.1))
        );

        let short = ok.replace("\"packets\":10", "\"packets\":9");
        let m = run_point(&req(script(dir.path(), "d", &short)));
        assert_eq!(m.status, Status::Failed);
        assert!(m.error.contains("processed 9 of"), "{}", m.error);

        let mut slow = req(script(dir.path(), "e", "exec sleep 30"));
        slow.timeout = Duration::from_millis(300);
        let m = run_point(&slow);
        assert_eq!(m.status, Status::Timeout);
        assert!(m.wall_seconds < 10.0);

        let m = run_point(&req(dir.path().join("missing")));
        assert_eq!(m.status, Status::Failed);
        assert!(m.error.contains("cannot start"), "{}", m.error);
    }
}
