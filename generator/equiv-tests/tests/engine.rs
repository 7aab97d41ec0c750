//! Generated NFs through the runtime's executors equal the reference interpreter, for
//! every variant and every strategy valid for it, on 1 and 2 cores, with OS threads and
//! with three seeded deterministic interleavings:
//! - `seq`: the interpreter on the input order;
//! - `sn` (only for NFs the analysis finds shared-nothing, with the RSS configuration
//!   `maestro_rss::solve` computes for them): strict equality with one interpreter when
//!   capacities do not bind (the `default` variants, or one core); for the `small`
//!   variants on two cores, each core equals its own interpreter on that core's packets,
//!   loaded with the per-core capacity (`shard_capacity`). No key may be touched by two
//!   cores (instrumented runs). The NAT on two cores is left to the checker: its
//!   per-core port allocators need renaming;
//! - `locks` and `tm`: the interpreter replayed on the run's commit order with the
//!   recorded `now`s, and that order keeps each core's processing order.
//!
//! Traces run as two chunks, so state carries over between `Engine::process` calls.

mod common;

use std::collections::HashMap;

use common::{program, variant_odd, variant_trace};
use maestro_analyzer::{AnalyzeOptions, NfProgram, StateKind};
use maestro_generated_tests::{visit_all, Visitor};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::exec::engine::{commit_order, ChunkOutput, Engine, RunOptions, Schedule};
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::{shard_capacity, GeneratedNf, Strategy};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};

const SCHEDULES: [Schedule; 4] = [
    Schedule::Threads { pin: false },
    Schedule::Deterministic { seed: 1 },
    Schedule::Deterministic { seed: 2 },
    Schedule::Deterministic { seed: 3 },
];

/// The config parameters that set the capacities of each NF's sharded objects.
fn capacity_configs(nf: &str) -> &'static [&'static str] {
    match nf {
        "bridge" | "pol" | "psd" => &["capacity"],
        "fw" | "nat" | "cl" => &["max_flows"],
        "lb" => &["flow_capacity", "backend_capacity"],
        _ => &[],
    }
}

/// The capacity a `StateObjectInfo` reports, from the checked program.
fn capacity(kind: &StateKind) -> u32 {
    match kind {
        StateKind::Table { capacity, .. }
        | StateKind::Map { capacity, .. }
        | StateKind::Vector { capacity, .. }
        | StateKind::DChain { capacity, .. } => *capacity,
        StateKind::Cht { backend_count, .. } => *backend_count,
        StateKind::Sketch { width, .. } => *width,
        StateKind::Sets { sets, .. } => *sets,
    }
}

/// The NF as one shard of `cores` sees it: the variant with its capacity configs set
/// to their per-core share. Checked against what the generated code declares, so the
/// table above cannot drift from the NFs.
fn shard_program<N: GeneratedNf>(nf: &str, sets: &[(&str, &str)], cores: usize) -> NfProgram {
    let base = program(nf, sets);
    let mut overrides: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for name in capacity_configs(nf) {
        let value = match base.config(name).map(|c| &c.value) {
            Some(maestro_analyzer::ConfigValue::Value(maestro_analyzer::Value::Int(_, v))) => {
                *v as u32
            }
            other => panic!("{nf}: config `{name}` is not an integer: {other:?}"),
        };
        overrides.retain(|(k, _)| k != name);
        overrides.push((name.to_string(), shard_capacity(value, cores).to_string()));
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../nfs")
        .join(nf);
    let shard = maestro_analyzer::load_nf(&dir, &overrides).expect("shard NF loads");
    for (info, st) in N::STATE.iter().zip(&shard.states) {
        let want = if info.sharded {
            shard_capacity(info.capacity, cores)
        } else {
            info.capacity
        };
        assert_eq!(capacity(&st.kind), want, "{nf}: `{}` per core", info.name);
    }
    shard
}

/// The RSS configuration the solver gives a shared-nothing NF, on `cores` cores; `None`
/// when the analysis says it is not shared-nothing.
fn sn_nic(prog: &NfProgram, cores: usize) -> Option<NicConfig> {
    let analysis =
        maestro_analyzer::analyze_with(prog, &AnalyzeOptions::default()).expect("analyzes");
    if analysis.verdict.strategy != "shared-nothing" {
        return None;
    }
    let opts = maestro_rss::SolveOptions {
        cores: 2,
        ..maestro_rss::SolveOptions::default()
    };
    let rss = maestro_rss::solve(&analysis, &opts).expect("RSS solves");
    let nic = NicConfig::from_json(&maestro_rss::export::json(&rss)).expect("NIC config reads");
    Some(nic.with_cores(cores))
}

/// Runs the trace in two chunks; the engine's outputs and its fault count.
fn run<N: GeneratedNf>(
    nic: &NicConfig,
    strategy: Strategy,
    cores: usize,
    schedule: Schedule,
    instrument: bool,
    trace: &[InputPacket],
) -> (ChunkOutput, Engine<N>) {
    let model = NicModel::new(nic, cores).expect("NIC model");
    let opts = RunOptions {
        strategy,
        cores,
        schedule,
        instrument,
        ..RunOptions::default()
    };
    let mut engine = Engine::<N>::new(model, opts).expect("engine starts");
    let half = trace.len() / 2;
    let mut out = engine.run(trace[..half].to_vec());
    let second = engine.run(trace[half..].to_vec());
    out.observations.extend(second.observations);
    out.records.extend(second.records);
    assert_eq!(out.observations.len(), trace.len());
    (out, engine)
}

/// The interpreter's observations of packets (in the order given).
fn interpret(prog: &NfProgram, packets: &[InputPacket]) -> (Vec<Observation>, u64) {
    let mut interp = Interpreter::new(
        prog,
        InterpOptions {
            parse_mode: ParseMode::Strict,
            ..InterpOptions::default()
        },
    )
    .expect("interpreter starts");
    let obs = packets.iter().map(|p| interp.process(p)).collect();
    (obs, interp.fault_count())
}

fn assert_same(what: &str, got: &[Observation], want: &[Observation]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: packet {i} differs\n  got:  {:?}\n  want: {:?}",
            got[i], want[i]
        );
    }
}

#[derive(Default)]
struct Check {
    /// Runs checked per strategy.
    runs: HashMap<&'static str, usize>,
    /// Locks runs whose packets all took the write lock (the read pass never decided).
    locks_reads: u64,
}

impl Check {
    fn count(&mut self, s: Strategy) {
        *self.runs.entry(s.name()).or_default() += 1;
    }

    /// `locks`/`tm`: the interpreter on the commit order with the recorded times.
    fn serializable<N: GeneratedNf>(
        &mut self,
        what: &str,
        prog: &NfProgram,
        trace: &[InputPacket],
    ) {
        let nic = NicConfig::default_for(N::PORT_COUNT);
        for strategy in [Strategy::Locks, Strategy::Tm] {
            for cores in [1, 2] {
                let nic = nic.with_cores(cores);
                for schedule in SCHEDULES {
                    let what = format!("{what} {} on {cores} cores, {schedule:?}", strategy.name());
                    let (out, engine) = run::<N>(&nic, strategy, cores, schedule, false, trace);
                    let order = commit_order(strategy, &out.records);
                    let replay: Vec<InputPacket> = order
                        .iter()
                        .map(|&i| InputPacket {
                            port: trace[i].port,
                            time_ns: out.records[i].now,
                            data: trace[i].data.clone(),
                        })
                        .collect();
                    let (want_pi, faults) = interpret(prog, &replay);
                    let mut want = vec![Observation::Drop; trace.len()];
                    for (k, &i) in order.iter().enumerate() {
                        want[i] = want_pi[k].clone();
                    }
                    assert_same(&what, &out.observations, &want);
                    assert_eq!(engine.fault_count(), faults, "{what}: faults");
                    // The order keeps every core's processing order.
                    let mut last: HashMap<u16, u64> = HashMap::new();
                    for &i in &order {
                        let r = &out.records[i];
                        if let Some(&prev) = last.get(&r.core) {
                            assert!(prev < r.queue_pos, "{what}: core {} reordered", r.core);
                        }
                        last.insert(r.core, r.queue_pos);
                    }
                    if strategy == Strategy::Locks {
                        self.locks_reads += out.records.iter().filter(|r| !r.wrote).count() as u64;
                    }
                    self.count(strategy);
                }
            }
        }
    }

    /// `sn`, where the analysis allows it.
    fn shared_nothing<N: GeneratedNf>(
        &mut self,
        nf: &str,
        variant: &str,
        sets: &[(&str, &str)],
        prog: &NfProgram,
        trace: &[InputPacket],
    ) {
        for cores in [1, 2] {
            let Some(nic) = sn_nic(prog, cores) else {
                return;
            };
            if cores == 2 && !N::RENAMED.is_empty() {
                // Per-core allocators choose different values: equal only modulo
                // renaming, which the equivalence checker establishes.
                continue;
            }
            for schedule in SCHEDULES {
                let what = format!("{nf} ({variant}) sn on {cores} cores, {schedule:?}");
                let (out, engine) = run::<N>(&nic, Strategy::Sn, cores, schedule, true, trace);
                if cores == 1 || variant == "default" {
                    let (want, faults) = interpret(prog, trace);
                    assert_same(&what, &out.observations, &want);
                    assert_eq!(engine.fault_count(), faults, "{what}: faults");
                } else {
                    // Each core against its own interpreter with the per-core capacity.
                    let shard = shard_program::<N>(nf, sets, cores);
                    let mut faults = 0;
                    for core in 0..cores as u16 {
                        let mine: Vec<usize> = (0..trace.len())
                            .filter(|&i| out.records[i].core == core)
                            .collect();
                        let packets: Vec<InputPacket> =
                            mine.iter().map(|&i| trace[i].clone()).collect();
                        let (want, f) = interpret(&shard, &packets);
                        faults += f;
                        let got: Vec<Observation> =
                            mine.iter().map(|&i| out.observations[i].clone()).collect();
                        assert_same(&format!("{what}, core {core}"), &got, &want);
                    }
                    assert_eq!(engine.fault_count(), faults, "{what}: faults");
                }
                // No entry of per-core written state is touched from two cores
                // (read-only objects are replicated: every core may read them; a
                // sketch is replicated in full but written).
                let private = |o: u16| {
                    N::STATE
                        .get(usize::from(o))
                        .is_some_and(|s| s.sharded || s.kind == "sketch")
                };
                let mut owner: HashMap<(u16, u64), usize> = HashMap::new();
                for (core, log) in engine.access_logs().into_iter().enumerate() {
                    let log = log.expect("instrumented");
                    for key in log.counts().keys().filter(|k| private(k.0)) {
                        if let Some(other) = owner.insert(*key, core) {
                            assert_eq!(other, core, "{what}: entry {key:?} on two cores");
                        }
                    }
                }
                self.count(Strategy::Sn);
            }
        }
    }
}

impl Visitor for Check {
    fn visit<N: GeneratedNf>(&mut self, nf: &str, variant: &str, sets: &[(&str, &str)]) {
        let prog = program(nf, sets);
        let trace = variant_trace(nf, variant, 21, 2_000);
        let what = format!("{nf} ({variant})");

        // seq ignores the NIC: the input order on one core.
        let nic = NicConfig::default_for(N::PORT_COUNT);
        let (out, engine) = run::<N>(
            &nic,
            Strategy::Seq,
            1,
            Schedule::Threads { pin: false },
            false,
            &trace,
        );
        let (want, faults) = interpret(&prog, &trace);
        assert_same(&format!("{what} seq"), &out.observations, &want);
        assert_eq!(engine.fault_count(), faults);
        self.count(Strategy::Seq);

        self.serializable::<N>(&what, &prog, &trace);
        // Odd frames: faults, unparsable packets, time jumps, unusual ports.
        let odd = variant_odd(nf, variant);
        self.serializable::<N>(&format!("{what} odd frames"), &prog, &odd[..1_000]);
        self.shared_nothing::<N>(nf, variant, sets, &prog, &trace);
    }
}

#[test]
fn every_strategy_equals_the_interpreter() {
    let mut check = Check::default();
    visit_all(&mut check);
    // 16 variants x 2 traces x 2 cores x 4 schedules for locks and tm each.
    assert_eq!(check.runs["locks"], 256);
    assert_eq!(check.runs["tm"], 256);
    assert_eq!(check.runs["seq"], 16);
    // sn: the 11 shared-nothing variants (nop, sbridge, pol, fw, cl, psd and the
    // default NAT; the small NAT refreshes from WAN, which R5 forbids) x 4 schedules
    // on one core, and on two cores all but the NAT.
    assert_eq!(check.runs["sn"], 11 * 4 + 10 * 4);
    assert!(
        check.locks_reads > 0,
        "no packet was decided by the read pass"
    );
}
