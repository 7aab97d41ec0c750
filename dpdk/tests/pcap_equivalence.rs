//! A trace through real DPDK (net_pcap vdevs, no NIC, no hugepages) must leave every
//! port exactly as the runtime's in-memory engine says, byte for byte, per port and per
//! core: `sn` on two cores (queues filled as the NIC model steers) and `seq` on one.
//!
//! EAL initialises once per process, so this binary has one test function that runs
//! both strategies on separate sets of vdevs.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{
    eal_or_skip, eal_without_nic, expected_outputs, ports_named, symmetric_nic, trace,
    vdev_args_named, FlowFw,
};
use maestro_dpdk::pcap::{read_frames, write_queue_captures, QueueCaptures};
use maestro_dpdk::{run, DpdkError, DpdkRunOptions, Eal, Mempool, RunReport, RxOrder, StopWhen};
use maestro_runtime::exec::{Engine, GeneratedNf, NicModel, RunOptions, Schedule, Strategy};
use maestro_runtime::InputPacket;

const PACKETS: usize = 3000;

/// What the engine does with `packets`: observations and each packet's core.
fn engine_run(
    packets: &[InputPacket],
    nic: &NicModel,
    strategy: Strategy,
    cores: usize,
) -> (Vec<maestro_runtime::Observation>, Vec<u16>) {
    let mut engine = Engine::<FlowFw>::new(
        nic.clone(),
        RunOptions {
            strategy,
            cores,
            schedule: Schedule::Deterministic { seed: 7 },
            ..RunOptions::default()
        },
    )
    .expect("engine");
    let out = engine.run(packets.to_vec());
    let cores_of = out.records.iter().map(|r| r.core).collect();
    (out.observations, cores_of)
}

fn replay_options(strategy: Strategy, cores: usize) -> DpdkRunOptions {
    DpdkRunOptions {
        strategy,
        cores,
        order: RxOrder::Timestamp,
        stop: StopWhen {
            idle_rounds: Some(1000),
            ..StopWhen::default()
        },
        ..DpdkRunOptions::default()
    }
}

/// Compares the pcap outputs with the engine's, per port and core, and checks the run's
/// counters against the inputs.
fn check(
    name: &str,
    packets: &[InputPacket],
    caps: &QueueCaptures,
    report: &RunReport,
    expected: &[Vec<Vec<Vec<u8>>>],
    cores_of: &[u16],
) {
    report
        .check_accounting()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        report.rx(),
        packets.len() as u64,
        "{name}: every packet received"
    );
    for c in &report.per_core {
        let want = cores_of
            .iter()
            .filter(|&&k| usize::from(k) == c.core)
            .count() as u64;
        assert_eq!(
            c.rx, want,
            "{name}: core {} got the NIC model's packets",
            c.core
        );
        assert_eq!(
            c.untimed, 0,
            "{name}: net_pcap gives every packet its capture time"
        );
        assert_eq!(c.time_clamped, 0, "{name}: per-core times are monotone");
        assert_eq!(
            c.tx_dropped + c.copy_failed + c.too_big + c.no_such_port,
            0,
            "{name}"
        );
    }
    for p in &report.per_port {
        let want = packets.iter().filter(|x| x.port == p.port).count() as u64;
        assert_eq!(p.rx, want, "{name}: port {} received its packets", p.port);
        assert_eq!(
            p.device.ipackets, p.rx,
            "{name}: the device counted the same"
        );
        assert_eq!(p.device.opackets, p.tx, "{name}: port {} sends", p.port);
    }
    let mut frames = 0;
    for (p, per_core) in expected.iter().enumerate() {
        for (q, want) in per_core.iter().enumerate() {
            let got = read_frames(&caps.tx[p][q]).expect("tx capture");
            assert_eq!(
                got.len(),
                want.len(),
                "{name}: frames out of port {p} from core {q}"
            );
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert_eq!(g, w, "{name}: port {p} core {q} frame {i} differs");
            }
            frames += got.len();
        }
    }
    assert_eq!(
        frames as u64,
        report.tx(),
        "{name}: every frame sent is in a capture"
    );
}

#[test]
fn dpdk_matches_the_in_memory_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let packets = trace(0x5eed, PACKETS);
    let base = dir.path();
    let sub = |name: &str| {
        let d = base.join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    };

    // sn on 2 cores: queues filled as the symmetric NIC configuration steers.
    let sn_nic = NicModel::new(&symmetric_nic(2), 2).expect("nic");
    let sn_caps =
        write_queue_captures(&packets, &sn_nic, FlowFw::PORT_COUNT, &sub("sn")).expect("captures");
    assert!(
        sn_caps.counts[0].iter().all(|&n| n > 100),
        "both cores get traffic: {:?}",
        sn_caps.counts
    );
    // seq: one queue.
    let seq_nic = NicModel::new(&symmetric_nic(2).with_cores(1), 1).expect("nic");
    let seq_caps = write_queue_captures(&packets, &seq_nic, FlowFw::PORT_COUNT, &sub("seq"))
        .expect("captures");

    let mut args = eal_without_nic();
    args.extend(vdev_args_named(&sn_caps, "s"));
    args.extend(vdev_args_named(&seq_caps, "q"));
    let Some(eal) = eal_or_skip(args) else {
        return;
    };
    assert_eq!(
        eal.port_count(),
        2 * FlowFw::PORT_COUNT,
        "{}",
        eal.init_log()
    );
    assert_eq!(eal.lcores().len(), 2);
    assert!(matches!(
        Eal::init(["--no-huge"]),
        Err(DpdkError::AlreadyInitialized)
    ));
    let pool = Arc::new(Mempool::new(&eal, "equiv", 8191, 256).expect("mempool"));

    // sn
    let (obs, cores_of) = engine_run(&packets, &sn_nic, Strategy::Sn, 2);
    let expected = expected_outputs(&packets, &obs, &cores_of, FlowFw::PORT_COUNT, 2);
    let forwarded = obs
        .iter()
        .filter(|o| matches!(o, maestro_runtime::Observation::Forward { port: 0, .. }))
        .count();
    assert!(forwarded > 100, "WAN replies get through: {forwarded}");
    let ports = ports_named(&eal, "s", 2, &pool);
    let report = run::<FlowFw>(&eal, &ports, &replay_options(Strategy::Sn, 2)).expect("sn run");
    for p in ports {
        p.close().expect("close");
    }
    check("sn", &packets, &sn_caps, &report, &expected, &cores_of);
    assert_eq!(report.per_core.len(), 2);
    assert_ne!(report.per_core[0].lcore, report.per_core[1].lcore);

    // seq
    let (obs, cores_of) = engine_run(&packets, &seq_nic, Strategy::Seq, 1);
    let expected = expected_outputs(&packets, &obs, &cores_of, FlowFw::PORT_COUNT, 1);
    let ports = ports_named(&eal, "q", 1, &pool);
    let report = run::<FlowFw>(&eal, &ports, &replay_options(Strategy::Seq, 1)).expect("seq run");
    for p in ports {
        p.close().expect("close");
    }
    check("seq", &packets, &seq_caps, &report, &expected, &cores_of);
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    let _ = Path::new(base);
}
