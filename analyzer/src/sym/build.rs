//! Turns the internal results (terms, spans, ids) into the plain [`Analysis`] report.

use super::access::{AccessModel, KeyForm, Site};
use super::classes::PacketClass;
use super::exec::{Access, CondKind, Op, Outcome, PortExec, RawNode, RawPath};
use super::report::*;
use super::shard::{eqs_text, EqSet, FieldSet, Fixpoint, ObjStatus, ShardResult};
use super::term::{PktFieldOrd, SymVal, Term};
use crate::lang::ir::{Method, NfProgram, StateId};
use std::collections::{BTreeMap, BTreeSet};

/// The device name(s) of a port (`lan`, `lan/wan` when both are bound to it, `port 3`).
pub fn device_name(prog: &NfProgram, port: u16) -> String {
    super::report::device_label(prog.devices.iter().map(|d| (d.name.as_str(), d.port)), port)
}

fn is_expiry(m: Method) -> bool {
    matches!(
        m,
        Method::TableExpire | Method::DChainExpire | Method::SketchExpire
    )
}

fn state_name(prog: &NfProgram, s: StateId) -> String {
    prog.states
        .get(s.0 as usize)
        .map(|d| d.name.clone())
        .unwrap_or_default()
}

fn access_name(a: Access) -> String {
    match a {
        Access::Read => "read".into(),
        Access::Write => "write".into(),
    }
}

fn op_info(prog: &NfProgram, op: &Op) -> OpInfo {
    let (line, col) = prog.line_col(op.span);
    let show = |v: &SymVal| v.show(&prog.records);
    let result = match (&op.ok, &op.result) {
        (Some(ok), Some(v)) => Some(format!("{ok} ? {}", show(v))),
        (Some(ok), None) => Some(ok.to_string()),
        (None, Some(v)) => Some(show(v)),
        (None, None) => None,
    };
    OpInfo {
        label: op.label.clone(),
        object: state_name(prog, op.state),
        method: op.method.name().to_string(),
        access: access_name(op.access),
        line,
        col,
        key: op.key.as_ref().map(show),
        index: op.index.as_ref().map(|t| t.to_string()),
        arg: op.arg.as_ref().map(show),
        result,
        guard: op.guard.as_ref().map(|t| t.to_string()),
        implicit: op.implicit,
    }
}

fn action_text(prog: &NfProgram, o: &Outcome) -> String {
    match o {
        Outcome::Drop => "drop".into(),
        Outcome::Flood => "flood".into(),
        Outcome::Forward(t) => match t.as_const() {
            Some(p) => format!("forward({})", device_name(prog, p as u16)),
            None => format!("forward({t})"),
        },
    }
}

fn path_info(prog: &NfProgram, id: usize, p: &RawPath) -> PathInfo {
    let conditions = p
        .conds
        .iter()
        .filter(|c| c.kind != CondKind::Fact)
        .map(|c| CondInfo {
            expr: c.term.to_string(),
            line: prog.line_col(c.span).0,
            kind: match c.kind {
                CondKind::If => "if",
                CondKind::IfLet => "if-let",
                CondKind::Parse(_) => "parse",
                CondKind::Fact => "fact",
            }
            .to_string(),
        })
        .collect();
    PathInfo {
        id,
        port: p.port,
        device: device_name(prog, p.port),
        conditions,
        ops: p.ops.iter().map(|o| op_info(prog, o)).collect(),
        header_writes: p
            .writes
            .iter()
            .map(|(f, t)| HeaderWrite {
                field: f.path().to_string(),
                value: t.to_string(),
            })
            .collect(),
        action: action_text(prog, &p.outcome),
        action_line: prog.line_col(p.action_span).0,
        action_note: p.outcome_note.clone(),
        writes_state: p
            .ops
            .iter()
            .any(|o| o.access == Access::Write && !is_expiry(o.method)),
        expires: p.ops.iter().any(|o| is_expiry(o.method)),
        classes: p.classes.clone(),
    }
}

fn tree(prog: &NfProgram, px: &PortExec, ids: &[usize]) -> Tree {
    let nodes = px
        .nodes
        .iter()
        .enumerate()
        .map(|(id, n)| match n {
            RawNode::Branch {
                cond,
                span,
                what,
                yes,
                no,
            } => TreeNode::Branch {
                id,
                what: what.to_string(),
                cond: cond.to_string(),
                line: prog.line_col(*span).0,
                then: *yes,
                els: *no,
            },
            RawNode::Op { op, next } => TreeNode::Op {
                id,
                op: op_info(prog, op),
                next: *next,
            },
            RawNode::End { path } => TreeNode::End {
                id,
                path: ids.get(*path).copied().unwrap_or(0),
                action: px
                    .paths
                    .get(*path)
                    .map(|p| action_text(prog, &p.outcome))
                    .unwrap_or_default(),
            },
        })
        .collect();
    Tree {
        root: px.root,
        nodes,
    }
}

fn component(name: &str, t: &Term) -> ComponentInfo {
    let form = if t.as_const().is_some() {
        "const"
    } else if t.as_packet_field().is_some() {
        "field"
    } else if !t.other_syms().is_empty() {
        "state"
    } else {
        "derived"
    };
    ComponentInfo {
        name: name.to_string(),
        expr: t.to_string(),
        form: form.to_string(),
        fields: t
            .packet_fields()
            .iter()
            .map(|f| f.0.path().to_string())
            .collect(),
    }
}

fn key_info(f: &KeyForm) -> KeyInfo {
    let mut k = KeyInfo {
        form: f.name().to_string(),
        expr: None,
        components: Vec::new(),
        via: None,
    };
    match f {
        KeyForm::Key { leaves, via } => {
            k.expr = Some(if leaves.len() == 1 && leaves[0].0.is_empty() {
                leaves[0].1.to_string()
            } else {
                let parts: Vec<String> = leaves.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                format!("{{ {} }}", parts.join(", "))
            });
            k.components = leaves.iter().map(|(n, t)| component(n, t)).collect();
            k.via = via.clone();
        }
        KeyForm::PacketIndex { index } => k.expr = Some(index.to_string()),
        KeyForm::StateIndex { index, from } => {
            k.expr = Some(index.to_string());
            k.via = Some(from.clone());
        }
        KeyForm::FreshIndex { from } => k.via = Some(from.clone()),
        KeyForm::Global { reason } => k.expr = Some(reason.clone()),
        KeyForm::Expiry | KeyForm::Allocation | KeyForm::Aggregate => {}
    }
    k
}

fn site_info(prog: &NfProgram, s: &Site) -> SiteInfo {
    let (line, col) = prog.line_col(s.span);
    SiteInfo {
        id: s.id,
        port: s.port,
        device: device_name(prog, s.port),
        object: state_name(prog, s.state),
        method: s.method.name().to_string(),
        label: s.label.clone(),
        access: access_name(s.access),
        line,
        col,
        keys: s.forms.iter().map(key_info).collect(),
        paths: s.paths.clone(),
        classes: s.classes.iter().copied().collect(),
        implicit: s.implicit,
    }
}

fn site_ref(prog: &NfProgram, model: &AccessModel, id: usize) -> Option<SiteRef> {
    let s = model.sites.get(id.wrapping_sub(1))?;
    Some(SiteRef {
        site: id,
        label: s.label.clone(),
        device: device_name(prog, s.port),
        line: prog.line_col(s.span).0,
    })
}

fn fields_vec(set: &FieldSet) -> Vec<String> {
    set.iter().map(|f| f.0.path().to_string()).collect()
}

fn fields_words(set: &FieldSet) -> String {
    let v = fields_vec(set);
    if v.is_empty() {
        "no field".into()
    } else {
        format!("({})", v.join(", "))
    }
}

fn port_fields(
    prog: &NfProgram,
    fp: &BTreeMap<u16, FieldSet>,
    all: Option<&Fixpoint>,
    shard: Option<&ShardResult>,
) -> Vec<PortFields> {
    fp.iter()
        .map(|(p, set)| {
            let rss_types: BTreeSet<&str> = shard
                .map(|s| {
                    s.class_reach
                        .keys()
                        .filter(|(port, _)| port == p)
                        .filter_map(|(_, c)| c.rss_type())
                        .collect()
                })
                .unwrap_or_default();
            PortFields {
                port: *p,
                device: device_name(prog, *p),
                fields: fields_vec(set),
                all_classes_fields: all
                    .and_then(|a| a.fields.get(p))
                    .map(fields_vec)
                    .unwrap_or_else(|| fields_vec(set)),
                rss_types: rss_types.into_iter().map(String::from).collect(),
            }
        })
        .collect()
}

fn restrict(eqs: &EqSet, fields: &BTreeMap<u16, FieldSet>, pa: u16, pb: u16) -> EqSet {
    let empty = FieldSet::new();
    let a = fields.get(&pa).unwrap_or(&empty);
    let b = fields.get(&pb).unwrap_or(&empty);
    eqs.iter()
        .filter(|(f, g)| a.contains(f) && b.contains(g))
        .copied()
        .collect()
}

fn field_eqs(eqs: &EqSet) -> Vec<FieldEq> {
    eqs.iter()
        .map(|(f, g)| FieldEq {
            p1: f.0.path().to_string(),
            p2: g.0.path().to_string(),
        })
        .collect()
}

/// Puts the report together.
pub fn build(
    prog: &NfProgram,
    ports: &[PortExec],
    model: &AccessModel,
    shard: &ShardResult,
    queries: u64,
) -> Analysis {
    let dev = |p: u16| device_name(prog, p);
    // Paths and trees.
    let mut port_paths = Vec::new();
    let mut pruned = 0;
    for (pi, px) in ports.iter().enumerate() {
        let ids = model.path_ids.get(pi).cloned().unwrap_or_default();
        pruned += px.pruned;
        port_paths.push(PortPaths {
            port: px.port,
            device: dev(px.port),
            paths: px
                .paths
                .iter()
                .enumerate()
                .map(|(k, p)| path_info(prog, ids.get(k).copied().unwrap_or(0), p))
                .collect(),
            tree: tree(prog, px, &ids),
        });
    }
    let all_paths: Vec<&PathInfo> = port_paths.iter().flat_map(|p| p.paths.iter()).collect();
    let writing = all_paths.iter().filter(|p| p.writes_state).count();
    let summary = Summary {
        paths: all_paths.len(),
        paths_per_port: port_paths
            .iter()
            .map(|p| PortCount {
                port: p.port,
                device: p.device.clone(),
                paths: p.paths.len(),
            })
            .collect(),
        pruned_branches: pruned,
        writing_paths: writing,
        read_only_paths: all_paths.len() - writing,
        solver_queries: queries,
    };
    // Objects and sites.
    let objects: Vec<ObjectInfo> = prog
        .states
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let s = StateId(i as u32);
            let mine: Vec<&Site> = model.sites.iter().filter(|x| x.state == s).collect();
            ObjectInfo {
                name: d.name.clone(),
                kind: d.kind.kind_name().to_string(),
                line: prog.line_col(d.span).0,
                read_only: !mine.iter().any(|x| x.is_write()),
                reads: mine
                    .iter()
                    .filter(|x| x.access == Access::Read)
                    .map(|x| x.id)
                    .collect(),
                writes: mine
                    .iter()
                    .filter(|x| x.access == Access::Write)
                    .map(|x| x.id)
                    .collect(),
            }
        })
        .collect();
    let sites: Vec<SiteInfo> = model.sites.iter().map(|s| site_info(prog, s)).collect();
    // Classes.
    let mut classes = Vec::new();
    for pp in &port_paths {
        for class in PacketClass::ALL {
            let paths: Vec<&PathInfo> = pp
                .paths
                .iter()
                .filter(|p| p.classes.contains(&class))
                .collect();
            let mut objs: BTreeSet<String> = BTreeSet::new();
            for p in &paths {
                for o in &p.ops {
                    if o.method != "expire" {
                        objs.insert(o.object.clone());
                    }
                }
            }
            classes.push(ClassInfo {
                port: pp.port,
                device: pp.device.clone(),
                class,
                paths: paths.iter().map(|p| p.id).collect(),
                touches_state: !objs.is_empty(),
                objects: objs.into_iter().collect(),
            });
        }
    }
    // R5.
    let r5 = shard
        .r5
        .iter()
        .map(|r| R5Check {
            object: state_name(prog, r.object),
            port: r.port,
            device: dev(r.port),
            index: r.index.clone(),
            guard_line: r.guard_line,
            accepted: r.accepted,
            miss_paths: r.miss_paths.clone(),
            silent_paths: r.silent_paths.clone(),
            use_paths: r.use_paths.clone(),
            compared: r
                .compared
                .iter()
                .map(|(c, f)| Compared {
                    component: c.clone(),
                    field: f.path().to_string(),
                })
                .collect(),
            reason: r.reason.clone(),
        })
        .collect();
    // Constraints of the shardable objects, restricted to the joint fields (R2).
    let shardable: BTreeSet<StateId> = shard
        .objects
        .iter()
        .filter(|o| o.status == ObjStatus::Shardable)
        .map(|o| o.state)
        .collect();
    let fields = &shard.joint.fields;
    let mut by_pair: BTreeMap<[u16; 2], Vec<(usize, EqSet)>> = BTreeMap::new();
    for (ci, c) in shard.constraints.iter().enumerate() {
        if !shardable.contains(&c.object) {
            continue;
        }
        let r = restrict(&c.eqs, fields, c.ports[0], c.ports[1]);
        by_pair.entry(c.ports).or_default().push((ci, r));
    }
    let keyed_sites = |k: usize| -> Vec<usize> {
        shard
            .keyed
            .get(k)
            .map(|x| x.sites.clone())
            .unwrap_or_default()
    };
    let labels = |sites: &[usize]| -> String {
        let v: Vec<String> = sites
            .iter()
            .filter_map(|&s| model.sites.get(s.wrapping_sub(1)))
            .map(|s| format!("`{}`", s.label))
            .collect();
        v.join("/")
    };
    let mut pairs = Vec::new();
    let mut subsumed = Vec::new();
    for (ports_pair, list) in &by_pair {
        // Minimal equality sets: a constraint whose set contains another's is implied.
        let mut minimal: Vec<EqSet> = Vec::new();
        for (_, r) in list {
            if r.is_empty() {
                continue;
            }
            if list
                .iter()
                .any(|(_, o)| !o.is_empty() && o != r && o.is_subset(r))
            {
                continue;
            }
            if !minimal.contains(r) {
                minimal.push(r.clone());
            }
        }
        for m in &minimal {
            let mut req_sources = Vec::new();
            for (ci, r) in list {
                if r != m {
                    continue;
                }
                let c = &shard.constraints[*ci];
                let sa = keyed_sites(c.keyed[0]);
                let sb = keyed_sites(c.keyed[1]);
                let lines = |v: &[usize]| -> Vec<u32> {
                    let mut l: Vec<u32> = v
                        .iter()
                        .filter_map(|&s| model.sites.get(s.wrapping_sub(1)))
                        .map(|s| prog.line_col(s.span).0)
                        .collect();
                    l.sort();
                    l.dedup();
                    l
                };
                req_sources.push(ConstraintSource {
                    object: state_name(prog, c.object),
                    lines: [lines(&sa), lines(&sb)],
                    sites: [sa, sb],
                    equalities: field_eqs(&c.eqs),
                    unhashable: c.unhashable.clone(),
                });
            }
            pairs.push(PairConstraint {
                ports: *ports_pair,
                devices: [dev(ports_pair[0]), dev(ports_pair[1])],
                equalities: field_eqs(m),
                sources: req_sources,
            });
        }
        for (ci, r) in list {
            let c = &shard.constraints[*ci];
            if r == &c.eqs || r.is_empty() {
                continue;
            }
            let sa = keyed_sites(c.keyed[0]);
            let sb = keyed_sites(c.keyed[1]);
            let who = if c.keyed[0] == c.keyed[1] {
                format!("two packets at {}", labels(&sa))
            } else {
                format!("{} and {}", labels(&sa), labels(&sb))
            };
            subsumed.push(format!(
                "R2: {who} (`{}`) share an entry when {}; the coarser {} that the other accesses allow subsumes it: co-locating by the coarser key also co-locates the finer one",
                state_name(prog, c.object),
                eqs_text(&c.eqs),
                eqs_text(r),
            ));
        }
    }
    let constraints = Constraints {
        pairs,
        fields: port_fields(prog, fields, Some(&shard.all_classes), Some(shard)),
        subsumed,
    };
    let verdict = verdict(prog, model, shard, &constraints);
    let mut notes = vec![
        "Configs and the input port are concrete (branches on them fold away); packet fields, `now`, parse outcomes and state-call results are symbols.".to_string(),
        "Each state call returns fresh symbols (a hit flag, an index below the capacity, a value per field); a path may need a state history that cannot occur, but no feasible path is missed.".to_string(),
        "Expiry (`expire`) is ignored for sharding, as in Maestro: each core expires its own entries.".to_string(),
        "Fragments: the parser does not recognise them, so a TCP/UDP fragment passes `parse l4` with payload bytes read as ports; the NIC hashes fragments by addresses only.".to_string(),
        "`hash(...)` is an uninterpreted function of its arguments.".to_string(),
    ];
    for r in shard.r5.iter().filter(|r| r.accepted) {
        let list: Vec<String> = r
            .compared
            .iter()
            .map(|(c, f)| format!("{c} == {}", f.path()))
            .collect();
        notes.push(format!(
            "R5 accepted for `{}` on {}: the access is keyed by the fields its check compares ({}). Maestro removes the index constraints and keeps the server IP only; our constraint may also use the other compared hashable fields, and any subset of the equalities is an equally valid, coarser choice. Different cores may hand out the same index to different servers.",
            state_name(prog, r.object),
            dev(r.port),
            list.join(", ")
        ));
    }
    Analysis {
        schema: SCHEMA.to_string(),
        version: VERSION,
        nf: NfInfo {
            name: prog.name.clone(),
            description: prog.description.clone(),
            file: prog.source.name.clone(),
            ports: prog.port_count,
            devices: prog
                .devices
                .iter()
                .map(|d| DeviceInfo {
                    name: d.name.clone(),
                    port: d.port,
                })
                .collect(),
        },
        summary,
        ports: port_paths,
        objects,
        sites,
        classes,
        r5,
        constraints,
        verdict,
        notes,
    }
}

fn verdict(
    prog: &NfProgram,
    model: &AccessModel,
    shard: &ShardResult,
    constraints: &Constraints,
) -> Verdict {
    let dev = |p: u16| device_name(prog, p);
    let mut objects = Vec::new();
    for o in &shard.objects {
        let name = state_name(prog, o.state);
        let mine: Vec<&Site> = model.sites.iter().filter(|s| s.state == o.state).collect();
        let lines = |f: &dyn Fn(&Site) -> bool| -> String {
            let mut v: Vec<u32> = mine
                .iter()
                .filter(|s| f(s))
                .map(|s| prog.line_col(s.span).0)
                .collect();
            v.sort();
            v.dedup();
            let word = if v.len() == 1 { "line" } else { "lines" };
            let v: Vec<String> = v.iter().map(|l| l.to_string()).collect();
            format!("{word} {}", v.join(", "))
        };
        let (strategy, rule, reason, sites, fields) = match o.status {
            ObjStatus::Unused => (
                "unused",
                None,
                "no packet reads or writes it (expiry aside)".to_string(),
                Vec::new(),
                Vec::new(),
            ),
            ObjStatus::ReadOnly => (
                "read-only",
                None,
                format!(
                    "no packet changes it (read at {}): it imposes no constraint, every core may hold a copy",
                    lines(&|_| true)
                ),
                mine.iter()
                    .filter_map(|s| site_ref(prog, model, s.id))
                    .collect(),
                Vec::new(),
            ),
            ObjStatus::Shardable => {
                let parts: Vec<String> = o
                    .alone
                    .iter()
                    .map(|(p, f)| format!("{} packets by {}", dev(*p), fields_words(f)))
                    .collect();
                (
                    "shared-nothing",
                    None,
                    format!(
                        "written at {}; every entry is selected by packet fields RSS can hash: shardable on its own by steering {}",
                        lines(&|s| s.is_write()),
                        parts.join(" and ")
                    ),
                    mine.iter()
                        .filter(|s| !s.forms.iter().all(|f| matches!(f, KeyForm::Expiry)))
                        .filter_map(|s| site_ref(prog, model, s.id))
                        .collect(),
                    port_fields(prog, &o.alone, None, None),
                )
            }
            ObjStatus::Blocked => {
                let rule = o.problems.first().map(|p| p.rule.to_string());
                let reasons: Vec<String> = o
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.rule, p.reason))
                    .collect();
                let mut ids: Vec<usize> = o.problems.iter().flat_map(|p| p.sites.clone()).collect();
                ids.sort();
                ids.dedup();
                (
                    "locks",
                    rule,
                    format!(
                        "written at {}; {}",
                        lines(&|s| s.is_write()),
                        reasons.join("; ")
                    ),
                    ids.iter()
                        .filter_map(|&id| site_ref(prog, model, id))
                        .collect(),
                    Vec::new(),
                )
            }
        };
        objects.push(ObjectVerdict {
            object: name,
            strategy: strategy.to_string(),
            rule,
            reason,
            sites,
            fields,
        });
    }
    let blocked: Vec<&ObjectVerdict> = objects.iter().filter(|o| o.strategy == "locks").collect();
    let shardable: Vec<&ObjectVerdict> = objects
        .iter()
        .filter(|o| o.strategy == "shared-nothing")
        .collect();
    let (strategy, rule, summary) = if let Some(first) = blocked.first() {
        let parts: Vec<String> = blocked
            .iter()
            .map(|o| format!("`{}`: {}", o.object, o.reason))
            .collect();
        (
            "locks",
            first.rule.clone(),
            format!(
                "locks (or TM): no shared-nothing parallelization. {}",
                parts.join(" ")
            ),
        )
    } else if let Some(p) = &shard.joint_problem {
        (
            "locks",
            Some(p.rule.to_string()),
            format!(
                "locks (or TM): the objects cannot be sharded together. {}: {}",
                p.rule, p.reason
            ),
        )
    } else if constraints.pairs.is_empty() {
        let ro: Vec<String> = objects
            .iter()
            .filter(|o| o.strategy == "read-only")
            .map(|o| format!("`{}`", o.object))
            .collect();
        let what = if ro.is_empty() {
            "the NF keeps no state that packets write".to_string()
        } else {
            format!(
                "{} {} read-only, and no packet writes state",
                ro.join(", "),
                if ro.len() == 1 { "is" } else { "are" }
            )
        };
        (
            "shared-nothing",
            None,
            format!("shared-nothing with no constraint: {what}; any RSS key (random keys) works."),
        )
    } else {
        let reqs: Vec<String> = constraints
            .pairs
            .iter()
            .map(|pc| {
                let eqs: Vec<String> = pc
                    .equalities
                    .iter()
                    .map(|e| {
                        if pc.ports[0] == pc.ports[1] && e.p1 == e.p2 {
                            format!("equal {}", e.p1)
                        } else {
                            format!("{}({}) == {}({})", pc.devices[0], e.p1, pc.devices[1], e.p2)
                        }
                    })
                    .collect();
                let objs: BTreeSet<&str> = pc.sources.iter().map(|s| s.object.as_str()).collect();
                let objs: Vec<String> = objs.into_iter().map(|o| format!("`{o}`")).collect();
                if pc.ports[0] == pc.ports[1] {
                    format!(
                        "two {} packets with {} must reach the same core ({})",
                        pc.devices[0],
                        eqs.join(" and "),
                        objs.join(", ")
                    )
                } else {
                    format!(
                        "a {} packet and a {} packet with {} must reach the same core ({})",
                        pc.devices[0],
                        pc.devices[1],
                        eqs.join(" and "),
                        objs.join(", ")
                    )
                }
            })
            .collect();
        let free: Vec<String> = (0..prog.port_count)
            .filter(|p| !shard.joint.fields.contains_key(p))
            .map(&dev)
            .collect();
        let tail = if free.is_empty() {
            String::new()
        } else {
            format!(
                " Packets on {} touch no written state: any hash.",
                free.join(", ")
            )
        };
        (
            "shared-nothing",
            None,
            format!("shared-nothing: {}.{tail}", reqs.join("; ")),
        )
    };
    let hybrid = if !blocked.is_empty() && !shardable.is_empty() {
        let s: Vec<String> = shardable
            .iter()
            .map(|o| {
                let f: Vec<String> = o
                    .fields
                    .iter()
                    .map(|pf| format!("{} by ({})", pf.device, pf.fields.join(", ")))
                    .collect();
                format!("`{}` ({})", o.object, f.join(", "))
            })
            .collect();
        let b: Vec<String> = blocked.iter().map(|o| format!("`{}`", o.object)).collect();
        Some(format!(
            "{} could be sharded on {} own, {} cannot: a hybrid (sharded {}, locked {}) is possible later",
            s.join(", "),
            if s.len() == 1 { "its" } else { "their" },
            b.join(", "),
            shardable
                .iter()
                .map(|o| format!("`{}`", o.object))
                .collect::<Vec<_>>()
                .join(", "),
            b.join(", ")
        ))
    } else {
        None
    };
    // Classes that reach written state.
    let mut class_caveats = Vec::new();
    if strategy == "shared-nothing" {
        for ((port, class), objs) in &shard.class_reach {
            if *class == PacketClass::Ipv4TcpUdp {
                continue;
            }
            let names: Vec<String> = objs.iter().map(|s| state_name(prog, *s)).collect();
            let need = shard.joint.fields.get(port).cloned().unwrap_or_default();
            let can: FieldSet = class.rss_fields().iter().map(|f| PktFieldOrd(*f)).collect();
            let both: FieldSet = need.intersection(&can).copied().collect();
            let objs_text: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            let (status, explanation) = if both.is_empty() {
                (
                    "inconsistent",
                    format!(
                        "{} packets on {} reach {}, which needs the hash over {}, but the NIC hashes {} packets by {} at most: they cannot be steered to the core that holds their state (Maestro ignores this)",
                        class.name(),
                        dev(*port),
                        objs_text.join(", "),
                        fields_words(&need),
                        class.name(),
                        fields_words(&can)
                    ),
                )
            } else {
                let rss = class.rss_type().unwrap_or("none");
                (
                    "consistent",
                    format!(
                        "{} packets on {} reach {}: they meet their TCP/UDP peers only if {}'s hash uses no more than {} and the RSS type {} is enabled too (Maestro enables TCP/UDP types only, which sends them all to one queue regardless of their state)",
                        class.name(),
                        dev(*port),
                        objs_text.join(", "),
                        dev(*port),
                        fields_words(&both),
                        rss
                    ),
                )
            };
            class_caveats.push(ClassCaveat {
                port: *port,
                device: dev(*port),
                class: *class,
                objects: names,
                status: status.to_string(),
                explanation,
            });
        }
    }
    Verdict {
        strategy: strategy.to_string(),
        rule,
        summary,
        objects,
        hybrid,
        class_caveats,
    }
}
