//! The machine a sweep ran on, written beside the results as `machine.json`: numbers
//! from different machines (or the same machine under load) are not comparable, so
//! every result folder says where and when it was measured.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What `machine.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub hostname: String,
    /// `model name` of the first CPU in /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on (affinity and cgroup limits applied).
    pub cpus: usize,
    /// `processor` entries in /proc/cpuinfo.
    pub cpus_online: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    /// Whether the CPU has Intel RTM (without it `tm` runs its fallback lock).
    pub rtm: bool,
    /// When the sweep started and ended (UTC, ISO 8601).
    pub started: String,
    pub finished: String,
    /// /proc/loadavg's 1, 5 and 15 minute load at the start and the end: the machine
    /// may be shared, and every run's own 1-minute load is in the CSV.
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
    /// The checkout's commit, with `-dirty` when tracked files differ from it.
    pub git_commit: Option<String>,
    /// The digest of the runtime sources the generated binaries were built with.
    pub runtime_digest: String,
}

impl MachineInfo {
    /// Describes this machine now (`finished` and `load_end` are filled in later).
    pub fn probe() -> MachineInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cpus_online = cpuinfo
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
            .count();
        let rtm = has_rtm_in(&cpuinfo);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines().find_map(|l| {
                    let rest = l.strip_prefix("MemTotal:")?;
                    let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                    Some(kb * 1024)
                })
            })
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let repo = maestro_build::Builder::runtime_dir()
            .parent()
            .map(Path::to_path_buf);
        MachineInfo {
            hostname,
            cpu_model,
            cpus: cpus(),
            cpus_online,
            memory_bytes,
            kernel,
            rtm,
            started: utc_now(),
            finished: String::new(),
            load_start: load_average(),
            load_end: [0.0; 3],
            git_commit: repo.as_deref().and_then(git_commit),
            runtime_digest: maestro_build::RUNTIME_DIGEST.to_string(),
        }
    }

    /// One line for plot captions and the summary.
    pub fn one_line(&self) -> String {
        format!(
            "{}, {} CPUs, {:.0} GiB, Linux {}, RTM {}",
            self.cpu_model,
            self.cpus,
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.kernel,
            if self.rtm { "yes" } else { "no" }
        )
    }
}

/// Whether /proc/cpuinfo lists Intel RTM (restricted transactional memory).
pub fn has_rtm() -> bool {
    has_rtm_in(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn has_rtm_in(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.trim() == "flags" && v.split_whitespace().any(|f| f == "rtm"))
    })
}

/// CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// /proc/loadavg's three averages (zeros where unreadable).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

/// `git rev-parse HEAD` in `repo`, `-dirty` appended when tracked files changed. Only
/// reads the repository.
fn git_commit(repo: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}

/// Now as `2026-11-24T04:20:00Z`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_text(secs)
}

/// Seconds since the epoch as an ISO 8601 UTC time (Howard Hinnant's civil-from-days).
pub fn utc_text(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_text(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_text(1_798_000_000), "2026-12-23T04:26:40Z");
    }

    #[test]
    fn probe_reads_this_machine() {
        let m = MachineInfo::probe();
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes > 0, "{m:?}");
        assert_ne!(m.cpu_model, "");
        assert!(m.started.ends_with('Z'));
    }
}
