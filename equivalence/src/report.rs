//! Divergences, their classes, and the verification report.
//!
//! Everything here is plain data (serde, complete JSON) plus a short text rendering: one
//! line per strategy run, then at most a few divergences per run, each on one line. The
//! classes and levels are those of `shared/spec/equivalence.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use maestro_runtime::exec::Strategy;
use maestro_runtime::Observation;
use serde::{Deserialize, Serialize};

/// Schema name written in every JSON report.
pub const SCHEMA: &str = "maestro-verify";
/// Bumped on any incompatible change of the JSON form.
pub const VERSION: u32 = 1;

/// Exit code: every run is equivalent (envelope warnings allowed unless strict).
pub const EXIT_EQUIVALENT: i32 = 0;
/// Exit code: some run diverges (or an envelope divergence under `--strict`).
pub const EXIT_DIVERGES: i32 = 1;
/// Exit code: usage or input error (bad NF, unreadable capture); reserved for the CLI.
pub const EXIT_INPUT_ERROR: i32 = 2;

/// What kind of divergence was found (`equivalence.md`, "Divergence classes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceClass {
    /// The same (object, key) was touched by two cores in a shared-nothing run.
    Sharding,
    /// An observation differs and no envelope explains it.
    Output,
    /// The renaming rho would map one value two ways, or two values onto one.
    Renaming,
    /// Packets of one flow were processed in a different order than they arrived.
    Order,
    /// No commit order consistent with the receive queues explains the outputs.
    Serialization,
    /// Envelope: per-core tables of `C / cores` entries filled (or did not) where the
    /// sequential table of `C` did not (or did).
    Capacity,
    /// Envelope: per-core expiry ran at other moments than the sequential expiry.
    Time,
}

impl DivergenceClass {
    pub const ALL: [DivergenceClass; 7] = [
        DivergenceClass::Sharding,
        DivergenceClass::Output,
        DivergenceClass::Renaming,
        DivergenceClass::Order,
        DivergenceClass::Serialization,
        DivergenceClass::Capacity,
        DivergenceClass::Time,
    ];

    /// The JSON / command-line name (`sharding`, `output`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DivergenceClass::Sharding => "sharding",
            DivergenceClass::Output => "output",
            DivergenceClass::Renaming => "renaming",
            DivergenceClass::Order => "order",
            DivergenceClass::Serialization => "serialization",
            DivergenceClass::Capacity => "capacity",
            DivergenceClass::Time => "time",
        }
    }

    /// Declared envelopes are warnings by default and failures under `--strict`; every
    /// other class is a failure.
    pub fn is_envelope(self) -> bool {
        matches!(self, DivergenceClass::Capacity | DivergenceClass::Time)
    }

    /// One line in plain words, for the legend of the text report.
    pub fn meaning(self) -> &'static str {
        match self {
            DivergenceClass::Sharding => "one state entry was used by two cores (RSS did not co-locate packets that share state)",
            DivergenceClass::Output => "the parallel NF did something else with a packet than the sequential NF",
            DivergenceClass::Renaming => "NF-chosen values (NAT ports) are not a consistent renaming of the sequential ones",
            DivergenceClass::Order => "packets of one flow were processed out of their arrival order",
            DivergenceClass::Serialization => "no commit order that respects the receive queues explains the outputs",
            DivergenceClass::Capacity => "a per-core table (capacity / cores) filled where the sequential one did not (declared envelope)",
            DivergenceClass::Time => "per-core expiry ran at other moments than sequential expiry (declared envelope)",
        }
    }
}

/// One divergence, with everything needed to understand and reproduce it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    pub class: DivergenceClass,
    /// The input packet (0-based, in input order) where it shows; `None` for
    /// divergences that no single packet carries (a sharding conflict found in the
    /// per-core access logs, which count accesses but do not name packets).
    pub packet_index: Option<u64>,
    /// What the reference did with the packet (the sequential NF, or the sequential NF
    /// replayed in commit order).
    pub expected: Option<Observation>,
    /// What the parallel NF did.
    pub actual: Option<Observation>,
    /// State objects involved, by their names in the NF source.
    pub objects: Vec<String>,
    /// Cores involved.
    pub cores: Vec<u16>,
    /// The explanation in plain words.
    pub detail: String,
    /// A minimized capture that reproduces it, once written.
    pub counterexample: Option<PathBuf>,
}

impl Divergence {
    /// A divergence of `class` at `packet_index`, explained by `detail`; the other
    /// fields are filled with the builder methods.
    pub fn new(
        class: DivergenceClass,
        packet_index: Option<u64>,
        detail: impl Into<String>,
    ) -> Divergence {
        Divergence {
            class,
            packet_index,
            expected: None,
            actual: None,
            objects: Vec::new(),
            cores: Vec::new(),
            detail: detail.into(),
            counterexample: None,
        }
    }

    pub fn with_observations(
        mut self,
        expected: Option<Observation>,
        actual: Option<Observation>,
    ) -> Divergence {
        self.expected = expected;
        self.actual = actual;
        self
    }

    pub fn with_objects(mut self, objects: Vec<String>) -> Divergence {
        self.objects = objects;
        self
    }

    pub fn with_cores(mut self, mut cores: Vec<u16>) -> Divergence {
        cores.sort_unstable();
        cores.dedup();
        self.cores = cores;
        self
    }

    /// One line: class, packet, objects, cores, the explanation, and the counterexample.
    pub fn one_line(&self) -> String {
        let mut s = format!("{:<13}", self.class.name());
        match self.packet_index {
            Some(i) => {
                let _ = write!(s, " packet #{i}");
            }
            None => s.push_str(" (no single packet)"),
        }
        if !self.objects.is_empty() {
            let _ = write!(s, " [{}]", self.objects.join(", "));
        }
        if !self.cores.is_empty() {
            let cores: Vec<String> = self.cores.iter().map(u16::to_string).collect();
            let _ = write!(s, " cores {}", cores.join(","));
        }
        let _ = write!(s, ": {}", self.detail);
        if self.expected.is_some() || self.actual.is_some() {
            let _ = write!(
                s,
                " (expected {}, got {})",
                describe_observation(self.expected.as_ref()),
                describe_observation(self.actual.as_ref())
            );
        }
        if let Some(p) = &self.counterexample {
            let _ = write!(s, " -> {}", p.display());
        }
        s
    }
}

/// A short description of an observation: `drop`, `forward to 1 (60 B)`, `flood (60 B)`.
pub fn describe_observation(o: Option<&Observation>) -> String {
    match o {
        None => "nothing".to_string(),
        Some(Observation::Drop) => "drop".to_string(),
        Some(Observation::Forward { port, bytes }) => {
            format!("forward to {port} ({} B)", bytes.len())
        }
        Some(Observation::Flood { bytes }) => format!("flood ({} B)", bytes.len()),
    }
}

/// The equivalence level a run was checked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `O_par[i] == O_seq[i]` for every packet.
    Strict,
    /// Equal up to a renaming of the NF-chosen values (the NAT's ports).
    ModuloRenaming,
    /// Equal to the sequential NF replayed in the recorded commit order.
    Serializable,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::ModuloRenaming => "modulo renaming",
            Level::Serializable => "serializable",
        }
    }
}

/// The outcome of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Equivalent,
    /// Equivalent apart from declared envelope divergences (capacity, time).
    EquivalentWithinEnvelopes,
    Diverges,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Equivalent => "equivalent",
            Verdict::EquivalentWithinEnvelopes => "equivalent within envelopes",
            Verdict::Diverges => "DIVERGES",
        }
    }

    /// The worse of two verdicts.
    pub fn worst(self, other: Verdict) -> Verdict {
        fn rank(v: Verdict) -> u8 {
            match v {
                Verdict::Equivalent => 0,
                Verdict::EquivalentWithinEnvelopes => 1,
                Verdict::Diverges => 2,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// How many divergences of one class a run had, with the first one as an example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    pub class: DivergenceClass,
    pub count: u64,
    pub first: Divergence,
}

/// One run of one strategy over one traffic source, compared with its reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// `seq` here means the generated sequential code checked against the interpreter.
    pub strategy: Strategy,
    pub cores: usize,
    /// `threads`, `threads-unpinned` or `seed:N`.
    pub schedule: String,
    /// The deterministic schedule's seed, if any.
    pub seed: Option<u64>,
    /// The traffic source's name (see [`SourceReport::name`]).
    pub source: String,
    /// The mutant applied, if this run is part of the self-test.
    pub mutant: Option<String>,
    pub level: Level,
    pub packets: u64,
    /// Divergences that are failures (every class but the envelopes), at most
    /// [`StrategyReport::keep`] of them; [`StrategyReport::failures`] counts them all.
    pub divergences: Vec<Divergence>,
    /// All failing divergences, including those not kept.
    pub failures: u64,
    /// Per class, every divergence found (envelopes included), with the first example.
    pub counts: Vec<ClassCount>,
    pub verdict: Verdict,
    /// How many failing divergences are kept in [`StrategyReport::divergences`].
    pub keep: usize,
}

impl StrategyReport {
    /// An empty report (verdict equivalent) for a run; add divergences with
    /// [`StrategyReport::add`].
    pub fn new(
        strategy: Strategy,
        cores: usize,
        schedule: impl Into<String>,
        source: impl Into<String>,
        level: Level,
        packets: u64,
    ) -> StrategyReport {
        let schedule = schedule.into();
        let seed = schedule.strip_prefix("seed:").and_then(|s| s.parse().ok());
        StrategyReport {
            strategy,
            cores,
            schedule,
            seed,
            source: source.into(),
            mutant: None,
            level,
            packets,
            divergences: Vec::new(),
            failures: 0,
            counts: Vec::new(),
            verdict: Verdict::Equivalent,
            keep: 20,
        }
    }

    /// Records one divergence: counted per class, kept (up to [`StrategyReport::keep`]) if
    /// it is a failure, and the verdict updated.
    pub fn add(&mut self, d: Divergence) {
        match self.counts.iter_mut().find(|c| c.class == d.class) {
            Some(c) => c.count += 1,
            None => {
                self.counts.push(ClassCount {
                    class: d.class,
                    count: 1,
                    first: d.clone(),
                });
                self.counts.sort_by_key(|c| c.class);
            }
        }
        if d.class.is_envelope() {
            self.verdict = self.verdict.worst(Verdict::EquivalentWithinEnvelopes);
        } else {
            self.verdict = Verdict::Diverges;
            self.failures += 1;
            if self.divergences.len() < self.keep {
                self.divergences.push(d);
            }
        }
    }

    /// Adds every divergence of `ds`.
    pub fn extend(&mut self, ds: impl IntoIterator<Item = Divergence>) {
        for d in ds {
            self.add(d);
        }
    }

    /// Whether the run fails: any failing divergence, or (under `strict`) any envelope one.
    pub fn fails(&self, strict: bool) -> bool {
        match self.verdict {
            Verdict::Equivalent => false,
            Verdict::EquivalentWithinEnvelopes => strict,
            Verdict::Diverges => true,
        }
    }

    /// Divergences of envelope classes, as (class, count).
    pub fn envelope_counts(&self) -> Vec<(DivergenceClass, u64)> {
        self.counts
            .iter()
            .filter(|c| c.class.is_envelope())
            .map(|c| (c.class, c.count))
            .collect()
    }

    /// The count of one class.
    pub fn count(&self, class: DivergenceClass) -> u64 {
        self.counts
            .iter()
            .find(|c| c.class == class)
            .map_or(0, |c| c.count)
    }

    /// The first divergence to show for this run: the first kept failure, else the first
    /// envelope example.
    pub fn first(&self) -> Option<&Divergence> {
        self.divergences
            .first()
            .or_else(|| self.counts.first().map(|c| &c.first))
    }

    /// One line: strategy, cores, schedule, source, level, packets, verdict and counts.
    pub fn one_line(&self) -> String {
        let mut s = format!(
            "{:<6} {:>2} core{} {:<16} {:<28} {:<16} {:>9} pkts  {}",
            self.strategy.name(),
            self.cores,
            if self.cores == 1 { " " } else { "s" },
            self.schedule,
            truncate(&self.source, 28),
            self.level.name(),
            self.packets,
            self.verdict.name()
        );
        if let Some(m) = &self.mutant {
            let _ = write!(s, "  (mutant {m})");
        }
        if !self.counts.is_empty() {
            let parts: Vec<String> = self
                .counts
                .iter()
                .map(|c| format!("{} {}", c.count, c.class.name()))
                .collect();
            let _ = write!(s, "  [{}]", parts.join(", "));
        }
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// What kind of traffic a source is (the mutant table has one column per kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A capture given with `--pcap`.
    Capture,
    /// A synthetic trace from the traffic generator.
    Synthetic,
    /// Property-based random traces.
    Random,
    /// Traffic built from the analysis and the RSS configuration.
    Adversarial,
    /// Packet sequences that reach every feasible path of the symbolic model.
    Paths,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Capture => "capture",
            SourceKind::Synthetic => "synthetic",
            SourceKind::Random => "random",
            SourceKind::Adversarial => "adversarial",
            SourceKind::Paths => "paths",
        }
    }
}

/// One traffic source the NF was driven with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    /// `capture:foo.pcap`, `adversarial:co-location`, `random:seed-3`...
    pub name: String,
    pub kind: SourceKind,
    /// What the traffic targets, in words.
    pub purpose: String,
    /// Packets fed to the NF.
    pub packets: u64,
    /// Capture records the harness refused (malformed), with the first reasons.
    pub refused: u64,
    pub refused_reasons: Vec<String>,
}

/// Whether a state object's co-location is proved for all packets or only tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofStatus {
    /// Z3 proved that every two packets that can share an entry reach one core.
    Proved,
    /// Z3 found two packets that share an entry but reach different cores.
    Refuted,
    /// Only tested (no proof attempted or possible); the reason says why.
    TestedOnly,
    /// No co-location is needed (read-only, unused, or a shared strategy).
    NotNeeded,
}

/// The proof status of one state object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectProof {
    pub object: String,
    pub status: ProofStatus,
    pub reason: String,
}

/// The Z3 result for one sharding constraint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintProof {
    /// The constraint in words.
    pub constraint: String,
    pub proved: bool,
    /// Two packets that satisfy the constraint but reach different cores, in words.
    pub counterexample: Option<String>,
}

/// The proof section: objects proved co-located by Z3 versus only tested.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofSection {
    pub objects: Vec<ObjectProof>,
    pub constraints: Vec<ConstraintProof>,
    pub notes: Vec<String>,
}

/// Path coverage of the symbolic model by the traffic that was run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub feasible_paths: usize,
    pub exercised_paths: usize,
    /// Paths no trace reached, with the reason (id, reason).
    pub uncovered: Vec<(usize, String)>,
}

impl Coverage {
    /// Exercised / feasible, as a percentage (100 for an NF without paths).
    pub fn percent(&self) -> f64 {
        if self.feasible_paths == 0 {
            100.0
        } else {
            100.0 * self.exercised_paths as f64 / self.feasible_paths as f64
        }
    }
}

/// Whether one mutant was killed by one kind of traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutantResult {
    pub source: SourceKind,
    pub killed: bool,
    /// The trace that killed it and the class of its first failing divergence.
    pub by: Option<String>,
    pub class: Option<DivergenceClass>,
}

/// One row of the mutant table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutantRow {
    pub mutant: String,
    pub description: String,
    pub strategy: Strategy,
    /// Per traffic kind.
    pub results: Vec<MutantResult>,
    /// Why the mutant was not run, when it does not apply to this NF.
    pub skipped: Option<String>,
}

impl MutantRow {
    /// Killed by at least one kind of traffic.
    pub fn killed(&self) -> bool {
        self.results.iter().any(|r| r.killed)
    }
}

/// The whole verification report of one NF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub version: u32,
    pub nf: String,
    /// Whether envelope divergences count as failures.
    pub strict: bool,
    pub sources: Vec<SourceReport>,
    /// Every run: the generated `seq` against the interpreter first, then each parallel
    /// strategy against the sequential reference.
    pub strategies: Vec<StrategyReport>,
    pub proof: ProofSection,
    pub coverage: Option<Coverage>,
    pub mutants: Vec<MutantRow>,
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn new(nf: impl Into<String>, strict: bool) -> VerifyReport {
        VerifyReport {
            schema: SCHEMA.to_string(),
            version: VERSION,
            nf: nf.into(),
            strict,
            sources: Vec::new(),
            strategies: Vec::new(),
            proof: ProofSection::default(),
            coverage: None,
            mutants: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The verdict over the ordinary (non-mutant) runs.
    pub fn verdict(&self) -> Verdict {
        self.strategies
            .iter()
            .filter(|s| s.mutant.is_none())
            .fold(Verdict::Equivalent, |v, s| v.worst(s.verdict))
    }

    /// The process exit code: [`EXIT_DIVERGES`] if an ordinary run fails (envelopes count
    /// under `strict`) or a mutant survived every traffic it was run with, else
    /// [`EXIT_EQUIVALENT`]. Input errors ([`EXIT_INPUT_ERROR`]) never reach a report.
    pub fn exit_code(&self) -> i32 {
        let failing = self
            .strategies
            .iter()
            .filter(|s| s.mutant.is_none())
            .any(|s| s.fails(self.strict));
        let survivor = self
            .mutants
            .iter()
            .any(|m| m.skipped.is_none() && !m.killed());
        if failing || survivor {
            EXIT_DIVERGES
        } else {
            EXIT_EQUIVALENT
        }
    }

    /// The complete JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    pub fn from_json(text: &str) -> Result<VerifyReport, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The text report: a summary line, one line per run, then at most
    /// `max_divergences` divergences per failing run (each one line), the proof and
    /// coverage lines and the mutant table.
    pub fn render_text(&self, max_divergences: usize) -> String {
        let mut out = String::new();
        let packets: u64 = self.sources.iter().map(|s| s.packets).sum();
        let refused: u64 = self.sources.iter().map(|s| s.refused).sum();
        let _ = writeln!(
            out,
            "verify {}: {} source(s), {} packets{}, {} run(s): {}",
            self.nf,
            self.sources.len(),
            packets,
            if refused > 0 {
                format!(" ({refused} capture records refused)")
            } else {
                String::new()
            },
            self.strategies.len(),
            self.verdict().name()
        );
        for s in &self.sources {
            if s.refused > 0 {
                let reason = s.refused_reasons.first().map(String::as_str).unwrap_or("");
                let _ = writeln!(
                    out,
                    "  {}: {} records refused, first: {reason}",
                    s.name, s.refused
                );
            }
        }
        for run in &self.strategies {
            let _ = writeln!(out, "  {}", run.one_line());
            let mut shown = 0;
            for d in &run.divergences {
                if shown >= max_divergences {
                    break;
                }
                let _ = writeln!(out, "      {}", d.one_line());
                shown += 1;
            }
            if run.failures > shown as u64 {
                let _ = writeln!(
                    out,
                    "      ... {} more (see --json)",
                    run.failures - shown as u64
                );
            }
            for c in run.counts.iter().filter(|c| c.class.is_envelope()) {
                let _ = writeln!(
                    out,
                    "      envelope {} x{}, first: {}",
                    c.class.name(),
                    c.count,
                    c.first.one_line()
                );
            }
        }
        if !self.proof.objects.is_empty() {
            let proved: Vec<&str> = self
                .proof
                .objects
                .iter()
                .filter(|o| o.status == ProofStatus::Proved)
                .map(|o| o.object.as_str())
                .collect();
            let tested: Vec<String> = self
                .proof
                .objects
                .iter()
                .filter(|o| matches!(o.status, ProofStatus::TestedOnly | ProofStatus::Refuted))
                .map(|o| format!("{} ({})", o.object, o.reason))
                .collect();
            let _ = writeln!(
                out,
                "  proof: co-location proved by Z3 for [{}]; tested only: [{}]",
                proved.join(", "),
                tested.join("; ")
            );
        }
        if let Some(c) = &self.coverage {
            let _ = writeln!(
                out,
                "  path coverage: {}/{} feasible paths ({:.0}%)",
                c.exercised_paths,
                c.feasible_paths,
                c.percent()
            );
            for (id, why) in &c.uncovered {
                let _ = writeln!(out, "      path {id} not reached: {why}");
            }
        }
        if !self.mutants.is_empty() {
            let kinds: Vec<SourceKind> = {
                let mut k: Vec<SourceKind> = self
                    .mutants
                    .iter()
                    .flat_map(|m| m.results.iter().map(|r| r.source))
                    .collect();
                k.sort();
                k.dedup();
                k
            };
            let header: Vec<String> = kinds
                .iter()
                .map(|k| format!("  {:<22}", k.name()))
                .collect();
            let _ = writeln!(
                out,
                "  mutants ({} killed of {}):",
                self.mutants.iter().filter(|m| m.killed()).count(),
                self.mutants.iter().filter(|m| m.skipped.is_none()).count()
            );
            let _ = writeln!(out, "    {:<40}{}", "", header.join(""));
            for m in &self.mutants {
                if let Some(why) = &m.skipped {
                    let _ = writeln!(out, "    {:<40} skipped: {why}", m.mutant);
                    continue;
                }
                let cells: Vec<String> = kinds
                    .iter()
                    .map(|k| {
                        let cell = match m.results.iter().find(|r| r.source == *k) {
                            None => "-".to_string(),
                            Some(r) if r.killed => {
                                format!("killed({})", r.class.map_or("?", DivergenceClass::name))
                            }
                            Some(_) => "SURVIVED".to_string(),
                        };
                        format!("  {cell:<22}")
                    })
                    .collect();
                let _ = writeln!(out, "    {:<40}{}", truncate(&m.mutant, 39), cells.join(""));
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        out
    }

    /// Kill rate per traffic kind: (killed, run) over the mutants that apply.
    pub fn kill_rates(&self) -> BTreeMap<SourceKind, (usize, usize)> {
        let mut rates: BTreeMap<SourceKind, (usize, usize)> = BTreeMap::new();
        for m in self.mutants.iter().filter(|m| m.skipped.is_none()) {
            for r in &m.results {
                let e = rates.entry(r.source).or_default();
                e.1 += 1;
                if r.killed {
                    e.0 += 1;
                }
            }
        }
        rates
    }
}
