//! Terms to Z3 bit-vectors, and the solver queries the analysis asks.
//!
//! Every scalar is a bit-vector of its type's width (`bool` is a Z3 Boolean). Symbols are
//! Z3 constants named after the symbol; a query about two packets renames the symbols of
//! each side into its own namespace (`p1!pkt.ip.src`, `p2!pkt.ip.src`). Translations are
//! cached per term, so the shared prefixes of paths are translated once.

use super::term::{width, Kind, Term};
use crate::lang::ast::{BinOp, UnOp};
use crate::lang::ops::Builtin;
use crate::lang::types::{IntTy, Type};
use std::collections::HashMap;
use z3::ast::{Ast, Bool, BV};
use z3::{Context, FuncDecl, Params, SatResult, Solver, Sort};

/// Which packet a term speaks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The one packet of a path.
    One,
    /// The first of two packets (pairwise sharding queries).
    P1,
    /// The second of two packets.
    P2,
}

impl Ns {
    fn prefix(self) -> &'static str {
        match self {
            Ns::One => "",
            Ns::P1 => "p1!",
            Ns::P2 => "p2!",
        }
    }
}

#[derive(Clone)]
enum Z<'c> {
    B(Bool<'c>),
    V(BV<'c>),
}

/// A Z3 solver with the term translation cache.
pub struct Smt<'c> {
    ctx: &'c Context,
    solver: Solver<'c>,
    /// Keyed by term identity and namespace; the term is kept alive by the entry.
    cache: HashMap<(usize, Ns), (Term, Z<'c>)>,
    hash_fns: HashMap<u32, FuncDecl<'c>>,
    /// Number of `check` calls so far.
    pub queries: u64,
}

impl<'c> Smt<'c> {
    /// A solver whose every query gives up after `timeout_ms` milliseconds.
    pub fn new(ctx: &'c Context, timeout_ms: u32) -> Smt<'c> {
        let solver = Solver::new(ctx);
        let mut p = Params::new(ctx);
        p.set_u32("timeout", timeout_ms.max(1));
        solver.set_params(&p);
        Smt {
            ctx,
            solver,
            cache: HashMap::new(),
            hash_fns: HashMap::new(),
            queries: 0,
        }
    }

    pub fn push(&self) {
        self.solver.push();
    }

    pub fn pop(&self) {
        self.solver.pop(1);
    }

    /// Asserts a `bool` term in the current scope.
    pub fn assert(&mut self, t: &Term, ns: Ns) {
        let b = self.boolean(t, ns);
        self.solver.assert(&b);
    }

    /// Whether the assertions so far are satisfiable; `Err` carries Z3's reason when it
    /// gives up (timeout, resource limit).
    pub fn check(&mut self) -> Result<bool, String> {
        self.queries += 1;
        match self.solver.check() {
            SatResult::Sat => Ok(true),
            SatResult::Unsat => Ok(false),
            SatResult::Unknown => Err(self
                .solver
                .get_reason_unknown()
                .unwrap_or_else(|| "unknown".to_string())),
        }
    }

    /// Whether the assertions so far plus `extra` (in namespace `ns`) are satisfiable.
    pub fn check_with(&mut self, extra: &[Term], ns: Ns) -> Result<bool, String> {
        self.push();
        for t in extra {
            self.assert(t, ns);
        }
        let r = self.check();
        self.pop();
        r
    }

    /// Asserts terms given with their own namespaces, checks, and retracts them.
    pub fn check_mixed(&mut self, extra: &[(Term, Ns)]) -> Result<bool, String> {
        self.push();
        for (t, ns) in extra {
            self.assert(t, *ns);
        }
        let r = self.check();
        self.pop();
        r
    }

    fn boolean(&mut self, t: &Term, ns: Ns) -> Bool<'c> {
        match self.tr(t, ns) {
            Z::B(b) => b,
            Z::V(v) => {
                let w = v.get_size();
                v._eq(&BV::from_u64(self.ctx, 0, w)).not()
            }
        }
    }

    fn bv(&mut self, t: &Term, ns: Ns) -> BV<'c> {
        match self.tr(t, ns) {
            Z::V(v) => v,
            Z::B(b) => b.ite(&self.num(1, 1), &self.num(0, 1)),
        }
    }

    /// A bit-vector of `t`, resized to `w` bits (guards against width mix-ups that Z3
    /// would refuse).
    fn bv_w(&mut self, t: &Term, ns: Ns, w: u32) -> BV<'c> {
        let v = self.bv(t, ns);
        fit(&v, w)
    }

    fn num(&self, v: u64, w: u32) -> BV<'c> {
        let m = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
        BV::from_u64(self.ctx, v & m, w)
    }

    fn tr(&mut self, t: &Term, ns: Ns) -> Z<'c> {
        let key = (t.ptr(), ns);
        if let Some((_, z)) = self.cache.get(&key) {
            return z.clone();
        }
        let z = self.tr_uncached(t, ns);
        self.cache.insert(key, (t.clone(), z.clone()));
        z
    }

    fn tr_uncached(&mut self, t: &Term, ns: Ns) -> Z<'c> {
        let ty = t.ty();
        let w = width(ty).max(1);
        let signed = ty.int().is_some_and(IntTy::is_signed);
        match t.kind() {
            Kind::Const(b) => {
                if ty == Type::Bool {
                    Z::B(Bool::from_bool(self.ctx, *b != 0))
                } else {
                    Z::V(self.num(*b, w))
                }
            }
            Kind::Sym(s) => {
                let name = format!("{}{}", ns.prefix(), s.name);
                if ty == Type::Bool {
                    Z::B(Bool::new_const(self.ctx, name))
                } else {
                    Z::V(BV::new_const(self.ctx, name, w))
                }
            }
            Kind::Unary(op, a) => match (op, ty) {
                (UnOp::Not, Type::Bool) => Z::B(self.boolean(a, ns).not()),
                (UnOp::Not, _) => Z::V(self.bv_w(a, ns, w).bvnot()),
                (UnOp::Neg, _) => Z::V(self.bv_w(a, ns, w).bvneg()),
            },
            Kind::Binary(op, a, b) => self.binary(*op, a, b, ns),
            Kind::Ite(c, a, b) => {
                let c = self.boolean(c, ns);
                if ty == Type::Bool {
                    let a = self.boolean(a, ns);
                    let b = self.boolean(b, ns);
                    Z::B(c.ite(&a, &b))
                } else {
                    let a = self.bv_w(a, ns, w);
                    let b = self.bv_w(b, ns, w);
                    Z::V(c.ite(&a, &b))
                }
            }
            Kind::Cast(a) => {
                if ty == Type::Bool {
                    Z::B(self.boolean(a, ns))
                } else {
                    let v = self.bv(a, ns);
                    Z::V(fit(&v, w))
                }
            }
            Kind::Builtin(b, args) => Z::V(self.builtin(*b, args, w, signed, ns)),
            Kind::Hash(args) => {
                let mut parts: Vec<BV<'c>> = args.iter().map(|a| self.bv(a, ns)).collect();
                let mut acc = match parts.pop() {
                    Some(v) => v,
                    None => self.num(0, 1),
                };
                while let Some(p) = parts.pop() {
                    acc = p.concat(&acc);
                }
                let in_w = acc.get_size();
                let ctx = self.ctx;
                let f = self.hash_fns.entry(in_w).or_insert_with(|| {
                    FuncDecl::new(
                        ctx,
                        format!("hash#{in_w}"),
                        &[&Sort::bitvector(ctx, in_w)],
                        &Sort::bitvector(ctx, 32),
                    )
                });
                let r = f.apply(&[&acc]);
                Z::V(r.as_bv().unwrap_or_else(|| BV::from_u64(ctx, 0, 32)))
            }
        }
    }

    fn binary(&mut self, op: BinOp, a: &Term, b: &Term, ns: Ns) -> Z<'c> {
        use BinOp::*;
        let aty = a.ty();
        let signed = aty.int().is_some_and(IntTy::is_signed);
        if aty == Type::Bool {
            let x = self.boolean(a, ns);
            let y = self.boolean(b, ns);
            return Z::B(match op {
                And | BitAnd => Bool::and(self.ctx, &[&x, &y]),
                Or | BitOr => Bool::or(self.ctx, &[&x, &y]),
                BitXor | Ne => x.xor(&y),
                Eq => x.iff(&y),
                // Ordered comparisons and arithmetic on bool are rejected by the checker.
                _ => Bool::from_bool(self.ctx, false),
            });
        }
        let w = width(aty).max(1);
        let x = self.bv_w(a, ns, w);
        let y = self.bv_w(b, ns, w);
        let zero = self.num(0, w);
        let is_zero = y._eq(&zero);
        Z::V(match op {
            Eq => return Z::B(x._eq(&y)),
            Ne => return Z::B(x._eq(&y).not()),
            Lt => return Z::B(if signed { x.bvslt(&y) } else { x.bvult(&y) }),
            Le => return Z::B(if signed { x.bvsle(&y) } else { x.bvule(&y) }),
            Gt => return Z::B(if signed { x.bvsgt(&y) } else { x.bvugt(&y) }),
            Ge => return Z::B(if signed { x.bvsge(&y) } else { x.bvuge(&y) }),
            And => return Z::B(Bool::and(self.ctx, &[&x._eq(&zero).not(), &is_zero.not()])),
            Or => return Z::B(Bool::or(self.ctx, &[&x._eq(&zero).not(), &is_zero.not()])),
            Add => x.bvadd(&y),
            Sub => x.bvsub(&y),
            Mul => x.bvmul(&y),
            // eBPF: x / 0 == 0 and x % 0 == x.
            Div => is_zero.ite(&zero, &if signed { x.bvsdiv(&y) } else { x.bvudiv(&y) }),
            Rem => is_zero.ite(&x, &if signed { x.bvsrem(&y) } else { x.bvurem(&y) }),
            BitAnd => x.bvand(&y),
            BitOr => x.bvor(&y),
            BitXor => x.bvxor(&y),
            Shl => x.bvshl(&y.bvurem(&self.num(w as u64, w))),
            Shr => {
                let amount = y.bvurem(&self.num(w as u64, w));
                if signed {
                    x.bvashr(&amount)
                } else {
                    x.bvlshr(&amount)
                }
            }
        })
    }

    fn builtin(&mut self, b: Builtin, args: &[Term], w: u32, signed: bool, ns: Ns) -> BV<'c> {
        let arg = |s: &mut Self, i: usize| match args.get(i) {
            Some(t) => s.bv_w(t, ns, w),
            None => s.num(0, w),
        };
        let x = arg(self, 0);
        let y = arg(self, 1);
        let max = if signed {
            self.num(i64::MAX as u64, w)
        } else {
            self.num(u64::MAX, w)
        };
        let min = if signed {
            self.num(i64::MIN as u64, w)
        } else {
            self.num(0, w)
        };
        let lt = |a: &BV<'c>, c: &BV<'c>| if signed { a.bvslt(c) } else { a.bvult(c) };
        match b {
            Builtin::Min => lt(&x, &y).ite(&x, &y),
            Builtin::Max => lt(&x, &y).ite(&y, &x),
            Builtin::SatAdd => {
                let s = x.bvadd(&y);
                if signed {
                    let over = x.bvadd_no_overflow(&y, true).not();
                    let under = x.bvadd_no_underflow(&y).not();
                    over.ite(&max, &under.ite(&min, &s))
                } else {
                    s.bvult(&x).ite(&max, &s)
                }
            }
            Builtin::SatSub => {
                let s = x.bvsub(&y);
                if signed {
                    let over = x.bvsub_no_overflow(&y).not();
                    let under = x.bvsub_no_underflow(&y, true).not();
                    over.ite(&max, &under.ite(&min, &s))
                } else {
                    x.bvult(&y).ite(&min, &s)
                }
            }
            Builtin::MulDiv => {
                let z = arg(self, 2);
                let ext = 128 - w;
                let wide = |v: &BV<'c>| {
                    if signed {
                        v.sign_ext(ext)
                    } else {
                        v.zero_ext(ext)
                    }
                };
                let (a, bb, c) = (wide(&x), wide(&y), wide(&z));
                let zero128 = BV::from_u64(self.ctx, 0, 128);
                let prod = a.bvmul(&bb);
                let q = if signed {
                    prod.bvsdiv(&c)
                } else {
                    prod.bvudiv(&c)
                };
                let low = q.extract(w - 1, 0);
                let res = if signed {
                    let hi = BV::from_i64(self.ctx, i64::MAX, 128);
                    let lo = BV::from_i64(self.ctx, i64::MIN, 128);
                    q.bvsgt(&hi).ite(&max, &q.bvslt(&lo).ite(&min, &low))
                } else {
                    let hi = BV::from_u64(self.ctx, u64::MAX >> (64 - w.min(64)), 128);
                    q.bvugt(&hi).ite(&max, &low)
                };
                c._eq(&zero128).ite(&self.num(0, w), &res)
            }
            // `hash` is a separate term kind.
            Builtin::Hash => self.num(0, 32),
        }
    }
}

/// Resizes a bit-vector (zero-extend or keep the low bits).
fn fit<'c>(v: &BV<'c>, w: u32) -> BV<'c> {
    let have = v.get_size();
    if have == w {
        v.clone()
    } else if have < w {
        v.zero_ext(w - have)
    } else {
        v.extract(w - 1, 0)
    }
}
