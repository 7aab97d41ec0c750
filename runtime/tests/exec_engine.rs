//! The executors and the NIC model: steering against the Microsoft/82599 vectors,
//! `sn` equal to `seq` under a co-locating configuration, `locks` and `tm` equal to the
//! sequential NF replayed in their commit order, the big-reader lock under contention,
//! chunking, streamed and encoded chunks, and the checker's runtime mutants.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{flow_packet, packet, tcp_frame, TestFw, LAN, WAN};
use maestro_runtime::exec::engine::{
    commit_order, ChunkOutput, Engine, ExecError, ObservationEncoder, RunOptions, RuntimeMutant,
    Schedule, Translator,
};
use maestro_runtime::exec::lock::BigReaderLock;
use maestro_runtime::exec::nic::{HashClass, NicConfig, NicModel, PortRss};
use maestro_runtime::exec::rtm::{rtm_available, RtmStatus};
use maestro_runtime::exec::{GeneratedNf, Strategy};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::rss::MICROSOFT_KEY;
use maestro_runtime::{InputPacket, Observation};

/// `maestro rss nfs/fw --cores 4 --format json`: keys that co-locate both directions.
const FW_RSS_JSON: &str = include_str!("common/fw-rss-4cores.json");

#[path = "common/vectors.rs"]
mod vectors;
use vectors::{V4, V6};

fn v4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().expect("vector address").octets()
}

fn names(types: &[&str]) -> Vec<String> {
    types.iter().map(|s| s.to_string()).collect()
}

/// One port (0) with the Microsoft key, `types`, and a 128-entry RETA `b % 4` rotated so
/// that `reta[0] == 3` (unhashed packets are then recognizable).
fn ms_config(types: &[&str]) -> NicConfig {
    NicConfig {
        ports: vec![PortRss {
            port: 0,
            key: MICROSOFT_KEY.to_vec(),
            rss_types: names(types),
            reta: None,
        }],
        reta: (0..128u16).map(|b| (b + 3) % 4).collect(),
    }
}

fn ipv6_frame(next: u8, src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 20];
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&20u16.to_be_bytes());
    f[20] = next;
    f[21] = 64;
    f[22..38].copy_from_slice(&src.parse::<Ipv6Addr>().expect("vector").octets());
    f[38..54].copy_from_slice(&dst.parse::<Ipv6Addr>().expect("vector").octets());
    f[54..56].copy_from_slice(&sport.to_be_bytes());
    f[56..58].copy_from_slice(&dport.to_be_bytes());
    f
}

// ---------------------------------------------------------------------------------------
// NIC model

#[test]
fn nic_hashes_ipv4_vectors() {
    let cores = 4;
    let ports = NicModel::new(&ms_config(&["NONFRAG_IPV4_TCP", "NONFRAG_IPV4_UDP"]), cores)
        .expect("valid config");
    let addrs = NicModel::new(&ms_config(&["IPV4"]), cores).expect("valid config");
    let frags = NicModel::new(&ms_config(&["FRAG_IPV4"]), cores).expect("valid config");
    for (s, sp, d, dp, h_addr, h_ports) in V4 {
        let tcp = tcp_frame(v4(s), v4(d), sp, dp);
        let st = ports.steer(0, &tcp);
        assert_eq!((st.hash, st.class), (h_ports, HashClass::Ipv4Tcp), "{s}");
        assert_eq!(st.core, ((h_ports as usize % 128 + 3) % 4) as u16);
        let udp = common::l4_frame(17, v4(s), v4(d), sp, dp);
        let st = ports.steer(0, &udp);
        assert_eq!((st.hash, st.class), (h_ports, HashClass::Ipv4Udp), "{s}");
        // IPV4 alone hashes TCP on the addresses.
        let st = addrs.steer(0, &tcp);
        assert_eq!((st.hash, st.class), (h_addr, HashClass::Ipv4Tcp), "{s}");
        // A fragment (MF set) is hashed on its addresses by FRAG_IPV4, and not at all
        // by the TCP/UDP types.
        let mut frag = tcp.clone();
        frag[20] = 0x20;
        let st = frags.steer(0, &frag);
        assert_eq!((st.hash, st.class), (h_addr, HashClass::Ipv4Frag), "{s}");
        assert_eq!(ports.steer(0, &frag).class, HashClass::NotHashed);
        // So is a non-first fragment (offset != 0, MF clear).
        let mut later = tcp.clone();
        later[21] = 0x10;
        assert_eq!(frags.steer(0, &later).hash, h_addr);
    }
}

#[test]
fn nic_hashes_ipv6_vectors() {
    let ports = NicModel::new(&ms_config(&["NONFRAG_IPV6_TCP", "NONFRAG_IPV6_UDP"]), 4)
        .expect("valid config");
    let addrs = NicModel::new(&ms_config(&["IPV6"]), 4).expect("valid config");
    for (s, sp, d, dp, h_addr, h_ports) in V6 {
        let tcp = ipv6_frame(6, s, d, sp, dp);
        let st = ports.steer(0, &tcp);
        assert_eq!((st.hash, st.class), (h_ports, HashClass::Ipv6Tcp), "{s}");
        let st = ports.steer(0, &ipv6_frame(17, s, d, sp, dp));
        assert_eq!((st.hash, st.class), (h_ports, HashClass::Ipv6Udp), "{s}");
        assert_eq!(addrs.steer(0, &tcp).hash, h_addr, "{s}");
        let st = addrs.steer(0, &ipv6_frame(58, s, d, 0, 0));
        assert_eq!((st.hash, st.class), (h_addr, HashClass::Ipv6Other));
        assert_eq!(
            ports.steer(0, &ipv6_frame(58, s, d, 0, 0)).class,
            HashClass::NotHashed
        );
    }
}

#[test]
fn unhashed_packets_go_to_reta_zero() {
    let cfg = ms_config(&["NONFRAG_IPV4_TCP", "NONFRAG_IPV4_UDP"]);
    let nic = NicModel::new(&cfg, 4).expect("valid config");
    let (s, sp, d, dp, _, h_ports) = V4[0];
    let tcp = tcp_frame(v4(s), v4(d), sp, dp);
    let mut icmp = tcp.clone();
    icmp[23] = 1;
    let mut arp = tcp.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut vlan = vec![0u8; 4];
    vlan.splice(0..0, tcp[..12].iter().copied());
    vlan[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    vlan.extend_from_slice(&tcp[12..]);
    let mut bad_ihl = tcp.clone();
    bad_ihl[14] = 0x44;
    let mut options_cut = tcp.clone();
    options_cut[14] = 0x4f; // 60-byte header, frame too short for it
    options_cut.truncate(14 + 40);
    let cases: [(&str, &[u8]); 7] = [
        ("icmp", &icmp),
        ("arp", &arp),
        ("vlan-tagged tcp", &vlan),
        ("ihl 4", &bad_ihl),
        ("ip header cut", &options_cut),
        ("runt", &tcp[..20]),
        ("empty", &[]),
    ];
    for (what, frame) in cases {
        let st = nic.steer(0, frame);
        assert_eq!(
            (st.hash, st.class, st.core),
            (0, HashClass::NotHashed, 3),
            "{what}"
        );
    }
    // A TCP header cut before its ports: hashed only by the address type.
    let cut = &tcp[..14 + 20 + 2];
    assert_eq!(nic.steer(0, cut).class, HashClass::NotHashed);
    let with_v4 = NicModel::new(&ms_config(&["NONFRAG_IPV4_TCP", "IPV4"]), 4).expect("valid");
    assert_eq!(with_v4.steer(0, cut).hash, V4[0].4);
    // Ports the configuration does not list are not hashed.
    assert_eq!(nic.steer(7, &tcp).class, HashClass::NotHashed);
    assert_eq!(nic.steer(7, &tcp).core, 3);
    // ... while the listed port is.
    assert_eq!(nic.steer(0, &tcp).hash, h_ports);
    // ICMP is hashed once NONFRAG_IPV4_OTHER is enabled.
    let other = NicModel::new(&ms_config(&["NONFRAG_IPV4_OTHER"]), 4).expect("valid");
    let st = other.steer(0, &icmp);
    assert_eq!((st.hash, st.class), (V4[0].4, HashClass::Ipv4Other));
}

#[test]
fn per_port_reta_overrides_the_shared_one() {
    let mut cfg = ms_config(&["NONFRAG_IPV4_TCP"]);
    let mut second = cfg.ports[0].clone();
    second.port = 1;
    second.reta = Some(vec![1; 64]);
    cfg.ports.push(second);
    let nic = NicModel::new(&cfg, 4).expect("valid config");
    for (s, sp, d, dp, _, h) in V4 {
        let f = tcp_frame(v4(s), v4(d), sp, dp);
        assert_eq!(nic.steer(0, &f).core, ((h as usize % 128 + 3) % 4) as u16);
        let st = nic.steer(1, &f);
        assert_eq!((st.hash, st.core), (h, 1));
    }
    // with_cores rebuilds both, keeping sizes.
    let two = cfg.with_cores(2);
    assert_eq!(two.reta.len(), 128);
    assert!(two
        .reta
        .iter()
        .enumerate()
        .all(|(b, &q)| q as usize == b % 2));
    let port_reta = two.ports[1].reta.as_ref().expect("kept");
    assert_eq!(port_reta.len(), 64);
    assert!(port_reta
        .iter()
        .enumerate()
        .all(|(b, &q)| q as usize == b % 2));
    assert_eq!(two.ports[0].key, cfg.ports[0].key);
}

#[test]
fn nic_config_errors_name_the_problem() {
    let err = |text: &str| {
        NicConfig::from_json(text)
            .expect_err("must be refused")
            .to_string()
    };
    let key40 = "6d".repeat(40);
    let e = err(&format!(
        r#"{{"ports":[{{"port":3,"key":"zz{}","rss_types":[]}}],"reta":[0,0]}}"#,
        "6d".repeat(39)
    ));
    assert!(e.contains("port 3") && e.contains("hex"), "{e}");
    let e = err(r#"{"ports":[{"port":1,"key":"6d5a6d5a","rss_types":[]}],"reta":[0,0]}"#);
    assert!(
        e.contains("port 1") && e.contains("4 bytes") && e.contains("40"),
        "{e}"
    );
    let e = err(&format!(
        r#"{{"ports":[{{"port":0,"key":"{key40}","rss_types":[]}}],"reta":[0,0,0]}}"#
    ));
    assert!(e.contains("3 entries") && e.contains("power of two"), "{e}");
    let e = err(&format!(
        r#"{{"ports":[{{"port":0,"key":"{key40}","rss_types":["TCP4"]}}],"reta":[0,0]}}"#
    ));
    assert!(e.contains("TCP4") && e.contains("NONFRAG_IPV4_TCP"), "{e}");
    let e = err("{\"ports\": 5}");
    assert!(e.contains("maestro rss"), "{e}");

    let cfg = NicConfig::from_json(&format!(
        r#"{{"ports":[{{"port":0,"key":"{key40}","rss_types":["RTE_ETH_RSS_NONFRAG_IPV4_TCP"],
            "reta":[0,5]}}],"reta":[0,1,2,3]}}"#
    ))
    .expect("valid config");
    let e = NicModel::new(&cfg, 4)
        .expect_err("port 0's entry 5 >= 4 cores")
        .to_string();
    assert!(
        e.contains("port 0's RETA") && e.contains("queue 5") && e.contains("--cores N"),
        "{e}"
    );
    let e = NicModel::new(&cfg.with_cores(8), 2)
        .expect_err("shared entries >= 2")
        .to_string();
    assert!(e.contains("shared RETA") && e.contains("with_cores"), "{e}");
    assert!(NicModel::new(&cfg.with_cores(4), 4).is_ok());
    assert!(matches!(NicModel::new(&cfg, 0), Err(ExecError::NoCores)));
}

#[test]
fn rss_solver_output_loads_and_colocates_the_firewall() {
    let cfg = NicConfig::from_json(FW_RSS_JSON).expect("maestro rss output loads");
    assert_eq!(cfg.ports.len(), 2);
    assert_eq!(cfg.ports[0].key.len(), 52);
    assert_eq!(cfg.reta.len(), 512);
    // Round trip through our own serde form (key as hex).
    let text = serde_json::to_string(&cfg).expect("serializes");
    assert!(text.contains(&maestro_runtime::rss::hex(&cfg.ports[1].key)));
    assert_eq!(NicConfig::from_json(&text).expect("reloads"), cfg);
    let nic = NicModel::new(&cfg, 4).expect("4 cores");
    let mut rng = common::Rng(7);
    let mut cores_seen = [false; 4];
    for _ in 0..2000 {
        let r = rng.next();
        let s = (r as u32).to_be_bytes();
        let d = ((r >> 32) as u32).to_be_bytes();
        let (sp, dp) = (rng.next() as u16, rng.next() as u16);
        let lan = nic.steer(LAN, &tcp_frame(s, d, sp, dp));
        let wan = nic.steer(WAN, &tcp_frame(d, s, dp, sp));
        assert_eq!(lan.core, wan.core, "flow {s:?}:{sp} -> {d:?}:{dp}");
        cores_seen[usize::from(lan.core)] = true;
    }
    assert_eq!(cores_seen, [true; 4]);
    // The default (Microsoft) key does not co-locate: the checker's firewall mutant.
    let ms = NicModel::new(&NicConfig::default_for(2).with_cores(4), 4).expect("valid");
    let split = (0..200u32)
        .filter(|&f| {
            let (s, d, sp, dp) = common::flow(f);
            ms.steer(LAN, &tcp_frame(s, d, sp, dp)).core
                != ms.steer(WAN, &tcp_frame(d, s, dp, sp)).core
        })
        .count();
    assert!(
        split > 50,
        "Microsoft's key should split flows, split {split}"
    );
}

// ---------------------------------------------------------------------------------------
// Helpers for the executors

fn fw_nic(cores: usize) -> NicModel {
    let cfg = NicConfig::from_json(FW_RSS_JSON).expect("fixture");
    NicModel::new(&cfg.with_cores(cores), cores).expect("valid")
}

fn ms_nic(cores: usize) -> NicModel {
    NicModel::new(&NicConfig::default_for(2).with_cores(cores), cores).expect("valid")
}

fn opts(strategy: Strategy, cores: usize, schedule: Schedule) -> RunOptions {
    RunOptions {
        strategy,
        cores,
        schedule,
        ..RunOptions::default()
    }
}

fn engine(nic: NicModel, o: RunOptions) -> Engine<TestFw> {
    Engine::new(nic, o).expect("engine")
}

fn sequential(packets: &[InputPacket]) -> Vec<Observation> {
    let mut nf = TestFw::with_shards(ParseMode::Strict, 1).expect("state");
    packets.iter().map(|p| nf.process(p)).collect()
}

/// Replays the sequential NF in the run's commit order with the recorded times; `Err`
/// describes the first packet whose observation differs. Also checks that π keeps each
/// core's queue order, that no packet's time went backwards and that time never decreases
/// along π (the state types' contract, which the protocol's `now` rules exist to keep).
fn replay(strategy: Strategy, packets: &[InputPacket], out: &ChunkOutput) -> Result<(), String> {
    assert_eq!(out.observations.len(), packets.len());
    assert_eq!(out.records.len(), packets.len());
    let order = commit_order(strategy, &out.records);
    let mut last_pos = std::collections::HashMap::new();
    let mut last_now = 0;
    let mut nf = TestFw::with_shards(ParseMode::Strict, 1).expect("state");
    for (k, &i) in order.iter().enumerate() {
        let r = out.records[i];
        if let Some(&prev) = last_pos.get(&r.core) {
            assert!(r.queue_pos > prev, "π breaks core {}'s queue order", r.core);
        }
        last_pos.insert(r.core, r.queue_pos);
        assert!(r.now >= packets[i].time_ns, "time moved backwards for {i}");
        if r.now < last_now {
            return Err(format!(
                "time: decreases along π at packet {i} (step {k}): {r:?}"
            ));
        }
        last_now = r.now;
        let mut p = packets[i].clone();
        p.time_ns = r.now;
        let expected = nf.process(&p);
        if expected != out.observations[i] {
            return Err(format!(
                "output: packet {i} (step {k} of π, record {r:?}): sequential {expected:?}, \
                 parallel {:?}",
                out.observations[i]
            ));
        }
    }
    Ok(())
}

fn schedules() -> Vec<Schedule> {
    let mut s = vec![
        Schedule::Threads { pin: true },
        Schedule::Threads { pin: false },
    ];
    s.extend((0..20).map(|seed| Schedule::Deterministic { seed }));
    s
}

// ---------------------------------------------------------------------------------------
// Executors

#[test]
fn seq_is_the_sequential_nf_and_records_input_order() {
    let trace = common::write_heavy_trace(1, 3000);
    let expected = sequential(&trace);
    let mut e = engine(
        ms_nic(4),
        opts(Strategy::Seq, 4, Schedule::Threads { pin: true }),
    );
    let out = e.run(trace.clone());
    assert_eq!(out.observations, expected);
    let nic = ms_nic(4);
    for (i, r) in out.records.iter().enumerate() {
        assert_eq!(
            (r.core, r.queue_pos, r.now),
            (0, i as u64, trace[i].time_ns)
        );
        assert_eq!(r.hash, nic.steer(trace[i].port, &trace[i].data).hash);
    }
    assert_eq!(
        commit_order(Strategy::Seq, &out.records),
        (0..trace.len()).collect::<Vec<_>>()
    );
    assert!(expected
        .iter()
        .any(|o| matches!(o, Observation::Forward { port: 0, .. })));
    assert!(expected.contains(&Observation::Drop));
    assert_eq!(e.stats().total().packets, trace.len() as u64);
    assert_eq!(e.rtm_status(), RtmStatus::NotApplicable);
    assert!(e.access_logs().is_empty());
}

#[test]
fn sn_with_a_colocating_config_equals_seq() {
    for trace in [
        common::write_heavy_trace(2, 4000),
        common::read_mostly_trace(3, 200, 4000),
    ] {
        let expected = sequential(&trace);
        for cores in [1, 2, 4] {
            let nic = fw_nic(cores);
            for schedule in [
                Schedule::Threads { pin: true },
                Schedule::Deterministic { seed: 11 },
            ] {
                let mut e = engine(nic.clone(), opts(Strategy::Sn, cores, schedule));
                let out = e.run(trace.clone());
                assert_eq!(out.observations, expected, "{cores} cores, {schedule:?}");
                for (i, r) in out.records.iter().enumerate() {
                    let st = nic.steer(trace[i].port, &trace[i].data);
                    assert_eq!((r.core, r.hash), (st.core, st.hash), "packet {i}");
                }
                let per_core = e.stats().per_core;
                assert_eq!(per_core.len(), cores);
                if cores > 1 {
                    assert!(per_core.iter().filter(|c| c.packets > 0).count() > 1);
                }
            }
        }
    }
}

#[test]
fn every_packet_has_one_observation_and_one_record_in_core_order() {
    // Interleave ports so that the per-port queues must be merged by arrival.
    let trace = common::read_mostly_trace(4, 64, 1500);
    for strategy in Strategy::ALL {
        for batch in [1, 3, 32] {
            let mut o = opts(strategy, 2, Schedule::Deterministic { seed: 5 });
            o.batch = batch;
            let mut e = engine(ms_nic(2), o);
            let out = e.run(trace.clone());
            assert_eq!(out.observations.len(), trace.len());
            assert_eq!(out.records.len(), trace.len());
            // Each core processed its packets in input order, positions 0, 1, 2, ...
            let mut next = [0u64; 2];
            for r in &out.records {
                let c = usize::from(r.core);
                assert_eq!(r.queue_pos, next[c], "{strategy:?} batch {batch}");
                next[c] += 1;
            }
            let total: u64 = e.stats().per_core.iter().map(|c| c.packets).sum();
            assert_eq!(total, trace.len() as u64);
        }
    }
}

#[test]
fn dispatch_fills_per_core_per_port_queues() {
    let trace = common::read_mostly_trace(6, 32, 400);
    let nic = ms_nic(4);
    let e = engine(
        nic.clone(),
        opts(Strategy::Sn, 4, Schedule::Threads { pin: false }),
    );
    let d = e.dispatch(trace.clone());
    assert_eq!((d.len(), d.cores()), (trace.len(), 4));
    for core in 0..4 {
        for port in [LAN, WAN] {
            let want = trace
                .iter()
                .filter(|p| p.port == port && nic.steer(p.port, &p.data).core as usize == core)
                .count();
            assert_eq!(d.queue_len(core, port), want);
        }
    }
    let seq = engine(
        nic,
        opts(Strategy::Seq, 4, Schedule::Threads { pin: false }),
    );
    let d = seq.dispatch(trace.clone());
    assert_eq!((d.cores(), d.core_len(0)), (1, trace.len()));
}

#[test]
fn locks_equal_the_sequential_nf_in_commit_order() {
    let traces = [
        ("read-mostly", common::read_mostly_trace(8, 300, 6000)),
        ("write-heavy", common::write_heavy_trace(9, 6000)),
    ];
    for (name, trace) in &traces {
        for cores in [2, 4] {
            for schedule in schedules() {
                let mut e = engine(ms_nic(cores), opts(Strategy::Locks, cores, schedule));
                let out = e.run(trace.clone());
                if let Err(why) = replay(Strategy::Locks, trace, &out) {
                    panic!("{name}, {cores} cores, {schedule:?}: {why}");
                }
                let t = e.stats().total();
                assert_eq!(t.read_passes, trace.len() as u64);
                assert_eq!(t.aborts, t.writes);
                let wrote = out.records.iter().filter(|r| r.wrote).count() as u64;
                assert_eq!(wrote, t.writes);
                if *name == "read-mostly" {
                    assert!(t.writes * 5 < t.read_passes, "{name}: {t:?}");
                } else {
                    assert!(t.writes * 5 > t.read_passes, "{name}: {t:?}");
                }
            }
        }
    }
}

#[test]
fn locks_moves_time_forward_only_when_needed() {
    // Two cores, one flow per core; a write on core 0 at a late time forces later
    // readers on core 1 to a time no earlier than the writer's.
    let trace = common::read_mostly_trace(10, 40, 2000);
    let mut e = engine(
        ms_nic(2),
        opts(Strategy::Locks, 2, Schedule::Deterministic { seed: 3 }),
    );
    let out = e.run(trace.clone());
    replay(Strategy::Locks, &trace, &out).expect("serializable");
    let moved = out
        .records
        .iter()
        .zip(&trace)
        .filter(|(r, p)| r.now > p.time_ns)
        .count();
    let same = out
        .records
        .iter()
        .zip(&trace)
        .filter(|(r, p)| r.now == p.time_ns)
        .count();
    assert!(
        same > moved,
        "most packets keep their time: {same} vs {moved}"
    );
}

#[test]
fn tm_equals_the_sequential_nf_in_commit_order() {
    for trace in [
        common::read_mostly_trace(12, 100, 3000),
        common::write_heavy_trace(13, 3000),
    ] {
        for cores in [2, 4] {
            for schedule in schedules() {
                let mut e = engine(ms_nic(cores), opts(Strategy::Tm, cores, schedule));
                let out = e.run(trace.clone());
                if let Err(why) = replay(Strategy::Tm, &trace, &out) {
                    panic!("{cores} cores, {schedule:?}: {why}");
                }
                let mut seqs: Vec<u64> = out.records.iter().map(|r| r.epoch).collect();
                seqs.sort_unstable();
                assert_eq!(seqs, (1..=trace.len() as u64).collect::<Vec<_>>());
                assert!(out.records.iter().all(|r| r.wrote));
                let t = e.stats().total();
                assert_eq!(t.tm_commits + t.tm_fallbacks, trace.len() as u64);
                match e.rtm_status() {
                    RtmStatus::Used => assert!(rtm_available()),
                    RtmStatus::Unavailable(_) => assert_eq!(t.tm_fallbacks, trace.len() as u64),
                    RtmStatus::NotApplicable => panic!("tm is applicable"),
                }
            }
        }
    }
}

#[test]
fn tm_commits_transactions_where_rtm_exists() {
    if !rtm_available() {
        println!("skipped: needs a CPU with Intel RTM (TSX)");
        return;
    }
    let trace = common::read_mostly_trace(14, 100, 5000);
    let mut e = engine(
        ms_nic(2),
        opts(Strategy::Tm, 2, Schedule::Threads { pin: true }),
    );
    let out = e.run(trace.clone());
    replay(Strategy::Tm, &trace, &out).expect("serializable");
    assert_eq!(e.rtm_status(), RtmStatus::Used);
    assert!(e.stats().total().tm_commits > 0);
}

#[test]
fn chunked_runs_equal_one_run() {
    let trace = common::write_heavy_trace(15, 3000);
    let cuts = [0usize, 1, 700, 701, 1999, 3000];
    let chunks: Vec<Vec<InputPacket>> = cuts
        .windows(2)
        .map(|w| trace[w[0]..w[1]].to_vec())
        .collect();
    for (strategy, nic) in [(Strategy::Seq, ms_nic(2)), (Strategy::Sn, fw_nic(2))] {
        for schedule in [
            Schedule::Threads { pin: true },
            Schedule::Deterministic { seed: 1 },
        ] {
            let whole = engine(nic.clone(), opts(strategy, 2, schedule)).run(trace.clone());
            let mut e = engine(nic.clone(), opts(strategy, 2, schedule));
            let mut joined = ChunkOutput::default();
            for c in &chunks {
                let out = e.run(c.clone());
                joined.observations.extend(out.observations);
                joined.records.extend(out.records);
            }
            assert_eq!(joined, whole, "{strategy:?} {schedule:?}");
            assert_eq!(e.stats().chunks, chunks.len() as u64);
        }
    }
    // Shared-state strategies interleave differently per chunk, but the concatenation
    // is still one serializable run (epochs, sequence numbers and positions carry over).
    for strategy in [Strategy::Locks, Strategy::Tm] {
        for schedule in [
            Schedule::Threads { pin: true },
            Schedule::Deterministic { seed: 2 },
        ] {
            let mut e = engine(ms_nic(2), opts(strategy, 2, schedule));
            let mut joined = ChunkOutput::default();
            for c in &chunks {
                let out = e.run(c.clone());
                joined.observations.extend(out.observations);
                joined.records.extend(out.records);
            }
            replay(strategy, &trace, &joined).unwrap_or_else(|w| panic!("{strategy:?}: {w}"));
        }
    }
}

#[test]
fn deterministic_schedules_are_reproducible_and_differ_by_seed() {
    let trace = common::write_heavy_trace(16, 2000);
    let run = |seed| {
        engine(
            ms_nic(4),
            opts(Strategy::Locks, 4, Schedule::Deterministic { seed }),
        )
        .run(trace.clone())
    };
    assert_eq!(run(5), run(5));
    let orders: std::collections::HashSet<Vec<usize>> = (0..4)
        .map(|s| commit_order(Strategy::Locks, &run(s).records))
        .collect();
    assert!(
        orders.len() > 1,
        "different seeds should interleave differently"
    );
}

#[test]
fn sn_access_logs_expose_non_colocated_keys() {
    let trace = common::read_mostly_trace(17, 100, 1000);
    let shared_keys = |nic: NicModel| {
        let mut o = opts(Strategy::Sn, 4, Schedule::Threads { pin: true });
        o.instrument = true;
        let mut e = engine(nic, o);
        e.run(trace.clone());
        let logs = e.access_logs();
        assert_eq!(logs.len(), 4);
        let mut owner = std::collections::HashMap::new();
        let mut shared = 0;
        for (core, log) in logs.iter().enumerate() {
            let log = log.as_ref().expect("instrumented");
            for key in log.counts().keys() {
                if let Some(&c) = owner.get(key) {
                    if c != core {
                        shared += 1;
                    }
                }
                owner.insert(*key, core);
            }
        }
        (shared, owner.len())
    };
    let (shared, keys) = shared_keys(fw_nic(4));
    assert_eq!(shared, 0);
    assert!(keys >= 100);
    let (shared, _) = shared_keys(ms_nic(4));
    assert!(
        shared > 10,
        "Microsoft's key splits flows across cores: {shared}"
    );
    // Without instrumentation the logs are absent.
    let mut e = engine(
        fw_nic(2),
        opts(Strategy::Sn, 2, Schedule::Threads { pin: true }),
    );
    e.run(trace.clone());
    assert_eq!(e.access_logs(), vec![None, None]);
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(u64, bool)>>,
    drops_after: AtomicUsize,
}

impl Translator for Recorder {
    fn before(&self, index: u64, packet: &mut InputPacket) {
        self.calls.lock().expect("lock").push((index, true));
        // Rename: LAN source port 7 becomes 9 (what the NF sees).
        if packet.port == LAN && packet.data.len() > 35 && packet.data[35] == 7 {
            packet.data[35] = 9;
        }
    }

    fn after(&self, index: u64, packet: &InputPacket, observation: &Observation) {
        self.calls.lock().expect("lock").push((index, false));
        if packet.port == LAN && packet.data.len() > 35 {
            assert_ne!(packet.data[35], 7, "after sees the translated packet");
        }
        if *observation == Observation::Drop {
            self.drops_after.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn translator_runs_around_each_packet_with_global_indices() {
    let trace = common::write_heavy_trace(18, 500);
    for strategy in Strategy::ALL {
        let rec = Arc::new(Recorder::default());
        let mut e = engine(
            ms_nic(2),
            opts(strategy, 2, Schedule::Threads { pin: true }),
        );
        e.set_translator(Some(rec.clone()));
        let a = e.run(trace[..200].to_vec());
        let b = e.run(trace[200..].to_vec());
        let mut calls = rec.calls.lock().expect("lock").clone();
        calls.sort_unstable();
        let want: Vec<(u64, bool)> = (0..500u64).flat_map(|i| [(i, false), (i, true)]).collect();
        assert_eq!(calls, want, "{strategy:?}");
        let drops = a
            .observations
            .iter()
            .chain(&b.observations)
            .filter(|o| **o == Observation::Drop);
        assert_eq!(drops.count(), rec.drops_after.load(Ordering::Relaxed));
    }
    // The NF sees the translated packet.
    let rec: Arc<dyn Translator> = Arc::new(Recorder::default());
    let mut e = engine(
        ms_nic(1),
        opts(Strategy::Seq, 1, Schedule::Threads { pin: false }),
    );
    e.set_translator(Some(rec));
    let p = packet(LAN, 10, tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 7, 80));
    let out = e.run(vec![p]);
    match &out.observations[0] {
        Observation::Forward { bytes, .. } => assert_eq!(bytes[35], 9),
        o => panic!("expected a forward, got {o:?}"),
    }
}

#[test]
fn big_reader_lock_excludes_writers_from_readers() {
    /// Two words a writer keeps equal; a reader seeing them differ saw a torn write.
    struct Guarded {
        lock: BigReaderLock,
        pair: std::cell::UnsafeCell<(u64, u64)>,
    }
    // SAFETY: `pair` is read under a reader token and written under the write lock.
    unsafe impl Sync for Guarded {}
    /// Widens the window between the two halves of a critical section.
    fn dawdle() {
        for _ in 0..50 {
            std::hint::spin_loop();
        }
    }
    for threads in [2usize, 3, 4] {
        let g = Guarded {
            lock: BigReaderLock::new(threads),
            pair: std::cell::UnsafeCell::new((0, 0)),
        };
        let torn = AtomicUsize::new(0);
        let start = std::sync::Barrier::new(threads);
        let per_thread = 20_000u64;
        std::thread::scope(|s| {
            for core in 0..threads {
                let (g, torn, start) = (&g, &torn, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..per_thread {
                        if i % 4 == 0 {
                            let _w = g.lock.write();
                            let p = g.pair.get();
                            // SAFETY: under the write lock.
                            unsafe {
                                (*p).0 += 1;
                                dawdle();
                                (*p).1 += 1;
                            }
                        } else {
                            let _r = g.lock.read(core);
                            let p = g.pair.get();
                            // SAFETY: under a reader token; volatile so that both halves
                            // are really read, apart.
                            let (a, b) = unsafe {
                                let a = std::ptr::read_volatile(&(*p).0);
                                dawdle();
                                (a, std::ptr::read_volatile(&(*p).1))
                            };
                            if a != b {
                                torn.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        let p = g.pair.into_inner();
        let writes = threads as u64 * per_thread / 4;
        assert_eq!(p, (writes, writes), "{threads} threads: lost updates");
        assert_eq!(
            torn.load(Ordering::Relaxed),
            0,
            "{threads} threads: torn reads"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Runtime mutants (the checker's self-test)

#[test]
fn keep_aborted_decision_diverges_on_writes() {
    // Flow 0 opens, flow 1 opens later; flow 0 expires while flow 1 is alive; flow 1's
    // reply then arrives when the expiry makes its read pass abort: the correct decision
    // forwards it to the LAN, the aborted pass said "device 1" (a drop for a WAN packet).
    let ttl = TestFw::TTL;
    let trace = vec![
        flow_packet(0, false, 1_000),
        flow_packet(1, false, 1_000 + ttl / 2),
        flow_packet(1, true, 1_000 + ttl + ttl / 4),
    ];
    // One core: the input order is the processing order.
    let mut o = opts(Strategy::Locks, 1, Schedule::Deterministic { seed: 0 });
    o.mutant = Some(RuntimeMutant::KeepAbortedDecision);
    let mut e = engine(ms_nic(1), o);
    let out = e.run(trace.clone());
    assert_eq!(out.observations[2], Observation::Drop);
    assert!(matches!(
        out.observations[2 - 1],
        Observation::Forward { port: 1, .. }
    ));
    let why = replay(Strategy::Locks, &trace, &out).expect_err("mutant caught");
    assert!(why.starts_with("output: packet 2"), "{why}");
    // State changes as normal: the flow-1 reply's re-run refreshed it, so a reply
    // shortly after is forwarded by the (read-only) pass.
    let later = e.run(vec![flow_packet(1, true, 1_000 + ttl + ttl / 2)]);
    assert!(matches!(
        later.observations[0],
        Observation::Forward { port: 0, .. }
    ));
    // The correct executor agrees with the sequential NF on the same trace.
    let mut good = engine(
        ms_nic(1),
        opts(Strategy::Locks, 1, Schedule::Deterministic { seed: 0 }),
    );
    let out = good.run(trace.clone());
    replay(Strategy::Locks, &trace, &out).expect("correct locks");
    assert!(matches!(
        out.observations[2],
        Observation::Forward { port: 0, .. }
    ));
    // On a busy trace the mutant is caught under every schedule.
    let busy = common::write_heavy_trace(19, 2000);
    for schedule in [
        Schedule::Threads { pin: true },
        Schedule::Deterministic { seed: 4 },
    ] {
        let mut o = opts(Strategy::Locks, 2, schedule);
        o.mutant = Some(RuntimeMutant::KeepAbortedDecision);
        let out = engine(ms_nic(2), o).run(busy.clone());
        let why = replay(Strategy::Locks, &busy, &out).expect_err("mutant caught");
        assert!(why.starts_with("output:"), "{schedule:?}: {why}");
    }
}

#[test]
fn read_lock_on_write_is_refused_under_threads_and_caught_deterministically() {
    let mut o = opts(Strategy::Locks, 2, Schedule::Threads { pin: true });
    o.mutant = Some(RuntimeMutant::ReadLockOnWrite);
    match Engine::<TestFw>::new(ms_nic(2), o) {
        Err(e @ ExecError::MutantNeedsDeterministic { .. }) => {
            assert!(e.to_string().contains("deterministic"))
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("ReadLockOnWrite under threads must be refused"),
    }
    let mut o = opts(Strategy::Sn, 2, Schedule::Deterministic { seed: 0 });
    o.mutant = Some(RuntimeMutant::KeepAbortedDecision);
    assert!(matches!(
        Engine::<TestFw>::new(ms_nic(2), o),
        Err(ExecError::MutantStrategy { .. })
    ));
    // Each flow's LAN packet and its reply on different cores (Microsoft's key splits
    // them): when the reply's core runs first, the correct executor records it before
    // the writer, the mutant records the write as an earlier-time reader.
    let nic = ms_nic(2);
    let split: Vec<u32> = (0..400u32)
        .filter(|&f| {
            let (s, d, sp, dp) = common::flow(f);
            nic.steer(LAN, &tcp_frame(s, d, sp, dp)).core
                != nic.steer(WAN, &tcp_frame(d, s, dp, sp)).core
        })
        .take(20)
        .collect();
    assert_eq!(split.len(), 20);
    let mut trace = Vec::new();
    for (k, &f) in split.iter().enumerate() {
        let t = 10_000 * (k as u64 + 1);
        trace.push(flow_packet(f, false, t));
        trace.push(flow_packet(f, true, t + 1));
    }
    let mut caught = 0;
    for seed in 0..20 {
        let mut o = opts(Strategy::Locks, 2, Schedule::Deterministic { seed });
        let good = engine(nic.clone(), o.clone()).run(trace.clone());
        replay(Strategy::Locks, &trace, &good).expect("correct locks");
        o.mutant = Some(RuntimeMutant::ReadLockOnWrite);
        let bad = engine(nic.clone(), o).run(trace.clone());
        assert!(bad.records.iter().all(|r| !r.wrote && r.epoch == 0));
        let verdict = replay(Strategy::Locks, &trace, &bad);
        caught += usize::from(verdict.is_err_and(|why| why.starts_with("output:")));
    }
    assert!(caught > 0, "ReadLockOnWrite survived 20 seeds");
}

#[test]
fn engine_options_are_checked() {
    let mut o = opts(Strategy::Sn, 2, Schedule::Threads { pin: true });
    o.cores = 0;
    assert!(matches!(
        Engine::<TestFw>::new(ms_nic(2), o),
        Err(ExecError::NoCores)
    ));
    let mut o = opts(Strategy::Sn, 2, Schedule::Threads { pin: true });
    o.batch = 0;
    assert!(matches!(
        Engine::<TestFw>::new(ms_nic(2), o),
        Err(ExecError::NoBatch)
    ));
    let o = opts(Strategy::Locks, 2, Schedule::Threads { pin: true });
    assert!(matches!(
        Engine::<TestFw>::new(ms_nic(4), o),
        Err(ExecError::CoreMismatch { nic: 4, run: 2 })
    ));
    let d = RunOptions::default();
    assert_eq!(
        (
            d.strategy,
            d.cores,
            d.schedule,
            d.batch,
            d.instrument,
            d.mutant,
            d.tm_retries
        ),
        (
            Strategy::Seq,
            1,
            Schedule::Threads { pin: true },
            32,
            false,
            None,
            2
        )
    );
    assert_eq!(d.parse_mode, ParseMode::Strict);
    for m in RuntimeMutant::ALL {
        assert_eq!(RuntimeMutant::parse(m.name()), Some(m));
    }
}

#[test]
fn faults_are_summed_over_instances() {
    let bad_port: Vec<InputPacket> = (0..10).map(|t| packet(5, t, vec![0; 60])).collect();
    for strategy in Strategy::ALL {
        let mut e = engine(
            ms_nic(2),
            opts(strategy, 2, Schedule::Threads { pin: true }),
        );
        let out = e.run(bad_port.clone());
        assert!(out.observations.iter().all(|o| *o == Observation::Drop));
        assert_eq!(e.fault_count(), 10, "{strategy:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Streaming: borrowed chunks, results in input order, observations encoded on workers

/// Encodes an observation as its kind, port and bytes, preceded by the input frame's
/// length and byte 35 (so the test sees which packet the worker gave the encoder);
/// refuses the packets whose time is `fail_on`.
struct TestEncoder {
    fail_on: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
struct Refused(usize);

impl ObservationEncoder for TestEncoder {
    type Error = Refused;
    /// Packets this core encoded so far.
    type State = usize;

    fn encode(
        &self,
        seen: &mut usize,
        input: &InputPacket,
        observation: &Observation,
        out: &mut Vec<u8>,
    ) -> Result<(), Refused> {
        *seen += 1;
        if Some(input.time_ns) == self.fail_on {
            return Err(Refused(*seen));
        }
        out.extend_from_slice(&(input.data.len() as u32).to_le_bytes());
        out.push(input.data.get(35).copied().unwrap_or(0));
        match observation {
            Observation::Drop => out.push(0),
            Observation::Forward { port, bytes } => {
                out.push(1);
                out.extend_from_slice(&port.to_le_bytes());
                out.extend_from_slice(bytes);
            }
            Observation::Flood { bytes } => {
                out.push(2);
                out.extend_from_slice(bytes);
            }
        }
        Ok(())
    }
}

fn decode(bytes: &[u8]) -> (usize, u8, Observation) {
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    let observation = match bytes[5] {
        0 => Observation::Drop,
        1 => Observation::Forward {
            port: u16::from_le_bytes([bytes[6], bytes[7]]),
            bytes: bytes[8..].to_vec(),
        },
        _ => Observation::Flood {
            bytes: bytes[6..].to_vec(),
        },
    };
    (len, bytes[4], observation)
}

#[test]
fn streamed_and_encoded_chunks_equal_run() {
    let trace = common::write_heavy_trace(21, 2500);
    let cuts = [0usize, 1, 900, 2500];
    let mut cases: Vec<(Strategy, NicModel, Schedule)> = Vec::new();
    for schedule in [
        Schedule::Threads { pin: true },
        Schedule::Threads { pin: false },
        Schedule::Deterministic { seed: 3 },
    ] {
        cases.push((Strategy::Seq, ms_nic(2), schedule));
        cases.push((Strategy::Sn, fw_nic(2), schedule));
        cases.push((Strategy::Sn, fw_nic(4), schedule));
    }
    for (strategy, nic, schedule) in cases {
        let what = format!("{strategy:?} on {} cores, {schedule:?}", nic.cores());
        let o = opts(strategy, nic.cores(), schedule);
        let whole = engine(nic.clone(), o.clone()).run(trace.clone());
        let mut borrowed = engine(nic.clone(), o.clone());
        let mut encoded = engine(nic.clone(), o.clone());
        let mut states = Vec::new();
        let mut i = 0;
        for w in cuts.windows(2) {
            let chunk = &trace[w[0]..w[1]];
            let r = borrowed.run_chunk(chunk);
            assert_eq!(r.len(), chunk.len());
            let mut k = 0;
            r.for_each(|at, observation, record| {
                assert_eq!(at, k, "{what}: input order");
                assert_eq!(
                    observation,
                    whole.observations[i + k],
                    "{what}: packet {}",
                    i + k
                );
                assert_eq!(record, whole.records[i + k], "{what}: packet {}", i + k);
                k += 1;
                Ok::<(), Refused>(())
            })
            .expect("no errors");
            assert_eq!(k, chunk.len());
            let r = encoded.run_chunk_encoded(chunk, &TestEncoder { fail_on: None }, &mut states);
            let mut k = 0;
            r.for_each(|at, bytes, record| {
                assert_eq!(at, k);
                let (len, byte35, observation) = decode(bytes);
                let input = &chunk[k];
                let want = (input.data.len(), input.data.get(35).copied().unwrap_or(0));
                assert_eq!((len, byte35), want, "{what}");
                assert_eq!(
                    observation,
                    whole.observations[i + k],
                    "{what}: packet {}",
                    i + k
                );
                assert_eq!(*record, whole.records[i + k], "{what}: packet {}", i + k);
                k += 1;
                Ok::<(), Refused>(())
            })
            .expect("no errors");
            assert_eq!(k, chunk.len());
            i += chunk.len();
        }
        // Each executing core's encoder state saw that core's packets, across chunks.
        let executing = if strategy == Strategy::Seq {
            1
        } else {
            nic.cores()
        };
        let mut per_core = vec![0; executing];
        for r in &whole.records {
            per_core[usize::from(r.core)] += 1;
        }
        assert_eq!(states, per_core, "{what}");
        assert_eq!(borrowed.stats(), encoded.stats());
    }
}

#[test]
fn an_encoding_error_stops_the_stream_at_its_packet() {
    let trace = common::write_heavy_trace(22, 1200);
    // The first packet (in input order) with the refused time.
    let refused = trace[700].time_ns;
    let first = trace
        .iter()
        .position(|p| p.time_ns == refused)
        .expect("present");
    for (strategy, nic) in [(Strategy::Seq, ms_nic(1)), (Strategy::Sn, fw_nic(2))] {
        let o = opts(strategy, nic.cores(), Schedule::Threads { pin: false });
        let mut e = engine(nic.clone(), o.clone());
        let mut states = Vec::new();
        let mut delivered = 0;
        let r = e.run_chunk_encoded(
            &trace,
            &TestEncoder {
                fail_on: Some(refused),
            },
            &mut states,
        );
        let err = r.for_each(|at, _, _| {
            assert_eq!(at, delivered);
            delivered += 1;
            Ok::<(), Refused>(())
        });
        assert!(matches!(err, Err(Refused(_))), "{strategy:?}: {err:?}");
        assert_eq!(
            delivered, first,
            "{strategy:?}: every packet before the refused one"
        );
        // The chunk was processed all the same: the next one goes on from there.
        assert_eq!(e.stats().total().packets, trace.len() as u64);
        let again = e.run_chunk(&trace[..10]);
        assert_eq!(again.len(), 10);
    }
}

#[test]
fn borrowed_chunks_are_left_as_read_under_a_translator() {
    let trace: Vec<InputPacket> = (0..40)
        .map(|i| packet(LAN, 10 + i, tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 7, 80)))
        .collect();
    for strategy in Strategy::ALL {
        let mut e = engine(
            ms_nic(2),
            opts(strategy, 2, Schedule::Deterministic { seed: 4 }),
        );
        e.set_translator(Some(Arc::new(Recorder::default())));
        let chunk = trace.clone();
        let mut states = Vec::new();
        let r = e.run_chunk_encoded(&chunk, &TestEncoder { fail_on: None }, &mut states);
        r.for_each(|_, bytes, _| {
            let (_, byte35, observation) = decode(bytes);
            // The encoder gets the packet as read; the NF saw it translated.
            assert_eq!(byte35, 7, "{strategy:?}");
            if let Observation::Forward { bytes, .. } = observation {
                assert_eq!(bytes[35], 9, "{strategy:?}");
            }
            Ok::<(), Refused>(())
        })
        .expect("no errors");
        assert_eq!(chunk, trace, "{strategy:?}: the chunk is unchanged");
    }
}

#[test]
fn dispatched_chunks_count_queues_and_process_like_run() {
    let trace = common::read_mostly_trace(23, 16, 700);
    let nic = fw_nic(4);
    for schedule in [
        Schedule::Threads { pin: false },
        Schedule::Deterministic { seed: 9 },
    ] {
        let o = opts(Strategy::Sn, 4, schedule);
        let e = engine(nic.clone(), o.clone());
        let d = e.dispatch(trace.clone());
        assert_eq!(d.len(), trace.len());
        let per_core: usize = (0..4).map(|c| d.core_len(c)).sum();
        assert_eq!(per_core, trace.len());
        for c in 0..4 {
            assert_eq!(d.queue_len(c, LAN) + d.queue_len(c, WAN), d.core_len(c));
        }
        assert_eq!(d.core_len(4), 0);
        let mut a = engine(nic.clone(), o.clone());
        let mut b = engine(nic.clone(), o.clone());
        assert_eq!(a.process(d.clone()), b.run(trace.clone()));
    }
}
