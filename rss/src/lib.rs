//! The RSS solver: one Toeplitz key per port, the hash types each port enables and one
//! RETA, such that every two packets the analyzer says may share state reach the same
//! core (`shared/spec/rss.md`, `docs/analysis-json.md` "constraints").
//!
//! Why it is exact and fast: for a fixed input the Toeplitz hash is linear in the key, and
//! for a fixed key linear in the input. A constraint "p1 on port a and p2 on port b with
//! `a.f == b.g` (for the listed fields) reach the same core" holds for *all* packets iff,
//! on the RETA index bits, the key-window matrices of fields bound to one shared value
//! sum to zero and those of unconstrained fields are zero. Those are linear equations on
//! key bits; Gaussian elimination gives the whole solution space, from which we draw
//! seeded random keys and keep the one whose RETA bits depend most on the low bits of the
//! fields (what varies inside real prefixes).
//!
//! Unlike Maestro we constrain only the `log2(reta_size)` RETA bits, not all 32 hash
//! bits ([`SolveOptions::hash_bits`] reproduces Maestro's choice for comparison). Every
//! port uses the same RETA, so co-located ports agree on every bucket.
//!
//! Two engines find keys ([`Engine`]): GF(2) elimination (the default, microseconds)
//! and a Z3 bit-vector encoding of the same conditions (`z3engine`), an independent
//! second solver the tests cross-check against the first. [`z3check`] proves a concrete
//! configuration (any RETA contents, per-port RETAs) and [`balance`] rebalances the RETA
//! for a capture.

pub mod balance;
pub mod export;
pub mod gf2;
pub mod spread;
pub mod z3check;
mod z3engine;

use std::collections::BTreeMap;

use maestro_analyzer::sym::report::{Analysis, PairConstraint};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use gf2::{BitVec, Nullspace};

/// The four IPv4 fields an RSS hash can use, in Toeplitz input order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Src,
    Dst,
    Sport,
    Dport,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Src, Field::Dst, Field::Sport, Field::Dport];

    /// First input bit of the field in the IPv4 TCP/UDP input (`src|dst|sport|dport`).
    pub fn offset(self) -> usize {
        match self {
            Field::Src => 0,
            Field::Dst => 32,
            Field::Sport => 64,
            Field::Dport => 80,
        }
    }

    pub fn width(self) -> usize {
        match self {
            Field::Src | Field::Dst => 32,
            Field::Sport | Field::Dport => 16,
        }
    }

    /// The analyzer's name (`pkt.ip.src`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Field::Src => "pkt.ip.src",
            Field::Dst => "pkt.ip.dst",
            Field::Sport => "pkt.l4.sport",
            Field::Dport => "pkt.l4.dport",
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    fn is_port(self) -> bool {
        matches!(self, Field::Sport | Field::Dport)
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Input bits of the IPv4 TCP/UDP hash: the only hash input the solver configures.
pub const INPUT_BITS: usize = 96;

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("RETA size {0} is not one NICs offer: use a power of two from 2 to 65536 (128, 512 or 2048 on real NICs)")]
    RetaSize(usize),
    #[error("key length {0} bytes is not supported: use 40 (82599, ConnectX) or 52 (X710, E810)")]
    KeyBytes(usize),
    #[error("{cores} cores do not fit a {reta} entry RETA: use at most {reta} cores or a larger --reta-size")]
    Cores { cores: usize, reta: usize },
    #[error("hash bits must be 1..=32 and at least log2(RETA size) = {min}; got {got}")]
    HashBits { got: usize, min: usize },
    #[error("constraint between ports {ports:?} uses field `{field}`, which RSS cannot hash; re-run `maestro analyze` (the analyzer should have restricted it to pkt.ip.*/pkt.l4.*)")]
    UnknownField { ports: [u16; 2], field: String },
    #[error("constraint between ports {ports:?} equates fields of different widths ({a} and {b}); RSS cannot make them meet")]
    WidthMismatch {
        ports: [u16; 2],
        a: &'static str,
        b: &'static str,
    },
    #[error("constraint between ports {ports:?} names a port the NF does not have (it has {count}); re-run `maestro analyze` on the NF")]
    UnknownPort { ports: [u16; 2], count: u16 },
    #[error("no useful RSS configuration: {0}")]
    Infeasible(String),
}

/// Which solver finds the keys. Both solve the same conditions (RETA index bits of every
/// constrained pair equal for all packets, field restrictions, a non-constant RETA index
/// on constrained ports) and pick among their random solutions by the same score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Gaussian elimination over GF(2) ([`gf2`]): the whole solution space, sampled
    /// uniformly. Sub-millisecond.
    #[default]
    Gf2,
    /// Z3 over bit-vector key constants, randomised by librs3-style assumption dropping.
    /// Independent of the GF(2) code; slower (tens of milliseconds per key set).
    Z3,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Gf2 => "gf2",
            Engine::Z3 => "z3",
        }
    }
}

/// What to solve for.
#[derive(Clone, Debug)]
pub struct SolveOptions {
    /// RETA entries (a power of two; read it from the NIC).
    pub reta_size: usize,
    /// Key length in bytes (40 or 52; read it from the NIC).
    pub key_bytes: usize,
    /// Cores (queues) the RETA spreads over.
    pub cores: usize,
    pub seed: u64,
    /// Hash bits that must agree: `log2(reta_size)` (ours, the default when `None`) or 32
    /// (Maestro's keys).
    pub hash_bits: Option<usize>,
    /// Also hash the classes besides TCP/UDP that reach state (ICMP, fragments)
    /// consistently, using `all_classes_fields` (default). `false` is Maestro's choice:
    /// TCP/UDP only, other classes all land on `reta[0]`'s core.
    pub all_classes: bool,
    /// Random keys drawn; the best by [`PortConfig::score`] is kept.
    pub samples: usize,
    /// The solver that finds the keys.
    pub engine: Engine,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            reta_size: 512,
            key_bytes: 52,
            cores: 16,
            seed: 0,
            hash_bits: None,
            all_classes: true,
            samples: 32,
            engine: Engine::Gf2,
        }
    }
}

/// One port's configuration.
#[derive(Clone, Debug, Serialize)]
pub struct PortConfig {
    pub port: u16,
    pub device: String,
    #[serde(serialize_with = "export::ser_hex")]
    pub key: Vec<u8>,
    /// Fields the RETA index depends on (the others have zero key columns on its bits).
    pub fields: Vec<Field>,
    /// DPDK `rss_hf` names the port enables.
    pub rss_types: Vec<String>,
    /// Rank of the RETA bits over the port's fields (at most log2(reta_size)).
    pub rank: usize,
    /// Quality used to pick among random keys: sum over the port's fields of the rank of
    /// the RETA bits over the field's low 16 bits, plus [`PortConfig::rank`].
    pub score: usize,
    /// Whether the analysis puts any constraint on the port.
    pub constrained: bool,
    /// The port's own RETA when it differs from [`RssConfig::reta`]; `None` (the solver's
    /// and `--balance`'s output) means the shared one. Set only to model a NIC configured
    /// otherwise, e.g. the checker's "RETA that differs between two ports" mutant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reta: Option<Vec<u16>>,
}

/// A solved configuration.
#[derive(Clone, Debug, Serialize)]
pub struct RssConfig {
    pub nf: String,
    pub strategy: String,
    pub reta_size: usize,
    pub key_bytes: usize,
    pub cores: usize,
    /// Hash bits every constraint makes equal (`log2(reta_size)` or 32).
    pub hash_bits: usize,
    /// [`SolveOptions::all_classes`] as solved.
    pub all_classes: bool,
    pub seed: u64,
    pub ports: Vec<PortConfig>,
    /// The RETA shared by every port: `reta[b] = b % cores` as solved, or the table
    /// [`balance::balance`] computed for a capture.
    pub reta: Vec<u16>,
    /// The constraints solved, in words.
    pub constraints: Vec<String>,
    /// The engine that found the keys.
    pub engine: Engine,
    /// Dimension of the key solution space (bits of freedom over all keys); `None` with
    /// the Z3 engine, which finds keys but not the space.
    pub freedom: Option<usize>,
    /// Set by [`balance::balance`]: the capture and the imbalance before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<balance::BalanceReport>,
    pub notes: Vec<String>,
}

impl RssConfig {
    /// The RETA port index `pi` loads: its own if set, else the shared one.
    pub fn reta_of(&self, pi: usize) -> &[u16] {
        self.ports
            .get(pi)
            .and_then(|p| p.reta.as_deref())
            .unwrap_or(&self.reta)
    }
}

/// One constraint, resolved to fields.
#[derive(Clone, Debug)]
struct Pair {
    ports: [u16; 2],
    eqs: Vec<(Field, Field)>,
    words: String,
}

/// The problem after reading the analysis.
#[derive(Clone, Debug)]
struct Problem {
    ports: Vec<(u16, String)>,
    /// Per port: the fields it may hash (`None`: unconstrained, all fields).
    allowed: Vec<Option<Vec<Field>>>,
    rss_types: Vec<Vec<String>>,
    pairs: Vec<Pair>,
}

fn describe(p: &PairConstraint) -> String {
    let eqs: Vec<String> = p
        .equalities
        .iter()
        .map(|e| format!("{}({}) == {}({})", p.devices[0], e.p1, p.devices[1], e.p2))
        .collect();
    let src: Vec<String> = p
        .sources
        .iter()
        .map(|s| {
            let lines: Vec<String> = s.lines[0]
                .iter()
                .chain(&s.lines[1])
                .map(|l| l.to_string())
                .collect();
            format!("`{}` (lines {})", s.object, lines.join(", "))
        })
        .collect();
    format!(
        "a {} packet and a {} packet with {} must reach the same core ({})",
        p.devices[0],
        p.devices[1],
        if eqs.is_empty() {
            "any fields".to_string()
        } else {
            eqs.join(" and ")
        },
        src.join("; ")
    )
}

fn problem(a: &Analysis, opts: &SolveOptions) -> Result<Problem, SolveError> {
    let ports: Vec<(u16, String)> = (0..a.nf.ports).map(|p| (p, a.nf.device_name(p))).collect();
    let mut allowed = vec![None; ports.len()];
    let mut rss_types = vec![
        vec![
            "NONFRAG_IPV4_TCP".to_string(),
            "NONFRAG_IPV4_UDP".to_string()
        ];
        ports.len()
    ];
    let shared_nothing = a.verdict.strategy == "shared-nothing";
    let mut pairs = Vec::new();
    if shared_nothing {
        for f in &a.constraints.fields {
            let Some(slot) = allowed.get_mut(f.port as usize) else {
                continue;
            };
            let names = if opts.all_classes {
                &f.all_classes_fields
            } else {
                &f.fields
            };
            *slot = Some(names.iter().filter_map(|n| Field::parse(n)).collect());
            if opts.all_classes {
                let types = &mut rss_types[f.port as usize];
                // A key over addresses only gives the same RETA index to the L3 and the L4
                // input, so every IPv4 packet may be hashed: `IPV4` also steers TCP/UDP
                // packets cut before their ports, which a NIC cannot 4-tuple hash and would
                // otherwise leave on reta[0] although the NF keys its state on them.
                let addresses_only = slot.as_ref().is_some_and(|fs: &Vec<Field>| {
                    fs.iter().all(|f| matches!(f, Field::Src | Field::Dst))
                });
                if addresses_only && !types.iter().any(|x| x == "IPV4") {
                    types.push("IPV4".to_string());
                }
                for t in &f.rss_types {
                    for part in t.split('|').map(str::trim) {
                        if !types.iter().any(|x| x == part) {
                            types.push(part.to_string());
                        }
                    }
                }
            }
        }
        for p in &a.constraints.pairs {
            if p.ports.iter().any(|&x| usize::from(x) >= ports.len()) {
                return Err(SolveError::UnknownPort {
                    ports: p.ports,
                    count: a.nf.ports,
                });
            }
            let mut eqs = Vec::new();
            for e in &p.equalities {
                let f1 = Field::parse(&e.p1).ok_or_else(|| SolveError::UnknownField {
                    ports: p.ports,
                    field: e.p1.clone(),
                })?;
                let f2 = Field::parse(&e.p2).ok_or_else(|| SolveError::UnknownField {
                    ports: p.ports,
                    field: e.p2.clone(),
                })?;
                if f1.width() != f2.width() {
                    return Err(SolveError::WidthMismatch {
                        ports: p.ports,
                        a: f1.name(),
                        b: f2.name(),
                    });
                }
                eqs.push((f1, f2));
            }
            for port in p.ports {
                if let Some(slot) = allowed.get_mut(port as usize) {
                    slot.get_or_insert_with(|| Field::ALL.to_vec());
                }
            }
            pairs.push(Pair {
                ports: p.ports,
                eqs,
                words: describe(p),
            });
        }
    }
    Ok(Problem {
        ports,
        allowed,
        rss_types,
        pairs,
    })
}

/// Variable index of key bit `bit` of port number `port_idx`.
fn var(key_bits: usize, port_idx: usize, bit: usize) -> usize {
    port_idx * key_bits + bit
}

/// The equations for `pairs` plus each constrained port's field restriction.
fn equations(pb: &Problem, pairs: &[&Pair], key_bits: usize, rows: &[usize]) -> Vec<BitVec> {
    let vars = pb.ports.len() * key_bits;
    let mut out = Vec::new();
    // Fields a port may not hash: zero columns on the constrained rows.
    for (pi, allowed) in pb.allowed.iter().enumerate() {
        let Some(allowed) = allowed else { continue };
        for f in Field::ALL {
            if allowed.contains(&f) {
                continue;
            }
            for t in 0..f.width() {
                for &j in rows {
                    let mut e = BitVec::zeros(vars);
                    e.set(var(key_bits, pi, f.offset() + t + j), true);
                    out.push(e);
                }
            }
        }
    }
    for pair in pairs {
        // Union-find over the 8 (side, field) slots: equal fields share one free value.
        let slot = |side: usize, f: Field| side * 4 + f as usize;
        let mut parent: Vec<usize> = (0..8).collect();
        fn find(p: &mut [usize], x: usize) -> usize {
            let mut x = x;
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for &(f1, f2) in &pair.eqs {
            let (a, b) = (
                find(&mut parent, slot(0, f1)),
                find(&mut parent, slot(1, f2)),
            );
            parent[a] = b;
        }
        let mut classes: BTreeMap<usize, Vec<(usize, Field)>> = BTreeMap::new();
        for side in 0..2 {
            for f in Field::ALL {
                let root = find(&mut parent, slot(side, f));
                let pi = pair.ports[side] as usize;
                classes.entry(root).or_default().push((pi, f));
            }
        }
        for members in classes.values() {
            let width = members[0].1.width();
            for t in 0..width {
                for &j in rows {
                    let mut e = BitVec::zeros(vars);
                    for &(pi, f) in members {
                        e.toggle(var(key_bits, pi, f.offset() + t + j));
                    }
                    if !e.is_zero() {
                        out.push(e);
                    }
                }
            }
        }
    }
    out
}

/// The RETA-row matrix of one port's key: `cols[i]` has bit `r` set when input bit `i`
/// flips RETA index bit `r` (bit 0 = least significant hash bit).
pub fn reta_columns(key: &[u8], reta_bits: usize) -> [u64; INPUT_BITS] {
    let mut cols = [0u64; INPUT_BITS];
    for (i, c) in cols.iter_mut().enumerate() {
        let w = maestro_runtime::rss::key_window(key, i);
        *c = u64::from(w) & ((1u64 << reta_bits) - 1);
    }
    cols
}

/// Rank of the RETA bits over the given fields' input bits (`low16`: only their low 16).
fn field_rank(cols: &[u64; INPUT_BITS], fields: &[Field], low16: bool) -> usize {
    let mut v = Vec::new();
    for f in fields {
        let skip = if low16 { f.width() - 16 } else { 0 };
        v.extend_from_slice(&cols[f.offset() + skip..f.offset() + f.width()]);
    }
    gf2::rank(&v)
}

fn key_of(x: &BitVec, pi: usize, key_bytes: usize) -> Vec<u8> {
    let kb = key_bytes * 8;
    (0..key_bytes)
        .map(|byte| {
            (0..8).fold(0u8, |acc, b| {
                acc << 1 | u8::from(x.get(var(kb, pi, byte * 8 + b)))
            })
        })
        .collect()
}

/// Solves the sharding constraints of `analysis`.
pub fn solve(analysis: &Analysis, opts: &SolveOptions) -> Result<RssConfig, SolveError> {
    maestro_runtime::rss::Reta::check_size(opts.reta_size)
        .map_err(|_| SolveError::RetaSize(opts.reta_size))?;
    if opts.key_bytes != 40 && opts.key_bytes != 52 {
        return Err(SolveError::KeyBytes(opts.key_bytes));
    }
    if opts.cores == 0 || opts.cores > opts.reta_size || opts.cores > u16::MAX as usize {
        return Err(SolveError::Cores {
            cores: opts.cores,
            reta: opts.reta_size,
        });
    }
    let reta_bits = opts.reta_size.trailing_zeros() as usize;
    let hash_bits = opts.hash_bits.unwrap_or(reta_bits);
    if !(reta_bits..=32).contains(&hash_bits) {
        return Err(SolveError::HashBits {
            got: hash_bits,
            min: reta_bits,
        });
    }
    // Row j (MSB-first output position) of the hash: the low `hash_bits` are 32-h..32.
    let rows: Vec<usize> = (32 - hash_bits..32).collect();
    let pb = problem(analysis, opts)?;
    let key_bits = opts.key_bytes * 8;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // Score each candidate key set (one key per port) as the engine produces it; stop
    // once a set reaches the highest score possible (nothing later can replace it).
    let max_score: usize = pb
        .allowed
        .iter()
        .map(|a| {
            let n = a.as_ref().map_or(Field::ALL.len(), Vec::len);
            reta_bits + n * reta_bits.min(16)
        })
        .sum();
    let mut best: Option<(usize, Vec<PortConfig>)> = None;
    let mut take = |keys: Vec<Vec<u8>>| -> bool {
        let mut ports = Vec::new();
        let mut total = 0;
        for (pi, ((port, device), key)) in pb.ports.iter().zip(keys).enumerate() {
            let fields = pb.allowed[pi]
                .clone()
                .unwrap_or_else(|| Field::ALL.to_vec());
            let cols = reta_columns(&key, reta_bits);
            let rank = field_rank(&cols, &fields, false);
            let score = fields
                .iter()
                .map(|f| field_rank(&cols, &[*f], true))
                .sum::<usize>()
                + rank;
            total += score;
            ports.push(PortConfig {
                port: *port,
                device: device.clone(),
                key,
                fields,
                rss_types: pb.rss_types[pi].clone(),
                rank,
                score,
                constrained: pb.allowed[pi].is_some(),
                reta: None,
            });
        }
        if best.as_ref().is_none_or(|(s, _)| total > *s) {
            best = Some((total, ports));
        }
        total >= max_score
    };
    let freedom = match opts.engine {
        Engine::Gf2 => {
            let all: Vec<&Pair> = pb.pairs.iter().collect();
            let ns = Nullspace::new(
                pb.ports.len() * key_bits,
                equations(&pb, &all, key_bits, &rows),
            );
            // Exact infeasibility: a constrained port whose RETA-index key bits are all
            // forced to zero can never spread.
            let mut free_spread: Vec<(usize, Vec<usize>)> = Vec::new();
            for pi in 0..pb.ports.len() {
                if pb.allowed[pi].is_none() {
                    continue;
                }
                let vars = spread_vars(&pb, pi, key_bits, reta_bits);
                let free: Vec<usize> = vars.into_iter().filter(|&v| !ns.forced_zero(v)).collect();
                if free.is_empty() {
                    return Err(SolveError::Infeasible(explain(
                        &pb, pi, key_bits, &rows, opts,
                    )));
                }
                free_spread.push((pi, free));
            }
            for _ in 0..opts.samples.max(1) {
                let mut x = ns.sample(&mut rng);
                // A sample that leaves a port's RETA index constant (likely when the
                // space is thin, e.g. Maestro-style single-field keys) is repaired by
                // adding a solution that sets one of the port's free RETA-index bits.
                for _ in 0..4 {
                    let mut repaired = false;
                    for (_, free) in &free_spread {
                        if free.iter().all(|&v| !x.get(v)) {
                            let v = free[rng.gen_range(0..free.len())];
                            if let Some(b) = ns.basis_with(v, &mut rng) {
                                x.xor_with(&b);
                                repaired = true;
                            }
                        }
                    }
                    if !repaired {
                        break;
                    }
                }
                let keys = (0..pb.ports.len())
                    .map(|pi| key_of(&x, pi, opts.key_bytes))
                    .collect();
                if take(keys) {
                    break;
                }
            }
            Some(ns.dimension())
        }
        Engine::Z3 => {
            z3engine::search(&pb, opts, &(rows[0]..32), &mut rng, take)?;
            None
        }
    };
    let Some((_, ports)) = best else {
        return Err(SolveError::Infeasible("no sample drawn".into()));
    };
    for pc in &ports {
        if pc.constrained && (pc.rank == 0 || pc.fields.is_empty()) {
            return Err(SolveError::Infeasible(match opts.engine {
                Engine::Gf2 => format!(
                    "no key drawn gave port {} ({}) a non-constant RETA index although one exists; draw more keys (--samples) or use --engine z3",
                    pc.port, pc.device
                ),
                // Z3's keys satisfy a non-constancy constraint: this would be a Z3 bug.
                Engine::Z3 => format!(
                    "Z3 returned a key with a constant RETA index for port {} ({}) although it was asked not to; use --engine gf2",
                    pc.port, pc.device
                ),
            }));
        }
    }
    let mut notes = Vec::new();
    if analysis.verdict.strategy != "shared-nothing" {
        notes.push(format!(
            "verdict is `{}`: no co-location is needed, keys are random",
            analysis.verdict.strategy
        ));
    }
    if !opts.all_classes {
        notes.push(
            "TCP/UDP only: ICMP and fragments are not hashed and all reach reta[0]'s core".into(),
        );
    }
    Ok(RssConfig {
        nf: analysis.nf.name.clone(),
        strategy: analysis.verdict.strategy.clone(),
        reta_size: opts.reta_size,
        key_bytes: opts.key_bytes,
        cores: opts.cores,
        hash_bits,
        all_classes: opts.all_classes,
        seed: opts.seed,
        ports,
        reta: (0..opts.reta_size)
            .map(|b| (b % opts.cores) as u16)
            .collect(),
        constraints: pb.pairs.iter().map(|p| p.words.clone()).collect(),
        engine: opts.engine,
        freedom,
        balance: None,
        notes,
    })
}

/// The key-bit variables of port `pi` that put its allowed fields on the RETA index
/// bits: the port's RETA index is constant iff they are all zero.
fn spread_vars(pb: &Problem, pi: usize, key_bits: usize, reta_bits: usize) -> Vec<usize> {
    let mut vars = Vec::new();
    for f in pb.allowed[pi].as_deref().unwrap_or(&Field::ALL) {
        for t in 0..f.width() {
            for j in 32 - reta_bits..32 {
                vars.push(var(key_bits, pi, f.offset() + t + j));
            }
        }
    }
    vars.sort_unstable();
    vars.dedup();
    vars
}

/// Why port index `pi` can only have a constant RETA index: the smallest set of
/// constraints (found by deletion, each step exact) that still forces it, in words.
fn explain(
    pb: &Problem,
    pi: usize,
    key_bits: usize,
    rows: &[usize],
    opts: &SolveOptions,
) -> String {
    let reta_bits = opts.reta_size.trailing_zeros() as usize;
    let vars = spread_vars(pb, pi, key_bits, reta_bits);
    let forced = |set: &[&Pair]| -> bool {
        let ns = Nullspace::new(
            pb.ports.len() * key_bits,
            equations(pb, set, key_bits, rows),
        );
        vars.iter().all(|&v| ns.forced_zero(v))
    };
    let mut set: Vec<&Pair> = pb.pairs.iter().collect();
    let mut i = 0;
    while i < set.len() {
        let mut without = set.clone();
        without.remove(i);
        if forced(&without) {
            set = without;
        } else {
            i += 1;
        }
    }
    let fields: Vec<&str> = pb.allowed[pi].iter().flatten().map(|f| f.name()).collect();
    let (port, device) = &pb.ports[pi];
    let mut msg = format!(
        "port {port} ({device}) would send every packet to one core: its hash may use only [{}]",
        fields.join(", ")
    );
    if set.is_empty() {
        msg.push_str(", which leaves nothing RSS can spread on");
    } else {
        msg.push_str(", and together ");
        let words: Vec<String> = set.iter().map(|p| p.words.clone()).collect();
        msg.push_str(&words.join("; "));
        msg.push_str(" force its RETA index to be constant");
    }
    msg.push_str(". Use the locks strategy for this NF, or relax the state keys.");
    msg
}

/// Checks a configuration against every constraint on `n` random packet pairs with the
/// concrete hash and RETA (independent of the linear algebra): the first violation.
pub fn check_random(
    analysis: &Analysis,
    cfg: &RssConfig,
    n: usize,
    seed: u64,
) -> Result<(), String> {
    use maestro_runtime::rss::{HashInput, Reta, Toeplitz};
    let retas: Vec<Reta> = (0..cfg.ports.len())
        .map(|pi| Reta::new(cfg.reta_of(pi).to_vec()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let keys: Vec<Toeplitz> = cfg
        .ports
        .iter()
        .map(|p| Toeplitz::new(&p.key).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let opts = SolveOptions {
        all_classes: true,
        ..SolveOptions::default()
    };
    let pb = problem(analysis, &opts).map_err(|e| e.to_string())?;
    for pair in &pb.pairs {
        let (a, b) = (pair.ports[0] as usize, pair.ports[1] as usize);
        if a.max(b) >= keys.len() {
            return Err(format!(
                "{}: the configuration has {} port(s); was it solved for another NF?",
                pair.words,
                keys.len()
            ));
        }
        for _ in 0..n {
            let mut p1: [u32; 4] = [rng.gen(), rng.gen(), rng.gen(), rng.gen()];
            let mut p2: [u32; 4] = [rng.gen(), rng.gen(), rng.gen(), rng.gen()];
            for &(f1, f2) in &pair.eqs {
                p2[f2 as usize] = p1[f1 as usize];
            }
            for p in [&mut p1, &mut p2] {
                p[2] &= 0xffff;
                p[3] &= 0xffff;
            }
            let h = |pi: usize, p: &[u32; 4]| {
                keys[pi].hash_unchecked(
                    HashInput::ipv4(p[0].into(), p[1].into(), p[2] as u16, p[3] as u16, true)
                        .as_bytes(),
                )
            };
            let (h1, h2) = (h(a, &p1), h(b, &p2));
            if retas[a].queue(h1) != retas[b].queue(h2) {
                return Err(format!(
                    "{}: p1 {:?} hash {h1:#010x} vs p2 {:?} hash {h2:#010x}",
                    pair.words, p1, p2
                ));
            }
        }
    }
    Ok(())
}

/// Checks `cfg`'s keys against one engine's own statement of the constraints of
/// `analysis` (the options are read back from `cfg`): [`Engine::Gf2`] evaluates the
/// linear equations on the key bits, [`Engine::Z3`] asks Z3 whether the keys, as
/// constants, satisfy its bit-vector encoding. Keys found by one engine and accepted by
/// the other are a cross-check of both. `Err` names the broken condition.
pub fn verify_keys(analysis: &Analysis, cfg: &RssConfig, engine: Engine) -> Result<(), String> {
    let opts = SolveOptions {
        reta_size: cfg.reta_size,
        key_bytes: cfg.key_bytes,
        cores: cfg.cores,
        hash_bits: Some(cfg.hash_bits),
        all_classes: cfg.all_classes,
        ..SolveOptions::default()
    };
    let pb = problem(analysis, &opts).map_err(|e| e.to_string())?;
    if cfg.ports.len() != pb.ports.len() || cfg.ports.iter().any(|p| p.key.len() != cfg.key_bytes) {
        return Err(format!(
            "the configuration has {} port(s) with {}-byte keys; the analysis has {} port(s)",
            cfg.ports.len(),
            cfg.key_bytes,
            pb.ports.len()
        ));
    }
    let keys: Vec<Vec<u8>> = cfg.ports.iter().map(|p| p.key.clone()).collect();
    let rows: Vec<usize> = (32 - cfg.hash_bits.min(32)..32).collect();
    match engine {
        Engine::Z3 => z3engine::verify(&pb, &keys, &(rows[0]..32), cfg.reta_size),
        Engine::Gf2 => {
            let key_bits = cfg.key_bytes * 8;
            let mut x = BitVec::zeros(keys.len() * key_bits);
            for (pi, k) in keys.iter().enumerate() {
                for (byte, b) in k.iter().enumerate() {
                    for bit in 0..8 {
                        x.set(var(key_bits, pi, byte * 8 + bit), b >> (7 - bit) & 1 == 1);
                    }
                }
            }
            if let Some(bad) = equations(&pb, &[], key_bits, &rows)
                .iter()
                .position(|e| e.dot(&x))
            {
                return Err(format!(
                    "field restriction equation {bad} fails: a port hashes a field it may not use"
                ));
            }
            for pair in &pb.pairs {
                if equations(&pb, &[pair], key_bits, &rows)
                    .iter()
                    .any(|e| e.dot(&x))
                {
                    return Err(format!("breaks {}", pair.words));
                }
            }
            let reta_bits = cfg.reta_size.trailing_zeros() as usize;
            for (pi, p) in cfg.ports.iter().enumerate() {
                let fields = pb.allowed[pi]
                    .clone()
                    .unwrap_or_else(|| Field::ALL.to_vec());
                if pb.allowed[pi].is_some()
                    && field_rank(&reta_columns(&p.key, reta_bits), &fields, false) == 0
                {
                    return Err(format!("port {} has a constant RETA index", p.port));
                }
            }
            Ok(())
        }
    }
}
