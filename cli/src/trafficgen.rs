//! `maestro trafficgen`: write a synthetic trace to a capture file, and/or report what it
//! contains. Every option maps onto a field of `maestro_trafficgen::TraceConfig`; the
//! crate's README lists the commands that make the bench lab's traces.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use maestro_runtime::capture::CaptureFormat;
use maestro_trafficgen::{
    parse_bit_rate, parse_count, parse_duration_ns, write_file, Cidr, FlowSpec, SizeMix,
    TraceConfig, TraceGen,
};

use crate::input_error;

#[derive(Args)]
#[command(
    after_help = "Churn is in flows per minute of trace time: each replacement retires a \
flow for good and gives its slot a fresh 5-tuple (as in Maestro's evaluation). It needs \
--expiry, the flow expiry of the NF under test: the generator then sends every active flow \
at least every half expiry, so the NF sees no other new flows than the churn.\n\n\
Examples:\n  maestro trafficgen --flows 40000 --packets 10M --out uniform-64B.pcapng\n  \
maestro trafficgen --sizes imix --out imix.pcapng\n  \
maestro trafficgen --zipf 1.26 --out zipf.pcapng --stats\n  \
maestro trafficgen --flows 14204 --bit-rate 100G --expiry 1ms --churn 250k --out churn.pcapng"
)]
pub struct TrafficgenArgs {
    /// Output file; `.pcap` writes classic pcap, anything else pcapng (one interface per
    /// port). May be left out with --stats to only measure the trace.
    #[arg(long, required_unless_present = "stats")]
    pub out: Option<PathBuf>,
    /// Output format, overriding the file extension.
    #[arg(long, value_parser = ["pcap", "pcapng"])]
    pub format: Option<String>,
    /// Number of flows active at any time (distinct 5-tuples).
    #[arg(long, default_value_t = 40_000)]
    pub flows: u32,
    /// Number of packets (`10M`, `500k` and such are accepted).
    #[arg(long, default_value = "1000000", value_parser = |s: &str| parse_count("packet count", s))]
    pub packets: u64,
    /// Frame size in bytes including the FCS (64..=1518); frames are written without it.
    #[arg(long, default_value_t = 64, conflicts_with_all = ["sizes", "sizes_from"])]
    pub size: u16,
    /// Frame-size mix instead of one size: `imix` (CSIT IMIX_v4_1: 28x64, 16x570, 4x1518)
    /// or `size:weight` pairs, e.g. `64:7,570:4,1518:1`.
    #[arg(long, conflicts_with = "sizes_from")]
    pub sizes: Option<String>,
    /// Take the frame-size mix from the packets of a capture file.
    #[arg(long, value_name = "CAPTURE")]
    pub sizes_from: Option<PathBuf>,
    /// With --sizes-from: read only the first N packets (Maestro used the first 40,000).
    #[arg(long, value_name = "N", requires = "sizes_from")]
    pub sizes_limit: Option<u64>,
    /// Share of flows that are UDP (the rest TCP).
    #[arg(long, default_value_t = 1.0)]
    pub udp_share: f64,
    /// Probability that a packet of an already-started flow is its reply (on the WAN port).
    #[arg(long, default_value_t = 0.0)]
    pub reply_ratio: f64,
    /// Least time between a flow's first packet and its replies, e.g. `50us`.
    #[arg(long, value_parser = parse_duration_ns)]
    pub reply_delay: Option<u64>,
    /// Zipf exponent of flow popularity, 0..=2 (0 is uniform; 1.26 is CASTAN's).
    #[arg(long, default_value_t = 0.0)]
    pub zipf: f64,
    /// Churn in flows per minute of trace time (`250k`, `88.462M`); needs --expiry.
    #[arg(long, value_parser = |s: &str| parse_count("churn", s))]
    pub churn: Option<u64>,
    /// Flow expiry of the NF under test (e.g. `1ms`); adds keep-alives so that no active
    /// flow expires in the NF.
    #[arg(long, value_parser = parse_duration_ns)]
    pub expiry: Option<u64>,
    /// Where LAN-side source addresses come from.
    #[arg(long, default_value = "10.0.0.0/8")]
    pub src_prefix: String,
    /// Where WAN-side destination addresses come from.
    #[arg(long, default_value = "0.0.0.0/0")]
    pub dst_prefix: String,
    /// Packets per second (sets the timestamps; `14.88M` and such are accepted).
    #[arg(long, default_value = "1000000", value_parser = |s: &str| parse_count("rate", s))]
    pub rate: u64,
    /// Bit rate on the wire instead of --rate (`100G`, `40Gbps`): each packet takes its
    /// frame, FCS, preamble and inter-frame gap.
    #[arg(long, conflicts_with = "rate", value_parser = parse_bit_rate)]
    pub bit_rate: Option<u64>,
    /// Timestamp of the first packet, in ns since the epoch.
    #[arg(long, default_value_t = 0)]
    pub start_ns: u64,
    /// Seed: the same seed gives the same trace, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Port of the LAN side.
    #[arg(long, default_value_t = 0)]
    pub lan_port: u16,
    /// Port of the WAN side.
    #[arg(long, default_value_t = 1)]
    pub wan_port: u16,
    /// Print what the trace contains: packets, flows, bytes, sizes, heaviest flows'
    /// share, rank-frequency slope, observed churn, longest silence of a flow.
    #[arg(long)]
    pub stats: bool,
    /// With --stats, print the statistics as JSON.
    #[arg(long, requires = "stats")]
    pub json: bool,
}

pub fn trafficgen(args: TrafficgenArgs) -> Result<()> {
    let prefix = |what: &str, s: &str| -> Result<Cidr> {
        s.parse::<Cidr>()
            .map_err(|e| input_error(anyhow::anyhow!("--{what} {s}: {e}")))
    };
    let sizes = match (&args.sizes, &args.sizes_from) {
        (Some(mix), _) => mix
            .parse::<SizeMix>()
            .map_err(|e| input_error(anyhow::anyhow!("--sizes: {e}")))?,
        (None, Some(path)) => SizeMix::from_capture(path, args.sizes_limit).map_err(input_error)?,
        (None, None) => SizeMix::Fixed,
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
        start_ns: args.start_ns,
        reply_ratio: args.reply_ratio,
        lan_port: args.lan_port,
        wan_port: args.wan_port,
        zipf_s: args.zipf,
        sizes,
        rate_bps: args.bit_rate,
        reply_delay_ns: args.reply_delay.unwrap_or(0),
        churn_fpm: args.churn.unwrap_or(0),
        expiry_ns: args.expiry,
    };
    config.validate().map_err(input_error)?;
    config.port_count().map_err(input_error)?;
    let mut gen = TraceGen::new(config.clone()).map_err(input_error)?;
    if args.stats {
        gen = gen.with_stats();
    }
    match &args.out {
        Some(out) => {
            let format = match args.format.as_deref() {
                Some("pcap") => CaptureFormat::Pcap,
                Some(_) => CaptureFormat::PcapNg,
                None if out.extension().is_some_and(|e| e == "pcap") => CaptureFormat::Pcap,
                None => CaptureFormat::PcapNg,
            };
            let written = write_file(&mut gen, out, format).map_err(input_error)?;
            let sizes = match config.sizes {
                SizeMix::Fixed => format!("{} bytes per frame without FCS", config.frame_len()),
                ref mix => format!("sizes {mix}"),
            };
            // With --json, stdout is the JSON alone; the summary goes to stderr.
            let line = format!(
                "wrote {written} packets of {} flows ({sizes}) to {}",
                args.flows,
                out.display()
            );
            if args.json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        None => {
            let mut buf = Vec::with_capacity(config.max_frame_len());
            while gen.next_into(&mut buf).is_some() {}
        }
    }
    if let Some(stats) = gen.stats() {
        if args.json {
            let mut v = serde_json::to_value(&stats)?;
            let fit = stats.rank_fit();
            v["derived"] = serde_json::json!({
                "duration_ns": stats.duration_ns(),
                "churn_fpm": stats.churn_fpm(),
                "nf_churn_fpm": stats.nf_churn_fpm(),
                "mean_frame_size": stats.mean_frame_size(),
                "top1_share": stats.top_share(1),
                "top10_share": stats.top_share(10),
                "top100_share": stats.top_share(100),
                "top1000_share": stats.top_share(1000),
                "rank_slope": fit.map(|f| f.slope),
                "rank_slope_ranks": fit.map(|f| f.ranks),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!("{stats}");
        }
    }
    Ok(())
}
