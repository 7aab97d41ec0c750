//! The oracles of `shared/spec/equivalence.md`, as pure functions over observations and
//! per-packet records (no process is spawned here; the only NF that runs is the
//! reference interpreter, for the serializable replay and the capacity envelope).
//!
//! - [`strict`]: `O_par[i] == O_ref[i]` for every packet.
//! - [`RenamingOracle`]: equality modulo a renaming rho of the values the NF chose
//!   itself (the NAT's external port): learned at a value's first occurrence, checked at
//!   every later one, injective, and consistent with the input translations the runtime
//!   applied.
//! - [`serializable`]: the commit order pi keeps each core's queue order and time
//!   monotone, and the reference NF replayed in pi with the recorded `now`s gives the
//!   parallel observations.
//! - [`order`]: each flow is processed in arrival order (one core in `sn`, increasing
//!   commit positions in `locks`/`tm`).
//! - [`sharding`]: no (object, key) of a written object is touched by two cores in `sn`.
//! - [`classify_capacity`]: an `sn` output divergence is the `capacity` envelope when
//!   the sequential NF with the per-core capacities, run on that core's packets,
//!   reproduces the parallel observation while the full capacity would not.
//!
//! [`compare_run`] puts them together for one run.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use maestro_analyzer::sym::report::Analysis;
use maestro_analyzer::{NfProgram, StateKind};
use maestro_interpreter::{InterpError, InterpOptions, Interpreter};
use maestro_runtime::exec::engine::{commit_order, PacketRecord};
use maestro_runtime::exec::rename::{Field as RField, Translation};
use maestro_runtime::exec::wire::AccessCount;
use maestro_runtime::exec::{shard_capacity, KeyHasher, RenamedField, StateObjectInfo, Strategy};
use maestro_runtime::packet::{PacketView, ParseMode};
use maestro_runtime::{InputPacket, Observation};

use crate::report::{Divergence, DivergenceClass, Level};

/// Why a comparison could not be made (never because of packet data).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("the reference interpreter cannot start `{nf}` for the {purpose}: {source}; check the NF with `maestro check`")]
    Interpreter {
        nf: String,
        purpose: &'static str,
        #[source]
        source: Box<InterpError>,
    },
    #[error("renamed field `{0}` (from the generated binary's `info`) is not one of l4.sport, l4.dport, ip.src, ip.dst; the checker cannot compare modulo renaming: extend runtime/src/exec/rename.rs")]
    RenamedField(String),
}

// ---------------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------------

/// A state object as the checker needs it (owned mirror of the generated NF's
/// [`StateObjectInfo`] plus whether packets write it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateObject {
    pub name: String,
    pub capacity: u32,
    /// `sn` splits its capacity with [`shard_capacity`].
    pub sharded: bool,
    /// No packet changes it: several cores may read the same key (a static map).
    pub read_only: bool,
}

impl StateObject {
    /// From the generated binary's state list; `read_only` from the analysis when given
    /// (else every object counts as written, the conservative choice for sharding).
    pub fn from_info(info: &[StateObjectInfo], analysis: Option<&Analysis>) -> Vec<StateObject> {
        info.iter()
            .map(|s| StateObject {
                name: s.name.to_string(),
                capacity: s.capacity,
                sharded: s.sharded,
                read_only: analysis
                    .is_some_and(|a| a.objects.iter().any(|o| o.name == s.name && o.read_only)),
            })
            .collect()
    }

    /// From the program and the analysis, with the generator's rule for `sharded`:
    /// written, with a capacity, and neither a sketch nor a CHT (those are replicated).
    pub fn from_program(program: &NfProgram, analysis: &Analysis) -> Vec<StateObject> {
        program
            .states
            .iter()
            .map(|s| {
                let read_only = analysis
                    .objects
                    .iter()
                    .any(|o| o.name == s.name && o.read_only);
                let capacity = match &s.kind {
                    StateKind::Table { capacity, .. }
                    | StateKind::Map { capacity, .. }
                    | StateKind::Vector { capacity, .. }
                    | StateKind::DChain { capacity, .. } => *capacity,
                    StateKind::Sets { sets, .. } => *sets,
                    StateKind::Sketch { width, .. } => *width,
                    StateKind::Cht { backend_count, .. } => *backend_count,
                };
                let sharded = !read_only
                    && !matches!(s.kind, StateKind::Sketch { .. } | StateKind::Cht { .. });
                StateObject {
                    name: s.name.clone(),
                    capacity,
                    sharded,
                    read_only,
                }
            })
            .collect()
    }
}

/// An NF-chosen output field and the input field that carries it back (owned mirror of
/// the runtime's [`RenamedField`], as the generated binary's `info` prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renamed {
    pub out_field: String,
    pub in_field: String,
    pub in_ports: Vec<u16>,
}

impl From<&RenamedField> for Renamed {
    fn from(r: &RenamedField) -> Renamed {
        Renamed {
            out_field: r.out_field.to_string(),
            in_field: r.in_field.to_string(),
            in_ports: r.in_ports.to_vec(),
        }
    }
}

/// What every comparison of one NF shares.
#[derive(Clone, Debug)]
pub struct CompareCtx<'a> {
    /// The reference (replays, capacity model).
    pub program: &'a NfProgram,
    /// In the generated NF's `STATE` order (access-log object numbers index it).
    pub state: Vec<StateObject>,
    /// The NF's `RENAMED` list (empty for most NFs).
    pub renamed: Vec<Renamed>,
    pub parse_mode: ParseMode,
}

/// One parallel (or generated-`seq`) run as the record file describes it.
#[derive(Clone, Copy, Debug)]
pub struct RunData<'a> {
    pub strategy: Strategy,
    pub cores: usize,
    /// One per input packet, input order.
    pub observations: &'a [Observation],
    /// One per input packet, input order (may be empty for a run without records, in
    /// which case only output comparisons are made).
    pub records: &'a [PacketRecord],
    /// Input fields the runtime's renamer rewrote, sorted by packet index
    /// (`Translation::field` indexes [`CompareCtx::renamed`]).
    pub translations: &'a [Translation],
    /// Per core, the instrumented key accesses (`sn` only; empty otherwise).
    pub access_logs: &'a [Option<Vec<AccessCount>>],
}

/// The level a strategy is checked at.
pub fn level_for(strategy: Strategy, renamed: &[Renamed]) -> Level {
    match strategy {
        Strategy::Locks | Strategy::Tm => Level::Serializable,
        Strategy::Sn if !renamed.is_empty() => Level::ModuloRenaming,
        _ => Level::Strict,
    }
}

// ---------------------------------------------------------------------------------------
// Strict
// ---------------------------------------------------------------------------------------

/// `output` divergences wherever the observations differ; a length difference is one
/// more divergence at the first packet without a counterpart.
pub fn strict(reference: &[Observation], actual: &[Observation]) -> Vec<Divergence> {
    // The checker passes the reference itself when it has already found every
    // observation of the run equal to it (see `Verifier::compare_file`).
    if std::ptr::eq(reference, actual) {
        return Vec::new();
    }
    let mut out: Vec<Divergence> = reference
        .iter()
        .zip(actual)
        .enumerate()
        .filter(|(_, (r, a))| r != a)
        .map(|(i, (r, a))| {
            Divergence::new(
                DivergenceClass::Output,
                Some(i as u64),
                explain_difference(r, a),
            )
            .with_observations(Some(r.clone()), Some(a.clone()))
        })
        .collect();
    out.extend(length_mismatch(reference, actual));
    out
}

/// One `output` divergence when the run has another number of observations than the
/// reference, at the first packet without a counterpart.
fn length_mismatch(reference: &[Observation], actual: &[Observation]) -> Option<Divergence> {
    if reference.len() == actual.len() {
        return None;
    }
    let at = reference.len().min(actual.len());
    Some(
        Divergence::new(
            DivergenceClass::Output,
            Some(at as u64),
            format!("{} observations for {} reference observations: every input packet must have exactly one", actual.len(), reference.len()),
        )
        .with_observations(reference.get(at).cloned(), actual.get(at).cloned()),
    )
}

/// What differs between two observations, in words.
pub fn explain_difference(expected: &Observation, actual: &Observation) -> String {
    match (expected, actual) {
        (
            Observation::Forward { port: p, bytes: a },
            Observation::Forward { port: q, bytes: b },
        ) if p == q => {
            format!(
                "same port, different bytes ({})",
                first_byte_difference(a, b)
            )
        }
        (Observation::Forward { port: p, .. }, Observation::Forward { port: q, .. }) => {
            format!("sent to port {q} instead of {p}")
        }
        (Observation::Flood { bytes: a }, Observation::Flood { bytes: b }) => format!(
            "flooded with different bytes ({})",
            first_byte_difference(a, b)
        ),
        (Observation::Drop, _) => {
            "the parallel NF let through a packet the reference drops".to_string()
        }
        (_, Observation::Drop) => {
            "the parallel NF dropped a packet the reference lets through".to_string()
        }
        _ => "a different action (forward versus flood)".to_string(),
    }
}

/// Where two frames first differ, named by header field where possible.
fn first_byte_difference(a: &[u8], b: &[u8]) -> String {
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return format!("lengths {} and {}", a.len(), b.len());
    };
    let field = match i {
        0..=5 => "eth.dst",
        6..=11 => "eth.src",
        12..=13 => "eth.type",
        22 => "ip.ttl",
        24..=25 => "ip.checksum",
        26..=29 => "ip.src",
        30..=33 => "ip.dst",
        34..=35 => "l4.sport (without IP options)",
        36..=37 => "l4.dport (without IP options)",
        14..=21 | 23 => "ip header",
        _ => "payload or L4 header",
    };
    format!("first at byte {i}, {field}")
}

// ---------------------------------------------------------------------------------------
// Modulo renaming
// ---------------------------------------------------------------------------------------

/// A conversation direction the NF keys on, used as the owner of a renamed value.
type FlowId = (u16, u32, u32, u16, u16, u8);

fn flow_id(p: &InputPacket, mode: ParseMode) -> Option<FlowId> {
    let view = PacketView::new(&p.data, mode);
    let ip = view.ipv4()?;
    let (s, d) = view.l4_ports().unwrap_or((0, 0));
    Some((p.port, ip.src_u32(), ip.dst_u32(), s, d, ip.proto()))
}

/// One value binding of rho: `seq -> (scope, par)`, owned by the flow that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    seq: u64,
    par: u64,
    scope: u16,
    owner: Option<FlowId>,
}

#[derive(Clone, Debug, Default)]
struct Rho {
    forward: HashMap<u64, Binding>,
    backward: HashMap<(u16, u64), Binding>,
}

#[derive(Clone, Debug)]
struct Rule {
    name: String,
    out_field: RField,
    in_field: RField,
    in_ports: Vec<u16>,
}

/// rho, learned and checked packet by packet, in input order.
///
/// - **Scope.** A value means something only on the core that allocated it: in `sn`
///   each core has its own allocator, and RSS steers every packet that refers back to a
///   value to the core that chose it (the sharding check verifies that). So rho maps a
///   sequential value to a (core, parallel value) pair, and injectivity is per core. For
///   `locks`/`tm` (one allocator) pass scope 0 everywhere.
/// - **Lifetime.** A binding belongs to the flow (input port and 5-tuple) whose packet
///   taught it. When the sequential NF gives the same value to another flow, the old
///   flow's value has ended (expired or freed) and the binding is replaced. Within one
///   flow a value must stay the same ("checked at every later occurrence").
/// - **Injectivity.** Two sequential values must not stand for one parallel value on
///   one core at the same time: when the parallel NF hands out a value another flow
///   still holds, the later flow takes it over, and a later packet of the older flow
///   that still uses it is a conflict.
#[derive(Clone, Debug)]
pub struct RenamingOracle {
    rules: Vec<Rule>,
    maps: Vec<Rho>,
    mode: ParseMode,
}

impl RenamingOracle {
    pub fn new(renamed: &[Renamed], mode: ParseMode) -> Result<RenamingOracle, CompareError> {
        let field = |n: &str| {
            RField::parse(n.strip_prefix("pkt.").unwrap_or(n))
                .ok_or_else(|| CompareError::RenamedField(n.to_string()))
        };
        let rules = renamed
            .iter()
            .map(|r| {
                Ok(Rule {
                    name: format!("{} (read back from {})", r.out_field, r.in_field),
                    out_field: field(&r.out_field)?,
                    in_field: field(&r.in_field)?,
                    in_ports: r.in_ports.clone(),
                })
            })
            .collect::<Result<Vec<_>, CompareError>>()?;
        Ok(RenamingOracle {
            maps: vec![Rho::default(); rules.len()],
            rules,
            mode,
        })
    }

    /// The current mapping of rule `rule` as sorted (seq, core, par) triples.
    pub fn mapping(&self, rule: usize) -> Vec<(u64, u16, u64)> {
        let mut v: Vec<(u64, u16, u64)> = self
            .maps
            .get(rule)
            .map(|m| {
                m.forward
                    .values()
                    .map(|b| (b.seq, b.scope, b.par))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Checks packet `index`'s input side: on a port that carries rule values back, the
    /// value the parallel NF saw (`seen`, after the runtime's translation) must be
    /// rho(value in the original input) when rho knows it.
    ///
    /// `core` is the core that processed the packet (`None`: unknown). rho is per core, so
    /// a packet carrying a value another core handed out is not expected to be
    /// translated: it cannot be a reply of that core's flow (co-location sends replies to
    /// their flow's core), and whether the runtime translated it depends only on how far
    /// the other core had run. Its output is still checked.
    pub fn check_input(
        &self,
        index: u64,
        core: Option<u16>,
        original: &InputPacket,
        seen: &InputPacket,
    ) -> Vec<Divergence> {
        let mut out = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            if !rule.in_ports.contains(&original.port) {
                continue;
            }
            let Some(v) = rule.in_field.read(&original.data, self.mode) else {
                continue;
            };
            let Some(b) = self.maps[r].forward.get(&v) else {
                continue;
            };
            if core.is_some_and(|c| c != b.scope) {
                continue;
            }
            let got = rule.in_field.read(&seen.data, self.mode);
            if got != Some(b.par) {
                out.push(
                    Divergence::new(
                        DivergenceClass::Renaming,
                        Some(index),
                        format!(
                            "input {} = {v} should have reached the parallel NF as rho({v}) = {} (core {}), but it saw {}{}",
                            rule.in_field.name(),
                            b.par,
                            b.scope,
                            got.map_or("no such field".to_string(), |g| g.to_string()),
                            if got == Some(v) { ": the input was not translated" } else { "" }
                        ),
                    )
                    .with_cores(vec![b.scope]),
                );
            }
        }
        out
    }

    /// Compares packet `index`'s observations modulo rho, learning rho from them.
    /// `Ok(())` when equal modulo rho; `Err` with the divergences otherwise (an `output`
    /// divergence when the difference is not confined to renamed fields, `renaming`
    /// ones when rho is inconsistent).
    pub fn observe(
        &mut self,
        index: u64,
        input: &InputPacket,
        scope: u16,
        expected: &Observation,
        actual: &Observation,
    ) -> Result<(), Vec<Divergence>> {
        let same_shape = match (expected, actual) {
            (Observation::Drop, Observation::Drop) => return Ok(()),
            (Observation::Forward { port: p, .. }, Observation::Forward { port: q, .. }) => p == q,
            (Observation::Flood { .. }, Observation::Flood { .. }) => true,
            _ => false,
        };
        let output = || {
            Divergence::new(
                DivergenceClass::Output,
                Some(index),
                explain_difference(expected, actual),
            )
            .with_observations(Some(expected.clone()), Some(actual.clone()))
        };
        if !same_shape {
            return Err(vec![output()]);
        }
        let (Some(eb), Some(ab)) = (expected.bytes(), actual.bytes()) else {
            return Err(vec![output()]);
        };
        let owner = flow_id(input, self.mode);
        let mut rewritten = ab.to_vec();
        let mut conflicts = Vec::new();
        for r in 0..self.rules.len() {
            let rule = &self.rules[r];
            if rule.in_ports.contains(&input.port) {
                continue; // these packets carry values back; they do not choose them
            }
            let (Some(s), Some(p)) = (
                rule.out_field.read(eb, self.mode),
                rule.out_field.read(ab, self.mode),
            ) else {
                continue;
            };
            if let Err(why) = self.learn(r, s, p, scope, owner) {
                conflicts.push(
                    Divergence::new(
                        DivergenceClass::Renaming,
                        Some(index),
                        format!("{}: {why}", self.rules[r].name),
                    )
                    .with_observations(Some(expected.clone()), Some(actual.clone()))
                    .with_cores(vec![scope]),
                );
            }
            let rule = &self.rules[r];
            if s != p {
                rule.out_field.write(&mut rewritten, self.mode, s);
            }
        }
        if rewritten != eb {
            let mut d = vec![output()];
            d[0].detail.push_str(" (beyond the renamed fields)");
            d.extend(conflicts);
            return Err(d);
        }
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(conflicts)
        }
    }

    /// Adds `s -> (scope, p)` for `owner`; `Err` says why it contradicts rho.
    fn learn(
        &mut self,
        r: usize,
        s: u64,
        p: u64,
        scope: u16,
        owner: Option<FlowId>,
    ) -> Result<(), String> {
        let rho = &mut self.maps[r];
        if let Some(b) = rho.forward.get(&s).copied() {
            if b.owner == owner {
                if (b.scope, b.par) != (scope, p) {
                    return Err(format!("the flow's sequential value {s} was {} on core {} and is now {p} on core {scope}", b.par, b.scope));
                }
                return match rho.backward.get(&(scope, p)) {
                    Some(o) if o.seq != s => Err(format!("parallel value {p} on core {scope} stands for sequential {s} of this flow and for {} of a flow that took it over", o.seq)),
                    _ => Ok(()),
                };
            }
            // The sequential NF gave `s` to another flow: the old binding has ended.
            rho.forward.remove(&s);
            if rho
                .backward
                .get(&(b.scope, b.par))
                .is_some_and(|o| o.seq == s)
            {
                rho.backward.remove(&(b.scope, b.par));
            }
        }
        let binding = Binding {
            seq: s,
            par: p,
            scope,
            owner,
        };
        if let Some(o) = rho.backward.get(&(scope, p)).copied() {
            if o.owner == owner && o.seq != s {
                return Err(format!("the flow kept parallel value {p} on core {scope} while its sequential value changed from {} to {s}", o.seq));
            }
        }
        rho.forward.insert(s, binding);
        rho.backward.insert((scope, p), binding);
        Ok(())
    }
}

/// The inputs as the parallel NF saw them: `inputs` with the runtime's translations
/// applied. A translation whose `old` value is not what the input holds is reported
/// (`renaming`): the record file and the trace disagree.
pub fn apply_translations<'a>(
    renamed: &[Renamed],
    mode: ParseMode,
    inputs: &'a [InputPacket],
    translations: &[Translation],
) -> (Cow<'a, [InputPacket]>, Vec<Divergence>) {
    if translations.is_empty() {
        return (Cow::Borrowed(inputs), Vec::new());
    }
    let mut seen = inputs.to_vec();
    let mut out = Vec::new();
    for t in translations {
        let Some(p) = usize::try_from(t.index).ok().and_then(|i| seen.get_mut(i)) else {
            out.push(Divergence::new(
                DivergenceClass::Renaming,
                Some(t.index),
                "a translation names a packet the trace does not have".to_string(),
            ));
            continue;
        };
        let Some(field) = renamed
            .get(usize::from(t.field))
            .and_then(|r| RField::parse(r.in_field.strip_prefix("pkt.").unwrap_or(&r.in_field)))
        else {
            out.push(Divergence::new(
                DivergenceClass::Renaming,
                Some(t.index),
                format!(
                    "a translation names renamed field #{}, which the NF does not declare",
                    t.field
                ),
            ));
            continue;
        };
        let had = field.read(&p.data, mode);
        if had != Some(t.old) || !field.write(&mut p.data, mode, t.new) {
            out.push(Divergence::new(
                DivergenceClass::Renaming,
                Some(t.index),
                format!(
                    "the runtime says it translated {} {} -> {}, but the input holds {:?}",
                    field.name(),
                    t.old,
                    t.new,
                    had
                ),
            ));
        }
    }
    (Cow::Owned(seen), out)
}

// ---------------------------------------------------------------------------------------
// Serializability
// ---------------------------------------------------------------------------------------

/// Checks a `locks`/`tm` run against the reference replayed in its commit order:
/// 1. pi ([`commit_order`]) keeps each core's queue order (increasing `queue_pos`);
/// 2. `now >= ` the packet's time, and `now` never decreases along pi;
/// 3. the reference NF run over `seen` (the inputs as the parallel NF saw them) in pi
///    order, each packet at its recorded `now`, gives the parallel observations.
///
/// Failures are `serialization` divergences (`output` when pi is the input order: then
/// no reordering is involved). Every replay mismatch is reported; after the first one
/// the replayed state may differ, so the first is the one to read.
pub fn serializable(
    program: &NfProgram,
    mode: ParseMode,
    strategy: Strategy,
    seen: &[InputPacket],
    observations: &[Observation],
    records: &[PacketRecord],
) -> Result<Vec<Divergence>, CompareError> {
    let mut out = Vec::new();
    let n = seen.len().min(observations.len()).min(records.len());
    if records.len() != seen.len() {
        out.push(Divergence::new(
            DivergenceClass::Serialization,
            Some(n as u64),
            format!(
                "{} records for {} packets: the run must record every packet's commit",
                records.len(),
                seen.len()
            ),
        ));
    }
    let records = &records[..n];
    let pi = commit_order(strategy, records);
    let identity = pi.iter().enumerate().all(|(k, &i)| k == i);
    // 1. Queue order per core.
    let mut last_pos: HashMap<u16, (u64, usize)> = HashMap::new();
    for &i in &pi {
        let r = &records[i];
        if let Some(&(pos, j)) = last_pos.get(&r.core) {
            if r.queue_pos <= pos {
                out.push(
                    Divergence::new(
                        DivergenceClass::Serialization,
                        Some(i as u64),
                        format!("core {} processed packet #{i} at queue position {} but commits it after packet #{j} at position {pos}: pi breaks the core's queue order", r.core, r.queue_pos),
                    )
                    .with_cores(vec![r.core]),
                );
            }
        }
        last_pos.insert(r.core, (r.queue_pos, i));
    }
    // 2. Time.
    let mut prev: Option<(u64, usize)> = None;
    for &i in &pi {
        let r = &records[i];
        if r.now < seen[i].time_ns {
            out.push(
                Divergence::new(
                    DivergenceClass::Serialization,
                    Some(i as u64),
                    format!(
                        "packet #{i} ran at now = {} before its own timestamp {}",
                        r.now, seen[i].time_ns
                    ),
                )
                .with_cores(vec![r.core]),
            );
        }
        if let Some((t, j)) = prev {
            if r.now < t {
                out.push(Divergence::new(DivergenceClass::Serialization, Some(i as u64), format!("time goes back along the commit order: packet #{j} at {t}, then packet #{i} at {}", r.now)).with_cores(vec![r.core, records[j].core]));
            }
        }
        prev = Some((r.now, i));
    }
    // 3. Replay.
    let mut interp = Interpreter::new(
        program,
        InterpOptions {
            parse_mode: mode,
            ..InterpOptions::default()
        },
    )
    .map_err(|source| CompareError::Interpreter {
        nf: program.name.clone(),
        purpose: "serializable replay",
        source: Box::new(source),
    })?;
    for (k, &i) in pi.iter().enumerate() {
        let p = InputPacket {
            port: seen[i].port,
            time_ns: records[i].now,
            data: seen[i].data.clone(),
        };
        let replay = interp.process(&p);
        if replay != observations[i] {
            let (class, how) = if identity {
                (
                    DivergenceClass::Output,
                    "in input order (no reordering involved)".to_string(),
                )
            } else {
                (
                    DivergenceClass::Serialization,
                    format!("replayed at commit position {k} of {n}"),
                )
            };
            out.push(
                Divergence::new(
                    class,
                    Some(i as u64),
                    format!(
                        "{}; the sequential NF {how} at now = {}",
                        explain_difference(&replay, &observations[i]),
                        records[i].now
                    ),
                )
                .with_observations(Some(replay), Some(observations[i].clone()))
                .with_cores(vec![records[i].core]),
            );
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------------------

/// What identifies a directed flow on an input port: the 5-tuple for TCP/UDP
/// non-fragments, the datagram (addresses, protocol, IP id) for fragments, the address
/// pair and protocol for other IPv4. Non-IPv4 frames have none.
fn order_key(p: &InputPacket, mode: ParseMode) -> Option<OrderKey> {
    let view = PacketView::new(&p.data, mode);
    let ip = view.ipv4()?;
    let (kind, extra) = if ip.frag() & 0x3fff != 0 {
        (1, u32::from(ip.id()))
    } else {
        match view.l4_ports() {
            Some((s, d)) => (0, (u32::from(s) << 16) | u32::from(d)),
            None => (2, 0),
        }
    };
    Some((p.port, ip.src_u32(), ip.dst_u32(), ip.proto(), kind, extra))
}

/// (port, src, dst, proto, kind (0 ports, 1 fragment, 2 other), ports or IP id).
type OrderKey = (u16, u32, u32, u8, u8, u32);

/// A hash map keyed by tuples the checker builds from trace data. SipHash's resistance
/// to chosen keys buys nothing against a trace the user hands in (at worst a slow
/// check) and cost a third of [`order`] on a million packets; the runtime's key hasher
/// (a multiply per word and a final mix) is the one the access logs use.
type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The directed flow of every input packet, as dense ids (see [`order_key`]): computed
/// once per trace, so that checking the order of each run is a pass over arrays, and
/// early enough (while the runs are still going) that it costs no time at the end.
#[derive(Clone, Debug)]
pub struct Flows {
    /// Per packet: its flow's id, or [`Flows::NONE`] (not IPv4: no flow to keep in order).
    ids: Vec<u32>,
    count: usize,
}

impl Flows {
    const NONE: u32 = u32::MAX;

    pub fn of(inputs: &[InputPacket], mode: ParseMode) -> Flows {
        // Sized for a flow per eight packets up front: growing from empty rehashed
        // every flow seen so far at each doubling.
        let mut known: FastMap<OrderKey, u32> =
            FastMap::with_capacity_and_hasher(inputs.len() / 8, Default::default());
        let ids = inputs
            .iter()
            .map(|p| match order_key(p, mode) {
                None => Self::NONE,
                Some(key) => {
                    let next = known.len() as u32;
                    *known.entry(key).or_insert(next)
                }
            })
            .collect();
        Flows {
            ids,
            count: known.len(),
        }
    }

    /// Packets covered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Packets of one directed flow must be processed in arrival order:
/// - `sn`: the flow stays on one core (else its packets can overtake each other), and
///   on that core in increasing queue position;
/// - `locks`/`tm`: increasing position in the commit order pi.
///
/// One `order` divergence per flow, at its first offending packet.
pub fn order(
    strategy: Strategy,
    inputs: &[InputPacket],
    records: &[PacketRecord],
    mode: ParseMode,
) -> Vec<Divergence> {
    order_of_flows(strategy, &Flows::of(inputs, mode), records)
}

/// [`order`] over flows computed before.
pub fn order_of_flows(
    strategy: Strategy,
    flows: &Flows,
    records: &[PacketRecord],
) -> Vec<Divergence> {
    /// A flow's first packet, its core, and its latest packet with that one's queue
    /// position and commit position.
    #[derive(Clone, Copy)]
    struct Seen {
        first: usize,
        core: u16,
        last: usize,
        last_q: u64,
        last_pos: usize,
        reported: bool,
    }
    let n = flows.ids.len().min(records.len());
    let mut out = Vec::new();
    if n == 0 || strategy == Strategy::Seq {
        return out;
    }
    let position: Vec<usize> = if matches!(strategy, Strategy::Locks | Strategy::Tm) {
        let pi = commit_order(strategy, &records[..n]);
        let mut pos = vec![0; n];
        for (k, &i) in pi.iter().enumerate() {
            pos[i] = k;
        }
        pos
    } else {
        Vec::new()
    };
    let mut seen: Vec<Option<Seen>> = vec![None; flows.count];
    for (i, (&id, r)) in flows.ids.iter().zip(records).enumerate().take(n) {
        let Some(slot) = seen.get_mut(id as usize) else {
            continue; // Flows::NONE
        };
        let pos = position.get(i).copied().unwrap_or(0);
        let Some(f) = slot else {
            *slot = Some(Seen {
                first: i,
                core: r.core,
                last: i,
                last_q: r.queue_pos,
                last_pos: pos,
                reported: false,
            });
            continue;
        };
        let (first, core, last) = (f.first, f.core, f.last);
        let problem = if strategy == Strategy::Sn && r.core != core {
            Some((
                format!("the flow's packet #{first} went to core {core} and packet #{i} to core {}: a flow split over cores can be reordered", r.core),
                vec![core, r.core],
            ))
        } else if strategy == Strategy::Sn && r.queue_pos <= f.last_q {
            Some((
                format!(
                    "core {core} processed packet #{i} before the flow's earlier packet #{last}"
                ),
                vec![core],
            ))
        } else if matches!(strategy, Strategy::Locks | Strategy::Tm) && pos <= f.last_pos {
            Some((format!("packet #{i} commits at position {pos}, before the flow's earlier packet #{last} (position {})", f.last_pos), vec![records[last].core, r.core]))
        } else {
            None
        };
        if let Some((why, cores)) = problem {
            if !f.reported {
                f.reported = true;
                out.push(
                    Divergence::new(DivergenceClass::Order, Some(i as u64), why).with_cores(cores),
                );
            }
        }
        f.last = i;
        f.last_q = r.queue_pos;
        f.last_pos = pos;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Sharding
// ---------------------------------------------------------------------------------------

/// (object, key) pairs of written objects that more than one core touched in a
/// shared-nothing run: one `sharding` divergence per object and set of cores, naming
/// how many keys were shared and an example key. Read-only objects are skipped (each
/// core reads its full replica).
pub fn sharding(state: &[StateObject], logs: &[Option<Vec<AccessCount>>]) -> Vec<Divergence> {
    let mut cores_of: FastMap<(u16, u64), Vec<(u16, u64)>> = FastMap::default();
    for (core, log) in logs.iter().enumerate() {
        let Some(log) = log else { continue };
        for a in log {
            cores_of
                .entry((a.object, a.key))
                .or_default()
                .push((core as u16, a.count));
        }
    }
    // (object, cores) -> (keys, an example key, its (core, count)s)
    type Group = (u64, u64, Vec<(u16, u64)>);
    let mut groups: BTreeMap<(u16, Vec<u16>), Group> = BTreeMap::new();
    for ((object, key), touched) in cores_of {
        if touched.len() < 2 {
            continue;
        }
        if state.get(usize::from(object)).is_some_and(|s| s.read_only) {
            continue;
        }
        let cores: Vec<u16> = touched.iter().map(|&(c, _)| c).collect();
        let e = groups
            .entry((object, cores))
            .or_insert((0, key, touched.clone()));
        e.0 += 1;
        if key < e.1 {
            e.1 = key;
            e.2 = touched;
        }
    }
    groups
        .into_iter()
        .map(|((object, cores), (keys, example, counts))| {
            let name = state.get(usize::from(object)).map_or_else(|| format!("object #{object}"), |s| s.name.clone());
            let per: Vec<String> = counts.iter().map(|(c, n)| format!("core {c}: {n}")).collect();
            Divergence::new(
                DivergenceClass::Sharding,
                None,
                format!("{keys} key(s) of `{name}` were used by more than one core (e.g. key {example:#018x}, accesses {})", per.join(", ")),
            )
            .with_objects(vec![name])
            .with_cores(cores)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Capacity envelope
// ---------------------------------------------------------------------------------------

/// The program with every sharded object's capacity replaced by its per-core share
/// ([`shard_capacity`]): the sequential NF one `sn` core runs. Capacities live in the
/// checked IR (`StateKind`), already evaluated from configs, so they are edited there;
/// config values read by the NF's code keep their sequential values, as in the
/// generated `sn` code. Sets shard their number of sets (indexed by a table's indexes);
/// CHTs follow their backend table.
pub fn shard_program(program: &NfProgram, state: &[StateObject], cores: usize) -> NfProgram {
    with_capacities(program, state, |c| shard_capacity(c, cores))
}

/// The program with `f` applied to the capacity of every sharded object.
fn with_capacities(
    program: &NfProgram,
    state: &[StateObject],
    f: impl Fn(u32) -> u32,
) -> NfProgram {
    let mut p = program.clone();
    let sharded = |i: usize| {
        state
            .iter()
            .find(|s| s.name == program.states[i].name)
            .is_some_and(|s| s.sharded)
    };
    let flags: Vec<bool> = (0..p.states.len()).map(sharded).collect();
    let caps: Vec<Option<u32>> = p
        .states
        .iter()
        .map(|s| match &s.kind {
            StateKind::Table { capacity, .. } => Some(*capacity),
            _ => None,
        })
        .collect();
    for (i, s) in p.states.iter_mut().enumerate() {
        if !flags[i] {
            if let StateKind::Cht {
                backends,
                backend_count,
                ..
            } = &mut s.kind
            {
                let b = backends.0 as usize;
                if flags.get(b).copied().unwrap_or(false) {
                    if let Some(Some(c)) = caps.get(b) {
                        *backend_count = f(*c);
                    }
                }
            }
            continue;
        }
        match &mut s.kind {
            StateKind::Table { capacity, .. }
            | StateKind::Map { capacity, .. }
            | StateKind::Vector { capacity, .. }
            | StateKind::DChain { capacity, .. } => *capacity = f(*capacity),
            StateKind::Sets { sets, .. } => *sets = f(*sets),
            StateKind::Sketch { .. } | StateKind::Cht { .. } => {}
        }
    }
    p
}

/// The largest capacity the unbounded models of [`classify_capacity`] allocate.
pub const UNBOUNDED_CAPACITY: u32 = 1 << 22;

/// A model's own input renaming, mirroring the runtime's renamer: it learns
/// `sequential value -> model value` from the outputs of packets that choose values and
/// rewrites the values that come back, so that a model with other capacities (hence
/// other allocations) still gets replies addressed to its own values. The latest pair
/// wins (a value the sequential NF reuses belongs to its newest flow).
struct ModelRenamer {
    rules: Vec<(RField, RField, Vec<u16>)>,
    maps: Vec<HashMap<u64, u64>>,
    mode: ParseMode,
}

impl ModelRenamer {
    fn new(renamed: &[Renamed], mode: ParseMode) -> ModelRenamer {
        let field = |n: &str| RField::parse(n.strip_prefix("pkt.").unwrap_or(n));
        let rules: Vec<(RField, RField, Vec<u16>)> = renamed
            .iter()
            .filter_map(|r| {
                Some((
                    field(&r.out_field)?,
                    field(&r.in_field)?,
                    r.in_ports.clone(),
                ))
            })
            .collect();
        ModelRenamer {
            maps: vec![HashMap::new(); rules.len()],
            rules,
            mode,
        }
    }

    fn before(&self, p: &InputPacket) -> InputPacket {
        let mut q = p.clone();
        for (r, (_, input, ports)) in self.rules.iter().enumerate() {
            if !ports.contains(&p.port) {
                continue;
            }
            if let Some(new) = input
                .read(&p.data, self.mode)
                .and_then(|v| self.maps[r].get(&v))
            {
                input.write(&mut q.data, self.mode, *new);
            }
        }
        q
    }

    fn after(&mut self, p: &InputPacket, seq: &Observation, model: &Observation) {
        let (Some(sb), Some(mb)) = (seq.bytes(), model.bytes()) else {
            return;
        };
        for (r, (out, _, ports)) in self.rules.iter().enumerate() {
            if ports.contains(&p.port) {
                continue;
            }
            if let (Some(s), Some(m)) = (out.read(sb, self.mode), out.read(mb, self.mode)) {
                self.maps[r].insert(s, m);
            }
        }
    }
}

/// The sequential NF with some capacities, fed packets in input order with its own
/// renaming.
struct Model {
    interp: Interpreter,
    renamer: ModelRenamer,
}

impl Model {
    /// `unbounded`: also lift the sketches' width limit ([`InterpOptions::ideal_sketches`]).
    fn new(
        program: &NfProgram,
        ctx: &CompareCtx<'_>,
        unbounded: bool,
    ) -> Result<Model, CompareError> {
        let interp = Interpreter::new(
            program,
            InterpOptions {
                parse_mode: ctx.parse_mode,
                ideal_sketches: unbounded,
            },
        )
        .map_err(|source| CompareError::Interpreter {
            nf: program.name.clone(),
            purpose: "capacity envelope model",
            source: Box::new(source),
        })?;
        Ok(Model {
            interp,
            renamer: ModelRenamer::new(&ctx.renamed, ctx.parse_mode),
        })
    }

    /// Runs one packet: (the input as the model saw it, its observation).
    fn step(&mut self, p: &InputPacket, seq: &Observation) -> (InputPacket, Observation) {
        let q = self.renamer.before(p);
        let o = self.interp.process(&q);
        self.renamer.after(p, seq, &o);
        (q, o)
    }
}

/// Equal up to the values of renamed output fields (which models choose differently).
fn same_modulo_renamed(a: &Observation, b: &Observation, ctx: &CompareCtx<'_>) -> bool {
    if a == b {
        return true;
    }
    let (ab, bb) = match (a, b) {
        (
            Observation::Forward { port: p, bytes: x },
            Observation::Forward { port: q, bytes: y },
        ) if p == q => (x, y),
        (Observation::Flood { bytes: x }, Observation::Flood { bytes: y }) => (x, y),
        _ => return false,
    };
    let mut x = ab.clone();
    let mut y = bb.clone();
    for r in &ctx.renamed {
        if let Some(f) = RField::parse(r.out_field.strip_prefix("pkt.").unwrap_or(&r.out_field)) {
            f.write(&mut x, ctx.parse_mode, 0);
            f.write(&mut y, ctx.parse_mode, 0);
        }
    }
    x == y
}

/// Reclassifies `sn` output divergences as the `capacity` envelope where capacity alone
/// explains them. Models, each the reference interpreter fed in input order:
/// - `S_seen[c]`: core `c`'s packets as the parallel NF saw them, per-core capacities
///   ([`shard_program`]): is the parallel NF faithful to its per-core semantics?
/// - `S[c]`, `B[c]`: core `c`'s packets with the model's own renaming, per-core resp.
///   unbounded capacities (every sharded object at least [`UNBOUNDED_CAPACITY`] or
///   twice the packets, whichever is smaller, never below its own capacity);
/// - `B_seq`: every packet, unbounded capacities.
///
/// A divergence at packet `i` on core `c` is `capacity` iff
/// 1. `S_seen[c]` reproduces the parallel observation (the code is faithful),
/// 2. the parallel NF saw the same input as `S[c]` (its renaming agrees),
/// 3. `B[c]` equals `B_seq` at `i` up to renamed values (without capacity limits,
///    splitting the trace over cores changes nothing here), and
/// 4. a limit mattered: `S[c]` differs from `B[c]`, or the reference from `B_seq`
///    (the reverse case: the sequential table filled and the per-core one did not).
///
/// "Unbounded" also lifts each count-min sketch's width limit (an exact counter per key,
/// [`InterpOptions::ideal_sketches`]): a sketch's collisions are how its finite width
/// shows, and a replicated per-core sketch collides less (or otherwise) than the
/// sequential one because it sees fewer keys. Such a divergence passes condition 3 (an
/// exact counter does not care how keys are split over cores) and is reported as
/// `capacity`, naming the sketch.
///
/// Others keep their class with a note saying which condition failed. Limits: objects
/// that several packets of one path add to may need more than twice the packets.
pub fn classify_capacity(
    ctx: &CompareCtx<'_>,
    inputs: &[InputPacket],
    seen: &[InputPacket],
    reference: &[Observation],
    run: &RunData<'_>,
    divergences: &mut [Divergence],
) -> Result<(), CompareError> {
    let (cores, observations, records) = (run.cores, run.observations, run.records);
    let n = inputs
        .len()
        .min(seen.len())
        .min(reference.len())
        .min(observations.len())
        .min(records.len());
    let wanted: BTreeSet<usize> = divergences
        .iter()
        .filter(|d| {
            d.actual.is_some()
                && matches!(d.class, DivergenceClass::Output | DivergenceClass::Renaming)
        })
        .filter_map(|d| d.packet_index.and_then(|i| usize::try_from(i).ok()))
        .filter(|&i| i < n)
        .collect();
    if wanted.is_empty() || cores <= 1 {
        return Ok(());
    }
    let big = |c: u32| c.max(UNBOUNDED_CAPACITY.min(u32::try_from(2 * n).unwrap_or(u32::MAX)));
    let shard = shard_program(ctx.program, &ctx.state, cores);
    let unbounded = with_capacities(ctx.program, &ctx.state, big);
    let core_count = records[..n]
        .iter()
        .map(|r| usize::from(r.core) + 1)
        .max()
        .unwrap_or(1);
    let mut s_seen = (0..core_count)
        .map(|_| Model::new(&shard, ctx, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut s_own = (0..core_count)
        .map(|_| Model::new(&shard, ctx, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut b_own = (0..core_count)
        .map(|_| Model::new(&unbounded, ctx, true))
        .collect::<Result<Vec<_>, _>>()?;
    let mut b_seq = Model::new(&unbounded, ctx, true)?;
    // What the models said at the wanted packets: (faithful, same input, B == B_seq, limit mattered).
    let mut verdicts: HashMap<usize, (bool, bool, bool, bool)> = HashMap::new();
    for i in 0..n {
        let c = usize::from(records[i].core);
        let seq = &reference[i];
        // S_seen runs on what the parallel NF saw; its renamer stays empty (inputs are
        // already translated), so `step` passes them through.
        let (_, o_seen) = s_seen[c].step(&seen[i], &Observation::Drop);
        let (q_s, o_s) = s_own[c].step(&inputs[i], seq);
        let (_, o_b) = b_own[c].step(&inputs[i], seq);
        let (_, o_bs) = b_seq.step(&inputs[i], seq);
        if wanted.contains(&i) {
            let faithful = o_seen == observations[i];
            let same_input = q_s.data == seen[i].data;
            let partition_neutral = same_modulo_renamed(&o_b, &o_bs, ctx);
            let limit =
                !same_modulo_renamed(&o_s, &o_b, ctx) || !same_modulo_renamed(seq, &o_bs, ctx);
            verdicts.insert(i, (faithful, same_input, partition_neutral, limit));
        }
    }
    let sharded: Vec<&StateObject> = ctx.state.iter().filter(|s| s.sharded).collect();
    let sketches: Vec<String> = ctx
        .program
        .states
        .iter()
        .filter_map(|s| match &s.kind {
            StateKind::Sketch { width, .. } => Some(format!(
                "sketch {} of width {width} replicated on every core: each core's copy sees only its own keys, so its collisions differ from the sequential sketch's",
                s.name
            )),
            _ => None,
        })
        .collect();
    for d in divergences.iter_mut() {
        let Some(i) = d.packet_index.and_then(|i| usize::try_from(i).ok()) else {
            continue;
        };
        let Some(&(faithful, same_input, neutral, limit)) = verdicts.get(&i) else {
            continue;
        };
        let core = records[i].core;
        if faithful && same_input && neutral && limit {
            let caps: Vec<String> = sharded
                .iter()
                .map(|s| {
                    format!(
                        "{} {} per core of {}",
                        s.name,
                        shard_capacity(s.capacity, cores),
                        s.capacity
                    )
                })
                .chain(sketches.iter().cloned())
                .collect();
            d.class = DivergenceClass::Capacity;
            d.detail = format!("{}; explained by capacity: the sequential NF reproduces it on core {core}'s packets with the per-core capacities, and without capacity limits the split run agrees with the sequential one [{}]", d.detail, caps.join(", "));
            if d.objects.is_empty() {
                d.objects = sharded.iter().map(|s| s.name.clone()).collect();
            }
            if !d.cores.contains(&core) {
                d.cores.push(core);
            }
        } else if !faithful {
            d.detail.push_str(&format!("; not even the sequential NF on core {core}'s packets with the per-core capacities does this: a code-generation or runtime bug"));
        } else if !same_input {
            d.detail.push_str("; the parallel NF saw this input translated otherwise than the renaming the per-core NF implies");
        } else if !neutral {
            d.detail.push_str(&format!("; even without capacity limits the NF on core {core}'s packets alone differs: the packet needs state or timing that other cores saw (co-location)"));
        } else {
            d.detail.push_str("; no capacity limit is involved");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

/// Compares one run with its reference; returns every divergence (envelopes included;
/// [`crate::report::StrategyReport::add`] sorts them). Steps:
/// 1. the inputs as the parallel NF saw them ([`apply_translations`]);
/// 2. `sn`: [`sharding`] from the access logs; all parallel strategies: [`order`];
/// 3. outputs:
///    - `seq` (the generated sequential code) against the interpreter: [`strict`];
///    - `sn`: [`strict`], or modulo renaming ([`RenamingOracle`]: outputs, then the
///      inputs that carry values back) when the NF declares renamed fields; then
///      [`classify_capacity`] on what differs;
///    - `locks`, `tm`: [`serializable`] (replay in commit order on the seen inputs).
///      The input-order reference is not compared: a serializable run may differ from
///      it (time moves forward under the lock, packets of different cores reorder).
pub fn compare_run(
    ctx: &CompareCtx<'_>,
    inputs: &[InputPacket],
    reference: &[Observation],
    run: &RunData<'_>,
) -> Result<Vec<Divergence>, CompareError> {
    let early = compare_run_early(ctx, inputs, &Flows::of(inputs, ctx.parse_mode), run);
    compare_run_outputs(ctx, inputs, reference, run, early)
}

/// Steps 1 and 2 of [`compare_run`], which need no reference; the checker runs them
/// while the interpreter is still computing it. `run.observations` is not read;
/// `flows` are the flows of `inputs` ([`Flows::of`]).
pub fn compare_run_early<'a>(
    ctx: &CompareCtx<'_>,
    inputs: &'a [InputPacket],
    flows: &Flows,
    run: &RunData<'_>,
) -> EarlyChecks<'a> {
    let mut out = Vec::new();
    let (seen, bad) = apply_translations(&ctx.renamed, ctx.parse_mode, inputs, run.translations);
    out.extend(bad);
    if run.strategy == Strategy::Sn {
        out.extend(sharding(&ctx.state, run.access_logs));
    }
    if run.strategy != Strategy::Seq && !run.records.is_empty() {
        out.extend(order_of_flows(run.strategy, flows, run.records));
    }
    EarlyChecks {
        divergences: out,
        seen,
    }
}

/// What [`compare_run_early`] found, and the inputs as the run saw them.
pub struct EarlyChecks<'a> {
    divergences: Vec<Divergence>,
    seen: Cow<'a, [InputPacket]>,
}

impl EarlyChecks<'_> {
    /// The whole comparison's result when the run observed exactly what the reference
    /// did and [`outputs_are_compared_alone`] holds: the early divergences, sorted.
    pub fn into_divergences(self) -> Vec<Divergence> {
        let mut out = self.divergences;
        sort_divergences(&mut out);
        out
    }
}

/// Whether [`compare_run_outputs`] looks at nothing but the observations themselves for
/// `strategy`: then a run whose every observation equals the reference's has no
/// divergence beyond its early checks. True for `seq` (strict) and for `sn` without
/// renamed fields (strict, and the capacity classifier only explains divergences);
/// false where inputs are translated (renaming) or the commit order is replayed
/// (`locks`, `tm`).
pub fn outputs_are_compared_alone(ctx: &CompareCtx<'_>, strategy: Strategy) -> bool {
    match strategy {
        Strategy::Seq => true,
        Strategy::Sn => ctx.renamed.is_empty(),
        Strategy::Locks | Strategy::Tm => false,
    }
}

fn sort_divergences(out: &mut [Divergence]) {
    out.sort_by_key(|d| (d.packet_index.unwrap_or(0), d.class));
}

/// Step 3 of [`compare_run`] (the outputs against `reference`), after `early` (made from
/// the same `inputs` and `run`); every divergence of the run, sorted.
pub fn compare_run_outputs(
    ctx: &CompareCtx<'_>,
    inputs: &[InputPacket],
    reference: &[Observation],
    run: &RunData<'_>,
    early: EarlyChecks<'_>,
) -> Result<Vec<Divergence>, CompareError> {
    let EarlyChecks {
        divergences: mut out,
        seen,
    } = early;
    match run.strategy {
        Strategy::Seq => out.extend(strict(reference, run.observations)),
        Strategy::Sn => {
            let mut outputs = if ctx.renamed.is_empty() {
                strict(reference, run.observations)
            } else {
                let mut oracle = RenamingOracle::new(&ctx.renamed, ctx.parse_mode)?;
                let mut ds = Vec::new();
                for (i, (e, a)) in reference.iter().zip(run.observations).enumerate() {
                    let core = run.records.get(i).map(|r| r.core);
                    ds.extend(oracle.check_input(i as u64, core, &inputs[i], &seen[i]));
                    let scope = run.records.get(i).map_or(0, |r| r.core);
                    if let Err(d) = oracle.observe(i as u64, &inputs[i], scope, e, a) {
                        ds.extend(d);
                    }
                }
                ds.extend(length_mismatch(reference, run.observations));
                ds
            };
            if !run.records.is_empty() {
                classify_capacity(ctx, inputs, &seen, reference, run, &mut outputs)?;
            }
            out.extend(outputs);
        }
        Strategy::Locks | Strategy::Tm => {
            out.extend(length_mismatch(reference, run.observations));
            out.extend(serializable(
                ctx.program,
                ctx.parse_mode,
                run.strategy,
                &seen,
                run.observations,
                run.records,
            )?);
        }
    }
    sort_divergences(&mut out);
    Ok(out)
}
