//! The oracles on hand-made observation lists, and on shared-nothing runs simulated
//! with per-core reference interpreters (the same model the capacity envelope uses).

use maestro_analyzer::sym::report::Analysis;
use maestro_analyzer::NfProgram;
use maestro_equivalence::adversarial::{self, frame, AdversarialContext, Steering, Tuple, UDP};
use maestro_equivalence::compare::{
    self, compare_run, level_for, order, serializable, sharding, strict, CompareCtx, Renamed,
    RenamingOracle, RunData, StateObject,
};
use maestro_equivalence::report::{DivergenceClass, Level, StrategyReport, Verdict};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_rss::{solve, SolveOptions};
use maestro_runtime::exec::engine::PacketRecord;
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::rename::{Field, Translation};
use maestro_runtime::exec::wire::AccessCount;
use maestro_runtime::exec::Strategy;
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};

fn load(name: &str, overrides: &[(&str, &str)]) -> (NfProgram, Analysis) {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let program = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(name), &overrides)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let analysis = maestro_analyzer::analyze(&program).unwrap_or_else(|e| panic!("{name}: {e}"));
    (program, analysis)
}

fn interp(program: &NfProgram, packets: &[InputPacket]) -> Vec<Observation> {
    Interpreter::new(program, InterpOptions::default())
        .expect("interpreter")
        .run(packets)
}

fn tuple(client: u32, server: u32, sport: u16) -> Tuple {
    Tuple {
        src: 0x0a00_0000 + client,
        dst: 0xc633_6400 + server,
        sport,
        dport: 80,
        proto: UDP,
    }
}

fn pkt(t: &Tuple, port: u16, time: u64) -> InputPacket {
    InputPacket {
        port,
        time_ns: time,
        data: frame(t, port),
    }
}

fn with_sport(p: &InputPacket, v: u16) -> Observation {
    let mut bytes = p.data.clone();
    assert!(Field::L4Sport.write(&mut bytes, ParseMode::Strict, u64::from(v)));
    Observation::Forward { port: 1, bytes }
}

fn record(core: u16, queue_pos: u64, epoch: u64, wrote: bool, now: u64) -> PacketRecord {
    PacketRecord {
        core,
        queue_pos,
        epoch,
        wrote,
        now,
        hash: 0,
    }
}

fn classes(ds: &[maestro_equivalence::report::Divergence]) -> Vec<DivergenceClass> {
    ds.iter().map(|d| d.class).collect()
}

// ---------------------------------------------------------------------------------------
// strict
// ---------------------------------------------------------------------------------------

#[test]
fn strict_reports_each_mismatch_and_missing_observations() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let fwd = Observation::Forward {
        port: 1,
        bytes: a.data.clone(),
    };
    let reference = vec![fwd.clone(), Observation::Drop, fwd.clone()];
    assert!(strict(&reference, &reference).is_empty());
    let actual = vec![fwd.clone(), fwd.clone(), with_sport(&a, 7)];
    let ds = strict(&reference, &actual);
    assert_eq!(classes(&ds), vec![DivergenceClass::Output; 2]);
    assert_eq!(ds[0].packet_index, Some(1));
    assert!(ds[0].detail.contains("let through"), "{}", ds[0].detail);
    assert_eq!(ds[0].expected, Some(Observation::Drop));
    assert!(ds[1].detail.contains("l4.sport"), "{}", ds[1].detail);
    let short = strict(&reference, &actual[..2]);
    assert_eq!(short.len(), 2, "one mismatch and the missing tail");
    assert!(
        short[1].detail.contains("2 observations for 3"),
        "{}",
        short[1].detail
    );
}

// ---------------------------------------------------------------------------------------
// modulo renaming
// ---------------------------------------------------------------------------------------

fn nat_renamed() -> Vec<Renamed> {
    vec![Renamed {
        out_field: "l4.sport".into(),
        in_field: "l4.dport".into(),
        in_ports: vec![1],
    }]
}

/// Feeds (input, seq sport, par sport, core) through the oracle; the divergences.
fn feed(steps: &[(&InputPacket, u16, u16, u16)]) -> Vec<maestro_equivalence::report::Divergence> {
    let mut o = RenamingOracle::new(&nat_renamed(), ParseMode::Strict).expect("oracle");
    let mut out = Vec::new();
    for (i, (p, s, q, core)) in steps.iter().enumerate() {
        if let Err(d) = o.observe(i as u64, p, *core, &with_sport(p, *s), &with_sport(p, *q)) {
            out.extend(d);
        }
    }
    out
}

#[test]
fn renaming_accepts_a_consistent_rho() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let b = pkt(&tuple(2, 1, 1000), 0, 2);
    // Per-core allocators: both cores hand out 0; rho is injective per core.
    assert!(feed(&[(&a, 0, 5, 0), (&b, 1, 0, 1), (&a, 0, 5, 0), (&b, 1, 0, 1)]).is_empty());
    assert!(
        feed(&[(&a, 0, 0, 0), (&b, 1, 0, 1)]).is_empty(),
        "same parallel value on two cores"
    );
}

#[test]
fn renaming_conflict_one_value_two_ways() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let ds = feed(&[(&a, 0, 5, 0), (&a, 0, 6, 0)]);
    assert_eq!(classes(&ds), vec![DivergenceClass::Renaming]);
    assert_eq!(ds[0].packet_index, Some(1));
    assert!(
        ds[0].detail.contains("was 5 on core 0 and is now 6"),
        "{}",
        ds[0].detail
    );
}

#[test]
fn renaming_conflict_two_values_onto_one() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let b = pkt(&tuple(2, 1, 1000), 0, 2);
    // The parallel NF gives 5 to b while a (sequential 0) still uses it on core 0.
    let ds = feed(&[(&a, 0, 5, 0), (&b, 1, 5, 0), (&a, 0, 5, 0)]);
    assert_eq!(classes(&ds), vec![DivergenceClass::Renaming]);
    assert_eq!(ds[0].packet_index, Some(2));
    assert!(
        ds[0].detail.contains("stands for sequential 0"),
        "{}",
        ds[0].detail
    );
    // The same flow keeping its parallel value while its sequential one changes.
    let ds = feed(&[(&a, 0, 5, 0), (&a, 1, 5, 0)]);
    assert_eq!(classes(&ds), vec![DivergenceClass::Renaming]);
}

#[test]
fn renaming_follows_value_reuse_after_a_flow_ends() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let c = pkt(&tuple(3, 2, 1000), 0, 3);
    // The sequential NF reuses 0 for c after a expired; the parallel one picks 7.
    let mut o = RenamingOracle::new(&nat_renamed(), ParseMode::Strict).expect("oracle");
    assert!(o
        .observe(0, &a, 0, &with_sport(&a, 0), &with_sport(&a, 5))
        .is_ok());
    assert!(o
        .observe(1, &c, 0, &with_sport(&c, 0), &with_sport(&c, 7))
        .is_ok());
    assert_eq!(o.mapping(0), vec![(0, 0, 7)]);
}

#[test]
fn renaming_checks_the_rest_of_the_frame_and_the_input_translation() {
    let a = pkt(&tuple(1, 1, 1000), 0, 1);
    let mut o = RenamingOracle::new(&nat_renamed(), ParseMode::Strict).expect("oracle");
    // Beyond the renamed field: the destination differs too.
    let mut other = with_sport(&a, 5);
    if let Observation::Forward { bytes, .. } = &mut other {
        assert!(Field::IpDst.write(bytes, ParseMode::Strict, 0x0102_0304));
    }
    let ds = o
        .observe(0, &a, 0, &with_sport(&a, 0), &other)
        .expect_err("not a renaming");
    assert_eq!(classes(&ds), vec![DivergenceClass::Output]);
    assert!(ds[0].detail.contains("beyond the renamed fields"));
    // A reply addressed to sequential port 0 must reach the NF as port 5.
    let mut o = RenamingOracle::new(&nat_renamed(), ParseMode::Strict).expect("oracle");
    assert!(o
        .observe(0, &a, 0, &with_sport(&a, 0), &with_sport(&a, 5))
        .is_ok());
    let reply_t = Tuple {
        src: 0xc633_6401,
        dst: 0xc000_0201,
        sport: 80,
        dport: 0,
        proto: UDP,
    };
    let reply = pkt(&reply_t, 1, 2);
    let mut translated = reply.clone();
    assert!(Field::L4Dport.write(&mut translated.data, ParseMode::Strict, 5));
    assert!(o.check_input(1, None, &reply, &translated).is_empty());
    let ds = o.check_input(1, None, &reply, &reply);
    assert_eq!(classes(&ds), vec![DivergenceClass::Renaming]);
    assert!(ds[0].detail.contains("not translated"), "{}", ds[0].detail);
    // rho is per core: on the core that taught it the reply must be translated; a packet
    // carrying the value on another core cannot be that flow's reply and is not judged.
    assert_eq!(
        classes(&o.check_input(1, Some(0), &reply, &reply)),
        vec![DivergenceClass::Renaming]
    );
    assert!(o.check_input(1, Some(1), &reply, &reply).is_empty());
    // apply_translations rebuilds what the NF saw, and refuses a wrong `old`.
    let t = Translation {
        index: 1,
        field: 0,
        old: 0,
        new: 5,
    };
    let both = [a.clone(), reply.clone()];
    let (seen, bad) = compare::apply_translations(&nat_renamed(), ParseMode::Strict, &both, &[t]);
    assert!(bad.is_empty());
    assert_eq!(seen[1], translated);
    let wrong = Translation { old: 9, ..t };
    let (_, bad) =
        compare::apply_translations(&nat_renamed(), ParseMode::Strict, &[a, reply], &[wrong]);
    assert_eq!(classes(&bad), vec![DivergenceClass::Renaming]);
}

// ---------------------------------------------------------------------------------------
// serializable
// ---------------------------------------------------------------------------------------

/// fw: LAN flows a (core 0) and b (core 1), then their WAN replies.
fn fw_trace() -> (NfProgram, Vec<InputPacket>) {
    let (program, _) = load("fw", &[]);
    let a = tuple(1, 1, 1000);
    let b = tuple(2, 2, 2000);
    let packets = vec![
        pkt(&a, 0, 100),
        pkt(&b, 0, 200),
        pkt(&a.reversed(), 1, 300),
        pkt(&b.reversed(), 1, 400),
    ];
    (program, packets)
}

/// What the sequential NF does in commit order `pi` at the recorded times.
fn replay(
    program: &NfProgram,
    packets: &[InputPacket],
    records: &[PacketRecord],
    pi: &[usize],
) -> Vec<Observation> {
    let mut i = Interpreter::new(program, InterpOptions::default()).expect("interpreter");
    let mut out = vec![Observation::Drop; packets.len()];
    for &k in pi {
        let p = InputPacket {
            time_ns: records[k].now,
            ..packets[k].clone()
        };
        out[k] = i.process(&p);
    }
    out
}

#[test]
fn serializable_accepts_the_replay_in_commit_order() {
    let (program, packets) = fw_trace();
    // b's write commits first (epoch 1) at its own time; a's write (epoch 2) runs later
    // under the lock, so its `now` moves forward to 200; the replies read at epoch 2.
    let records = vec![
        record(0, 0, 2, true, 200),
        record(1, 0, 1, true, 200),
        record(0, 1, 2, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let pi = vec![1, 0, 2, 3];
    let obs = replay(&program, &packets, &records, &pi);
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Locks,
        &packets,
        &obs,
        &records,
    )
    .expect("replay");
    assert!(ds.is_empty(), "{ds:?}");
    assert_eq!(level_for(Strategy::Locks, &[]), Level::Serializable);
}

#[test]
fn serializable_rejects_a_wrong_decision_and_a_broken_pi() {
    let (program, packets) = fw_trace();
    let records = vec![
        record(0, 0, 2, true, 200),
        record(1, 0, 1, true, 200),
        record(0, 1, 2, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let pi = vec![1, 0, 2, 3];
    let mut obs = replay(&program, &packets, &records, &pi);
    // The decision of an aborted read pass: the reply to a dropped.
    obs[2] = Observation::Drop;
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Locks,
        &packets,
        &obs,
        &records,
    )
    .expect("replay");
    assert_eq!(classes(&ds), vec![DivergenceClass::Serialization]);
    assert_eq!(ds[0].packet_index, Some(2));
    assert!(
        ds[0].detail.contains("commit position 2"),
        "{}",
        ds[0].detail
    );
    // In input order the same mismatch is an `output` divergence.
    let records_io = vec![
        record(0, 0, 1, true, 100),
        record(1, 0, 2, true, 200),
        record(0, 1, 2, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let mut obs = replay(&program, &packets, &records_io, &[0, 1, 2, 3]);
    obs[3] = Observation::Drop;
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Tm,
        &packets,
        &obs,
        &records_io,
    )
    .expect("replay");
    assert_eq!(classes(&ds), vec![DivergenceClass::Output]);
    // Core 0's reply commits before its own earlier write: queue order broken.
    let bad_q = vec![
        record(0, 0, 2, true, 300),
        record(1, 0, 1, true, 200),
        record(0, 1, 1, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let obs = replay(&program, &packets, &bad_q, &[1, 2, 0, 3]);
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Locks,
        &packets,
        &obs,
        &bad_q,
    )
    .expect("replay");
    assert!(
        ds.iter()
            .any(|d| d.class == DivergenceClass::Serialization && d.detail.contains("queue order")),
        "{ds:?}"
    );
    // Time going back along pi, and a packet running before its own timestamp.
    let bad_t = vec![
        record(0, 0, 1, true, 100),
        record(1, 0, 2, true, 150),
        record(0, 1, 2, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let obs = replay(&program, &packets, &bad_t, &[0, 1, 2, 3]);
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Locks,
        &packets,
        &obs,
        &bad_t,
    )
    .expect("replay");
    assert!(
        ds.iter()
            .any(|d| d.detail.contains("before its own timestamp")),
        "{ds:?}"
    );
    let bad_m = vec![
        record(0, 0, 1, true, 250),
        record(1, 0, 2, true, 200),
        record(0, 1, 2, false, 300),
        record(1, 1, 2, false, 400),
    ];
    let obs = replay(&program, &packets, &bad_m, &[0, 1, 2, 3]);
    let ds = serializable(
        &program,
        ParseMode::Strict,
        Strategy::Locks,
        &packets,
        &obs,
        &bad_m,
    )
    .expect("replay");
    assert!(
        ds.iter().any(|d| d.detail.contains("time goes back")),
        "{ds:?}"
    );
}

// ---------------------------------------------------------------------------------------
// order and sharding
// ---------------------------------------------------------------------------------------

#[test]
fn order_flags_a_split_flow_and_an_inverted_commit() {
    let a = tuple(1, 1, 1000);
    let b = tuple(2, 2, 2000);
    let packets = vec![
        pkt(&a, 0, 1),
        pkt(&b, 0, 2),
        pkt(&a, 0, 3),
        pkt(&a.reversed(), 1, 4),
    ];
    let fine = vec![
        record(0, 0, 0, false, 1),
        record(1, 0, 0, false, 2),
        record(0, 1, 0, false, 3),
        record(1, 1, 0, false, 4),
    ];
    assert!(
        order(Strategy::Sn, &packets, &fine, ParseMode::Strict).is_empty(),
        "the reply is another directed flow"
    );
    let split = vec![
        record(0, 0, 0, false, 1),
        record(1, 0, 0, false, 2),
        record(1, 1, 0, false, 3),
        record(1, 2, 0, false, 4),
    ];
    let ds = order(Strategy::Sn, &packets, &split, ParseMode::Strict);
    assert_eq!(classes(&ds), vec![DivergenceClass::Order]);
    assert_eq!(ds[0].packet_index, Some(2));
    assert_eq!(ds[0].cores, vec![0, 1]);
    // locks: a's second packet commits before its first.
    let inverted = vec![
        record(0, 0, 2, true, 1),
        record(1, 0, 1, true, 2),
        record(1, 1, 1, true, 3),
        record(0, 1, 2, false, 4),
    ];
    let ds = order(Strategy::Locks, &packets, &inverted, ParseMode::Strict);
    assert_eq!(classes(&ds), vec![DivergenceClass::Order]);
    assert_eq!(ds[0].packet_index, Some(2));
}

#[test]
fn sharding_names_the_object_and_the_cores() {
    let state = vec![
        StateObject {
            name: "flows".into(),
            capacity: 64,
            sharded: true,
            read_only: false,
        },
        StateObject {
            name: "rules".into(),
            capacity: 16,
            sharded: false,
            read_only: true,
        },
    ];
    let logs = vec![
        Some(vec![
            AccessCount {
                object: 0,
                key: 42,
                count: 3,
            },
            AccessCount {
                object: 1,
                key: 9,
                count: 1,
            },
            AccessCount {
                object: 0,
                key: 1,
                count: 1,
            },
        ]),
        Some(vec![
            AccessCount {
                object: 0,
                key: 42,
                count: 1,
            },
            AccessCount {
                object: 0,
                key: 7,
                count: 1,
            },
            AccessCount {
                object: 1,
                key: 9,
                count: 5,
            },
        ]),
        None,
    ];
    let ds = sharding(&state, &logs);
    assert_eq!(classes(&ds), vec![DivergenceClass::Sharding]);
    assert_eq!(ds[0].objects, vec!["flows".to_string()]);
    assert_eq!(ds[0].cores, vec![0, 1]);
    assert_eq!(ds[0].packet_index, None);
    assert!(
        ds[0].detail.contains("1 key(s)") && ds[0].detail.contains("core 0: 3"),
        "{}",
        ds[0].detail
    );
    assert!(sharding(&state, &logs[..1]).is_empty());
}

// ---------------------------------------------------------------------------------------
// simulated shared-nothing runs
// ---------------------------------------------------------------------------------------

/// A shared-nothing run of `program` simulated with per-core reference interpreters at
/// the per-core capacities, steered by `nic`, with inputs translated through the rho
/// learned so far (unless `rename` is off), as the runtime's renamer does.
struct Sim {
    observations: Vec<Observation>,
    records: Vec<PacketRecord>,
    translations: Vec<Translation>,
}

fn simulate_sn(
    program: &NfProgram,
    state: &[StateObject],
    nic: &NicModel,
    packets: &[InputPacket],
    seq: &[Observation],
    rename: bool,
) -> Sim {
    let cores = nic.cores();
    let shard = compare::shard_program(program, state, cores);
    let mut nfs: Vec<Interpreter> = (0..cores)
        .map(|_| Interpreter::new(&shard, InterpOptions::default()).expect("shard"))
        .collect();
    let mut rho = std::collections::HashMap::<u64, u64>::new();
    let mut pos = vec![0u64; cores];
    let mut sim = Sim {
        observations: Vec::new(),
        records: Vec::new(),
        translations: Vec::new(),
    };
    for (i, p) in packets.iter().enumerate() {
        let core = nic.steer(p.port, &p.data).core;
        let mut seen = p.clone();
        if rename && p.port == 1 {
            if let Some(old) = Field::L4Dport.read(&p.data, ParseMode::Strict) {
                if let Some(&new) = rho.get(&old) {
                    if new != old && Field::L4Dport.write(&mut seen.data, ParseMode::Strict, new) {
                        sim.translations.push(Translation {
                            index: i as u64,
                            field: 0,
                            old,
                            new,
                        });
                    }
                }
            }
        }
        let obs = nfs[usize::from(core)].process(&seen);
        if p.port == 0 {
            if let (Some(s), Some(q)) = (
                seq[i]
                    .bytes()
                    .and_then(|b| Field::L4Sport.read(b, ParseMode::Strict)),
                obs.bytes()
                    .and_then(|b| Field::L4Sport.read(b, ParseMode::Strict)),
            ) {
                rho.entry(s).or_insert(q);
            }
        }
        sim.records
            .push(record(core, pos[usize::from(core)], 0, false, p.time_ns));
        pos[usize::from(core)] += 1;
        sim.observations.push(obs);
    }
    sim
}

fn nic_for(analysis: &Analysis, cores: usize) -> NicConfig {
    let rss = solve(
        analysis,
        &SolveOptions {
            cores,
            reta_size: 128,
            ..SolveOptions::default()
        },
    )
    .expect("rss");
    let json = serde_json::to_string(&rss).expect("json");
    NicConfig::from_json(&json).expect("nic")
}

fn check_sn(
    name: &str,
    overrides: &[(&str, &str)],
    edit: impl Fn(NicConfig) -> NicConfig,
    rename: bool,
) -> (StrategyReport, usize) {
    let (program, analysis) = load(name, overrides);
    let cfg = nic_for(&analysis, 2);
    let steering = Steering::from_nic(&cfg);
    let actx = AdversarialContext {
        program: &program,
        analysis: &analysis,
        steering: Some(&steering),
        cores: 2,
        seed: 1,
        parse_mode: ParseMode::Strict,
    };
    let traces = adversarial::generate(&actx).expect("traffic");
    let nic = NicModel::new(&edit(cfg), 2).expect("nic model");
    let state = StateObject::from_program(&program, &analysis);
    let renamed = if name == "nat" {
        nat_renamed()
    } else {
        Vec::new()
    };
    let ctx = CompareCtx {
        program: &program,
        state: state.clone(),
        renamed: renamed.clone(),
        parse_mode: ParseMode::Strict,
    };
    let mut report = StrategyReport::new(
        Strategy::Sn,
        2,
        "seed:0",
        "adversarial",
        level_for(Strategy::Sn, &renamed),
        0,
    );
    let mut translations = 0;
    for t in &traces {
        let seq = interp(&program, &t.packets);
        let sim = simulate_sn(&program, &state, &nic, &t.packets, &seq, rename);
        let run = RunData {
            strategy: Strategy::Sn,
            cores: 2,
            observations: &sim.observations,
            records: &sim.records,
            translations: &sim.translations,
            access_logs: &[],
        };
        let ds = compare_run(&ctx, &t.packets, &seq, &run).expect("compare");
        report.packets += t.packets.len() as u64;
        translations += sim.translations.len();
        for mut d in ds {
            d.detail = format!("[{}] {}", t.name, d.detail);
            report.add(d);
        }
    }
    (report, translations)
}

#[test]
fn simulated_fw_sn_is_equivalent_within_the_capacity_envelope() {
    let (r, _) = check_sn("fw", &[("max_flows", "64")], |c| c, true);
    assert_eq!(r.failures, 0, "{:#?}", r.divergences);
    assert_eq!(
        r.verdict,
        Verdict::EquivalentWithinEnvelopes,
        "the RETA collision trace overflows one core: {:?}",
        r.counts
    );
    let cap = r
        .counts
        .iter()
        .find(|c| c.class == DivergenceClass::Capacity)
        .expect("capacity");
    assert!(
        cap.first.detail.contains("reta-collision") || cap.first.detail.contains("table-full"),
        "{}",
        cap.first.detail
    );
    assert_eq!(cap.first.objects, vec!["flows".to_string()]);
}

#[test]
fn simulated_nat_sn_is_equivalent_modulo_renaming() {
    let (r, translations) = check_sn("nat", &[("max_flows", "64")], |c| c, true);
    assert!(
        translations > 20,
        "per-core ports differ from the sequential ones: replies were translated ({translations})"
    );
    assert_eq!(r.level, Level::ModuloRenaming);
    assert_eq!(r.failures, 0, "{:#?}", r.divergences);
    assert!(r.count(DivergenceClass::Capacity) > 0, "{:?}", r.counts);
}

#[test]
fn simulated_nat_without_renaming_diverges() {
    let (r, _) = check_sn("nat", &[("max_flows", "64")], |c| c, false);
    assert_eq!(r.verdict, Verdict::Diverges);
    assert!(r.count(DivergenceClass::Renaming) > 0, "{:?}", r.counts);
}

#[test]
fn simulated_fw_with_microsoft_key_diverges() {
    let (r, _) = check_sn(
        "fw",
        &[("max_flows", "64")],
        |c| {
            let mut c = c;
            for p in &mut c.ports {
                p.key = maestro_runtime::rss::MICROSOFT_KEY.to_vec();
            }
            c
        },
        true,
    );
    assert_eq!(r.verdict, Verdict::Diverges);
    let first = r.divergences.first().expect("a divergence");
    assert_eq!(first.class, DivergenceClass::Output);
    assert!(
        first.detail.contains("co-location") || first.detail.contains("other cores saw"),
        "{}",
        first.detail
    );
}

#[test]
fn capacity_needs_the_per_core_model_to_reproduce_the_observation() {
    // fw with 4 flows: 2 per core on 2 cores. Three flows on core 0, then their replies.
    let (program, analysis) = load("fw", &[("max_flows", "4")]);
    let state = StateObject::from_program(&program, &analysis);
    let flows = [tuple(1, 1, 1000), tuple(2, 1, 1000), tuple(3, 1, 1000)];
    let mut packets: Vec<InputPacket> = flows
        .iter()
        .enumerate()
        .map(|(i, f)| pkt(f, 0, 10 + i as u64))
        .collect();
    packets.extend(
        flows
            .iter()
            .enumerate()
            .map(|(i, f)| pkt(&f.reversed(), 1, 20 + i as u64)),
    );
    packets.push(pkt(&tuple(9, 9, 9), 0, 30)); // core 1
    let records: Vec<PacketRecord> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| record(if i == 6 { 1 } else { 0 }, i as u64, 0, false, p.time_ns))
        .collect();
    let seq = interp(&program, &packets);
    assert!(seq[3..6]
        .iter()
        .all(|o| matches!(o, Observation::Forward { .. })));
    let core0: Vec<InputPacket> = packets[..6].to_vec();
    let mut par = interp(&compare::shard_program(&program, &state, 2), &core0);
    par.extend(interp(
        &compare::shard_program(&program, &state, 2),
        &packets[6..],
    ));
    assert_eq!(
        par[5],
        Observation::Drop,
        "the third flow did not fit core 0's 2 entries"
    );
    let ctx = CompareCtx {
        program: &program,
        state: state.clone(),
        renamed: Vec::new(),
        parse_mode: ParseMode::Strict,
    };
    let run = RunData {
        strategy: Strategy::Sn,
        cores: 2,
        observations: &par,
        records: &records,
        translations: &[],
        access_logs: &[],
    };
    let ds = compare_run(&ctx, &packets, &seq, &run).expect("compare");
    assert_eq!(classes(&ds), vec![DivergenceClass::Capacity]);
    assert_eq!(ds[0].packet_index, Some(5));
    assert!(
        ds[0].detail.contains("flows 2 per core of 4"),
        "{}",
        ds[0].detail
    );
    // A drop the per-core model would not make stays an `output` divergence.
    let mut wrong = par.clone();
    wrong[3] = Observation::Drop;
    let run = RunData {
        observations: &wrong,
        ..run
    };
    let ds = compare_run(&ctx, &packets, &seq, &run).expect("compare");
    assert_eq!(
        classes(&ds),
        vec![DivergenceClass::Output, DivergenceClass::Capacity]
    );
    assert!(
        ds[0].detail.contains("code-generation or runtime bug"),
        "{}",
        ds[0].detail
    );
}

#[test]
fn seq_is_compared_bit_for_bit() {
    let (program, _) = fw_trace();
    let (_, packets) = fw_trace();
    let reference = interp(&program, &packets);
    let ctx = CompareCtx {
        program: &program,
        state: Vec::new(),
        renamed: Vec::new(),
        parse_mode: ParseMode::Strict,
    };
    let run = RunData {
        strategy: Strategy::Seq,
        cores: 1,
        observations: &reference,
        records: &[],
        translations: &[],
        access_logs: &[],
    };
    assert!(compare_run(&ctx, &packets, &reference, &run)
        .expect("compare")
        .is_empty());
    let mut generated = reference.clone();
    generated[2] = Observation::Drop;
    let run = RunData {
        observations: &generated,
        ..run
    };
    let ds = compare_run(&ctx, &packets, &reference, &run).expect("compare");
    assert_eq!(classes(&ds), vec![DivergenceClass::Output]);
}

/// Without access logs (the interpreter keeps none) a mutant must show in outputs: the
/// policer gets a small burst so that buckets split over cores refill differently.
#[test]
fn adversarial_traffic_kills_every_nic_mutant_in_a_simulated_sn_run() {
    use maestro_equivalence::mutants::{catalog, MutantInput, MutantKind};
    /// NF, its renamed fields, config overrides.
    type Case<'a> = (&'a str, Vec<Renamed>, Vec<(&'a str, &'a str)>);
    let cases: [Case; 3] = [
        ("fw", Vec::new(), vec![("max_flows", "64")]),
        ("nat", nat_renamed(), vec![("max_flows", "64")]),
        (
            "pol",
            Vec::new(),
            vec![("capacity", "256"), ("burst", "150"), ("rate", "1000000")],
        ),
    ];
    for (name, renamed, overrides) in cases {
        let (_, analysis) = load(name, &overrides);
        let base = nic_for(&analysis, 2);
        let input = MutantInput {
            analysis: &analysis,
            renamed: &renamed,
            cores: 2,
            seed: 1,
        };
        let mut killed = 0;
        for m in catalog() {
            let MutantKind::Nic(_) = m.kind else { continue };
            if m.skip_reason(&base, &input).is_some() {
                continue;
            }
            let (r, _) = check_sn(name, &overrides, |c| m.nic(&c, &input).expect("edit"), true);
            assert_eq!(
                r.verdict,
                Verdict::Diverges,
                "{name}: mutant {} survived: {:?}",
                m.name,
                r.counts
            );
            killed += 1;
        }
        assert!(killed >= 2, "{name}: {killed} NIC mutants applied");
        // The unmutated configuration passes on the same traffic.
        let (r, _) = check_sn(name, &overrides, |c| c, true);
        assert_eq!(r.failures, 0, "{name}: {:#?}", r.divergences);
    }
}
