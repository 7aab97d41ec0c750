//! `<nf> dpdk ...`: the command a generated binary gets with its `dpdk` feature. It
//! starts EAL, configures one DPDK port per NF port with one receive and transmit queue
//! per core (RSS from `maestro rss --format json`), runs the NF under a strategy with
//! [`run`](crate::run) until a stop condition, and prints a summary (text or `--json`)
//! that accounts for every packet.
//!
//! With `--pcap IN --out DIR` it replays a capture without a NIC: each port's packets are
//! split into one capture per queue as the NIC model steers them and loaded as
//! `net_pcap` vdevs, and what each core sends lands in `DIR/tx-p<port>-q<core>.pcap`.
//!
//! Like the runtime's driver, arguments are parsed by the runtime's `exec::options`
//! (generated binaries carry no argument-parser crate) and errors are the runtime's [`DriverError`]: exit code 2 for what
//! the user can fix (options, files, EAL, ports, hugepages: [`DpdkError`]'s messages
//! with their fixes), 1 for a failed run.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use maestro_runtime::capture::{DeviceMap, DEVICE_MAP_HELP};
use maestro_runtime::exec::driver::{CliOutput, DriverError};
use maestro_runtime::exec::options::{self, flag, opt, OptSpec, Options};
use maestro_runtime::exec::{CoreStats, GeneratedNf, NicConfig, NicModel, RtmStatus, Strategy};
use maestro_runtime::packet::ParseMode;
use serde::Serialize;

use crate::backend::{
    run, Clock, CoreReport, DpdkRunOptions, PortReport, RunReport, RxOrder, StopWhen,
};
use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::Mempool;
use crate::pcap::{port_by_name, read_inputs, write_queue_captures, QueueCaptures};
use crate::port::{port_info, Port, PortConfig, RssConfig, MAX_BURST};

/// Receive and transmit descriptors per queue ([`PortConfig::new`]'s).
const DESCRIPTORS: u32 = 1024;
/// Idle polls that end a `--pcap` replay by default: a pcap vdev that returns nothing
/// this often in a row has delivered its file.
const PCAP_IDLE_ROUNDS: u64 = 1000;

const OPTIONS: &[OptSpec] = &[
    opt(
        "eal",
        "\"EAL ARGS\"",
        "DPDK's EAL arguments as one string, split as a shell would: `-l 0-3 -a 0000:03:00.0 -a 0000:03:00.1` (one lcore per core, the first runs core 0). Default: none (every lcore, hugepages, every bound NIC); with --pcap: `--no-huge -m 512 --no-pci --no-shconf --no-telemetry -l 0-<cores-1>`, which needs neither a NIC nor hugepages",
    ),
    opt(
        "strategy",
        "seq|sn|locks|tm",
        "seq (default), sn (shared-nothing), locks (read-write lock), tm (transactional memory)",
    ),
    opt(
        "cores",
        "N",
        "worker cores (lcores; one receive and transmit queue per port each). Default 1; seq always runs on one",
    ),
    opt(
        "rss",
        "RSS.json",
        "NIC configuration: the JSON of `maestro rss <nf> --format json` (key, hash types and RETA, fitted to each device); without it a parallel strategy uses Microsoft's key and a round-robin RETA",
    ),
    opt(
        "ports",
        "P0,P1,..",
        "the DPDK port of each NF port, in NF port order (default 0,1,..)",
    ),
    opt(
        "pcap",
        "IN",
        "replay a capture (pcap or pcapng) instead of traffic from NICs: each port's packets go into one capture per queue as the NIC model steers them, loaded as net_pcap vdevs",
    ),
    opt(
        "out",
        "DIR",
        "with --pcap (required there): the folder for the per-queue captures, rx-p<port>-q<core>.pcap in and tx-p<port>-q<core>.pcap out",
    ),
    opt("device-map", "MAP", DEVICE_MAP_HELP),
    opt(
        "rx-order",
        "port-bursts|timestamp",
        "port-bursts: each port's receive burst processed as it comes (Maestro's loop; the default on NICs); timestamp: a core's ports merged by receive time, as the in-memory executors do (the default with --pcap, where it replays exactly)",
    ),
    opt(
        "clock",
        "auto|tsc",
        "the NF's time: auto (default): the PMD's receive timestamp where its unit is known (net_pcap: the capture's, to the microsecond), else the TSC; tsc: always the TSC",
    ),
    opt("burst", "N", "receive burst size (default 32, at most 512)"),
    opt(
        "mbufs",
        "N",
        "mbufs in the pool (default: every descriptor of every queue plus the bursts in flight)",
    ),
    opt(
        "packets",
        "N",
        "stop once the cores together received N packets (up to a burst per core more)",
    ),
    opt("seconds", "S", "stop after S seconds (decimals allowed)"),
    opt(
        "idle-rounds",
        "K",
        "stop a core after K polls in a row found nothing (default 1000 with --pcap; off on NICs, where traffic may pause: stop with --packets, --seconds or Ctrl-C)",
    ),
    opt(
        "parse-mode",
        "strict|compat",
        "strict (default, Vigor's IPv4 rules) or compat (Maestro's: no IHL/length checks, L4 at offset 34)",
    ),
    flag("json", "print the summary as JSON"),
];

const USAGE: &str = "dpdk [--eal \"EAL ARGS\"] [--strategy seq|sn|locks|tm] [--cores N] [--rss RSS.json] [--ports P0,P1,..] [--pcap IN --out DIR [--device-map MAP]] [--rx-order port-bursts|timestamp] [--clock auto|tsc] [--burst N] [--mbufs N] [--packets N] [--seconds S] [--idle-rounds K] [--parse-mode strict|compat] [--json]";

fn usage_error<N: GeneratedNf>(message: String) -> DriverError {
    DriverError::Usage {
        message,
        usage: format!(
            "usage: {nf} {USAGE}\n(see `{nf} dpdk --help`)",
            nf = N::NAME
        ),
    }
}

fn help<N: GeneratedNf>() -> String {
    let mut s = format!(
        "{nf} dpdk: the NF on DPDK: EAL lcores (one per core) and ports (one per NF port, \
         {ports} here), until a stop condition or Ctrl-C; prints what every core and port \
         did.\n\nusage: {nf} {USAGE}\n\noptions:\n",
        nf = N::NAME,
        ports = N::PORT_COUNT
    );
    s.push_str(&options::describe(OPTIONS));
    s
}

/// Parses the `dpdk` command line; `None` for `--help`.
fn parse_options<N: GeneratedNf>(args: &[String]) -> Result<Option<Options>, DriverError> {
    options::parse("dpdk", OPTIONS, args).map_err(usage_error::<N>)
}

fn bad_value(option: &str, value: &str, expected: &str) -> DriverError {
    DriverError::Input(format!(
        "invalid value `{value}` for --{option}: expected {expected}"
    ))
}

fn parse_number<T: std::str::FromStr + PartialOrd>(
    o: &Options,
    name: &str,
    min: T,
    max: T,
    expected: &str,
) -> Result<Option<T>, DriverError> {
    o.value(name)
        .map(|v| {
            v.parse::<T>()
                .ok()
                .filter(|n| *n >= min && *n <= max)
                .ok_or_else(|| bad_value(name, v, expected))
        })
        .transpose()
}

/// Where the traffic comes from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    /// The EAL's ports (NICs or vdevs from `--eal`): DPDK port of each NF port.
    Ports(Vec<u16>),
    /// A capture replayed through net_pcap vdevs, their files in `out`.
    Pcap {
        input: PathBuf,
        out: PathBuf,
        map: DeviceMap,
    },
}

/// A parsed `dpdk` command line.
#[derive(Clone, Debug)]
struct DpdkArgs {
    eal: Option<Vec<String>>,
    strategy: Strategy,
    cores: usize,
    rss: Option<PathBuf>,
    source: Source,
    run: DpdkRunOptions,
    mbufs: Option<u32>,
    json: bool,
    warnings: Vec<String>,
}

impl DpdkArgs {
    fn from_options<N: GeneratedNf>(o: &Options) -> Result<DpdkArgs, DriverError> {
        let mut warnings = Vec::new();
        let eal = o
            .value("eal")
            .map(|v| {
                shlex::split(v)
                    .ok_or_else(|| bad_value("eal", v, "EAL arguments with balanced quotes"))
            })
            .transpose()?;
        let name = o.value("strategy").unwrap_or("seq");
        let strategy = Strategy::parse(name)
            .ok_or_else(|| bad_value("strategy", name, "seq, sn, locks or tm"))?;
        let mut cores =
            parse_number(o, "cores", 1usize, 1024, "a whole number from 1 to 1024")?.unwrap_or(1);
        if strategy == Strategy::Seq && cores > 1 {
            warnings.push(format!(
                "--cores {cores} ignored: the seq strategy runs on one core"
            ));
            cores = 1;
        }
        let source =
            match (o.value("pcap"), o.value("out")) {
                (Some(input), Some(out)) => {
                    if o.value("ports").is_some() {
                        return Err(usage_error::<N>(
                            "--ports and --pcap exclude each other: a replay makes its own ports"
                                .into(),
                        ));
                    }
                    let map = o
                        .value("device-map")
                        .unwrap_or("auto")
                        .parse::<DeviceMap>()
                        .map_err(|e| DriverError::Input(format!("--device-map: {e}")))?;
                    Source::Pcap {
                        input: PathBuf::from(input),
                        out: PathBuf::from(out),
                        map,
                    }
                }
                (Some(_), None) => {
                    return Err(usage_error::<N>(
                        "--pcap needs --out DIR: the folder for the per-queue captures".into(),
                    ))
                }
                (None, Some(_)) => return Err(usage_error::<N>(
                    "--out applies to --pcap replays only; on NICs the frames leave by the ports"
                        .into(),
                )),
                (None, None) => {
                    if o.value("device-map").is_some() {
                        return Err(usage_error::<N>(
                            "--device-map applies to --pcap replays only".into(),
                        ));
                    }
                    Source::Ports(parse_ports::<N>(o.value("ports"))?)
                }
            };
        let pcap = matches!(source, Source::Pcap { .. });
        let order = match o.value("rx-order") {
            None if pcap => RxOrder::Timestamp,
            None | Some("port-bursts") => RxOrder::PortBursts,
            Some("timestamp") => RxOrder::Timestamp,
            Some(v) => return Err(bad_value("rx-order", v, "port-bursts or timestamp")),
        };
        let clock = match o.value("clock").unwrap_or("auto") {
            "auto" => Clock::Auto,
            "tsc" => Clock::Tsc,
            v => return Err(bad_value("clock", v, "auto or tsc")),
        };
        let parse_mode = match o.value("parse-mode").unwrap_or("strict") {
            "strict" => ParseMode::Strict,
            "compat" | "maestro-compat" => ParseMode::MaestroCompat,
            v => return Err(bad_value("parse-mode", v, "strict or compat")),
        };
        let burst = parse_number(
            o,
            "burst",
            1usize,
            MAX_BURST,
            &format!("a whole number from 1 to {MAX_BURST}"),
        )?
        .unwrap_or(32);
        let seconds = parse_number(o, "seconds", 0.0f64, 1e9, "a positive number of seconds")?;
        if seconds == Some(0.0) {
            return Err(bad_value("seconds", "0", "a positive number of seconds"));
        }
        let stop = StopWhen {
            flag: None,
            idle_rounds: parse_number(o, "idle-rounds", 1u64, u64::MAX, "a whole number >= 1")?
                .or(pcap.then_some(PCAP_IDLE_ROUNDS)),
            packets: parse_number(o, "packets", 1u64, u64::MAX, "a whole number >= 1")?,
            duration: seconds.map(Duration::from_secs_f64),
        };
        Ok(DpdkArgs {
            eal,
            strategy,
            cores,
            rss: o.value("rss").map(PathBuf::from),
            source,
            run: DpdkRunOptions {
                strategy,
                cores,
                burst,
                order,
                clock,
                stop,
                parse_mode,
                ..DpdkRunOptions::default()
            },
            mbufs: parse_number(o, "mbufs", 1023u32, u32::MAX, "a whole number >= 1023")?,
            json: o.flag("json"),
            warnings,
        })
    }

    /// The EAL arguments: as given, or for a replay without `--eal` a run that needs no
    /// NIC and no hugepages; a replay adds its vdevs.
    fn eal_args(&self, vdevs: &[String]) -> Vec<String> {
        let mut args = match (&self.eal, &self.source) {
            (Some(args), _) => args.clone(),
            (None, Source::Pcap { .. }) => [
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--no-shconf",
                "--no-telemetry",
                "-l",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("0-{}", self.cores - 1)])
            .collect(),
            (None, Source::Ports(_)) => Vec::new(),
        };
        args.extend(vdevs.iter().cloned());
        args
    }
}

/// `--ports 0,1`: one distinct DPDK port per NF port.
fn parse_ports<N: GeneratedNf>(value: Option<&str>) -> Result<Vec<u16>, DriverError> {
    let Some(v) = value else {
        return Ok((0..N::PORT_COUNT).collect());
    };
    let expected = format!(
        "{} distinct DPDK port numbers separated by commas (one per NF port, in NF port order)",
        N::PORT_COUNT
    );
    let ports: Vec<u16> = v
        .split(',')
        .map(|p| p.trim().parse::<u16>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad_value("ports", v, &expected))?;
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    if ports.len() != usize::from(N::PORT_COUNT) || distinct.len() != ports.len() {
        return Err(bad_value("ports", v, &expected));
    }
    Ok(ports)
}

/// The NIC configuration of the run: `--rss`, or for a parallel strategy without it
/// Microsoft's key spread round-robin (warned). `seq` keeps one queue.
fn nic_config<N: GeneratedNf>(
    a: &DpdkArgs,
    warnings: &mut Vec<String>,
) -> Result<NicConfig, DriverError> {
    let cfg = match &a.rss {
        Some(path) => NicConfig::load(path).map_err(|e| DriverError::Input(e.to_string()))?,
        None => {
            if a.strategy != Strategy::Seq {
                warnings.push(format!(
                    "no --rss: using Microsoft's RSS key and a round-robin RETA over {} core(s); \
                     packets that share state may land on different cores. Pass --rss with the \
                     output of `maestro rss {} --format json`",
                    a.cores,
                    N::NAME
                ));
            }
            NicConfig::default_for(N::PORT_COUNT).with_cores(a.cores)
        }
    };
    Ok(cfg.with_cores(a.cores))
}

/// A DPDK error as the driver reports it: the user's to fix (exit 2) unless a core
/// panicked (a bug, exit 1).
fn input_error(e: DpdkError) -> DriverError {
    match e {
        DpdkError::CorePanicked { .. } => DriverError::Failed(e.to_string()),
        other => DriverError::Input(other.to_string()),
    }
}

/// Set by SIGINT/SIGTERM: the run's stop flag.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if let Some(flag) = STOP.get() {
        flag.store(true, Ordering::Relaxed);
    }
}

/// The flag Ctrl-C (and SIGTERM) sets, so that a run stops cleanly and reports.
fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::clone(STOP.get_or_init(|| Arc::new(AtomicBool::new(false))));
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    flag
}

/// A replay's capture and the files it became.
#[derive(Clone, Debug, Serialize)]
pub struct ReplaySummary {
    pub capture: String,
    /// Packets admitted from the capture (what the ports were given).
    pub packets: u64,
    /// Records refused (unreadable, or for a port the NF does not have).
    pub refused: u64,
    /// Packets whose time was not a whole microsecond: net_pcap delivers microseconds,
    /// so the NF saw them truncated.
    pub sub_microsecond_times: u64,
    pub out_dir: String,
    /// `tx[port][core]`: what each core sent out of each port.
    pub tx: Vec<Vec<String>>,
}

/// What `dpdk` prints: the run's counters and where they come from. Invariants (checked,
/// `accounting`): per core `rx == forwarded + flooded + dropped`, and every frame meant
/// to leave was sent or dropped for a named reason.
#[derive(Clone, Debug, Serialize)]
pub struct DpdkSummary {
    pub nf: String,
    pub strategy: String,
    pub cores: usize,
    pub eal: Vec<String>,
    pub lcores: Vec<u32>,
    pub nic: String,
    pub rx_order: String,
    pub rx: u64,
    pub forwarded: u64,
    pub flooded: u64,
    pub dropped: u64,
    pub tx: u64,
    pub tx_dropped: u64,
    pub nf_faults: u64,
    pub rtm: String,
    /// Sums of the cores' protocol counters.
    pub protocol: CoreStats,
    pub seconds: f64,
    pub mpps: f64,
    /// `ok`, or the first counter that does not add up.
    pub accounting: String,
    /// The DPDK device name of each NF port.
    pub devices: Vec<String>,
    pub per_core: Vec<CoreReport>,
    pub per_port: Vec<PortReport>,
    pub replay: Option<ReplaySummary>,
}

impl DpdkSummary {
    fn new(a: &DpdkArgs, eal: &Eal, nic: String, devices: Vec<String>, r: &RunReport) -> Self {
        let sum = |f: fn(&CoreReport) -> u64| r.per_core.iter().map(f).sum();
        let mut protocol = CoreStats::default();
        for c in &r.per_core {
            let p = &c.protocol;
            protocol.packets += p.packets;
            protocol.read_passes += p.read_passes;
            protocol.aborts += p.aborts;
            protocol.writes += p.writes;
            protocol.tm_commits += p.tm_commits;
            protocol.tm_fallbacks += p.tm_fallbacks;
            protocol.tm_aborts += p.tm_aborts;
        }
        DpdkSummary {
            nf: r.nf.to_string(),
            strategy: r.strategy.to_string(),
            cores: r.per_core.len(),
            eal: a.eal_args(&[]),
            lcores: eal.lcores()[..r.per_core.len().min(eal.lcores().len())].to_vec(),
            nic,
            rx_order: match a.run.order {
                RxOrder::PortBursts => "port-bursts".into(),
                RxOrder::Timestamp => "timestamp".into(),
            },
            rx: r.rx(),
            forwarded: sum(|c| c.forwarded),
            flooded: sum(|c| c.flooded),
            dropped: sum(|c| c.dropped),
            tx: r.tx(),
            tx_dropped: sum(|c| c.tx_dropped),
            nf_faults: r.nf_faults,
            rtm: match &r.rtm {
                RtmStatus::Used => "used".into(),
                RtmStatus::Unavailable(why) => format!("unavailable: {why}"),
                RtmStatus::NotApplicable => "not applicable".into(),
            },
            protocol,
            seconds: r.seconds,
            mpps: r.mpps(),
            accounting: match r.check_accounting() {
                Ok(()) => "ok".into(),
                Err(e) => e,
            },
            devices,
            per_core: r.per_core.clone(),
            per_port: r.per_port.clone(),
            replay: None,
        }
    }
}

/// Runs `<nf> dpdk` with `args` (the words after `dpdk`) and returns what to print.
/// Call it once per process, from the main thread: EAL initialises once.
pub fn run_cli<N: GeneratedNf>(args: &[String]) -> Result<CliOutput, DriverError> {
    let Some(options) = parse_options::<N>(args)? else {
        return Ok(CliOutput {
            stdout: help::<N>(),
            warnings: Vec::new(),
        });
    };
    let a = DpdkArgs::from_options::<N>(&options)?;
    let mut warnings = a.warnings.clone();
    let cfg = nic_config::<N>(&a, &mut warnings)?;
    let nic_name = match &a.rss {
        Some(p) => p.display().to_string(),
        None if a.cores == 1 => "no RSS (one queue per port)".into(),
        None => "default (Microsoft key, round-robin RETA)".into(),
    };
    // A replay: split the capture per port and queue first (EAL loads the files).
    let mut replay = None;
    let mut vdevs = Vec::new();
    if let Source::Pcap { input, out, map } = &a.source {
        let (summary, caps) = prepare_replay::<N>(&a, &cfg, input, out, *map)?;
        vdevs = caps.vdev_args().map_err(input_error)?;
        if summary.sub_microsecond_times > 0 {
            warnings.push(format!(
                "{} packet(s) have times finer than a microsecond; net_pcap delivers \
                 microseconds, so the NF sees them truncated (`{} run` would not)",
                summary.sub_microsecond_times,
                N::NAME
            ));
        }
        replay = Some(summary);
    }
    let eal = Eal::init(a.eal_args(&vdevs)).map_err(input_error)?;
    let found = eal.require_ports().map_err(input_error)?;
    let ids: Vec<u16> = match &a.source {
        Source::Ports(ids) => {
            if usize::from(found) < ids.len() {
                return Err(input_error(DpdkError::PortCount {
                    nf: N::NAME,
                    want: N::PORT_COUNT,
                    got: usize::from(found),
                }));
            }
            ids.clone()
        }
        Source::Pcap { .. } => (0..N::PORT_COUNT)
            .map(|p| {
                let name = QueueCaptures::vdev_name(p);
                port_by_name(&eal, &name).ok_or_else(|| {
                    DriverError::Failed(format!("the replay's vdev {name} is not a DPDK port"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let cores = a.run.executing_cores();
    let queues = u16::try_from(cores)
        .map_err(|_| bad_value("cores", &cores.to_string(), "at most 65535"))?;
    let mbufs = a
        .mbufs
        .unwrap_or_else(|| default_mbufs(ids.len(), cores, a.run.burst));
    let pool = Arc::new(Mempool::new(&eal, "maestro", mbufs, 256).map_err(input_error)?);
    let mut ports = Vec::with_capacity(ids.len());
    let mut devices = Vec::with_capacity(ids.len());
    for (nf_port, &id) in ids.iter().enumerate() {
        let info = port_info(&eal, id).map_err(input_error)?;
        let mut pc = PortConfig::new(queues);
        // A replay's queues are its files; a device spreads with RSS when there is more
        // than one queue, or when a configuration was given.
        if matches!(a.source, Source::Ports(_)) && (cores > 1 || a.rss.is_some()) {
            pc = pc.with_rss(RssConfig::from_nic(&cfg, nf_port as u16));
        }
        devices.push(format!("{} ({}, DPDK port {id})", info.name, info.driver));
        ports.push(Port::configure(&eal, id, &pc, &pool).map_err(input_error)?);
    }
    let mut opts = a.run.clone();
    opts.stop.flag = Some(stop_on_signals());
    let report = run::<N>(&eal, &ports, &opts).map_err(input_error)?;
    for p in ports {
        // A pcap vdev finishes its output files here.
        p.close().map_err(input_error)?;
    }
    let mut summary = DpdkSummary::new(&a, &eal, nic_name, devices, &report);
    if let Some(r) = &replay {
        if report.rx() != r.packets && summary.accounting == "ok" {
            warnings.push(format!(
                "the ports received {} of the capture's {} packets (stopped early, or \
                 receive drops: see imissed/rx_nombuf per port)",
                report.rx(),
                r.packets
            ));
        }
    }
    summary.replay = replay;
    let stdout = if a.json {
        serde_json::to_string_pretty(&summary).map_err(|e| DriverError::Failed(e.to_string()))?
            + "\n"
    } else {
        summary_text(&summary)
    };
    if summary.accounting != "ok" {
        return Err(DriverError::Failed(format!(
            "{stdout}packets are not accounted for: {}",
            summary.accounting
        )));
    }
    Ok(CliOutput { stdout, warnings })
}

/// Mbufs for every receive and transmit descriptor of every queue, the bursts waiting
/// per core and port, and the pool's per-lcore caches; `2^k - 1` (DPDK's best size).
fn default_mbufs(ports: usize, cores: usize, burst: usize) -> u32 {
    let queues = (ports * cores) as u64;
    let need = queues * 2 * u64::from(DESCRIPTORS)
        + queues * 2 * burst as u64
        + (cores as u64 + 1) * 256
        + 1024;
    let size = need.saturating_add(1).next_power_of_two() - 1;
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// Reads the capture, splits it per port and queue into `out` as the NIC model steers
/// it, and says what it wrote.
fn prepare_replay<N: GeneratedNf>(
    a: &DpdkArgs,
    cfg: &NicConfig,
    input: &Path,
    out: &Path,
    map: DeviceMap,
) -> Result<(ReplaySummary, QueueCaptures), DriverError> {
    let cores = a.run.executing_cores();
    let nic = NicModel::new(cfg, cores).map_err(|e| {
        let file = a
            .rss
            .as_ref()
            .map_or(String::from("the default NIC"), |p| p.display().to_string());
        DriverError::Input(format!("{file}: {e}"))
    })?;
    let (packets, refused) =
        read_inputs(input, map, N::LAN_PORT, N::WAN_PORT, N::PORT_COUNT).map_err(input_error)?;
    std::fs::create_dir_all(out).map_err(|e| {
        DriverError::Input(format!(
            "cannot create {}: {e}; choose a writable --out folder",
            out.display()
        ))
    })?;
    let caps = write_queue_captures(&packets, &nic, N::PORT_COUNT, out).map_err(input_error)?;
    let summary = ReplaySummary {
        capture: input.display().to_string(),
        packets: packets.len() as u64,
        refused,
        sub_microsecond_times: packets.iter().filter(|p| p.time_ns % 1000 != 0).count() as u64,
        out_dir: out.display().to_string(),
        tx: caps
            .tx
            .iter()
            .map(|per_core| per_core.iter().map(|p| p.display().to_string()).collect())
            .collect(),
    };
    Ok((summary, caps))
}

fn per_port(values: impl Iterator<Item = u64>) -> String {
    values
        .enumerate()
        .map(|(p, n)| format!("port {p}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary_text(s: &DpdkSummary) -> String {
    let mut t = String::new();
    let lcores: Vec<String> = s.lcores.iter().map(u32::to_string).collect();
    let _ = writeln!(
        t,
        "{} on DPDK ({}, {} core(s) on lcores {}; rx order {})",
        s.nf,
        s.strategy,
        s.cores,
        lcores.join(","),
        s.rx_order
    );
    for (p, d) in s.devices.iter().enumerate() {
        let _ = writeln!(t, "  port {p}       {d}");
    }
    let _ = writeln!(
        t,
        "  received     {:>10}  ({})",
        s.rx,
        per_port(s.per_port.iter().map(|p| p.rx))
    );
    let _ = writeln!(t, "  forwarded    {:>10}", s.forwarded);
    let _ = writeln!(t, "  flooded      {:>10}", s.flooded);
    let _ = writeln!(t, "  dropped      {:>10}", s.dropped);
    let _ = writeln!(
        t,
        "  sent         {:>10}  ({})",
        s.tx,
        per_port(s.per_port.iter().map(|p| p.tx))
    );
    let sum = |f: fn(&CoreReport) -> u64| -> u64 { s.per_core.iter().map(f).sum() };
    let (copy, big, nowhere) = (
        sum(|c| c.copy_failed),
        sum(|c| c.too_big),
        sum(|c| c.no_such_port),
    );
    if s.tx_dropped + copy + big + nowhere > 0 {
        let _ = writeln!(
            t,
            "  not sent     {:>10}  (transmit ring full {}, no mbuf for a copy {copy}, too big {big}, no such port {nowhere})",
            s.tx_dropped + copy + big + nowhere,
            s.tx_dropped
        );
    }
    if s.nf_faults > 0 {
        let _ = writeln!(t, "  NF faults    {:>10}  (dropped)", s.nf_faults);
    }
    let (clamped, untimed) = (sum(|c| c.time_clamped), sum(|c| c.untimed));
    if clamped > 0 {
        let _ = writeln!(
            t,
            "  time clamped {clamped:>10}  (packets older than their core's previous one ran at its time)"
        );
    }
    if untimed > 0 {
        let _ = writeln!(
            t,
            "  TSC time     {untimed:>10}  (packets without a receive timestamp)"
        );
    }
    let cores: Vec<String> = s
        .per_core
        .iter()
        .map(|c| {
            format!(
                "core {} (lcore {}): {} in, {} out",
                c.core, c.lcore, c.rx, c.tx
            )
        })
        .collect();
    let _ = writeln!(t, "  per core     {}", cores.join("; "));
    let p = &s.protocol;
    if s.strategy == Strategy::Locks.name() {
        let _ = writeln!(
            t,
            "  locks        {} read passes, {} needed the write lock",
            p.read_passes, p.writes
        );
    }
    if s.strategy == Strategy::Tm.name() {
        let _ = writeln!(
            t,
            "  tm           {} transactions, {} under the fallback lock, {} aborts (RTM {})",
            p.tm_commits, p.tm_fallbacks, p.tm_aborts, s.rtm
        );
    }
    for (port, r) in s.per_port.iter().enumerate() {
        let d = &r.device;
        if d.imissed + d.ierrors + d.oerrors + d.rx_nombuf > 0 {
            let _ = writeln!(
                t,
                "  port {port} lost  imissed {}, ierrors {}, oerrors {}, rx_nombuf {}",
                d.imissed, d.ierrors, d.oerrors, d.rx_nombuf
            );
        }
    }
    let _ = writeln!(t, "  NIC          {}", s.nic);
    let _ = writeln!(t, "  accounting   {}", s.accounting);
    let _ = writeln!(
        t,
        "  processing   {:>10.3} Mpps  ({:.3} s)",
        s.mpps, s.seconds
    );
    if let Some(r) = &s.replay {
        let _ = writeln!(
            t,
            "  replayed     {} ({} packets, {} refused); captures in {} (tx-p<port>-q<core>.pcap)",
            r.capture, r.packets, r.refused, r.out_dir
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use maestro_runtime::exec::{
        AccessLog, NeedsWrite, Refresh, RefreshLog, RenamedField, StateObjectInfo,
    };
    use maestro_runtime::state::StateError;
    use maestro_runtime::{InputPacket, Observation};

    /// A two-port NF that drops everything: only its constants matter here.
    struct Two;

    impl GeneratedNf for Two {
        const NAME: &'static str = "two";
        const STATE: &'static [StateObjectInfo] = &[];
        const PORT_COUNT: u16 = 2;
        const LAN_PORT: u16 = 0;
        const WAN_PORT: u16 = 1;
        const RENAMED: &'static [RenamedField] = &[];

        fn with_shards(_mode: ParseMode, _shards: usize) -> Result<Self, StateError> {
            Ok(Two)
        }
        fn process(&mut self, _packet: &InputPacket) -> Observation {
            Observation::Drop
        }
        fn process_read(
            &self,
            _packet: &InputPacket,
            _log: &mut RefreshLog,
        ) -> Result<Observation, NeedsWrite> {
            Ok(Observation::Drop)
        }
        fn apply_refresh(&mut self, _refresh: &Refresh) {}
        fn fault_count(&self) -> u64 {
            0
        }
        fn set_instrumented(&mut self, _on: bool) {}
        fn access_log(&self) -> Option<&AccessLog> {
            None
        }
    }

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn parse(words: &[&str]) -> Result<DpdkArgs, DriverError> {
        let o = parse_options::<Two>(&args(words))?.expect("not help");
        DpdkArgs::from_options::<Two>(&o)
    }

    #[test]
    fn eal_arguments_are_split_as_a_shell_would() {
        let a = parse(&[
            "--eal",
            "-l 0-1 --vdev 'net_pcap0,rx_pcap=a b.pcap'",
            "--cores=2",
            "--strategy",
            "sn",
        ])
        .expect("parses");
        assert_eq!(
            a.eal_args(&[]),
            ["-l", "0-1", "--vdev", "net_pcap0,rx_pcap=a b.pcap"]
        );
        assert_eq!((a.strategy, a.cores), (Strategy::Sn, 2));
        assert_eq!(a.source, Source::Ports(vec![0, 1]));
        assert_eq!(a.run.order, RxOrder::PortBursts, "NICs: Maestro's loop");
        assert_eq!(a.run.stop.idle_rounds, None, "NIC traffic may pause");
        let e = parse(&["--eal", "-l 'open"]).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("--eal")));
    }

    #[test]
    fn a_replay_defaults_to_exact_order_and_a_run_without_nic_or_hugepages() {
        let a = parse(&[
            "--pcap",
            "in.pcap",
            "--out",
            "dir",
            "--strategy",
            "locks",
            "--cores",
            "3",
        ])
        .expect("parses");
        assert_eq!(a.run.order, RxOrder::Timestamp);
        assert_eq!(a.run.stop.idle_rounds, Some(PCAP_IDLE_ROUNDS));
        let eal = a.eal_args(&["--vdev=net_pcap0".into()]);
        assert!(eal.contains(&"--no-huge".to_string()), "{eal:?}");
        assert_eq!(eal[eal.len() - 2..], ["0-2", "--vdev=net_pcap0"]);
        let a = parse(&[
            "--pcap",
            "in.pcap",
            "--out",
            "d",
            "--rx-order",
            "port-bursts",
            "--idle-rounds",
            "5",
        ])
        .expect("parses");
        assert_eq!(a.run.order, RxOrder::PortBursts);
        assert_eq!(a.run.stop.idle_rounds, Some(5));
    }

    #[test]
    fn stop_conditions_and_seq_parse() {
        let a = parse(&["--packets", "1000", "--seconds", "2.5", "--cores", "4"]).expect("parses");
        assert_eq!(a.run.stop.packets, Some(1000));
        assert_eq!(a.run.stop.duration, Some(Duration::from_millis(2500)));
        assert_eq!(a.cores, 1, "seq runs on one core");
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    }

    #[test]
    fn bad_command_lines_name_the_option_and_the_fix() {
        let cases: &[(&[&str], &str, u8)] = &[
            (&["--strategy", "fast"], "seq, sn, locks or tm", 2),
            (&["--cores", "0"], "--cores", 2),
            (&["--ports", "0"], "2 distinct DPDK port numbers", 2),
            (&["--ports", "1,1"], "distinct", 2),
            (&["--pcap", "x.pcap"], "--out DIR", 2),
            (&["--out", "d"], "--pcap replays only", 2),
            (
                &["--pcap", "x", "--out", "d", "--ports", "0,1"],
                "exclude",
                2,
            ),
            (&["--burst", "513"], "1 to 512", 2),
            (&["--seconds", "0"], "positive", 2),
            (&["--rx-order", "random"], "port-bursts or timestamp", 2),
            (&["--bogus"], "unknown option `--bogus`", 2),
            (&["--json=yes"], "takes no value", 2),
            (&["--eal"], "needs a value", 2),
            (&["stray"], "unexpected argument", 2),
        ];
        for (words, needle, code) in cases {
            let e = parse(words)
                .err()
                .unwrap_or_else(|| panic!("{words:?} parses"));
            assert!(e.to_string().contains(needle), "{words:?}: {e}");
            assert_eq!(e.exit_code(), *code, "{words:?}");
        }
    }

    #[test]
    fn help_lists_every_option() {
        let out = run_cli::<Two>(&args(&["--strategy=sn", "--help"])).expect("help");
        for spec in OPTIONS {
            assert!(
                out.stdout.contains(&format!("--{}", spec.name)),
                "{}",
                spec.name
            );
        }
        assert!(out.stdout.contains("two dpdk"));
    }

    #[test]
    fn default_pool_covers_every_descriptor() {
        let n = default_mbufs(2, 4, 32);
        assert!(u64::from(n) >= 2 * 4 * 2 * u64::from(DESCRIPTORS), "{n}");
        assert!((n + 1).is_power_of_two(), "{n}");
    }
}
