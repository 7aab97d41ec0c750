//! Path coverage of the library NFs: generated traffic reaches every feasible path of the
//! symbolic model (or the test names the paths it cannot reach and why), and the
//! interpreter's traced paths agree with the analyzer's.

use maestro_analyzer::{analyze, load_nf, Analysis, NfProgram, PathSet};
use maestro_equivalence::paths::{
    coverage, frame_of, path_traffic, traffic_coverage, PathsError, UncoveredKind,
};
use maestro_interpreter::{InputPacket, InterpOptions, Interpreter};
use maestro_nfs::testkit::{seen, Flow};
use maestro_nfs::{nf_dir, ALL};

fn load(name: &str) -> (NfProgram, Analysis) {
    let prog = load_nf(&nf_dir(name), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let analysis = analyze(&prog).unwrap_or_else(|e| panic!("{name}: {e}"));
    (prog, analysis)
}

/// Feasible paths per NF as `maestro analyze` reports them, and the paths no traffic can
/// reach (all proved unreachable in the bounded state model):
/// - sbridge 5, 6: a rule on port p1 that floods (-1) or filters (-2); `rules.txt` has
///   none, and nothing writes the map at run time.
/// - lb 4, 6, 9: a backend whose `nic` is WAN; backends are only added by heartbeats,
///   which arrive from a non-WAN port and store `nic: in`.
const EXPECTED: [(&str, usize, &[usize]); 9] = [
    ("nop", 2, &[]),
    ("sbridge", 8, &[5, 6]),
    ("bridge", 8, &[]),
    ("pol", 8, &[]),
    ("fw", 6, &[]),
    ("nat", 8, &[]),
    ("lb", 12, &[4, 6, 9]),
    ("cl", 7, &[]),
    ("psd", 8, &[]),
];

#[test]
fn generated_traffic_covers_every_reachable_path_of_every_library_nf() {
    assert_eq!(EXPECTED.len(), ALL.len());
    for (name, paths, unreachable) in EXPECTED {
        let (prog, analysis) = load(name);
        assert_eq!(analysis.summary.paths, paths, "{name}: path count");
        let report = path_traffic(&prog, &analysis, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.feasible.len(), paths, "{name}");
        let missing: Vec<usize> = report.uncovered.iter().map(|u| u.path.id).collect();
        assert_eq!(missing, unreachable, "{name}: {:#?}", report.uncovered);
        for u in &report.uncovered {
            assert_eq!(u.kind, UncoveredKind::Unreachable, "{name}: {}", u.reason);
            assert!(u.reason.starts_with("unreachable: "), "{}", u.reason);
            assert!(u.reason.contains("The path assumes: "), "{}", u.reason);
        }
        assert_eq!(report.traffic.len() + missing.len(), paths, "{name}");
        // Replayed independently, each sequence ends on its path and together they
        // cover every path but the unreachable ones; no packet falls outside the model.
        let cov = traffic_coverage(&prog, &analysis, &report).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cov.unmatched, 0, "{name}: {:?}", cov.first_unmatched);
        let uncovered: Vec<usize> = cov.uncovered.iter().map(|(p, _)| p.id).collect();
        assert_eq!(uncovered, unreachable, "{name}: {:#?}", cov.uncovered);
        assert_eq!(
            cov.covered(),
            paths - unreachable.len(),
            "{}",
            cov.summary()
        );
        for t in &report.traffic {
            assert!(!t.packets.is_empty(), "{name} path {}", t.path);
            assert!(
                t.packets.windows(2).all(|w| w[0].time_ns <= w[1].time_ns),
                "{name} path {}: time goes backwards",
                t.path
            );
            if !t.overrides.is_empty() {
                assert!(t.note.contains("default"), "{name}: {}", t.note);
            }
        }
    }
}

#[test]
fn sequences_that_need_state_are_built_from_the_writes_they_need() {
    let (prog, analysis) = load("fw");
    let report = path_traffic(&prog, &analysis, 1).unwrap_or_else(|e| panic!("{e}"));
    let set = PathSet::enumerate(&prog, &Default::default()).unwrap();
    // fw path 4 is the WAN reply that hits a LAN flow: its sequence is a LAN packet
    // opening the flow, then the reply with the 5-tuple reversed.
    let wan_hit = set.paths.iter().find(|p| p.id == 4).unwrap();
    assert!(wan_hit
        .assumes
        .iter()
        .any(|a| a.starts_with("flows.get@30.hit")));
    let t = report.traffic.iter().find(|t| t.path == 4).unwrap();
    assert!(t.overrides.is_empty());
    let [lan, reply] = &t.packets[..] else {
        panic!("two packets expected: {t:?}")
    };
    assert_eq!((lan.port, reply.port), (0, 1));
    let (a, b) = (seen(&lan.data), seen(&reply.data));
    assert_eq!(
        (a.src, a.dst, a.sport, a.dport),
        (b.dst, b.src, b.dport, b.sport)
    );
    // The reply is forwarded to the LAN port the flow came from.
    let mut interp = Interpreter::new(&prog, InterpOptions::default()).unwrap();
    interp.process(lan);
    assert!(interp.process(reply).bytes().is_some());

    // Table-full paths come with small capacities and say so.
    let (nat, nat_analysis) = load("nat");
    let report = path_traffic(&nat, &nat_analysis, 1).unwrap_or_else(|e| panic!("{e}"));
    let full = report.traffic.iter().find(|t| t.path == 3).unwrap();
    assert_eq!(
        full.overrides,
        vec![("max_flows".to_string(), "3".to_string())]
    );
    assert_eq!(
        full.packets.len(),
        4,
        "three flows fill the table: {full:?}"
    );
    assert!(
        full.note.contains("max_flows=3 (default 65536)"),
        "{}",
        full.note
    );
}

#[test]
fn interpreter_trace_of_a_hand_built_wan_hit_is_the_analyzer_path() {
    let (prog, analysis) = load("fw");
    let set = PathSet::enumerate(&prog, &Default::default()).unwrap();
    let flow = Flow::new([10, 0, 0, 1], 5000, [192, 0, 2, 80], 80);
    let mut interp = Interpreter::new(&prog, InterpOptions::default()).unwrap();
    let (_, lan) = interp.process_traced(&InputPacket {
        port: 0,
        time_ns: 1,
        data: flow.udp(8),
    });
    let (obs, wan) = interp.process_traced(&InputPacket {
        port: 1,
        time_ns: 2,
        data: flow.reversed().udp(8),
    });
    assert!(obs.bytes().is_some());
    let lan_path = &set.paths[set.classify(&lan).expect("LAN packet on a feasible path")];
    let wan_path = &set.paths[set.classify(&wan).expect("WAN reply on a feasible path")];
    assert_eq!(lan_path.id, 2, "a new LAN flow: {lan_path:?}");
    assert_eq!(wan_path.id, 4, "the WAN hit: {wan_path:?}");
    // The same path as `maestro analyze` describes it.
    let info = analysis.ports[1].paths.iter().find(|p| p.id == 4).unwrap();
    assert_eq!(info.action_line, wan_path.action_line);
    assert_eq!(
        info.conditions
            .iter()
            .map(|c| c.expr.clone())
            .collect::<Vec<_>>(),
        wan_path
            .signature
            .steps
            .iter()
            .map(|s| s.cond.clone())
            .collect::<Vec<_>>()
    );
    // Every forked decision of the analyzer's signature is in the trace; the trace also
    // holds the folded `in == wan` decision, which the analyzer does not list.
    for s in &wan_path.signature.steps {
        assert!(wan.decisions.contains(&s.decision), "{s:?} not in {wan:?}");
    }
    assert_eq!(wan.decisions.len(), wan_path.signature.steps.len() + 1);
    assert_eq!(wan.action, wan_path.signature.action);
}

#[test]
fn coverage_of_a_trace_lists_what_it_misses() {
    let (prog, analysis) = load("fw");
    let flow = Flow::new([10, 0, 0, 1], 5000, [192, 0, 2, 80], 80);
    let packets: Vec<InputPacket> = (0..3)
        .map(|i| InputPacket {
            port: 0,
            time_ns: i,
            data: flow.udp(8),
        })
        .collect();
    let cov = coverage(&prog, &analysis, &packets).unwrap();
    // One miss that adds the flow, then two hits; nothing from WAN, nothing unparsable.
    assert_eq!(cov.hit, vec![2, 1, 0, 0, 0, 0]);
    assert_eq!(cov.covered(), 2);
    let missing: Vec<usize> = cov.uncovered.iter().map(|(p, _)| p.id).collect();
    assert_eq!(missing, vec![3, 4, 5, 6]);
    assert_eq!(cov.unmatched, 0);
    assert_eq!(cov.summary(), "fw: 2/6 feasible paths (33.3%)");
}

#[test]
fn an_analysis_of_another_program_is_refused() {
    let (fw, _) = load("fw");
    let (_, nat_analysis) = load("nat");
    match coverage(&fw, &nat_analysis, &[]) {
        Err(PathsError::Mismatch { nf, what }) => {
            assert_eq!(nf, "fw");
            assert!(what.contains("paths"), "{what}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn frames_of_models_parse_with_valid_checksums() {
    let (prog, analysis) = load("nat");
    let report = path_traffic(&prog, &analysis, 3).unwrap();
    let set = PathSet::enumerate(&prog, &Default::default()).unwrap();
    for t in &report.traffic {
        let last = t.packets.last().unwrap();
        let info = set.paths.iter().find(|p| p.id == t.path).unwrap();
        if info.conditions.iter().any(|c| c.starts_with("parse.l4")) {
            // `seen` parses the frame and asserts both checksums.
            seen(&last.data);
        }
        assert!(last.data.len() >= 60);
    }
    // A model turned into a frame keeps its fields.
    let tv = set.paths.iter().position(|p| p.id == 7).unwrap();
    let solved = set
        .solve(
            tv,
            maestro_analyzer::sym::paths::Prefix::Exactly(1),
            maestro_analyzer::sym::paths::Times::Free,
            &[],
        )
        .unwrap();
    let maestro_analyzer::sym::paths::Solved::Sequence(models) = solved else {
        panic!("nat path 7 needs one earlier packet: {solved:?}")
    };
    for m in &models {
        let f = seen(&frame_of(m));
        use maestro_analyzer::PktField::*;
        assert_eq!(u32::from(f.src) as u64, m.field(IpSrc));
        assert_eq!(u32::from(f.dst) as u64, m.field(IpDst));
        assert_eq!(f.sport as u64, m.field(L4Sport));
        assert_eq!(f.dport as u64, m.field(L4Dport));
    }
}
