//! `maestro verify`: checks the generated parallel versions of an NF against its
//! sequential meaning (`maestro_equivalence::verify`). Exit codes: 0 equivalent (envelope
//! divergences are warnings unless `--strict`), 1 a divergence (or a mutant that survived
//! `--mutants`), 2 a usage or input error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use maestro_build::Builder;
use maestro_equivalence::verify::{Verifier, VerifyError, VerifyOptions};
use maestro_runtime::exec::Strategy;
use maestro_runtime::packet::ParseMode;

use crate::run::{NfArgs, ParseModeArg};
use crate::{diagnostics_error, input_error};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    Sn,
    Locks,
    Tm,
    /// Every strategy valid for the NF.
    All,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub nf: NfArgs,
    /// Captures to replay (repeatable). Without any, and without --adversarial, a
    /// synthetic trace is generated.
    #[arg(long)]
    pub pcap: Vec<PathBuf>,
    /// Also run traffic generated from the analysis and the RSS configuration
    /// (co-location pairs, RETA-bucket collisions, expiry boundaries, odd packets, full
    /// tables, one sequence per feasible path, random traces).
    #[arg(long)]
    pub adversarial: bool,
    /// Parallel strategies to check.
    #[arg(long, value_enum, default_value = "all")]
    pub strategy: StrategyArg,
    /// Cores of the parallel runs.
    #[arg(long, default_value_t = 2)]
    pub cores: usize,
    /// Deterministic schedules per run (besides real threads).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Random traces with --adversarial.
    #[arg(long, default_value_t = 32)]
    pub random: u32,
    /// Envelope divergences (capacity, time) fail instead of warn.
    #[arg(long)]
    pub strict: bool,
    /// Write the complete report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write minimized counterexamples (pcapng, interface = input port) here.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Run the built-in known-bad parallelizations and report which traffic kills each.
    #[arg(long)]
    pub mutants: bool,
    /// How capture packets get their input port (see `maestro run --help`).
    #[arg(long, default_value = "auto")]
    pub device_map: String,
    /// IPv4 acceptance rules.
    #[arg(long, value_enum, default_value = "strict")]
    pub parse_mode: ParseModeArg,
    /// Seed of the keys, schedules and generated traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Divergences shown per run in the text report.
    #[arg(long, default_value_t = 3)]
    pub show: usize,
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    if args.cores == 0 {
        return Err(input_error(anyhow::anyhow!("--cores must be at least 1")));
    }
    let mut opts = VerifyOptions::new(&args.nf.nf);
    opts.overrides = args.nf.overrides.clone();
    opts.pcaps = args.pcap.clone();
    opts.device_map = args.device_map.clone();
    opts.adversarial = args.adversarial;
    opts.random_traces = args.random;
    opts.strategies = match args.strategy {
        StrategyArg::Sn => vec![Strategy::Sn],
        StrategyArg::Locks => vec![Strategy::Locks],
        StrategyArg::Tm => vec![Strategy::Tm],
        StrategyArg::All => vec![Strategy::Sn, Strategy::Locks, Strategy::Tm],
    };
    opts.cores = args.cores;
    opts.seeds = args.seeds;
    opts.strict = args.strict;
    opts.out_dir = args.out_dir.clone();
    opts.mutants = args.mutants;
    opts.parse_mode = match args.parse_mode {
        ParseModeArg::Strict => ParseMode::Strict,
        ParseModeArg::MaestroCompat => ParseMode::MaestroCompat,
    };
    opts.seed = args.seed;
    let work = opts.work_dir.clone();

    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} verify [{elapsed}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let status = bar.clone();
    let progress = Box::new(move |msg: &str| status.set_message(msg.to_string()));
    let builder = Builder::new(None).with_progress(std::io::stderr().is_terminal());
    let result = Verifier::prepare(opts, &builder, progress).and_then(|v| v.run());
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&work);
    let report = result.map_err(|e| match e {
        VerifyError::Load(maestro_analyzer::LoadError::Source(_)) => diagnostics_error(e),
        VerifyError::Binary(_) | VerifyError::Io { .. } | VerifyError::Compare(_) => {
            anyhow::Error::new(e)
        }
        other => input_error(other),
    })?;
    // A closed stdout (`| head`) is not an error of the verification.
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        report.render_text(args.show)
    );
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        let _ = writeln!(std::io::stdout().lock(), "report: {}", path.display());
    }
    Ok(ExitCode::from(report.exit_code() as u8))
}
