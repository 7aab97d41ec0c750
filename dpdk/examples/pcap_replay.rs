//! Replays a capture through DPDK net_pcap vdevs with a small firewall-like NF (the one
//! the tests use) on `sn` cores, and prints the run's counters. No NIC, no hugepages:
//!
//! ```text
//! cargo run --release -p maestro-dpdk --example pcap_replay -- IN.pcap OUT_DIR [CORES]
//! ```
//!
//! OUT_DIR receives `rx-p<port>-q<queue>.pcap` (the input split per port and queue as
//! the NIC model steers it) and `tx-p<port>-q<queue>.pcap` (what each core sent).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use common::{symmetric_nic, FlowFw};
use maestro_dpdk::pcap::{read_inputs, write_queue_captures, QueueCaptures};
use maestro_dpdk::{run, DpdkRunOptions, Eal, Mempool, Port, PortConfig, RxOrder, StopWhen};
use maestro_runtime::capture::DeviceMap;
use maestro_runtime::exec::{GeneratedNf, NicModel, Strategy};

fn main() -> ExitCode {
    match replay() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn replay() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(input), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: pcap_replay IN.pcap OUT_DIR [CORES]".into());
    };
    let cores: usize = args.get(2).map_or(Ok(2), |c| c.parse())?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;

    let (packets, refused) = read_inputs(
        input.as_ref(),
        DeviceMap::Auto,
        FlowFw::LAN_PORT,
        FlowFw::WAN_PORT,
        FlowFw::PORT_COUNT,
    )?;
    let nic = NicModel::new(&symmetric_nic(cores), cores)?;
    let caps = write_queue_captures(&packets, &nic, FlowFw::PORT_COUNT, &out)?;
    println!(
        "{} packets ({refused} refused), per port and queue: {:?}",
        packets.len(),
        caps.counts
    );

    let mut eal_args: Vec<String> = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // One lcore per core, pinned; more cores than CPUs share them (slowly).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= cpus {
        eal_args.push("-l".into());
        eal_args.push(format!("0-{}", cores - 1));
    } else {
        eal_args.push(format!("--lcores=(0-{})@(0-{})", cores - 1, cpus - 1));
    }
    eal_args.push("--log-level=lib.eal:notice".into());
    eal_args.extend(caps.vdev_args()?);
    let eal = Eal::init(&eal_args)?;
    let pool = Arc::new(Mempool::new(&eal, "replay", 16383, 256)?);
    let mut ports = Vec::new();
    for p in 0..FlowFw::PORT_COUNT {
        let name = QueueCaptures::vdev_name(p);
        let id = maestro_dpdk::pcap::port_by_name(&eal, &name)
            .ok_or_else(|| format!("{name} is not a DPDK port"))?;
        ports.push(Port::configure(
            &eal,
            id,
            &PortConfig::new(cores as u16),
            &pool,
        )?);
    }
    let opts = DpdkRunOptions {
        strategy: Strategy::Sn,
        cores,
        order: RxOrder::Timestamp,
        stop: StopWhen {
            idle_rounds: Some(1000),
            ..StopWhen::default()
        },
        ..DpdkRunOptions::default()
    };
    let report = run::<FlowFw>(&eal, &ports, &opts)?;
    for p in ports {
        p.close()?;
    }
    report.check_accounting()?;
    for c in &report.per_core {
        println!(
            "core {} (lcore {}): rx {} forwarded {} flooded {} dropped {} tx {}",
            c.core, c.lcore, c.rx, c.forwarded, c.flooded, c.dropped, c.tx
        );
    }
    for p in &report.per_port {
        println!(
            "port {} (DPDK port {}): rx {} tx {} tx_dropped {}",
            p.port, p.dpdk_port, p.rx, p.tx, p.tx_dropped
        );
    }
    println!(
        "{:.3} s, {:.2} Mpps (pcap file I/O bound), outputs in {}",
        report.seconds,
        report.mpps(),
        out.display()
    );
    Ok(())
}
