//! Preparing a sweep (analysis, builds, RSS files, traces) and running it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro_analyzer::{Analysis, AnalyzeOptions, NfProgram, StateKind};
use maestro_build::Builder;
use maestro_equivalence::binary::GeneratedBinary;
use maestro_generator::GenOptions;
use maestro_rss::{export, solve, SolveOptions};
use maestro_runtime::exec::Strategy;
use serde::Serialize;

use crate::config::{FrameSize, Ingress, NfSpec, SweepConfig};
use crate::csv::{CsvWriter, Row, Status};
use crate::machine::{load_average, utc_now, MachineInfo};
use crate::report::{write_report, Report, ReportOptions};
use crate::runner::{run_point, RunRequest};
use crate::trace::{ensure_trace, trace_config, trace_name, TraceSpec};
use crate::LabError;

/// Expiry given to the trace generator for NFs that expire nothing (e.g. nop): the
/// library NFs' default, so their churn traces are the same files as fw's.
pub const DEFAULT_EXPIRY_NS: u64 = 100_000_000_000;

/// What the sweep reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A preparation step (analysis, build, RSS, trace) or a note.
    Step(String),
    /// A run ended (1-based `index` of `total`).
    Run {
        index: usize,
        total: usize,
        row: &'a Row,
    },
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Step(s) => f.write_str(s),
            Event::Run { index, total, row } => {
                write!(
                    f,
                    "[{index}/{total}] {} {} on {} core{}, {}, churn {} fpm, zipf {}, rep {}: ",
                    row.nf,
                    row.strategy,
                    row.cores,
                    if row.cores == 1 { "" } else { "s" },
                    if row.frame_size == "imix" {
                        "IMIX".to_string()
                    } else {
                        format!("{} B", row.frame_size)
                    },
                    row.churn_fpm,
                    row.zipf,
                    row.rep
                )?;
                match (row.status, row.mpps, row.processing_seconds) {
                    (Status::Ok, Some(m), Some(s)) => {
                        write!(f, "{m:.3} Mpps (")?;
                        if let Some(nf) = row.nf_mpps() {
                            write!(f, "NF only {nf:.3} Mpps, ")?;
                        }
                        write!(
                            f,
                            "{:.1} ms, spread {:.2}, load {:.1})",
                            s * 1e3,
                            row.spread.unwrap_or(1.0),
                            row.load1
                        )
                    }
                    _ => write!(f, "{} {}", row.status.name().to_uppercase(), row.error),
                }
            }
        }
    }
}

/// An NF ready to run.
#[derive(Clone, Debug, Serialize)]
pub struct PreparedNf {
    pub spec: NfSpec,
    pub binary: PathBuf,
    /// The analysis's verdict (`shared-nothing`, `locks`).
    pub verdict: String,
    /// `lan` or `wan`, and why.
    pub ingress: String,
    pub ingress_reason: String,
    pub ingress_port: u16,
    pub egress_port: u16,
    pub expiry_ns: u64,
    /// RSS configuration file per core count.
    pub rss: BTreeMap<usize, PathBuf>,
    /// The strategies this NF runs in the sweep.
    pub strategies: Vec<Strategy>,
}

/// One measured configuration (run `reps` times).
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub nf: String,
    pub strategy: Strategy,
    pub cores: usize,
    pub size: FrameSize,
    pub churn_fpm: u64,
    pub zipf: f64,
    pub ingress: String,
    pub trace: PathBuf,
    pub rss: Option<PathBuf>,
    /// The generated binary (public so that a harness can point one elsewhere).
    pub binary: PathBuf,
}

/// A prepared sweep.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub config: SweepConfig,
    pub nfs: Vec<PreparedNf>,
    pub points: Vec<Point>,
    /// Strategies not run for an NF, with the reason.
    pub skipped: Vec<String>,
    /// Things a reader of the results should know (no RTM, seq at 1 core only, ...).
    pub notes: Vec<String>,
    /// Trace files, generated or reused.
    pub traces: Vec<PathBuf>,
}

/// What a finished sweep wrote.
#[derive(Debug)]
pub struct SweepOutcome {
    pub rows: Vec<Row>,
    pub csv: PathBuf,
    pub machine: PathBuf,
    pub report: Report,
}

impl SweepOutcome {
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.status != Status::Ok).count()
    }
}

/// The shortest flow expiry of the NF's state (tables, chains, sketches), if any.
fn shortest_expiry(program: &NfProgram) -> Option<u64> {
    program
        .states
        .iter()
        .filter_map(|s| match s.kind {
            StateKind::Table { ttl, .. }
            | StateKind::DChain { ttl, .. }
            | StateKind::Sketch { ttl, .. } => Some(ttl),
            _ => None,
        })
        .filter(|&t| t > 0)
        .min()
}

/// The side flows should start from: the one whose packets write state (expiry aside).
/// Returns (side, reason).
fn auto_ingress(analysis: &Analysis, lan: u16, wan: u16) -> (Ingress, String) {
    let writes = |port: u16| {
        analysis
            .sites
            .iter()
            .any(|s| s.port == port && s.access == "write" && s.method != "expire")
    };
    match (writes(lan), writes(wan)) {
        (false, true) => (
            Ingress::Wan,
            "only WAN packets write state: flows start on the WAN side".into(),
        ),
        (true, _) => (
            Ingress::Lan,
            "LAN packets write state: flows start on the LAN side".into(),
        ),
        (false, false) => (
            Ingress::Lan,
            "no packet writes state: flows start on the LAN side".into(),
        ),
    }
}

impl Plan {
    /// Validates the sweep, then analyzes and builds every NF, solves its RSS
    /// configurations and writes (or reuses) every trace. Nothing is measured yet.
    pub fn prepare(
        config: SweepConfig,
        builder: &Builder,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Plan, LabError> {
        config.validate()?;
        std::fs::create_dir_all(&config.out).map_err(LabError::io(&config.out))?;
        let rss_dir = config.out.join("rss");
        let mut skipped = Vec::new();
        let mut notes = Vec::new();
        if config.strategies.contains(&Strategy::Seq) && !config.cores.contains(&1) {
            notes.push(
                "seq runs on 1 core only (it is the reference line), although --cores has no 1"
                    .to_string(),
            );
        }
        if config.strategies.contains(&Strategy::Tm) && !crate::machine::has_rtm() {
            notes.push(
                "this CPU has no RTM: every tm transaction takes its fallback lock, so tm \
                 measures a global lock here"
                    .to_string(),
            );
        }
        let mut nfs = Vec::new();
        for spec in &config.nfs {
            events(Event::Step(format!("{}: loading and analyzing", spec.name)));
            let program =
                maestro_analyzer::load_nf(&spec.path, &[]).map_err(|source| LabError::Load {
                    nf: spec.name.clone(),
                    source,
                })?;
            let analysis = maestro_analyzer::analyze_with(&program, &AnalyzeOptions::default())
                .map_err(|source| LabError::Analyze {
                    nf: spec.name.clone(),
                    source,
                })?;
            events(Event::Step(format!(
                "{}: building the generated binary (cached in {})",
                spec.name,
                builder.cache().display()
            )));
            let binary = GeneratedBinary::build(builder, &program, &GenOptions::default())
                .map_err(|source| LabError::Build {
                    nf: spec.name.clone(),
                    source,
                })?;
            let (lan, wan) = (binary.info.lan_port, binary.info.wan_port);
            let (side, reason) = match config.ingress {
                Ingress::Auto => auto_ingress(&analysis, lan, wan),
                forced => (forced, "chosen with --ingress".to_string()),
            };
            let (ingress_port, egress_port) = match side {
                Ingress::Wan => (wan, lan),
                _ => (lan, wan),
            };
            let sn_ok = analysis.verdict.strategy == "shared-nothing";
            let mut strategies = Vec::new();
            for &s in &config.strategies {
                if s == Strategy::Sn && !sn_ok {
                    let why = format!(
                        "{}: sn skipped: the analysis says `{}`: {}",
                        spec.name, analysis.verdict.strategy, analysis.verdict.summary
                    );
                    events(Event::Step(why.clone()));
                    skipped.push(why);
                } else {
                    strategies.push(s);
                }
            }
            let mut rss = BTreeMap::new();
            if strategies.iter().any(|&s| s != Strategy::Seq) {
                std::fs::create_dir_all(&rss_dir).map_err(LabError::io(&rss_dir))?;
                for &cores in &config.cores {
                    let cfg = solve(
                        &analysis,
                        &SolveOptions {
                            cores,
                            seed: config.seed,
                            ..SolveOptions::default()
                        },
                    )
                    .map_err(|source| LabError::Rss {
                        nf: spec.name.clone(),
                        cores,
                        source,
                    })?;
                    let path = rss_dir.join(format!("{}-{cores}.json", spec.name));
                    std::fs::write(&path, export::json(&cfg)).map_err(LabError::io(&path))?;
                    rss.insert(cores, path);
                }
            }
            let ingress = if side == Ingress::Wan { "wan" } else { "lan" };
            events(Event::Step(format!(
                "{}: verdict {}, flows from {ingress} ({reason})",
                spec.name, analysis.verdict.strategy
            )));
            nfs.push(PreparedNf {
                spec: spec.clone(),
                binary: binary.built.binary.clone(),
                verdict: analysis.verdict.strategy.clone(),
                ingress: ingress.to_string(),
                ingress_reason: reason,
                ingress_port,
                egress_port,
                expiry_ns: shortest_expiry(&program).unwrap_or(DEFAULT_EXPIRY_NS),
                rss,
                strategies,
            });
        }

        let trace_dir = config.trace_dir();
        let mut traces: HashMap<String, PathBuf> = HashMap::new();
        let mut trace_list = Vec::new();
        let mut points = Vec::new();
        for nf in &nfs {
            for &size in &config.sizes {
                for &churn_fpm in &config.churn_fpm {
                    for &zipf in &config.zipf {
                        let spec = TraceSpec {
                            size,
                            churn_fpm,
                            zipf,
                            ingress_port: nf.ingress_port,
                            egress_port: nf.egress_port,
                            expiry_ns: nf.expiry_ns,
                        };
                        let tc = trace_config(&config, &spec);
                        let name = trace_name(&spec, &tc);
                        let trace = match traces.get(&name) {
                            Some(p) => p.clone(),
                            None => {
                                events(Event::Step(format!(
                                    "trace {name}: {} packets, {size}, churn {churn_fpm} fpm, zipf {zipf}",
                                    config.packets
                                )));
                                let (p, made) = ensure_trace(&trace_dir, &name, &tc)?;
                                if !made {
                                    events(Event::Step(format!(
                                        "trace {name}: reused {}",
                                        p.display()
                                    )));
                                }
                                traces.insert(name, p.clone());
                                trace_list.push(p.clone());
                                p
                            }
                        };
                        for &strategy in &nf.strategies {
                            let cores: &[usize] = if strategy == Strategy::Seq {
                                &[1]
                            } else {
                                &config.cores
                            };
                            for &c in cores {
                                points.push(Point {
                                    nf: nf.spec.name.clone(),
                                    strategy,
                                    cores: c,
                                    size,
                                    churn_fpm,
                                    zipf,
                                    ingress: nf.ingress.clone(),
                                    trace: trace.clone(),
                                    rss: (strategy != Strategy::Seq)
                                        .then(|| nf.rss.get(&c).cloned())
                                        .flatten(),
                                    binary: nf.binary.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(Plan {
            config,
            nfs,
            points,
            skipped,
            notes,
            traces: trace_list,
        })
    }

    /// Runs every point `reps` times (repetitions outermost), appending one CSV row per
    /// run, then writes `machine.json` and the report. Failed runs are rows, not errors.
    pub fn run(
        &self,
        report: &ReportOptions,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<SweepOutcome, LabError> {
        let out = &self.config.out;
        std::fs::create_dir_all(out).map_err(LabError::io(out))?;
        let mut machine = MachineInfo::probe();
        let machine_path = out.join("machine.json");
        write_json(&machine_path, &machine)?;
        write_json(&out.join("sweep.json"), self)?;
        let csv_path = out.join("results.csv");
        let mut csv = CsvWriter::create(&csv_path)?;
        let total = self.points.len() * self.config.reps as usize;
        let mut rows = Vec::with_capacity(total);
        let timeout = Duration::from_secs(self.config.timeout_s);
        let mut index = 0;
        for rep in 1..=self.config.reps {
            for p in &self.points {
                index += 1;
                let load1 = load_average()[0];
                let started = utc_now();
                let m = run_point(&RunRequest {
                    binary: p.binary.clone(),
                    trace: p.trace.clone(),
                    strategy: p.strategy,
                    cores: p.cores,
                    rss: p.rss.clone(),
                    expected_packets: self.config.packets,
                    no_pin: self.config.no_pin,
                    timeout,
                });
                let row = Row {
                    nf: p.nf.clone(),
                    strategy: p.strategy.name().to_string(),
                    cores: p.cores,
                    frame_size: p.size.label(),
                    churn_fpm: p.churn_fpm,
                    zipf: p.zipf,
                    packets: self.config.packets,
                    rep,
                    status: m.status,
                    spread: m.spread(p.cores),
                    error: m.error,
                    processing_seconds: m.processing_seconds,
                    mpps: m.mpps,
                    packets_per_core: m.packets_per_core,
                    forwarded: m.forwarded,
                    dropped: m.dropped,
                    flooded: m.flooded,
                    refused: m.refused,
                    rtm: m.rtm,
                    load1,
                    wall_seconds: m.wall_seconds,
                    ingress: p.ingress.clone(),
                    trace: p
                        .trace
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    started,
                    dispatch_seconds: m.dispatch_seconds,
                    nf_seconds: m.nf_seconds,
                    collect_seconds: m.collect_seconds,
                };
                csv.append(&row)?;
                events(Event::Run {
                    index,
                    total,
                    row: &row,
                });
                rows.push(row);
            }
        }
        machine.finished = utc_now();
        machine.load_end = load_average();
        write_json(&machine_path, &machine)?;
        let report = write_report(out, report)?;
        Ok(SweepOutcome {
            rows,
            csv: csv_path,
            machine: machine_path,
            report,
        })
    }

    /// Removes the trace files this sweep used (they can be regenerated from
    /// `sweep.json`), keeping their JSON descriptions.
    pub fn remove_traces(&self) -> Result<(), LabError> {
        for t in &self.traces {
            std::fs::remove_file(t).map_err(LabError::io(t))?;
        }
        Ok(())
    }
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), LabError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| LabError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text + "\n").map_err(LabError::io(path))
}
