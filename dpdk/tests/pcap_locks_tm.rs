//! `locks` and `tm` on real DPDK lcores (net_pcap vdevs, no NIC, no hugepages), running
//! the runtime's own per-packet protocols:
//! - on one core both are deterministic: every port must leave byte for byte as the
//!   in-memory engine says;
//! - on two cores the interleaving is the machine's, so the run keeps its per-packet
//!   records and must be explained by them: the sequential NF replayed in the records'
//!   commit order, at the recorded times, produces exactly the frames each core sent,
//!   per port and core. Read passes (flows already known, floods, unknown replies) and
//!   writes (new flows, expiry) both occur.
//!
//! EAL initialises once per process: one test function, one set of vdevs per run.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{
    eal_or_skip, eal_without_nic, expected_outputs, ports_named, symmetric_nic, trace,
    vdev_args_named, FlowFw,
};
use maestro_dpdk::pcap::{read_frames, write_queue_captures, QueueCaptures};
use maestro_dpdk::{run, DpdkRunOptions, Mempool, RunReport, RxOrder, StopWhen};
use maestro_runtime::exec::{
    commit_order, Engine, GeneratedNf, NicModel, PacketRecord, RunOptions, Schedule, Strategy,
};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};

const PACKETS: usize = 3000;

/// One run: its strategy, cores and the vdev name prefix of its ports.
struct Case {
    name: &'static str,
    strategy: Strategy,
    cores: usize,
    prefix: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        name: "locks, 1 core",
        strategy: Strategy::Locks,
        cores: 1,
        prefix: "l",
    },
    Case {
        name: "tm, 1 core",
        strategy: Strategy::Tm,
        cores: 1,
        prefix: "t",
    },
    Case {
        name: "locks, 2 cores",
        strategy: Strategy::Locks,
        cores: 2,
        prefix: "ll",
    },
    Case {
        name: "tm, 2 cores",
        strategy: Strategy::Tm,
        cores: 2,
        prefix: "tt",
    },
];

/// Each packet's core, as the NIC model steers it.
fn cores_of(packets: &[InputPacket], nic: &NicModel) -> Vec<u16> {
    packets
        .iter()
        .map(|p| nic.steer(p.port, &p.data).core)
        .collect()
}

/// The frames of every tx capture: `[port][core]`.
fn sent(caps: &QueueCaptures) -> Vec<Vec<Vec<Vec<u8>>>> {
    caps.tx
        .iter()
        .map(|per_core| {
            per_core
                .iter()
                .map(|f| read_frames(f).expect("tx capture"))
                .collect()
        })
        .collect()
}

fn assert_same_frames(name: &str, got: &[Vec<Vec<Vec<u8>>>], want: &[Vec<Vec<Vec<u8>>>]) {
    for (p, (g, w)) in got.iter().zip(want).enumerate() {
        for (c, (g, w)) in g.iter().zip(w).enumerate() {
            assert_eq!(
                g.len(),
                w.len(),
                "{name}: frames out of port {p} from core {c}"
            );
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert_eq!(a, b, "{name}: port {p} core {c} frame {i} differs");
            }
        }
    }
}

/// What the in-memory engine sends on one core (deterministic).
fn engine_outputs(packets: &[InputPacket], strategy: Strategy) -> Vec<Vec<Vec<Vec<u8>>>> {
    let nic = NicModel::new(&symmetric_nic(1), 1).expect("nic");
    let mut engine = Engine::<FlowFw>::new(
        nic,
        RunOptions {
            strategy,
            cores: 1,
            schedule: Schedule::Deterministic { seed: 1 },
            ..RunOptions::default()
        },
    )
    .expect("engine");
    let out = engine.run(packets.to_vec());
    expected_outputs(
        packets,
        &out.observations,
        &vec![0; packets.len()],
        FlowFw::PORT_COUNT,
        1,
    )
}

/// What the sequential NF sends when it runs the packets in the run's commit order at
/// the recorded times, attributed to the core that ran each packet.
fn replayed_outputs(
    name: &str,
    packets: &[InputPacket],
    cores: &[u16],
    report: &RunReport,
    strategy: Strategy,
    n_cores: usize,
) -> Vec<Vec<Vec<Vec<u8>>>> {
    // Core c's k-th record belongs to its k-th packet in input order (times strictly
    // increase, so the timestamp merge of its queues is the input order).
    let mut records: Vec<PacketRecord> = Vec::with_capacity(packets.len());
    let mut next = vec![0usize; n_cores];
    for &c in cores {
        let c = usize::from(c);
        let r = report.per_core[c]
            .records
            .get(next[c])
            .unwrap_or_else(|| panic!("{name}: core {c} has too few records"));
        assert_eq!(r.queue_pos, next[c] as u64, "{name}: records in core order");
        assert_eq!(usize::from(r.core), c, "{name}");
        records.push(*r);
        next[c] += 1;
    }
    for (c, k) in next.iter().enumerate() {
        assert_eq!(
            *k,
            report.per_core[c].records.len(),
            "{name}: core {c} has more records than packets"
        );
    }
    let mut nf = FlowFw::with_shards(ParseMode::Strict, 1).expect("state");
    let mut observations = vec![Observation::Drop; packets.len()];
    for i in commit_order(strategy, &records) {
        let p = &packets[i];
        assert!(
            records[i].now >= p.time_ns,
            "{name}: time only moves forward"
        );
        observations[i] = nf.process(&InputPacket {
            port: p.port,
            time_ns: records[i].now,
            data: p.data.clone(),
        });
    }
    expected_outputs(packets, &observations, cores, FlowFw::PORT_COUNT, n_cores)
}

#[test]
fn locks_and_tm_on_dpdk_run_the_runtime_protocols() {
    let dir = tempfile::tempdir().expect("tempdir");
    let packets = trace(0x10c5, PACKETS);
    let nic1 = NicModel::new(&symmetric_nic(1), 1).expect("nic");
    let nic2 = NicModel::new(&symmetric_nic(2), 2).expect("nic");
    let mut caps = Vec::new();
    let mut args = eal_without_nic();
    for case in &CASES {
        let sub = dir.path().join(case.prefix);
        std::fs::create_dir_all(&sub).expect("mkdir");
        let nic = if case.cores == 1 { &nic1 } else { &nic2 };
        let c = write_queue_captures(&packets, nic, FlowFw::PORT_COUNT, &sub).expect("captures");
        args.extend(vdev_args_named(&c, case.prefix));
        caps.push(c);
    }
    let Some(eal) = eal_or_skip(args) else {
        return;
    };
    assert_eq!(
        eal.port_count(),
        4 * FlowFw::PORT_COUNT,
        "{}",
        eal.init_log()
    );
    let pool = Arc::new(Mempool::new(&eal, "locks-tm", 8191, 256).expect("mempool"));

    for (case, caps) in CASES.iter().zip(&caps) {
        let name = case.name;
        let ports = ports_named(&eal, case.prefix, case.cores as u16, &pool);
        let opts = DpdkRunOptions {
            strategy: case.strategy,
            cores: case.cores,
            order: RxOrder::Timestamp,
            stop: StopWhen {
                idle_rounds: Some(1000),
                ..StopWhen::default()
            },
            record: true,
            ..DpdkRunOptions::default()
        };
        let report = run::<FlowFw>(&eal, &ports, &opts).expect("run");
        for p in ports {
            p.close().expect("close");
        }
        report
            .check_accounting()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.rx(), PACKETS as u64, "{name}: every packet received");
        assert_eq!(report.nf_faults, 0, "{name}");
        let got = sent(caps);
        let frames: usize = got.iter().flatten().map(Vec::len).sum();
        assert_eq!(
            frames as u64,
            report.tx(),
            "{name}: every frame sent is captured"
        );
        for c in &report.per_core {
            let s = &c.protocol;
            assert_eq!(s.packets, c.rx, "{name}: {c:?}");
            assert_eq!(
                c.records.len() as u64,
                c.rx,
                "{name}: one record per packet"
            );
            assert_eq!(c.tx_dropped + c.copy_failed + c.too_big, 0, "{name}");
            match case.strategy {
                Strategy::Locks => {
                    assert_eq!(s.read_passes, c.rx, "{name}: every packet starts reading");
                    assert_eq!(s.writes, s.aborts, "{name}: a write follows each abort");
                    assert!(
                        s.writes > 0 && s.writes < c.rx,
                        "{name}: both reads and writes: {s:?}"
                    );
                    let writers = c.records.iter().filter(|r| r.wrote).count() as u64;
                    assert_eq!(writers, s.writes, "{name}: records say who wrote");
                }
                _ => {
                    assert_eq!(s.tm_commits + s.tm_fallbacks, c.rx, "{name}: {s:?}");
                    assert!(c.records.iter().all(|r| r.wrote), "{name}");
                }
            }
        }
        if case.strategy == Strategy::Tm {
            let mut seqs: Vec<u64> = report
                .per_core
                .iter()
                .flat_map(|c| c.records.iter().map(|r| r.epoch))
                .collect();
            seqs.sort_unstable();
            let want: Vec<u64> = (1..=PACKETS as u64).collect();
            assert_eq!(seqs, want, "{name}: one commit number per packet");
        }
        if case.cores == 1 {
            assert_same_frames(name, &got, &engine_outputs(&packets, case.strategy));
        } else {
            let cores = cores_of(&packets, &nic2);
            for c in &report.per_core {
                let want = cores.iter().filter(|&&k| usize::from(k) == c.core).count();
                assert_eq!(c.rx, want as u64, "{name}: core {} got its queue", c.core);
            }
            let want = replayed_outputs(name, &packets, &cores, &report, case.strategy, 2);
            assert_same_frames(name, &got, &want);
        }
        eprintln!(
            "{name}: {} packets, {} frames sent, protocol {:?}",
            report.rx(),
            report.tx(),
            report
                .per_core
                .iter()
                .map(|c| c.protocol.clone())
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    let _ = Path::new(dir.path());
}
