//! The `main` of every generated binary: `run` (a capture through one strategy, with a
//! summary like `maestro run`'s), `record` (a packet file through one strategy, into a
//! record file for `maestro verify`) and `info` (the NF's state and renamed fields as
//! JSON).
//!
//! Arguments are parsed by hand: generated binaries depend on the runtime only, and the
//! runtime does not pull in an argument parser. [`main`] is a thin wrapper around
//! [`run_cli`], which returns what to print, so tests call it without spawning processes.
//! Exit codes: 0 success, 2 usage or input errors (the message names the file or option
//! and the fix), 1 anything else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::engine::{
    collect, ChunkOutput, EncodedResults, Engine, RunOptions, RuntimeMutant, Schedule, Translator,
};
use super::nf::{GeneratedNf, Strategy};
use super::nic::{NicConfig, NicModel};
use super::options::{self, flag, opt, OptSpec, Options};
use super::rename::{Renamer, Translation};
use super::rtm::RtmStatus;
use super::wire::{
    access_counts, FrameEncoding, PacketFileReader, RecordFileWriter, RecordHeader, RecordTrailer,
    WireError,
};
use crate::capture::{
    CaptureFormat, CaptureItem, CaptureReader, CaptureWriter, DeviceMap, PortAssigner,
    DEVICE_MAP_HELP,
};
use crate::packet::ParseMode;
use crate::{InputPacket, Observation};

/// Packets per engine chunk of `run` by default (`--chunk`): memory stays flat on big
/// captures while each chunk is long enough for the cores to run unhindered.
pub const CHUNK: usize = 262_144;
/// Packets per engine chunk of `record` by default (`--chunk`). `record` is run for
/// its records, not its speed, and costs CPU the checker shares: a chunk whose packets,
/// records and encoded entries stay in the caches (about 2 MB here) costs a third less
/// CPU than one of [`CHUNK`] packets, whose buffers the NF's state competes with.
pub const RECORD_CHUNK: usize = 16_384;
/// Refused records quoted in a summary.
const EXAMPLES: usize = 5;

/// Why the driver stopped.
#[derive(Debug, Error)]
pub enum DriverError {
    /// A bad command line (exit 2).
    #[error("{message}\n{usage}")]
    Usage { message: String, usage: String },
    /// Input that cannot be used: a missing or corrupt file, a bad option value
    /// (exit 2).
    #[error("{0}")]
    Input(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl DriverError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DriverError::Usage { .. } | DriverError::Input(_) => 2,
            DriverError::Failed(_) => 1,
        }
    }
}

impl From<WireError> for DriverError {
    fn from(e: WireError) -> Self {
        DriverError::Input(e.to_string())
    }
}

/// What a successful command prints: `stdout`, and warnings for stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliOutput {
    pub stdout: String,
    pub warnings: Vec<String>,
}

/// The whole `main` of a generated binary.
pub fn main<N: GeneratedNf>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run_cli::<N>(&args) {
        Ok(out) => {
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", out.stdout);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command line (without the program name) and returns what to print.
pub fn run_cli<N: GeneratedNf>(args: &[String]) -> Result<CliOutput, DriverError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage_error::<N>(None, "missing command".into()));
    };
    match command.as_str() {
        "run" => match parse_options::<N>("run", RUN_OPTIONS, rest)? {
            None => Ok(text(command_help::<N>("run"))),
            Some(o) => run_command::<N>(&RunArgs::from_options::<N>(&o)?),
        },
        "record" => match parse_options::<N>("record", RECORD_OPTIONS, rest)? {
            None => Ok(text(command_help::<N>("record"))),
            Some(o) => record_command::<N>(&RecordArgs::from_options::<N>(&o)?),
        },
        "info" => match parse_options::<N>("info", &[], rest)? {
            None => Ok(text(command_help::<N>("info"))),
            Some(_) => Ok(text(info_json::<N>())),
        },
        "-h" | "--help" | "help" => Ok(text(general_help::<N>())),
        other => Err(usage_error::<N>(None, format!("unknown command `{other}`"))),
    }
}

fn text(stdout: String) -> CliOutput {
    CliOutput {
        stdout,
        warnings: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Option parsing
// ---------------------------------------------------------------------------------------

const STRATEGY_HELP: &str =
    "seq (default), sn (shared-nothing), locks (read-write lock), tm (transactional memory)";
const CORES_HELP: &str = "worker cores of a parallel strategy (default 1; seq always runs on one)";
const RSS_HELP: &str = "NIC configuration: the JSON of `maestro rss <nf> --format json`; without it a parallel strategy uses Microsoft's key and a round-robin RETA";
const PARSE_MODE_HELP: &str =
    "strict (default, Vigor's IPv4 rules) or compat (Maestro's: no IHL/length checks, L4 at offset 34)";
const BATCH_HELP: &str = "receive burst size (default 32, as DPDK's rx burst)";
const CHUNK_HELP: &str =
    "packets per engine chunk (default 262144); cores synchronize between chunks";
const RECORD_CHUNK_HELP: &str =
    "packets per engine chunk (default 16384); cores synchronize between chunks";
const NO_PIN_HELP: &str = "do not pin worker threads to CPUs";

const RUN_OPTIONS: &[OptSpec] = &[
    opt("pcap", "IN", "the input capture (pcap or pcapng); required"),
    opt("strategy", "seq|sn|locks|tm", STRATEGY_HELP),
    opt("cores", "N", CORES_HELP),
    opt("rss", "RSS.json", RSS_HELP),
    opt(
        "out",
        "OUT.pcapng",
        "write the packets that leave the NF (pcapng, interface = output port)",
    ),
    opt("device-map", "MAP", DEVICE_MAP_HELP),
    opt("parse-mode", "strict|compat", PARSE_MODE_HELP),
    opt("batch", "N", BATCH_HELP),
    opt("chunk", "N", CHUNK_HELP),
    flag("no-pin", NO_PIN_HELP),
    flag(
        "json",
        "print the summary as JSON; times in seconds: processing_seconds (mpps = packets over it) = dispatch_seconds (serial RSS steering) + nf_seconds (the workers, wall time of the parallel part) + collect_seconds (results in input order)",
    ),
];

const RECORD_OPTIONS: &[OptSpec] = &[
    opt("input", "PACKETS.bin", "the packet file to run (written by the checker); required"),
    opt("output", "RECORDS.bin", "where to write the record file; required"),
    opt("strategy", "seq|sn|locks|tm", STRATEGY_HELP),
    opt("cores", "N", CORES_HELP),
    opt("rss", "RSS.json", RSS_HELP),
    opt(
        "schedule",
        "threads|seed:N",
        "threads (default): one OS thread per core; seed:N: a reproducible interleaving on one thread",
    ),
    flag("no-pin", NO_PIN_HELP),
    flag("instrument", "count state accesses per core and key (the sn sharding check)"),
    opt(
        "mutant",
        "keep-aborted-decision|read-lock-on-write",
        "run a deliberately wrong locks executor (checker self-test)",
    ),
    flag(
        "no-rename",
        "do not translate inputs through the sequential/parallel renaming of NF-chosen values",
    ),
    flag(
        "patch-frames",
        "store each output frame as patches of its input frame where shorter (a fraction of the size; reading the file needs the packet file)",
    ),
    opt("parse-mode", "strict|compat", PARSE_MODE_HELP),
    opt("batch", "N", BATCH_HELP),
    opt("chunk", "N", RECORD_CHUNK_HELP),
];

/// [`options::parse`] with its message as this command's usage error.
fn parse_options<N: GeneratedNf>(
    command: &str,
    specs: &[OptSpec],
    args: &[String],
) -> Result<Option<Options>, DriverError> {
    options::parse(command, specs, args).map_err(|m| usage_error::<N>(Some(command), m))
}

fn usage_line(command: &str) -> &'static str {
    match command {
        "run" => "run --pcap IN [--strategy seq|sn|locks|tm] [--cores N] [--rss RSS.json] [--out OUT.pcapng] [--device-map MAP] [--parse-mode strict|compat] [--batch N] [--chunk N] [--no-pin] [--json]",
        "record" => "record --input PACKETS.bin --output RECORDS.bin [--strategy seq|sn|locks|tm] [--cores N] [--rss RSS.json] [--schedule threads|seed:N] [--no-pin] [--instrument] [--mutant NAME] [--no-rename] [--patch-frames] [--parse-mode strict|compat] [--batch N] [--chunk N]",
        _ => "info",
    }
}

fn usage_error<N: GeneratedNf>(command: Option<&str>, message: String) -> DriverError {
    let usage = match command {
        Some(c) => format!(
            "usage: {} {}\n(see `{} {c} --help`)",
            N::NAME,
            usage_line(c),
            N::NAME
        ),
        None => format!(
            "usage: {} run|record|info [OPTIONS]\n(see `{} --help`)",
            N::NAME,
            N::NAME
        ),
    };
    DriverError::Usage { message, usage }
}

fn general_help<N: GeneratedNf>() -> String {
    let mut s = format!(
        "{name}: the NF `{name}` compiled by maestro, runnable as seq, sn, locks or tm.\n\n\
         usage: {name} COMMAND [OPTIONS]\n\ncommands:\n",
        name = N::NAME
    );
    for (c, what) in [
        (
            "run",
            "run a capture through a strategy and print a summary",
        ),
        (
            "record",
            "run a packet file and write a record file (for `maestro verify`)",
        ),
        (
            "info",
            "print the NF's state objects and renamed fields as JSON",
        ),
        (
            "dpdk",
            "run on DPDK ports (binaries built with the `dpdk` cargo feature)",
        ),
    ] {
        let _ = writeln!(s, "  {c:<8} {what}");
    }
    let _ = writeln!(
        s,
        "\n`{} COMMAND --help` describes each command's options.",
        N::NAME
    );
    s
}

fn command_help<N: GeneratedNf>(command: &str) -> String {
    let specs: &[OptSpec] = match command {
        "run" => RUN_OPTIONS,
        "record" => RECORD_OPTIONS,
        _ => &[],
    };
    format!(
        "usage: {} {}\n\noptions:\n{}",
        N::NAME,
        usage_line(command),
        options::describe(specs)
    )
}

// ---------------------------------------------------------------------------------------
// Option values
// ---------------------------------------------------------------------------------------

fn bad_value(option: &str, value: &str, expected: &str) -> DriverError {
    DriverError::Input(format!(
        "invalid value `{value}` for --{option}: expected {expected}"
    ))
}

fn required<'a>(o: &'a Options, name: &str) -> Result<&'a str, String> {
    o.value(name)
        .ok_or_else(|| format!("missing required option `--{name}`"))
}

fn parse_strategy(o: &Options) -> Result<Strategy, DriverError> {
    let v = o.value("strategy").unwrap_or("seq");
    Strategy::parse(v).ok_or_else(|| bad_value("strategy", v, "seq, sn, locks or tm"))
}

fn parse_count(o: &Options, name: &str, default: usize, max: usize) -> Result<usize, DriverError> {
    let Some(v) = o.value(name) else {
        return Ok(default);
    };
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| bad_value(name, v, &format!("a whole number from 1 to {max}")))
}

/// `--cores`, forced to 1 for `seq` (with a warning if more were asked for).
fn parse_cores(
    o: &Options,
    strategy: Strategy,
    warnings: &mut Vec<String>,
) -> Result<usize, DriverError> {
    let cores = parse_count(o, "cores", 1, 1024)?;
    if strategy == Strategy::Seq && cores > 1 {
        warnings.push(format!(
            "--cores {cores} ignored: the seq strategy runs on one core"
        ));
        return Ok(1);
    }
    Ok(cores)
}

fn parse_parse_mode(o: &Options) -> Result<ParseMode, DriverError> {
    match o.value("parse-mode").unwrap_or("strict") {
        "strict" => Ok(ParseMode::Strict),
        "compat" | "maestro-compat" => Ok(ParseMode::MaestroCompat),
        v => Err(bad_value("parse-mode", v, "strict or compat")),
    }
}

fn parse_schedule(o: &Options) -> Result<Schedule, DriverError> {
    let pin = !o.flag("no-pin");
    match o.value("schedule").unwrap_or("threads") {
        "threads" => Ok(Schedule::Threads { pin }),
        v => v
            .strip_prefix("seed:")
            .and_then(|n| n.parse::<u64>().ok())
            .map(|seed| Schedule::Deterministic { seed })
            .ok_or_else(|| bad_value("schedule", v, "threads or seed:N (N a whole number)")),
    }
}

fn schedule_text(s: Schedule) -> String {
    match s {
        Schedule::Threads { pin: true } => "threads".into(),
        Schedule::Threads { pin: false } => "threads-unpinned".into(),
        Schedule::Deterministic { seed } => format!("seed:{seed}"),
    }
}

fn parse_mutant(o: &Options) -> Result<Option<RuntimeMutant>, DriverError> {
    o.value("mutant")
        .map(|v| {
            RuntimeMutant::parse(v).ok_or_else(|| {
                bad_value("mutant", v, "keep-aborted-decision or read-lock-on-write")
            })
        })
        .transpose()
}

fn rtm_text(s: &RtmStatus) -> String {
    match s {
        RtmStatus::Used => "used".into(),
        RtmStatus::Unavailable(why) => format!("unavailable: {why}"),
        RtmStatus::NotApplicable => "not applicable".into(),
    }
}

/// The NIC the run steers with: `--rss` as given (its RETA must fit the core count), or
/// for a parallel strategy without it Microsoft's key spread round-robin (warned: packets
/// that share state may then land on different cores). `seq` keeps the keys (records
/// carry the hash) on one queue.
fn nic_for<N: GeneratedNf>(
    strategy: Strategy,
    cores: usize,
    rss: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<NicModel, DriverError> {
    let cfg = match rss {
        Some(path) => NicConfig::load(path).map_err(|e| DriverError::Input(e.to_string()))?,
        None => {
            if strategy != Strategy::Seq {
                warnings.push(format!(
                    "no --rss: using Microsoft's RSS key and a round-robin RETA over {cores} core(s); \
                     packets that share state may land on different cores. Pass --rss with the \
                     output of `maestro rss {} --format json`",
                    N::NAME
                ));
            }
            NicConfig::default_for(N::PORT_COUNT).with_cores(cores)
        }
    };
    let cfg = if strategy == Strategy::Seq {
        cfg.with_cores(1)
    } else {
        cfg
    };
    let nic_cores = if strategy == Strategy::Seq { 1 } else { cores };
    NicModel::new(&cfg, nic_cores).map_err(|e| {
        let file = rss.map_or(String::from("the default NIC"), |p| p.display().to_string());
        DriverError::Input(format!("{file}: {e}"))
    })
}

fn new_engine<N: GeneratedNf>(nic: NicModel, opts: RunOptions) -> Result<Engine<N>, DriverError> {
    Engine::<N>::new(nic, opts)
        .map_err(|e| DriverError::Input(format!("cannot start {}: {e}", N::NAME)))
}

// ---------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------

/// The options of `run`.
#[derive(Debug)]
struct RunArgs {
    pcap: PathBuf,
    out: Option<PathBuf>,
    rss: Option<PathBuf>,
    device_map: DeviceMap,
    opts: RunOptions,
    chunk: usize,
    json: bool,
    warnings: Vec<String>,
}

impl RunArgs {
    fn from_options<N: GeneratedNf>(o: &Options) -> Result<RunArgs, DriverError> {
        let pcap = required(o, "pcap").map_err(|m| usage_error::<N>(Some("run"), m))?;
        let mut warnings = Vec::new();
        let strategy = parse_strategy(o)?;
        let cores = parse_cores(o, strategy, &mut warnings)?;
        let device_map = o
            .value("device-map")
            .unwrap_or("auto")
            .parse::<DeviceMap>()
            .map_err(|e| DriverError::Input(format!("--device-map: {e}")))?;
        Ok(RunArgs {
            pcap: PathBuf::from(pcap),
            out: o.value("out").map(PathBuf::from),
            rss: o.value("rss").map(PathBuf::from),
            device_map,
            opts: RunOptions {
                strategy,
                cores,
                schedule: Schedule::Threads {
                    pin: !o.flag("no-pin"),
                },
                batch: parse_count(o, "batch", 32, 1 << 16)?,
                parse_mode: parse_parse_mode(o)?,
                ..RunOptions::default()
            },
            chunk: parse_count(o, "chunk", CHUNK, 1 << 24)?,
            json: o.flag("json"),
            warnings,
        })
    }
}

/// Everything `run` accounts for. Invariants: `records == packets + refused` and
/// `packets == forwarded + flooded + dropped`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    pub nf: String,
    pub capture: String,
    pub strategy: String,
    pub cores: usize,
    pub nic: String,
    pub records: u64,
    pub packets: u64,
    pub refused: u64,
    pub refused_examples: Vec<String>,
    pub forwarded: u64,
    pub forwarded_per_port: BTreeMap<u16, u64>,
    pub flooded: u64,
    pub dropped: u64,
    pub nf_faults: u64,
    pub time_clamped: u64,
    pub packets_in_per_port: BTreeMap<u16, u64>,
    pub packets_per_core: Vec<u64>,
    pub rtm: String,
    /// Wall time of the engine's processing (dispatch and process), seconds: the three
    /// phases below, capture reading and output writing excluded.
    pub processing_seconds: f64,
    /// `packets` over `processing_seconds`, in millions.
    pub mpps: f64,
    /// The serial steering of each chunk to cores (Toeplitz hash and RETA, the NIC's
    /// work in a deployment), seconds. Benchmarks separate it from the NF's own time.
    pub dispatch_seconds: f64,
    /// The workers' processing: wall time of the parallel part of each chunk, from
    /// starting the worker threads to joining the last one, seconds.
    pub nf_seconds: f64,
    /// Handing the results out in input order and releasing the chunk's input
    /// packets (serial), seconds.
    pub collect_seconds: f64,
    pub written: u64,
    pub output: Option<String>,
}

impl RunSummary {
    fn refuse(&mut self, example: String) {
        self.refused += 1;
        if self.refused_examples.len() < EXAMPLES {
            self.refused_examples.push(example);
        }
    }

    /// Counts one processed chunk.
    fn account(&mut self, inputs: &[(u16, u64)], out: &ChunkOutput) {
        for &(port, _) in inputs {
            *self.packets_in_per_port.entry(port).or_default() += 1;
        }
        self.packets += inputs.len() as u64;
        for o in &out.observations {
            match o {
                Observation::Drop => self.dropped += 1,
                Observation::Forward { port, .. } => {
                    self.forwarded += 1;
                    *self.forwarded_per_port.entry(*port).or_default() += 1;
                }
                Observation::Flood { .. } => self.flooded += 1,
            }
        }
        for r in &out.records {
            let core = usize::from(r.core);
            if self.packets_per_core.len() <= core {
                self.packets_per_core.resize(core + 1, 0);
            }
            self.packets_per_core[core] += 1;
        }
    }
}

/// Capture records turned into NF inputs: ports assigned, refusals counted, time made
/// monotone (a record older than its predecessor runs at the predecessor's time, as in
/// `maestro run`).
struct CaptureFeed {
    reader: CaptureReader,
    assigner: PortAssigner,
    ports: u16,
    clock: u64,
}

impl CaptureFeed {
    /// The next up to `max` packets; empty at the end of the capture.
    fn next_chunk(&mut self, max: usize, summary: &mut RunSummary) -> Vec<InputPacket> {
        let mut chunk = Vec::with_capacity(max.min(1 << 16));
        while chunk.len() < max {
            let Some(item) = self.reader.next_item() else {
                break;
            };
            summary.records += 1;
            if let Some(p) = self.admit(item, summary) {
                chunk.push(p);
            }
        }
        chunk
    }

    fn admit(&mut self, item: CaptureItem, summary: &mut RunSummary) -> Option<InputPacket> {
        let record = match item {
            CaptureItem::Refused(r) => {
                summary.refuse(format!(
                    "record {} at byte {}: {}",
                    r.index, r.byte_offset, r.reason
                ));
                return None;
            }
            CaptureItem::Packet(record) => record,
        };
        let port = match self.assigner.assign(&record) {
            Ok(port) if port < self.ports => port,
            Ok(port) => {
                summary.refuse(format!(
                    "record {}: input port {port} does not exist (the NF has {} ports); choose another --device-map",
                    record.index, self.ports
                ));
                return None;
            }
            Err(reason) => {
                summary.refuse(format!("record {}: {reason}", record.index));
                return None;
            }
        };
        if record.time_ns < self.clock {
            summary.time_clamped += 1;
        } else {
            self.clock = record.time_ns;
        }
        Some(InputPacket {
            port,
            time_ns: self.clock,
            data: record.data,
        })
    }
}

fn run_command<N: GeneratedNf>(a: &RunArgs) -> Result<CliOutput, DriverError> {
    let mut warnings = a.warnings.clone();
    let nic = nic_for::<N>(
        a.opts.strategy,
        a.opts.cores,
        a.rss.as_deref(),
        &mut warnings,
    )?;
    let mut engine = new_engine::<N>(nic, a.opts.clone())?;
    let reader = CaptureReader::open(&a.pcap).map_err(|e| DriverError::Input(e.to_string()))?;
    let mut writer = match &a.out {
        Some(path) => Some(
            CaptureWriter::create(path, CaptureFormat::PcapNg, N::PORT_COUNT)
                .map_err(|e| DriverError::Input(e.to_string()))?,
        ),
        None => None,
    };
    let mut feed = CaptureFeed {
        reader,
        assigner: PortAssigner::new(a.device_map, N::LAN_PORT, N::WAN_PORT),
        ports: N::PORT_COUNT,
        clock: 0,
    };
    let mut summary = RunSummary {
        nf: N::NAME.to_string(),
        capture: a.pcap.display().to_string(),
        strategy: a.opts.strategy.name().to_string(),
        cores: a.opts.cores,
        nic: a
            .rss
            .as_ref()
            .map_or("default (Microsoft key, round-robin RETA)".into(), |p| {
                p.display().to_string()
            }),
        output: a.out.as_ref().map(|p| p.display().to_string()),
        ..RunSummary::default()
    };
    let mut busy = Duration::ZERO;
    let (mut dispatch, mut nf, mut gather) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    loop {
        let chunk = feed.next_chunk(a.chunk, &mut summary);
        if chunk.is_empty() {
            break;
        }
        let inputs: Vec<(u16, u64)> = chunk.iter().map(|p| (p.port, p.time_ns)).collect();
        // What `Engine::run` does (the chunk dropped inside the timed part, as it
        // always was), with the ends of its phases noted.
        let start = Instant::now();
        let (results, phases) = engine.run_chunk_timed(&chunk);
        let out = collect(results);
        drop(chunk);
        let end = Instant::now();
        busy += end - start;
        dispatch += phases.dispatched - start;
        nf += phases.processed - phases.dispatched;
        gather += end - phases.processed;
        summary.account(&inputs, &out);
        if let Some(w) = writer.as_mut() {
            summary.written += write_outputs(w, &inputs, &out.observations, N::PORT_COUNT)?;
        }
    }
    if let Some(w) = writer {
        w.finish().map_err(|e| DriverError::Input(e.to_string()))?;
    }
    summary.nf_faults = engine.fault_count();
    summary.rtm = rtm_text(&engine.rtm_status());
    summary.processing_seconds = busy.as_secs_f64();
    summary.mpps = mpps(summary.packets, busy);
    summary.dispatch_seconds = dispatch.as_secs_f64();
    summary.nf_seconds = nf.as_secs_f64();
    summary.collect_seconds = gather.as_secs_f64();
    let stdout = if a.json {
        serde_json::to_string_pretty(&summary).map_err(|e| DriverError::Failed(e.to_string()))?
            + "\n"
    } else {
        summary_text(&summary)
    };
    Ok(CliOutput { stdout, warnings })
}

fn mpps(packets: u64, busy: Duration) -> f64 {
    let s = busy.as_secs_f64();
    if s > 0.0 {
        packets as f64 / s / 1e6
    } else {
        0.0
    }
}

/// Writes what left the NF; floods go to every port but the input one. Returns the
/// packets written.
fn write_outputs(
    w: &mut CaptureWriter,
    inputs: &[(u16, u64)],
    observations: &[Observation],
    ports: u16,
) -> Result<u64, DriverError> {
    let mut written = 0;
    let err = |e: crate::capture::CaptureError| DriverError::Input(e.to_string());
    for (&(in_port, time), o) in inputs.iter().zip(observations) {
        match o {
            Observation::Drop => {}
            Observation::Forward { port, bytes } => {
                w.write(*port, time, bytes).map_err(err)?;
                written += 1;
            }
            Observation::Flood { bytes } => {
                for out in (0..ports).filter(|&p| p != in_port) {
                    w.write(out, time, bytes).map_err(err)?;
                    written += 1;
                }
            }
        }
    }
    Ok(written)
}

fn per_port(map: &BTreeMap<u16, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(p, n)| format!("port {p}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary_text(s: &RunSummary) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} on {} ({}, {} core(s))",
        s.nf, s.capture, s.strategy, s.cores
    );
    let _ = writeln!(
        t,
        "  records      {:>10}  ({} packets, {} refused)",
        s.records, s.packets, s.refused
    );
    for r in &s.refused_examples {
        let _ = writeln!(t, "    refused: {r}");
    }
    let _ = writeln!(
        t,
        "  in           {:>10}  ({})",
        s.packets,
        per_port(&s.packets_in_per_port)
    );
    let _ = writeln!(
        t,
        "  forwarded    {:>10}  ({})",
        s.forwarded,
        per_port(&s.forwarded_per_port)
    );
    let _ = writeln!(t, "  flooded      {:>10}", s.flooded);
    let _ = writeln!(t, "  dropped      {:>10}", s.dropped);
    if s.nf_faults > 0 {
        let _ = writeln!(t, "  NF faults    {:>10}  (dropped)", s.nf_faults);
    }
    if s.time_clamped > 0 {
        let _ = writeln!(
            t,
            "  time clamped {:>10}  (records older than their predecessor ran at its time)",
            s.time_clamped
        );
    }
    let cores: Vec<String> = s
        .packets_per_core
        .iter()
        .enumerate()
        .map(|(c, n)| format!("core {c}: {n}"))
        .collect();
    let _ = writeln!(
        t,
        "  per core     {}",
        if cores.is_empty() {
            "none".into()
        } else {
            cores.join(", ")
        }
    );
    let _ = writeln!(t, "  NIC          {}", s.nic);
    if s.strategy == Strategy::Tm.name() {
        let _ = writeln!(t, "  RTM          {}", s.rtm);
    }
    let _ = writeln!(
        t,
        "  processing   {:>10.3} Mpps  ({:.3} s)",
        s.mpps, s.processing_seconds
    );
    let _ = writeln!(
        t,
        "  of which     dispatch {:.3} s, NF {:.3} s ({:.3} Mpps), collect {:.3} s",
        s.dispatch_seconds,
        s.nf_seconds,
        if s.nf_seconds > 0.0 {
            s.packets as f64 / s.nf_seconds / 1e6
        } else {
            0.0
        },
        s.collect_seconds
    );
    if let Some(out) = &s.output {
        let _ = writeln!(t, "  wrote {} packets to {out}", s.written);
    }
    t
}

// ---------------------------------------------------------------------------------------
// record
// ---------------------------------------------------------------------------------------

/// The options of `record`.
#[derive(Debug)]
struct RecordArgs {
    input: PathBuf,
    output: PathBuf,
    rss: Option<PathBuf>,
    opts: RunOptions,
    chunk: usize,
    rename: bool,
    patch_frames: bool,
    warnings: Vec<String>,
}

impl RecordArgs {
    fn from_options<N: GeneratedNf>(o: &Options) -> Result<RecordArgs, DriverError> {
        let need = |name| required(o, name).map_err(|m| usage_error::<N>(Some("record"), m));
        let input = need("input")?;
        let output = need("output")?;
        let mut warnings = Vec::new();
        let strategy = parse_strategy(o)?;
        let cores = parse_cores(o, strategy, &mut warnings)?;
        Ok(RecordArgs {
            input: PathBuf::from(input),
            output: PathBuf::from(output),
            rss: o.value("rss").map(PathBuf::from),
            opts: RunOptions {
                strategy,
                cores,
                schedule: parse_schedule(o)?,
                batch: parse_count(o, "batch", 32, 1 << 16)?,
                instrument: o.flag("instrument"),
                mutant: parse_mutant(o)?,
                parse_mode: parse_parse_mode(o)?,
                ..RunOptions::default()
            },
            chunk: parse_count(o, "chunk", RECORD_CHUNK, 1 << 24)?,
            rename: !o.flag("no-rename"),
            patch_frames: o.flag("patch-frames"),
            warnings,
        })
    }
}

/// The sequential run a renaming parallel run is compared with, chunk by chunk.
struct Reference<N: GeneratedNf> {
    engine: Engine<N>,
    renamer: Arc<Renamer>,
}

impl<N: GeneratedNf> Reference<N> {
    /// A reference if the NF renames and the strategy is parallel (and `rename` is on).
    fn for_run(a: &RecordArgs) -> Result<Option<Reference<N>>, DriverError> {
        if N::RENAMED.is_empty() || a.opts.strategy == Strategy::Seq || !a.rename {
            return Ok(None);
        }
        let renamer = Renamer::new(N::RENAMED, Vec::new(), a.opts.parse_mode)
            .map_err(|e| DriverError::Failed(format!("{}: {e}", N::NAME)))?;
        let opts = RunOptions {
            strategy: Strategy::Seq,
            cores: 1,
            schedule: Schedule::Deterministic { seed: 0 },
            batch: a.opts.batch,
            parse_mode: a.opts.parse_mode,
            ..RunOptions::default()
        };
        let nic = nic_for::<N>(Strategy::Seq, 1, a.rss.as_deref(), &mut Vec::new())?;
        Ok(Some(Reference {
            engine: new_engine::<N>(nic, opts)?,
            renamer: Arc::new(renamer),
        }))
    }

    /// Runs the chunk sequentially and hands its observations to the renamer.
    fn prepare(&mut self, base: u64, chunk: &[InputPacket]) {
        let mut observations = Vec::with_capacity(chunk.len());
        let _ = self.engine.run_chunk(chunk).for_each(|_, o, _| {
            observations.push(o);
            Ok::<(), std::convert::Infallible>(())
        });
        self.renamer.set_sequential(base, observations);
    }
}

/// What a record run counted, for its one-line summary.
#[derive(Debug, Default)]
struct RecordCounts {
    packets: u64,
    translations: u64,
}

fn record_command<N: GeneratedNf>(a: &RecordArgs) -> Result<CliOutput, DriverError> {
    let mut warnings = a.warnings.clone();
    let nic = nic_for::<N>(
        a.opts.strategy,
        a.opts.cores,
        a.rss.as_deref(),
        &mut warnings,
    )?;
    let mut engine = new_engine::<N>(nic, a.opts.clone())?;
    let mut reference = Reference::<N>::for_run(a)?;
    if let Some(r) = &reference {
        let t: Arc<dyn Translator> = r.renamer.clone();
        engine.set_translator(Some(t));
    }
    let reader = PacketFileReader::open(&a.input)?;
    let header = record_header::<N>(a, &engine);
    let result = write_records(a, &mut engine, reference.as_mut(), reader, &header);
    let counts = match result {
        Ok(c) => c,
        Err(e) => {
            // A half-written record file must not be mistaken for a result.
            let _ = std::fs::remove_file(&a.output);
            return Err(e);
        }
    };
    let conflicts = reference
        .as_ref()
        .map_or(0, |r| r.renamer.conflicts().len());
    let stdout = format!(
        "{}: recorded {} packets ({}, {} core(s)) to {}: {} NF faults, {} input translations, {} renaming conflicts\n",
        N::NAME,
        counts.packets,
        a.opts.strategy.name(),
        a.opts.cores,
        a.output.display(),
        engine.fault_count(),
        counts.translations,
        conflicts
    );
    Ok(CliOutput { stdout, warnings })
}

fn record_header<N: GeneratedNf>(a: &RecordArgs, engine: &Engine<N>) -> RecordHeader {
    RecordHeader {
        nf: N::NAME.to_string(),
        strategy: a.opts.strategy,
        cores: u32::try_from(a.opts.cores).unwrap_or(u32::MAX),
        schedule: schedule_text(a.opts.schedule),
        mutant: a.opts.mutant.map(|m| m.name().to_string()),
        rtm: rtm_text(&engine.rtm_status()),
        parse_mode: a.opts.parse_mode.to_string(),
        renamed: N::RENAMED
            .iter()
            .map(|f| (f.out_field.to_string(), f.in_field.to_string()))
            .collect(),
        frames: if a.patch_frames {
            FrameEncoding::InputPatches
        } else {
            FrameEncoding::Whole
        },
    }
}

/// Streams the packet file through the engine(s) chunk by chunk into the record file.
fn write_records<N: GeneratedNf>(
    a: &RecordArgs,
    engine: &mut Engine<N>,
    mut reference: Option<&mut Reference<N>>,
    mut reader: PacketFileReader,
    header: &RecordHeader,
) -> Result<RecordCounts, DriverError> {
    let mut writer = RecordFileWriter::create(&a.output, header)?;
    let mut counts = RecordCounts::default();
    // One vector of packets, refilled chunk after chunk (its frame buffers reused). The
    // engine borrows it and leaves it as read: the workers encode each observation (its
    // frame as patches of the packet's frame) as soon as the NF returns it.
    let mut chunk: Vec<InputPacket> = Vec::new();
    let encoder = writer.encoder();
    let mut memos = Vec::new();
    loop {
        reader.read_chunk_into(&mut chunk, a.chunk)?;
        if chunk.is_empty() {
            break;
        }
        let base = counts.packets;
        counts.packets += chunk.len() as u64;
        if let Some(r) = reference.as_deref_mut() {
            r.prepare(base, &chunk);
        }
        let results = engine.run_chunk_encoded(&chunk, &encoder, &mut memos);
        let translations = reference
            .as_deref()
            .map(|r| r.renamer.take_translations())
            .unwrap_or_default();
        counts.translations += translations.len() as u64;
        write_chunk(&mut writer, base, results, &translations)?;
    }
    let trailer = record_trailer(engine, reference.as_deref());
    writer.finish(&trailer)?;
    Ok(counts)
}

/// Writes one chunk's entries; `translations` are sorted by index, all inside the chunk.
fn write_chunk(
    writer: &mut RecordFileWriter,
    base: u64,
    results: EncodedResults<'_, WireError>,
    translations: &[Translation],
) -> Result<(), DriverError> {
    let mut pending = translations;
    results.for_each(|i, encoded, record| {
        let index = base + i as u64;
        let mine = pending.iter().take_while(|t| t.index == index).count();
        let (mine, rest) = pending.split_at(mine);
        pending = rest;
        writer.entry_encoded(encoded, record, mine)
    })?;
    Ok(())
}

fn record_trailer<N: GeneratedNf>(
    engine: &Engine<N>,
    reference: Option<&Reference<N>>,
) -> RecordTrailer {
    RecordTrailer {
        faults: engine.fault_count(),
        access_logs: engine
            .access_logs()
            .iter()
            .map(|log| log.as_ref().map(access_counts))
            .collect(),
        stats: flatten_stats(&engine.stats()),
        conflicts: reference.map(|r| r.renamer.conflicts()).unwrap_or_default(),
    }
}

/// Engine statistics as `(dotted.name, value)` pairs (`per_core.0.packets`): the record
/// file stays readable whatever counters the engine adds.
fn flatten_stats<T: Serialize>(stats: &T) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(stats) {
        flatten_into(&v, String::new(), &mut out);
    }
    out
}

fn flatten_into(v: &serde_json::Value, prefix: String, out: &mut Vec<(String, u64)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                flatten_into(x, join(k), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten_into(x, join(&i.to_string()), out);
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push((prefix, u));
            }
        }
        serde_json::Value::Bool(b) => out.push((prefix, u64::from(*b))),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// info
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct StateInfo {
    name: &'static str,
    kind: &'static str,
    capacity: u32,
    sharded: bool,
}

#[derive(Serialize)]
struct RenamedInfo {
    out_field: &'static str,
    in_field: &'static str,
    in_ports: &'static [u16],
}

#[derive(Serialize)]
struct Info {
    nf: &'static str,
    port_count: u16,
    lan_port: u16,
    wan_port: u16,
    state: Vec<StateInfo>,
    renamed: Vec<RenamedInfo>,
    strategies: Vec<&'static str>,
    packet_file_version: u32,
    record_file_version: u32,
}

/// The NF's description as JSON, for the checker.
fn info_json<N: GeneratedNf>() -> String {
    let info = Info {
        nf: N::NAME,
        port_count: N::PORT_COUNT,
        lan_port: N::LAN_PORT,
        wan_port: N::WAN_PORT,
        state: N::STATE
            .iter()
            .map(|s| StateInfo {
                name: s.name,
                kind: s.kind,
                capacity: s.capacity,
                sharded: s.sharded,
            })
            .collect(),
        renamed: N::RENAMED
            .iter()
            .map(|r| RenamedInfo {
                out_field: r.out_field,
                in_field: r.in_field,
                in_ports: r.in_ports,
            })
            .collect(),
        strategies: Strategy::ALL.iter().map(|s| s.name()).collect(),
        packet_file_version: super::wire::PACKET_VERSION,
        record_file_version: super::wire::RECORD_VERSION,
    };
    serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct S {
        a: u64,
        per: Vec<Inner>,
    }
    #[derive(Serialize)]
    struct Inner {
        x: u64,
        y: bool,
    }

    #[test]
    fn stats_flatten_to_dotted_names() {
        let s = S {
            a: 3,
            per: vec![Inner { x: 1, y: true }, Inner { x: 2, y: false }],
        };
        let mut v = flatten_stats(&s);
        v.sort();
        assert_eq!(
            v,
            vec![
                ("a".to_string(), 3),
                ("per.0.x".to_string(), 1),
                ("per.0.y".to_string(), 1),
                ("per.1.x".to_string(), 2),
                ("per.1.y".to_string(), 0),
            ]
        );
    }

    /// Forwards every packet to the other port, after a little work on its bytes (so
    /// the workers' phase is not empty).
    struct Echo;

    impl GeneratedNf for Echo {
        const NAME: &'static str = "echo";
        const STATE: &'static [crate::exec::StateObjectInfo] = &[];
        const PORT_COUNT: u16 = 2;
        const LAN_PORT: u16 = 0;
        const WAN_PORT: u16 = 1;
        const RENAMED: &'static [crate::exec::RenamedField] = &[];

        fn with_shards(_mode: ParseMode, _shards: usize) -> Result<Self, crate::state::StateError> {
            Ok(Echo)
        }
        fn process(&mut self, packet: &InputPacket) -> Observation {
            let sum = packet.data.iter().fold(0u8, |a, b| a.wrapping_add(*b));
            let mut bytes = packet.data.clone();
            bytes[0] = sum;
            Observation::Forward {
                port: 1 - packet.port,
                bytes,
            }
        }
        fn process_read(
            &self,
            packet: &InputPacket,
            _log: &mut crate::exec::RefreshLog,
        ) -> Result<Observation, crate::exec::NeedsWrite> {
            Ok(Observation::Forward {
                port: 1 - packet.port,
                bytes: packet.data.clone(),
            })
        }
        fn apply_refresh(&mut self, _refresh: &crate::exec::Refresh) {}
        fn fault_count(&self) -> u64 {
            0
        }
        fn set_instrumented(&mut self, _on: bool) {}
        fn access_log(&self) -> Option<&crate::exec::AccessLog> {
            None
        }
    }

    #[test]
    fn run_json_splits_processing_into_dispatch_nf_and_collect() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("in.pcapng");
        let mut w = CaptureWriter::create(&pcap, CaptureFormat::PcapNg, 2).unwrap();
        for i in 0..3000u64 {
            let mut frame = vec![0u8; 64];
            frame[..8].copy_from_slice(&i.to_le_bytes());
            w.write((i % 2) as u16, 1_000 + i, &frame).unwrap();
        }
        w.finish().unwrap();
        let path = pcap.to_str().unwrap();
        for strategy in ["seq", "sn", "locks"] {
            // Chunks of 1000: the phases add up over several chunks.
            let args: Vec<String> = [
                "run",
                "--pcap",
                path,
                "--strategy",
                strategy,
                "--cores",
                "2",
                "--chunk",
                "1000",
                "--no-pin",
                "--json",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            let out = run_cli::<Echo>(&args).unwrap();
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(v["packets"], 3000, "{strategy}: {v}");
            let secs = |k: &str| {
                v[k].as_f64()
                    .unwrap_or_else(|| panic!("{strategy}: {k} in {v}"))
            };
            let (total, dispatch, nf, collect) = (
                secs("processing_seconds"),
                secs("dispatch_seconds"),
                secs("nf_seconds"),
                secs("collect_seconds"),
            );
            assert!(
                nf > 0.0 && dispatch >= 0.0 && collect >= 0.0,
                "{strategy}: {v}"
            );
            // The phases partition the timed part: their sum is the old total.
            assert!(
                (dispatch + nf + collect - total).abs() < 1e-6,
                "{strategy}: {dispatch} + {nf} + {collect} != {total}"
            );
            assert!((secs("mpps") - 3000.0 / total / 1e6).abs() < 1e-9, "{v}");
            let text = run_cli::<Echo>(&args[..args.len() - 1]).unwrap().stdout;
            assert!(text.contains("of which     dispatch"), "{text}");
        }
    }

    #[test]
    fn schedules_print_as_they_parse() {
        assert_eq!(schedule_text(Schedule::Threads { pin: true }), "threads");
        assert_eq!(
            schedule_text(Schedule::Threads { pin: false }),
            "threads-unpinned"
        );
        assert_eq!(schedule_text(Schedule::Deterministic { seed: 9 }), "seed:9");
    }
}
