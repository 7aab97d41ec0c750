//! `maestro run --strategy seq|sn|locks|tm`: runs the generated code itself. The NF is
//! generated and built once (cached by `maestro-build`), its RSS configuration solved
//! for the requested cores, and the binary's own `run` does the work; its summary and
//! exit code are passed through.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use maestro_analyzer::{AnalyzeOptions, NfProgram};
use maestro_build::Builder;
use maestro_equivalence::binary::GeneratedBinary;
use maestro_generator::GenOptions;
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

pub fn run_generated(program: &NfProgram, args: &RunArgs) -> Result<()> {
    let strategy = match args.strategy {
        RunStrategy::Interp => unreachable!("the interpreter path does not come here"),
        RunStrategy::Seq => "seq",
        RunStrategy::Sn => "sn",
        RunStrategy::Locks => "locks",
        RunStrategy::Tm => "tm",
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
        .arg(&args.pcap)
        .args(["--strategy", strategy])
        .args(["--cores", &args.cores.to_string()])
        .args(["--device-map", &args.device_map])
        .args([
            "--parse-mode",
            match args.parse_mode {
                ParseModeArg::Strict => "strict",
                ParseModeArg::MaestroCompat => "compat",
            },
        ]);
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
    let status = maestro_build::retry_busy(|| cmd.status())
        .with_context(|| format!("cannot run {}", binary.built.binary.display()))?;
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
