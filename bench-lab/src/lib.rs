//! The scaling-sweep lab: runs the *generated* NF binaries over synthetic traces for
//! every combination of NF × strategy × cores × frame size × churn × Zipf skew, with
//! repetitions, and writes what the paper's core-scaling figures need.
//!
//! A sweep has two phases so that nothing is compiled while anything is measured:
//! 1. [`Plan::prepare`]: per NF, load and analyze it (which strategies apply, which side
//!    its traffic must come from, its flow expiry), build its generated binary once
//!    (`maestro-build`'s cache), solve its RSS configuration once per core count
//!    (`maestro-rss`); per distinct trace configuration, write one capture
//!    (`maestro-trafficgen`) into the trace cache.
//! 2. [`Plan::run`]: `<binary> run --pcap T --strategy S --cores N --rss R --json` for
//!    each point and repetition (repetitions outermost, so a burst of load on a shared
//!    machine spreads over points instead of sinking one), one CSV row per run as soon
//!    as it ends, failures included; then the report ([`report::write_report`]):
//!    `summary.md` and one SVG per (NF, size, churn, skew).
//!
//! The CSV goes through the `csv` crate (serde rows), the plots through `plotters`
//! (SVG backend, no font features).
//!
//! Output folder: `results.csv`, `machine.json`, `sweep.json` (the resolved sweep,
//! skipped strategies, notes), `summary.md`, `plots/*.svg`, `rss/*.json`, `traces/`.

pub mod baselines;
pub mod config;
pub mod csv;
pub mod machine;
pub mod plot;
pub mod report;
pub mod runner;
pub mod sweep;
pub mod trace;

use std::path::PathBuf;

pub use config::{FrameSize, Ingress, NfSpec, SweepConfig};
pub use csv::{Row, Status};
pub use machine::MachineInfo;
pub use report::{write_report, ReportOptions};
pub use sweep::{Event, Plan, Point, SweepOutcome};

/// Why a sweep could not be set up or its results not written. A failing *point* is not
/// an error: it is a row with status `failed` or `timeout`.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "unknown NF `{name}`: give a library NF ({known}) or the path of an NF folder or .nf file"
    )]
    UnknownNf { name: String, known: String },
    #[error("bad {what} `{text}`: {fix}")]
    BadValue {
        what: &'static str,
        text: String,
        fix: String,
    },
    #[error("{what} is empty: give at least one value")]
    Empty { what: &'static str },
    #[error("{cores} cores asked for, but this machine lets the sweep use {cpus} CPUs; lower --cores, or pass --allow-oversubscribe to measure contention on purpose")]
    TooManyCores { cores: usize, cpus: usize },
    #[error("NF {nf}: {source}")]
    Load {
        nf: String,
        #[source]
        source: maestro_analyzer::LoadError,
    },
    #[error("NF {nf}: cannot analyze it: {source}")]
    Analyze {
        nf: String,
        #[source]
        source: maestro_analyzer::AnalysisError,
    },
    #[error("NF {nf}: cannot solve an RSS configuration for {cores} cores: {source}")]
    Rss {
        nf: String,
        cores: usize,
        #[source]
        source: maestro_rss::SolveError,
    },
    #[error("NF {nf}: cannot build the generated binary: {source}")]
    Build {
        nf: String,
        #[source]
        source: maestro_equivalence::binary::BinaryError,
    },
    #[error("cannot generate the trace {name}: {source}")]
    Trace {
        name: String,
        #[source]
        source: maestro_trafficgen::TraceError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// A `results.csv` that does not read: `line` is 1-based (1 is the header).
    #[error("{path}, line {line}: {reason}; {fix}")]
    Csv {
        path: PathBuf,
        line: u64,
        reason: String,
        fix: String,
    },
    #[error("{path}: cannot draw the plot: {source}")]
    Plot {
        path: PathBuf,
        #[source]
        source: plot::PlotError,
    },
}

impl LabError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }
}
