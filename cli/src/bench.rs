//! `maestro bench`: a scaling sweep of the generated binaries (`maestro_bench_lab`).
//! Parses the lists, prints one progress line per step and per run, and exits 1 when
//! any run failed (the failures are rows of the CSV all the same).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use maestro_bench_lab::config::{
    parse_churn, parse_cores, parse_nfs, parse_packets, parse_sizes, parse_strategies, parse_zipf,
};
use maestro_bench_lab::{write_report, Ingress, LabError, Plan, ReportOptions, SweepConfig};
use maestro_build::Builder;
use maestro_trafficgen::{parse_bit_rate, parse_count};

use crate::input_error;

#[derive(Args)]
#[command(after_help = "Example (the 2-core sweep in results/sweeps/2core-vm):
  maestro bench --nf fw,nat --strategies seq,sn,locks,tm --cores 1,2 --sizes 64,imix \\
    --churn 0,25M --zipf 0,1.26 --packets 1M --reps 3 --out results/sweeps/2core-vm

Writes results.csv (one row per run, failures included), machine.json, sweep.json,
summary.md, plots/*.svg, rss/*.json and the trace cache traces/ into --out.")]
pub struct BenchArgs {
    /// NFs: library names (fw, nat, lb, ...) or paths of NF folders / .nf files.
    #[arg(long, value_name = "NF,...")]
    pub nf: Option<String>,
    /// Strategies: seq, sn, locks, tm or all. seq runs on 1 core only (the reference);
    /// sn is skipped, with a note, for NFs the analysis does not find shared-nothing.
    #[arg(long, default_value = "seq,sn", value_name = "S,...")]
    pub strategies: String,
    /// Core counts (`1,2,4` or `1-4`); more than this machine's CPUs is refused.
    #[arg(long, default_value = "1,2", value_name = "N,...")]
    pub cores: String,
    /// Frame sizes with FCS (64..1518) or `imix` (CSIT IMIX_v4_1).
    #[arg(long, default_value = "64", value_name = "SIZE,...")]
    pub sizes: String,
    /// Churn levels in flows per minute of trace time (`0,250k,25M`).
    #[arg(long, default_value = "0", value_name = "FPM,...")]
    pub churn: String,
    /// Zipf exponents of flow popularity (0 uniform, 1.26 CASTAN's skew).
    #[arg(long, default_value = "0", value_name = "S,...")]
    pub zipf: String,
    /// Packets per trace (`1M`, `20k`).
    #[arg(long, default_value = "1M")]
    pub packets: String,
    /// Repetitions of every point.
    #[arg(long, default_value_t = 3)]
    pub reps: u32,
    /// Flows active at a time.
    #[arg(long, default_value_t = 40_000)]
    pub flows: u32,
    /// Probability that a packet of a started flow is its reply.
    #[arg(long, default_value_t = 0.0)]
    pub reply_ratio: f64,
    /// Trace timestamps as at this bit rate on the wire (default 100G, the rate
    /// Maestro's churn levels are defined at).
    #[arg(long)]
    pub bit_rate: Option<String>,
    /// Trace timestamps at this many packets per second instead of a bit rate.
    #[arg(long, conflicts_with = "bit_rate")]
    pub rate: Option<String>,
    /// Seed of the traces and the RSS keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Side the flows start from: auto (the side whose packets write state), lan, wan.
    #[arg(long, default_value = "auto")]
    pub ingress: String,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Trace cache folder (default OUT/traces).
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// Delete the trace files after the sweep (their JSON descriptions stay).
    #[arg(long)]
    pub clean_traces: bool,
    /// Allow more cores than this machine's CPUs (measures contention, not scaling).
    #[arg(long)]
    pub allow_oversubscribe: bool,
    /// Do not pin the binary's worker threads to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Seconds one run may take before it is killed and recorded as `timeout`.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Draw published VPP figures on 64 B plots (labeled as published, other hardware).
    #[arg(long)]
    pub baselines: bool,
    /// Build cache of the generated binaries (default: MAESTRO_CACHE or ~/.cache/maestro).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Only redraw summary.md and the plots of OUT from its results.csv.
    #[arg(long)]
    pub report_only: bool,
    /// Only prepare: build the binaries, solve RSS, write the traces; measure nothing
    /// (so a later run on a quiet machine starts measuring at once).
    #[arg(long, conflicts_with = "report_only")]
    pub prepare_only: bool,
}

pub fn bench(args: BenchArgs) -> Result<bool> {
    let report = ReportOptions {
        baselines: args.baselines,
    };
    if args.report_only {
        let r = write_report(&args.out, &report).map_err(input_error)?;
        eprintln!(
            "maestro bench: wrote {} and {} plots ({} NF-only)",
            r.summary.display(),
            r.plots.len() + r.nf_plots.len(),
            r.nf_plots.len()
        );
        return Ok(true);
    }
    let Some(nf) = &args.nf else {
        return Err(input_error(anyhow::anyhow!(
            "--nf is required (e.g. --nf fw,nat), unless --report-only"
        )));
    };
    let mut config = SweepConfig::new(parse_nfs(nf).map_err(flag("--nf"))?, &args.out);
    config.strategies = parse_strategies(&args.strategies).map_err(flag("--strategies"))?;
    config.cores = parse_cores(&args.cores).map_err(flag("--cores"))?;
    config.sizes = parse_sizes(&args.sizes).map_err(flag("--sizes"))?;
    config.churn_fpm = parse_churn(&args.churn).map_err(flag("--churn"))?;
    config.zipf = parse_zipf(&args.zipf).map_err(flag("--zipf"))?;
    config.packets = parse_packets(&args.packets).map_err(flag("--packets"))?;
    config.reps = args.reps;
    config.flows = args.flows;
    config.reply_ratio = args.reply_ratio;
    if let Some(rate) = &args.rate {
        config.rate_pps = parse_count("rate", rate).map_err(flag("--rate"))?;
        config.bit_rate = None;
    } else if let Some(b) = &args.bit_rate {
        config.bit_rate = Some(parse_bit_rate(b).map_err(flag("--bit-rate"))?);
    }
    config.seed = args.seed;
    config.ingress = Ingress::parse(&args.ingress).map_err(flag("--ingress"))?;
    config.traces = args.traces.clone();
    config.allow_oversubscribe = args.allow_oversubscribe;
    config.no_pin = args.no_pin;
    config.timeout_s = args.timeout;
    config.validate().map_err(input_error)?;

    let builder = Builder::new(args.cache.clone()).with_progress(std::io::stderr().is_terminal());
    let mut print = |e: maestro_bench_lab::Event<'_>| eprintln!("maestro bench: {e}");
    let plan = Plan::prepare(config, &builder, &mut print).map_err(classify)?;
    if args.prepare_only {
        eprintln!(
            "maestro bench: prepared {} points ({} traces); nothing measured (--prepare-only)",
            plan.points.len(),
            plan.traces.len()
        );
        return Ok(true);
    }
    eprintln!(
        "maestro bench: {} points x {} repetitions; measuring now (nothing is compiled from here on)",
        plan.points.len(),
        plan.config.reps
    );
    let outcome = plan.run(&report, &mut print).map_err(classify)?;
    if args.clean_traces {
        plan.remove_traces()?;
    }
    let failures = outcome.failures();
    eprintln!(
        "maestro bench: {} runs, {} failed; wrote {}, {}, {} and {} plots ({} NF-only)",
        outcome.rows.len(),
        failures,
        outcome.csv.display(),
        outcome.machine.display(),
        outcome.report.summary.display(),
        outcome.report.plots.len() + outcome.report.nf_plots.len(),
        outcome.report.nf_plots.len()
    );
    Ok(failures == 0)
}

/// A bad value of the option `name`, as an input error that names it (exit 2).
fn flag<E: std::fmt::Display>(name: &'static str) -> impl FnOnce(E) -> anyhow::Error {
    move |e| input_error(anyhow::anyhow!("{name}: {e}"))
}

/// NF source problems and bad values are the user's to fix (exit 2); the rest (builds,
/// files) are failures of the job (exit 1).
fn classify(e: LabError) -> anyhow::Error {
    match e {
        LabError::Load { .. }
        | LabError::Analyze { .. }
        | LabError::BadValue { .. }
        | LabError::Empty { .. }
        | LabError::UnknownNf { .. }
        | LabError::TooManyCores { .. } => input_error(e),
        other => anyhow::Error::new(other),
    }
}
