//! `maestro run --strategy seq|sn|locks|tm`: runs the generated code itself. The NF is
//! generated and built once (cached by `maestro-build`), its RSS configuration solved
//! for the requested cores, and the binary's own `run` does the work; its summary and
//! exit code are passed through. `--backend dpdk` builds the crate with its `dpdk`
//! feature (its own cache entry) and runs the binary's `dpdk` command instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use maestro_analyzer::{AnalyzeOptions, NfProgram};
use maestro_build::{Builder, Built, DPDK_FEATURE};
use maestro_equivalence::binary::GeneratedBinary;
use maestro_generator::{CrateOptions, GenOptions};
use maestro_rss::{export, solve, SolveOptions};

use crate::input_error;
use crate::run::{ParseModeArg, RunArgs, RunStrategy};

/// Solves the RSS configuration of `program` for `cores` and writes it as JSON in `dir`.
pub fn solve_rss_file(program: &NfProgram, cores: usize, dir: &std::path::Path) -> Result<PathBuf> {
    let analysis =
        maestro_analyzer::analyze_with(program, &AnalyzeOptions::default()).map_err(input_error)?;
    let cfg = solve(
        &analysis,
        &SolveOptions {
            cores,
            ..SolveOptions::default()
        },
    )
    .map_err(input_error)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}-rss-{cores}.json", program.name));
    std::fs::write(&path, export::json(&cfg))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Refuses `sn` for an NF the analysis says cannot be shared-nothing.
pub fn check_strategy(program: &NfProgram, strategy: RunStrategy) -> Result<()> {
    if strategy != RunStrategy::Sn {
        return Ok(());
    }
    let analysis =
        maestro_analyzer::analyze_with(program, &AnalyzeOptions::default()).map_err(input_error)?;
    if analysis.verdict.strategy != "shared-nothing" {
        return Err(input_error(anyhow::anyhow!(
            "`{}` cannot run shared-nothing: the analysis says {}: {}; use --strategy locks or tm",
            program.name,
            analysis.verdict.strategy,
            analysis.verdict.summary
        )));
    }
    Ok(())
}

/// The generated binary's name for `--strategy`; the interpreter has none.
fn strategy_name(strategy: RunStrategy) -> Option<&'static str> {
    match strategy {
        RunStrategy::Interp => None,
        RunStrategy::Seq => Some("seq"),
        RunStrategy::Sn => Some("sn"),
        RunStrategy::Locks => Some("locks"),
        RunStrategy::Tm => Some("tm"),
    }
}

fn parse_mode_name(mode: ParseModeArg) -> &'static str {
    match mode {
        ParseModeArg::Strict => "strict",
        ParseModeArg::MaestroCompat => "compat",
    }
}

/// Passes the generated binary's exit code on: 2 is the user's to fix.
fn exit_status(binary: &Path, cmd: &mut Command) -> Result<()> {
    let status = maestro_build::retry_busy(|| cmd.status())
        .with_context(|| format!("cannot run {}", binary.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(2) => Err(input_error(anyhow::anyhow!(
            "the generated binary refused the input (see above)"
        ))),
        code => Err(anyhow::anyhow!(
            "the generated binary failed (exit {code:?}, see above)"
        )),
    }
}

pub fn run_generated(program: &NfProgram, args: &RunArgs, pcap: &Path) -> Result<()> {
    let Some(strategy) = strategy_name(args.strategy) else {
        unreachable!("the interpreter path does not come here")
    };
    if args.cores == 0 {
        return Err(input_error(anyhow::anyhow!("--cores must be at least 1")));
    }
    check_strategy(program, args.strategy)?;
    let builder = Builder::new(None);
    eprintln!(
        "maestro: building the generated `{}` (cached in {})",
        program.name,
        builder.cache().display()
    );
    let binary = GeneratedBinary::build(&builder, program, &GenOptions::default())?;
    let mut cmd = Command::new(&binary.built.binary);
    cmd.arg("run")
        .arg("--pcap")
        .arg(pcap)
        .args(["--strategy", strategy])
        .args(["--cores", &args.cores.to_string()])
        .args(["--device-map", &args.device_map])
        .args(["--parse-mode", parse_mode_name(args.parse_mode)]);
    if strategy != "seq" {
        let rss = match &args.rss {
            Some(p) => p.clone(),
            None => solve_rss_file(program, args.cores, &builder.cache().join("rss"))?,
        };
        cmd.arg("--rss").arg(rss);
    }
    if let Some(out) = &args.out {
        cmd.arg("--out").arg(out);
    }
    if args.json {
        cmd.arg("--json");
    }
    if args.no_pin {
        cmd.arg("--no-pin");
    }
    exit_status(&binary.built.binary, &mut cmd)
}

/// Generates the NF's crate as `GeneratedBinary::build` does (same package, so the
/// same cache entry without features) and builds it with `features`.
fn build_with_features(builder: &Builder, program: &NfProgram, features: &[&str]) -> Result<Built> {
    let gen = GenOptions::default();
    // Generate first, so generator errors are reported as such, not as write errors.
    maestro_generator::generate(program, &gen).map_err(input_error)?;
    let package = format!("{}-nf", program.name.replace('_', "-"));
    let options = CrateOptions {
        package: package.clone(),
        runtime_path: Builder::runtime_dir(),
        default_strategy: "seq".to_string(),
        gen,
    };
    Ok(builder.build_with_features(&package, features, |dir| {
        maestro_generator::write_crate(program, dir, &options)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?)
}

/// `maestro run --backend dpdk`: the generated binary's `dpdk` command, built with the
/// `dpdk` feature. Options map one to one; the RSS configuration is solved for
/// `--cores` unless given.
pub fn run_dpdk(program: &NfProgram, args: &RunArgs) -> Result<()> {
    let Some(strategy) = strategy_name(args.strategy) else {
        return Err(input_error(anyhow::anyhow!(
            "--backend dpdk runs the generated code: choose --strategy seq, sn, locks or tm"
        )));
    };
    if args.cores == 0 {
        return Err(input_error(anyhow::anyhow!("--cores must be at least 1")));
    }
    if args.out.is_some() && args.pcap.is_none() {
        return Err(input_error(anyhow::anyhow!(
            "--out with --backend dpdk is the folder of a --pcap replay; on NICs the frames \
             leave by the ports"
        )));
    }
    check_strategy(program, args.strategy)?;
    let builder = Builder::new(None);
    eprintln!(
        "maestro: building the generated `{}` with DPDK (cached in {})",
        program.name,
        builder.cache().display()
    );
    let built = build_with_features(&builder, program, &[DPDK_FEATURE])?;
    let mut cmd = Command::new(&built.binary);
    cmd.arg("dpdk")
        .args(["--strategy", strategy])
        .args(["--cores", &args.cores.to_string()])
        .args(["--parse-mode", parse_mode_name(args.parse_mode)]);
    if let Some(eal) = &args.eal {
        cmd.args(["--eal", eal]);
    }
    if strategy != "seq" {
        let rss = match &args.rss {
            Some(p) => p.clone(),
            None => solve_rss_file(program, args.cores, &builder.cache().join("rss"))?,
        };
        cmd.arg("--rss").arg(rss);
    }
    if let Some(pcap) = &args.pcap {
        cmd.arg("--pcap")
            .arg(pcap)
            .args(["--device-map", &args.device_map]);
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}-dpdk-out", program.name)));
        cmd.arg("--out").arg(out);
    }
    if let Some(order) = &args.rx_order {
        cmd.args(["--rx-order", order]);
    }
    if let Some(n) = args.packets {
        cmd.args(["--packets", &n.to_string()]);
    }
    if let Some(s) = args.seconds {
        cmd.args(["--seconds", &s.to_string()]);
    }
    if args.json {
        cmd.arg("--json");
    }
    exit_status(&built.binary, &mut cmd)
}
