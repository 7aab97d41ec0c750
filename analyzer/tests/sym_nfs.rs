//! The analysis of the nine library NFs: verdicts against Maestro's published results
//! (`shared/spec/maestro-reference.md` §1) and path counts.

use maestro_analyzer::sym::report::{Analysis, FieldEq};
use maestro_analyzer::{analyze, load_nf};
use std::path::PathBuf;

fn nf(name: &str) -> Analysis {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfs")
        .join(name);
    let prog = load_nf(&dir, &[]).expect("NF loads");
    analyze(&prog).expect("NF analyses")
}

fn eq(p1: &str, p2: &str) -> FieldEq {
    FieldEq {
        p1: p1.to_string(),
        p2: p2.to_string(),
    }
}

fn port_fields(a: &Analysis, port: u16) -> Vec<String> {
    a.port_fields(port)
        .map(|f| f.fields.clone())
        .unwrap_or_default()
}

fn strategy(a: &Analysis, object: &str) -> String {
    a.object_verdict(object)
        .map(|o| o.strategy.clone())
        .unwrap_or_default()
}

const IP_SRC: &str = "pkt.ip.src";
const IP_DST: &str = "pkt.ip.dst";
const SPORT: &str = "pkt.l4.sport";
const DPORT: &str = "pkt.l4.dport";

#[test]
fn nop_is_shared_nothing_without_constraints() {
    let a = nf("nop");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    assert!(a.verdict.rule.is_none());
    assert!(a.constraints.pairs.is_empty());
    assert!(a.objects.is_empty());
}

#[test]
fn sbridge_table_is_read_only() {
    let a = nf("sbridge");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    assert!(a.constraints.pairs.is_empty());
    assert_eq!(strategy(&a, "table"), "read-only");
    assert!(a.objects.iter().all(|o| o.read_only));
    assert_eq!(a.summary.writing_paths, 0);
}

#[test]
fn bridge_needs_locks_because_of_mac_keys() {
    let a = nf("bridge");
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R4"));
    let o = a.object_verdict("macs").expect("macs");
    assert_eq!(o.strategy, "locks");
    assert_eq!(o.rule.as_deref(), Some("R4"));
    assert!(o.reason.contains("pkt.eth.src"), "{}", o.reason);
    assert!(o.reason.contains("pkt.eth.dst"), "{}", o.reason);
    // The learning accesses (lines 16, 17, 19) and the lookup (21, 22) are named.
    let lines: Vec<u32> = o.sites.iter().map(|s| s.line).collect();
    for l in [16, 17, 19, 21, 22] {
        assert!(lines.contains(&l), "line {l} in {lines:?}");
    }
    assert!(a.constraints.pairs.is_empty());
}

#[test]
fn pol_shards_wan_by_destination_ip() {
    let a = nf("pol");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    // wan = 0, lan = 1: only WAN packets touch the buckets.
    assert_eq!(port_fields(&a, 0), vec![IP_DST]);
    assert!(a.port_fields(1).is_none());
    let wan = a.pair(0, 0).expect("wan x wan");
    assert_eq!(wan.equalities, vec![eq(IP_DST, IP_DST)]);
    assert!(a.pair(0, 1).is_none() && a.pair(1, 1).is_none());
    assert_eq!(strategy(&a, "buckets"), "shared-nothing");
    // ICMP and fragments reach the buckets too (pol only parses IPv4): the verdict says
    // what RSS must do for them instead of ignoring them.
    for class in ["ipv4-other", "ipv4-fragment"] {
        let c = a
            .verdict
            .class_caveats
            .iter()
            .find(|c| c.port == 0 && c.class.name() == class)
            .unwrap_or_else(|| panic!("caveat for {class}"));
        assert_eq!(c.status, "consistent");
        assert_eq!(c.objects, vec!["buckets"]);
    }
    let f = a.port_fields(0).expect("wan");
    assert!(f.rss_types.iter().any(|t| t == "NONFRAG_IPV4_OTHER"));
}

#[test]
fn fw_colocates_lan_5_tuple_with_reversed_wan_5_tuple() {
    let a = nf("fw");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    let cross = a.pair(0, 1).expect("lan x wan");
    assert_eq!(
        cross.equalities,
        vec![
            eq(IP_SRC, IP_DST),
            eq(IP_DST, IP_SRC),
            eq(SPORT, DPORT),
            eq(DPORT, SPORT)
        ]
    );
    for p in [0, 1] {
        let same = a.pair(p, p).expect("same port");
        assert_eq!(
            same.equalities,
            vec![
                eq(IP_SRC, IP_SRC),
                eq(IP_DST, IP_DST),
                eq(SPORT, SPORT),
                eq(DPORT, DPORT)
            ]
        );
        assert_eq!(port_fields(&a, p), vec![IP_SRC, IP_DST, SPORT, DPORT]);
    }
    // The LAN accesses (get 41, refresh 42, add 44: the write) against the WAN ones (get
    // 30, refresh 31, value 34).
    let src = &cross.sources[0];
    assert_eq!(src.object, "flows");
    assert_eq!(src.lines, [vec![41, 42, 44], vec![30, 31, 34]]);
    assert!(src.unhashable.contains(&"pkt.ip.proto".to_string()));
    // Fragments pass `parse l4`: they reach the flow table and need an address-only hash.
    let f = a.port_fields(0).expect("lan");
    assert_eq!(f.all_classes_fields, vec![IP_SRC, IP_DST]);
}

#[test]
fn nat_steers_by_server_ip_on_both_ports_via_r5() {
    let a = nf("nat");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    assert_eq!(a.r5.len(), 1);
    let r5 = &a.r5[0];
    assert!(r5.accepted, "{}", r5.reason);
    assert_eq!(r5.object, "flows");
    assert_eq!(r5.device, "wan");
    assert_eq!(r5.guard_line, Some(33));
    let compared: Vec<(&str, &str)> = r5
        .compared
        .iter()
        .map(|c| (c.component.as_str(), c.field.as_str()))
        .collect();
    assert!(compared.contains(&("dst_ip", IP_SRC)));
    assert!(compared.contains(&("dst_port", SPORT)));
    // Server IP on both ports (Maestro's result); our model also allows the server port.
    let cross = a.pair(0, 1).expect("lan x wan");
    assert!(cross.equalities.contains(&eq(IP_DST, IP_SRC)));
    assert_eq!(cross.equalities, vec![eq(IP_DST, IP_SRC), eq(DPORT, SPORT)]);
    assert_eq!(port_fields(&a, 0), vec![IP_DST, DPORT]);
    assert_eq!(port_fields(&a, 1), vec![IP_SRC, SPORT]);
    // The LAN 5-tuple constraint is subsumed by the coarser server fields (R2).
    assert!(!a.constraints.subsumed.is_empty());
    assert!(a.notes.iter().any(|n| n.contains("R5 accepted")));
}

#[test]
fn lb_needs_locks_because_heartbeats_write_the_backend_table() {
    let a = nf("lb");
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R4"));
    let b = a.object_verdict("backends").expect("backends");
    assert_eq!(b.strategy, "locks");
    assert!(b.reason.contains("ring.find"), "{}", b.reason);
    // Written by heartbeats on the backend side (lines 35, 37).
    assert!(b.reason.contains("35, 37"), "{}", b.reason);
    assert_eq!(strategy(&a, "ring"), "read-only");
    // The flow table alone could be sharded: a hybrid is reported.
    assert_eq!(strategy(&a, "flows"), "shared-nothing");
    assert!(a.verdict.hybrid.as_deref().unwrap_or("").contains("flows"));
}

#[test]
fn cl_shards_wan_by_source_and_destination_ip() {
    let a = nf("cl");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    assert_eq!(port_fields(&a, 0), vec![IP_SRC, IP_DST]);
    let wan = a.pair(0, 0).expect("wan x wan");
    assert_eq!(wan.equalities, vec![eq(IP_SRC, IP_SRC), eq(IP_DST, IP_DST)]);
    // The 5-tuple flow table is subsumed by the (src, dst) client sketch (R2).
    assert!(a
        .constraints
        .subsumed
        .iter()
        .any(|s| s.starts_with("R2") && s.contains("flows")));
    assert_eq!(strategy(&a, "flows"), "shared-nothing");
    assert_eq!(strategy(&a, "clients"), "shared-nothing");
}

#[test]
fn psd_shards_wan_by_source_ip() {
    let a = nf("psd");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    assert_eq!(port_fields(&a, 0), vec![IP_SRC]);
    assert_eq!(
        a.pair(0, 0).expect("wan").equalities,
        vec![eq(IP_SRC, IP_SRC)]
    );
    // The per-source port sets are reached through the source's index.
    let ports = a
        .sites
        .iter()
        .find(|s| s.object == "ports" && s.method == "contains")
        .expect("ports.contains");
    assert_eq!(ports.keys[0].via.as_deref(), Some("sources.get@28"));
}

// Hand counts. Every input port is explored separately; `in` and configs are constants,
// so branches on them fold away and are not paths.
//
// nop (2 paths): lan: `in == wan` is false, forward(wan): 1; wan: forward(lan): 1.
//
// fw (6 paths), per port: parse l4 fails -> drop (1). lan: `in == wan` folds to false;
// flows.get hit -> refresh, forward (1); miss -> add, forward (1): 3. wan: get(reply) hit
// -> forward(value) (1); miss -> drop (1): 3.
//
// pol (8 paths, 2 branch sides pruned): lan (port 1): parse ipv4 fails (1); else
// forward(wan) (1): 2. wan (port 0): parse fails (1); bucket hit: `elapsed < T` splits
// into tokens = min(...) [then `tokens > size`: forward (1) or drop (1)] and tokens =
// burst [burst = 10^10 > size <= 65535, so only forward (1); the drop side is pruned]: 3;
// miss: `size > burst` is infeasible (pruned), add succeeds (1) or fails (1): 2. 1+3+2 = 6.
#[test]
fn path_counts_match_hand_counts() {
    let nop = nf("nop");
    assert_eq!(nop.summary.paths, 2);
    let fw = nf("fw");
    assert_eq!(fw.summary.paths, 6);
    assert_eq!(
        fw.summary
            .paths_per_port
            .iter()
            .map(|p| p.paths)
            .collect::<Vec<_>>(),
        vec![3, 3]
    );
    let pol = nf("pol");
    assert_eq!(pol.summary.paths, 8);
    assert_eq!(pol.summary.pruned_branches, 2);
    let per: Vec<(String, usize)> = pol
        .summary
        .paths_per_port
        .iter()
        .map(|p| (p.device.clone(), p.paths))
        .collect();
    assert_eq!(per, vec![("wan".to_string(), 6), ("lan".to_string(), 2)]);
}

#[test]
fn path_counts_of_the_other_nfs_are_stable() {
    for (name, paths) in [
        ("sbridge", 8),
        ("bridge", 8),
        ("nat", 8),
        ("lb", 12),
        ("cl", 7),
        ("psd", 8),
    ] {
        assert_eq!(nf(name).summary.paths, paths, "{name}");
    }
}

#[test]
fn writing_and_read_only_paths_are_classified() {
    let fw = nf("fw");
    let writing: Vec<usize> = fw
        .all_paths()
        .filter(|p| p.writes_state)
        .map(|p| p.id)
        .collect();
    // lan hit (refresh), lan miss (add), wan hit (refresh).
    assert_eq!(writing, vec![1, 2, 4]);
    assert!(fw.all_paths().all(|p| p.expires));
}

#[test]
fn packet_classes_are_recorded_per_path() {
    let fw = nf("fw");
    use maestro_analyzer::PacketClass;
    let c = |port: u16, class: PacketClass| {
        fw.classes
            .iter()
            .find(|c| c.port == port && c.class == class)
            .expect("class")
            .clone()
    };
    // Non-IP frames only take the parse-failure path and touch no state.
    let nonip = c(0, PacketClass::NonIp);
    assert_eq!(nonip.paths, vec![3]);
    assert!(!nonip.touches_state);
    // ICMP is dropped at `parse l4`; fragments pass it (ports read from the payload).
    assert!(!c(1, PacketClass::Ipv4Other).touches_state);
    assert!(c(1, PacketClass::Ipv4Fragment).touches_state);
    assert!(c(1, PacketClass::Ipv4TcpUdp).touches_state);
}
