//! The symbolic analysis: every path of `process`, the state it touches, and whether the
//! NF can be sharded across cores with no shared state.
//!
//! Pipeline ([`analyze`]):
//! 1. [`exec`]: exhaustive symbolic execution per input port, pruned with Z3; an
//!    execution tree and its paths (path condition, state operations, action, packet
//!    classes).
//! 2. [`access`]: access sites (call × input port), read or write, and what selects the
//!    entry each touches.
//! 3. [`shard`]: Maestro's rules R1–R5 give the co-location constraints and the verdicts.
//! 4. [`report`]: everything as plain serializable data ([`Analysis`], JSON schema in
//!    `docs/analysis-json.md`), printed by [`render`] as text or Graphviz.

pub mod access;
mod build;
pub mod classes;
mod encode;
pub mod error;
pub mod exec;
pub mod paths;
pub mod render;
pub mod report;
pub mod shard;
pub mod solver;
pub mod term;

pub use classes::PacketClass;
pub use error::AnalysisError;
pub use report::Analysis;

use crate::lang::ir::NfProgram;

/// Knobs of the analysis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Per solver query; a query that runs longer is an error naming its construct.
    pub solver_timeout_ms: u32,
    /// Paths over all input ports before the analysis gives up.
    pub max_paths: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            solver_timeout_ms: 10_000,
            max_paths: 100_000,
        }
    }
}

/// Analyses an NF with the default options.
pub fn analyze(prog: &NfProgram) -> Result<Analysis, AnalysisError> {
    analyze_with(prog, &AnalyzeOptions::default())
}

/// Analyses an NF: paths, state accesses, sharding constraints and verdicts.
pub fn analyze_with(prog: &NfProgram, opts: &AnalyzeOptions) -> Result<Analysis, AnalysisError> {
    let cfg = z3::Config::new();
    let ctx = z3::Context::new(&cfg);
    let mut smt = solver::Smt::new(&ctx, opts.solver_timeout_ms);
    let labels = exec::call_labels(prog);
    let mut ports = Vec::new();
    let mut found = 0;
    for port in 0..prog.port_count {
        let ex = exec::Explorer::new(
            prog,
            &mut smt,
            &labels,
            port,
            found,
            opts.max_paths,
            opts.solver_timeout_ms,
        )
        .explore()?;
        found += ex.paths.len();
        ports.push(ex);
    }
    let model = access::build(prog, &ports);
    let names = |p: u16| build::device_name(prog, p);
    let shard = shard::analyze(prog, &ports, &model, &mut smt, &names).map_err(|e| match e {
        AnalysisError::Solver {
            location,
            what,
            reason,
            ..
        } => AnalysisError::Solver {
            location,
            what,
            reason,
            timeout_ms: opts.solver_timeout_ms,
        },
        other => other,
    })?;
    Ok(build::build(prog, &ports, &model, &shard, smt.queries))
}
