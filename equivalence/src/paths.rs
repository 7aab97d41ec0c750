//! Path coverage: which feasible paths of the symbolic model a trace exercises, and packet
//! sequences that reach every one of them.
//!
//! A replayed capture only exercises the paths that happened to be in it; the checker's
//! verdict is only as good as the paths its traffic drives. [`coverage`] runs the
//! reference interpreter with path tracing and matches each packet's trace against the
//! analyzer's feasible paths (`maestro_analyzer::PathSet`: the same numbering as
//! `maestro analyze`). [`path_traffic`] builds, for every feasible path, a short packet
//! sequence whose last packet takes it, with the earlier packets that put the state in
//! place (a WAN reply after its LAN request, a full table, an expired backend):
//!
//! 1. Z3 solves the path condition of the last packet together with up to
//!    [`MAX_PREFIX`] earlier packets over a bounded model of the state
//!    (`PathSet::solve`); the models become frames.
//! 2. Every sequence is replayed on the interpreter, which has the last word: a sequence
//!    counts only if its last packet's trace matches the path.
//! 3. Paths that need a full table or a crossed threshold with the library's large
//!    defaults are also tried with small values of the configs that size the state
//!    (`--set max_flows=3`), each such sequence saying so in its note and carrying the
//!    overrides it needs. Shorter sequences come first; at each length the program as
//!    given is tried before the small configurations.
//! 4. What is still uncovered gets a seeded coverage-guided random search (field, port
//!    and time mutations of the sequences found so far).
//!
//! Every path left uncovered is listed with the reason.

use maestro_analyzer::sym::paths::{PacketModel, Prefix, Solved, Times};
use maestro_analyzer::sym::report::PathInfo;
use maestro_analyzer::{
    Analysis, AnalysisError, AnalyzeOptions, ConfigValue, IntTy, LoadError, NfProgram, PathSet,
    PathTrace, PktField, StateKind, Type, Value,
};
use maestro_interpreter::{InterpError, InterpOptions, Interpreter};
use maestro_runtime::packet::{ipv4_header_checksum, l4_checksum_ipv4, layout, ParseMode};
use maestro_runtime::InputPacket;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The most earlier packets the solver may place before the target packet.
pub const MAX_PREFIX: usize = 5;
/// Executions of the random search, per NF configuration that still has uncovered paths.
pub const RANDOM_BUDGET: usize = 400;
/// Timestamps of solved sequences when no time gap is needed: 1 s, then 1 µs apart.
const FIXED_TIMES: Times = Times::Fixed {
    start: 1_000_000_000,
    step: 1_000,
};
/// Longest prefix solved with free timestamps (a larger problem; no library path needs
/// more than three earlier packets and a time gap at once).
const FREE_TIMES_MAX_PREFIX: usize = 3;
/// Per-query solver timeout of the search, in milliseconds.
const QUERY_TIMEOUT_MS: u32 = 3_000;
/// Longest sequence the random search builds.
const RANDOM_MAX_LEN: usize = 10;

/// What can go wrong while measuring or building path coverage.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("{nf}: the symbolic execution failed: {source}")]
    Analysis {
        nf: String,
        #[source]
        source: AnalysisError,
    },
    #[error("{nf}: the analysis given does not describe this program ({what}); analyse the same NF with the same --set values")]
    Mismatch { nf: String, what: String },
    #[error("{nf}: the interpreter cannot start: {source}")]
    Interp {
        nf: String,
        #[source]
        source: InterpError,
    },
    #[error("{nf}: cannot reload the NF with --set {overrides}: {source}")]
    Reload {
        nf: String,
        overrides: String,
        #[source]
        source: LoadError,
    },
}

/// Path coverage of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct PathCoverage {
    pub nf: String,
    /// The feasible paths of the analysis, by id.
    pub feasible: Vec<PathInfo>,
    /// Packets that took each path, aligned with `feasible`.
    pub hit: Vec<u64>,
    /// Paths no packet took, with why.
    pub uncovered: Vec<(PathInfo, String)>,
    /// Packets whose trace matches no feasible path: the symbolic model missed a path
    /// (an analyzer bug). Zero unless something is wrong.
    pub unmatched: u64,
    /// The first such packet: its index and its trace, written out.
    pub first_unmatched: Option<String>,
}

impl PathCoverage {
    /// Paths taken by at least one packet.
    pub fn covered(&self) -> usize {
        self.hit.iter().filter(|&&h| h > 0).count()
    }

    /// `fw: 6/6 feasible paths (100.0%)`.
    pub fn summary(&self) -> String {
        let n = self.feasible.len();
        let pct = if n == 0 {
            100.0
        } else {
            100.0 * self.covered() as f64 / n as f64
        };
        format!(
            "{}: {}/{} feasible paths ({pct:.1}%)",
            self.nf,
            self.covered(),
            n
        )
    }
}

/// The feasible paths of the analysis in id order, after checking that the analysis and
/// the path enumeration describe the same program.
fn feasible_paths(
    program: &NfProgram,
    analysis: &Analysis,
    set: &PathSet,
) -> Result<Vec<PathInfo>, PathsError> {
    let mut infos: Vec<PathInfo> = analysis
        .ports
        .iter()
        .flat_map(|p| p.paths.iter().cloned())
        .collect();
    infos.sort_by_key(|p| p.id);
    let mismatch = |what: String| PathsError::Mismatch {
        nf: program.name.clone(),
        what,
    };
    if infos.len() != set.paths.len() {
        return Err(mismatch(format!(
            "it has {} paths, the program {}",
            infos.len(),
            set.paths.len()
        )));
    }
    for (info, p) in infos.iter().zip(&set.paths) {
        if info.id != p.id || info.port != p.port || info.action_line != p.action_line {
            return Err(mismatch(format!(
                "path {} ends at line {} on port {}, the program's at line {} on port {}",
                info.id, info.action_line, info.port, p.action_line, p.port
            )));
        }
    }
    Ok(infos)
}

fn enumerate(program: &NfProgram) -> Result<PathSet, PathsError> {
    PathSet::enumerate(program, &AnalyzeOptions::default()).map_err(|source| PathsError::Analysis {
        nf: program.name.clone(),
        source,
    })
}

fn interpreter(program: &NfProgram) -> Result<Interpreter, PathsError> {
    let mut i = Interpreter::new(program, InterpOptions::default()).map_err(|source| {
        PathsError::Interp {
            nf: program.name.clone(),
            source,
        }
    })?;
    i.set_path_tracing(true);
    Ok(i)
}

/// Runs the packets through a fresh interpreter and gives each packet's trace.
fn run_traced(program: &NfProgram, packets: &[InputPacket]) -> Result<Vec<PathTrace>, PathsError> {
    let mut interp = interpreter(program)?;
    Ok(packets
        .iter()
        .map(|p| {
            interp.process(p);
            interp.last_path().cloned().unwrap_or_default()
        })
        .collect())
}

/// Which feasible paths the packets take, run in order through a fresh interpreter.
pub fn coverage(
    program: &NfProgram,
    analysis: &Analysis,
    packets: &[InputPacket],
) -> Result<PathCoverage, PathsError> {
    let set = enumerate(program)?;
    let feasible = feasible_paths(program, analysis, &set)?;
    let traces = run_traced(program, packets)?;
    let mut hit = vec![0u64; feasible.len()];
    let mut unmatched = 0;
    let mut first_unmatched = None;
    for (i, t) in traces.iter().enumerate() {
        match set.classify(t) {
            Some(p) => hit[p] += 1,
            None => {
                unmatched += 1;
                if first_unmatched.is_none() {
                    first_unmatched = Some(format!("packet {i}: {}", show_trace(program, t)));
                }
            }
        }
    }
    let uncovered = feasible
        .iter()
        .zip(&hit)
        .filter(|(_, &h)| h == 0)
        .map(|(p, _)| {
            (
                p.clone(),
                format!("no packet of the {} given took it", packets.len()),
            )
        })
        .collect();
    Ok(PathCoverage {
        nf: program.name.clone(),
        feasible,
        hit,
        uncovered,
        unmatched,
        first_unmatched,
    })
}

/// A trace written out (`port 1: 23:5=yes 30:9=no => 36:13`).
fn show_trace(program: &NfProgram, t: &PathTrace) -> String {
    let mut s = format!("port {}:", t.port);
    for d in &t.decisions {
        let (l, c) = program.source.line_col(d.at);
        s.push_str(&format!(" {l}:{c}={}", if d.taken { "yes" } else { "no" }));
    }
    let (l, c) = program.source.line_col(t.action);
    s.push_str(&format!(" => {l}:{c}"));
    s
}

/// A packet sequence whose last packet takes one feasible path.
#[derive(Clone, Debug, Serialize)]
pub struct PathTraffic {
    /// The path's id (as in the analysis).
    pub path: usize,
    /// Replay in order through a fresh NF; the last packet takes the path.
    pub packets: Vec<InputPacket>,
    /// `--set` values the sequence needs (empty: the program as given). The NF must be
    /// loaded with them for the sequence to take the path.
    pub overrides: Vec<(String, String)>,
    /// How the sequence was found and what it needs.
    pub note: String,
}

/// Why a feasible path got no sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncoveredKind {
    /// The bounded state model proves that no sequence of up to [`MAX_PREFIX`] earlier
    /// packets reaches it, under every configuration tried.
    Unreachable,
    /// The solver found sequences, but the interpreter took other paths (the model's
    /// approximations), and the random search did not reach it either.
    NotReached,
    /// The solver gave up on it.
    SolverGaveUp,
}

#[derive(Clone, Debug, Serialize)]
pub struct Uncovered {
    pub path: PathInfo,
    pub kind: UncoveredKind,
    pub reason: String,
}

/// Generated traffic for every feasible path of an NF.
#[derive(Clone, Debug, Serialize)]
pub struct PathTrafficReport {
    pub nf: String,
    pub feasible: Vec<PathInfo>,
    /// One sequence per covered path, in path order.
    pub traffic: Vec<PathTraffic>,
    pub uncovered: Vec<Uncovered>,
    /// Solver queries, interpreter replays of solved sequences, random executions.
    pub solver_queries: u64,
    pub replays: u64,
    pub random_runs: u64,
}

impl PathTrafficReport {
    /// `(path id, packets)` pairs, for callers that load the NF themselves. Sequences
    /// that need `--set` values are marked in [`PathTraffic::overrides`].
    pub fn pairs(&self) -> Vec<(usize, Vec<InputPacket>)> {
        self.traffic
            .iter()
            .map(|t| (t.path, t.packets.clone()))
            .collect()
    }

    /// `nat: 7/8 feasible paths have a sequence; uncovered: 3 (unreachable)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {}/{} feasible paths have a sequence",
            self.nf,
            self.traffic.len(),
            self.feasible.len()
        );
        if !self.uncovered.is_empty() {
            let list: Vec<String> = self
                .uncovered
                .iter()
                .map(|u| format!("{} ({:?})", u.path.id, u.kind))
                .collect();
            s.push_str(&format!("; uncovered: {}", list.join(", ")));
        }
        s
    }
}

/// Replays every sequence of the report through a fresh interpreter (loaded with the
/// sequence's overrides) and measures the coverage they give together. A sequence whose
/// last packet does not take its path is reported in `uncovered`, so this is an
/// independent check of [`path_traffic`].
pub fn traffic_coverage(
    program: &NfProgram,
    analysis: &Analysis,
    report: &PathTrafficReport,
) -> Result<PathCoverage, PathsError> {
    let base = enumerate(program)?;
    let feasible = feasible_paths(program, analysis, &base)?;
    let mut hit = vec![0u64; feasible.len()];
    let mut unmatched = 0;
    let mut first_unmatched = None;
    let mut wrong_end: BTreeMap<usize, String> = BTreeMap::new();
    for t in &report.traffic {
        let prog = if t.overrides.is_empty() {
            program.clone()
        } else {
            reload(program, &t.overrides)?
        };
        let set = if t.overrides.is_empty() {
            None
        } else {
            Some(enumerate(&prog)?)
        };
        let traces = run_traced(&prog, &t.packets)?;
        for (i, tr) in traces.iter().enumerate() {
            let found = match &set {
                None => base.classify(tr),
                Some(s) => s
                    .classify(tr)
                    .and_then(|k| base.find(&s.paths[k].signature)),
            };
            match found {
                Some(p) => hit[p] += 1,
                None if set.is_some() => {} // a path that only exists with the overrides
                None => {
                    unmatched += 1;
                    if first_unmatched.is_none() {
                        first_unmatched = Some(format!(
                            "sequence for path {}, packet {i}: {}",
                            t.path,
                            show_trace(&prog, tr)
                        ));
                    }
                }
            }
        }
        let last_ok = traces.last().is_some_and(|tr| {
            base.paths
                .iter()
                .find(|p| p.id == t.path)
                .is_some_and(|p| p.signature.matches(tr))
        });
        if !last_ok {
            wrong_end.insert(
                t.path,
                format!("its sequence does not end on it: {}", t.note),
            );
        }
    }
    let uncovered = feasible
        .iter()
        .zip(&hit)
        .filter(|(p, &h)| h == 0 || wrong_end.contains_key(&p.id))
        .map(|(p, _)| {
            let why = wrong_end.get(&p.id).cloned().unwrap_or_else(|| {
                report
                    .uncovered
                    .iter()
                    .find(|u| u.path.id == p.id)
                    .map(|u| u.reason.clone())
                    .unwrap_or_else(|| "no sequence takes it".to_string())
            });
            (p.clone(), why)
        })
        .collect();
    Ok(PathCoverage {
        nf: program.name.clone(),
        feasible,
        hit,
        uncovered,
        unmatched,
        first_unmatched,
    })
}

// ---------------------------------------------------------------------------------------
// Configurations: the program as given, and small state sizes.

/// One configuration of the NF the search runs on.
struct Variant {
    overrides: Vec<(String, String)>,
    /// Why these values (empty for the program as given).
    note: String,
    prog: NfProgram,
    set: PathSet,
    /// Sequences replayed so far: their models, frames and the base path each packet took.
    runs: Vec<Run>,
}

struct Run {
    models: Vec<PacketModel>,
    packets: Vec<InputPacket>,
    /// Base path index per packet (`None`: a path the base program does not have).
    took: Vec<Option<usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Sizes a table, map, vector, allocator or set family.
    Capacity,
    /// A sketch threshold or a per-set bound.
    Limit,
    Other,
}

/// Integer configs with the role they play, found by changing each one and comparing the
/// state parameters the program gets.
fn config_roles(program: &NfProgram) -> Vec<(String, Role, u64)> {
    let mut out = Vec::new();
    for c in &program.configs {
        let (Some(Type::Int(t)), ConfigValue::Value(Value::Int(_, v))) = (c.ty, &c.value) else {
            continue;
        };
        if t == IntTy::I64 {
            continue;
        }
        let probe = if *v < t.mask() { v + 1 } else { v - 1 };
        let Ok(changed) = reload(program, &[(c.name.clone(), probe.to_string())]) else {
            continue;
        };
        let mut role = Role::Other;
        for (a, b) in program.states.iter().zip(&changed.states) {
            match (&a.kind, &b.kind) {
                (StateKind::Table { capacity: x, .. }, StateKind::Table { capacity: y, .. })
                | (StateKind::Map { capacity: x, .. }, StateKind::Map { capacity: y, .. })
                | (StateKind::Vector { capacity: x, .. }, StateKind::Vector { capacity: y, .. })
                | (StateKind::DChain { capacity: x, .. }, StateKind::DChain { capacity: y, .. })
                | (
                    StateKind::Cht {
                        backend_count: x, ..
                    },
                    StateKind::Cht {
                        backend_count: y, ..
                    },
                ) if x != y => role = Role::Capacity,
                (
                    StateKind::Sets {
                        sets: s1,
                        per_set: p1,
                        ..
                    },
                    StateKind::Sets {
                        sets: s2,
                        per_set: p2,
                        ..
                    },
                ) => {
                    if s1 != s2 {
                        role = Role::Capacity;
                    } else if p1 != p2 && role == Role::Other {
                        role = Role::Limit;
                    }
                }
                (
                    StateKind::Sketch { threshold: x, .. },
                    StateKind::Sketch { threshold: y, .. },
                ) if x != y && role == Role::Other => role = Role::Limit,
                _ => {}
            }
        }
        out.push((c.name.clone(), role, *v));
    }
    out
}

/// The `--set` values the given program was loaded with (configs and every device), so
/// that reloading with more overrides keeps them.
fn current_overrides(program: &NfProgram) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in program.configs.iter().filter(|c| c.overridden) {
        let v = match &c.value {
            ConfigValue::Value(v) => literal(v),
            ConfigValue::File { written, .. } => written.clone(),
        };
        out.push((c.name.clone(), v));
    }
    for d in &program.devices {
        out.push((d.name.clone(), d.port.to_string()));
    }
    out
}

/// A scalar value as a `--set` literal.
fn literal(v: &Value) -> String {
    match v {
        Value::Int(IntTy::I64, x) => (*x as i64).to_string(),
        Value::Int(_, x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Mac(m) => m
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        Value::Ip4(a) => std::net::Ipv4Addr::from(*a).to_string(),
        Value::Device(d) => d.to_string(),
        Value::Record(_) => String::new(),
    }
}

/// The program reloaded from its source with more `--set` values.
fn reload(program: &NfProgram, extra: &[(String, String)]) -> Result<NfProgram, PathsError> {
    let mut overrides = current_overrides(program);
    for (k, v) in extra {
        overrides.retain(|(k2, _)| k2 != k);
        overrides.push((k.clone(), v.clone()));
    }
    let name = &program.source.name;
    let base = Path::new(name).parent();
    maestro_analyzer::parse_and_check(name, &program.source.text, &overrides, base).map_err(
        |source| PathsError::Reload {
            nf: program.name.clone(),
            overrides: extra
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            source,
        },
    )
}

/// The configurations tried after the program as given: small per-key limits (a sketch
/// threshold, a set bound), small capacities, and small values for the other large
/// integer configs (a policer's rate and burst), each only when it changes something.
fn variant_overrides(program: &NfProgram) -> Vec<(Vec<(String, String)>, String)> {
    let roles = config_roles(program);
    let pick = |want: Role, small: u64, min_default: u64| -> Vec<(String, String, u64)> {
        roles
            .iter()
            .filter(|(_, r, v)| *r == want && *v > small && *v >= min_default)
            .map(|(n, _, v)| (n.clone(), small.to_string(), *v))
            .collect()
    };
    let mut out = Vec::new();
    for (set, why) in [
        (
            pick(Role::Limit, 1, 0),
            "a small per-key limit so that it can be crossed in a few packets",
        ),
        (
            pick(Role::Capacity, 3, 0),
            "small capacities so that the state can fill in a few packets",
        ),
        (
            pick(Role::Other, 1500, 65_536),
            "small values for large integer configs (rates, budgets) so that a few packets can exhaust them",
        ),
    ] {
        if set.is_empty() {
            continue;
        }
        let defaults: Vec<String> = set
            .iter()
            .map(|(n, s, d)| format!("{n}={s} (default {d})"))
            .collect();
        out.push((
            set.into_iter().map(|(n, s, _)| (n, s)).collect(),
            format!("with {}: {why}", defaults.join(", ")),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Frames.

fn put16(f: &mut [u8], off: usize, v: u16) {
    if let Some(d) = f.get_mut(off..off + 2) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

fn put32(f: &mut [u8], off: usize, v: u32) {
    if let Some(d) = f.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

fn mac_bytes(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The frame a packet model describes: Ethernet II, and for EtherType 0x0800 an IPv4
/// header without options whose total length covers the frame, then for protocols 6 and
/// 17 a TCP (SYN) or UDP header; the rest is zero. Checksums are valid. Frames are at
/// least 60 bytes (Ethernet's minimum without FCS).
pub fn frame_of(m: &PacketModel) -> Vec<u8> {
    let len = (m.field(PktField::Len) as usize).clamp(60, 9014);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&mac_bytes(m.field(PktField::EthDst)));
    f[6..12].copy_from_slice(&mac_bytes(m.field(PktField::EthSrc)));
    let ety = m.field(PktField::EthType) as u16;
    put16(&mut f, 12, ety);
    if ety != 0x0800 {
        return f;
    }
    let total = (len - 14).min(u16::MAX as usize) as u16;
    let proto = m.field(PktField::IpProto) as u8;
    f[14] = 0x45;
    f[15] = m.field(PktField::IpTos) as u8;
    put16(&mut f, 16, total);
    put16(&mut f, 18, m.field(PktField::IpId) as u16);
    put16(&mut f, 20, m.field(PktField::IpFrag) as u16);
    f[22] = m.field(PktField::IpTtl) as u8;
    f[23] = proto;
    put32(&mut f, 26, m.field(PktField::IpSrc) as u32);
    put32(&mut f, 30, m.field(PktField::IpDst) as u32);
    let csum = ipv4_header_checksum(&f[14..34]);
    put16(&mut f, 24, csum);
    let l4 = 34;
    let csum_at = match proto {
        17 => {
            put16(&mut f, l4 + 4, total - 20);
            Some(l4 + 6)
        }
        6 => {
            put32(&mut f, l4 + 4, 1000); // sequence number
            f[l4 + 12] = 0x50; // data offset: 5 words
            f[l4 + 13] = 0x02; // SYN
            put16(&mut f, l4 + 14, 0xffff); // window
            Some(l4 + 16)
        }
        _ => None,
    };
    if let Some(at) = csum_at {
        put16(&mut f, l4, m.field(PktField::L4Sport) as u16);
        put16(&mut f, l4 + 2, m.field(PktField::L4Dport) as u16);
        if let Some(c) = l4_checksum_ipv4(&f, &layout(&f, ParseMode::Strict)) {
            put16(&mut f, at, c);
        }
    }
    f
}

fn packet_of(m: &PacketModel) -> InputPacket {
    InputPacket {
        port: m.port,
        time_ns: m.time_ns,
        data: frame_of(m),
    }
}

// ---------------------------------------------------------------------------------------
// The search.

/// What happened when trying one path in one configuration.
#[derive(Default)]
struct Attempt {
    unknown: Option<String>,
    /// Paths (ids) the interpreter took instead, when models were found.
    wrong: Vec<String>,
}

struct Search<'a> {
    base: &'a PathSet,
    queries: u64,
    replays: u64,
    random_runs: u64,
}

impl Search<'_> {
    /// Replays models on the variant's program and records which base path each packet
    /// took; gives the index of the new run.
    fn replay(&mut self, v: &mut Variant, models: Vec<PacketModel>) -> Result<usize, PathsError> {
        let packets: Vec<InputPacket> = models.iter().map(packet_of).collect();
        let traces = run_traced(&v.prog, &packets)?;
        let took = traces
            .iter()
            .map(|t| {
                v.set
                    .classify(t)
                    .and_then(|k| self.base.find(&v.set.paths[k].signature))
            })
            .collect();
        v.runs.push(Run {
            models,
            packets,
            took,
        });
        Ok(v.runs.len() - 1)
    }

    /// A run in which some packet takes `target` (base index): the run's packets up to
    /// the first such packet.
    fn already(v: &Variant, target: usize) -> Option<Vec<InputPacket>> {
        v.runs.iter().find_map(|r| {
            r.took
                .iter()
                .position(|t| *t == Some(target))
                .map(|i| r.packets[..=i].to_vec())
        })
    }

    /// Solves for `target` (base index; `tv` in the variant's numbering) with exactly `k`
    /// earlier packets in one configuration: fixed timestamps first, then (for short
    /// prefixes) free ones; a model the interpreter disagrees with is blocked and the
    /// solver asked again.
    fn solve_k(
        &mut self,
        v: &mut Variant,
        target: usize,
        tv: usize,
        k: usize,
        attempt: &mut Attempt,
    ) -> Result<Option<Vec<InputPacket>>, PathsError> {
        let mut modes = vec![FIXED_TIMES];
        if k <= FREE_TIMES_MAX_PREFIX {
            modes.push(Times::Free);
        }
        for times in modes {
            let mut blocked: Vec<Vec<usize>> = Vec::new();
            for _ in 0..3 {
                self.queries += 1;
                let solved = v
                    .set
                    .solve(tv, Prefix::Exactly(k), times, &blocked)
                    .map_err(|source| PathsError::Analysis {
                        nf: v.prog.name.clone(),
                        source,
                    })?;
                match solved {
                    Solved::Unsat => break,
                    Solved::Unknown(r) => {
                        attempt.unknown = Some(r);
                        break;
                    }
                    Solved::Sequence(models) => {
                        let assignment: Vec<usize> =
                            models[..models.len() - 1].iter().map(|m| m.path).collect();
                        self.replays += 1;
                        let run = self.replay(v, models)?;
                        let r = &v.runs[run];
                        let took = r.took.last().copied().flatten();
                        if took == Some(target) {
                            return Ok(Some(r.packets.clone()));
                        }
                        let other = match took {
                            Some(p) => format!("path {}", self.base.paths[p].id),
                            None => "a path only the overridden NF has".to_string(),
                        };
                        if !attempt.wrong.contains(&other) {
                            attempt.wrong.push(other);
                        }
                        blocked.push(assignment);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Coverage-guided random search over the variant's runs for the targets still open;
    /// gives the targets reached with their sequences.
    fn random(
        &mut self,
        v: &mut Variant,
        open: &[usize],
        seed: u64,
    ) -> Result<Vec<(usize, Vec<InputPacket>)>, PathsError> {
        let mut found: Vec<(usize, Vec<InputPacket>)> = Vec::new();
        if open.is_empty() || v.runs.is_empty() {
            return Ok(found);
        }
        let mut rng = SplitMix(seed ^ 0x9e37_79b9_7f4a_7c15);
        let ttls = ttls(&v.prog);
        let ports = v.prog.port_count.max(1);
        let mut corpus: Vec<Vec<PacketModel>> = v.runs.iter().map(|r| r.models.clone()).collect();
        for _ in 0..RANDOM_BUDGET {
            if found.len() == open.len() {
                break;
            }
            let pick = rng.below(corpus.len() as u64) as usize;
            let mut seq = corpus[pick].clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut seq, &mut rng, &ttls, ports);
            }
            if seq.is_empty() {
                continue;
            }
            self.random_runs += 1;
            let before: Vec<usize> = found.iter().map(|(t, _)| *t).collect();
            let run = self.replay(v, seq.clone())?;
            let r = &v.runs[run];
            let mut new = false;
            for (i, t) in r.took.iter().enumerate() {
                if let Some(t) = t {
                    if open.contains(t) && !before.contains(t) && !found.iter().any(|(x, _)| x == t)
                    {
                        found.push((*t, r.packets[..=i].to_vec()));
                        new = true;
                    }
                }
            }
            if new {
                corpus.push(seq);
            }
            // Keep the run list from growing with runs that found nothing.
            if !new {
                v.runs.pop();
            }
        }
        Ok(found)
    }
}

/// The expiry times of the program's state objects (time jumps the random search tries).
fn ttls(p: &NfProgram) -> Vec<u64> {
    let mut out: Vec<u64> = p
        .states
        .iter()
        .filter_map(|s| match s.kind {
            StateKind::Table { ttl, .. }
            | StateKind::DChain { ttl, .. }
            | StateKind::Sketch { ttl, .. } => Some(ttl),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A small deterministic generator (SplitMix64): the search is reproducible from its
/// seed without another dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// The fields a reply has swapped.
const REVERSED: [(PktField, PktField); 3] = [
    (PktField::IpSrc, PktField::IpDst),
    (PktField::L4Sport, PktField::L4Dport),
    (PktField::EthSrc, PktField::EthDst),
];

const MUTABLE: [PktField; 8] = [
    PktField::EthDst,
    PktField::EthSrc,
    PktField::IpSrc,
    PktField::IpDst,
    PktField::IpProto,
    PktField::L4Sport,
    PktField::L4Dport,
    PktField::Len,
];

/// One random change to a sequence: a header field (random, copied from another packet,
/// or nudged by one), the 5-tuple reversed from another packet, the input port, a time
/// jump around an expiry time, a duplicated or a dropped packet, or a reply (a packet's
/// addresses and ports swapped, arriving on another port) appended.
fn mutate(seq: &mut Vec<PacketModel>, rng: &mut SplitMix, ttls: &[u64], ports: u16) {
    if seq.is_empty() {
        return;
    }
    let n = seq.len();
    let i = rng.below(n as u64) as usize;
    match rng.below(8) {
        7 if n < RANDOM_MAX_LEN => {
            let mut reply = seq[i].clone();
            for (a, b) in REVERSED {
                reply.set_field(a, seq[i].field(b));
                reply.set_field(b, seq[i].field(a));
            }
            if ports > 1 {
                reply.port = (seq[i].port + 1 + rng.below(ports as u64 - 1) as u16) % ports;
            }
            reply.time_ns = seq[n - 1].time_ns.saturating_add(1);
            seq.push(reply);
        }
        0 => {
            let f = MUTABLE[rng.below(MUTABLE.len() as u64) as usize];
            let v = match f {
                PktField::IpProto => [6u64, 17, 1][rng.below(3) as usize],
                PktField::Len => 60 + rng.below(1455),
                _ => match rng.below(3) {
                    0 => rng.next(),
                    1 => rng.below(4),
                    _ => seq[i].field(f).wrapping_add(1),
                },
            };
            seq[i].set_field(f, v);
        }
        1 => {
            let j = rng.below(n as u64) as usize;
            let src = seq[j].clone();
            for (a, b) in REVERSED {
                seq[i].set_field(a, src.field(b));
                seq[i].set_field(b, src.field(a));
            }
            seq[i].set_field(PktField::IpProto, src.field(PktField::IpProto));
        }
        2 => {
            let j = rng.below(n as u64) as usize;
            let f = MUTABLE[rng.below(MUTABLE.len() as u64) as usize];
            let v = seq[j].field(f);
            seq[i].set_field(f, v);
        }
        3 => seq[i].port = rng.below(ports as u64) as u16,
        4 => {
            let base = if ttls.is_empty() {
                1_000
            } else {
                ttls[rng.below(ttls.len() as u64) as usize]
            };
            let delta = match rng.below(4) {
                0 => base.saturating_sub(1),
                1 => base,
                2 => base.saturating_add(1),
                _ => base.saturating_mul(2),
            };
            for p in seq[i..].iter_mut() {
                p.time_ns = p.time_ns.saturating_add(delta);
            }
        }
        5 if n < RANDOM_MAX_LEN => {
            let j = rng.below(n as u64) as usize;
            let mut copy = seq[j].clone();
            copy.time_ns = seq[i].time_ns;
            seq.insert(i, copy);
        }
        _ if n > 1 => {
            seq.remove(i);
        }
        _ => {}
    }
    // Time never goes backwards.
    for k in 1..seq.len() {
        if seq[k].time_ns < seq[k - 1].time_ns {
            seq[k].time_ns = seq[k - 1].time_ns;
        }
    }
}

/// Builds, for every feasible path of the NF, a packet sequence whose last packet takes
/// it (see the module documentation for how), and lists the paths it cannot reach with
/// the reason. `seed` drives the random search; the rest is deterministic.
pub fn path_traffic(
    program: &NfProgram,
    analysis: &Analysis,
    seed: u64,
) -> Result<PathTrafficReport, PathsError> {
    let base = enumerate(program)?;
    let feasible = feasible_paths(program, analysis, &base)?;
    let mut search = Search {
        base: &base,
        queries: 0,
        replays: 0,
        random_runs: 0,
    };
    let n = base.paths.len();
    let mut done: Vec<Option<PathTraffic>> = vec![None; n];
    let mut variants = vec![variant(program, Vec::new(), String::new())?];
    let extra = variant_overrides(program);
    let mut loaded_extra = false;
    // attempts[t][variant]
    let mut attempts: Vec<Vec<Attempt>> = (0..n)
        .map(|_| (0..=extra.len()).map(|_| Attempt::default()).collect())
        .collect();
    for t in 0..n {
        if let Some(p) = Search::already(&variants[0], t) {
            done[t] = Some(traffic(&base, t, p, &variants[0], REUSED));
            continue;
        }
        let sig = base.paths[t].signature.clone();
        // Shortest sequences first, over every configuration: the program as given
        // first at each length, then the small-state configurations.
        'search: for k in 0..=MAX_PREFIX {
            for vi in 0..=extra.len() {
                if vi > 0 && !loaded_extra {
                    for (ov, note) in &extra {
                        variants.push(variant(program, ov.clone(), note.clone())?);
                    }
                    loaded_extra = true;
                }
                let v = &mut variants[vi];
                if vi > 0 && k == 0 {
                    if let Some(p) = Search::already(v, t) {
                        done[t] = Some(traffic(&base, t, p, v, REUSED));
                        break 'search;
                    }
                }
                let Some(tv) = v.set.find(&sig) else {
                    continue;
                };
                if let Some(p) = search.solve_k(v, t, tv, k, &mut attempts[t][vi])? {
                    done[t] = Some(traffic(&base, t, p, v, SOLVED));
                    break 'search;
                }
            }
        }
    }
    // Random search, per configuration, for what is left.
    for (k, v) in variants.iter_mut().enumerate() {
        let open: Vec<usize> = (0..n).filter(|&t| done[t].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let found = search.random(v, &open, seed.wrapping_add(k as u64))?;
        for (t, packets) in found {
            done[t] = Some(traffic(&base, t, packets, v, "found by the random search"));
        }
    }
    let tried: Vec<String> = variants
        .iter()
        .map(|v| {
            if v.overrides.is_empty() {
                "the program as given".to_string()
            } else {
                v.overrides
                    .iter()
                    .map(|(k, x)| format!("{k}={x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
        .collect();
    let mut traffic_out = Vec::new();
    let mut uncovered = Vec::new();
    for (t, d) in done.into_iter().enumerate() {
        match d {
            Some(x) => traffic_out.push(x),
            None => uncovered.push(uncovered_reason(
                &base,
                &feasible[t],
                t,
                &attempts[t],
                &tried,
                search.random_runs,
                seed,
            )),
        }
    }
    Ok(PathTrafficReport {
        nf: program.name.clone(),
        feasible,
        traffic: traffic_out,
        uncovered,
        solver_queries: search.queries,
        replays: search.replays,
        random_runs: search.random_runs,
    })
}

const REUSED: &str = "reached by the prefix of another path's sequence";
const SOLVED: &str = "solved by Z3 over the bounded state model";

/// A configuration of the NF: reloaded with the overrides, its paths enumerated.
fn variant(
    program: &NfProgram,
    overrides: Vec<(String, String)>,
    note: String,
) -> Result<Variant, PathsError> {
    let prog = if overrides.is_empty() {
        program.clone()
    } else {
        reload(program, &overrides)?
    };
    let mut set = enumerate(&prog)?;
    set.set_solver_timeout(QUERY_TIMEOUT_MS);
    Ok(Variant {
        overrides,
        note,
        prog,
        set,
        runs: Vec::new(),
    })
}

fn traffic(
    base: &PathSet,
    t: usize,
    packets: Vec<InputPacket>,
    v: &Variant,
    how: &str,
) -> PathTraffic {
    let mut note = format!("{how}; {} earlier packet(s)", packets.len() - 1);
    if !v.overrides.is_empty() {
        note.push_str("; ");
        note.push_str(&v.note);
    }
    PathTraffic {
        path: base.paths[t].id,
        packets,
        overrides: v.overrides.clone(),
        note,
    }
}

fn uncovered_reason(
    base: &PathSet,
    info: &PathInfo,
    t: usize,
    attempts: &[Attempt],
    tried: &[String],
    random_runs: u64,
    seed: u64,
) -> Uncovered {
    let assumes = &base.paths[t].assumes;
    let needs = if assumes.is_empty() {
        String::new()
    } else {
        format!(" The path assumes: {}.", assumes.join("; "))
    };
    let random = format!(
        " The random search ({random_runs} runs in all, seed {seed}) did not reach it either."
    );
    let wrong: Vec<String> = attempts
        .iter()
        .flat_map(|a| a.wrong.iter().cloned())
        .collect();
    let unknown: Vec<&String> = attempts.iter().filter_map(|a| a.unknown.as_ref()).collect();
    let (kind, head) = if let Some(r) = unknown.first() {
        (
            UncoveredKind::SolverGaveUp,
            format!("the solver gave up ({r})."),
        )
    } else if !wrong.is_empty() {
        (
            UncoveredKind::NotReached,
            format!(
                "the solver's sequences took {} instead (the bounded state model approximates index reuse and the consistent-hash choice).",
                wrong.join(", ")
            ),
        )
    } else {
        (
            UncoveredKind::Unreachable,
            format!(
                "unreachable: no sequence of at most {MAX_PREFIX} earlier packets ({FREE_TIMES_MAX_PREFIX} with free timestamps) reaches it in the bounded state model (Z3: unsat; the model starts from the initial state and sees at most one expiry per call and one live backend per consistent-hash lookup) with {}.",
                tried.join("; nor with ")
            ),
        )
    };
    Uncovered {
        path: info.clone(),
        kind,
        reason: format!("{head}{needs}{random}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw() -> (NfProgram, PathSet) {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nfs/fw");
        let prog = maestro_analyzer::load_nf(&dir, &[]).expect("fw loads");
        let set = enumerate(&prog).expect("fw explores");
        (prog, set)
    }

    /// The random search alone reaches the WAN-hit path of the firewall from a corpus
    /// holding a single LAN packet (it has to append the reply on the WAN port).
    #[test]
    fn random_search_reaches_a_reply_path_from_a_lan_packet() {
        let (prog, base) = fw();
        let mut v = variant(&prog, Vec::new(), String::new()).unwrap();
        let lan_new = base.paths.iter().position(|p| p.id == 2).unwrap();
        let wan_hit = base.paths.iter().position(|p| p.id == 4).unwrap();
        let Solved::Sequence(models) = v
            .set
            .solve(lan_new, Prefix::Exactly(0), FIXED_TIMES, &[])
            .unwrap()
        else {
            panic!("a LAN packet that opens a flow exists")
        };
        let mut search = Search {
            base: &base,
            queries: 0,
            replays: 0,
            random_runs: 0,
        };
        search.replay(&mut v, models).unwrap();
        assert_eq!(v.runs[0].took, vec![Some(lan_new)]);
        let found = search.random(&mut v, &[wan_hit], 11).unwrap();
        assert!(search.random_runs <= RANDOM_BUDGET as u64);
        let [(t, packets)] = &found[..] else {
            panic!("not found in {} runs: {found:?}", search.random_runs)
        };
        assert_eq!(*t, wan_hit);
        let traces = run_traced(&prog, packets).unwrap();
        assert_eq!(base.classify(traces.last().unwrap()), Some(wan_hit));
    }

    #[test]
    fn config_roles_tell_capacities_from_limits() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nfs/psd");
        let prog = maestro_analyzer::load_nf(&dir, &[]).unwrap();
        let roles = config_roles(&prog);
        let role = |n: &str| roles.iter().find(|(m, _, _)| m == n).map(|(_, r, _)| *r);
        assert!(role("capacity") == Some(Role::Capacity));
        assert!(role("max_ports") == Some(Role::Limit));
        assert!(role("expiration_time") == Some(Role::Other));
        let variants = variant_overrides(&prog);
        assert_eq!(
            variants.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>(),
            vec![
                vec![("max_ports".to_string(), "1".to_string())],
                vec![("capacity".to_string(), "3".to_string())],
                vec![("expiration_time".to_string(), "1500".to_string())],
            ]
        );
    }
}
