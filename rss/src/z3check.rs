//! Z3 as an independent check of a concrete configuration: for every constraint, either a
//! proof that *all* pairs of packets satisfying it reach the same core (through the exact
//! keys and RETA contents, not through the linear algebra that produced them), or a
//! counterexample pair.
//!
//! Two arguments, tried in this order for each constraint:
//! 1. [`ProofArgument::SharedRetaIndex`], when both ports load the same table: the RETA
//!    index bits of the two hashes are equal for every pair, so the pair reads the same
//!    bucket and the same core whatever the table holds. Fast, and the argument the
//!    solver's keys are built for (`--balance` keeps it valid).
//! 2. [`ProofArgument::RetaLookup`], otherwise (different tables, or unequal index bits
//!    that a table may still map to one core): each port's table is encoded as a
//!    multiplexer over its index bits (identical sub-tables merged, so a round-robin
//!    table over 2^k cores becomes its low k bits), and Z3 looks for two packets whose
//!    cores differ.

use std::fmt;

use maestro_analyzer::sym::report::Analysis;
use z3::ast::{Ast, BV};
use z3::{Config, Context, SatResult, Solver};

use crate::{problem, Field, RssConfig, SolveError, SolveOptions};

/// A packet's hashed fields: `(src, dst, sport, dport)`.
pub type Tuple = (u32, u32, u16, u16);

/// How a constraint was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofArgument {
    /// Both ports load one RETA and their RETA index bits agree for every pair.
    SharedRetaIndex,
    /// The cores themselves, looked up in each port's RETA (any contents, tables may
    /// differ between the ports).
    RetaLookup,
}

impl ProofArgument {
    pub fn describe(self) -> &'static str {
        match self {
            ProofArgument::SharedRetaIndex => {
                "shared RETA, equal RETA index bits for every pair (same bucket, same core)"
            }
            ProofArgument::RetaLookup => "core looked up in each port's RETA",
        }
    }
}

/// The outcome for one constraint.
#[derive(Clone, Debug)]
pub struct PairProof {
    /// The constraint in words.
    pub constraint: String,
    /// Its ports (packet 1, packet 2).
    pub ports: [u16; 2],
    /// The argument that decided it.
    pub argument: ProofArgument,
    /// `None`: proven for all packets. `Some`: two packets that satisfy the constraint but
    /// reach different cores `(p1, core1, p2, core2)`.
    pub counterexample: Option<(Tuple, u16, Tuple, u16)>,
}

impl fmt::Display for PairProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.counterexample {
            None => write!(
                f,
                "proved ({}): {}",
                self.argument.describe(),
                self.constraint
            ),
            Some((p1, c1, p2, c2)) => {
                let t = |p: &Tuple| {
                    format!(
                        "{}:{} -> {}:{}",
                        std::net::Ipv4Addr::from(p.0),
                        p.2,
                        std::net::Ipv4Addr::from(p.1),
                        p.3
                    )
                };
                write!(
                    f,
                    "COUNTEREXAMPLE ({}): {}: port {} packet {} reaches core {c1}, port {} packet {} reaches core {c2}",
                    self.argument.describe(),
                    self.constraint,
                    self.ports[0],
                    t(p1),
                    self.ports[1],
                    t(p2)
                )
            }
        }
    }
}

/// The symbolic Toeplitz hash of a 96-bit input under a concrete key.
fn hash<'c>(ctx: &'c Context, key: &[u8], input: &BV<'c>) -> BV<'c> {
    let zero = BV::from_u64(ctx, 0, 32);
    let mut h = zero.clone();
    for i in 0..crate::INPUT_BITS {
        let w = maestro_runtime::rss::key_window(key, i);
        if w == 0 {
            continue;
        }
        let bit = (crate::INPUT_BITS - 1 - i) as u32;
        let set = input.extract(bit, bit)._eq(&BV::from_u64(ctx, 1, 1));
        h = h.bvxor(&set.ite(&BV::from_u64(ctx, u64::from(w), 32), &zero));
    }
    h
}

/// A table over index bits `0..bits` as a multiplexer on `idx` (the hash's low bits),
/// merging equal sub-tables: `Ok(value)` when the whole slice holds one value.
fn mux<'c>(ctx: &'c Context, idx: &BV<'c>, table: &[u16], bits: u32) -> Result<u16, BV<'c>> {
    let first = table.first().copied().unwrap_or(0);
    if bits == 0 || table.iter().all(|&q| q == first) {
        return Ok(first);
    }
    // Entries with index bit `bits - 1` clear are the first half.
    let half = table.len() / 2;
    let lo = mux(ctx, idx, &table[..half], bits - 1);
    let hi = mux(ctx, idx, &table[half..], bits - 1);
    let bit = idx
        .extract(bits - 1, bits - 1)
        ._eq(&BV::from_u64(ctx, 1, 1));
    Err(bit.ite(&value(ctx, hi), &value(ctx, lo)))
}

/// A [`mux`] result as a 16-bit term.
fn value<'c>(ctx: &'c Context, r: Result<u16, BV<'c>>) -> BV<'c> {
    match r {
        Ok(v) => BV::from_u64(ctx, u64::from(v), 16),
        Err(bv) => bv,
    }
}

/// Proves every constraint of `analysis` for `cfg`, one or two Z3 queries each.
pub fn prove(analysis: &Analysis, cfg: &RssConfig) -> Result<Vec<PairProof>, SolveError> {
    let pb = problem(analysis, &SolveOptions::default())?;
    let z3cfg = Config::new();
    let ctx = Context::new(&z3cfg);
    let mut out = Vec::new();
    for pair in &pb.pairs {
        let (a, b) = (pair.ports[0] as usize, pair.ports[1] as usize);
        let (Some(pa), Some(pb_)) = (cfg.ports.get(a), cfg.ports.get(b)) else {
            return Err(SolveError::Infeasible(format!(
                "{}: the configuration has {} port(s); was it solved for another NF?",
                pair.words,
                cfg.ports.len()
            )));
        };
        let (ta, tb) = (cfg.reta_of(a), cfg.reta_of(b));
        for t in [ta, tb] {
            if maestro_runtime::rss::Reta::check_size(t.len()).is_err() {
                return Err(SolveError::RetaSize(t.len()));
            }
        }
        let solver = Solver::new(&ctx);
        let fields = |side: &str| -> Vec<BV> {
            Field::ALL
                .iter()
                .map(|f| BV::new_const(&ctx, format!("{side}_{f:?}"), f.width() as u32))
                .collect()
        };
        let (p1, p2) = (fields("p1"), fields("p2"));
        for &(f1, f2) in &pair.eqs {
            solver.assert(&p1[f1 as usize]._eq(&p2[f2 as usize]));
        }
        fn input<'c>(p: &[BV<'c>]) -> BV<'c> {
            p[0].concat(&p[1]).concat(&p[2]).concat(&p[3])
        }
        let h1 = hash(&ctx, &pa.key, &input(&p1));
        let h2 = hash(&ctx, &pb_.key, &input(&p2));
        let (ba, bb) = (ta.len().trailing_zeros(), tb.len().trailing_zeros());
        let (i1, i2) = (h1.extract(ba - 1, 0), h2.extract(bb - 1, 0));

        if ta == tb {
            solver.push();
            solver.assert(&i1._eq(&i2).not());
            let r = solver.check();
            solver.pop(1);
            match r {
                SatResult::Unsat => {
                    out.push(PairProof {
                        constraint: pair.words.clone(),
                        ports: pair.ports,
                        argument: ProofArgument::SharedRetaIndex,
                        counterexample: None,
                    });
                    continue;
                }
                SatResult::Sat => {}
                SatResult::Unknown => {
                    return Err(SolveError::Infeasible(format!(
                        "Z3 could not decide: {}",
                        pair.words
                    )))
                }
            }
        }
        let q1 = value(&ctx, mux(&ctx, &i1, ta, ba));
        let q2 = value(&ctx, mux(&ctx, &i2, tb, bb));
        solver.assert(&q1._eq(&q2).not());
        let counterexample = match solver.check() {
            SatResult::Unsat => None,
            SatResult::Sat => {
                let Some(m) = solver.get_model() else {
                    return Err(SolveError::Infeasible("Z3 gave no model".into()));
                };
                let val = |x: &BV| m.eval(x, true).and_then(|v| v.as_u64()).unwrap_or(0);
                let tuple = |p: &[BV]| -> Tuple {
                    (
                        val(&p[0]) as u32,
                        val(&p[1]) as u32,
                        val(&p[2]) as u16,
                        val(&p[3]) as u16,
                    )
                };
                Some((tuple(&p1), val(&q1) as u16, tuple(&p2), val(&q2) as u16))
            }
            SatResult::Unknown => {
                return Err(SolveError::Infeasible(format!(
                    "Z3 could not decide: {}",
                    pair.words
                )))
            }
        };
        out.push(PairProof {
            constraint: pair.words.clone(),
            ports: pair.ports,
            argument: ProofArgument::RetaLookup,
            counterexample,
        });
    }
    Ok(out)
}
