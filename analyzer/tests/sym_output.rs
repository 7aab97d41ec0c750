//! The analysis as JSON (stable, round-trips), as Graphviz dot and as text.

use maestro_analyzer::sym::render;
use maestro_analyzer::sym::report::{Analysis, TreeNode, SCHEMA, VERSION};
use maestro_analyzer::{analyze, load_nf};
use std::collections::HashSet;
use std::path::PathBuf;

const NFS: [&str; 9] = [
    "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
];

fn nf(name: &str) -> Analysis {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfs")
        .join(name);
    let prog = load_nf(&dir, &[]).expect("NF loads");
    analyze(&prog).expect("NF analyses")
}

#[test]
fn json_round_trips_and_is_stable() {
    for name in NFS {
        let a = nf(name);
        let json = a.to_json();
        let back = Analysis::from_json(&json).expect("parses back");
        assert_eq!(back, a, "{name}");
        // A second analysis gives the same bytes.
        assert_eq!(nf(name).to_json(), json, "{name}");
    }
}

#[test]
fn json_has_the_documented_top_level_shape() {
    let a = nf("fw");
    let v: serde_json::Value = serde_json::from_str(&a.to_json()).expect("json");
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(v["version"], VERSION);
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut want = vec![
        "schema",
        "version",
        "nf",
        "summary",
        "ports",
        "objects",
        "sites",
        "classes",
        "r5",
        "constraints",
        "verdict",
        "notes",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(v["verdict"]["strategy"], "shared-nothing");
    assert_eq!(v["constraints"]["pairs"][1]["devices"][0], "lan");
    assert_eq!(v["constraints"]["pairs"][1]["devices"][1], "wan");
    assert_eq!(
        v["constraints"]["pairs"][1]["equalities"][0]["p1"],
        "pkt.ip.src"
    );
    assert_eq!(
        v["constraints"]["pairs"][1]["equalities"][0]["p2"],
        "pkt.ip.dst"
    );
    // Tree nodes are tagged; a pruned side is null.
    let pol: serde_json::Value = serde_json::from_str(&nf("pol").to_json()).expect("json");
    let nodes = pol["ports"][0]["tree"]["nodes"].as_array().expect("nodes");
    assert!(nodes
        .iter()
        .any(|n| n["kind"] == "branch" && (n["then"].is_null() || n["else"].is_null())));
    assert!(nodes.iter().any(|n| n["kind"] == "op"));
    assert!(nodes.iter().any(|n| n["kind"] == "end"));
}

#[test]
fn trees_and_paths_agree() {
    for name in NFS {
        let a = nf(name);
        for pp in &a.ports {
            let ends: Vec<usize> = pp
                .tree
                .nodes
                .iter()
                .filter_map(|n| match n {
                    TreeNode::End { path, .. } => Some(*path),
                    _ => None,
                })
                .collect();
            let ids: Vec<usize> = pp.paths.iter().map(|p| p.id).collect();
            assert_eq!(ends, ids, "{name} port {}", pp.port);
            assert!(pp.tree.root.is_some());
        }
    }
}

#[test]
fn dot_is_well_formed() {
    for name in NFS {
        let a = nf(name);
        let dot = render::dot(&a);
        assert!(dot.starts_with("digraph \""), "{name}");
        assert!(dot.trim_end().ends_with('}'), "{name}");
        let opens = dot.matches('{').count();
        let closes = dot.matches('}').count();
        assert_eq!(opens, closes, "{name}: braces");
        assert_eq!(
            dot.matches("subgraph cluster_p").count(),
            a.ports.len(),
            "{name}: one cluster per port"
        );
        // Every edge joins declared nodes (labels may contain `->`: look at the tokens).
        let mut declared = HashSet::new();
        let mut edges = Vec::new();
        for line in dot.lines() {
            let mut tokens = line.split_whitespace();
            let (Some(first), Some(second)) = (tokens.next(), tokens.next()) else {
                continue;
            };
            if second.starts_with('[') {
                declared.insert(first.to_string());
            } else if second == "->" {
                let to = tokens.next().unwrap_or("").trim_end_matches(';');
                edges.push((first.to_string(), to.to_string()));
            }
        }
        assert!(!edges.is_empty(), "{name}");
        for (from, to) in &edges {
            assert!(declared.contains(from), "{name}: {from}");
            assert!(declared.contains(to), "{name}: {to}");
        }
        // Quotes inside labels are escaped: every line has an even number of bare quotes.
        for line in dot.lines() {
            let bare = line.replace("\\\"", "").matches('"').count();
            assert_eq!(bare % 2, 0, "{name}: {line}");
        }
        let ends = dot.matches("shape=ellipse").count();
        assert_eq!(ends, a.summary.paths, "{name}: one end per path");
    }
}

#[test]
fn text_report_has_every_section() {
    let t = render::text(&nf("nat"));
    for s in [
        "== execution tree",
        "== paths",
        "== state objects",
        "== access sites",
        "== packet classes",
        "== R5",
        "== sharding constraints",
        "== verdict",
        "== notes",
    ] {
        assert!(t.contains(s), "missing {s}");
    }
    assert!(t.contains("shared-nothing"));
}
