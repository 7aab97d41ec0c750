//! Z3 as an independent check of a concrete configuration: for every constraint, either a
//! proof that *all* pairs of packets satisfying it reach the same core (through the exact
//! keys and RETA, not through the linear algebra that produced them), or a counterexample
//! pair.

use maestro_analyzer::sym::report::Analysis;
use z3::ast::{Array, Ast, Bool, BV};
use z3::{Config, Context, SatResult, Solver, Sort};

use crate::{problem, Field, RssConfig, SolveError, SolveOptions};

/// A packet's hashed fields: `(src, dst, sport, dport)`.
pub type Tuple = (u32, u32, u16, u16);

/// The outcome for one constraint.
#[derive(Clone, Debug)]
pub struct PairProof {
    /// The constraint in words.
    pub constraint: String,
    /// `None`: proven for all packets. `Some`: two packets that satisfy the constraint but
    /// reach different cores `(p1, core1, p2, core2)`.
    pub counterexample: Option<(Tuple, u16, Tuple, u16)>,
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

/// Proves every constraint of `analysis` for `cfg`, one Z3 query each.
pub fn prove(analysis: &Analysis, cfg: &RssConfig) -> Result<Vec<PairProof>, SolveError> {
    let pb = problem(analysis, &SolveOptions::default())?;
    let z3cfg = Config::new();
    let ctx = Context::new(&z3cfg);
    let bits = cfg.reta.len().trailing_zeros();
    let idx_sort = Sort::bitvector(&ctx, bits);
    let mut reta = Array::const_array(&ctx, &idx_sort, &BV::from_u64(&ctx, 0, 16));
    for (b, q) in cfg.reta.iter().enumerate() {
        reta = reta.store(
            &BV::from_u64(&ctx, b as u64, bits),
            &BV::from_u64(&ctx, u64::from(*q), 16),
        );
    }
    let round_robin_pow2 = cfg.cores.is_power_of_two()
        && cfg.cores > 1
        && cfg
            .reta
            .iter()
            .enumerate()
            .all(|(b, &q)| q as usize == b % cfg.cores);
    let mut out = Vec::new();
    for pair in &pb.pairs {
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
        let key = |port: u16| {
            cfg.ports
                .iter()
                .find(|p| p.port == port)
                .map(|p| p.key.clone())
                .unwrap_or_default()
        };
        let h1 = hash(&ctx, &key(pair.ports[0]), &input(&p1));
        let h2 = hash(&ctx, &key(pair.ports[1]), &input(&p2));
        // A round-robin RETA over 2^k cores is the low k hash bits: encode it directly,
        // which keeps satisfiable queries (counterexamples) fast; otherwise the table.
        let (q1, q2) = if round_robin_pow2 {
            let k = cfg.cores.trailing_zeros().max(1);
            (
                Some(h1.extract(k - 1, 0).zero_ext(16 - k)),
                Some(h2.extract(k - 1, 0).zero_ext(16 - k)),
            )
        } else {
            (
                reta.select(&h1.extract(bits - 1, 0)).as_bv(),
                reta.select(&h2.extract(bits - 1, 0)).as_bv(),
            )
        };
        let (Some(q1), Some(q2)) = (q1, q2) else {
            return Err(SolveError::Infeasible(
                "Z3 RETA select is not a bit-vector".into(),
            ));
        };
        solver.assert(&Bool::not(&q1._eq(&q2)));
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
            counterexample,
        });
    }
    Ok(out)
}
