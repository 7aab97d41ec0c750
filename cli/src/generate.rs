//! `maestro generate`: writes a standalone Rust crate implementing an NF.
//!
//! Only the sequential strategy exists so far; the parallel ones (shared-nothing, locks,
//! transactional memory) are later work of the generator issue.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::run::NfArgs;
use crate::{diagnostics_error, input_error};

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub enum Strategy {
    /// One core, the NF as written (the baseline the parallel versions must equal).
    Seq,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub nf: NfArgs,
    /// The implementation strategy.
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
    let package = format!("{}-seq", program.name);
    let Strategy::Seq = args.strategy;
    let files = maestro_generator::write_seq_crate(
        &program,
        &args.out,
        &maestro_generator::CrateOptions {
            package: package.clone(),
            runtime_path: runtime,
        },
    )
    .map_err(|e| match e {
        maestro_generator::GenError::Io { .. } => anyhow::Error::new(e),
        other => input_error(other),
    })?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!(
        "build and replay: cargo run --release --manifest-path {} -- CAPTURE.pcap",
        args.out.join("Cargo.toml").display()
    );
    Ok(())
}
