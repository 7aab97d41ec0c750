//! `maestro trafficgen`: write a synthetic trace to a capture file.
//!
//! Today: uniform flow choice, fixed frame sizes, optional replies. Zipf skew, churn and
//! size mixes are the trafficgen issue's to add.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use maestro_runtime::capture::CaptureFormat;
use maestro_trafficgen::{write_pcap, Cidr, FlowSpec, TraceConfig};

use crate::input_error;

#[derive(Args)]
pub struct TrafficgenArgs {
    /// Output file; `.pcap` writes classic pcap, anything else pcapng (one interface per port).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of distinct flows.
    #[arg(long, default_value_t = 40_000)]
    pub flows: u32,
    /// Number of packets.
    #[arg(long, default_value_t = 1_000_000)]
    pub packets: u64,
    /// Frame size in bytes including the FCS (64..=1518); frames are written without it.
    #[arg(long, default_value_t = 64)]
    pub size: u16,
    /// Share of flows that are UDP (the rest TCP).
    #[arg(long, default_value_t = 1.0)]
    pub udp_share: f64,
    /// Probability that a packet of an already-started flow is its reply (on the WAN port).
    #[arg(long, default_value_t = 0.0)]
    pub reply_ratio: f64,
    /// Where LAN-side source addresses come from.
    #[arg(long, default_value = "10.0.0.0/8")]
    pub src_prefix: String,
    /// Where WAN-side destination addresses come from.
    #[arg(long, default_value = "0.0.0.0/0")]
    pub dst_prefix: String,
    /// Packets per second (sets the timestamps).
    #[arg(long, default_value_t = 1_000_000)]
    pub rate: u64,
    /// Seed: the same seed gives the same trace, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Port of the LAN side.
    #[arg(long, default_value_t = 0)]
    pub lan_port: u16,
    /// Port of the WAN side.
    #[arg(long, default_value_t = 1)]
    pub wan_port: u16,
}

pub fn trafficgen(args: TrafficgenArgs) -> Result<()> {
    let prefix = |what: &str, s: &str| -> Result<Cidr> {
        s.parse::<Cidr>()
            .map_err(|e| input_error(anyhow::anyhow!("--{what} {s}: {e}")))
    };
    let config = TraceConfig {
        flows: FlowSpec {
            count: args.flows,
            udp_share: args.udp_share,
            src_prefix: prefix("src-prefix", &args.src_prefix)?,
            dst_prefix: prefix("dst-prefix", &args.dst_prefix)?,
        },
        seed: args.seed,
        packets: args.packets,
        frame_size: args.size,
        rate_pps: args.rate,
        start_ns: 0,
        reply_ratio: args.reply_ratio,
        lan_port: args.lan_port,
        wan_port: args.wan_port,
    };
    config.validate().map_err(input_error)?;
    let format = if args.out.extension().is_some_and(|e| e == "pcap") {
        CaptureFormat::Pcap
    } else {
        CaptureFormat::PcapNg
    };
    let written = write_pcap(&config, &args.out, format).map_err(input_error)?;
    println!(
        "wrote {written} packets of {} flows ({} bytes per frame without FCS) to {}",
        args.flows,
        config.frame_len(),
        args.out.display()
    );
    Ok(())
}
