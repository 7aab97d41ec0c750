//! Path identities (`sym::paths`): the enumeration matches the analysis, signatures name
//! exactly one path, and the sequence solver finds the packets a path needs.

use maestro_analyzer::sym::paths::{
    Decision, PacketModel, PathTrace, Prefix, Solved, Times, ALL_FIELDS,
};
use maestro_analyzer::{analyze, load_nf, NfProgram, PathSet, PktField};
use std::path::PathBuf;

const LIBRARY: [&str; 9] = [
    "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
];

fn load(name: &str) -> NfProgram {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfs")
        .join(name);
    load_nf(&dir, &[]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn set(prog: &NfProgram) -> PathSet {
    PathSet::enumerate(prog, &Default::default()).unwrap_or_else(|e| panic!("{e}"))
}

const FIXED: Times = Times::Fixed {
    start: 1_000_000_000,
    step: 1_000,
};

#[test]
fn enumeration_matches_the_analysis_of_every_library_nf() {
    for name in LIBRARY {
        let prog = load(name);
        let analysis = analyze(&prog).unwrap();
        let paths = set(&prog);
        assert_eq!(paths.paths.len(), analysis.summary.paths, "{name}");
        let infos: Vec<_> = analysis.ports.iter().flat_map(|p| &p.paths).collect();
        for (p, info) in paths.paths.iter().zip(infos) {
            assert_eq!(p.id, info.id, "{name}");
            assert_eq!(p.port, info.port, "{name}");
            assert_eq!(p.action_line, info.action_line, "{name} path {}", p.id);
            assert_eq!(p.writes_state, info.writes_state, "{name} path {}", p.id);
            let conds: Vec<&str> = info.conditions.iter().map(|c| c.expr.as_str()).collect();
            let steps: Vec<&str> = p.signature.steps.iter().map(|s| s.cond.as_str()).collect();
            assert_eq!(conds, steps, "{name} path {}", p.id);
        }
    }
}

/// A trace made of a path's own decisions, plus a decision at a statement no path forks
/// on (a folded branch), takes that path and no other.
#[test]
fn each_signature_names_exactly_one_path() {
    for name in LIBRARY {
        let prog = load(name);
        let paths = set(&prog);
        for (i, p) in paths.paths.iter().enumerate() {
            let mut decisions: Vec<Decision> =
                p.signature.steps.iter().map(|s| s.decision).collect();
            decisions.insert(
                0,
                Decision {
                    at: u32::MAX - 1,
                    taken: true,
                },
            );
            let trace = PathTrace {
                port: p.port,
                decisions,
                action: p.signature.action,
            };
            let matching: Vec<usize> = paths
                .paths
                .iter()
                .enumerate()
                .filter(|(_, q)| q.signature.matches(&trace))
                .map(|(k, _)| k)
                .collect();
            assert_eq!(matching, vec![i], "{name} path {}", p.id);
            assert_eq!(paths.classify(&trace), Some(i));
            assert_eq!(paths.find(&p.signature), Some(i));
            // The same decisions on another port, or ending elsewhere, are no path.
            let other_port = PathTrace {
                port: p.port + 100,
                ..trace.clone()
            };
            assert_eq!(paths.classify(&other_port), None);
        }
    }
}

fn model_path(set: &PathSet, m: &PacketModel) -> usize {
    set.paths[m.path].id
}

#[test]
fn a_wan_reply_is_solved_with_the_lan_packet_that_opens_its_flow() {
    let prog = load("fw");
    let paths = set(&prog);
    let hit = paths.paths.iter().position(|p| p.id == 4).unwrap();
    // Alone, the reply cannot hit: the table starts empty.
    assert_eq!(
        paths.solve(hit, Prefix::Exactly(0), FIXED, &[]).unwrap(),
        Solved::Unsat
    );
    let Solved::Sequence(seq) = paths.solve(hit, Prefix::Exactly(1), FIXED, &[]).unwrap() else {
        panic!("one LAN packet is enough")
    };
    let [lan, reply] = &seq[..] else {
        panic!("{seq:?}")
    };
    assert_eq!((lan.port, reply.port), (0, 1));
    assert_eq!(model_path(&paths, lan), 2, "the LAN packet adds the flow");
    assert_eq!(model_path(&paths, reply), 4);
    use PktField::*;
    for (a, b) in [
        (IpSrc, IpDst),
        (IpDst, IpSrc),
        (L4Sport, L4Dport),
        (L4Dport, L4Sport),
        (IpProto, IpProto),
    ] {
        assert_eq!(lan.field(a), reply.field(b), "{a:?} vs {b:?}");
    }
    assert!(lan.parsed_l4 && reply.parsed_l4);
    assert_eq!(lan.fields.len(), ALL_FIELDS.len());
    assert_eq!((lan.time_ns, reply.time_ns), (1_000_000_000, 1_000_001_000));
    // Blocking the only useful earlier path leaves nothing.
    assert_eq!(
        paths
            .solve(hit, Prefix::Exactly(1), FIXED, &[vec![lan.path]])
            .unwrap(),
        Solved::Unsat
    );
}

#[test]
fn a_nat_reply_is_addressed_to_the_index_the_flow_got() {
    let prog = load("nat");
    let paths = set(&prog);
    // Path 7: WAN reply that passes the anti-spoofing check and is translated back.
    let fwd = paths.paths.iter().position(|p| p.id == 7).unwrap();
    let Solved::Sequence(seq) = paths.solve(fwd, Prefix::Exactly(1), FIXED, &[]).unwrap() else {
        panic!("one LAN packet is enough")
    };
    let [lan, reply] = &seq[..] else {
        panic!("{seq:?}")
    };
    use PktField::*;
    // The first flow of an empty table gets index 0: external port start_port + 0 = 0.
    assert_eq!(reply.field(L4Dport), 0);
    assert_eq!(reply.field(IpSrc), lan.field(IpDst));
    assert_eq!(reply.field(L4Sport), lan.field(L4Dport));
    assert_eq!(reply.field(IpProto), lan.field(IpProto));
}

#[test]
fn expiry_boundaries_and_full_tables_are_solved() {
    // pol path 3: the bucket's age is exactly the expiry time (older would expire it).
    let prog = load("pol");
    let paths = set(&prog);
    let p3 = paths.paths.iter().position(|p| p.id == 3).unwrap();
    assert_eq!(
        paths.solve(p3, Prefix::Exactly(1), FIXED, &[]).unwrap(),
        Solved::Unsat
    );
    let Solved::Sequence(seq) = paths
        .solve(p3, Prefix::Exactly(1), Times::Free, &[])
        .unwrap()
    else {
        panic!("free times reach it")
    };
    assert_eq!(
        seq[1].time_ns - seq[0].time_ns,
        10_000_000_000,
        "ttl = 10 s"
    );

    // nat path 3 (table full) with max_flows=3: three flows first.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nfs/nat");
    let small = load_nf(&dir, &[("max_flows".into(), "3".into())]).unwrap();
    let paths = set(&small);
    let full = paths.paths.iter().position(|p| p.id == 3).unwrap();
    assert_eq!(
        paths.solve(full, Prefix::Exactly(2), FIXED, &[]).unwrap(),
        Solved::Unsat
    );
    let Solved::Sequence(seq) = paths.solve(full, Prefix::Exactly(3), FIXED, &[]).unwrap() else {
        panic!("three flows fill the table")
    };
    assert_eq!(seq.len(), 4);
    assert!(seq[..3].iter().all(|m| model_path(&paths, m) == 2));
}

#[test]
fn paths_the_state_can_never_give_are_unsat() {
    // sbridge path 5: a p1 rule that floods; the init file has none and nothing writes
    // the map.
    let prog = load("sbridge");
    let paths = set(&prog);
    let p5 = paths.paths.iter().position(|p| p.id == 5).unwrap();
    assert_eq!(
        paths.solve(p5, Prefix::UpTo(5), Times::Free, &[]).unwrap(),
        Solved::Unsat
    );
    // p0's flood rule (ff:ff:ff:ff:ff:ff) is found.
    let p1 = paths.paths.iter().position(|p| p.id == 1).unwrap();
    let Solved::Sequence(seq) = paths.solve(p1, Prefix::Exactly(0), FIXED, &[]).unwrap() else {
        panic!("the broadcast rule floods")
    };
    assert_eq!(seq[0].field(PktField::EthDst), 0xffff_ffff_ffff);
}
