//! Sharding constraints and verdicts, following Maestro's rules (maestro-reference.md §2).
//!
//! - Read-only objects impose nothing. Expiry is ignored: each core expires its own
//!   entries.
//! - **R1** (key equality): for every pair of keyed accesses to an object that some packet
//!   writes (the same site with two packets included, and pairs across input ports), the
//!   packets whose keys are equal must reach the same core. Key equality is turned into
//!   the field equalities it implies (`p1.pkt.ip.src == p2.pkt.ip.dst`), syntactically
//!   when key components are packet fields, with Z3 otherwise.
//! - **R2** (subsumption): every port's hash may use only fields that every constraint on
//!   the port pairs with a usable field of the other side; iterating to a fixpoint keeps
//!   the coarsest common field set, and constraints on finer keys are reported subsumed.
//! - **R3** (disjoint dependencies): a port left with no field: no shared-nothing.
//! - **R4** (incompatible dependencies): an entry selected by something RSS cannot hash
//!   (Ethernet addresses, the protocol alone, state, every entry at once).
//! - **R5** (allocator indexes as packet fields): an index computed from packet fields
//!   into an allocator-backed object is accepted only when every path where it is not
//!   allocated, and every path that does not use the entry, drops without changing
//!   state, and every path that uses the entry has compared packet fields with the
//!   entry's key; the access is then keyed by the compared fields.

use super::access::{AccessModel, KeyForm, Site};
use super::classes::{PacketClass, RSS_FIELDS};
use super::error::AnalysisError;
use super::exec::{Access, Outcome, PortExec, RawPath};
use super::solver::{Ns, Smt};
use super::term::{PktFieldOrd, SymKind, SymVal, Symbol, Term};
use crate::lang::ast::BinOp;
use crate::lang::ir::{Method, NfProgram, PktField, StateId};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub type FieldSet = BTreeSet<PktFieldOrd>;
pub type EqSet = BTreeSet<(PktFieldOrd, PktFieldOrd)>;

/// A keyed access: the components of the key that selects the entry (`None`: unknown,
/// for an R5 access whose entry was compared on some components only).
#[derive(Clone, Debug)]
pub struct Keyed {
    pub object: StateId,
    pub port: u16,
    pub sites: Vec<usize>,
    pub comps: Vec<(String, Option<Term>)>,
    signature: String,
}

/// One R1 constraint between two keyed accesses, oriented `ports[0] <= ports[1]`.
#[derive(Clone, Debug)]
pub struct Constraint {
    pub object: StateId,
    pub ports: [u16; 2],
    pub keyed: [usize; 2],
    /// Hashable field equalities implied by key equality (`p1` on `ports[0]`).
    pub eqs: EqSet,
    /// Key components equal under key equality that RSS cannot hash.
    pub unhashable: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub rule: &'static str,
    pub reason: String,
    pub sites: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjStatus {
    Unused,
    ReadOnly,
    Shardable,
    Blocked,
}

#[derive(Clone, Debug)]
pub struct ObjectResult {
    pub state: StateId,
    pub status: ObjStatus,
    pub problems: Vec<Problem>,
    /// Indexes into [`ShardResult::constraints`].
    pub constraints: Vec<usize>,
    /// Fields per port when the object is sharded alone.
    pub alone: BTreeMap<u16, FieldSet>,
}

#[derive(Clone, Debug)]
pub struct R5Result {
    pub object: StateId,
    pub port: u16,
    pub index: String,
    pub guard_line: Option<u32>,
    pub accepted: bool,
    pub miss_paths: Vec<usize>,
    pub silent_paths: Vec<usize>,
    pub use_paths: Vec<usize>,
    pub compared: Vec<(String, PktField)>,
    pub reason: String,
    pub sites: Vec<usize>,
}

/// The result of a fixpoint over a set of constraints.
#[derive(Clone, Debug, Default)]
pub struct Fixpoint {
    pub fields: BTreeMap<u16, FieldSet>,
    /// The first port left empty: (port, constraint index, the fields it had before).
    pub emptied: Option<(u16, usize, FieldSet)>,
}

pub struct ShardResult {
    pub keyed: Vec<Keyed>,
    pub constraints: Vec<Constraint>,
    pub objects: Vec<ObjectResult>,
    pub r5: Vec<R5Result>,
    /// Over the constraints of all shardable objects.
    pub joint: Fixpoint,
    pub joint_problem: Option<Problem>,
    /// The same, with every port restricted to what the NIC hashes for every class that
    /// reaches state on it.
    pub all_classes: Fixpoint,
    /// Per port: the classes that reach keyed state of written objects, with the objects.
    pub class_reach: BTreeMap<(u16, PacketClass), BTreeSet<StateId>>,
}

fn rss_set() -> FieldSet {
    RSS_FIELDS.iter().map(|f| PktFieldOrd(*f)).collect()
}

pub fn is_rss(f: PktField) -> bool {
    RSS_FIELDS.contains(&f)
}

/// The term of a packet field (matches the executor's symbols by name).
fn pkt_term(f: PktField) -> Term {
    Term::sym(Rc::new(Symbol {
        name: f.path().to_string(),
        kind: SymKind::Packet(f),
        ty: f.ty(),
    }))
}

/// Fields that must be equal when two packets' keys are equal; `None` when the keys can
/// never be equal.
fn pair_eqs(
    smt: &mut Smt<'_>,
    a: &Keyed,
    b: &Keyed,
) -> Result<Option<(EqSet, Vec<String>)>, String> {
    let mut eqs = EqSet::new();
    let mut unhashable = Vec::new();
    let mut general: Vec<(String, Term, Term)> = Vec::new();
    let mut all: Vec<(Term, Term)> = Vec::new();
    for ((name, ta), (_, tb)) in a.comps.iter().zip(&b.comps) {
        let (Some(ta), Some(tb)) = (ta, tb) else {
            continue;
        };
        all.push((ta.clone(), tb.clone()));
        if let (Some(x), Some(y)) = (ta.as_const(), tb.as_const()) {
            if x != y {
                return Ok(None);
            }
            continue;
        }
        match (ta.as_packet_field(), tb.as_packet_field()) {
            (Some(f), Some(g)) => {
                if is_rss(f) && is_rss(g) {
                    eqs.insert((PktFieldOrd(f), PktFieldOrd(g)));
                } else {
                    for x in [f, g] {
                        if !is_rss(x) && !unhashable.iter().any(|u| u == x.path()) {
                            unhashable.push(x.path().to_string());
                        }
                    }
                }
            }
            _ => general.push((name.clone(), ta.clone(), tb.clone())),
        }
    }
    if general.is_empty() {
        return Ok(Some((eqs, unhashable)));
    }
    // Some component is not a bare field: ask Z3 what key equality implies.
    let mut base: Vec<(Term, Ns)> = Vec::new();
    for (x, y) in &all {
        base.push((two_sided_eq(x, y), Ns::One));
    }
    if !smt.check_mixed(&base)? {
        return Ok(None);
    }
    for (name, ta, tb) in &general {
        let mut found = false;
        for f in ta.packet_fields() {
            for g in tb.packet_fields() {
                if !is_rss(f.0) || !is_rss(g.0) || f.0.ty() != g.0.ty() {
                    continue;
                }
                if eqs.contains(&(f, g)) {
                    found = true;
                    continue;
                }
                let ne = Term::negate(two_sided_eq(&pkt_term(f.0), &pkt_term(g.0)));
                let mut q = base.clone();
                q.push((ne, Ns::One));
                if !smt.check_mixed(&q)? {
                    eqs.insert((f, g));
                    found = true;
                }
            }
        }
        let constant = ta.packet_fields().is_empty() && tb.packet_fields().is_empty();
        if !found && !constant {
            let label = if name.is_empty() {
                ta.to_string()
            } else {
                format!("{name} ({ta})")
            };
            unhashable.push(label);
        }
    }
    Ok(Some((eqs, unhashable)))
}

/// `x == y` where `x` speaks about packet 1 and `y` about packet 2: the symbols of `y` are
/// renamed into packet 2's namespace by wrapping them (see [`rename`]).
fn two_sided_eq(x: &Term, y: &Term) -> Term {
    Term::eq(rename(x, "p1!"), rename(y, "p2!"))
}

/// A copy of the term whose symbols carry a namespace prefix.
fn rename(t: &Term, prefix: &str) -> Term {
    use super::term::Kind;
    match t.kind() {
        Kind::Const(_) => t.clone(),
        Kind::Sym(s) => Term::sym(Rc::new(Symbol {
            name: format!("{prefix}{}", s.name),
            kind: s.kind.clone(),
            ty: s.ty,
        })),
        Kind::Unary(op, a) => Term::unary(*op, rename(a, prefix)),
        Kind::Binary(op, a, b) => Term::binary(*op, rename(a, prefix), rename(b, prefix)),
        Kind::Ite(c, a, b) => Term::ite(rename(c, prefix), rename(a, prefix), rename(b, prefix)),
        Kind::Cast(a) => Term::cast(rename(a, prefix), t.ty()),
        Kind::Builtin(b, args) => {
            Term::builtin(*b, args.iter().map(|a| rename(a, prefix)).collect())
        }
        Kind::Hash(args) => Term::hash(args.iter().map(|a| rename(a, prefix)).collect()),
    }
}

/// Iterates the per-port field sets to a fixpoint (R2/R3).
pub fn fixpoint(
    constraints: &[Constraint],
    which: &[usize],
    init: &dyn Fn(u16) -> FieldSet,
) -> Fixpoint {
    let mut fields: BTreeMap<u16, FieldSet> = BTreeMap::new();
    for &ci in which {
        if let Some(c) = constraints.get(ci) {
            for p in c.ports {
                fields.entry(p).or_insert_with(|| init(p));
            }
        }
    }
    let mut emptied = None;
    loop {
        let mut changed = false;
        for &ci in which {
            let Some(c) = constraints.get(ci) else {
                continue;
            };
            let [pa, pb] = c.ports;
            let aa = fields.get(&pa).cloned().unwrap_or_default();
            let ab = fields.get(&pb).cloned().unwrap_or_default();
            let live: Vec<&(PktFieldOrd, PktFieldOrd)> = c
                .eqs
                .iter()
                .filter(|(f, g)| aa.contains(f) && ab.contains(g))
                .collect();
            let left: FieldSet = live.iter().map(|(f, _)| *f).collect();
            let right: FieldSet = live.iter().map(|(_, g)| *g).collect();
            let mut update = |p: u16, old: &FieldSet, new: FieldSet| {
                if &new != old {
                    changed = true;
                    if new.is_empty() && emptied.is_none() {
                        emptied = Some((p, ci, old.clone()));
                    }
                    fields.insert(p, new);
                }
            };
            if pa == pb {
                let x: FieldSet = aa
                    .iter()
                    .filter(|f| left.contains(f) && right.contains(f))
                    .copied()
                    .collect();
                update(pa, &aa, x);
            } else {
                let x: FieldSet = aa.intersection(&left).copied().collect();
                let y: FieldSet = ab.intersection(&right).copied().collect();
                update(pa, &aa, x);
                update(pb, &ab, y);
            }
        }
        if !changed {
            break;
        }
    }
    Fixpoint { fields, emptied }
}

/// Path ids by (port index, path index).
struct Ctx<'a, 'p> {
    prog: &'a NfProgram,
    ports: &'a [PortExec],
    model: &'a AccessModel,
    names: &'p dyn Fn(u16) -> String,
}

impl Ctx<'_, '_> {
    fn obj(&self, s: StateId) -> String {
        self.prog
            .states
            .get(s.0 as usize)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }

    fn site(&self, id: usize) -> Option<&Site> {
        self.model.sites.get(id.wrapping_sub(1))
    }

    fn label(&self, site: usize) -> String {
        self.site(site).map(|s| s.label.clone()).unwrap_or_default()
    }
}

fn fields_text(set: &FieldSet) -> String {
    let v: Vec<&str> = set.iter().map(|f| f.0.path()).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

pub fn eqs_text(eqs: &EqSet) -> String {
    let v: Vec<String> = eqs
        .iter()
        .map(|(f, g)| format!("p1.{} == p2.{}", f.0.path(), g.0.path()))
        .collect();
    v.join(" && ")
}

/// Runs R1–R5 over the access model.
pub fn analyze(
    prog: &NfProgram,
    ports: &[PortExec],
    model: &AccessModel,
    smt: &mut Smt<'_>,
    names: &dyn Fn(u16) -> String,
) -> Result<ShardResult, AnalysisError> {
    let ctx = Ctx {
        prog,
        ports,
        model,
        names,
    };
    let solver_err = |reason: String, what: String, site: Option<&Site>| AnalysisError::Solver {
        location: site
            .map(|s| prog.location(s.span))
            .unwrap_or_else(|| prog.source.name.clone()),
        what,
        reason,
        timeout_ms: 0,
    };
    let mut keyed: Vec<Keyed> = Vec::new();
    let mut constraints: Vec<Constraint> = Vec::new();
    let mut objects = Vec::new();
    let mut r5s = Vec::new();
    for (si, _) in prog.states.iter().enumerate() {
        let s = StateId(si as u32);
        let sites: Vec<&Site> = model.sites.iter().filter(|x| x.state == s).collect();
        let mut res = ObjectResult {
            state: s,
            status: ObjStatus::Shardable,
            problems: Vec::new(),
            constraints: Vec::new(),
            alone: BTreeMap::new(),
        };
        let used = sites
            .iter()
            .any(|x| !x.forms.iter().all(|f| matches!(f, KeyForm::Expiry)));
        if !used {
            res.status = ObjStatus::Unused;
            objects.push(res);
            continue;
        }
        if !sites.iter().any(|x| x.is_write()) {
            res.status = ObjStatus::ReadOnly;
            objects.push(res);
            continue;
        }
        let first_keyed = keyed.len();
        let add_keyed = |keyed: &mut Vec<Keyed>, k: Keyed| {
            if let Some(e) = keyed[first_keyed..]
                .iter_mut()
                .find(|e| e.port == k.port && e.signature == k.signature)
            {
                for sid in k.sites {
                    if !e.sites.contains(&sid) {
                        e.sites.push(sid);
                    }
                }
            } else {
                keyed.push(k);
            }
        };
        let mut pidx_groups: Vec<(u16, String, Vec<usize>)> = Vec::new();
        for site in &sites {
            for form in &site.forms {
                match form {
                    KeyForm::Key { leaves, .. } => {
                        let stateful: Vec<String> = leaves
                            .iter()
                            .filter(|(_, t)| !t.other_syms().is_empty())
                            .map(|(n, t)| {
                                if n.is_empty() {
                                    format!("`{t}`")
                                } else {
                                    format!("{n} = `{t}`")
                                }
                            })
                            .collect();
                        if !stateful.is_empty() {
                            res.problems.push(Problem {
                                rule: "R4",
                                reason: format!(
                                    "`{}` selects its entry with a key that depends on state or time ({}): no packet field determines it",
                                    site.label,
                                    stateful.join(", ")
                                ),
                                sites: vec![site.id],
                            });
                            continue;
                        }
                        let comps: Vec<(String, Option<Term>)> = leaves
                            .iter()
                            .map(|(n, t)| (n.clone(), Some(t.clone())))
                            .collect();
                        let signature = comps
                            .iter()
                            .map(|(n, t)| format!("{n}={}", t.as_ref().map(|t| t.to_string()).unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(",");
                        add_keyed(
                            &mut keyed,
                            Keyed {
                                object: s,
                                port: site.port,
                                sites: vec![site.id],
                                comps,
                                signature,
                            },
                        );
                    }
                    KeyForm::PacketIndex { index } => {
                        let sig = index.to_string();
                        match pidx_groups
                            .iter_mut()
                            .find(|(p, i, _)| *p == site.port && *i == sig)
                        {
                            Some(g) => g.2.push(site.id),
                            None => pidx_groups.push((site.port, sig, vec![site.id])),
                        }
                    }
                    KeyForm::StateIndex { from, .. } => {
                        let reason_of = |froms: &str| {
                            format!(
                                "`{}` reaches its entry through an index {froms}: no packet field selects the entry",
                                site.label
                            )
                        };
                        match res
                            .problems
                            .iter_mut()
                            .find(|p| p.sites == [site.id] && p.rule == "R4" && p.reason.contains("through an index"))
                        {
                            Some(p) => {
                                p.reason = p.reason.replace(
                                    ": no packet field selects the entry",
                                    &format!(" or {from}: no packet field selects the entry"),
                                )
                            }
                            None => res.problems.push(Problem {
                                rule: "R4",
                                reason: reason_of(from),
                                sites: vec![site.id],
                            }),
                        }
                    }
                    KeyForm::Global { reason } => res.problems.push(Problem {
                        rule: "R4",
                        reason: format!("{reason}: the entries read do not follow from the packet"),
                        sites: vec![site.id],
                    }),
                    KeyForm::Aggregate => res.problems.push(Problem {
                        rule: "R4",
                        reason: format!(
                            "`{}` depends on every entry (size or fill level), which sharding would split",
                            site.label
                        ),
                        sites: vec![site.id],
                    }),
                    KeyForm::FreshIndex { .. } | KeyForm::Allocation | KeyForm::Expiry => {}
                }
            }
        }
        for (port, sig, group) in pidx_groups {
            let r5 = r5_check(&ctx, smt, s, port, &sig, &group).map_err(|(reason, site)| {
                solver_err(reason, "an R5 equivalence query".into(), ctx.site(site))
            })?;
            if r5.accepted {
                let comps: Vec<(String, Option<Term>)> = key_leaf_names(prog, s)
                    .into_iter()
                    .map(|n| {
                        let t = r5
                            .compared
                            .iter()
                            .find(|(c, _)| *c == n)
                            .map(|(_, f)| pkt_term(*f));
                        (n, t)
                    })
                    .collect();
                let signature = format!("r5:{sig}");
                add_keyed(
                    &mut keyed,
                    Keyed {
                        object: s,
                        port,
                        sites: group.clone(),
                        comps,
                        signature,
                    },
                );
            } else {
                res.problems.push(Problem {
                    rule: "R5",
                    reason: r5.reason.clone(),
                    sites: group.clone(),
                });
            }
            r5s.push(r5);
        }
        // R1 over every pair of keyed accesses of the object.
        let mine: Vec<usize> = (first_keyed..keyed.len()).collect();
        let mut unhashable_pairs: (Vec<usize>, Vec<String>) = (Vec::new(), Vec::new());
        let mut shared_all: (Vec<usize>, Vec<String>) = (Vec::new(), Vec::new());
        for (x, &i) in mine.iter().enumerate() {
            for &j in &mine[x..] {
                let (a, b) = if keyed[i].port <= keyed[j].port {
                    (i, j)
                } else {
                    (j, i)
                };
                let pe = pair_eqs(smt, &keyed[a], &keyed[b]).map_err(|reason| {
                    solver_err(
                        reason,
                        "a key equality query".into(),
                        keyed[a].sites.first().and_then(|&s| ctx.site(s)),
                    )
                })?;
                let Some((eqs, unhashable)) = pe else {
                    continue;
                };
                if eqs.is_empty() {
                    let target = if unhashable.is_empty() {
                        &mut shared_all
                    } else {
                        &mut unhashable_pairs
                    };
                    for k in [a, b] {
                        if !target.0.contains(&k) {
                            target.0.push(k);
                        }
                    }
                    for u in unhashable {
                        if !target.1.contains(&u) {
                            target.1.push(u);
                        }
                    }
                    continue;
                }
                res.constraints.push(constraints.len());
                constraints.push(Constraint {
                    object: s,
                    ports: [keyed[a].port, keyed[b].port],
                    keyed: [a, b],
                    eqs,
                    unhashable,
                });
            }
        }
        for (group, unhashable) in [unhashable_pairs, shared_all] {
            if group.is_empty() {
                continue;
            }
            let keys: Vec<String> = group
                .iter()
                .map(|&k| {
                    let ks = &keyed[k];
                    let comps: Vec<String> = ks
                        .comps
                        .iter()
                        .filter_map(|(_, t)| t.as_ref().map(|t| t.to_string()))
                        .collect();
                    format!("{} at {}", comps.join(", "), site_labels(&ctx, &ks.sites))
                })
                .collect();
            let mut seen = Vec::new();
            let keys: Vec<String> = keys
                .into_iter()
                .filter(|k| {
                    let new = !seen.contains(k);
                    seen.push(k.clone());
                    new
                })
                .collect();
            let reason = if unhashable.is_empty() {
                format!(
                    "every packet can touch the same entry of `{}` whatever its headers (key {}): one entry shared by all",
                    ctx.obj(s),
                    keys.join("; ")
                )
            } else {
                format!(
                    "entries of `{}` are selected by {} (key {}); two packets share an entry when these agree, and RSS cannot hash them (it hashes IPv4 addresses and TCP/UDP ports only)",
                    ctx.obj(s),
                    unhashable.join(", "),
                    keys.join("; ")
                )
            };
            let mut sites: Vec<usize> =
                group.iter().flat_map(|&k| keyed[k].sites.clone()).collect();
            sites.sort();
            sites.dedup();
            res.problems.push(Problem {
                rule: "R4",
                reason,
                sites,
            });
        }
        if res.problems.is_empty() {
            let fp = fixpoint(&constraints, &res.constraints, &|_| rss_set());
            if let Some(p) = r3_problem(&ctx, &constraints, &keyed, &fp) {
                res.problems.push(p);
            }
            res.alone = fp.fields;
        }
        res.status = if res.problems.is_empty() {
            ObjStatus::Shardable
        } else {
            ObjStatus::Blocked
        };
        objects.push(res);
    }
    // All shardable objects together: the ports' hashes are shared by every object.
    let joint_which: Vec<usize> = objects
        .iter()
        .filter(|o| o.status == ObjStatus::Shardable)
        .flat_map(|o| o.constraints.iter().copied())
        .collect();
    let joint = fixpoint(&constraints, &joint_which, &|_| rss_set());
    let joint_problem = r3_problem(&ctx, &constraints, &keyed, &joint);
    // Which classes reach keyed state of written objects, per port.
    let mut class_reach: BTreeMap<(u16, PacketClass), BTreeSet<StateId>> = BTreeMap::new();
    for k in keyed.iter() {
        if !objects
            .iter()
            .any(|o| o.state == k.object && o.status == ObjStatus::Shardable)
        {
            continue;
        }
        for &sid in &k.sites {
            if let Some(site) = ctx.site(sid) {
                for c in &site.classes {
                    class_reach
                        .entry((site.port, *c))
                        .or_default()
                        .insert(k.object);
                }
            }
        }
    }
    let restrict = |p: u16| -> FieldSet {
        let mut set = rss_set();
        for ((port, class), _) in class_reach.range((p, PacketClass::NonIp)..) {
            if *port != p {
                break;
            }
            let cf: FieldSet = class.rss_fields().iter().map(|f| PktFieldOrd(*f)).collect();
            set = set.intersection(&cf).copied().collect();
        }
        set
    };
    let all_classes = fixpoint(&constraints, &joint_which, &restrict);
    Ok(ShardResult {
        keyed,
        constraints,
        objects,
        r5: r5s,
        joint,
        joint_problem,
        all_classes,
        class_reach,
    })
}

fn site_labels(ctx: &Ctx<'_, '_>, sites: &[usize]) -> String {
    let mut v: Vec<String> = Vec::new();
    for &s in sites {
        let l = format!("`{}`", ctx.label(s));
        if !v.contains(&l) {
            v.push(l);
        }
    }
    v.join("/")
}

fn r3_problem(
    ctx: &Ctx<'_, '_>,
    constraints: &[Constraint],
    keyed: &[Keyed],
    fp: &Fixpoint,
) -> Option<Problem> {
    let (port, ci, before) = fp.emptied.clone()?;
    let c = constraints.get(ci)?;
    let ka = keyed.get(c.keyed[0])?;
    let kb = keyed.get(c.keyed[1])?;
    let dev = (ctx.names)(port);
    let la = site_labels(ctx, &ka.sites);
    let lb = site_labels(ctx, &kb.sites);
    let pair = if c.keyed[0] == c.keyed[1] {
        format!("two packets at {la}")
    } else {
        format!("{la} and {lb}")
    };
    let reason = format!(
        "{pair} touch the same entry of `{}` when {}; together with the other accesses, {dev}'s hash could only use {}, and this pairing leaves no field in common (disjoint dependencies): no hash sends both packets to one core without sending everything there",
        ctx.obj(c.object),
        eqs_text(&c.eqs),
        fields_text(&before),
    );
    let mut sites = ka.sites.clone();
    sites.extend(kb.sites.iter().copied());
    Some(Problem {
        rule: "R3",
        reason,
        sites,
    })
}

fn key_leaf_names(prog: &NfProgram, s: StateId) -> Vec<String> {
    use crate::lang::ir::StateKind;
    let key_ty = match prog.states.get(s.0 as usize).map(|d| &d.kind) {
        Some(StateKind::Table { key, .. }) => *key,
        _ => return Vec::new(),
    };
    let zero = crate::lang::types::Value::zero(key_ty, &prog.records);
    SymVal::from_value(&zero, key_ty, &prog.records)
        .leaves(&prog.records)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// R5 for one object, port and index expression. `Err((solver reason, site))`.
fn r5_check(
    ctx: &Ctx<'_, '_>,
    smt: &mut Smt<'_>,
    object: StateId,
    port: u16,
    sig: &str,
    group: &[usize],
) -> Result<R5Result, (String, usize)> {
    let site0 = group.first().copied().unwrap_or(0);
    let obj = ctx.obj(object);
    let mut out = R5Result {
        object,
        port,
        index: sig.to_string(),
        guard_line: None,
        accepted: true,
        miss_paths: Vec::new(),
        silent_paths: Vec::new(),
        use_paths: Vec::new(),
        compared: Vec::new(),
        reason: String::new(),
        sites: group.to_vec(),
    };
    let reject = |out: &mut R5Result, why: String| {
        if out.accepted {
            out.accepted = false;
            out.reason = why;
        }
    };
    let Some((pi, px)) = ctx.ports.iter().enumerate().find(|(_, p)| p.port == port) else {
        return Ok(out);
    };
    let dev = (ctx.names)(port);
    let mut common: Option<BTreeMap<String, PktField>> = None;
    for (k, path) in px.paths.iter().enumerate() {
        let pid = ctx
            .model
            .path_ids
            .get(pi)
            .and_then(|v| v.get(k))
            .copied()
            .unwrap_or(0);
        let in_group = |op: &super::exec::Op| {
            op.state == object
                && op.index.as_ref().map(|t| t.to_string()).as_deref() == Some(sig)
                && op.index_origin.is_none()
        };
        let Some(first) = path.ops.iter().position(in_group) else {
            continue;
        };
        let guard = &path.ops[first];
        if !matches!(
            guard.method,
            Method::TableHasIndex | Method::DChainIsAllocated
        ) {
            reject(
                &mut out,
                format!(
                    "path {pid} uses `{}` with an index read from the packet ({sig}) before checking that the index is allocated",
                    guard.label
                ),
            );
            continue;
        }
        out.guard_line = Some(ctx.prog.line_col(guard.span).0);
        let Some(r) = guard.result.as_ref().and_then(|v| v.scalar().cloned()) else {
            continue;
        };
        let pc: Vec<Term> = path.conds.iter().map(|c| c.term.clone()).collect();
        let mut q = pc.clone();
        q.push(r.clone());
        let hit_possible = smt.check_with(&q, Ns::One).map_err(|e| (e, site0))?;
        let writes_after: Vec<String> = path.ops[first + 1..]
            .iter()
            .filter(|o| o.access == Access::Write)
            .map(|o| {
                format!(
                    "`{}` (line {})",
                    o.label.split('@').next().unwrap_or(&o.label),
                    ctx.prog.line_col(o.span).0
                )
            })
            .collect();
        let silent = matches!(path.outcome, Outcome::Drop) && writes_after.is_empty();
        let what = describe_effect(path, &writes_after, ctx);
        if !hit_possible {
            out.miss_paths.push(pid);
            if !silent {
                reject(
                    &mut out,
                    format!(
                        "path {pid} ({dev}, index not allocated) {what}: a miss must drop without changing state for a core that never allocated the index to behave like the sequential NF"
                    ),
                );
            }
            continue;
        }
        if silent {
            out.silent_paths.push(pid);
            continue;
        }
        out.use_paths.push(pid);
        let compared =
            compared_fields(smt, path, object, sig, &ctx.prog.records).map_err(|e| (e, site0))?;
        if !compared.values().any(|f| is_rss(*f)) {
            reject(
                &mut out,
                format!(
                    "path {pid} ({dev}, index allocated) {what}, although nothing on it proves that the packet matches the key of the entry at index {sig} of `{obj}`: on a core where this index belongs to another flow, the packet would act on that flow, which a miss never does (the miss paths and this path are not equivalent)"
                ),
            );
            continue;
        }
        common = Some(match common {
            None => compared,
            Some(prev) => prev
                .into_iter()
                .filter(|(n, f)| compared.get(n) == Some(f))
                .collect(),
        });
    }
    if out.accepted {
        let compared = common.unwrap_or_default();
        if !compared.values().any(|f| is_rss(*f)) {
            reject(
                &mut out,
                format!(
                    "the paths that use the entry at index {sig} of `{obj}` compare no hashable packet field with the entry's key in common"
                ),
            );
        } else {
            out.compared = compared.into_iter().collect();
            let list: Vec<String> = out
                .compared
                .iter()
                .map(|(n, f)| format!("{n} == {}", f.path()))
                .collect();
            out.reason = format!(
                "{dev} packets read `{obj}` at an index taken from their headers ({sig}); every path where the index is not allocated ({}) and every path where the entry does not match ({}) drops without changing state, and the paths that use the entry ({}) have checked {}: a core that never allocated the index behaves like the sequential NF on a miss, so the access is keyed by the compared fields",
                paths_text(&out.miss_paths),
                paths_text(&out.silent_paths),
                paths_text(&out.use_paths),
                list.join(", ")
            );
        }
    }
    Ok(out)
}

fn paths_text(v: &[usize]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        format!("paths {}", s.join(", "))
    }
}

fn describe_effect(path: &RawPath, writes_after: &[String], _ctx: &Ctx<'_, '_>) -> String {
    let action = match &path.outcome {
        Outcome::Drop => "drops".to_string(),
        Outcome::Flood => "floods".to_string(),
        Outcome::Forward(t) => format!("forwards to {t}"),
    };
    if writes_after.is_empty() {
        action
    } else {
        format!("writes {} and {action}", writes_after.join(", "))
    }
}

/// Which components of the entry's key the path proves equal to packet fields.
fn compared_fields(
    smt: &mut Smt<'_>,
    path: &RawPath,
    object: StateId,
    sig: &str,
    records: &[crate::lang::types::RecordDef],
) -> Result<BTreeMap<String, PktField>, String> {
    let mut out = BTreeMap::new();
    let Some(key_op) = path.ops.iter().find(|o| {
        o.state == object
            && o.method == Method::TableKey
            && o.index.as_ref().map(|t| t.to_string()).as_deref() == Some(sig)
    }) else {
        return Ok(out);
    };
    let Some(key) = &key_op.result else {
        return Ok(out);
    };
    let pc: Vec<Term> = path.conds.iter().map(|c| c.term.clone()).collect();
    for (name, t) in key.leaves(records) {
        let Some(sym) = t.as_sym().map(|s| s.name.clone()) else {
            continue;
        };
        let mut candidates: BTreeSet<PktFieldOrd> = BTreeSet::new();
        for c in &path.conds {
            if c.term.mentions(&sym) {
                candidates.extend(c.term.packet_fields());
            }
        }
        for f in candidates {
            if f.0.ty() != t.ty() {
                continue;
            }
            let ne = Term::binary(BinOp::Ne, t.clone(), pkt_term(f.0));
            let mut q = pc.clone();
            q.push(ne);
            if !smt.check_with(&q, Ns::One)? {
                out.insert(name.clone(), f.0);
                if is_rss(f.0) {
                    break;
                }
            }
        }
    }
    Ok(out)
}
