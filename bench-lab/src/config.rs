//! What a sweep measures: the lists it crosses and the knobs shared by every point,
//! parsed from the command line's comma-separated forms and checked before anything is
//! built, so a typo fails in a second instead of after an hour of compiling.

use std::fmt;
use std::path::PathBuf;

use maestro_runtime::exec::Strategy;
use maestro_trafficgen::{parse_count, MAX_FRAME_SIZE, MAX_ZIPF_S, MIN_FRAME_SIZE};
use serde::{Deserialize, Serialize};

use crate::LabError;

/// One NF of the sweep: the name rows and plots use, and where its source is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NfSpec {
    pub name: String,
    pub path: PathBuf,
}

/// A frame-size setting of the traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FrameSize {
    /// Every frame this many bytes, FCS included (64..=1518).
    Fixed(u16),
    /// CSIT's IMIX_v4_1 (28 x 64 B, 16 x 570 B, 4 x 1518 B).
    Imix,
}

impl FrameSize {
    /// Parses `64` or `imix`.
    pub fn parse(text: &str) -> Result<FrameSize, LabError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("imix") {
            return Ok(FrameSize::Imix);
        }
        match t.parse::<u16>() {
            Ok(n) if (MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&n) => Ok(FrameSize::Fixed(n)),
            _ => Err(LabError::BadValue {
                what: "frame size",
                text: text.to_string(),
                fix: format!(
                    "give a frame size in bytes with the FCS, {MIN_FRAME_SIZE}..={MAX_FRAME_SIZE}, or `imix`"
                ),
            }),
        }
    }

    /// The name in rows and file names: `64` or `imix`.
    pub fn label(self) -> String {
        match self {
            FrameSize::Fixed(n) => n.to_string(),
            FrameSize::Imix => "imix".to_string(),
        }
    }
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameSize::Fixed(n) => write!(f, "{n} B"),
            FrameSize::Imix => f.write_str("IMIX"),
        }
    }
}

/// Which side of the NF the traces' flows start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingress {
    /// The side whose packets write state, from the analysis: `wan` for NFs that only
    /// keep state about WAN senders (policer, connection limiter, port-scan detector),
    /// else `lan`. Traffic that never reaches an NF's state measures nothing but parsing.
    Auto,
    Lan,
    Wan,
}

impl Ingress {
    pub fn parse(text: &str) -> Result<Ingress, LabError> {
        match text.trim() {
            "auto" => Ok(Ingress::Auto),
            "lan" => Ok(Ingress::Lan),
            "wan" => Ok(Ingress::Wan),
            _ => Err(LabError::BadValue {
                what: "ingress",
                text: text.to_string(),
                fix: "use auto, lan or wan".into(),
            }),
        }
    }
}

/// A whole sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepConfig {
    pub nfs: Vec<NfSpec>,
    /// `seq` runs at 1 core only, as the reference line; the others at every core count.
    pub strategies: Vec<Strategy>,
    pub cores: Vec<usize>,
    pub sizes: Vec<FrameSize>,
    /// Flows per minute of trace time (0: none).
    pub churn_fpm: Vec<u64>,
    /// Zipf exponents of flow popularity (0: uniform).
    pub zipf: Vec<f64>,
    /// Packets per trace.
    pub packets: u64,
    /// Runs of every point.
    pub reps: u32,
    /// Flows active at a time.
    pub flows: u32,
    /// Share of a started flow's packets that are its reply.
    pub reply_ratio: f64,
    /// Timestamps as at this bit rate on the wire (Maestro's churn levels are defined
    /// at 100 Gbit/s); `None` uses `rate_pps`.
    pub bit_rate: Option<u64>,
    pub rate_pps: u64,
    pub seed: u64,
    pub ingress: Ingress,
    /// Where results go.
    pub out: PathBuf,
    /// Where traces are cached (default `<out>/traces`).
    pub traces: Option<PathBuf>,
    /// Run points with more cores than the machine has CPUs (measures contention).
    pub allow_oversubscribe: bool,
    /// Pass `--no-pin` to the binary.
    pub no_pin: bool,
    /// Seconds one run may take before it is killed and recorded as timed out.
    pub timeout_s: u64,
}

impl SweepConfig {
    /// A sweep over `nfs` with the lab's defaults: seq and sn on 1 and 2 cores, 64 B
    /// frames, no churn, uniform flows, 1M packets, 3 repetitions, 40,000 flows, 100 Gbit/s
    /// timestamps.
    pub fn new(nfs: Vec<NfSpec>, out: impl Into<PathBuf>) -> SweepConfig {
        SweepConfig {
            nfs,
            strategies: vec![Strategy::Seq, Strategy::Sn],
            cores: vec![1, 2],
            sizes: vec![FrameSize::Fixed(64)],
            churn_fpm: vec![0],
            zipf: vec![0.0],
            packets: 1_000_000,
            reps: 3,
            flows: 40_000,
            reply_ratio: 0.0,
            bit_rate: Some(100_000_000_000),
            rate_pps: 1_000_000,
            seed: 1,
            ingress: Ingress::Auto,
            out: out.into(),
            traces: None,
            allow_oversubscribe: false,
            no_pin: false,
            timeout_s: 600,
        }
    }

    /// The trace cache folder.
    pub fn trace_dir(&self) -> PathBuf {
        self.traces
            .clone()
            .unwrap_or_else(|| self.out.join("traces"))
    }

    /// Checks everything that can be checked without building: empty lists, zero
    /// values, ranges, and cores beyond this machine's CPUs.
    pub fn validate(&self) -> Result<(), LabError> {
        let empty = |what: &'static str, n: usize| {
            if n == 0 {
                Err(LabError::Empty { what })
            } else {
                Ok(())
            }
        };
        empty("--nf", self.nfs.len())?;
        empty("--strategies", self.strategies.len())?;
        empty("--cores", self.cores.len())?;
        empty("--sizes", self.sizes.len())?;
        empty("--churn", self.churn_fpm.len())?;
        empty("--zipf", self.zipf.len())?;
        if self.cores.contains(&0) {
            return Err(LabError::BadValue {
                what: "core count",
                text: "0".into(),
                fix: "core counts start at 1".into(),
            });
        }
        if self.packets == 0 {
            return Err(LabError::BadValue {
                what: "packet count",
                text: "0".into(),
                fix: "give at least one packet (e.g. --packets 1M)".into(),
            });
        }
        if self.reps == 0 {
            return Err(LabError::BadValue {
                what: "repetitions",
                text: "0".into(),
                fix: "give at least one repetition".into(),
            });
        }
        for &z in &self.zipf {
            check_zipf(z)?;
        }
        if !(0.0..=1.0).contains(&self.reply_ratio) {
            return Err(LabError::BadValue {
                what: "reply ratio",
                text: self.reply_ratio.to_string(),
                fix: "give a probability in 0..=1".into(),
            });
        }
        if self.timeout_s == 0 {
            return Err(LabError::BadValue {
                what: "timeout",
                text: "0".into(),
                fix: "give at least one second".into(),
            });
        }
        let cpus = crate::machine::cpus();
        let top = self.cores.iter().copied().max().unwrap_or(1);
        if top > cpus && !self.allow_oversubscribe {
            return Err(LabError::TooManyCores { cores: top, cpus });
        }
        Ok(())
    }
}

fn check_zipf(z: f64) -> Result<(), LabError> {
    if z.is_finite() && (0.0..=MAX_ZIPF_S).contains(&z) {
        Ok(())
    } else {
        Err(LabError::BadValue {
            what: "Zipf exponent",
            text: z.to_string(),
            fix: format!("give s in 0..={MAX_ZIPF_S} (0 is uniform, 1.26 CASTAN's skew)"),
        })
    }
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// NFs by library name (`fw`) or path (a folder holding one `.nf` file, or the file).
pub fn parse_nfs(text: &str) -> Result<Vec<NfSpec>, LabError> {
    let mut out: Vec<NfSpec> = Vec::new();
    for item in items(text) {
        let spec = if maestro_nfs::ALL.contains(&item) {
            NfSpec {
                name: item.to_string(),
                path: maestro_nfs::nf_dir(item),
            }
        } else {
            let path = PathBuf::from(item);
            if !path.exists() {
                return Err(LabError::UnknownNf {
                    name: item.to_string(),
                    known: maestro_nfs::ALL.join(", "),
                });
            }
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| item.to_string());
            NfSpec { name, path }
        };
        if out.iter().any(|n| n.name == spec.name) {
            return Err(LabError::BadValue {
                what: "NF list",
                text: text.to_string(),
                fix: format!("`{}` appears twice; name each NF once", spec.name),
            });
        }
        out.push(spec);
    }
    Ok(out)
}

/// `seq,sn,locks,tm` (or `all`).
pub fn parse_strategies(text: &str) -> Result<Vec<Strategy>, LabError> {
    let mut out = Vec::new();
    for item in items(text) {
        if item == "all" {
            return Ok(Strategy::ALL.to_vec());
        }
        let s = Strategy::parse(item).ok_or_else(|| LabError::BadValue {
            what: "strategy",
            text: item.to_string(),
            fix: "use seq, sn, locks, tm or all".into(),
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// `1,2,4` or a range `1-4` (every count in it); sorted, without repeats.
pub fn parse_cores(text: &str) -> Result<Vec<usize>, LabError> {
    let bad = |item: &str| LabError::BadValue {
        what: "core count",
        text: item.to_string(),
        fix: "give positive integers, e.g. 1,2,4 or 1-4".into(),
    };
    let mut out = Vec::new();
    for item in items(text) {
        if let Some((a, b)) = item.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad(item))?;
            let b: usize = b.trim().parse().map_err(|_| bad(item))?;
            if a == 0 || b < a {
                return Err(bad(item));
            }
            out.extend(a..=b);
        } else {
            let n: usize = item.parse().map_err(|_| bad(item))?;
            if n == 0 {
                return Err(LabError::BadValue {
                    what: "core count",
                    text: item.to_string(),
                    fix: "core counts start at 1".into(),
                });
            }
            out.push(n);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `64,imix`.
pub fn parse_sizes(text: &str) -> Result<Vec<FrameSize>, LabError> {
    let mut out = Vec::new();
    for item in items(text) {
        let s = FrameSize::parse(item)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// `0,250k,1M` flows per minute.
pub fn parse_churn(text: &str) -> Result<Vec<u64>, LabError> {
    let mut out = Vec::new();
    for item in items(text) {
        let c = parse_count("churn", item).map_err(|e| LabError::BadValue {
            what: "churn",
            text: item.to_string(),
            fix: format!("{e}; flows per minute such as 0, 250k or 1M"),
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// `0,1.26`.
pub fn parse_zipf(text: &str) -> Result<Vec<f64>, LabError> {
    let mut out: Vec<f64> = Vec::new();
    for item in items(text) {
        let z: f64 = item.parse().map_err(|_| LabError::BadValue {
            what: "Zipf exponent",
            text: item.to_string(),
            fix: format!("give a number in 0..={MAX_ZIPF_S}, e.g. 0 or 1.26"),
        })?;
        check_zipf(z)?;
        if !out.contains(&z) {
            out.push(z);
        }
    }
    Ok(out)
}

/// A count such as `1M` or `20k`.
pub fn parse_packets(text: &str) -> Result<u64, LabError> {
    parse_count("packet count", text).map_err(|e| LabError::BadValue {
        what: "packet count",
        text: text.to_string(),
        fix: format!("{e}; e.g. 1M or 20000"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_refuse() {
        assert_eq!(parse_cores("2,1,1-3").unwrap(), vec![1, 2, 3]);
        assert!(parse_cores("0").is_err());
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("two").is_err());
        assert_eq!(
            parse_sizes("64, imix").unwrap(),
            vec![FrameSize::Fixed(64), FrameSize::Imix]
        );
        assert!(parse_sizes("63").is_err());
        assert!(parse_sizes("1519").is_err());
        assert!(parse_sizes("jumbo").is_err());
        assert_eq!(
            parse_churn("0,1M,250k").unwrap(),
            vec![0, 1_000_000, 250_000]
        );
        assert!(parse_churn("lots").is_err());
        assert_eq!(parse_zipf("0,1.26").unwrap(), vec![0.0, 1.26]);
        assert!(parse_zipf("2.5").is_err());
        assert!(parse_zipf("-1").is_err());
        assert_eq!(
            parse_strategies("seq,sn,sn").unwrap(),
            vec![Strategy::Seq, Strategy::Sn]
        );
        assert_eq!(parse_strategies("all").unwrap().len(), 4);
        assert!(parse_strategies("htm").is_err());
        assert_eq!(parse_packets("20k").unwrap(), 20_000);
        assert!(parse_packets("x").is_err());
    }

    #[test]
    fn nfs_by_name_or_path() {
        let nfs = parse_nfs("fw,nat").unwrap();
        assert_eq!(nfs[0].name, "fw");
        assert!(nfs[0].path.join("fw.nf").is_file());
        let e = parse_nfs("fw,nosuchnf").unwrap_err().to_string();
        assert!(e.contains("nosuchnf") && e.contains("psd"), "{e}");
        assert!(parse_nfs("fw,fw").is_err());
    }

    #[test]
    fn validate_refuses_more_cores_than_cpus() {
        let mut c = SweepConfig::new(parse_nfs("nop").unwrap(), "/tmp/x");
        c.cores = vec![crate::machine::cpus() + 1];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--allow-oversubscribe"), "{e}");
        c.allow_oversubscribe = true;
        c.validate().unwrap();
        c.reps = 0;
        assert!(c.validate().is_err());
    }
}
