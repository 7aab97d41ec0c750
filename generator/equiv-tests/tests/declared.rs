//! What the generated NFs declare to the executors (`STATE`, `RENAMED`, ports), their
//! per-core capacities and their key-access instrumentation.

mod common;

use maestro_generated_tests::{fw_default, lb_default, nat_default, nat_small, sbridge_default};
use maestro_runtime::exec::{shard_capacity, AccessLog, GeneratedNf, RefreshLog};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;

#[test]
fn state_objects_are_declared_in_order_with_their_sharding() {
    let fw = fw_default::Nf::STATE;
    assert_eq!(fw.len(), 1);
    assert_eq!(
        (fw[0].name, fw[0].kind, fw[0].capacity),
        ("flows", "table", 65536)
    );
    assert!(fw[0].sharded);
    // A static map is read-only: replicated in full.
    assert!(!sbridge_default::Nf::STATE[0].sharded);
    // The load balancer's CHT is replicated; its capacity is the backend count.
    let lb: Vec<_> = lb_default::Nf::STATE
        .iter()
        .map(|s| (s.name, s.kind, s.capacity, s.sharded))
        .collect();
    assert_eq!(
        lb,
        vec![
            ("flows", "table", 65536, true),
            ("backends", "table", 32, true),
            ("ring", "cht", 32, false),
        ]
    );
    assert_eq!((fw_default::Nf::LAN_PORT, fw_default::Nf::WAN_PORT), (0, 1));
    assert_eq!(fw_default::Nf::PORT_COUNT, 2);
    assert_eq!(fw_default::Nf::NAME, "fw");
}

#[test]
fn only_the_nat_declares_renamed_fields() {
    for n in [nat_default::Nf::RENAMED, nat_small::Nf::RENAMED] {
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].out_field, n[0].in_field), ("l4.sport", "l4.dport"));
        assert_eq!(n[0].in_ports, &[nat_default::WAN][..]);
    }
    assert!(fw_default::Nf::RENAMED.is_empty());
    assert!(lb_default::Nf::RENAMED.is_empty());
}

/// A trace of `flows` LAN flows and their replies (half the later packets).
fn flows_and_replies(flows: u32) -> Vec<InputPacket> {
    common::synthetic(0, 1, 9, flows, 20 * flows as u64, 0.0, 1_000_000)
}

#[test]
fn shards_get_their_share_of_the_capacity_and_check_it() {
    // On 4 shards a 4-flow table holds 1 flow: the second distinct flow is not added,
    // so its reply is dropped, while the sequential NF forwards it.
    let mut seq = nat_small::Nf::with_shards(ParseMode::Strict, 1).expect("starts");
    let mut shard = nat_small::Nf::with_shards(ParseMode::Strict, 4).expect("starts");
    assert_eq!(shard.flows.capacity(), shard_capacity(4, 4));
    assert_eq!(seq.flows.capacity(), 4);
    let trace = flows_and_replies(3);
    let mut differ = 0;
    for p in &trace {
        if seq.process(p) != shard.process(p) {
            differ += 1;
        }
    }
    assert!(differ > 0, "a quarter of the capacity never bound");
    assert_eq!(
        shard.fault_count(),
        0,
        "indexes are checked against the shard's range"
    );
}

#[test]
fn instrumentation_counts_key_accesses_in_process_only() {
    let mut nf = fw_default::Nf::with_shards(ParseMode::Strict, 1).expect("starts");
    assert!(nf.access_log().is_none());
    let trace = flows_and_replies(50);
    // Off: nothing counted.
    nf.process(&trace[0]);
    nf.set_instrumented(true);
    let mut distinct = std::collections::HashSet::new();
    for p in &trace {
        nf.process(p);
        // The flow's key, from its LAN or WAN side, as fw stores it.
        let v = maestro_runtime::packet::PacketView::new(&p.data, ParseMode::Strict);
        if let (Some(ip), Some((sp, dp))) = (v.ipv4(), v.l4_ports()) {
            let (src, dst, sport, dport) = if p.port == fw_default::WAN {
                (ip.dst_u32(), ip.src_u32(), dp, sp)
            } else {
                (ip.src_u32(), ip.dst_u32(), sp, dp)
            };
            distinct.insert(AccessLog::key_of(&fw_default::FlowId {
                src_port: sport,
                dst_port: dport,
                src_ip: src,
                dst_ip: dst,
                proto: ip.proto(),
            }));
        }
    }
    let log = nf.access_log().expect("on").clone();
    let keys: std::collections::HashSet<u64> = log.counts().keys().map(|&(_, k)| k).collect();
    assert!(log.counts().keys().all(|&(o, _)| o == 0));
    // A flow and its reply name the same entry: one key per flow.
    assert_eq!(keys, distinct);
    let total: u64 = log.counts().values().sum();
    assert!(total >= trace.len() as u64, "every packet touches its flow");
    // The read pass is not instrumented.
    let mut rlog = RefreshLog::default();
    for p in &trace {
        let _ = nf.process_read(p, &mut rlog);
    }
    assert_eq!(nf.access_log().expect("on"), &log);
    nf.set_instrumented(false);
    assert!(nf.access_log().is_none());
}
