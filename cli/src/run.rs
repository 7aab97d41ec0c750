//! `maestro check` and `maestro run`: load an NF, replay a capture through the reference
//! interpreter, write what leaves it and account for every input record. With
//! `--strategy` the generated code runs instead, in memory or with `--backend dpdk` on
//! DPDK (`crate::generated`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use maestro_analyzer::NfProgram;
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::capture::{
    CaptureFormat, CaptureItem, CaptureReader, CaptureWriter, DeviceMap, PortAssigner,
};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};
use serde::Serialize;

use crate::{diagnostics_error, input_error};

/// `--set NAME=VALUE`, repeatable.
fn parse_override(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE (e.g. --set max_flows=1024)"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Args)]
pub struct NfArgs {
    /// The NF folder (holding one `.nf` file), or a `.nf` file.
    pub nf: PathBuf,
    /// Override a config parameter or a device's port: `--set max_flows=1024`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,
}

impl NfArgs {
    fn load(&self) -> Result<NfProgram> {
        maestro_analyzer::load_nf(&self.nf, &self.overrides).map_err(|e| match e {
            maestro_analyzer::LoadError::Source(_) => diagnostics_error(e),
            other => input_error(other),
        })
    }
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub nf: NfArgs,
}

pub fn check(args: CheckArgs) -> Result<()> {
    let program = args.nf.load()?;
    println!("{}", program.summary());
    Ok(())
}

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub enum ParseModeArg {
    /// Vigor's IPv4 rules: IHL >= 5, total length checked, L4 after the options.
    Strict,
    /// Maestro's rules: no IHL or length checks, L4 always at offset 34.
    MaestroCompat,
}

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub enum OutFormat {
    /// pcapng, one interface per output port (interface id = port).
    Pcapng,
    /// Classic pcap (nanosecond timestamps); the output port is not recorded.
    Pcap,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub nf: NfArgs,
    /// The input capture (pcap or pcapng). Required except with `--backend dpdk`, where
    /// traffic comes from the EAL's ports (with it: replayed through net_pcap vdevs).
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Where to write the packets that leave the NF. With `--backend dpdk --pcap`: a
    /// folder for the per-queue captures (`tx-p<port>-q<core>.pcap`; default
    /// `<nf>-dpdk-out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output capture format.
    #[arg(long, value_enum, default_value = "pcapng")]
    pub out_format: OutFormat,
    /// How captured packets get their input port. `auto` (default): the pcapng interface
    /// id when the record has one, else `flow`. `flow`: the side that opened a
    /// conversation is LAN, the reply side is WAN. `interface`: the pcapng interface id.
    /// `port:N`: every packet on port N. `subnet:A.B.C.D/P`: sources inside the subnet
    /// are LAN, the rest WAN. LAN and WAN are the NF's `lan`/`wan` devices (else ports 0/1).
    #[arg(long, default_value = "auto")]
    pub device_map: String,
    /// IPv4 acceptance rules.
    #[arg(long, value_enum, default_value = "strict")]
    pub parse_mode: ParseModeArg,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// What runs the NF: `interp`, the reference interpreter (default), or the generated
    /// code with a strategy: `seq`, `sn` (shared-nothing), `locks`, `tm`. Generated code is
    /// built on first use and cached (`MAESTRO_CACHE`, default ~/.cache/maestro).
    #[arg(long, value_enum, default_value = "interp")]
    pub strategy: RunStrategy,
    /// Cores for a parallel strategy.
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// RSS configuration (JSON of `maestro rss --format json`); by default it is solved
    /// from the analysis for `--cores`.
    #[arg(long)]
    pub rss: Option<PathBuf>,
    /// Do not pin worker threads to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Where generated code runs: `memory` (default: captures through the runtime's
    /// executors) or `dpdk` (EAL lcores and ports; builds the NF with its `dpdk` feature,
    /// needs DPDK 22.11).
    #[arg(long, value_enum, default_value = "memory")]
    pub backend: Backend,
    /// `--backend dpdk`: EAL arguments as one string, e.g. `"-l 0-3 -a 0000:03:00.0 -a
    /// 0000:03:00.1"` (with `--pcap` the default needs no NIC or hugepages).
    #[arg(long, value_name = "EAL ARGS", allow_hyphen_values = true)]
    pub eal: Option<String>,
    /// `--backend dpdk`: `port-bursts` (each port's burst as it comes; the default on
    /// NICs) or `timestamp` (ports merged by receive time; the default with `--pcap`).
    #[arg(long, value_name = "ORDER")]
    pub rx_order: Option<String>,
    /// `--backend dpdk`: stop once this many packets were received.
    #[arg(long)]
    pub packets: Option<u64>,
    /// `--backend dpdk`: stop after this many seconds (else at the end of a `--pcap`
    /// replay, or Ctrl-C).
    #[arg(long)]
    pub seconds: Option<f64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The runtime's in-memory executors over a capture.
    Memory,
    /// DPDK lcores and ports (the generated binary's `dpdk` command).
    Dpdk,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunStrategy {
    /// The reference interpreter.
    Interp,
    /// Generated code, sequential.
    Seq,
    /// Generated code, shared-nothing (state per core, RSS co-locates).
    Sn,
    /// Generated code, shared state behind a speculative big-reader lock.
    Locks,
    /// Generated code, hardware transactions (global lock without Intel RTM).
    Tm,
}

/// Everything `maestro run` accounts for. Invariant:
/// `records == packets + refused` and `packets == forwarded + flooded + dropped`.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    pub nf: String,
    pub capture: String,
    pub records: u64,
    pub packets: u64,
    pub refused: u64,
    pub refused_examples: Vec<String>,
    pub forwarded: u64,
    pub forwarded_per_port: BTreeMap<u16, u64>,
    pub flooded: u64,
    pub dropped: u64,
    pub nf_faults: u64,
    pub nf_fault_examples: Vec<String>,
    pub time_clamped: u64,
    pub packets_in_per_port: BTreeMap<u16, u64>,
    pub written: u64,
    pub output: Option<String>,
}

const EXAMPLES: usize = 5;

pub fn run(args: RunArgs) -> Result<()> {
    let program = args.nf.load()?;
    if args.backend == Backend::Dpdk {
        return crate::generated::run_dpdk(&program, &args);
    }
    let dpdk_only = [
        ("--eal", args.eal.is_some()),
        ("--rx-order", args.rx_order.is_some()),
        ("--packets", args.packets.is_some()),
        ("--seconds", args.seconds.is_some()),
    ];
    if let Some((flag, _)) = dpdk_only.iter().find(|(_, given)| *given) {
        return Err(input_error(anyhow::anyhow!(
            "{flag} applies to --backend dpdk only"
        )));
    }
    let Some(pcap) = args.pcap.clone() else {
        return Err(input_error(anyhow::anyhow!(
            "--pcap IN is required (except with --backend dpdk, where traffic comes from the \
             EAL's ports)"
        )));
    };
    if args.strategy != RunStrategy::Interp {
        return crate::generated::run_generated(&program, &args, &pcap);
    }
    let device_map: DeviceMap = args
        .device_map
        .parse()
        .map_err(|e| input_error(anyhow::anyhow!("--device-map {}: {e}", args.device_map)))?;
    let parse_mode = match args.parse_mode {
        ParseModeArg::Strict => ParseMode::Strict,
        ParseModeArg::MaestroCompat => ParseMode::MaestroCompat,
    };
    let mut interp = Interpreter::new(
        &program,
        InterpOptions {
            parse_mode,
            ..InterpOptions::default()
        },
    )
    .map_err(|e| {
        input_error(anyhow::anyhow!(
            "cannot start NF {}: {e}",
            args.nf.nf.display()
        ))
    })?;
    let reader = CaptureReader::open(&pcap).map_err(input_error)?;
    let ports = program.port_count();
    let mut writer = match &args.out {
        Some(path) => {
            let format = match args.out_format {
                OutFormat::Pcapng => CaptureFormat::PcapNg,
                OutFormat::Pcap => CaptureFormat::Pcap,
            };
            Some(CaptureWriter::create(path, format, ports).map_err(input_error)?)
        }
        None => None,
    };
    let (lan, wan) = lan_wan_ports(&program);
    let mut assigner = PortAssigner::new(device_map, lan, wan);

    let mut summary = RunSummary {
        nf: program.name().to_string(),
        capture: pcap.display().to_string(),
        output: args.out.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    };
    let progress = progress_bar(&pcap);
    let mut clock = 0u64;
    let mut faults_seen = 0u64;
    for item in reader {
        summary.records += 1;
        if summary.records.is_multiple_of(4096) {
            progress.set_position(summary.records);
        }
        let record = match item {
            CaptureItem::Refused(refused) => {
                summary.refused += 1;
                if summary.refused_examples.len() < EXAMPLES {
                    summary.refused_examples.push(format!(
                        "record {} at byte {}: {}",
                        refused.index, refused.byte_offset, refused.reason
                    ));
                }
                continue;
            }
            CaptureItem::Packet(record) => record,
        };
        let port = match assigner.assign(&record) {
            Ok(port) if port < ports => port,
            Ok(port) => {
                summary.refused += 1;
                if summary.refused_examples.len() < EXAMPLES {
                    summary.refused_examples.push(format!(
                        "record {}: input port {port} does not exist (the NF has {ports} ports); \
                         choose another --device-map",
                        record.index
                    ));
                }
                continue;
            }
            Err(reason) => {
                summary.refused += 1;
                if summary.refused_examples.len() < EXAMPLES {
                    summary
                        .refused_examples
                        .push(format!("record {}: {reason}", record.index));
                }
                continue;
            }
        };
        // The NF's clock never runs backwards (dchain contract): a record older than its
        // predecessor is processed at the predecessor's time, and counted.
        if record.time_ns < clock {
            summary.time_clamped += 1;
        } else {
            clock = record.time_ns;
        }
        let packet = InputPacket {
            port,
            time_ns: clock,
            data: record.data,
        };
        summary.packets += 1;
        *summary.packets_in_per_port.entry(port).or_default() += 1;
        let observation = interp.process(&packet);
        let faults = interp.fault_count();
        if faults > faults_seen {
            summary.nf_faults += faults - faults_seen;
            faults_seen = faults;
            if summary.nf_fault_examples.len() < EXAMPLES {
                if let Some(fault) = interp.last_fault() {
                    summary
                        .nf_fault_examples
                        .push(format!("packet {}: {fault}", summary.packets - 1));
                }
            }
        }
        match &observation {
            Observation::Drop => summary.dropped += 1,
            Observation::Forward { port: out, bytes } => {
                summary.forwarded += 1;
                *summary.forwarded_per_port.entry(*out).or_default() += 1;
                if let Some(w) = writer.as_mut() {
                    w.write(*out, packet.time_ns, bytes).map_err(input_error)?;
                    summary.written += 1;
                }
            }
            Observation::Flood { bytes } => {
                summary.flooded += 1;
                if let Some(w) = writer.as_mut() {
                    for out in (0..ports).filter(|&p| p != port) {
                        w.write(out, packet.time_ns, bytes).map_err(input_error)?;
                        summary.written += 1;
                    }
                }
            }
        }
    }
    progress.finish_and_clear();
    if let Some(w) = writer {
        w.finish().map_err(input_error)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// The ports a `--device-map` rule calls LAN and WAN: the NF's `lan` and `wan` devices if
/// it has them, else ports 0 and 1.
fn lan_wan_ports(program: &NfProgram) -> (u16, u16) {
    let lan = program.device_port("lan").unwrap_or(0);
    let wan = program.device_port("wan").unwrap_or(1);
    (lan, wan)
}

fn progress_bar(capture: &Path) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {pos} records ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(capture.display().to_string());
    bar
}

fn print_summary(s: &RunSummary) {
    println!("{} on {}", s.nf, s.capture);
    println!(
        "  records      {:>10}  ({} packets, {} refused)",
        s.records, s.packets, s.refused
    );
    for r in &s.refused_examples {
        println!("    refused: {r}");
    }
    let per_port: Vec<String> = s
        .packets_in_per_port
        .iter()
        .map(|(p, n)| format!("port {p}: {n}"))
        .collect();
    println!(
        "  in           {:>10}  ({})",
        s.packets,
        per_port.join(", ")
    );
    let per_port: Vec<String> = s
        .forwarded_per_port
        .iter()
        .map(|(p, n)| format!("port {p}: {n}"))
        .collect();
    println!(
        "  forwarded    {:>10}  ({})",
        s.forwarded,
        if per_port.is_empty() {
            "none".to_string()
        } else {
            per_port.join(", ")
        }
    );
    println!("  flooded      {:>10}", s.flooded);
    println!("  dropped      {:>10}", s.dropped);
    if s.nf_faults > 0 {
        println!("  NF faults    {:>10}  (dropped; see below)", s.nf_faults);
        for f in &s.nf_fault_examples {
            println!("    fault: {f}");
        }
    }
    if s.time_clamped > 0 {
        println!(
            "  time clamped {:>10}  (records older than their predecessor ran at its time)",
            s.time_clamped
        );
    }
    if let Some(out) = &s.output {
        println!("  wrote {} packets to {out}", s.written);
    }
}
