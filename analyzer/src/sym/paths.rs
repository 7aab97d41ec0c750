//! Path identities both the analyzer and the interpreter agree on, and packet sequences
//! that drive the NF down a chosen feasible path.
//!
//! **Identity.** A path is named by its input port, the branch decisions it takes (each
//! an `if`, `if let` or `parse` statement, by the byte offset of the statement in the
//! source, with the side taken) and the action that ends it. The symbolic executor folds
//! branches whose condition is constant on a path (`in == wan`, config flags), so its
//! signature lists only the *forked* decisions; the interpreter records every decision it
//! takes ([`PathTrace`]). A trace takes a path iff every decision of the path's signature
//! is in the trace with the same side, and the port and action agree. The language has
//! no loops, so a statement decides at most once per packet, and two feasible paths of a
//! port always disagree on some forked decision: a trace matches at most one path.
//!
//! **Reaching a path** ([`PathSet::solve`]). The analysis treats state-call results as
//! free symbols; a real packet only gets the results the state gives it. To find a packet
//! that takes a path, we add a bounded model of the state, starting empty (maps filled
//! from their init files), and let Z3 choose `k` earlier packets, each taking some
//! state-writing path, together with the last packet: every packet's path condition
//! holds in its own namespace (`0!`, `1!`, ...) and every state call's result is tied to
//! the state the earlier calls built (a WAN reply's `get` hits because an earlier LAN
//! packet's `add` had an equal key; a NAT reply's `has_index` holds because its port is
//! the index the allocator handed out). Each earlier packet's candidate paths run on
//! copies of the state that are merged under the packet's path selector, so the model
//! grows by one packet's entries per packet.
//!
//! Tables, maps, vectors, allocators and sets are modelled exactly: keys, values and
//! stale values, timestamps and expiry (`stamp < now - ttl`), `full` and `size`, and the
//! LIFO index allocator (0, 1, 2, ... then the last freed index first). Where exactness
//! would need the order of several frees, or a hash, the model restricts itself to the
//! states where it is exact: an `expire` call frees at most one entry per object, and a
//! consistent-hash lookup sees at most one live backend (the real table picks among
//! several by the hash of its argument). A count-min sketch counts the touches of the
//! same key within the expiry time exactly (collisions only raise counts). The caller
//! should still replay every sequence on the interpreter, which has the last word.

use super::encode::{fit, mask, Namespace, TermEncoder};
use super::error::AnalysisError;
use super::exec::{self, CondKind, Op, Outcome, RawPath};
use super::solver::Smt;
use super::term::{width, SymVal};
use super::AnalyzeOptions;
use crate::lang::ast::Layer;
use crate::lang::ir::{Method, NfProgram, PktField, StateKind};
use crate::lang::types::{RecordDef, Type, Value};
use serde::{Deserialize, Serialize};
use z3::ast::{Ast, Bool, BV};
use z3::{Context, Params, SatResult, Solver};

/// One branch decision: the statement (byte offset of its span in the source) and the
/// side taken (`true`: the `then` side, the `if let` call gave a result, the parse
/// succeeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decision {
    pub at: u32,
    pub taken: bool,
}

/// What the interpreter records for one packet: every decision in execution order and
/// the action statement that ended the path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathTrace {
    pub port: u16,
    pub decisions: Vec<Decision>,
    /// Byte offset of the action statement (`drop`, `flood`, `forward`).
    pub action: u32,
}

/// The kind of a branch statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BranchKind {
    If,
    IfLet,
    ParseIpv4,
    ParseL4,
}

/// One forked decision of a feasible path, with where it is and what it means.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SigStep {
    pub decision: Decision,
    pub kind: BranchKind,
    pub line: u32,
    pub col: u32,
    /// The condition of the side taken, as the analysis writes it
    /// (`flows.get@41.hit`, `!parse.l4`).
    pub cond: String,
}

/// The identity of a feasible path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathSignature {
    pub port: u16,
    pub steps: Vec<SigStep>,
    /// Byte offset of the action statement.
    pub action: u32,
}

impl PathSignature {
    /// Whether a packet with this trace took the path.
    pub fn matches(&self, trace: &PathTrace) -> bool {
        trace.port == self.port
            && trace.action == self.action
            && self
                .steps
                .iter()
                .all(|s| trace.decisions.contains(&s.decision))
    }

    /// The same identity (port, decisions, action), ignoring the text.
    pub fn same_path(&self, other: &PathSignature) -> bool {
        self.port == other.port
            && self.action == other.action
            && self.steps.len() == other.steps.len()
            && self
                .steps
                .iter()
                .zip(&other.steps)
                .all(|(a, b)| a.decision == b.decision)
    }

    /// `parse@23:5=yes if-let@41:5=yes => @48:5`, for messages.
    pub fn show(&self, prog: &NfProgram) -> String {
        let mut s = String::new();
        for st in &self.steps {
            let kind = match st.kind {
                BranchKind::If => "if",
                BranchKind::IfLet => "if-let",
                BranchKind::ParseIpv4 => "parse-ipv4",
                BranchKind::ParseL4 => "parse-l4",
            };
            let side = if st.decision.taken { "yes" } else { "no" };
            s.push_str(&format!("{kind}@{}:{}={side} ", st.line, st.col));
        }
        let (l, c) = prog.source.line_col(self.action);
        s.push_str(&format!("=> @{l}:{c}"));
        s
    }
}

/// A feasible path of the symbolic model, with its identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeasiblePath {
    /// 1-based, unique over the NF: the same numbering as [`super::Analysis`].
    pub id: usize,
    pub port: u16,
    pub device: String,
    pub signature: PathSignature,
    /// `drop`, `flood`, `forward(...)`.
    pub action: String,
    pub action_line: u32,
    /// The branch conditions that hold on the path.
    pub conditions: Vec<String>,
    /// The conditions that are about state-call results: what the state must give for a
    /// packet to take the path (`flows.get@41.hit`, `!flows.has_index@33.result`).
    pub assumes: Vec<String>,
    /// The path changes some state object (expiry aside).
    pub writes_state: bool,
}

/// A packet chosen by the solver: its port, timestamp, parse outcome and header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketModel {
    /// Index into [`PathSet::paths`] of the path the model makes it take.
    pub path: usize,
    pub port: u16,
    pub time_ns: u64,
    pub parsed_ipv4: bool,
    pub parsed_l4: bool,
    /// Every field of [`ALL_FIELDS`], in that order, as bits.
    pub fields: Vec<(PktField, u64)>,
}

impl PacketModel {
    /// The value of a field (0 when absent).
    pub fn field(&self, f: PktField) -> u64 {
        self.fields
            .iter()
            .find(|(g, _)| *g == f)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// Sets a field's bits (masked to its width).
    pub fn set_field(&mut self, f: PktField, v: u64) {
        let v = v & mask(width(f.ty()));
        match self.fields.iter_mut().find(|(g, _)| *g == f) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((f, v)),
        }
    }
}

/// Every packet field, in a fixed order.
pub const ALL_FIELDS: [PktField; 15] = [
    PktField::Len,
    PktField::EthDst,
    PktField::EthSrc,
    PktField::EthType,
    PktField::IpSrc,
    PktField::IpDst,
    PktField::IpProto,
    PktField::IpTtl,
    PktField::IpTos,
    PktField::IpIhl,
    PktField::IpLen,
    PktField::IpId,
    PktField::IpFrag,
    PktField::L4Sport,
    PktField::L4Dport,
];

/// How many packets may come before the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// Exactly this many earlier packets.
    Exactly(usize),
    /// At most this many (the solver may leave slots empty).
    UpTo(usize),
}

/// The timestamps of a solved sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// Packet `j` arrives at `start + j * step`: the solver's problem stays small (expiry
    /// folds to constants). Enough for every path that needs no particular time gap.
    Fixed { start: u64, step: u64 },
    /// The solver chooses every timestamp (non-decreasing): for paths that need an entry
    /// to expire, or an elapsed time at an exact boundary.
    Free,
}

/// The answer of [`PathSet::solve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Solved {
    /// Packets in order; the last one takes the target path.
    Sequence(Vec<PacketModel>),
    /// No such sequence exists in the bounded state model.
    Unsat,
    /// Z3 gave up (timeout, resource limit).
    Unknown(String),
}

/// The feasible paths of an NF with what is needed to solve for packets that take them.
pub struct PathSet {
    pub nf: String,
    pub paths: Vec<FeasiblePath>,
    raw: Vec<RawPath>,
    prog: NfProgram,
    timeout_ms: u32,
}

impl PathSet {
    /// Explores the NF as [`super::analyze_with`] does (same order, so the same path
    /// ids) and keeps every path with its signature.
    pub fn enumerate(prog: &NfProgram, opts: &AnalyzeOptions) -> Result<PathSet, AnalysisError> {
        let cfg = z3::Config::new();
        let ctx = z3::Context::new(&cfg);
        let mut smt = Smt::new(&ctx, opts.solver_timeout_ms);
        let labels = exec::call_labels(prog);
        let mut raw = Vec::new();
        for port in 0..prog.port_count {
            let ex = exec::Explorer::new(
                prog,
                &mut smt,
                &labels,
                port,
                raw.len(),
                opts.max_paths,
                opts.solver_timeout_ms,
            )
            .explore()?;
            raw.extend(ex.paths);
        }
        let paths = raw
            .iter()
            .enumerate()
            .map(|(i, p)| feasible(prog, i + 1, p))
            .collect();
        Ok(PathSet {
            nf: prog.name.clone(),
            paths,
            raw,
            prog: prog.clone(),
            timeout_ms: opts.solver_timeout_ms,
        })
    }

    /// The per-query solver timeout of [`PathSet::solve`] (a query that runs longer gives
    /// [`Solved::Unknown`]).
    pub fn set_solver_timeout(&mut self, ms: u32) {
        self.timeout_ms = ms;
    }

    pub fn program(&self) -> &NfProgram {
        &self.prog
    }

    /// The index (into [`PathSet::paths`]) of the path a trace took; `None` when it took
    /// none, which means the symbolic model missed a path (a bug worth reporting).
    pub fn classify(&self, trace: &PathTrace) -> Option<usize> {
        self.paths.iter().position(|p| p.signature.matches(trace))
    }

    /// The index of the path with the same identity as `sig` (e.g. the same path of the
    /// NF loaded with other config values).
    pub fn find(&self, sig: &PathSignature) -> Option<usize> {
        self.paths.iter().position(|p| p.signature.same_path(sig))
    }

    /// Solves for packets whose last one takes path `target` (an index into
    /// [`PathSet::paths`]) from the initial state, with `prefix` earlier packets chosen
    /// among the state-writing paths. `blocked` lists assignments of paths to the earlier
    /// packets (indexes into `paths`, one per packet) that must not be used again, e.g.
    /// because the interpreter disagreed with the model.
    pub fn solve(
        &self,
        target: usize,
        prefix: Prefix,
        times: Times,
        blocked: &[Vec<usize>],
    ) -> Result<Solved, AnalysisError> {
        if self.raw.get(target).is_none() {
            return Err(AnalysisError::Unsupported {
                location: self.prog.source.name.clone(),
                construct: format!("path index {target}"),
                reason: format!("the NF has {} paths", self.raw.len()),
            });
        }
        let cfg = z3::Config::new();
        let ctx = Context::new(&cfg);
        let solver = Solver::new(&ctx);
        let mut params = Params::new(&ctx);
        params.set_u32("timeout", self.timeout_ms.max(1));
        solver.set_params(&params);
        let mut enc = TermEncoder::new(&ctx);
        if let Times::Fixed { start, step } = times {
            enc.fixed_now = Some((start, step));
        }
        let mut state = SeqState::new(&self.prog, &mut enc);
        let writers: Vec<usize> = (0..self.paths.len())
            .filter(|&i| self.paths[i].writes_state)
            .collect();
        let (k, may_skip) = match prefix {
            Prefix::Exactly(k) => (k, false),
            Prefix::UpTo(k) => (k, true),
        };
        if k > 0 && writers.is_empty() {
            return Ok(Solved::Unsat);
        }
        let mut selectors = Vec::with_capacity(k);
        for j in 0..k {
            let sel = BV::new_const(&ctx, format!("sel!{j}"), 16);
            let limit = writers.len() as u64 + u64::from(may_skip);
            solver.assert(&sel.bvult(&BV::from_u64(&ctx, limit, 16)));
            // Each candidate path runs on its own copy of the state; the copies are merged
            // under the selector, so the state grows by one packet's worth of entries,
            // not one per candidate path.
            let mut branches = Vec::with_capacity(writers.len());
            for (wi, &p) in writers.iter().enumerate() {
                let g = sel._eq(&BV::from_u64(&ctx, wi as u64, 16));
                let mut branch = state.clone();
                self.encode_path(&mut enc, &solver, &mut branch, p, j, &g);
                branches.push((g, branch));
            }
            state = SeqState::merge(&ctx, &state, &branches);
            selectors.push(sel);
        }
        let yes = Bool::from_bool(&ctx, true);
        self.encode_path(&mut enc, &solver, &mut state, target, k, &yes);
        for j in 0..=k {
            for c in packet_constraints(&mut enc, j) {
                solver.assert(&c);
            }
            if j > 0 {
                let a = enc.now(j - 1);
                let b = enc.now(j);
                solver.assert(&a.bvule(&b));
            }
        }
        for b in blocked.iter().filter(|b| b.len() == k) {
            let mut same = Vec::new();
            for (j, &p) in b.iter().enumerate() {
                match writers.iter().position(|&w| w == p) {
                    Some(wi) => same.push(selectors[j]._eq(&BV::from_u64(&ctx, wi as u64, 16))),
                    None => same.push(Bool::from_bool(&ctx, false)),
                }
            }
            let refs: Vec<&Bool> = same.iter().collect();
            solver.assert(&Bool::and(&ctx, &refs).not());
        }
        match solver.check() {
            SatResult::Unsat => Ok(Solved::Unsat),
            SatResult::Unknown => Ok(Solved::Unknown(
                solver
                    .get_reason_unknown()
                    .unwrap_or_else(|| "unknown".to_string()),
            )),
            SatResult::Sat => {
                let Some(model) = solver.get_model() else {
                    return Ok(Solved::Unknown("Z3 returned no model".into()));
                };
                let mut out = Vec::new();
                for j in 0..=k {
                    let path = if let Some(sel) = selectors.get(j) {
                        let v = model
                            .eval(sel, true)
                            .and_then(|v| v.as_u64())
                            .unwrap_or(u64::MAX);
                        match writers.get(v as usize) {
                            Some(&p) => p,
                            None => continue, // an empty slot
                        }
                    } else {
                        target
                    };
                    out.push(extract(&mut enc, &model, j, path, self.raw[path].port));
                }
                Ok(Solved::Sequence(out))
            }
        }
    }

    /// Asserts that packet `ns` takes path `p` when `g` holds, and applies its state calls.
    fn encode_path<'c>(
        &self,
        enc: &mut Enc<'c>,
        solver: &Solver<'c>,
        state: &mut SeqState<'c>,
        p: usize,
        ns: usize,
        g: &Bool<'c>,
    ) {
        let raw = &self.raw[p];
        for c in &raw.conds {
            let b = enc.boolean(&c.term, ns);
            solver.assert(&g.implies(&b));
        }
        for op in &raw.ops {
            state.apply(enc, solver, op, ns, g);
        }
    }
}

fn feasible(prog: &NfProgram, id: usize, p: &RawPath) -> FeasiblePath {
    let mut steps = Vec::new();
    let mut conditions = Vec::new();
    let mut assumes = Vec::new();
    for c in &p.conds {
        let kind = match c.kind {
            CondKind::If => BranchKind::If,
            CondKind::IfLet => BranchKind::IfLet,
            CondKind::Parse(Layer::Ipv4) => BranchKind::ParseIpv4,
            CondKind::Parse(Layer::L4) => BranchKind::ParseL4,
            CondKind::Fact => continue,
        };
        let (line, col) = prog.line_col(c.span);
        let text = c.term.to_string();
        let about_state = {
            let mut any = false;
            c.term.visit_syms(&mut |s| {
                any |= matches!(s.kind, super::term::SymKind::State(_));
            });
            any
        };
        if about_state {
            assumes.push(format!("{text}  [line {line}]"));
        }
        conditions.push(format!("{text}  [line {line}]"));
        steps.push(SigStep {
            decision: Decision {
                at: c.span.lo,
                taken: c.taken,
            },
            kind,
            line,
            col,
            cond: text,
        });
    }
    let action = match &p.outcome {
        Outcome::Drop => "drop".to_string(),
        Outcome::Flood => "flood".to_string(),
        Outcome::Forward(t) => format!("forward({t})"),
    };
    FeasiblePath {
        id,
        port: p.port,
        device: super::build::device_name(prog, p.port),
        signature: PathSignature {
            port: p.port,
            steps,
            action: p.action_span.lo,
        },
        action,
        action_line: prog.line_col(p.action_span).0,
        conditions,
        assumes,
        writes_state: p.ops.iter().any(|o| {
            o.access == exec::Access::Write
                && !matches!(
                    o.method,
                    Method::TableExpire | Method::DChainExpire | Method::SketchExpire
                )
        }),
    }
}

/// The constraints that make a packet model a frame the test harness can build exactly:
/// parsing succeeds iff the EtherType and protocol say so, IPv4 headers have no options
/// and a total length that covers the frame, and frames are 60 to 1514 bytes long.
fn packet_constraints<'c>(enc: &mut Enc<'c>, j: usize) -> Vec<Bool<'c>> {
    let ctx = enc.ctx;
    let f = |enc: &mut Enc<'c>, fl: PktField| enc.field(j, fl);
    let num = |v: u64, w: u32| BV::from_u64(ctx, v, w);
    let len = f(enc, PktField::Len);
    let ety = f(enc, PktField::EthType);
    let proto = f(enc, PktField::IpProto);
    let ihl = f(enc, PktField::IpIhl);
    let iplen = f(enc, PktField::IpLen);
    let ipv4 = enc.parsed(j, Layer::Ipv4);
    let l4 = enc.parsed(j, Layer::L4);
    let is_ip = ety._eq(&num(0x0800, 16));
    let tcp_udp = Bool::or(ctx, &[&proto._eq(&num(6, 8)), &proto._eq(&num(17, 8))]);
    vec![
        len.bvuge(&num(60, 16)),
        len.bvule(&num(1514, 16)),
        ipv4._eq(&is_ip),
        l4._eq(&Bool::and(ctx, &[&ipv4, &tcp_udp])),
        ipv4.implies(&ihl._eq(&num(5, 8))),
        ipv4.implies(&iplen._eq(&len.bvsub(&num(14, 16)))),
    ]
}

fn extract<'c>(
    enc: &mut Enc<'c>,
    model: &z3::Model<'c>,
    j: usize,
    path: usize,
    port: u16,
) -> PacketModel {
    let mut fields = Vec::with_capacity(ALL_FIELDS.len());
    for fl in ALL_FIELDS {
        let v = enc.field(j, fl);
        let bits = model.eval(&v, true).and_then(|x| x.as_u64()).unwrap_or(0);
        fields.push((fl, bits));
    }
    let now = enc.now(j);
    let time_ns = model.eval(&now, true).and_then(|x| x.as_u64()).unwrap_or(0);
    let b = |enc: &mut Enc<'c>, l: Layer| {
        let v = enc.parsed(j, l);
        model
            .eval(&v, true)
            .and_then(|x| x.as_bool())
            .unwrap_or(false)
    };
    let parsed_ipv4 = b(enc, Layer::Ipv4);
    let parsed_l4 = b(enc, Layer::L4);
    PacketModel {
        path,
        port,
        time_ns,
        parsed_ipv4,
        parsed_l4,
        fields,
    }
}

// ---------------------------------------------------------------------------------------
// Terms to Z3, one namespace per packet.

/// Packet `j` of a sequence names its symbols `j!name` (`3!pkt.ip.src`).
impl Namespace for usize {
    fn symbol(self, name: &str) -> String {
        format!("{self}!{name}")
    }

    fn position(self) -> u64 {
        self as u64
    }
}

/// Terms to Z3 with one namespace per packet of the sequence. (The analysis' own `Smt`
/// knows two packets at most and hides its model; a sequence needs any number and the
/// model's values.)
type Enc<'c> = TermEncoder<'c, usize>;

impl<'c> TermEncoder<'c, usize> {
    fn field(&mut self, ns: usize, f: PktField) -> BV<'c> {
        BV::new_const(self.ctx, ns.symbol(f.path()), width(f.ty()))
    }

    fn parsed(&mut self, ns: usize, l: Layer) -> Bool<'c> {
        let n = match l {
            Layer::Ipv4 => "parse.ipv4",
            Layer::L4 => "parse.l4",
        };
        Bool::new_const(self.ctx, ns.symbol(n))
    }

    /// The scalar leaves of a symbolic value as bit-vectors (`bool` is one bit).
    fn leaves(&mut self, v: &SymVal, ns: usize) -> Vec<BV<'c>> {
        v.terms().iter().map(|t| self.bv(t, ns)).collect()
    }
}

// ---------------------------------------------------------------------------------------
// The bounded state model.

/// A table, map or allocator entry created by an earlier call of the sequence.
#[derive(Clone)]
struct Entry<'c> {
    /// The call that created it ran and succeeded (its key/value stay readable as stale
    /// data after it is freed).
    added: Bool<'c>,
    /// Still allocated.
    present: Bool<'c>,
    key: Vec<BV<'c>>,
    idx: BV<'c>,
    stamp: BV<'c>,
    /// Map entries keep their value here; tables keep values per index in `values`.
    val: Vec<BV<'c>>,
}

/// A write of a value at an index (table values, vector elements), in call order.
#[derive(Clone)]
struct IdxWrite<'c> {
    g: Bool<'c>,
    idx: BV<'c>,
    val: Vec<BV<'c>>,
}

#[derive(Clone)]
enum Obj<'c> {
    Table {
        cap: u32,
        ttl: u64,
        entries: Vec<Entry<'c>>,
        values: Vec<IdxWrite<'c>>,
        alloc: Alloc<'c>,
        key_zero: Vec<BV<'c>>,
        val_zero: Vec<BV<'c>>,
    },
    Map {
        cap: u32,
        entries: Vec<Entry<'c>>,
    },
    Vector {
        cap: u32,
        writes: Vec<IdxWrite<'c>>,
        zero: Vec<BV<'c>>,
    },
    DChain {
        cap: u32,
        ttl: u64,
        entries: Vec<Entry<'c>>,
        alloc: Alloc<'c>,
    },
    Cht {
        backends: usize,
    },
    Sketch {
        threshold: u32,
        ttl: u64,
        /// (ran, key, time) of every touch.
        touches: Vec<(Bool<'c>, Vec<BV<'c>>, BV<'c>)>,
    },
    Sets {
        sets: u32,
        per_set: u32,
        /// (present, set index, element).
        elems: Vec<(Bool<'c>, BV<'c>, Vec<BV<'c>>)>,
    },
}

#[derive(Clone)]
struct SeqState<'c> {
    objs: Vec<Obj<'c>>,
}

/// `sel_1 ? x_1 : sel_2 ? x_2 : ... : fallback` over the branches that have a value.
fn pick_bool<'c>(branches: &[(&Bool<'c>, Option<Bool<'c>>)], fallback: Bool<'c>) -> Bool<'c> {
    branches
        .iter()
        .rev()
        .fold(fallback, |acc, (sel, v)| match v {
            Some(v) => sel.ite(v, &acc),
            None => acc,
        })
}

fn pick_bv<'c>(branches: &[(&Bool<'c>, Option<BV<'c>>)], fallback: BV<'c>) -> BV<'c> {
    branches
        .iter()
        .rev()
        .fold(fallback, |acc, (sel, v)| match v {
            Some(v) => sel.ite(v, &acc),
            None => acc,
        })
}

fn pick_bvs<'c>(
    branches: &[(&Bool<'c>, Option<&Vec<BV<'c>>>)],
    fallback: &[BV<'c>],
) -> Vec<BV<'c>> {
    (0..fallback.len())
        .map(|i| {
            let per: Vec<(&Bool<'c>, Option<BV<'c>>)> = branches
                .iter()
                .map(|(s, v)| (*s, v.and_then(|v| v.get(i).cloned())))
                .collect();
            pick_bv(&per, fallback[i].clone())
        })
        .collect()
}

/// One item of a list as each branch has it (`None`: the branch has no such item).
type PerBranch<'a, 'c, T> = [(&'a Bool<'c>, Option<&'a T>)];
/// Rebuilds an item that existed before the packet from the branches' versions.
type UpdateFn<'c, T> = dyn Fn(&T, &PerBranch<'_, 'c, T>) -> T;
/// Builds an item some branch added, from the first branch that has it and all of them.
type NewFn<'c, T> = dyn Fn(&'c Context, &T, &PerBranch<'_, 'c, T>) -> T;

/// Merges lists that only grow within a packet, except for the flags and stamps of
/// existing items (`upd`); items a branch added are aligned by position, and a branch
/// without the item contributes a false flag.
fn merge_items<'c, T: Clone>(
    ctx: &'c Context,
    base: &[T],
    branches: &[(&Bool<'c>, &[T])],
    upd: &UpdateFn<'c, T>,
    new: &NewFn<'c, T>,
) -> Vec<T> {
    let n0 = base.len();
    let longest = branches.iter().map(|(_, l)| l.len()).max().unwrap_or(n0);
    let mut out = Vec::with_capacity(longest);
    for i in 0..longest {
        let per: Vec<(&Bool<'c>, Option<&T>)> =
            branches.iter().map(|(s, l)| (*s, l.get(i))).collect();
        if let Some(b) = base.get(i) {
            out.push(upd(b, &per));
        } else if let Some(first) = per.iter().find_map(|(_, v)| *v) {
            out.push(new(ctx, first, &per));
        }
    }
    out
}

fn merge_entries<'c>(
    ctx: &'c Context,
    base: &[Entry<'c>],
    branches: &[(&Bool<'c>, &[Entry<'c>])],
) -> Vec<Entry<'c>> {
    let upd = |b: &Entry<'c>, per: &[(&Bool<'c>, Option<&Entry<'c>>)]| {
        let present: Vec<_> = guarded(per, |e| e.present.clone());
        let stamp: Vec<_> = guarded(per, |e| e.stamp.clone());
        Entry {
            added: b.added.clone(),
            present: pick_bool(&present, b.present.clone()),
            key: b.key.clone(),
            idx: b.idx.clone(),
            stamp: pick_bv(&stamp, b.stamp.clone()),
            val: b.val.clone(),
        }
    };
    let new = |ctx: &'c Context, f: &Entry<'c>, per: &[(&Bool<'c>, Option<&Entry<'c>>)]| {
        let no = Bool::from_bool(ctx, false);
        let added: Vec<_> = guarded(per, |e| e.added.clone());
        let present: Vec<_> = guarded(per, |e| e.present.clone());
        let idx: Vec<_> = guarded(per, |e| e.idx.clone());
        let stamp: Vec<_> = guarded(per, |e| e.stamp.clone());
        let key: Vec<_> = guarded(per, |e| &e.key);
        let val: Vec<_> = guarded(per, |e| &e.val);
        Entry {
            added: pick_bool(&added, no.clone()),
            present: pick_bool(&present, no),
            key: pick_bvs(&key, &f.key),
            idx: pick_bv(&idx, f.idx.clone()),
            stamp: pick_bv(&stamp, f.stamp.clone()),
            val: pick_bvs(&val, &f.val),
        }
    };
    merge_items(ctx, base, branches, &upd, &new)
}

/// Projects each guarded item of a merge to one of its parts, keeping the guard.
fn guarded<'s, 'c, 't, T, U>(
    per: &[(&'s Bool<'c>, Option<&'t T>)],
    part: impl Fn(&'t T) -> U,
) -> Vec<(&'s Bool<'c>, Option<U>)> {
    per.iter().map(|(s, e)| (*s, e.map(&part))).collect()
}

fn merge_writes<'c>(
    ctx: &'c Context,
    base: &[IdxWrite<'c>],
    branches: &[(&Bool<'c>, &[IdxWrite<'c>])],
) -> Vec<IdxWrite<'c>> {
    let upd = |b: &IdxWrite<'c>, _: &[(&Bool<'c>, Option<&IdxWrite<'c>>)]| b.clone();
    let new = |ctx: &'c Context, f: &IdxWrite<'c>, per: &[(&Bool<'c>, Option<&IdxWrite<'c>>)]| {
        let no = Bool::from_bool(ctx, false);
        let g: Vec<_> = guarded(per, |w| w.g.clone());
        let idx: Vec<_> = guarded(per, |w| w.idx.clone());
        let val: Vec<_> = guarded(per, |w| &w.val);
        IdxWrite {
            g: pick_bool(&g, no),
            idx: pick_bv(&idx, f.idx.clone()),
            val: pick_bvs(&val, &f.val),
        }
    };
    merge_items(ctx, base, branches, &upd, &new)
}

type Touch<'c> = (Bool<'c>, Vec<BV<'c>>, BV<'c>);
type Elem<'c> = (Bool<'c>, BV<'c>, Vec<BV<'c>>);

impl<'c> SeqState<'c> {
    /// The state after a packet that took one of the branches (the selector of each is
    /// its guard); with no branch selected (an empty slot), the state before.
    fn merge(ctx: &'c Context, base: &SeqState<'c>, branches: &[(Bool<'c>, SeqState<'c>)]) -> Self {
        let objs = base
            .objs
            .iter()
            .enumerate()
            .map(|(o, b)| {
                let per: Vec<(&Bool<'c>, &Obj<'c>)> = branches
                    .iter()
                    .filter_map(|(g, st)| st.objs.get(o).map(|x| (g, x)))
                    .collect();
                merge_obj(ctx, b, &per)
            })
            .collect();
        SeqState { objs }
    }
}

fn merge_obj<'c>(ctx: &'c Context, base: &Obj<'c>, per: &[(&Bool<'c>, &Obj<'c>)]) -> Obj<'c> {
    match base {
        Obj::Table {
            cap,
            ttl,
            entries,
            values,
            alloc,
            key_zero,
            val_zero,
        } => {
            let mut es = Vec::new();
            let mut vs = Vec::new();
            let mut al = Vec::new();
            for (g, o) in per {
                if let Obj::Table {
                    entries,
                    values,
                    alloc,
                    ..
                } = o
                {
                    es.push((*g, &entries[..]));
                    vs.push((*g, &values[..]));
                    al.push((*g, alloc));
                }
            }
            Obj::Table {
                cap: *cap,
                ttl: *ttl,
                entries: merge_entries(ctx, entries, &es),
                values: merge_writes(ctx, values, &vs),
                alloc: alloc.merge(ctx, &al),
                key_zero: key_zero.clone(),
                val_zero: val_zero.clone(),
            }
        }
        Obj::Map { cap, entries } => {
            let es: Vec<_> = per
                .iter()
                .filter_map(|(g, o)| match o {
                    Obj::Map { entries, .. } => Some((*g, &entries[..])),
                    _ => None,
                })
                .collect();
            Obj::Map {
                cap: *cap,
                entries: merge_entries(ctx, entries, &es),
            }
        }
        Obj::Vector { cap, writes, zero } => {
            let ws: Vec<_> = per
                .iter()
                .filter_map(|(g, o)| match o {
                    Obj::Vector { writes, .. } => Some((*g, &writes[..])),
                    _ => None,
                })
                .collect();
            Obj::Vector {
                cap: *cap,
                writes: merge_writes(ctx, writes, &ws),
                zero: zero.clone(),
            }
        }
        Obj::DChain {
            cap,
            ttl,
            entries,
            alloc,
        } => {
            let mut es = Vec::new();
            let mut al = Vec::new();
            for (g, o) in per {
                if let Obj::DChain { entries, alloc, .. } = o {
                    es.push((*g, &entries[..]));
                    al.push((*g, alloc));
                }
            }
            Obj::DChain {
                cap: *cap,
                ttl: *ttl,
                entries: merge_entries(ctx, entries, &es),
                alloc: alloc.merge(ctx, &al),
            }
        }
        Obj::Cht { backends } => Obj::Cht {
            backends: *backends,
        },
        Obj::Sketch {
            threshold,
            ttl,
            touches,
        } => {
            let ts: Vec<_> = per
                .iter()
                .filter_map(|(g, o)| match o {
                    Obj::Sketch { touches, .. } => Some((*g, &touches[..])),
                    _ => None,
                })
                .collect();
            let upd = |b: &Touch<'c>, _: &[(&Bool<'c>, Option<&Touch<'c>>)]| b.clone();
            let new = |ctx: &'c Context, f: &Touch<'c>, per: &[(&Bool<'c>, Option<&Touch<'c>>)]| {
                let no = Bool::from_bool(ctx, false);
                let g: Vec<_> = guarded(per, |t| t.0.clone());
                let k: Vec<_> = guarded(per, |t| &t.1);
                let tm: Vec<_> = guarded(per, |t| t.2.clone());
                (
                    pick_bool(&g, no),
                    pick_bvs(&k, &f.1),
                    pick_bv(&tm, f.2.clone()),
                )
            };
            Obj::Sketch {
                threshold: *threshold,
                ttl: *ttl,
                touches: merge_items(ctx, touches, &ts, &upd, &new),
            }
        }
        Obj::Sets {
            sets,
            per_set,
            elems,
        } => {
            let es: Vec<_> = per
                .iter()
                .filter_map(|(g, o)| match o {
                    Obj::Sets { elems, .. } => Some((*g, &elems[..])),
                    _ => None,
                })
                .collect();
            let upd = |b: &Elem<'c>, per: &[(&Bool<'c>, Option<&Elem<'c>>)]| {
                let p: Vec<_> = guarded(per, |e| e.0.clone());
                (pick_bool(&p, b.0.clone()), b.1.clone(), b.2.clone())
            };
            let new = |ctx: &'c Context, f: &Elem<'c>, per: &[(&Bool<'c>, Option<&Elem<'c>>)]| {
                let no = Bool::from_bool(ctx, false);
                let p: Vec<_> = guarded(per, |e| e.0.clone());
                let i: Vec<_> = guarded(per, |e| e.1.clone());
                let x: Vec<_> = guarded(per, |e| &e.2);
                (
                    pick_bool(&p, no),
                    pick_bv(&i, f.1.clone()),
                    pick_bvs(&x, &f.2),
                )
            };
            Obj::Sets {
                sets: *sets,
                per_set: *per_set,
                elems: merge_items(ctx, elems, &es, &upd, &new),
            }
        }
    }
}

/// The widths of the scalar leaves of a type (records flattened in field order).
fn leaf_widths(ty: Type, records: &[RecordDef], out: &mut Vec<u32>) {
    match ty {
        Type::Record(id) => {
            if let Some(r) = records.get(id.0 as usize) {
                for (_, t) in &r.fields {
                    leaf_widths(*t, records, out);
                }
            }
        }
        other => out.push(width(other).max(1)),
    }
}

fn zero_leaves<'c>(ctx: &'c Context, ty: Option<Type>, records: &[RecordDef]) -> Vec<BV<'c>> {
    let mut ws = Vec::new();
    if let Some(t) = ty {
        leaf_widths(t, records, &mut ws);
    }
    ws.into_iter().map(|w| BV::from_u64(ctx, 0, w)).collect()
}

fn value_leaves<'c>(enc: &mut Enc<'c>, v: &Value, ty: Type, records: &[RecordDef]) -> Vec<BV<'c>> {
    let sv = SymVal::from_value(v, ty, records);
    enc.leaves(&sv, 0)
}

impl<'c> SeqState<'c> {
    fn new(prog: &NfProgram, enc: &mut Enc<'c>) -> Self {
        let ctx = enc.ctx;
        let recs = &prog.records;
        let yes = Bool::from_bool(ctx, true);
        let zero64 = BV::from_u64(ctx, 0, 64);
        let objs = prog
            .states
            .iter()
            .map(|s| match &s.kind {
                StateKind::Table {
                    key,
                    value,
                    capacity,
                    ttl,
                } => Obj::Table {
                    cap: *capacity,
                    ttl: *ttl,
                    entries: Vec::new(),
                    values: Vec::new(),
                    alloc: Alloc::new(ctx),
                    key_zero: zero_leaves(ctx, Some(*key), recs),
                    val_zero: zero_leaves(ctx, *value, recs),
                },
                StateKind::Map {
                    key,
                    value,
                    capacity,
                    init,
                } => {
                    let mut entries = Vec::new();
                    if let Some(init) = init {
                        for (i, (k, v)) in init.entries.iter().enumerate() {
                            entries.push(Entry {
                                added: yes.clone(),
                                present: yes.clone(),
                                key: value_leaves(enc, k, *key, recs),
                                idx: BV::from_u64(ctx, i as u64, 32),
                                stamp: zero64.clone(),
                                val: value_leaves(enc, v, *value, recs),
                            });
                        }
                    }
                    Obj::Map {
                        cap: *capacity,
                        entries,
                    }
                }
                StateKind::Vector { elem, capacity } => Obj::Vector {
                    cap: *capacity,
                    writes: Vec::new(),
                    zero: zero_leaves(ctx, Some(*elem), recs),
                },
                StateKind::DChain { capacity, ttl } => Obj::DChain {
                    cap: *capacity,
                    ttl: *ttl,
                    entries: Vec::new(),
                    alloc: Alloc::new(ctx),
                },
                StateKind::Cht { backends, .. } => Obj::Cht {
                    backends: backends.0 as usize,
                },
                StateKind::Sketch { threshold, ttl, .. } => Obj::Sketch {
                    threshold: *threshold,
                    ttl: *ttl,
                    touches: Vec::new(),
                },
                StateKind::Sets { sets, per_set, .. } => Obj::Sets {
                    sets: *sets,
                    per_set: *per_set,
                    elems: Vec::new(),
                },
            })
            .collect();
        SeqState { objs }
    }

    /// Applies one state call of packet `ns` (running iff `g`) to the model, asserting
    /// what its results are.
    fn apply(&mut self, enc: &mut Enc<'c>, solver: &Solver<'c>, op: &Op, ns: usize, g: &Bool<'c>) {
        if op.implicit {
            return;
        }
        let ctx = enc.ctx;
        let g = match &op.guard {
            Some(t) => {
                let b = enc.boolean(t, ns);
                Bool::and(ctx, &[g, &b])
            }
            None => g.clone(),
        };
        let now = enc.now(ns);
        let key = op.key.as_ref().map(|k| enc.leaves(k, ns));
        let arg = op.arg.as_ref().map(|a| enc.leaves(a, ns));
        let index = op.index.as_ref().map(|t| enc.bv_w(t, ns, 32));
        let ok = op.ok.as_ref().map(|t| enc.boolean(t, ns));
        let result = op.result.as_ref().map(|r| enc.leaves(r, ns));
        let result_bool = op.result.as_ref().and_then(|r| match r {
            SymVal::Scalar(t) if t.ty() == Type::Bool => Some(enc.boolean(t, ns)),
            _ => None,
        });
        let assert = |c: Bool<'c>| solver.assert(&g.implies(&c));
        let n32 = |v: u64| BV::from_u64(ctx, v, 32);
        let sid = op.state.0 as usize;
        // The CHT reads its backend table.
        if let Some(Obj::Cht { backends }) = self.objs.get(sid) {
            let b = *backends;
            if let (Method::ChtFind, Some(Obj::Table { entries, .. })) =
                (op.method, self.objs.get(b))
            {
                let found = any(ctx, entries.iter().map(|e| e.present.clone()));
                if let Some(ok) = &ok {
                    assert(ok._eq(&found));
                }
                // Which live backend the real table picks depends on the hash of the
                // argument; the model only considers states with at most one live
                // backend here, where the choice is forced (so its answer is exact).
                let live = count(ctx, entries.iter().map(|e| e.present.clone()));
                assert(live.bvule(&n32(1)));
                if let Some(r) = result.as_ref().and_then(|r| r.first()) {
                    let mut idx = n32(0);
                    for e in entries.iter().rev() {
                        idx = e.present.ite(&e.idx, &idx);
                    }
                    assert(found.implies(&r._eq(&fit(&idx, r.get_size()))));
                }
            }
            return;
        }
        let Some(obj) = self.objs.get_mut(sid) else {
            return;
        };
        match obj {
            Obj::Table {
                cap,
                ttl,
                entries,
                values,
                alloc,
                key_zero,
                val_zero,
            } => {
                let cap = *cap;
                match op.method {
                    Method::TableExpire => {
                        let one = expire(ctx, entries, alloc, *ttl, &g, &now);
                        assert(one);
                    }
                    Method::TableGet | Method::TableContains | Method::TableRemove => {
                        let k = key.unwrap_or_default();
                        let hit = any(
                            ctx,
                            entries.iter().map(|e| {
                                Bool::and(ctx, &[&e.present, &eq_leaves(ctx, &e.key, &k)])
                            }),
                        );
                        let flag = ok.clone().or(result_bool.clone());
                        if let Some(f) = &flag {
                            assert(f._eq(&hit));
                        }
                        if op.method == Method::TableGet {
                            if let Some(r) = result.as_ref().and_then(|r| r.first()) {
                                let mut idx = n32(0);
                                for e in entries.iter() {
                                    let m =
                                        Bool::and(ctx, &[&e.present, &eq_leaves(ctx, &e.key, &k)]);
                                    idx = m.ite(&e.idx, &idx);
                                }
                                assert(hit.implies(&r._eq(&fit(&idx, r.get_size()))));
                            }
                        }
                        if op.method == Method::TableRemove {
                            let mut freed_idx = n32(0);
                            for e in entries.iter_mut() {
                                let m =
                                    Bool::and(ctx, &[&g, &e.present, &eq_leaves(ctx, &e.key, &k)]);
                                freed_idx = m.ite(&e.idx, &freed_idx);
                                e.present = Bool::and(ctx, &[&e.present, &m.not()]);
                            }
                            alloc.free.push((Bool::and(ctx, &[&g, &hit]), freed_idx));
                        }
                    }
                    Method::TableAdd => {
                        let k = key.unwrap_or_default();
                        let hit = any(
                            ctx,
                            entries.iter().map(|e| {
                                Bool::and(ctx, &[&e.present, &eq_leaves(ctx, &e.key, &k)])
                            }),
                        );
                        let count = count(ctx, entries.iter().map(|e| e.present.clone()));
                        let room = count.bvult(&n32(cap as u64));
                        let can = Bool::and(ctx, &[&hit.not(), &room]);
                        let done = match &ok {
                            Some(f) => {
                                assert(f._eq(&can));
                                f.clone()
                            }
                            None => can.clone(),
                        };
                        let added = Bool::and(ctx, &[&g, &done]);
                        let given = alloc.take(ctx, &added);
                        let idx = match result.as_ref().and_then(|r| r.first()) {
                            Some(r) => {
                                let r = fit(r, 32);
                                assert(done.implies(&r._eq(&given)));
                                r
                            }
                            None => given,
                        };
                        entries.push(Entry {
                            added: added.clone(),
                            present: added.clone(),
                            key: k,
                            idx: idx.clone(),
                            stamp: now.clone(),
                            val: Vec::new(),
                        });
                        values.push(IdxWrite {
                            g: added.clone(),
                            idx,
                            val: arg.unwrap_or_else(|| val_zero.clone()),
                        });
                    }
                    Method::TableRefresh | Method::TableHasIndex => {
                        let i = index.unwrap_or_else(|| n32(u64::MAX));
                        let live = any(
                            ctx,
                            entries
                                .iter()
                                .map(|e| Bool::and(ctx, &[&e.present, &e.idx._eq(&i)])),
                        );
                        let in_range = i.bvult(&n32(cap as u64));
                        if let Some(r) = &result_bool {
                            assert(r._eq(&Bool::and(ctx, &[&live, &in_range])));
                        }
                        if op.method == Method::TableRefresh {
                            for e in entries.iter_mut() {
                                let m = Bool::and(ctx, &[&g, &e.present, &e.idx._eq(&i)]);
                                e.stamp = m.ite(&now, &e.stamp);
                            }
                        }
                    }
                    Method::TableKey => {
                        let i = index.unwrap_or_else(|| n32(u64::MAX));
                        let mut out = key_zero.clone();
                        for e in entries.iter() {
                            let m = Bool::and(ctx, &[&e.added, &e.idx._eq(&i)]);
                            out = select(&m, &e.key, &out);
                        }
                        if let Some(r) = &result {
                            assert(eq_leaves(ctx, r, &out));
                        }
                    }
                    Method::TableValue => {
                        let i = index.unwrap_or_else(|| n32(u64::MAX));
                        let mut out = val_zero.clone();
                        for w in values.iter() {
                            let m = Bool::and(ctx, &[&w.g, &w.idx._eq(&i)]);
                            out = select(&m, &w.val, &out);
                        }
                        if let Some(r) = &result {
                            assert(eq_leaves(ctx, r, &out));
                        }
                    }
                    Method::TableSetValue => {
                        let i = index.unwrap_or_else(|| n32(u64::MAX));
                        let in_range = i.bvult(&n32(cap as u64));
                        values.push(IdxWrite {
                            g: Bool::and(ctx, &[&g, &in_range]),
                            idx: i,
                            val: arg.unwrap_or_else(|| val_zero.clone()),
                        });
                    }
                    Method::TableFull | Method::TableSize => {
                        let c = count(ctx, entries.iter().map(|e| e.present.clone()));
                        if op.method == Method::TableFull {
                            if let Some(r) = &result_bool {
                                assert(r._eq(&c._eq(&n32(cap as u64))));
                            }
                        } else if let Some(r) = result.as_ref().and_then(|r| r.first()) {
                            assert(r._eq(&fit(&c, r.get_size())));
                        }
                    }
                    _ => {}
                }
            }
            Obj::Map { cap, entries } => {
                let cap = *cap;
                let k = key.unwrap_or_default();
                let found = any(
                    ctx,
                    entries
                        .iter()
                        .map(|e| Bool::and(ctx, &[&e.present, &eq_leaves(ctx, &e.key, &k)])),
                );
                match op.method {
                    Method::MapGet => {
                        if let Some(f) = &ok {
                            assert(f._eq(&found));
                        }
                        if let (Some(r), Some(first)) = (&result, entries.first()) {
                            let mut out: Vec<BV<'c>> = first.val.clone();
                            for e in entries.iter() {
                                let m = Bool::and(ctx, &[&e.present, &eq_leaves(ctx, &e.key, &k)]);
                                out = select(&m, &e.val, &out);
                            }
                            assert(found.implies(&eq_leaves(ctx, r, &out)));
                        }
                    }
                    Method::MapContains => {
                        if let Some(r) = &result_bool {
                            assert(r._eq(&found));
                        }
                    }
                    Method::MapPut => {
                        let c = count(ctx, entries.iter().map(|e| e.present.clone()));
                        let can = Bool::and(ctx, &[&found.not(), &c.bvult(&n32(cap as u64))]);
                        if let Some(r) = &result_bool {
                            assert(r._eq(&can));
                        }
                        let added = Bool::and(ctx, &[&g, &can]);
                        entries.push(Entry {
                            added: added.clone(),
                            present: added,
                            key: k,
                            idx: n32(0),
                            stamp: now.clone(),
                            val: arg.unwrap_or_default(),
                        });
                    }
                    Method::MapErase => {
                        if let Some(r) = &result_bool {
                            assert(r._eq(&found));
                        }
                        for e in entries.iter_mut() {
                            let m = Bool::and(ctx, &[&g, &eq_leaves(ctx, &e.key, &k)]);
                            e.present = Bool::and(ctx, &[&e.present, &m.not()]);
                        }
                    }
                    Method::MapSize => {
                        let c = count(ctx, entries.iter().map(|e| e.present.clone()));
                        if let Some(r) = result.as_ref().and_then(|r| r.first()) {
                            assert(r._eq(&fit(&c, r.get_size())));
                        }
                    }
                    _ => {}
                }
            }
            Obj::Vector { cap, writes, zero } => {
                let i = index.unwrap_or_else(|| n32(u64::MAX));
                match op.method {
                    Method::VectorGet => {
                        let mut out = zero.clone();
                        for w in writes.iter() {
                            let m = Bool::and(ctx, &[&w.g, &w.idx._eq(&i)]);
                            out = select(&m, &w.val, &out);
                        }
                        if let Some(r) = &result {
                            assert(eq_leaves(ctx, r, &out));
                        }
                    }
                    Method::VectorSet => {
                        let in_range = i.bvult(&n32(*cap as u64));
                        writes.push(IdxWrite {
                            g: Bool::and(ctx, &[&g, &in_range]),
                            idx: i,
                            val: arg.unwrap_or_else(|| zero.clone()),
                        });
                    }
                    _ => {}
                }
            }
            Obj::DChain {
                cap,
                ttl,
                entries,
                alloc,
            } => {
                let cap = *cap;
                match op.method {
                    Method::DChainExpire => {
                        let one = expire(ctx, entries, alloc, *ttl, &g, &now);
                        assert(one);
                    }
                    Method::DChainAllocate => {
                        let c = count(ctx, entries.iter().map(|e| e.present.clone()));
                        let can = c.bvult(&n32(cap as u64));
                        let done = match &ok {
                            Some(f) => {
                                assert(f._eq(&can));
                                f.clone()
                            }
                            None => can,
                        };
                        let added = Bool::and(ctx, &[&g, &done]);
                        let given = alloc.take(ctx, &added);
                        let idx = match result.as_ref().and_then(|r| r.first()) {
                            Some(r) => {
                                let r = fit(r, 32);
                                assert(done.implies(&r._eq(&given)));
                                r
                            }
                            None => given,
                        };
                        entries.push(Entry {
                            added: added.clone(),
                            present: added.clone(),
                            key: Vec::new(),
                            idx,
                            stamp: now.clone(),
                            val: Vec::new(),
                        });
                    }
                    Method::DChainRefresh | Method::DChainIsAllocated | Method::DChainFree => {
                        let i = index.unwrap_or_else(|| n32(u64::MAX));
                        let live = any(
                            ctx,
                            entries
                                .iter()
                                .map(|e| Bool::and(ctx, &[&e.present, &e.idx._eq(&i)])),
                        );
                        let in_range = i.bvult(&n32(cap as u64));
                        if let Some(r) = &result_bool {
                            assert(r._eq(&Bool::and(ctx, &[&live, &in_range])));
                        }
                        for e in entries.iter_mut() {
                            let m = Bool::and(ctx, &[&g, &e.present, &e.idx._eq(&i)]);
                            match op.method {
                                Method::DChainRefresh => e.stamp = m.ite(&now, &e.stamp),
                                Method::DChainFree => {
                                    e.present = Bool::and(ctx, &[&e.present, &m.not()])
                                }
                                _ => {}
                            }
                        }
                        if op.method == Method::DChainFree {
                            alloc
                                .free
                                .push((Bool::and(ctx, &[&g, &live, &in_range]), i));
                        }
                    }
                    _ => {}
                }
            }
            Obj::Cht { .. } => {}
            Obj::Sketch {
                threshold,
                ttl,
                touches,
            } => {
                let k = key.unwrap_or_default();
                match op.method {
                    Method::SketchOver => {
                        // n touches leave a count of n - 1 in every cell of the key. Only
                        // touches within the last `ttl` are counted: those cells cannot
                        // have expired in between (more touches only raise the count).
                        let since = window_start(ctx, &now, *ttl);
                        let n = count(
                            ctx,
                            touches.iter().map(|(tg, tk, tt)| {
                                Bool::and(ctx, &[tg, &eq_leaves(ctx, tk, &k), &tt.bvuge(&since)])
                            }),
                        );
                        let over = n.bvuge(&n32(*threshold as u64 + 2));
                        if let Some(r) = &result_bool {
                            assert(r._eq(&over));
                        }
                    }
                    Method::SketchTouch => touches.push((g.clone(), k, now.clone())),
                    _ => {}
                }
            }
            Obj::Sets {
                sets,
                per_set,
                elems,
            } => {
                let i = index.unwrap_or_else(|| n32(u64::MAX));
                let x = arg.unwrap_or_default();
                let in_range = i.bvult(&n32(*sets as u64));
                let in_set =
                    |e: &(Bool<'c>, BV<'c>, Vec<BV<'c>>)| Bool::and(ctx, &[&e.0, &e.1._eq(&i)]);
                match op.method {
                    Method::SetsClear => {
                        for e in elems.iter_mut() {
                            let m = Bool::and(ctx, &[&g, &e.1._eq(&i)]);
                            e.0 = Bool::and(ctx, &[&e.0, &m.not()]);
                        }
                    }
                    Method::SetsContains | Method::SetsInsert => {
                        let has = any(
                            ctx,
                            elems
                                .iter()
                                .map(|e| Bool::and(ctx, &[&in_set(e), &eq_leaves(ctx, &e.2, &x)])),
                        );
                        if op.method == Method::SetsContains {
                            if let Some(r) = &result_bool {
                                assert(r._eq(&Bool::and(ctx, &[&has, &in_range])));
                            }
                        } else {
                            let n = count(ctx, elems.iter().map(in_set));
                            let can = Bool::and(
                                ctx,
                                &[&in_range, &has.not(), &n.bvult(&n32(*per_set as u64))],
                            );
                            let done = match &result_bool {
                                Some(r) => {
                                    assert(r._eq(&can));
                                    r.clone()
                                }
                                None => can,
                            };
                            elems.push((Bool::and(ctx, &[&g, &done]), i, x));
                        }
                    }
                    Method::SetsCount => {
                        let n = count(ctx, elems.iter().map(in_set));
                        if let Some(r) = result.as_ref().and_then(|r| r.first()) {
                            assert(r._eq(&fit(&n, r.get_size())));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `now - ttl`, saturating at 0: what expiry compares stamps with.
fn window_start<'c>(ctx: &'c Context, now: &BV<'c>, ttl: u64) -> BV<'c> {
    let ttl_bv = BV::from_u64(ctx, ttl, 64);
    let zero = BV::from_u64(ctx, 0, 64);
    now.bvuge(&ttl_bv).ite(&now.bvsub(&ttl_bv), &zero)
}

/// Expiry at `now`: entries stamped strictly before `now - ttl` (saturating) are freed.
/// Expiry at `now`: entries stamped strictly before `now - ttl` (saturating) are freed
/// and their indexes go back to the allocator. Gives the condition "at most one entry is
/// freed", which the caller asserts: with several, the order in which they return to the
/// LIFO free list (oldest first) would decide later indexes, which the model does not
/// follow.
fn expire<'c>(
    ctx: &'c Context,
    entries: &mut [Entry<'c>],
    alloc: &mut Alloc<'c>,
    ttl: u64,
    g: &Bool<'c>,
    now: &BV<'c>,
) -> Bool<'c> {
    let threshold = window_start(ctx, now, ttl);
    let mut freed_any = Vec::new();
    let mut freed_idx = BV::from_u64(ctx, 0, 32);
    for e in entries.iter_mut() {
        let old = e.stamp.bvult(&threshold);
        let freed = Bool::and(ctx, &[g, &e.present, &old]);
        freed_idx = freed.ite(&e.idx, &freed_idx);
        e.present = Bool::and(ctx, &[&e.present, &freed.not()]);
        freed_any.push(freed);
    }
    let n = count(ctx, freed_any.iter().cloned());
    alloc
        .free
        .push((any(ctx, freed_any.into_iter()), freed_idx));
    n.bvule(&BV::from_u64(ctx, 1, 32))
}

/// The index allocator of a table or dchain: a fresh one hands out 0, 1, 2, ...; a freed
/// index goes on top of a LIFO free list and is the next one handed out.
#[derive(Clone)]
struct Alloc<'c> {
    /// The next never-used index.
    next: BV<'c>,
    /// Freed indexes in the order they were freed, each with whether it is still on the
    /// free list.
    free: Vec<(Bool<'c>, BV<'c>)>,
}

impl<'c> Alloc<'c> {
    fn new(ctx: &'c Context) -> Self {
        Alloc {
            next: BV::from_u64(ctx, 0, 32),
            free: Vec::new(),
        }
    }

    /// The index an allocation gets; when `done`, the allocator moves on.
    fn take(&mut self, ctx: &'c Context, done: &Bool<'c>) -> BV<'c> {
        let on_list = any(ctx, self.free.iter().map(|(a, _)| a.clone()));
        let mut top = self.next.clone();
        for (alive, idx) in &self.free {
            top = alive.ite(idx, &top);
        }
        // Pop the top: the last slot still on the list.
        let mut later = Bool::from_bool(ctx, false);
        for (alive, _) in self.free.iter_mut().rev() {
            let is_top = Bool::and(ctx, &[alive, &later.not()]);
            later = Bool::or(ctx, &[&later, alive]);
            let popped = Bool::and(ctx, &[done, &is_top]);
            *alive = Bool::and(ctx, &[alive, &popped.not()]);
        }
        let fresh = Bool::and(ctx, &[done, &on_list.not()]);
        self.next = fresh.ite(&self.next.bvadd(&BV::from_u64(ctx, 1, 32)), &self.next);
        top
    }

    fn merge(&self, ctx: &'c Context, per: &[(&Bool<'c>, &Alloc<'c>)]) -> Alloc<'c> {
        let next: Vec<_> = per
            .iter()
            .map(|(s, a)| (*s, Some(a.next.clone())))
            .collect();
        let lists: Vec<(&Bool<'c>, &[(Bool<'c>, BV<'c>)])> =
            per.iter().map(|(s, a)| (*s, &a.free[..])).collect();
        let upd = |b: &(Bool<'c>, BV<'c>), per: &[(&Bool<'c>, Option<&(Bool<'c>, BV<'c>)>)]| {
            let p: Vec<_> = guarded(per, |e| e.0.clone());
            (pick_bool(&p, b.0.clone()), b.1.clone())
        };
        let new = |ctx: &'c Context,
                   f: &(Bool<'c>, BV<'c>),
                   per: &[(&Bool<'c>, Option<&(Bool<'c>, BV<'c>)>)]| {
            let no = Bool::from_bool(ctx, false);
            let p: Vec<_> = guarded(per, |e| e.0.clone());
            let i: Vec<_> = guarded(per, |e| e.1.clone());
            (pick_bool(&p, no), pick_bv(&i, f.1.clone()))
        };
        Alloc {
            next: pick_bv(&next, self.next.clone()),
            free: merge_items(ctx, &self.free, &lists, &upd, &new),
        }
    }
}

fn any<'c>(ctx: &'c Context, it: impl Iterator<Item = Bool<'c>>) -> Bool<'c> {
    let v: Vec<Bool<'c>> = it.collect();
    if v.is_empty() {
        return Bool::from_bool(ctx, false);
    }
    let refs: Vec<&Bool<'c>> = v.iter().collect();
    Bool::or(ctx, &refs)
}

fn count<'c>(ctx: &'c Context, it: impl Iterator<Item = Bool<'c>>) -> BV<'c> {
    let one = BV::from_u64(ctx, 1, 32);
    let zero = BV::from_u64(ctx, 0, 32);
    it.fold(zero.clone(), |acc, b| acc.bvadd(&b.ite(&one, &zero)))
}

fn eq_leaves<'c>(ctx: &'c Context, a: &[BV<'c>], b: &[BV<'c>]) -> Bool<'c> {
    if a.len() != b.len() {
        return Bool::from_bool(ctx, false);
    }
    let eqs: Vec<Bool<'c>> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let w = x.get_size().max(y.get_size());
            fit(x, w)._eq(&fit(y, w))
        })
        .collect();
    if eqs.is_empty() {
        return Bool::from_bool(ctx, true);
    }
    let refs: Vec<&Bool<'c>> = eqs.iter().collect();
    Bool::and(ctx, &refs)
}

fn select<'c>(c: &Bool<'c>, a: &[BV<'c>], b: &[BV<'c>]) -> Vec<BV<'c>> {
    if a.len() != b.len() {
        return b.to_vec();
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let w = y.get_size();
            c.ite(&fit(x, w), y)
        })
        .collect()
}
