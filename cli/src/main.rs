//! `maestro`: the command line.
//!
//! Subcommands map onto the pipeline's crates: `check` (the NF front end), `run` (the
//! reference interpreter over a capture) and `trafficgen` (synthetic traces). Exit codes:
//! 0 success, 1 a failure of the job itself, 2 a usage or input error.

mod analyze;
mod bench;
mod generate;
mod generated;
mod rss;
mod run;
mod trafficgen;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "maestro",
    version,
    about = "Analyze, parallelize and check software network functions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check an NF; print its devices, config, records and state.
    Check(run::CheckArgs),
    /// Run an NF through the reference interpreter over a capture.
    Run(run::RunArgs),
    /// Generate a synthetic trace (flows, replies, Zipf skew, churn, size mixes).
    Trafficgen(trafficgen::TrafficgenArgs),
    /// Analyse an NF: every path, the state it touches, sharding constraints and verdicts.
    Analyze(analyze::AnalyzeArgs),
    /// Solve RSS keys, hash types and RETA for an NF (or `rss hash`: one Toeplitz hash).
    Rss(rss::RssArgs),
    /// Generate a standalone Rust crate implementing an NF (every strategy; `--strategy`
    /// picks the binary's default).
    Generate(generate::GenerateArgs),
    /// Check the generated parallel versions against the sequential NF: captures,
    /// adversarial traffic, mutants; every divergence classified and minimized.
    Verify(verify::VerifyArgs),
    /// Scaling sweep of the generated binaries: NFs x strategies x cores x sizes x churn
    /// x skew, written as CSV, SVG plots and a summary.
    Bench(bench::BenchArgs),
}

/// An error that is the user's to fix (bad input, bad usage): exit code 2.
#[derive(Debug)]
pub struct InputError {
    error: anyhow::Error,
    /// Already in compiler style (`file:line:col: error: ...`): printed as is.
    diagnostics: bool,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Library errors already spell out their causes; `{:#}` would repeat them.
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for InputError {}

/// Wraps an error as an input error (exit code 2).
pub fn input_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(InputError {
        error: e.into(),
        diagnostics: false,
    })
}

/// Wraps NF source diagnostics, which carry their own `error:` labels (exit code 2).
pub fn diagnostics_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(InputError {
        error: e.into(),
        diagnostics: true,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => run::check(args),
        Command::Run(args) => run::run(args),
        Command::Trafficgen(args) => trafficgen::trafficgen(args),
        Command::Analyze(args) => analyze::analyze(args),
        Command::Rss(args) => rss::rss(args),
        Command::Generate(args) => generate::generate(args),
        Command::Bench(args) => match bench::bench(args) {
            Ok(true) => Ok(()),
            // Every run is in the CSV; some failed.
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Verify(args) => {
            // It replays millions of packets per source through big, short-lived buffers.
            maestro_runtime::memory::retain_freed_memory();
            match verify::verify(args) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(input) = e.downcast_ref::<InputError>() {
                if input.diagnostics {
                    eprintln!("{input}");
                } else {
                    eprintln!("error: {input}");
                }
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
