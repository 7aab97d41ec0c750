//! `maestro analyze`: the symbolic analysis of an NF (paths, state accesses, sharding
//! constraints and verdicts), as text, JSON (`docs/analysis-json.md`) or Graphviz.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use maestro_analyzer::{AnalysisError, AnalyzeOptions};

use crate::run::NfArgs;
use crate::{diagnostics_error, input_error};

#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub nf: NfArgs,
    /// Print the analysis as JSON (schema: docs/analysis-json.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the execution trees as a Graphviz dot file.
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Give up on a solver query after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub solver_timeout_ms: u32,
    /// Give up when the NF has more paths than this.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_paths: usize,
}

pub fn analyze(args: AnalyzeArgs) -> Result<()> {
    let program =
        maestro_analyzer::load_nf(&args.nf.nf, &args.nf.overrides).map_err(|e| match e {
            maestro_analyzer::LoadError::Source(_) => diagnostics_error(e),
            other => input_error(other),
        })?;
    let opts = AnalyzeOptions {
        solver_timeout_ms: args.solver_timeout_ms,
        max_paths: args.max_paths,
    };
    let analysis = maestro_analyzer::analyze_with(&program, &opts).map_err(|e| match e {
        // The NF uses something the analysis cannot handle: the user's to change.
        AnalysisError::Unsupported { .. } | AnalysisError::TooManyPaths { .. } => input_error(e),
        AnalysisError::Solver { .. } => anyhow::Error::new(e),
    })?;
    if let Some(path) = &args.dot {
        std::fs::write(path, maestro_analyzer::sym::render::dot(&analysis))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", analysis.to_json());
    } else {
        print!("{}", maestro_analyzer::sym::render::text(&analysis));
    }
    Ok(())
}
