//! Terms to Z3, shared by the analysis' solver ([`super::solver::Smt`], one or two
//! packets) and the path-sequence solver ([`super::paths`], any number of packets).
//!
//! Every scalar is a bit-vector of its type's width (`bool` is a Z3 Boolean). Symbols are
//! Z3 constants named by their packet's namespace ([`Namespace::symbol`]), so a query
//! about several packets keeps their symbols apart. `hash(...)` is an uninterpreted
//! function per input width. Translations are cached per term and namespace, so shared
//! prefixes of paths are translated once. The meaning follows `docs/nf-language.md`:
//! `x / 0 == 0`, `x % 0 == x`, shift amounts modulo the width, casts truncate or zero-/
//! sign-extend by the source's signedness.

use super::term::{width, Kind, SymKind, Term};
use crate::lang::ast::{BinOp, UnOp};
use crate::lang::ops::Builtin;
use crate::lang::types::{IntTy, Type};
use std::collections::HashMap;
use std::hash::Hash;
use z3::ast::{Ast, Bool, BV};
use z3::{Context, FuncDecl, Sort};

/// Which packet a term speaks about, and how its symbols are named in Z3.
pub(crate) trait Namespace: Copy + Eq + Hash {
    /// The Z3 name of symbol `name` of this packet.
    fn symbol(self, name: &str) -> String;
    /// The packet's position in its sequence (what a fixed clock steps by).
    fn position(self) -> u64;
}

/// A Z3 value: a Boolean or a bit-vector.
#[derive(Clone)]
pub(crate) enum Z<'c> {
    B(Bool<'c>),
    V(BV<'c>),
}

/// All ones in the low `w` bits.
pub(crate) fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// Resizes a bit-vector (zero-extend or keep the low bits).
pub(crate) fn fit<'c>(v: &BV<'c>, w: u32) -> BV<'c> {
    let have = v.get_size();
    if have == w {
        v.clone()
    } else if have < w {
        v.zero_ext(w - have)
    } else {
        v.extract(w - 1, 0)
    }
}

/// The translator with its cache.
pub(crate) struct TermEncoder<'c, N: Namespace> {
    pub(crate) ctx: &'c Context,
    /// `now` of the packet at position `j` is `start + j * step` when set; otherwise
    /// `now` is a free symbol like any other. Set it before translating.
    pub(crate) fixed_now: Option<(u64, u64)>,
    /// Keyed by term identity and namespace; the term is kept alive by the entry.
    cache: HashMap<(usize, N), (Term, Z<'c>)>,
    hash_fns: HashMap<u32, FuncDecl<'c>>,
}

impl<'c, N: Namespace> TermEncoder<'c, N> {
    pub(crate) fn new(ctx: &'c Context) -> Self {
        TermEncoder {
            ctx,
            fixed_now: None,
            cache: HashMap::new(),
            hash_fns: HashMap::new(),
        }
    }

    /// The constant `v` as a `w`-bit vector (`v` truncated to `w` bits).
    pub(crate) fn num(&self, v: u64, w: u32) -> BV<'c> {
        BV::from_u64(self.ctx, v & mask(w), w)
    }

    /// The packet's clock: fixed by [`TermEncoder::fixed_now`] or its `now` symbol.
    pub(crate) fn now(&self, ns: N) -> BV<'c> {
        match self.fixed_now {
            Some((start, step)) => BV::from_u64(
                self.ctx,
                start.saturating_add(step.saturating_mul(ns.position())),
                64,
            ),
            None => BV::new_const(self.ctx, ns.symbol("now"), 64),
        }
    }

    pub(crate) fn boolean(&mut self, t: &Term, ns: N) -> Bool<'c> {
        match self.tr(t, ns) {
            Z::B(b) => b,
            Z::V(v) => {
                let w = v.get_size();
                v._eq(&self.num(0, w)).not()
            }
        }
    }

    pub(crate) fn bv(&mut self, t: &Term, ns: N) -> BV<'c> {
        match self.tr(t, ns) {
            Z::V(v) => v,
            Z::B(b) => b.ite(&self.num(1, 1), &self.num(0, 1)),
        }
    }

    pub(crate) fn bv_w(&mut self, t: &Term, ns: N, w: u32) -> BV<'c> {
        let v = self.bv(t, ns);
        fit(&v, w)
    }

    fn tr(&mut self, t: &Term, ns: N) -> Z<'c> {
        let key = (t.ptr(), ns);
        if let Some((_, z)) = self.cache.get(&key) {
            return z.clone();
        }
        let z = self.tr_uncached(t, ns);
        self.cache.insert(key, (t.clone(), z.clone()));
        z
    }

    fn tr_uncached(&mut self, t: &Term, ns: N) -> Z<'c> {
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
            Kind::Sym(s) if matches!(s.kind, SymKind::Now) => Z::V(self.now(ns)),
            Kind::Sym(s) => {
                let name = ns.symbol(&s.name);
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
                    let from_signed = a.ty().int().is_some_and(IntTy::is_signed);
                    let v = self.bv(a, ns);
                    let have = v.get_size();
                    Z::V(if have < w && from_signed {
                        v.sign_ext(w - have)
                    } else {
                        fit(&v, w)
                    })
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

    fn binary(&mut self, op: BinOp, a: &Term, b: &Term, ns: N) -> Z<'c> {
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

    fn builtin(&mut self, b: Builtin, args: &[Term], w: u32, signed: bool, ns: N) -> BV<'c> {
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
            Builtin::Hash => self.num(0, 32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sym::term::Symbol;
    use std::rc::Rc;
    use z3::{Config, SatResult, Solver};

    fn sym(name: &str, kind: SymKind, ty: Type) -> Term {
        Term::sym(Rc::new(Symbol {
            name: name.into(),
            kind,
            ty,
        }))
    }

    /// Whether `b` can be true.
    fn sat(ctx: &Context, b: &Bool<'_>) -> bool {
        let s = Solver::new(ctx);
        s.assert(b);
        s.check() == SatResult::Sat
    }

    #[test]
    fn namespaces_keep_packets_apart_and_a_fixed_clock_steps() {
        let ctx = Context::new(&Config::new());
        let mut enc: TermEncoder<'_, usize> = TermEncoder::new(&ctx);
        let src = sym(
            "pkt.ip.src",
            SymKind::State(crate::lang::ir::StateId(0)),
            Type::Int(IntTy::U32),
        );
        // The same field of two packets is two constants.
        let (a, b) = (enc.bv(&src, 0), enc.bv(&src, 1));
        assert!(sat(&ctx, &a._eq(&b).not()));
        assert!(!sat(&ctx, &a._eq(&a).not()));
        // `now` of packet 3 under a clock starting at 100 with step 10 is 130.
        enc.fixed_now = Some((100, 10));
        let now = sym("now", SymKind::Now, Type::Int(IntTy::U64));
        let n3 = enc.bv(&now, 3);
        assert!(!sat(&ctx, &n3._eq(&enc.num(130, 64)).not()));
    }

    #[test]
    fn division_by_zero_and_shifts_follow_the_language() {
        let ctx = Context::new(&Config::new());
        let mut enc: TermEncoder<'_, usize> = TermEncoder::new(&ctx);
        let x = sym(
            "x",
            SymKind::State(crate::lang::ir::StateId(0)),
            Type::Int(IntTy::U8),
        );
        let zero = Term::constant(Type::Int(IntTy::U8), 0);
        let div = Term::binary(BinOp::Div, x.clone(), zero.clone());
        let rem = Term::binary(BinOp::Rem, x.clone(), zero);
        let (d, r, xv) = (enc.bv(&div, 0), enc.bv(&rem, 0), enc.bv(&x, 0));
        // x / 0 == 0 and x % 0 == x, for every x.
        assert!(!sat(&ctx, &d._eq(&enc.num(0, 8)).not()));
        assert!(!sat(&ctx, &r._eq(&xv).not()));
        // Shift amounts are taken modulo the width: x << 9 == x << 1.
        let shl9 = Term::binary(
            BinOp::Shl,
            x.clone(),
            Term::constant(Type::Int(IntTy::U8), 9),
        );
        let shl1 = Term::binary(BinOp::Shl, x, Term::constant(Type::Int(IntTy::U8), 1));
        let (s9, s1) = (enc.bv(&shl9, 0), enc.bv(&shl1, 0));
        assert!(!sat(&ctx, &s9._eq(&s1).not()));
    }
}
