//! Exhaustive symbolic execution of `process`, one exploration per input port.
//!
//! The input port (`in`) and every config value are concrete, so branches on them fold
//! away. Packet fields, `now`, the outcome of `parse` and the results of state calls are
//! symbols. Every branch whose both sides are possible forks the path; a side whose
//! condition contradicts the path so far is pruned with Z3 (depth first, one incremental
//! solver scope per branch). State calls are recorded in order as [`Op`]s; their results
//! are fresh symbols (a hit flag and an index for `get`, one symbol per field of a value
//! read), tied together only by what the path itself knows (an index is below the
//! capacity; reading the same slot twice on a path gives the same value).

use super::classes::{PacketClass, ETHERTYPE_IPV4};
use super::error::AnalysisError;
use super::solver::{Ns, Smt};
use super::term::{SymKind, SymVal, Symbol, Term};
use crate::lang::ast::{BinOp, Layer};
use crate::lang::diag::Span;
use crate::lang::ir::{
    Action, ConfigValue, Expr, ExprKind, LocalId, Method, NfProgram, PktField, StateCall, StateId,
    StateKind, Stmt, StmtKind,
};
use crate::lang::ops::Builtin;
use crate::lang::types::{RecordDef, Type};
use std::collections::HashMap;
use std::rc::Rc;

/// Whether a state call reads or changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Where an index came from, on this path.
#[derive(Clone, Debug)]
pub enum Provenance {
    /// Returned by `get(key)` / `add(key)` of a table: the index of that key's entry.
    Key {
        state: StateId,
        key: SymVal,
        label: String,
    },
    /// Freshly allocated by a `dchain`: an entry no other packet holds yet.
    Fresh { state: StateId, label: String },
    /// Chosen by a consistent-hash table among the live backends.
    Chosen { state: StateId, label: String },
}

/// One state operation on a path.
#[derive(Clone, Debug)]
pub struct Op {
    pub state: StateId,
    pub method: Method,
    pub span: Span,
    /// `flows.get@30`: also the prefix of the symbols of its result.
    pub label: String,
    pub access: Access,
    /// The key argument (`get`, `add`, `put`, sketch calls, ...).
    pub key: Option<SymVal>,
    /// The index argument (`value`, `refresh`, `has_index`, vector and sets calls, ...).
    pub index: Option<Term>,
    /// Where the index came from, when it is exactly an index returned earlier.
    pub index_origin: Option<Provenance>,
    /// The value stored (`add`, `put`, `set_value`, `set`) or the set element.
    pub arg: Option<SymVal>,
    /// What the call gave: the hit/ok flag of *opt* calls, else the value.
    pub ok: Option<Term>,
    pub result: Option<SymVal>,
    /// The condition under which the call runs, when it sits on the right of `&&`/`||`.
    pub guard: Option<Term>,
    /// Added by the analysis, not written in the source (the CHT scanning its backends).
    pub implicit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CondKind {
    If,
    IfLet,
    Parse(Layer),
    /// A fact of the model (an index is below the capacity), not a branch.
    Fact,
}

/// One conjunct of a path condition.
#[derive(Clone, Debug)]
pub struct Cond {
    pub term: Term,
    pub span: Span,
    pub kind: CondKind,
    /// Which side of the branch the path took.
    pub taken: bool,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Drop,
    Flood,
    Forward(Term),
}

/// A complete path of one exploration.
pub struct RawPath {
    pub port: u16,
    pub conds: Vec<Cond>,
    pub ops: Vec<Op>,
    pub writes: Vec<(PktField, Term)>,
    pub outcome: Outcome,
    pub outcome_note: Option<String>,
    pub action_span: Span,
    pub classes: Vec<PacketClass>,
}

pub enum RawNode {
    Branch {
        cond: Term,
        span: Span,
        what: &'static str,
        /// `None`: the side is infeasible (pruned).
        yes: Option<usize>,
        no: Option<usize>,
    },
    Op {
        op: Op,
        next: Option<usize>,
    },
    End {
        path: usize,
    },
}

/// The execution tree and paths of one input port.
pub struct PortExec {
    pub port: u16,
    pub root: Option<usize>,
    pub nodes: Vec<RawNode>,
    pub paths: Vec<RawPath>,
    pub pruned: usize,
}

#[derive(Clone, Copy)]
enum Attach {
    Root,
    Next(usize),
    Yes(usize),
    No(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MemoTag {
    Key,
    Value,
    Elem,
}

#[derive(Clone)]
struct PState<'a> {
    stack: Vec<&'a [Stmt]>,
    locals: Vec<Option<SymVal>>,
    writes: Vec<(PktField, Term)>,
    conds: Vec<Cond>,
    ops: Vec<Op>,
    memo: Vec<(StateId, MemoTag, String, SymVal)>,
    prov: Vec<(String, Provenance)>,
    attach: Attach,
}

/// Labels of every state call site: `object.method@line` (`:col` added when a line holds
/// two calls of the same method on the same object).
pub fn call_labels(prog: &NfProgram) -> HashMap<u32, String> {
    let calls = prog.state_calls();
    let mut base: Vec<(u32, String, (u32, u32))> = Vec::new();
    for c in &calls {
        let name = prog
            .states
            .get(c.state.0 as usize)
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        let (l, col) = prog.line_col(c.span);
        base.push((
            c.span.lo,
            format!("{}.{}@{}", name, c.method.name(), l),
            (l, col),
        ));
    }
    let mut out = HashMap::new();
    for (lo, label, (_, col)) in &base {
        let dup = base.iter().filter(|(_, l2, _)| l2 == label).count() > 1;
        let label = if dup {
            format!("{label}:{col}")
        } else {
            label.clone()
        };
        out.insert(*lo, label);
    }
    out
}

/// Whether a method changes its object.
pub fn access_of(m: Method) -> Access {
    if m.mutates() {
        Access::Write
    } else {
        Access::Read
    }
}

/// The capacity bounding the indexes of an object.
fn capacity(kind: &StateKind) -> u64 {
    match kind {
        StateKind::Table { capacity, .. }
        | StateKind::Map { capacity, .. }
        | StateKind::Vector { capacity, .. }
        | StateKind::DChain { capacity, .. } => *capacity as u64,
        StateKind::Cht { backend_count, .. } => *backend_count as u64,
        StateKind::Sketch { width, .. } => *width as u64,
        StateKind::Sets { sets, .. } => *sets as u64,
    }
}

pub struct Explorer<'a, 'p, 'c> {
    prog: &'a NfProgram,
    smt: &'p mut Smt<'c>,
    labels: &'p HashMap<u32, String>,
    port: u16,
    /// Paths found so far in earlier explorations (for the limit).
    paths_before: usize,
    max_paths: usize,
    timeout_ms: u32,
    syms: HashMap<String, Rc<Symbol>>,
    nodes: Vec<RawNode>,
    paths: Vec<RawPath>,
    root: Option<usize>,
    pruned: usize,
}

type R<T> = Result<T, AnalysisError>;

impl<'a, 'p, 'c> Explorer<'a, 'p, 'c> {
    pub fn new(
        prog: &'a NfProgram,
        smt: &'p mut Smt<'c>,
        labels: &'p HashMap<u32, String>,
        port: u16,
        paths_before: usize,
        max_paths: usize,
        timeout_ms: u32,
    ) -> Self {
        Explorer {
            prog,
            smt,
            labels,
            port,
            paths_before,
            max_paths,
            timeout_ms,
            syms: HashMap::new(),
            nodes: Vec::new(),
            paths: Vec::new(),
            root: None,
            pruned: 0,
        }
    }

    /// Explores every path of `process` for packets arriving on the port.
    pub fn explore(mut self) -> R<PortExec> {
        self.smt.push();
        let result = self.explore_inner();
        self.smt.pop();
        result?;
        Ok(PortExec {
            port: self.port,
            root: self.root,
            nodes: self.nodes,
            paths: self.paths,
            pruned: self.pruned,
        })
    }

    fn explore_inner(&mut self) -> R<()> {
        // What parsing implies, whatever the parse mode (strict mode adds IHL and length
        // checks, which only make fewer packets parse).
        let ipv4 = self.parsed(Layer::Ipv4);
        let l4 = self.parsed(Layer::L4);
        let ety = self.packet(PktField::EthType);
        let len = self.packet(PktField::Len);
        let proto = self.packet(PktField::IpProto);
        let ipv4_facts = Term::and(
            Term::eq(ety, Term::constant(Type::U16, ETHERTYPE_IPV4)),
            Term::binary(BinOp::Ge, len.clone(), Term::constant(Type::U16, 34)),
        );
        let l4_facts = Term::and(
            Term::and(
                ipv4.clone(),
                Term::or(
                    Term::eq(proto.clone(), Term::constant(Type::U8, 6)),
                    Term::eq(proto, Term::constant(Type::U8, 17)),
                ),
            ),
            Term::binary(BinOp::Ge, len, Term::constant(Type::U16, 38)),
        );
        self.smt
            .assert(&Term::or(Term::negate(ipv4), ipv4_facts), Ns::One);
        self.smt
            .assert(&Term::or(Term::negate(l4), l4_facts), Ns::One);
        let st = PState {
            stack: vec![&self.prog.process[..]],
            locals: vec![None; self.prog.locals.len()],
            writes: Vec::new(),
            conds: Vec::new(),
            ops: Vec::new(),
            memo: Vec::new(),
            prov: Vec::new(),
            attach: Attach::Root,
        };
        self.run(st)
    }

    fn loc(&self, span: Span) -> String {
        self.prog.location(span)
    }

    fn sym(&mut self, name: String, kind: SymKind, ty: Type) -> Term {
        let s = self
            .syms
            .entry(name.clone())
            .or_insert_with(|| Rc::new(Symbol { name, kind, ty }))
            .clone();
        Term::sym(s)
    }

    fn packet(&mut self, f: PktField) -> Term {
        self.sym(f.path().to_string(), SymKind::Packet(f), f.ty())
    }

    fn parsed(&mut self, l: Layer) -> Term {
        let name = match l {
            Layer::Ipv4 => "parse.ipv4",
            Layer::L4 => "parse.l4",
        };
        self.sym(name.to_string(), SymKind::Parsed(l), Type::Bool)
    }

    fn fresh(&mut self, name: String, state: StateId, ty: Type) -> SymVal {
        match ty {
            Type::Record(id) => {
                let fields: Vec<(String, Type)> = self
                    .prog
                    .records
                    .get(id.0 as usize)
                    .map(|r: &RecordDef| r.fields.clone())
                    .unwrap_or_default();
                let vals: Vec<SymVal> = fields
                    .into_iter()
                    .map(|(f, t)| self.fresh(format!("{name}.{f}"), state, t))
                    .collect();
                SymVal::Record(id, vals.into())
            }
            _ => SymVal::Scalar(self.sym(name, SymKind::State(state), ty)),
        }
    }

    fn fresh_scalar(&mut self, name: String, state: StateId, ty: Type) -> Term {
        match self.fresh(name, state, ty) {
            SymVal::Scalar(t) => t,
            SymVal::Record(..) => Term::bool(false),
        }
    }

    fn add_node(&mut self, attach: Attach, node: RawNode) -> usize {
        let id = self.nodes.len();
        self.nodes.push(node);
        match attach {
            Attach::Root => self.root = Some(id),
            Attach::Next(p) => {
                if let Some(RawNode::Op { next, .. }) = self.nodes.get_mut(p) {
                    *next = Some(id);
                }
            }
            Attach::Yes(p) | Attach::No(p) => {
                let is_yes = matches!(attach, Attach::Yes(_));
                if let Some(RawNode::Branch { yes, no, .. }) = self.nodes.get_mut(p) {
                    if is_yes {
                        *yes = Some(id);
                    } else {
                        *no = Some(id);
                    }
                }
            }
        }
        id
    }

    fn solver_err(&self, span: Span, what: String, reason: String) -> AnalysisError {
        AnalysisError::Solver {
            location: self.loc(span),
            what,
            reason,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Adds a fact of the model to the path (asserted in the current solver scope).
    fn fact(&mut self, st: &mut PState<'a>, t: Term, span: Span) {
        if t.as_bool() == Some(true) {
            return;
        }
        self.smt.assert(&t, Ns::One);
        st.conds.push(Cond {
            term: t,
            span,
            kind: CondKind::Fact,
            taken: true,
        });
    }

    fn run(&mut self, mut st: PState<'a>) -> R<()> {
        loop {
            let stmt = loop {
                match st.stack.last_mut() {
                    None => {
                        return Err(AnalysisError::Unsupported {
                            location: self.prog.source.name.clone(),
                            construct: "the end of `process`".into(),
                            reason: "a path reaches the end of `process` without an action".into(),
                        })
                    }
                    Some(top) => match top.split_first() {
                        Some((s, rest)) => {
                            *top = rest;
                            break s;
                        }
                        None => {
                            st.stack.pop();
                        }
                    },
                }
            };
            match &stmt.kind {
                StmtKind::Let { local, value } | StmtKind::Assign { local, value } => {
                    let v = self.eval(&mut st, value, &None)?;
                    self.set_local(&mut st, *local, v, stmt.span)?;
                }
                StmtKind::SetField { field, value } => {
                    let t = self.eval_scalar(&mut st, value, &None)?;
                    st.writes.retain(|(f, _)| f != field);
                    st.writes.push((*field, t));
                }
                StmtKind::If { cond, then, els } => {
                    let c = self.eval_scalar(&mut st, cond, &None)?;
                    match c.as_bool() {
                        Some(true) => st.stack.push(then),
                        Some(false) => st.stack.push(els),
                        None => return self.fork(st, c, stmt.span, CondKind::If, then, els, None),
                    }
                }
                StmtKind::IfLet {
                    local,
                    call,
                    then,
                    els,
                } => {
                    let (ok, val) = self.call(&mut st, call, &None)?;
                    let ok = ok.unwrap_or_else(|| Term::bool(true));
                    let Some(val) = val else {
                        return Err(AnalysisError::Unsupported {
                            location: self.loc(call.span),
                            construct: format!("`if let` on `{}`", call.method.name()),
                            reason: "the call has no result to bind".into(),
                        });
                    };
                    match ok.as_bool() {
                        Some(true) => {
                            self.set_local(&mut st, *local, val, stmt.span)?;
                            st.stack.push(then);
                        }
                        Some(false) => st.stack.push(els),
                        None => {
                            return self.fork(
                                st,
                                ok,
                                stmt.span,
                                CondKind::IfLet,
                                then,
                                els,
                                Some((*local, val)),
                            )
                        }
                    }
                }
                StmtKind::Parse { layer, els } => {
                    let c = self.parsed(*layer);
                    return self.fork(st, c, stmt.span, CondKind::Parse(*layer), &[], els, None);
                }
                StmtKind::Call(c) => {
                    self.call(&mut st, c, &None)?;
                }
                StmtKind::Action(a) => return self.finish(st, a, stmt.span),
            }
        }
    }

    fn set_local(&mut self, st: &mut PState<'a>, l: LocalId, v: SymVal, span: Span) -> R<()> {
        match st.locals.get_mut(l.0 as usize) {
            Some(slot) => {
                *slot = Some(v);
                Ok(())
            }
            None => Err(AnalysisError::Unsupported {
                location: self.loc(span),
                construct: "a local variable".into(),
                reason: format!("slot {} is not declared", l.0),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fork(
        &mut self,
        st: PState<'a>,
        c: Term,
        span: Span,
        kind: CondKind,
        yes_block: &'a [Stmt],
        no_block: &'a [Stmt],
        bind: Option<(LocalId, SymVal)>,
    ) -> R<()> {
        let what = match kind {
            CondKind::If => "if",
            CondKind::IfLet => "if let",
            CondKind::Parse(Layer::Ipv4) => "parse ipv4",
            CondKind::Parse(Layer::L4) => "parse l4",
            CondKind::Fact => "fact",
        };
        let id = self.add_node(
            st.attach,
            RawNode::Branch {
                cond: c.clone(),
                span,
                what,
                yes: None,
                no: None,
            },
        );
        for side in [true, false] {
            let term = if side {
                c.clone()
            } else {
                Term::negate(c.clone())
            };
            self.smt.push();
            self.smt.assert(&term, Ns::One);
            let sat = match self.smt.check() {
                Ok(s) => s,
                Err(reason) => {
                    self.smt.pop();
                    let cond = if side {
                        c.to_string()
                    } else {
                        term.to_string()
                    };
                    return Err(self.solver_err(
                        span,
                        format!("the {what} condition `{cond}`"),
                        reason,
                    ));
                }
            };
            if !sat {
                self.smt.pop();
                self.pruned += 1;
                continue;
            }
            let mut s2 = st.clone();
            s2.conds.push(Cond {
                term,
                span,
                kind: kind.clone(),
                taken: side,
            });
            s2.attach = if side {
                Attach::Yes(id)
            } else {
                Attach::No(id)
            };
            s2.stack.push(if side { yes_block } else { no_block });
            if side {
                if let Some((l, v)) = &bind {
                    if let Err(e) = self.set_local(&mut s2, *l, v.clone(), span) {
                        self.smt.pop();
                        return Err(e);
                    }
                }
            }
            let r = self.run(s2);
            self.smt.pop();
            r?;
        }
        Ok(())
    }

    fn finish(&mut self, mut st: PState<'a>, a: &'a Action, span: Span) -> R<()> {
        let (outcome, note) = match a {
            Action::Drop => (Outcome::Drop, None),
            Action::Flood => (Outcome::Flood, None),
            Action::Forward(e) => {
                let t = self.eval_scalar(&mut st, e, &None)?;
                match t.as_const() {
                    Some(p) if p == self.port as u64 => (
                        Outcome::Drop,
                        Some("forward to the input port is a drop".to_string()),
                    ),
                    Some(p) if p >= self.prog.port_count as u64 => (
                        Outcome::Drop,
                        Some(format!(
                            "forward to port {p}, which the NF does not have: a fault, dropped"
                        )),
                    ),
                    _ => (Outcome::Forward(t), None),
                }
            }
        };
        if self.paths_before + self.paths.len() >= self.max_paths {
            return Err(AnalysisError::TooManyPaths {
                location: self.loc(span),
                limit: self.max_paths,
            });
        }
        let mut classes = Vec::new();
        for class in PacketClass::ALL {
            let f = class.formula(&mut |f| self.packet(f));
            match self.smt.check_with(&[f], Ns::One) {
                Ok(true) => classes.push(class),
                Ok(false) => {}
                Err(reason) => {
                    return Err(self.solver_err(
                        span,
                        format!("whether {} packets can reach this action", class.name()),
                        reason,
                    ))
                }
            }
        }
        let pid = self.paths.len();
        self.add_node(st.attach, RawNode::End { path: pid });
        self.paths.push(RawPath {
            port: self.port,
            conds: st.conds,
            ops: st.ops,
            writes: st.writes,
            outcome,
            outcome_note: note,
            action_span: span,
            classes,
        });
        Ok(())
    }

    fn eval_scalar(&mut self, st: &mut PState<'a>, e: &'a Expr, guard: &Option<Term>) -> R<Term> {
        match self.eval(st, e, guard)? {
            SymVal::Scalar(t) => Ok(t),
            SymVal::Record(..) => Err(AnalysisError::Unsupported {
                location: self.loc(e.span),
                construct: "a record where a scalar is expected".into(),
                reason: "the checker should have rejected this".into(),
            }),
        }
    }

    fn eval(&mut self, st: &mut PState<'a>, e: &'a Expr, guard: &Option<Term>) -> R<SymVal> {
        let prog: &'a NfProgram = self.prog;
        let records = &prog.records;
        Ok(match &e.kind {
            ExprKind::Const(v) => SymVal::from_value(v, e.ty, records),
            ExprKind::Config(id) => match self.prog.configs.get(id.0 as usize).map(|c| &c.value) {
                Some(ConfigValue::Value(v)) => SymVal::from_value(v, e.ty, records),
                _ => {
                    return Err(AnalysisError::Unsupported {
                        location: self.loc(e.span),
                        construct: "a `file` config used as a value".into(),
                        reason: "file configs only fill maps at start-up".into(),
                    })
                }
            },
            ExprKind::Device(id) => {
                let port = self
                    .prog
                    .devices
                    .get(id.0 as usize)
                    .map(|d| d.port)
                    .unwrap_or(0);
                SymVal::Scalar(Term::constant(Type::Device, port as u64))
            }
            ExprKind::Local(id) => match st.locals.get(id.0 as usize).cloned().flatten() {
                Some(v) => v,
                None => {
                    let name = self
                        .prog
                        .locals
                        .get(id.0 as usize)
                        .map(|l| l.name.clone())
                        .unwrap_or_default();
                    return Err(AnalysisError::Unsupported {
                        location: self.loc(e.span),
                        construct: format!("the local `{name}`"),
                        reason: "it is read before any assignment on this path".into(),
                    });
                }
            },
            ExprKind::In => SymVal::Scalar(Term::constant(Type::Device, self.port as u64)),
            ExprKind::Now => SymVal::Scalar(self.sym("now".into(), SymKind::Now, Type::U64)),
            ExprKind::Packet(f) => match st.writes.iter().find(|(w, _)| w == f) {
                Some((_, t)) => SymVal::Scalar(t.clone()),
                None => SymVal::Scalar(self.packet(*f)),
            },
            ExprKind::Unary(op, a) => {
                let a = self.eval_scalar(st, a, guard)?;
                SymVal::Scalar(Term::unary(*op, a))
            }
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let x = self.eval_scalar(st, a, guard)?;
                // The right operand runs only when the left does not decide.
                let runs = if *op == BinOp::And {
                    x.clone()
                } else {
                    Term::negate(x.clone())
                };
                if runs.as_bool() == Some(false) {
                    return Ok(SymVal::Scalar(x));
                }
                let g2 = match guard {
                    Some(g) => Term::and(g.clone(), runs),
                    None => runs,
                };
                let g2 = if g2.as_bool() == Some(true) {
                    None
                } else {
                    Some(g2)
                };
                let y = self.eval_scalar(st, b, &g2)?;
                SymVal::Scalar(Term::binary(*op, x, y))
            }
            ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b)
                if matches!(a.ty, Type::Record(_)) =>
            {
                let x = self.eval(st, a, guard)?;
                let y = self.eval(st, b, guard)?;
                let eq = SymVal::equal(&x, &y);
                SymVal::Scalar(if *op == BinOp::Eq {
                    eq
                } else {
                    Term::negate(eq)
                })
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.eval_scalar(st, a, guard)?;
                let y = self.eval_scalar(st, b, guard)?;
                SymVal::Scalar(Term::binary(*op, x, y))
            }
            ExprKind::Cast(a) => {
                let x = self.eval_scalar(st, a, guard)?;
                SymVal::Scalar(Term::cast(x, e.ty))
            }
            ExprKind::Builtin(Builtin::Hash, args) => {
                let mut terms = Vec::new();
                for a in args {
                    terms.extend(self.eval(st, a, guard)?.terms());
                }
                SymVal::Scalar(Term::hash(terms))
            }
            ExprKind::Builtin(b, args) => {
                let mut terms = Vec::new();
                for a in args {
                    terms.push(self.eval_scalar(st, a, guard)?);
                }
                SymVal::Scalar(Term::builtin(*b, terms))
            }
            ExprKind::Record(id, fields) => {
                let mut vals = Vec::new();
                for f in fields {
                    vals.push(self.eval(st, f, guard)?);
                }
                SymVal::Record(*id, vals.into())
            }
            ExprKind::Field(r, i) => match self.eval(st, r, guard)? {
                SymVal::Record(_, fs) => match fs.get(*i as usize) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(AnalysisError::Unsupported {
                            location: self.loc(e.span),
                            construct: "a field access".into(),
                            reason: format!("the record has no field #{i}"),
                        })
                    }
                },
                SymVal::Scalar(_) => {
                    return Err(AnalysisError::Unsupported {
                        location: self.loc(e.span),
                        construct: "a field access".into(),
                        reason: "the value is not a record".into(),
                    })
                }
            },
            ExprKind::Call(c) => {
                let (_, v) = self.call(st, c, guard)?;
                match v {
                    Some(v) => v,
                    None => {
                        return Err(AnalysisError::Unsupported {
                            location: self.loc(c.span),
                            construct: format!("`{}` used as a value", c.method.name()),
                            reason: "the call returns nothing".into(),
                        })
                    }
                }
            }
        })
    }

    fn memo_get(st: &PState<'a>, s: StateId, tag: MemoTag, idx: &str) -> Option<SymVal> {
        st.memo
            .iter()
            .find(|(s2, t2, i2, _)| *s2 == s && *t2 == tag && i2 == idx)
            .map(|(_, _, _, v)| v.clone())
    }

    fn memo_clear(st: &mut PState<'a>, s: StateId, tags: &[MemoTag]) {
        st.memo
            .retain(|(s2, t2, _, _)| *s2 != s || !tags.contains(t2));
    }

    /// Performs a state call: records the op and gives `(ok, value)`: `ok` is the hit flag
    /// of *opt* calls, `value` the result (the index, the value read, the boolean answer).
    fn call(
        &mut self,
        st: &mut PState<'a>,
        c: &'a StateCall,
        guard: &Option<Term>,
    ) -> R<(Option<Term>, Option<SymVal>)> {
        use Method::*;
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args {
            args.push(self.eval(st, a, guard)?);
        }
        let (l, col) = self.prog.line_col(c.span);
        let label = self.labels.get(&c.span.lo).cloned().unwrap_or_else(|| {
            let name = self
                .prog
                .states
                .get(c.state.0 as usize)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            format!("{name}.{}@{l}:{col}", c.method.name())
        });
        let Some(decl) = self.prog.states.get(c.state.0 as usize) else {
            return Err(AnalysisError::Unsupported {
                location: self.loc(c.span),
                construct: "a state call".into(),
                reason: format!("state #{} is not declared", c.state.0),
            });
        };
        let kind = decl.kind.clone();
        let cap = capacity(&kind);
        let s = c.state;
        let a0 = args.first().cloned();
        let a1 = args.get(1).cloned();
        let idx0 = a0.as_ref().and_then(|v| v.scalar().cloned());
        let mut op = Op {
            state: s,
            method: c.method,
            span: c.span,
            label: label.clone(),
            access: access_of(c.method),
            key: None,
            index: None,
            index_origin: None,
            arg: None,
            ok: None,
            result: None,
            guard: guard.clone(),
            implicit: false,
        };
        let u32t = Type::U32;
        let below = |t: &Term, n: u64| Term::binary(BinOp::Lt, t.clone(), Term::constant(u32t, n));
        let mut implicit: Option<Op> = None;
        let (ok, val): (Option<Term>, Option<SymVal>) = match c.method {
            TableExpire | DChainExpire => {
                Self::memo_clear(st, s, &[MemoTag::Key, MemoTag::Value]);
                let n = self.fresh_scalar(format!("{label}.freed"), s, u32t);
                let le = Term::binary(BinOp::Le, n.clone(), Term::constant(u32t, cap));
                self.fact(st, le, c.span);
                (None, Some(SymVal::Scalar(n)))
            }
            SketchExpire => (None, None),
            TableGet | TableAdd | MapGet => {
                op.key = a0.clone();
                if c.method == TableAdd {
                    op.arg = a1.clone();
                    Self::memo_clear(st, s, &[MemoTag::Key, MemoTag::Value]);
                }
                let flag = match c.method {
                    TableGet => "hit",
                    TableAdd => "added",
                    _ => "found",
                };
                let hit = self.fresh_scalar(format!("{label}.{flag}"), s, Type::Bool);
                let val = if c.method == MapGet {
                    let vty = match &kind {
                        StateKind::Map { value, .. } => *value,
                        _ => Type::Bool,
                    };
                    self.fresh(format!("{label}.value"), s, vty)
                } else {
                    let idx = self.fresh_scalar(format!("{label}.index"), s, u32t);
                    self.fact(st, below(&idx, cap), c.span);
                    if let (Some(k), Some(name)) =
                        (a0.clone(), idx.as_sym().map(|x| x.name.clone()))
                    {
                        st.prov.push((
                            name,
                            Provenance::Key {
                                state: s,
                                key: k,
                                label: label.clone(),
                            },
                        ));
                    }
                    SymVal::Scalar(idx)
                };
                (Some(hit), Some(val))
            }
            DChainAllocate | ChtFind => {
                let (flag, bound) = if c.method == ChtFind {
                    op.key = a0.clone();
                    ("found", cap)
                } else {
                    ("allocated", cap)
                };
                let okf = self.fresh_scalar(format!("{label}.{flag}"), s, Type::Bool);
                let idx = self.fresh_scalar(format!("{label}.index"), s, u32t);
                self.fact(st, below(&idx, bound), c.span);
                if let Some(name) = idx.as_sym().map(|x| x.name.clone()) {
                    let prov = if c.method == ChtFind {
                        Provenance::Chosen {
                            state: s,
                            label: label.clone(),
                        }
                    } else {
                        Provenance::Fresh {
                            state: s,
                            label: label.clone(),
                        }
                    };
                    st.prov.push((name, prov));
                }
                if let StateKind::Cht { backends, .. } = kind {
                    // The CHT answers with the first *live* backend of the row: it reads
                    // the liveness of the backend table, entry by entry.
                    let bl = self
                        .prog
                        .states
                        .get(backends.0 as usize)
                        .map(|b| b.name.clone())
                        .unwrap_or_default();
                    implicit = Some(Op {
                        state: backends,
                        method: TableHasIndex,
                        span: c.span,
                        label: format!("{bl}.has_index@{l} (scanned by {label})"),
                        access: Access::Read,
                        key: None,
                        index: None,
                        index_origin: None,
                        arg: None,
                        ok: None,
                        result: None,
                        guard: guard.clone(),
                        implicit: true,
                    });
                }
                (Some(okf), Some(SymVal::Scalar(idx)))
            }
            TableContains | MapContains | TableRemove | MapPut | MapErase | SketchOver => {
                op.key = a0.clone();
                if matches!(c.method, MapPut) {
                    op.arg = a1.clone();
                }
                if matches!(c.method, TableRemove | MapPut | MapErase) {
                    Self::memo_clear(st, s, &[MemoTag::Key, MemoTag::Value]);
                }
                let r = self.fresh_scalar(format!("{label}.result"), s, Type::Bool);
                (None, Some(SymVal::Scalar(r)))
            }
            SketchTouch | SketchRefresh => {
                op.key = a0.clone();
                (None, None)
            }
            TableRefresh | DChainRefresh | DChainFree | TableHasIndex | DChainIsAllocated => {
                op.index = idx0.clone();
                if c.method == DChainFree {
                    Self::memo_clear(st, s, &[MemoTag::Key, MemoTag::Value]);
                }
                let r = self.fresh_scalar(format!("{label}.result"), s, Type::Bool);
                if matches!(c.method, TableHasIndex | DChainIsAllocated) {
                    if let Some(i) = &idx0 {
                        let i32 = Term::cast(i.clone(), u32t);
                        let f = Term::or(Term::negate(r.clone()), below(&i32, cap));
                        self.fact(st, f, c.span);
                    }
                }
                (None, Some(SymVal::Scalar(r)))
            }
            TableKey | TableValue | VectorGet => {
                op.index = idx0.clone();
                let (tag, ty, part) = match (&kind, c.method) {
                    (StateKind::Table { key, .. }, TableKey) => (MemoTag::Key, *key, "key"),
                    (StateKind::Table { value, .. }, _) => {
                        (MemoTag::Value, value.unwrap_or(Type::Bool), "value")
                    }
                    (StateKind::Vector { elem, .. }, _) => (MemoTag::Elem, *elem, "value"),
                    _ => (MemoTag::Value, Type::Bool, "value"),
                };
                let key = idx0.as_ref().map(|t| t.to_string()).unwrap_or_default();
                let v = match Self::memo_get(st, s, tag, &key) {
                    Some(v) => v,
                    None => {
                        let v = self.fresh(format!("{label}.{part}"), s, ty);
                        st.memo.push((s, tag, key, v.clone()));
                        v
                    }
                };
                (None, Some(v))
            }
            TableSetValue | VectorSet => {
                op.index = idx0.clone();
                op.arg = a1.clone();
                let tag = if c.method == VectorSet {
                    MemoTag::Elem
                } else {
                    MemoTag::Value
                };
                Self::memo_clear(st, s, &[tag]);
                if let (Some(i), Some(v)) = (&idx0, &a1) {
                    st.memo.push((s, tag, i.to_string(), v.clone()));
                }
                (None, None)
            }
            TableFull | TableSize | MapSize => {
                let (ty, part) = if c.method == TableFull {
                    (Type::Bool, "result")
                } else {
                    (u32t, "size")
                };
                let r = self.fresh_scalar(format!("{label}.{part}"), s, ty);
                if ty == u32t {
                    let le = Term::binary(BinOp::Le, r.clone(), Term::constant(u32t, cap));
                    self.fact(st, le, c.span);
                }
                (None, Some(SymVal::Scalar(r)))
            }
            SetsClear | SetsContains | SetsInsert | SetsCount => {
                op.index = idx0.clone();
                op.arg = a1.clone();
                match c.method {
                    SetsClear => (None, None),
                    SetsCount => {
                        let n = self.fresh_scalar(format!("{label}.count"), s, u32t);
                        let per = match &kind {
                            StateKind::Sets { per_set, .. } => *per_set as u64,
                            _ => u32::MAX as u64,
                        };
                        let le = Term::binary(BinOp::Le, n.clone(), Term::constant(u32t, per));
                        self.fact(st, le, c.span);
                        (None, Some(SymVal::Scalar(n)))
                    }
                    _ => {
                        let r = self.fresh_scalar(format!("{label}.result"), s, Type::Bool);
                        (None, Some(SymVal::Scalar(r)))
                    }
                }
            }
        };
        if let Some(i) = &op.index {
            if let Some(name) = i.as_sym().map(|x| x.name.clone()) {
                op.index_origin = st
                    .prov
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map(|(_, p)| p.clone());
            }
        }
        op.ok = ok.clone();
        op.result = val.clone();
        for o in std::iter::once(op).chain(implicit) {
            st.ops.push(o.clone());
            let id = self.add_node(st.attach, RawNode::Op { op: o, next: None });
            st.attach = Attach::Next(id);
        }
        Ok((ok, val))
    }
}
