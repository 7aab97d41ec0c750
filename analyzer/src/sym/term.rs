//! The symbolic term language: the values the executor computes with.
//!
//! A [`Term`] is an immutable, shared tree over constants, symbols (packet fields, `now`,
//! parse outcomes, results of state calls) and the language's operators. Every term has a
//! scalar [`Type`] (never a record: records are [`SymVal::Record`]s of terms). Terms fold
//! constants with the same code the interpreter uses (`lang::ops`), so a branch on a config
//! value disappears before it reaches the solver. The structure stays visible to the
//! sharding analysis: it can see that a key component *is* `pkt.ip.dst`, or only depends
//! on it.

use crate::lang::ast::{BinOp, Layer, UnOp};
use crate::lang::ir::{PktField, StateId};
use crate::lang::ops::{self, Builtin};
use crate::lang::types::{fmt_mac, IntTy, RecordDef, RecordId, Type, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

/// What a symbol stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SymKind {
    /// A header field of the input packet, as it arrived.
    Packet(PktField),
    /// The packet's timestamp.
    Now,
    /// Whether `parse ipv4` / `parse l4` succeeds on this packet.
    Parsed(Layer),
    /// A part of the result of a state call (hit flag, index, a field of a value read).
    State(StateId),
}

/// A named symbol. Two symbols are the same iff their names are equal.
#[derive(Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymKind,
    pub ty: Type,
}

/// A shared, immutable term.
#[derive(Clone)]
pub struct Term(Rc<Node>);

pub struct Node {
    pub kind: Kind,
    pub ty: Type,
}

pub enum Kind {
    /// The bits of a scalar constant (`bool` is 0 or 1).
    Const(u64),
    Sym(Rc<Symbol>),
    /// `!` on `bool` or on an integer (bitwise not), `-` on `i64`.
    Unary(UnOp, Term),
    /// Every binary operator; `&&`/`||` are strict here (their operands are pure terms).
    Binary(BinOp, Term, Term),
    Ite(Term, Term, Term),
    /// `e as T` (`T` is the node's type).
    Cast(Term),
    /// `min max sat_add sat_sub mul_div` (never `hash`).
    Builtin(Builtin, Vec<Term>),
    /// `hash(...)`: the CRC32C struct hash, modelled as an uninterpreted function of the
    /// concatenated argument bits (equal arguments, equal hash).
    Hash(Vec<Term>),
}

/// The width in bits of a scalar type (`bool` is 1; records have none).
pub fn width(ty: Type) -> u32 {
    match ty {
        Type::Int(t) => t.bits(),
        Type::Bool => 1,
        Type::Mac => 48,
        Type::Ip4 => 32,
        Type::Device => 16,
        Type::Record(_) => 0,
    }
}

fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// The language value of constant bits of a scalar type.
pub fn value_of(ty: Type, bits: u64) -> Value {
    match ty {
        Type::Int(t) => Value::Int(t, bits & t.mask()),
        Type::Bool => Value::Bool(bits != 0),
        Type::Mac => {
            let b = bits.to_be_bytes();
            Value::Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        Type::Ip4 => Value::Ip4(bits as u32),
        Type::Device => Value::Device(bits as u16),
        Type::Record(_) => Value::Bool(false),
    }
}

impl Term {
    fn mk(kind: Kind, ty: Type) -> Term {
        Term(Rc::new(Node { kind, ty }))
    }

    pub fn ty(&self) -> Type {
        self.0.ty
    }

    pub fn kind(&self) -> &Kind {
        &self.0.kind
    }

    /// A stable identity for caches (the term is kept alive by the cache entry).
    pub fn ptr(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    pub fn constant(ty: Type, bits: u64) -> Term {
        Term::mk(Kind::Const(bits & mask(width(ty))), ty)
    }

    pub fn bool(b: bool) -> Term {
        Term::constant(Type::Bool, b as u64)
    }

    pub fn sym(sym: Rc<Symbol>) -> Term {
        let ty = sym.ty;
        Term::mk(Kind::Sym(sym), ty)
    }

    /// A scalar value as a constant term; `None` for records.
    pub fn from_value(v: &Value) -> Option<Term> {
        let ty = match v {
            Value::Int(t, _) => Type::Int(*t),
            Value::Bool(_) => Type::Bool,
            Value::Mac(_) => Type::Mac,
            Value::Ip4(_) => Type::Ip4,
            Value::Device(_) => Type::Device,
            Value::Record(_) => return None,
        };
        Some(Term::constant(ty, v.bits()))
    }

    pub fn as_const(&self) -> Option<u64> {
        match self.0.kind {
            Kind::Const(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match (self.0.ty, &self.0.kind) {
            (Type::Bool, Kind::Const(b)) => Some(*b != 0),
            _ => None,
        }
    }

    pub fn as_sym(&self) -> Option<&Rc<Symbol>> {
        match &self.0.kind {
            Kind::Sym(s) => Some(s),
            _ => None,
        }
    }

    /// The packet field this term is, exactly (no operator applied).
    pub fn as_packet_field(&self) -> Option<PktField> {
        match self.as_sym().map(|s| &s.kind) {
            Some(SymKind::Packet(f)) => Some(*f),
            _ => None,
        }
    }

    fn to_value(&self) -> Option<Value> {
        self.as_const().map(|b| value_of(self.ty(), b))
    }

    pub fn negate(a: Term) -> Term {
        Term::unary(UnOp::Not, a)
    }

    pub fn unary(op: UnOp, a: Term) -> Term {
        if let Some(v) = a.to_value() {
            if let Some(t) = Term::from_value(&ops::unary(op, &v)) {
                return t;
            }
        }
        if let (UnOp::Not, Kind::Unary(UnOp::Not, inner)) = (op, &a.0.kind) {
            return inner.clone();
        }
        let ty = a.ty();
        Term::mk(Kind::Unary(op, a), ty)
    }

    /// `a op b`; `ty` is the result type (`bool` for comparisons).
    pub fn binary(op: BinOp, a: Term, b: Term) -> Term {
        use BinOp::*;
        let ty = match op {
            Eq | Ne | Lt | Le | Gt | Ge | And | Or => Type::Bool,
            _ => a.ty(),
        };
        if let (Some(x), Some(y)) = (a.to_value(), b.to_value()) {
            if let Some(t) = Term::from_value(&ops::binary(op, &x, &y)) {
                return t;
            }
        }
        match op {
            And => match (a.as_bool(), b.as_bool()) {
                (Some(false), _) | (_, Some(false)) => return Term::bool(false),
                (Some(true), _) => return b,
                (_, Some(true)) => return a,
                _ => {}
            },
            Or => match (a.as_bool(), b.as_bool()) {
                (Some(true), _) | (_, Some(true)) => return Term::bool(true),
                (Some(false), _) => return b,
                (_, Some(false)) => return a,
                _ => {}
            },
            Eq | Ne if a.same(&b) => return Term::bool(op == Eq),
            _ => {}
        }
        // Identities that keep keys readable: `x - 0`, `x + 0`, `x * 1`, ...
        if a.ty().is_int() || a.ty() == Type::Ip4 {
            let all_ones = mask(width(a.ty()));
            match (op, a.as_const(), b.as_const()) {
                (Add | Sub | BitOr | BitXor | Shl | Shr, _, Some(0)) => return a,
                (Add | BitOr | BitXor, Some(0), _) => return b,
                (Mul | Div, _, Some(1)) => return a,
                (Mul, Some(1), _) => return b,
                (BitAnd, _, Some(m)) if m == all_ones => return a,
                (BitAnd, Some(m), _) if m == all_ones => return b,
                _ => {}
            }
        }
        Term::mk(Kind::Binary(op, a, b), ty)
    }

    /// Structural identity of two terms (cheap: pointer first, then shape).
    pub fn same(&self, other: &Term) -> bool {
        if Rc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        if self.ty() != other.ty() {
            return false;
        }
        match (&self.0.kind, &other.0.kind) {
            (Kind::Const(a), Kind::Const(b)) => a == b,
            (Kind::Sym(a), Kind::Sym(b)) => a.name == b.name,
            (Kind::Unary(o1, a), Kind::Unary(o2, b)) => o1 == o2 && a.same(b),
            (Kind::Binary(o1, a1, b1), Kind::Binary(o2, a2, b2)) => {
                o1 == o2 && a1.same(a2) && b1.same(b2)
            }
            (Kind::Ite(c1, a1, b1), Kind::Ite(c2, a2, b2)) => {
                c1.same(c2) && a1.same(a2) && b1.same(b2)
            }
            (Kind::Cast(a), Kind::Cast(b)) => a.same(b),
            (Kind::Builtin(f1, a1), Kind::Builtin(f2, a2)) => {
                f1 == f2 && a1.len() == a2.len() && a1.iter().zip(a2).all(|(x, y)| x.same(y))
            }
            (Kind::Hash(a1), Kind::Hash(a2)) => {
                a1.len() == a2.len() && a1.iter().zip(a2).all(|(x, y)| x.same(y))
            }
            _ => false,
        }
    }

    pub fn and(a: Term, b: Term) -> Term {
        Term::binary(BinOp::And, a, b)
    }

    pub fn or(a: Term, b: Term) -> Term {
        Term::binary(BinOp::Or, a, b)
    }

    pub fn eq(a: Term, b: Term) -> Term {
        Term::binary(BinOp::Eq, a, b)
    }

    pub fn ite(c: Term, a: Term, b: Term) -> Term {
        match c.as_bool() {
            Some(true) => a,
            Some(false) => b,
            None if a.same(&b) => a,
            None => {
                let ty = a.ty();
                Term::mk(Kind::Ite(c, a, b), ty)
            }
        }
    }

    pub fn cast(a: Term, to: Type) -> Term {
        if a.ty() == to {
            return a;
        }
        if let Some(v) = a.to_value() {
            if let Some(t) = Term::from_value(&ops::cast(&v, to)) {
                return t;
            }
        }
        Term::mk(Kind::Cast(a), to)
    }

    /// `min max sat_add sat_sub mul_div` (`hash` goes through [`Term::hash`]).
    pub fn builtin(b: Builtin, args: Vec<Term>) -> Term {
        let ty = args.first().map(|a| a.ty()).unwrap_or(Type::U64);
        let consts: Option<Vec<Value>> = args.iter().map(|a| a.to_value()).collect();
        if let Some(vals) = consts {
            if let Some(t) = Term::from_value(&ops::builtin(b, &vals)) {
                return t;
            }
        }
        // mul_div(a, k·c, c) is a saturated multiplication by k: no 128-bit arithmetic.
        if b == Builtin::MulDiv && args.len() == 3 && !ty.int().is_some_and(IntTy::is_signed) {
            if let (Some(x), Some(c)) = (args[1].as_const(), args[2].as_const()) {
                if c != 0 && x % c == 0 {
                    let k = x / c;
                    let a = args[0].clone();
                    if k == 0 {
                        return Term::constant(ty, 0);
                    }
                    if k == 1 {
                        return a;
                    }
                    let m = mask(width(ty));
                    let limit = Term::constant(ty, m / k);
                    let over = Term::binary(BinOp::Gt, a.clone(), limit);
                    let prod = Term::binary(BinOp::Mul, a, Term::constant(ty, k));
                    return Term::ite(over, Term::constant(ty, m), prod);
                }
            }
        }
        Term::mk(Kind::Builtin(b, args), ty)
    }

    pub fn hash(args: Vec<Term>) -> Term {
        Term::mk(Kind::Hash(args), Type::U32)
    }

    /// Calls `f` on every symbol of the term.
    pub fn visit_syms(&self, f: &mut dyn FnMut(&Rc<Symbol>)) {
        match &self.0.kind {
            Kind::Const(_) => {}
            Kind::Sym(s) => f(s),
            Kind::Unary(_, a) | Kind::Cast(a) => a.visit_syms(f),
            Kind::Binary(_, a, b) => {
                a.visit_syms(f);
                b.visit_syms(f);
            }
            Kind::Ite(c, a, b) => {
                c.visit_syms(f);
                a.visit_syms(f);
                b.visit_syms(f);
            }
            Kind::Builtin(_, args) | Kind::Hash(args) => {
                for a in args {
                    a.visit_syms(f);
                }
            }
        }
    }

    /// The packet fields the term depends on.
    pub fn packet_fields(&self) -> BTreeSet<PktFieldOrd> {
        let mut out = BTreeSet::new();
        self.visit_syms(&mut |s| {
            if let SymKind::Packet(f) = s.kind {
                out.insert(PktFieldOrd(f));
            }
        });
        out
    }

    /// The symbols other than packet fields the term depends on (`now`, parse outcomes,
    /// state results), by name.
    pub fn other_syms(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.visit_syms(&mut |s| {
            if !matches!(s.kind, SymKind::Packet(_)) {
                out.insert(s.name.clone());
            }
        });
        out
    }

    /// Whether the term mentions a symbol with this name.
    pub fn mentions(&self, name: &str) -> bool {
        let mut found = false;
        self.visit_syms(&mut |s| found |= s.name == name);
        found
    }

    fn is_atomic(&self) -> bool {
        matches!(
            self.0.kind,
            Kind::Const(_)
                | Kind::Sym(_)
                | Kind::Builtin(..)
                | Kind::Hash(_)
                | Kind::Ite(..)
                | Kind::Unary(..)
        )
    }
}

/// A [`PktField`] with a total order (declaration order), for sets and stable output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PktFieldOrd(pub PktField);

impl PktFieldOrd {
    fn rank(self) -> u8 {
        use PktField::*;
        match self.0 {
            Len => 0,
            EthDst => 1,
            EthSrc => 2,
            EthType => 3,
            IpSrc => 4,
            IpDst => 5,
            IpProto => 6,
            IpTtl => 7,
            IpTos => 8,
            IpIhl => 9,
            IpLen => 10,
            IpId => 11,
            IpFrag => 12,
            L4Sport => 13,
            L4Dport => 14,
        }
    }
}

impl PartialOrd for PktFieldOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PktFieldOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

fn fmt_const(f: &mut fmt::Formatter<'_>, ty: Type, bits: u64) -> fmt::Result {
    match ty {
        Type::Bool => write!(f, "{}", bits != 0),
        Type::Int(IntTy::I64) => write!(f, "{}", bits as i64),
        Type::Int(_) | Type::Device => write!(f, "{bits}"),
        Type::Ip4 => write!(f, "{}", std::net::Ipv4Addr::from(bits as u32)),
        Type::Mac => {
            let b = bits.to_be_bytes();
            f.write_str(&fmt_mac(&[b[2], b[3], b[4], b[5], b[6], b[7]]))
        }
        Type::Record(_) => f.write_str("?"),
    }
}

fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::Int(t) => t.name(),
        Type::Bool => "bool",
        Type::Mac => "mac",
        Type::Ip4 => "ip4",
        Type::Device => "device",
        Type::Record(_) => "record",
    }
}

impl Term {
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_atomic() {
            write!(f, "{self}")
        } else {
            write!(f, "({self})")
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            Kind::Const(b) => fmt_const(f, self.ty(), *b),
            Kind::Sym(s) => f.write_str(&s.name),
            Kind::Unary(op, a) => {
                f.write_str(match op {
                    UnOp::Not => "!",
                    UnOp::Neg => "-",
                })?;
                a.fmt_operand(f)
            }
            Kind::Binary(op, a, b) => {
                a.fmt_operand(f)?;
                write!(f, " {} ", op.as_str())?;
                b.fmt_operand(f)
            }
            Kind::Ite(c, a, b) => write!(f, "ite({c}, {a}, {b})"),
            Kind::Cast(a) => {
                a.fmt_operand(f)?;
                write!(f, " as {}", type_name(self.ty()))
            }
            Kind::Builtin(b, args) => fmt_call(f, b.name(), args),
            Kind::Hash(args) => fmt_call(f, "hash", args),
        }
    }
}

fn fmt_call(f: &mut fmt::Formatter<'_>, name: &str, args: &[Term]) -> fmt::Result {
    f.write_str(name)?;
    f.write_str("(")?;
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{a}")?;
    }
    f.write_str(")")
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A symbolic value: a scalar term or a record of symbolic values.
#[derive(Clone, Debug)]
pub enum SymVal {
    Scalar(Term),
    Record(RecordId, Rc<[SymVal]>),
}

impl SymVal {
    pub fn scalar(&self) -> Option<&Term> {
        match self {
            SymVal::Scalar(t) => Some(t),
            SymVal::Record(..) => None,
        }
    }

    /// A constant value (records included).
    pub fn from_value(v: &Value, ty: Type, records: &[RecordDef]) -> SymVal {
        match (v, ty) {
            (Value::Record(fields), Type::Record(id)) => {
                let def = records.get(id.0 as usize);
                SymVal::Record(
                    id,
                    fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let fty = def
                                .and_then(|d| d.fields.get(i))
                                .map(|(_, t)| *t)
                                .unwrap_or(Type::Bool);
                            SymVal::from_value(f, fty, records)
                        })
                        .collect(),
                )
            }
            _ => SymVal::Scalar(Term::from_value(v).unwrap_or_else(|| Term::bool(false))),
        }
    }

    /// The scalar leaves in declaration order, with their dotted field paths (`""` for a
    /// scalar, `src_ip`, `inner.port`).
    pub fn leaves(&self, records: &[RecordDef]) -> Vec<(String, Term)> {
        let mut out = Vec::new();
        self.collect_leaves(records, String::new(), &mut out);
        out
    }

    fn collect_leaves(&self, records: &[RecordDef], prefix: String, out: &mut Vec<(String, Term)>) {
        match self {
            SymVal::Scalar(t) => out.push((prefix, t.clone())),
            SymVal::Record(id, fields) => {
                let def = records.get(id.0 as usize);
                for (i, v) in fields.iter().enumerate() {
                    let name = def
                        .and_then(|d| d.fields.get(i))
                        .map(|(n, _)| n.clone())
                        .unwrap_or_else(|| format!("#{i}"));
                    let path = if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}.{name}")
                    };
                    v.collect_leaves(records, path, out);
                }
            }
        }
    }

    /// Every scalar leaf, in order.
    pub fn terms(&self) -> Vec<Term> {
        let mut out = Vec::new();
        self.collect_terms(&mut out);
        out
    }

    fn collect_terms(&self, out: &mut Vec<Term>) {
        match self {
            SymVal::Scalar(t) => out.push(t.clone()),
            SymVal::Record(_, fields) => fields.iter().for_each(|f| f.collect_terms(out)),
        }
    }

    /// `a == b` field by field.
    pub fn equal(a: &SymVal, b: &SymVal) -> Term {
        match (a, b) {
            (SymVal::Scalar(x), SymVal::Scalar(y)) => Term::eq(x.clone(), y.clone()),
            (SymVal::Record(_, xs), SymVal::Record(_, ys)) => xs
                .iter()
                .zip(ys.iter())
                .fold(Term::bool(true), |acc, (x, y)| {
                    Term::and(acc, SymVal::equal(x, y))
                }),
            _ => Term::bool(false),
        }
    }

    /// Shows the value, naming record types and fields.
    pub fn show(&self, records: &[RecordDef]) -> String {
        match self {
            SymVal::Scalar(t) => t.to_string(),
            SymVal::Record(id, fields) => {
                let def = records.get(id.0 as usize);
                let mut s = def.map(|d| d.name.clone()).unwrap_or_default();
                s.push_str(" { ");
                for (i, v) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    if let Some((n, _)) = def.and_then(|d| d.fields.get(i)) {
                        s.push_str(n);
                        s.push_str(": ");
                    }
                    s.push_str(&v.show(records));
                }
                s.push_str(" }");
                s
            }
        }
    }
}
