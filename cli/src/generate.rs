//! `maestro generate`: writes a standalone Rust crate implementing an NF.
//!
//! The crate's binary is the runtime's driver for the NF and runs every strategy
//! (`--strategy` on its own command line); `--strategy` here chooses its default. `sn`
//! is refused unless the analysis says the NF is shared-nothing.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use maestro_analyzer::{AnalysisError, AnalyzeOptions};

use crate::run::NfArgs;
use crate::{diagnostics_error, input_error};

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub enum Strategy {
    /// One core, the NF as written (the baseline the parallel versions must equal).
    Seq,
    /// Shared-nothing: state per core, RSS keeps packets that share state together
    /// (only for NFs the analysis finds shared-nothing).
    Sn,
    /// One shared state behind a speculative read-write lock.
    Locks,
    /// One shared state, each packet a hardware transaction (a global lock without RTM).
    Tm,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::Seq => "seq",
            Strategy::Sn => "sn",
            Strategy::Locks => "locks",
            Strategy::Tm => "tm",
        }
    }
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub nf: NfArgs,
    /// The binary's default strategy (its `--strategy` option still chooses any).
    #[arg(long, value_enum, default_value = "seq")]
    pub strategy: Strategy,
    /// Folder to write the crate to (created if missing; files in it are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Path of the `maestro-runtime` crate written into the generated Cargo.toml
    /// (default: this checkout's `runtime/`, made absolute).
    #[arg(long)]
    pub runtime: Option<PathBuf>,
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    let program =
        maestro_analyzer::load_nf(&args.nf.nf, &args.nf.overrides).map_err(|e| match e {
            maestro_analyzer::LoadError::Source(_) => diagnostics_error(e),
            other => input_error(other),
        })?;
    if let Strategy::Sn = args.strategy {
        let analysis = maestro_analyzer::analyze_with(&program, &AnalyzeOptions::default())
            .map_err(|e| match e {
                AnalysisError::Unsupported { .. } | AnalysisError::TooManyPaths { .. } => {
                    input_error(e)
                }
                AnalysisError::Solver { .. } => anyhow::Error::new(e),
            })?;
        let verdict = &analysis.verdict;
        if verdict.strategy != "shared-nothing" {
            let rule = verdict
                .rule
                .as_deref()
                .map(|r| format!(" (rule {r})"))
                .unwrap_or_default();
            return Err(input_error(anyhow::anyhow!(
                "`{}` cannot be shared-nothing: the analysis says `{}`{rule}: {}\n\
                 generate it with --strategy locks or --strategy tm instead \
                 (`maestro analyze {}` explains the verdict)",
                program.name,
                verdict.strategy,
                verdict.summary,
                args.nf.nf.display()
            )));
        }
    }
    let runtime = match args.runtime {
        Some(p) => p,
        None => {
            let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime");
            here.canonicalize()
                .with_context(|| {
                    format!(
                        "the runtime crate is not at {}; pass --runtime",
                        here.display()
                    )
                })
                .map_err(input_error)?
        }
    };
    let strategy = args.strategy.name();
    let package = format!("{}-{strategy}", program.name);
    let files = maestro_generator::write_crate(
        &program,
        &args.out,
        &maestro_generator::CrateOptions {
            package: package.clone(),
            runtime_path: runtime,
            default_strategy: strategy.to_string(),
            gen: maestro_generator::GenOptions::default(),
        },
    )
    .map_err(|e| match e {
        maestro_generator::GenError::Io { .. } => anyhow::Error::new(e),
        other => input_error(other),
    })?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    let manifest = args.out.join("Cargo.toml");
    println!(
        "build and run: cargo run --release --manifest-path {} -- run --pcap CAPTURE.pcap [--cores N --rss RSS.json]",
        manifest.display()
    );
    println!(
        "on DPDK (libdpdk-dev): cargo run --release --features dpdk --manifest-path {} -- dpdk --eal \"EAL ARGS\" [--cores N --rss RSS.json]",
        manifest.display()
    );
    Ok(())
}
