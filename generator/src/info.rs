//! Facts about an NF that the generated code declares to the executors: which state
//! objects are written (and so split per core by `sn`), and which header fields carry
//! values the NF chose itself (`RENAMED`, the NAT's external port).

use maestro_analyzer::lang::ast::BinOp;
use maestro_analyzer::{
    Expr, ExprKind, Method, NfProgram, PktField, StateCall, StateKind, Stmt, StmtKind, Value,
};
use std::collections::BTreeSet;

/// Per state object: whether `sn` splits it (it has a capacity and some path writes
/// it). Read-only objects (a static map), sketches and CHTs are replicated in full.
pub fn sharded(p: &NfProgram) -> Vec<bool> {
    let mut written = vec![false; p.states.len()];
    for c in p.state_calls() {
        if c.method.mutates() {
            if let Some(w) = written.get_mut(c.state.0 as usize) {
                *w = true;
            }
        }
    }
    p.states
        .iter()
        .zip(written)
        .map(|(s, w)| w && !matches!(s.kind, StateKind::Sketch { .. } | StateKind::Cht { .. }))
        .collect()
}

/// A header field written with an NF-chosen value, and the input field that names it
/// back (see `maestro_runtime::exec::RenamedField`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Renamed {
    /// `l4.sport`-style name of the written field.
    pub out_field: &'static str,
    /// The input field from which the NF computes the index back.
    pub in_field: &'static str,
    /// Input ports on which that happens, ascending.
    pub in_ports: Vec<u16>,
}

/// A field's name without the `pkt.` prefix (`l4.sport`).
fn short(path: &'static str) -> &'static str {
    path.strip_prefix("pkt.").unwrap_or(path)
}

/// Calls that produce an allocator index (the NF-chosen values).
fn produces_index(m: Method) -> bool {
    matches!(
        m,
        Method::TableAdd | Method::TableGet | Method::DChainAllocate
    )
}

/// Calls that take an index as their first argument.
fn takes_index(m: Method) -> bool {
    use Method::*;
    matches!(
        m,
        TableRefresh
            | TableHasIndex
            | TableKey
            | TableValue
            | TableSetValue
            | DChainRefresh
            | DChainIsAllocated
            | DChainFree
    )
}

/// The taint pass behind `RENAMED`.
///
/// A header write whose value depends on an index returned by a state call (table
/// `add`/`get`, dchain `allocate`) writes an NF-chosen value. Its input counterpart is
/// a packet field used to compute an index passed to an index-taking call on the same
/// object; the input ports are those of the enclosing `in == <device>` conditions of
/// that use (every port when unguarded). The language has no loops, so one pass in
/// source order sees every definition of a local before its uses; assignments merge.
pub fn renamed_fields(p: &NfProgram) -> Vec<Renamed> {
    let all: BTreeSet<u16> = (0..p.port_count).collect();
    let mut t = Taint {
        p,
        all: all.clone(),
        index_of: vec![BTreeSet::new(); p.locals.len()],
        fields_of: vec![BTreeSet::new(); p.locals.len()],
        writes: Vec::new(),
        uses: Vec::new(),
    };
    t.block(&p.process, &all);
    let mut out: Vec<Renamed> = Vec::new();
    for (out_field, object) in &t.writes {
        for (use_object, fields, ports) in &t.uses {
            if use_object != object {
                continue;
            }
            for f in fields {
                let (o, i) = (short(out_field.path()), short(f));
                match out.iter_mut().find(|r| r.out_field == o && r.in_field == i) {
                    Some(r) => {
                        let mut merged: BTreeSet<u16> = r.in_ports.iter().copied().collect();
                        merged.extend(ports);
                        r.in_ports = merged.into_iter().collect();
                    }
                    None => out.push(Renamed {
                        out_field: o,
                        in_field: i,
                        in_ports: ports.iter().copied().collect(),
                    }),
                }
            }
        }
    }
    out.sort();
    out
}

struct Taint<'a> {
    p: &'a NfProgram,
    all: BTreeSet<u16>,
    /// Per local: the objects whose allocator index flows into it.
    index_of: Vec<BTreeSet<u32>>,
    /// Per local: the packet fields it is computed from (by path, `pkt.l4.dport`).
    fields_of: Vec<BTreeSet<&'static str>>,
    /// (written field, object whose index it carries).
    writes: Vec<(PktField, u32)>,
    /// (object, fields the index argument is computed from, ports).
    uses: Vec<(u32, BTreeSet<&'static str>, BTreeSet<u16>)>,
}

impl Taint<'_> {
    /// Objects whose index the value carries. State call results are data, not indexes
    /// (`flows.key(i)` is the stored key), so taint stops at calls.
    fn index(&self, e: &Expr) -> BTreeSet<u32> {
        match &e.kind {
            ExprKind::Local(l) => self.index_of.get(l.0 as usize).cloned().unwrap_or_default(),
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Field(a, _) => self.index(a),
            ExprKind::Binary(_, a, b) => {
                let mut s = self.index(a);
                s.extend(self.index(b));
                s
            }
            ExprKind::Builtin(_, args) | ExprKind::Record(_, args) => {
                args.iter().flat_map(|a| self.index(a)).collect()
            }
            _ => BTreeSet::new(),
        }
    }

    /// Packet fields the value is computed from (again not through state calls).
    fn fields(&self, e: &Expr) -> BTreeSet<&'static str> {
        match &e.kind {
            ExprKind::Packet(f) => [f.path()].into_iter().collect(),
            ExprKind::Local(l) => self
                .fields_of
                .get(l.0 as usize)
                .cloned()
                .unwrap_or_default(),
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Field(a, _) => self.fields(a),
            ExprKind::Binary(_, a, b) => {
                let mut s = self.fields(a);
                s.extend(self.fields(b));
                s
            }
            ExprKind::Builtin(_, args) | ExprKind::Record(_, args) => {
                args.iter().flat_map(|a| self.fields(a)).collect()
            }
            _ => BTreeSet::new(),
        }
    }

    /// Records index uses of the calls inside an expression.
    fn scan(&mut self, e: &Expr, ports: &BTreeSet<u16>) {
        match &e.kind {
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Field(a, _) => {
                self.scan(a, ports)
            }
            ExprKind::Binary(_, a, b) => {
                self.scan(a, ports);
                self.scan(b, ports);
            }
            ExprKind::Builtin(_, args) | ExprKind::Record(_, args) => {
                args.iter().for_each(|a| self.scan(a, ports))
            }
            ExprKind::Call(c) => self.call(c, ports),
            _ => {}
        }
    }

    fn call(&mut self, c: &StateCall, ports: &BTreeSet<u16>) {
        for a in &c.args {
            self.scan(a, ports);
        }
        if takes_index(c.method) {
            if let Some(i) = c.args.first() {
                let f = self.fields(i);
                if !f.is_empty() {
                    self.uses.push((c.state.0, f, ports.clone()));
                }
            }
        }
    }

    fn assign(&mut self, local: usize, value: &Expr) {
        let i = self.index(value);
        let f = self.fields(value);
        if let Some(s) = self.index_of.get_mut(local) {
            s.extend(i);
        }
        if let Some(s) = self.fields_of.get_mut(local) {
            s.extend(f);
        }
    }

    /// The input port of a device expression, if it is one.
    fn port_of(&self, e: &Expr) -> Option<u16> {
        match &e.kind {
            ExprKind::Device(d) => self.p.devices.get(d.0 as usize).map(|d| d.port),
            ExprKind::Const(Value::Device(port)) => Some(*port),
            _ => None,
        }
    }

    /// The ports on which `cond` is `want`; every port when it does not depend on `in`.
    fn ports_where(&self, cond: &Expr, want: bool) -> BTreeSet<u16> {
        let one = |port: u16, eq: bool| -> BTreeSet<u16> {
            if eq == want {
                [port].into_iter().collect()
            } else {
                self.all.iter().copied().filter(|&p| p != port).collect()
            }
        };
        match &cond.kind {
            ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) => {
                let port = match (&a.kind, &b.kind) {
                    (ExprKind::In, _) => self.port_of(b),
                    (_, ExprKind::In) => self.port_of(a),
                    _ => None,
                };
                match port {
                    Some(port) => one(port, *op == BinOp::Eq),
                    None => self.all.clone(),
                }
            }
            ExprKind::Binary(BinOp::And, a, b) if want => self
                .ports_where(a, true)
                .intersection(&self.ports_where(b, true))
                .copied()
                .collect(),
            ExprKind::Binary(BinOp::Or, a, b) if !want => self
                .ports_where(a, false)
                .intersection(&self.ports_where(b, false))
                .copied()
                .collect(),
            ExprKind::Binary(BinOp::Or, a, b) => {
                let mut s = self.ports_where(a, true);
                s.extend(self.ports_where(b, true));
                s
            }
            ExprKind::Unary(maestro_analyzer::lang::ast::UnOp::Not, a)
                if a.ty == maestro_analyzer::Type::Bool =>
            {
                self.ports_where(a, !want)
            }
            _ => self.all.clone(),
        }
    }

    fn block(&mut self, b: &[Stmt], ports: &BTreeSet<u16>) {
        let mut ports = ports.clone();
        for s in b {
            match &s.kind {
                StmtKind::Let { local, value } | StmtKind::Assign { local, value } => {
                    self.scan(value, &ports);
                    self.assign(local.0 as usize, value);
                }
                StmtKind::SetField { field, value } => {
                    self.scan(value, &ports);
                    for o in self.index(value) {
                        self.writes.push((*field, o));
                    }
                }
                StmtKind::If { cond, then, els } => {
                    self.scan(cond, &ports);
                    let yes: BTreeSet<u16> = ports
                        .intersection(&self.ports_where(cond, true))
                        .copied()
                        .collect();
                    let no: BTreeSet<u16> = ports
                        .intersection(&self.ports_where(cond, false))
                        .copied()
                        .collect();
                    self.block(then, &yes);
                    self.block(els, &no);
                    // A branch that always ends the packet leaves the rest of the block
                    // to the other side's ports.
                    if then.iter().any(crate::emit::terminates) {
                        ports = no;
                    } else if els.iter().any(crate::emit::terminates) {
                        ports = yes;
                    }
                }
                StmtKind::IfLet {
                    local,
                    call,
                    then,
                    els,
                } => {
                    self.call(call, &ports);
                    if produces_index(call.method) {
                        if let Some(set) = self.index_of.get_mut(local.0 as usize) {
                            set.insert(call.state.0);
                        }
                    }
                    self.block(then, &ports);
                    self.block(els, &ports);
                }
                StmtKind::Parse { els, .. } => self.block(els, &ports),
                StmtKind::Call(c) => self.call(c, &ports),
                StmtKind::Action(maestro_analyzer::Action::Forward(e)) => self.scan(e, &ports),
                StmtKind::Action(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn load(name: &str, sets: &[(&str, &str)]) -> NfProgram {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../nfs")
            .join(name);
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        maestro_analyzer::load_nf(&dir, &sets).expect("library NF loads")
    }

    #[test]
    fn the_nat_renames_its_external_port() {
        let want = vec![Renamed {
            out_field: "l4.sport",
            in_field: "l4.dport",
            in_ports: vec![1],
        }];
        assert_eq!(renamed_fields(&load("nat", &[])), want);
        // The WAN device on another port moves the input port with it.
        let swapped = load("nat", &[("lan", "1"), ("wan", "0")]);
        assert_eq!(renamed_fields(&swapped)[0].in_ports, vec![0]);
    }

    #[test]
    fn no_other_library_nf_renames() {
        for nf in ["nop", "sbridge", "bridge", "pol", "fw", "lb", "cl", "psd"] {
            assert_eq!(renamed_fields(&load(nf, &[])), vec![], "{nf}");
        }
    }

    #[test]
    fn an_unguarded_index_use_gives_every_port() {
        let src = r#"nf t "t";
device a = 0;
device b = 1;
device c = 2;
state d: dchain(capacity: 16, ttl: 1s);
process {
    parse l4 else { drop; }
    let back = d.is_allocated(pkt.l4.dport as u32);
    if let i = d.allocate() {
        pkt.ip.src = i as ip4;
    }
    if back { forward(a); }
    drop;
}
"#;
        let p = maestro_analyzer::parse_and_check("t.nf", src, &[], None).expect("checks");
        assert_eq!(
            renamed_fields(&p),
            vec![Renamed {
                out_field: "ip.src",
                in_field: "l4.dport",
                in_ports: vec![0, 1, 2],
            }]
        );
    }

    #[test]
    fn sharded_objects_are_the_written_ones() {
        // sbridge's static map is read-only: replicated in full.
        assert_eq!(sharded(&load("sbridge", &[])), vec![false]);
        assert_eq!(sharded(&load("fw", &[])), vec![true]);
        // lb: flows and backends written, the CHT replicated.
        assert_eq!(sharded(&load("lb", &[])), vec![true, true, false]);
        // cl: the sketch is replicated in full.
        assert_eq!(sharded(&load("cl", &[])), vec![true, false]);
        assert_eq!(sharded(&load("psd", &[])), vec![true, true]);
    }
}
