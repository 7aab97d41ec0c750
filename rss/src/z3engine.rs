//! The Z3 engine: the key search stated as Z3 bit-vector constraints and solved by Z3,
//! a second solver independent of the GF(2) elimination in [`crate::gf2`] (it shares
//! only the reading of the analysis, [`crate::problem`]).
//!
//! **Encoding.** Each port's key is one bit-vector constant of `key_bytes * 8` bits (key
//! bit 0, the MSB of byte 0, is the vector's most significant bit). The Toeplitz hash of
//! an input with only bit `i` set is the key window at `i`, an `extract` of the key; the
//! hash of any input is the XOR of the windows of its set bits. A constraint "p1 on port
//! a and p2 on port b with these fields equal reach the same RETA bucket" quantifies over
//! all packets, but the hash is linear in the input: the XOR of the two hashes is a
//! linear function of the packets' free values (one per group of fields the equalities
//! tie together), so it is zero for all packets iff it is zero on each unit vector of
//! that space. For every group and bit we therefore assert that the two packets with
//! just that bit set in every field of the group hash to equal RETA index bits: a finite,
//! quantifier-free formula. A port restricted to some fields gets "the hash of each other
//! field's unit inputs is zero on the RETA bits"; a constrained port must also have a
//! non-constant RETA index (some allowed unit input hashes to a non-zero index), or it
//! would send all its packets to one core.
//!
//! **Cores.** Each constraint, each port's field restriction and each port's
//! non-constancy requirement is guarded by its own tracking literal, so an unsatisfiable
//! set comes back as an unsat core, shrunk by deletion and reported in words.
//!
//! **Randomness**, as Maestro's librs3 does it (pseudo partial MaxSAT,
//! `maestro-reference.md` §3): assume a random value for every key bit; while Z3 answers
//! UNSAT, drop a random half of the assumed bits named in the core and retry. The key
//! keeps every random bit the constraints allow.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use z3::ast::{Ast, Bool, BV};
use z3::{Config, Context, Params, SatResult, Solver};

use crate::{Field, Problem, SolveError, SolveOptions};

/// What a tracking literal guards, for explaining an unsat core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guard {
    /// The field restriction of port index `.0`.
    Fields(usize),
    /// Constraint number `.0` of the problem.
    Pair(usize),
    /// "Port index `.0` has a non-constant RETA index".
    Spread(usize),
}

/// Per-query time limit: the formulas are small, so hitting it means something is wrong.
const TIMEOUT_MS: u32 = 60_000;

/// The hash bits `rows` (MSB-first output positions, contiguous) of the unit input `i`
/// under `key`: the key bits `i + rows.start ..= i + rows.end - 1`, as one bit-vector
/// whose least significant bit is the hash's bit `31 - (rows.end - 1)`.
fn window<'c>(key: &BV<'c>, key_bits: u32, i: usize, rows: &std::ops::Range<usize>) -> BV<'c> {
    let first = (i + rows.start) as u32;
    let last = (i + rows.end - 1) as u32;
    key.extract(key_bits - 1 - first, key_bits - 1 - last)
}

/// The hash bits `rows` of an input whose set bits are `bits`, under `key`.
fn hash_rows<'c>(
    ctx: &'c Context,
    key: &BV<'c>,
    key_bits: u32,
    bits: &[usize],
    rows: &std::ops::Range<usize>,
) -> BV<'c> {
    let zero = BV::from_u64(ctx, 0, rows.len() as u32);
    bits.iter()
        .fold(zero, |acc, &i| acc.bvxor(&window(key, key_bits, i, rows)))
}

/// The groups of a constraint: fields the equalities tie to one shared value. Each group
/// lists `(side, field)` members; fields tied to nothing form groups of one.
fn groups(eqs: &[(Field, Field)]) -> Vec<Vec<(usize, Field)>> {
    let mut groups: Vec<Vec<(usize, Field)>> = Vec::new();
    for side in 0..2 {
        for f in Field::ALL {
            groups.push(vec![(side, f)]);
        }
    }
    for &(f1, f2) in eqs {
        let a = groups.iter().position(|g| g.contains(&(0, f1)));
        let b = groups.iter().position(|g| g.contains(&(1, f2)));
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                let moved = groups.remove(a.max(b));
                groups[a.min(b)].extend(moved);
            }
        }
    }
    groups
}

/// A Z3 failure that is not an answer.
fn undecided(what: &str, solver: &Solver) -> SolveError {
    SolveError::Infeasible(format!(
        "Z3 could not decide {what} ({}); retry, or use the GF(2) engine (--engine gf2)",
        solver
            .get_reason_unknown()
            .unwrap_or_else(|| "no reason given".into())
    ))
}

/// A solver with the timeout set.
fn new_solver(ctx: &Context) -> Solver<'_> {
    let solver = Solver::new(ctx);
    let mut params = Params::new(ctx);
    params.set_u32("timeout", TIMEOUT_MS);
    solver.set_params(&params);
    solver
}

/// Asserts the conditions of `pb` on `keys` (one bit-vector of `key_bits` per port, in
/// port order), each group behind a tracking literal, and returns the literals. `rows`:
/// the hash bits constraints make equal; `reta_rows`: the RETA index bits.
fn encode<'c>(
    ctx: &'c Context,
    solver: &Solver<'c>,
    pb: &Problem,
    keys: &[BV<'c>],
    key_bits: u32,
    rows: &std::ops::Range<usize>,
    reta_rows: &std::ops::Range<usize>,
) -> Vec<(Bool<'c>, Guard)> {
    let mut guards: Vec<(Bool, Guard)> = Vec::new();
    let mut guard = |g: Guard, name: String, body: Vec<Bool<'c>>| {
        let lit = Bool::new_const(ctx, name);
        let refs: Vec<&Bool> = body.iter().collect();
        solver.assert(&lit.implies(&Bool::and(ctx, &refs)));
        guards.push((lit, g));
    };
    let zero = |w: usize| BV::from_u64(ctx, 0, w as u32);

    for (pi, allowed) in pb.allowed.iter().enumerate() {
        let (Some(allowed), Some(key)) = (allowed, keys.get(pi)) else {
            continue;
        };
        // Fields the port may not hash: their unit inputs leave the hash bits at zero.
        let mut body = Vec::new();
        for f in Field::ALL.iter().filter(|f| !allowed.contains(f)) {
            for t in 0..f.width() {
                let h = hash_rows(ctx, key, key_bits, &[f.offset() + t], rows);
                body.push(h._eq(&zero(rows.len())));
            }
        }
        guard(Guard::Fields(pi), format!("fields{pi}"), body);
        // The RETA index varies with some allowed field bit.
        let mut varies = Vec::new();
        for f in allowed {
            for t in 0..f.width() {
                let h = hash_rows(ctx, key, key_bits, &[f.offset() + t], reta_rows);
                varies.push(h._eq(&zero(reta_rows.len())).not());
            }
        }
        let refs: Vec<&Bool> = varies.iter().collect();
        guard(
            Guard::Spread(pi),
            format!("spread{pi}"),
            vec![Bool::or(ctx, &refs)],
        );
    }
    for (k, pair) in pb.pairs.iter().enumerate() {
        let (Some(ka), Some(kb)) = (
            keys.get(pair.ports[0] as usize),
            keys.get(pair.ports[1] as usize),
        ) else {
            continue;
        };
        let mut body = Vec::new();
        for group in groups(&pair.eqs) {
            let width = group[0].1.width();
            for t in 0..width {
                let bits = |side: usize| -> Vec<usize> {
                    group
                        .iter()
                        .filter(|(s, _)| *s == side)
                        .map(|(_, f)| f.offset() + t)
                        .collect()
                };
                let h1 = hash_rows(ctx, ka, key_bits, &bits(0), rows);
                let h2 = hash_rows(ctx, kb, key_bits, &bits(1), rows);
                body.push(h1._eq(&h2));
            }
        }
        guard(Guard::Pair(k), format!("pair{k}"), body);
    }
    guards
}

/// Checks concrete keys (one per port, in port order) against the Z3 encoding: `Err`
/// names the first condition they break, in words.
pub(crate) fn verify(
    pb: &Problem,
    keys: &[Vec<u8>],
    rows: &std::ops::Range<usize>,
    reta_size: usize,
) -> Result<(), String> {
    let ctx = Context::new(&Config::new());
    let solver = new_solver(&ctx);
    let key_bits = keys.iter().map(Vec::len).max().unwrap_or(0) as u32 * 8;
    if key_bits < 128 || keys.iter().any(|k| k.len() * 8 != key_bits as usize) {
        return Err("every key must have the same length, at least 16 bytes".into());
    }
    let consts: Vec<BV> = keys
        .iter()
        .map(|k| {
            k.iter()
                .map(|&b| BV::from_u64(&ctx, u64::from(b), 8))
                .reduce(|acc, b| acc.concat(&b))
                .unwrap_or_else(|| BV::from_u64(&ctx, 0, 8))
        })
        .collect();
    let reta_rows = 32 - reta_size.trailing_zeros() as usize..32;
    for (lit, g) in encode(&ctx, &solver, pb, &consts, key_bits, rows, &reta_rows) {
        match solver.check_assumptions(&[lit]) {
            SatResult::Sat => {}
            SatResult::Unknown => return Err(format!("Z3 could not decide {g:?}")),
            SatResult::Unsat => {
                return Err(match g {
                    Guard::Pair(k) => format!(
                        "breaks {}",
                        pb.pairs.get(k).map_or("a constraint", |p| p.words.as_str())
                    ),
                    Guard::Fields(pi) => {
                        format!("port {} hashes a field it may not use", pb.ports[pi].0)
                    }
                    Guard::Spread(pi) => {
                        format!("port {} has a constant RETA index", pb.ports[pi].0)
                    }
                })
            }
        }
    }
    Ok(())
}

/// Draws up to `opts.samples` key sets (one key per port, in port order) satisfying
/// every constraint of `pb` on the hash bits `rows`, each constrained port with a
/// non-constant RETA index, and hands each to `take`, which returns `true` to stop.
/// `Err(Infeasible)` names the conflicting constraints.
pub(crate) fn search(
    pb: &Problem,
    opts: &SolveOptions,
    rows: &std::ops::Range<usize>,
    rng: &mut ChaCha8Rng,
    mut take: impl FnMut(Vec<Vec<u8>>) -> bool,
) -> Result<(), SolveError> {
    let ctx = Context::new(&Config::new());
    let solver = new_solver(&ctx);
    let key_bits = (opts.key_bytes * 8) as u32;
    let reta_rows = 32 - opts.reta_size.trailing_zeros() as usize..32;
    let keys: Vec<BV> = (0..pb.ports.len())
        .map(|pi| BV::new_const(&ctx, format!("key{pi}"), key_bits))
        .collect();
    let guards = encode(&ctx, &solver, pb, &keys, key_bits, rows, &reta_rows);

    let lits: Vec<Bool> = guards.iter().map(|(l, _)| l.clone()).collect();
    match solver.check_assumptions(&lits) {
        SatResult::Sat => {}
        SatResult::Unknown => return Err(undecided("the constraints", &solver)),
        SatResult::Unsat => return Err(SolveError::Infeasible(explain(pb, &solver, &guards))),
    }

    // One tracking literal per key bit, bound to a fresh random value for each sample.
    for s in 0..opts.samples.max(1) {
        solver.push();
        let mut assumed: Vec<Bool> = Vec::new();
        let mut index: HashSet<Bool> = HashSet::new();
        for (pi, key) in keys.iter().enumerate() {
            for m in 0..key_bits {
                let lit = Bool::new_const(&ctx, format!("s{s}_k{pi}_{m}"));
                let bit = key.extract(key_bits - 1 - m, key_bits - 1 - m);
                let v = BV::from_u64(&ctx, u64::from(rng.gen::<bool>()), 1);
                solver.assert(&lit.implies(&bit._eq(&v)));
                index.insert(lit.clone());
                assumed.push(lit);
            }
        }
        loop {
            let all: Vec<Bool> = lits.iter().chain(&assumed).cloned().collect();
            match solver.check_assumptions(&all) {
                SatResult::Sat => break,
                SatResult::Unknown => return Err(undecided("a random key", &solver)),
                SatResult::Unsat => {
                    let mut core: Vec<Bool> = solver
                        .get_unsat_core()
                        .into_iter()
                        .filter(|l| index.contains(l))
                        .collect();
                    if core.is_empty() {
                        // The constraints alone were satisfiable above: Z3 contradicts itself.
                        return Err(SolveError::Infeasible(
                            "Z3 found the constraints unsatisfiable only under random key bits but named none of them; use the GF(2) engine (--engine gf2)".into(),
                        ));
                    }
                    core.shuffle(rng);
                    let drop = core.len().div_ceil(2);
                    for l in &core[..drop] {
                        index.remove(l);
                    }
                    assumed.retain(|l| index.contains(l));
                }
            }
        }
        let Some(model) = solver.get_model() else {
            return Err(undecided("a model", &solver));
        };
        let mut sample = Vec::new();
        for key in &keys {
            let mut bytes = Vec::with_capacity(opts.key_bytes);
            for byte in 0..opts.key_bytes as u32 {
                let hi = key_bits - 1 - byte * 8;
                let v = model
                    .eval(&key.extract(hi, hi - 7), true)
                    .and_then(|v| v.as_u64())
                    .ok_or_else(|| undecided("a key byte", &solver))?;
                bytes.push(v as u8);
            }
            sample.push(bytes);
        }
        solver.pop(1);
        if take(sample) {
            break;
        }
    }
    Ok(())
}

/// The unsat core of the last check, shrunk by deletion, in words.
fn explain(pb: &Problem, solver: &Solver, guards: &[(Bool, Guard)]) -> String {
    let mut core: Vec<(Bool, Guard)> = guards
        .iter()
        .filter(|(l, _)| solver.get_unsat_core().contains(l))
        .cloned()
        .collect();
    let mut i = 0;
    while i < core.len() {
        let without: Vec<Bool> = core
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (l, _))| l.clone())
            .collect();
        if solver.check_assumptions(&without) == SatResult::Unsat {
            core.remove(i);
        } else {
            i += 1;
        }
    }
    let gs: Vec<Guard> = core.iter().map(|(_, g)| *g).collect();
    let mut parts = Vec::new();
    for g in &gs {
        let Guard::Spread(pi) = *g else { continue };
        let (port, device) = &pb.ports[pi];
        let fields: Vec<&str> = pb.allowed[pi].iter().flatten().map(|f| f.name()).collect();
        parts.push(format!(
            "port {port} ({device}) would send every packet to one core: its hash may use only [{}]",
            fields.join(", ")
        ));
    }
    let restricted: Vec<String> = gs
        .iter()
        .filter_map(|g| match *g {
            Guard::Fields(pi) => {
                let (port, device) = &pb.ports[pi];
                let fields: Vec<&str> = pb.allowed[pi].iter().flatten().map(|f| f.name()).collect();
                Some(format!(
                    "port {port} ({device}) may hash only [{}]",
                    fields.join(", ")
                ))
            }
            _ => None,
        })
        .collect();
    let pairs: Vec<&str> = gs
        .iter()
        .filter_map(|g| match *g {
            Guard::Pair(k) => pb.pairs.get(k).map(|p| p.words.as_str()),
            _ => None,
        })
        .collect();
    let mut msg = parts.join("; ");
    if msg.is_empty() {
        msg.push_str("the constraints contradict each other");
    }
    msg.push_str(". Z3's unsat core: ");
    let mut reasons = restricted;
    reasons.extend(pairs.iter().map(|s| s.to_string()));
    if reasons.is_empty() {
        msg.push_str("nothing else (the port has no field RSS can spread on)");
    } else {
        msg.push_str(&reasons.join("; "));
    }
    msg.push_str(". Use the locks strategy for this NF, or relax the state keys.");
    msg
}
