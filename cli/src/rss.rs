//! `maestro rss`: solve an NF's RSS configuration (keys, hash types, RETA) and export it,
//! optionally rebalance the RETA for a capture (`--balance`) and prove co-location with
//! Z3 (`--prove`); or (`maestro rss hash`) compute one Toeplitz hash and RETA index by hand.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use maestro_analyzer::{AnalysisError, AnalyzeOptions};
use maestro_rss::{balance, export, solve, z3check, Engine, SolveOptions};
use maestro_runtime::capture::{DeviceMap, DEVICE_MAP_HELP};
use maestro_runtime::rss::{HashInput, Reta, Toeplitz};

use crate::{diagnostics_error, input_error};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RssArgs {
    #[command(subcommand)]
    pub command: Option<RssCommand>,
    /// The NF folder (holding one `.nf` file), or a `.nf` file.
    pub nf: Option<PathBuf>,
    /// Override a config parameter or a device's port: `--set max_flows=1024`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,
    /// Output form.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// RETA entries of the NIC (128 on 82599, 512 on X710/ConnectX, 2048 on E810 PFs).
    #[arg(long, default_value_t = 512)]
    pub reta_size: usize,
    /// Key length of the NIC in bytes (40: 82599, ConnectX; 52: X710, E810).
    #[arg(long, default_value_t = 52)]
    pub key_bytes: usize,
    /// Cores (RX queues) to spread over.
    #[arg(long, default_value_t = 16)]
    pub cores: usize,
    /// Seed for the random choice among valid keys.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Constrain all 32 hash bits, as Maestro does (worse spread; any RETA stays valid).
    #[arg(long)]
    pub full_hash: bool,
    /// Hash TCP/UDP only, as Maestro does (ICMP and fragments then all reach one core).
    #[arg(long)]
    pub tcp_udp_only: bool,
    /// Solver: `gf2` (Gaussian elimination, default) or `z3` (Z3 bit-vector encoding).
    #[arg(long, value_enum, default_value_t = EngineArg::Gf2)]
    pub engine: EngineArg,
    /// Random key sets drawn; the best spread is kept (stops early at the best possible).
    #[arg(long, default_value_t = 32)]
    pub samples: usize,
    /// Rebalance the RETA for this capture (pcap/pcapng): packets per RETA bucket under
    /// the solved keys, buckets assigned greedily to the least-loaded core. All ports keep
    /// one table, so co-location holds. The report goes to stderr and into the JSON.
    #[arg(long, value_name = "CAPTURE")]
    pub balance: Option<PathBuf>,
    /// With --balance: how captured packets get their input port.
    #[arg(long, default_value = "auto", long_help = DEVICE_MAP_HELP)]
    pub device_map: String,
    /// Prove with Z3 that every constrained pair reaches one core under the final keys
    /// and RETA (printed to stderr); a counterexample makes the command fail (exit 1).
    #[arg(long)]
    pub prove: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EngineArg {
    Gf2,
    Z3,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Dpdk,
    Ethtool,
}

#[derive(Subcommand)]
pub enum RssCommand {
    /// Compute the Toeplitz hash of one tuple and its RETA index.
    Hash(HashArgs),
}

#[derive(Args)]
pub struct HashArgs {
    /// The key in hex (80 or 104 digits, `:` separators allowed).
    #[arg(long)]
    pub key: String,
    /// `SRC:SPORT-DST:DPORT` (IPv6: `[a::1]:80-[b::2]:443`), or `SRC-DST` for addresses only.
    #[arg(long)]
    pub tuple: String,
    /// `tcp`/`udp` hash the 4-tuple; `other` only the addresses (as the NIC does for ICMP).
    #[arg(long, default_value = "tcp")]
    pub proto: String,
    #[arg(long, default_value_t = 512)]
    pub reta_size: usize,
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

/// One side of `--tuple`: `addr:port`, `[v6]:port` or a bare address.
fn endpoint(s: &str) -> Result<(IpAddr, Option<u16>)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    match s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        Ok(ip) => Ok((ip, None)),
        Err(_) => bail!("`{s}` is not ADDRESS:PORT, [IPV6]:PORT or an address"),
    }
}

pub fn hash(args: HashArgs) -> Result<()> {
    let t = Toeplitz::from_hex(&args.key).map_err(input_error)?;
    let reta = Reta::round_robin(args.reta_size, 1).map_err(input_error)?;
    let Some((a, b)) = args.tuple.split_once('-') else {
        return Err(input_error(anyhow::anyhow!(
            "--tuple `{}` must be SRC:SPORT-DST:DPORT or SRC-DST",
            args.tuple
        )));
    };
    let (src, sp) = endpoint(a).map_err(input_error)?;
    let (dst, dp) = endpoint(b).map_err(input_error)?;
    let ports = match args.proto.as_str() {
        "tcp" | "udp" => sp.is_some() && dp.is_some(),
        "other" => false,
        p => {
            return Err(input_error(anyhow::anyhow!(
                "--proto `{p}`: use tcp, udp or other"
            )))
        }
    };
    let (sp, dp) = (sp.unwrap_or(0), dp.unwrap_or(0));
    let input = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => HashInput::ipv4(s, d, sp, dp, ports),
        (IpAddr::V6(s), IpAddr::V6(d)) => HashInput::ipv6(s, d, sp, dp, ports),
        _ => {
            return Err(input_error(anyhow::anyhow!(
                "--tuple mixes IPv4 and IPv6 addresses"
            )))
        }
    };
    let h = t.hash(&input).map_err(input_error)?;
    let bytes: Vec<String> = input
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("input  {} ({} bytes)", bytes.join(" "), bytes.len());
    println!("hash   {h:#010x}");
    println!(
        "index  {} (hash & {:#x}, {}-entry RETA)",
        reta.index(h),
        args.reta_size - 1,
        args.reta_size
    );
    Ok(())
}

pub fn rss(args: RssArgs) -> Result<()> {
    if let Some(RssCommand::Hash(h)) = args.command {
        return hash(h);
    }
    let Some(nf) = &args.nf else {
        return Err(input_error(anyhow::anyhow!(
            "give an NF folder (`maestro rss nfs/fw`) or `maestro rss hash --key ... --tuple ...`"
        )));
    };
    let program = maestro_analyzer::load_nf(nf, &args.overrides).map_err(|e| match e {
        maestro_analyzer::LoadError::Source(_) => diagnostics_error(e),
        other => input_error(other),
    })?;
    let analysis = maestro_analyzer::analyze_with(&program, &AnalyzeOptions::default()).map_err(
        |e| match e {
            AnalysisError::Unsupported { .. } | AnalysisError::TooManyPaths { .. } => {
                input_error(e)
            }
            AnalysisError::Solver { .. } => anyhow::Error::new(e),
        },
    )?;
    let opts = SolveOptions {
        reta_size: args.reta_size,
        key_bytes: args.key_bytes,
        cores: args.cores,
        seed: args.seed,
        hash_bits: args.full_hash.then_some(32),
        all_classes: !args.tcp_udp_only,
        samples: args.samples,
        engine: match args.engine {
            EngineArg::Gf2 => Engine::Gf2,
            EngineArg::Z3 => Engine::Z3,
        },
    };
    let mut cfg = solve(&analysis, &opts).map_err(input_error)?;
    if let Some(capture) = &args.balance {
        let map: DeviceMap = args
            .device_map
            .parse()
            .map_err(|e| input_error(anyhow::anyhow!("--device-map {}: {e}", args.device_map)))?;
        let (lan, wan) = balance::lan_wan(&analysis);
        let sample = balance::read_capture(capture, map, lan, wan, analysis.nf.ports)
            .map_err(input_error)?;
        let r = balance::balance(&mut cfg, &sample).map_err(input_error)?;
        eprintln!(
            "balance: {}: {} records, {} packets counted, {} refused; {} of {} RETA buckets hit, the largest holds {} packets",
            r.capture,
            r.records,
            r.packets,
            r.refused,
            r.buckets_hit,
            cfg.reta.len(),
            r.largest_bucket
        );
        for ex in &r.refused_examples {
            eprintln!("balance: refused {ex}");
        }
        eprintln!(
            "balance: imbalance (max/mean packets per core over {} cores) {:.3} -> {:.3}",
            cfg.cores, r.imbalance_before, r.imbalance_after
        );
    }
    let mut failed = 0;
    if args.prove {
        for p in z3check::prove(&analysis, &cfg).map_err(anyhow::Error::new)? {
            eprintln!("prove: {p}");
            failed += usize::from(p.counterexample.is_some());
        }
    }
    match args.format {
        Format::Json => println!("{}", export::json(&cfg)),
        Format::Dpdk => print!("{}", export::dpdk(&cfg)),
        Format::Ethtool => print!("{}", export::ethtool(&cfg)),
    }
    if failed > 0 {
        bail!("{failed} constraint(s) have a counterexample: the configuration does not co-locate them");
    }
    Ok(())
}
