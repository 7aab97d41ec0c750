//! Human-readable renderings of an [`Analysis`]: a text report and Graphviz dot.

use super::report::*;
use std::fmt::Write;

fn list(v: &[usize]) -> String {
    let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    if s.is_empty() {
        "-".into()
    } else {
        s.join(", ")
    }
}

fn op_text(op: &OpInfo) -> String {
    let mut args = Vec::new();
    if let Some(k) = &op.key {
        args.push(k.clone());
    }
    if let Some(i) = &op.index {
        args.push(i.clone());
    }
    if let Some(a) = &op.arg {
        args.push(a.clone());
    }
    let mut s = format!("{}.{}({})", op.object, op.method, args.join(", "));
    if let Some(r) = &op.result {
        let _ = write!(s, " -> {r}");
    }
    let _ = write!(s, "  [{}, line {}]", op.access, op.line);
    if let Some(g) = &op.guard {
        let _ = write!(s, " only if {g}");
    }
    if op.implicit {
        s.push_str(" (implicit)");
    }
    s
}

fn tree_text(out: &mut String, t: &Tree, id: Option<usize>, indent: &str) {
    let mut cur = id;
    // Bounded walk: ids always grow along a path, but guard against malformed input.
    let mut steps = 0;
    while let Some(i) = cur {
        steps += 1;
        if steps > t.nodes.len() + 1 {
            break;
        }
        match t.nodes.get(i) {
            Some(TreeNode::Op { op, next, .. }) => {
                let _ = writeln!(out, "{indent}{}", op_text(op));
                cur = *next;
            }
            Some(TreeNode::Branch {
                what,
                cond,
                line,
                then,
                els,
                ..
            }) => {
                let _ = writeln!(out, "{indent}{what}: {cond}  [line {line}]");
                for (name, side) in [("then", then), ("else", els)] {
                    match side {
                        Some(n) => {
                            let _ = writeln!(out, "{indent}  {name}:");
                            tree_text(out, t, Some(*n), &format!("{indent}    "));
                        }
                        None => {
                            let _ = writeln!(out, "{indent}  {name}: infeasible (pruned)");
                        }
                    }
                }
                return;
            }
            Some(TreeNode::End { path, action, .. }) => {
                let _ = writeln!(out, "{indent}=> {action}  (path {path})");
                return;
            }
            None => return,
        }
    }
}

/// The text report printed by `maestro analyze`.
pub fn text(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "nf {}: {}", a.nf.name, a.nf.description);
    let devs: Vec<String> =
        a.nf.devices
            .iter()
            .map(|d| format!("{}={}", d.name, d.port))
            .collect();
    let _ = writeln!(o, "ports: {} ({})", a.nf.ports, devs.join(", "));
    let per: Vec<String> = a
        .summary
        .paths_per_port
        .iter()
        .map(|p| format!("{} {}", p.device, p.paths))
        .collect();
    let _ = writeln!(
        o,
        "paths: {} ({}); {} branch sides pruned as infeasible; {} writing, {} read-only; {} solver queries",
        a.summary.paths,
        per.join(", "),
        a.summary.pruned_branches,
        a.summary.writing_paths,
        a.summary.read_only_paths,
        a.summary.solver_queries
    );
    for pp in &a.ports {
        let _ = writeln!(
            o,
            "\n== execution tree: port {} ({}), {} paths",
            pp.port,
            pp.device,
            pp.paths.len()
        );
        tree_text(&mut o, &pp.tree, pp.tree.root, "  ");
    }
    let _ = writeln!(o, "\n== paths");
    for p in a.all_paths() {
        let classes: Vec<&str> = p.classes.iter().map(|c| c.name()).collect();
        let _ = writeln!(
            o,
            "path {} ({}): {}{}  [{}]",
            p.id,
            p.device,
            p.action,
            p.action_note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            if p.writes_state {
                "writes"
            } else {
                "read-only"
            }
        );
        if p.conditions.is_empty() {
            let _ = writeln!(o, "    when: always");
        }
        for c in &p.conditions {
            let _ = writeln!(o, "    when: {}  [line {}]", c.expr, c.line);
        }
        for op in &p.ops {
            let _ = writeln!(o, "    does: {}", op_text(op));
        }
        for w in &p.header_writes {
            let _ = writeln!(o, "    sets: {} = {}", w.field, w.value);
        }
        let _ = writeln!(o, "    classes: {}", classes.join(", "));
    }
    let _ = writeln!(o, "\n== state objects");
    if a.objects.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for ob in &a.objects {
        let _ = writeln!(
            o,
            "  {} ({}, line {}): {}; read at sites [{}], written at sites [{}]",
            ob.name,
            ob.kind,
            ob.line,
            if ob.read_only { "read-only" } else { "written" },
            list(&ob.reads),
            list(&ob.writes)
        );
    }
    let _ = writeln!(o, "\n== access sites");
    if a.sites.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for s in &a.sites {
        let keys: Vec<String> = s
            .keys
            .iter()
            .map(|k| {
                let mut t = k.form.clone();
                if let Some(e) = &k.expr {
                    let _ = write!(t, " {e}");
                }
                if let Some(v) = &k.via {
                    let _ = write!(t, " (via {v})");
                }
                t
            })
            .collect();
        let _ = writeln!(
            o,
            "  #{} {} {} {} line {}: {}; paths {}",
            s.id,
            s.device,
            s.label,
            s.access,
            s.line,
            keys.join(" | "),
            list(&s.paths)
        );
    }
    let _ = writeln!(o, "\n== packet classes");
    for c in &a.classes {
        if c.paths.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "  {} {}: paths {}; {}",
            c.device,
            c.class.name(),
            list(&c.paths),
            if c.touches_state {
                format!("reaches {}", c.objects.join(", "))
            } else {
                "touches no state".to_string()
            }
        );
    }
    if !a.r5.is_empty() {
        let _ = writeln!(o, "\n== R5 (allocator indexes read from packets)");
        for r in &a.r5 {
            let _ = writeln!(
                o,
                "  {} on {}, index {}: {}: {}",
                r.object,
                r.device,
                r.index,
                if r.accepted { "accepted" } else { "rejected" },
                r.reason
            );
        }
    }
    let _ = writeln!(o, "\n== sharding constraints");
    if a.constraints.pairs.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for pc in &a.constraints.pairs {
        let eqs: Vec<String> = pc
            .equalities
            .iter()
            .map(|e| format!("p1.{} == p2.{}", e.p1, e.p2))
            .collect();
        let src: Vec<String> = pc
            .sources
            .iter()
            .map(|s| {
                let l = |v: &[u32]| {
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!("{} lines {} x {}", s.object, l(&s.lines[0]), l(&s.lines[1]))
            })
            .collect();
        let _ = writeln!(
            o,
            "  p1 on {} x p2 on {}: {}  (from {})",
            pc.devices[0],
            pc.devices[1],
            eqs.join(" && "),
            src.join("; ")
        );
    }
    for f in &a.constraints.fields {
        let _ = writeln!(
            o,
            "  {} hash may use: {}; for every class reaching state: {}; RSS types: {}",
            f.device,
            if f.fields.is_empty() {
                "nothing".into()
            } else {
                f.fields.join(", ")
            },
            if f.all_classes_fields.is_empty() {
                "nothing".into()
            } else {
                f.all_classes_fields.join(", ")
            },
            f.rss_types.join(", ")
        );
    }
    for s in &a.constraints.subsumed {
        let _ = writeln!(o, "  {s}");
    }
    let _ = writeln!(o, "\n== verdict");
    let _ = writeln!(
        o,
        "  {}{}",
        a.verdict.strategy,
        a.verdict
            .rule
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    let _ = writeln!(o, "  {}", a.verdict.summary);
    for ov in &a.verdict.objects {
        let _ = writeln!(
            o,
            "  object {}: {}{}: {}",
            ov.object,
            ov.strategy,
            ov.rule
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            ov.reason
        );
        for s in &ov.sites {
            let _ = writeln!(
                o,
                "      site #{} {} on {} (line {})",
                s.site, s.label, s.device, s.line
            );
        }
    }
    if let Some(h) = &a.verdict.hybrid {
        let _ = writeln!(o, "  hybrid: {h}");
    }
    for c in &a.verdict.class_caveats {
        let _ = writeln!(
            o,
            "  class {} on {} ({}): {}",
            c.class.name(),
            c.device,
            c.status,
            c.explanation
        );
    }
    let _ = writeln!(o, "\n== notes");
    for n in &a.notes {
        let _ = writeln!(o, "  - {n}");
    }
    o
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// The execution trees as one Graphviz digraph: a cluster per input port; branches are
/// diamonds, state operations boxes (writes bold), path ends ellipses; an infeasible side
/// is a dashed edge to a point.
pub fn dot(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "digraph \"{}\" {{", esc(&a.nf.name));
    let _ = writeln!(o, "  rankdir=TB;");
    let _ = writeln!(o, "  node [fontname=\"monospace\", fontsize=10];");
    let _ = writeln!(o, "  edge [fontname=\"monospace\", fontsize=9];");
    for pp in &a.ports {
        let p = pp.port;
        let _ = writeln!(o, "  subgraph cluster_p{p} {{");
        let _ = writeln!(
            o,
            "    label=\"port {p} ({}): {} paths\";",
            esc(&pp.device),
            pp.paths.len()
        );
        for n in &pp.tree.nodes {
            match n {
                TreeNode::Branch {
                    id,
                    what,
                    cond,
                    line,
                    then,
                    els,
                } => {
                    let _ = writeln!(
                        o,
                        "    p{p}_n{id} [shape=diamond, label=\"{}: {}\\nline {line}\"];",
                        esc(what),
                        esc(cond)
                    );
                    for (name, side) in [("true", then), ("false", els)] {
                        match side {
                            Some(t) => {
                                let _ =
                                    writeln!(o, "    p{p}_n{id} -> p{p}_n{t} [label=\"{name}\"];");
                            }
                            None => {
                                let _ = writeln!(
                                    o,
                                    "    p{p}_n{id}_{name} [shape=point];\n    p{p}_n{id} -> p{p}_n{id}_{name} [style=dashed, label=\"{name} (infeasible)\"];"
                                );
                            }
                        }
                    }
                }
                TreeNode::Op { id, op, next } => {
                    let style = if op.access == "write" {
                        ", style=bold"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        o,
                        "    p{p}_n{id} [shape=box{style}, label=\"{}\"];",
                        esc(&op_text(op))
                    );
                    if let Some(t) = next {
                        let _ = writeln!(o, "    p{p}_n{id} -> p{p}_n{t};");
                    }
                }
                TreeNode::End { id, path, action } => {
                    let _ = writeln!(
                        o,
                        "    p{p}_n{id} [shape=ellipse, label=\"path {path}\\n{}\"];",
                        esc(action)
                    );
                }
            }
        }
        if let Some(r) = pp.tree.root {
            let _ = writeln!(
                o,
                "    p{p}_start [shape=plaintext, label=\"in = {}\"];\n    p{p}_start -> p{p}_n{r};",
                esc(&pp.device)
            );
        }
        let _ = writeln!(o, "  }}");
    }
    let _ = writeln!(o, "}}");
    o
}
