//! Deliberately modified NFs flip the verdict, for the right reason.

use maestro_analyzer::sym::report::Analysis;
use maestro_analyzer::{analyze, load_nf};
use std::path::PathBuf;

fn load(path: PathBuf, overrides: &[(&str, &str)]) -> Analysis {
    let ov: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let prog = load_nf(&path, &ov).expect("NF loads");
    analyze(&prog).expect("NF analyses")
}

fn fixture(name: &str) -> Analysis {
    load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        &[],
    )
}

fn library(name: &str, overrides: &[(&str, &str)]) -> Analysis {
    load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../nfs")
            .join(name),
        overrides,
    )
}

#[test]
fn firewall_keyed_on_mac_needs_locks_r4() {
    let a = fixture("fw_mac");
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R4"));
    let o = a.object_verdict("flows").expect("flows");
    assert!(o.reason.contains("pkt.eth.src"), "{}", o.reason);
    assert!(o.reason.contains("RSS cannot hash"), "{}", o.reason);
    // Names the LAN write and the WAN read with their lines.
    let lines: Vec<u32> = o.sites.iter().map(|s| s.line).collect();
    assert!(lines.contains(&22) && lines.contains(&33), "{lines:?}");
}

#[test]
fn policer_keyed_on_dst_then_src_needs_locks_r3() {
    let a = fixture("pol_mixed");
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R3"));
    let o = a.object_verdict("buckets").expect("buckets");
    assert_eq!(o.rule.as_deref(), Some("R3"));
    assert!(
        o.reason.contains("p1.pkt.ip.dst == p2.pkt.ip.src"),
        "{}",
        o.reason
    );
    let lines: Vec<u32> = o.sites.iter().map(|s| s.line).collect();
    assert!(lines.contains(&26) && lines.contains(&35), "{lines:?}");
}

#[test]
fn nat_refreshing_on_wan_before_the_spoof_check_fails_r5() {
    // Vigor's variant: `refresh_on_wan = true` refreshes the entry at the WAN port's index
    // before checking that the packet comes from that flow's server.
    let a = library("nat", &[("refresh_on_wan", "true")]);
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R5"));
    assert_eq!(a.r5.len(), 1);
    let r5 = &a.r5[0];
    assert!(!r5.accepted);
    assert!(r5.reason.contains("line 38"), "{}", r5.reason);
    let o = a.object_verdict("flows").expect("flows");
    assert!(o.sites.iter().any(|s| s.line == 38));
    // The default (Maestro's) NAT is accepted.
    let default = library("nat", &[]);
    assert!(default.r5[0].accepted);
    assert_eq!(default.verdict.strategy, "shared-nothing");
}

#[test]
fn mac_plus_5_tuple_key_still_shards_on_ip_fields() {
    // Deviation from Maestro, which rejects any key with an Ethernet byte (R4).
    let a = fixture("fw_mac_ip");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    let cross = a.pair(0, 1).expect("lan x wan");
    assert_eq!(cross.equalities.len(), 4);
    assert!(cross.sources[0]
        .unhashable
        .iter()
        .any(|u| u == "pkt.eth.src"));
}

#[test]
fn derived_index_is_resolved_with_z3_and_guarded_calls_are_marked() {
    let a = fixture("counters");
    assert_eq!(a.verdict.strategy, "shared-nothing");
    for p in [0, 1] {
        assert_eq!(a.port_fields(p).expect("port").fields, vec!["pkt.l4.dport"]);
    }
    assert_eq!(
        a.object_verdict("blocked").expect("blocked").strategy,
        "read-only"
    );
    // `blocked.contains` runs only when the sport test fails.
    let guarded = a
        .all_paths()
        .flat_map(|p| p.ops.iter())
        .find(|o| o.object == "blocked")
        .expect("blocked op");
    assert_eq!(guarded.guard.as_deref(), Some("!(pkt.l4.sport == 53)"));
    // Fragments reach `hits` keyed by a port the NIC does not hash for them.
    assert!(a
        .verdict
        .class_caveats
        .iter()
        .any(|c| c.class.name() == "ipv4-fragment" && c.status == "inconsistent"));
}

#[test]
fn one_entry_shared_by_every_packet_needs_locks() {
    let a = fixture("global_counter");
    assert_eq!(a.verdict.strategy, "locks");
    assert_eq!(a.verdict.rule.as_deref(), Some("R4"));
    assert!(a
        .object_verdict("total")
        .expect("total")
        .reason
        .contains("every packet"));
}
