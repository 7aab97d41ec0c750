//! `maestro verify`: the whole check of one NF.
//!
//! 1. Load and analyze the NF, solve its RSS configuration for the requested cores, and
//!    build the generated binary (cached).
//! 2. Collect the traffic: captures (every record accounted for), a synthetic trace when
//!    nothing else is given, and with `--adversarial` the generated families
//!    ([`crate::adversarial`]), property-based random traces and one sequence per
//!    feasible path ([`crate::paths`]).
//! 3. Per source: the reference interpreter (in a thread, while the binaries run, two
//!    at a time), the generated `seq` against it bit for bit, then each parallel strategy
//!    on real threads and under deterministic seeded schedules, compared by
//!    [`crate::compare::compare_run`].
//! 4. The first failing divergence of each run is minimized by delta debugging and
//!    written as a pcapng counterexample to `--out-dir`.
//! 5. The Z3 co-location proof, path coverage, and with `--mutants` the self-test.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use maestro_analyzer::{Analysis, AnalyzeOptions, NfProgram};
use maestro_build::Builder;
use maestro_generator::GenOptions;
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_rss::{export, solve, z3check, RssConfig, SolveOptions};
use maestro_runtime::capture::{CaptureItem, CaptureReader, DeviceMap, PortAssigner};
use maestro_runtime::exec::nic::NicConfig;
use maestro_runtime::exec::wire::{write_packets, RecordRun};
use maestro_runtime::exec::Strategy;
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};
use proptest::strategy::{Strategy as _, ValueTree};

use crate::adversarial::{self, AdversarialContext, Steering};
use crate::binary::{BinaryError, GeneratedBinary, RecordRequest, RunningRecord};
use crate::compare::{
    compare_run_early, compare_run_outputs, level_for, outputs_are_compared_alone, CompareCtx,
    EarlyChecks, Flows, Renamed, RunData, StateObject,
};
use crate::minimize::{minimize, write_counterexample, MinimizeOptions};
use crate::mutants::{self, MutantInput, MutantKind};
use crate::paths;
use crate::reference::CompactReference;
use crate::report::{
    ConstraintProof, Coverage, Divergence, DivergenceClass, MutantResult, MutantRow, ObjectProof,
    ProofStatus, SourceKind, SourceReport, StrategyReport, VerifyReport,
};

/// Why verification could not run (as opposed to finding divergences).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Load(#[from] maestro_analyzer::LoadError),
    #[error("cannot analyze the NF: {0}")]
    Analyze(#[from] maestro_analyzer::AnalysisError),
    #[error("cannot solve an RSS configuration: {0}")]
    Rss(#[from] maestro_rss::SolveError),
    #[error(transparent)]
    Binary(#[from] BinaryError),
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("cannot start the reference interpreter: {0}")]
    Interpreter(String),
    #[error("cannot compare: {0}")]
    Compare(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Generated binaries running at once while the checker checks one source (besides the
/// interpreter thread): the `seq` binary and the first parallel run overlap, and a
/// machine with two cores is busy without drowning in processes.
const IN_FLIGHT: usize = 2;

/// Deterministic schedules tried per trace against a runtime (lock protocol) mutant.
const MUTANT_SCHEDULES: u64 = 8;

/// What to verify and how.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub nf: PathBuf,
    pub overrides: Vec<(String, String)>,
    pub pcaps: Vec<PathBuf>,
    /// How capture packets get their input port (`auto`, `flow`, ...).
    pub device_map: String,
    pub adversarial: bool,
    /// Random traces run with `--adversarial`.
    pub random_traces: u32,
    /// Parallel strategies to check (invalid ones for the NF are skipped with a note).
    pub strategies: Vec<Strategy>,
    pub cores: usize,
    /// Deterministic schedules per run, besides real threads.
    pub seeds: u64,
    pub strict: bool,
    /// Where counterexamples go (none written without it).
    pub out_dir: Option<PathBuf>,
    pub mutants: bool,
    pub parse_mode: ParseMode,
    /// Scratch folder for packet and record files.
    pub work_dir: PathBuf,
    pub seed: u64,
}

impl VerifyOptions {
    pub fn new(nf: impl Into<PathBuf>) -> VerifyOptions {
        VerifyOptions {
            nf: nf.into(),
            overrides: Vec::new(),
            pcaps: Vec::new(),
            device_map: "auto".into(),
            adversarial: false,
            random_traces: 32,
            strategies: vec![Strategy::Sn, Strategy::Locks, Strategy::Tm],
            cores: 2,
            seeds: 3,
            strict: false,
            out_dir: None,
            mutants: false,
            parse_mode: ParseMode::Strict,
            work_dir: default_work_dir(),
            seed: 1,
        }
    }
}

/// The default scratch folder: in `/dev/shm` when `TMPDIR` names no other place and it
/// has room (2 GiB free), else in the temporary directory.
///
/// Packet and record files are written once and read once or twice; on a RAM-backed
/// file system the kernel does a third of the work a disk file system's bookkeeping
/// costs (74 MB written: 0.04 CPU-s on tmpfs, 0.13 on ext4). Small `/dev/shm`s (64 MiB
/// in a default Docker container) are skipped rather than filled.
fn default_work_dir() -> PathBuf {
    const NEEDED: u64 = 2 << 30;
    let name = format!("maestro-verify-{}", std::process::id());
    let shm = Path::new("/dev/shm");
    if std::env::var_os("TMPDIR").is_none() && free_bytes(shm).is_some_and(|b| b >= NEEDED) {
        shm.join(name)
    } else {
        std::env::temp_dir().join(name)
    }
}

/// Bytes an unprivileged process may still write under `dir` (None: unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the plain struct it is given, from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // Both fields are 64 bits here and 32 on some other targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

/// One traffic source with its packets.
#[derive(Clone, Debug)]
pub struct Source {
    pub report: SourceReport,
    pub packets: Vec<InputPacket>,
}

/// The prepared verification of one NF.
pub struct Verifier {
    opts: VerifyOptions,
    program: NfProgram,
    analysis: Analysis,
    rss: RssConfig,
    rss_path: PathBuf,
    /// The NIC configuration of `locks`/`tm` runs: Microsoft's key over 4-tuples, which
    /// does not co-locate anything, so packets that share state meet on different cores
    /// (what a lock protocol must get right).
    spread_path: PathBuf,
    nic: NicConfig,
    binary: GeneratedBinary,
    /// Builds the generator mutants' binaries into the same cache as `binary`.
    builder: Builder,
    state: Vec<StateObject>,
    renamed: Vec<Renamed>,
    /// Status lines for the user (progress).
    progress: Box<dyn Fn(&str) + Send + Sync>,
    /// Whether real-thread runs pin their workers: only when the threads that run at
    /// once (see [`threads_at_once`]) fit the machine's CPUs.
    pin_threads: bool,
}

/// The most threads that run at once while a source is checked: the interpreter, and the
/// workers of the [`IN_FLIGHT`] widest binaries (`seq` has one; a parallel run `cores`).
fn threads_at_once(cores: usize) -> usize {
    1 + 1 + (IN_FLIGHT - 1) * cores
}

fn parse_mode_name(mode: ParseMode) -> &'static str {
    match mode {
        ParseMode::Strict => "strict",
        ParseMode::MaestroCompat => "compat",
    }
}

/// The reference interpreter's observations of `packets` (from a fresh NF), stored
/// compactly: what the checker keeps for a whole source.
pub fn compact_reference(
    program: &NfProgram,
    mode: ParseMode,
    packets: &[InputPacket],
) -> Result<CompactReference, VerifyError> {
    let mut interp = Interpreter::new(
        program,
        InterpOptions {
            parse_mode: mode,
            ..InterpOptions::default()
        },
    )
    .map_err(|e| VerifyError::Interpreter(e.to_string()))?;
    let mut out = CompactReference::with_capacity(packets.len());
    let mut frame = Vec::new();
    for p in packets {
        let sent = interp.process_into(p, &mut frame);
        out.push_action(&p.data, sent, &frame);
    }
    Ok(out)
}

/// A source's reference as the comparisons use it: compact, and as whole observations
/// only once an oracle needs them (made at most once per source).
struct Expected<'s> {
    compact: CompactReference,
    inputs: &'s [InputPacket],
    whole: std::sync::OnceLock<Vec<Observation>>,
}

impl<'s> Expected<'s> {
    fn new(compact: CompactReference, inputs: &'s [InputPacket]) -> Expected<'s> {
        Expected {
            compact,
            inputs,
            whole: std::sync::OnceLock::new(),
        }
    }

    fn observations(&self) -> &[Observation] {
        self.whole
            .get_or_init(|| self.compact.observations(self.inputs))
    }
}

/// Reads a capture as the NF's input: ports from the device map, time clamped so it
/// never runs backwards; refused records counted with their first reasons.
pub fn read_capture(
    path: &Path,
    device_map: &str,
    program: &NfProgram,
) -> Result<Source, VerifyError> {
    let map: DeviceMap = device_map.parse().map_err(|e| VerifyError::Input {
        path: path.to_path_buf(),
        reason: format!("--device-map {device_map}: {e}"),
    })?;
    let reader = CaptureReader::open(path).map_err(|e| VerifyError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let lan = program.device_port("lan").unwrap_or(0);
    let wan = program
        .device_port("wan")
        .unwrap_or(if program.port_count > 1 { 1 } else { 0 });
    let mut assigner = PortAssigner::new(map, lan, wan);
    let mut packets = Vec::new();
    let (mut refused, mut reasons) = (0u64, Vec::new());
    let mut clock = 0u64;
    for item in reader {
        let record = match item {
            CaptureItem::Packet(r) => r,
            CaptureItem::Refused(r) => {
                refused += 1;
                if reasons.len() < 5 {
                    reasons.push(format!(
                        "record {} at byte {}: {}",
                        r.index, r.byte_offset, r.reason
                    ));
                }
                continue;
            }
        };
        match assigner.assign(&record) {
            Ok(port) if port < program.port_count => {
                clock = clock.max(record.time_ns);
                packets.push(InputPacket {
                    port,
                    time_ns: clock,
                    data: record.data,
                });
            }
            Ok(port) => {
                refused += 1;
                if reasons.len() < 5 {
                    reasons.push(format!(
                        "record {}: input port {port} does not exist; choose another --device-map",
                        record.index
                    ));
                }
            }
            Err(reason) => {
                refused += 1;
                if reasons.len() < 5 {
                    reasons.push(format!("record {}: {reason}", record.index));
                }
            }
        }
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Source {
        report: SourceReport {
            name: format!("capture:{name}"),
            kind: SourceKind::Capture,
            purpose: format!("the capture {}", path.display()),
            packets: packets.len() as u64,
            refused,
            refused_reasons: reasons,
        },
        packets,
    })
}

/// The synthetic trace used when no traffic is named: 20,000 packets of 500 flows,
/// half replies, from the traffic generator.
pub fn synthetic(program: &NfProgram, seed: u64) -> Source {
    let lan = program.device_port("lan").unwrap_or(0);
    let wan = program
        .device_port("wan")
        .unwrap_or(if program.port_count > 1 { 1 } else { 0 });
    let config = maestro_trafficgen::TraceConfig {
        packets: 20_000,
        seed,
        reply_ratio: 0.5,
        lan_port: lan,
        wan_port: wan,
        ..maestro_trafficgen::TraceConfig::default()
    };
    let config = maestro_trafficgen::TraceConfig {
        flows: maestro_trafficgen::FlowSpec {
            count: 500,
            ..config.flows.clone()
        },
        ..config
    };
    let packets: Vec<InputPacket> = match maestro_trafficgen::TraceGen::new(config) {
        Ok(gen) => gen.collect(),
        Err(_) => Vec::new(),
    };
    Source {
        report: SourceReport {
            name: format!("synthetic:seed-{seed}"),
            kind: SourceKind::Synthetic,
            purpose: "500 TCP/UDP flows with replies from the traffic generator".into(),
            packets: packets.len() as u64,
            refused: 0,
            refused_reasons: Vec::new(),
        },
        packets,
    }
}

impl Verifier {
    /// Loads, analyzes, solves and builds.
    ///
    /// `progress` receives short status lines (what is being run).
    pub fn prepare(
        opts: VerifyOptions,
        builder: &Builder,
        progress: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Verifier, VerifyError> {
        let program = maestro_analyzer::load_nf(&opts.nf, &opts.overrides)?;
        // Refuse unreadable captures before the (possibly long) build.
        for p in &opts.pcaps {
            if let Err(e) = std::fs::metadata(p) {
                return Err(VerifyError::Input {
                    path: p.clone(),
                    reason: format!("cannot read the capture ({e}); check the path"),
                });
            }
        }
        progress("analyzing");
        let analysis = maestro_analyzer::analyze_with(&program, &AnalyzeOptions::default())?;
        let rss = solve(
            &analysis,
            &SolveOptions {
                cores: opts.cores,
                seed: opts.seed,
                ..SolveOptions::default()
            },
        )?;
        std::fs::create_dir_all(&opts.work_dir).map_err(|source| VerifyError::Io {
            path: opts.work_dir.clone(),
            source,
        })?;
        let rss_path = opts.work_dir.join("rss.json");
        let rss_json = export::json(&rss);
        std::fs::write(&rss_path, &rss_json).map_err(|source| VerifyError::Io {
            path: rss_path.clone(),
            source,
        })?;
        let nic = NicConfig::from_json(&rss_json).map_err(|e| VerifyError::Input {
            path: rss_path.clone(),
            reason: e.to_string(),
        })?;
        let spread_path = opts.work_dir.join("spread.json");
        let spread = adversarial::locks_nic(&program, opts.cores);
        let spread_json = serde_json::to_string(&spread).map_err(|e| VerifyError::Input {
            path: spread_path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&spread_path, spread_json).map_err(|source| VerifyError::Io {
            path: spread_path.clone(),
            source,
        })?;
        progress("building the generated code");
        let binary = GeneratedBinary::build(builder, &program, &GenOptions::default())?;
        let state = StateObject::from_program(&program, &analysis);
        let renamed = binary
            .info
            .renamed
            .iter()
            .map(|r| Renamed {
                out_field: r.out_field.clone(),
                in_field: r.in_field.clone(),
                in_ports: r.in_ports.clone(),
            })
            .collect();
        let pin_threads = threads_at_once(opts.cores)
            <= std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Verifier {
            opts,
            program,
            analysis,
            rss,
            rss_path,
            spread_path,
            nic,
            binary,
            builder: builder.clone(),
            state,
            renamed,
            progress,
            pin_threads,
        })
    }

    /// The loaded NF (after `--set`).
    pub fn program(&self) -> &NfProgram {
        &self.program
    }

    fn ctx(&self) -> CompareCtx<'_> {
        CompareCtx {
            program: &self.program,
            state: self.state.clone(),
            renamed: self.renamed.clone(),
            parse_mode: self.opts.parse_mode,
        }
    }

    /// The strategies that apply to this NF, with notes for those that do not.
    pub fn strategies(&self, notes: &mut Vec<String>) -> Vec<Strategy> {
        let sn_ok = self.analysis.verdict.strategy == "shared-nothing";
        let mut out = Vec::new();
        for &s in &self.opts.strategies {
            match s {
                Strategy::Seq => {}
                Strategy::Sn if !sn_ok => notes.push(format!(
                    "sn skipped: the analysis says `{}`: {}",
                    self.analysis.verdict.strategy, self.analysis.verdict.summary
                )),
                _ => out.push(s),
            }
        }
        out
    }

    /// Every traffic source of this verification.
    pub fn sources(&self, notes: &mut Vec<String>) -> Result<Vec<Source>, VerifyError> {
        let mut out = Vec::new();
        for p in &self.opts.pcaps {
            (self.progress)(&format!("reading {}", p.display()));
            out.push(read_capture(p, &self.opts.device_map, &self.program)?);
        }
        if self.opts.pcaps.is_empty() && !self.opts.adversarial {
            out.push(synthetic(&self.program, self.opts.seed));
        }
        if self.opts.adversarial {
            out.extend(self.adversarial_sources(notes)?);
        }
        Ok(out)
    }

    fn adversarial_sources(&self, notes: &mut Vec<String>) -> Result<Vec<Source>, VerifyError> {
        (self.progress)("generating adversarial traffic");
        let steering = Steering::from_rss(&self.rss);
        let ctx = AdversarialContext {
            program: &self.program,
            analysis: &self.analysis,
            steering: Some(&steering),
            cores: self.opts.cores,
            seed: self.opts.seed,
            parse_mode: self.opts.parse_mode,
        };
        let mut out = Vec::new();
        let traces =
            adversarial::generate(&ctx).map_err(|e| VerifyError::Interpreter(e.to_string()))?;
        for t in traces {
            out.push(Source {
                report: SourceReport {
                    name: format!("adversarial:{}", t.name),
                    kind: SourceKind::Adversarial,
                    purpose: t.purpose,
                    packets: t.packets.len() as u64,
                    refused: 0,
                    refused_reasons: Vec::new(),
                },
                packets: t.packets,
            });
        }
        match paths::path_traffic(&self.program, &self.analysis, self.opts.seed) {
            Ok(report) => {
                for t in report.traffic {
                    out.push(Source {
                        report: SourceReport {
                            name: format!("paths:path-{}", t.path),
                            kind: SourceKind::Paths,
                            // A sequence found with small `--set` values is still run
                            // (its prefix exercises the NF as loaded), but says so.
                            purpose: if t.overrides.is_empty() {
                                format!("reaches feasible path {}", t.path)
                            } else {
                                let set: Vec<String> =
                                    t.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                                format!(
                                    "the sequence that reaches feasible path {} with --set {}; with the configuration as loaded it may take others",
                                    t.path,
                                    set.join(" ")
                                )
                            },
                            packets: t.packets.len() as u64,
                            refused: 0,
                            refused_reasons: Vec::new(),
                        },
                        packets: t.packets,
                    });
                }
                for u in report.uncovered {
                    notes.push(format!(
                        "path {} not reached by generated traffic: {}",
                        u.path.id, u.reason
                    ));
                }
            }
            Err(e) => notes.push(format!("path traffic unavailable: {e}")),
        }
        out.extend(self.random_sources());
        Ok(out)
    }

    fn random_sources(&self) -> Vec<Source> {
        let params = adversarial::random::Params::for_program(&self.program, self.opts.parse_mode);
        let strategy = adversarial::random::trace_strategy(params);
        let mut runner = adversarial::random::runner(self.opts.random_traces, self.opts.seed);
        let mut out = Vec::new();
        for i in 0..self.opts.random_traces {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                break;
            };
            let packets = tree.current();
            out.push(Source {
                report: SourceReport {
                    name: format!("random:{i}"),
                    kind: SourceKind::Random,
                    purpose: "a property-based random trace (flows, replies, fragments, ICMP, \
                              time steps around the ttl)"
                        .into(),
                    packets: packets.len() as u64,
                    refused: 0,
                    refused_reasons: Vec::new(),
                },
                packets,
            });
        }
        out
    }

    fn request(&self, strategy: Strategy, seed: Option<u64>) -> RecordRequest {
        let cores = if strategy == Strategy::Seq {
            1
        } else {
            self.opts.cores
        };
        RecordRequest {
            strategy,
            cores,
            seed,
            pin: self.pin_threads,
            rss: match strategy {
                Strategy::Seq => None,
                Strategy::Sn => Some(self.rss_path.clone()),
                Strategy::Locks | Strategy::Tm => Some(self.spread_path.clone()),
            },
            instrument: strategy == Strategy::Sn,
            mutant: None,
            no_rename: false,
            parse_mode: parse_mode_name(self.opts.parse_mode),
        }
    }

    /// Runs `req` over the expected run's inputs and compares it with the reference.
    fn check_run(
        &self,
        binary: &GeneratedBinary,
        expected: &Expected<'_>,
        req: &RecordRequest,
    ) -> Result<Vec<Divergence>, VerifyError> {
        let packets = expected.inputs;
        let file = binary.record_packets(packets, &self.opts.work_dir, req)?;
        let flows = Flows::of(packets, self.opts.parse_mode);
        let early = self.early_checks(packets, &flows, req, &file);
        self.compare_file(expected, req, &file, early)
    }

    /// The run as [`crate::compare::compare_run`] sees it, with `observations`.
    fn run_data<'r>(
        req: &RecordRequest,
        file: &'r RecordRun<'_>,
        observations: &'r [Observation],
    ) -> RunData<'r> {
        RunData {
            strategy: req.strategy,
            cores: req.cores,
            observations,
            records: &file.records,
            translations: &file.translations,
            access_logs: &file.trailer.access_logs,
        }
    }

    /// The checks that need no reference ([`compare_run_early`]), run as soon as the
    /// record file is read.
    fn early_checks<'p>(
        &self,
        packets: &'p [InputPacket],
        flows: &Flows,
        req: &RecordRequest,
        file: &RecordRun<'_>,
    ) -> EarlyChecks<'p> {
        compare_run_early(&self.ctx(), packets, flows, &Self::run_data(req, file, &[]))
    }

    /// The rest of [`crate::compare::compare_run`]: the run's outputs against the reference.
    fn compare_file(
        &self,
        expected: &Expected<'_>,
        req: &RecordRequest,
        file: &RecordRun<'_>,
        early: EarlyChecks<'_>,
    ) -> Result<Vec<Divergence>, VerifyError> {
        let ctx = self.ctx();
        let all_equal = expected.compact.matches_run(expected.inputs, file);
        if all_equal && outputs_are_compared_alone(&ctx, req.strategy) {
            return Ok(early.into_divergences());
        }
        let reference = expected.observations();
        // Observations are copied out of the file only when one differs from the
        // reference: where all are equal, the reference's values are the run's.
        let copied;
        let observations = if all_equal {
            reference
        } else {
            copied = file.observations();
            &copied[..]
        };
        let run = Self::run_data(req, file, observations);
        compare_run_outputs(&ctx, expected.inputs, reference, &run, early)
            .map_err(|e| VerifyError::Compare(e.to_string()))
    }

    /// Runs every check over one source (the generated `seq` against the interpreter,
    /// then each of `strategies` on threads and the deterministic seeds), appending to
    /// the report.
    ///
    /// Everything that can overlap does: the interpreter runs in a thread of this
    /// process while up to `IN_FLIGHT` generated binaries (separate processes) run
    /// beside it, and each record file is read as soon as its run ends.
    pub fn check_source(
        &self,
        src: &Source,
        strategies: &[Strategy],
        report: &mut VerifyReport,
    ) -> Result<(), VerifyError> {
        (self.progress)(&format!(
            "{}: {} packets",
            src.report.name,
            src.packets.len()
        ));
        let mut requests = vec![self.request(Strategy::Seq, None)];
        for &s in strategies {
            requests.push(self.request(s, None));
            for k in 0..self.opts.seeds {
                requests.push(self.request(s, Some(self.opts.seed.wrapping_add(k))));
            }
        }
        // Every run of this source reads one packet file.
        let packet_file = self.binary.scratch().take(&self.opts.work_dir, "packets");
        let packet_path = packet_file.path();
        let (program, mode) = (&self.program, self.opts.parse_mode);
        let runs = std::thread::scope(|scope| {
            let interp = scope.spawn(move || compact_reference(program, mode, &src.packets));
            write_packets(packet_path, &src.packets)
                .map_err(|e| VerifyError::Input {
                    path: packet_path.to_path_buf(),
                    reason: e.to_string(),
                })
                .and_then(|()| self.run_requests(src, packet_path, &requests, interp))
        })?;
        drop(packet_file);
        for (req, ds) in requests.into_iter().zip(runs) {
            let level = if req.strategy == Strategy::Seq {
                crate::report::Level::Strict
            } else {
                level_for(req.strategy, &self.renamed)
            };
            let mut run = StrategyReport::new(
                req.strategy,
                req.cores,
                req.schedule_name(),
                src.report.name.clone(),
                level,
                src.packets.len() as u64,
            );
            let mut ds = ds;
            if let Some(first) = ds.iter().position(|d| !d.class.is_envelope()) {
                if let Some(path) = self.counterexample(src, &req, &ds[first], &report.nf)? {
                    ds[first].counterexample = Some(path);
                }
            }
            run.extend(ds);
            report.strategies.push(run);
        }
        Ok(())
    }

    /// Runs `requests` over `packet_file` (holding `src`'s packets), at most
    /// `IN_FLIGHT` at once, and compares each with the reference `interp` computes;
    /// the divergences of each request, in order. Runs that end before the reference is
    /// ready wait for it, already read. The interpreter thread is joined on every path.
    fn run_requests<'s>(
        &self,
        src: &'s Source,
        packet_file: &Path,
        requests: &[RecordRequest],
        interp: std::thread::ScopedJoinHandle<'_, Result<CompactReference, VerifyError>>,
    ) -> Result<Vec<Vec<Divergence>>, VerifyError> {
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<CompactReference, VerifyError>>| {
            h.join().unwrap_or_else(|_| {
                Err(VerifyError::Interpreter("the interpreter panicked".into()))
            })
        };
        let mut interp = Some(interp);
        let mut reference: Option<Expected<'s>> = None;
        let mut results: Vec<Option<Vec<Divergence>>> = vec![None; requests.len()];
        let mut waiting: Vec<(usize, RecordRun<'s>, EarlyChecks<'s>)> = Vec::new();
        let mut flight: VecDeque<(usize, RunningRecord)> = VecDeque::new();
        let mut flows: Option<Flows> = None;
        let mut next = 0;
        let outcome = (|| -> Result<(), VerifyError> {
            loop {
                while flight.len() < IN_FLIGHT && next < requests.len() {
                    let req = &requests[next];
                    self.announce(src, req);
                    let running = self.binary.start(packet_file, &self.opts.work_dir, req)?;
                    flight.push_back((next, running));
                    next += 1;
                }
                // While the first runs go: the flows their order checks need.
                let flows =
                    flows.get_or_insert_with(|| Flows::of(&src.packets, self.opts.parse_mode));
                let Some((k, running)) = flight.pop_front() else {
                    return Ok(());
                };
                let file = running.finish(&src.packets)?;
                let early = self.early_checks(&src.packets, flows, &requests[k], &file);
                if reference.is_none() && interp.as_ref().is_some_and(|h| h.is_finished()) {
                    if let Some(h) = interp.take() {
                        reference = Some(Expected::new(join(h)?, &src.packets));
                    }
                }
                match &reference {
                    Some(r) => {
                        results[k] = Some(self.compare_file(r, &requests[k], &file, early)?)
                    }
                    None => waiting.push((k, file, early)),
                }
            }
        })();
        // Unfinished runs (after an error) are killed when dropped.
        drop(flight);
        let joined = interp.map(join);
        outcome?;
        let reference = match (reference, joined) {
            (Some(r), _) => r,
            (None, Some(r)) => Expected::new(r?, &src.packets),
            (None, None) => {
                return Err(VerifyError::Interpreter(
                    "the reference was never computed".into(),
                ))
            }
        };
        for (k, file, early) in waiting {
            results[k] = Some(self.compare_file(&reference, &requests[k], &file, early)?);
        }
        results
            .into_iter()
            .zip(requests)
            .map(|(r, req)| {
                r.ok_or_else(|| {
                    VerifyError::Compare(format!(
                        "the {} run ({}) was never compared",
                        req.strategy.name(),
                        req.schedule_name()
                    ))
                })
            })
            .collect()
    }

    fn announce(&self, src: &Source, req: &RecordRequest) {
        (self.progress)(&format!(
            "{}: {} on {} core(s), {}",
            src.report.name,
            req.strategy.name(),
            req.cores,
            req.schedule_name()
        ));
    }

    /// Minimizes the trace behind `d` and writes it to the out dir.
    fn counterexample(
        &self,
        src: &Source,
        req: &RecordRequest,
        d: &Divergence,
        nf: &str,
    ) -> Result<Option<PathBuf>, VerifyError> {
        let Some(dir) = &self.opts.out_dir else {
            return Ok(None);
        };
        (self.progress)(&format!(
            "{}: minimizing a {} divergence",
            src.report.name,
            d.class.name()
        ));
        let class = d.class;
        let still_fails = |packets: &[InputPacket]| -> bool {
            let Ok(reference) = compact_reference(&self.program, self.opts.parse_mode, packets)
            else {
                return false;
            };
            match self.check_run(&self.binary, &Expected::new(reference, packets), req) {
                Ok(ds) => ds.iter().any(|x| x.class == class),
                Err(_) => false,
            }
        };
        let at = d.packet_index.map(|i| i as usize);
        let min = minimize(
            &src.packets,
            at,
            still_fails,
            MinimizeOptions { max_calls: 300 },
        );
        std::fs::create_dir_all(dir).map_err(|source| VerifyError::Io {
            path: dir.clone(),
            source,
        })?;
        let safe = |s: &str| s.replace([':', '/', ' '], "-");
        let path = dir.join(format!(
            "{nf}-{}-{}-{}-{}.pcapng",
            req.strategy.name(),
            safe(&req.schedule_name()),
            class.name(),
            safe(&src.report.name)
        ));
        write_counterexample(&path, &min.items, self.program.port_count).map_err(|e| {
            VerifyError::Input {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Some(path))
    }

    /// The RSS co-location proof per constraint and per state object.
    fn proof(&self, report: &mut VerifyReport) {
        let sn = self.analysis.verdict.strategy == "shared-nothing";
        match z3check::prove(&self.analysis, &self.rss) {
            Ok(proofs) => {
                for p in &proofs {
                    report.proof.constraints.push(ConstraintProof {
                        constraint: p.constraint.clone(),
                        proved: p.counterexample.is_none(),
                        counterexample: p.counterexample.as_ref().map(|_| p.to_string()),
                    });
                }
                let all = proofs.iter().all(|p| p.counterexample.is_none());
                for o in &self.state {
                    let (status, reason) = if !sn {
                        (
                            ProofStatus::NotNeeded,
                            format!(
                                "the NF runs with shared state ({}): no co-location needed",
                                self.analysis.verdict.strategy
                            ),
                        )
                    } else if o.read_only {
                        (
                            ProofStatus::NotNeeded,
                            "read-only: every core may hold a full copy".to_string(),
                        )
                    } else if proofs.is_empty() {
                        (
                            ProofStatus::NotNeeded,
                            "no constraint: no two packets share an entry across ports".to_string(),
                        )
                    } else if all {
                        (
                            ProofStatus::Proved,
                            format!(
                                "Z3 proved all {} constraint(s) for the solved keys and RETA",
                                proofs.len()
                            ),
                        )
                    } else {
                        (
                            ProofStatus::Refuted,
                            "a constraint has a counterexample pair (see constraints)".to_string(),
                        )
                    };
                    report.proof.objects.push(ObjectProof {
                        object: o.name.clone(),
                        status,
                        reason,
                    });
                }
                report.proof.notes.push(
                    "the proof covers steering (which core a packet reaches); per-core capacity, \
                     expiry timing and the generated code itself are tested, not proved"
                        .into(),
                );
            }
            Err(e) => {
                for o in &self.state {
                    report.proof.objects.push(ObjectProof {
                        object: o.name.clone(),
                        status: ProofStatus::TestedOnly,
                        reason: format!("no proof: {e}"),
                    });
                }
            }
        }
    }

    fn coverage(&self, sources: &[Source], report: &mut VerifyReport) {
        // Each source starts from a fresh NF: coverage is the union over sources.
        let mut total: Option<paths::PathCoverage> = None;
        for s in sources {
            let Ok(c) = paths::coverage(&self.program, &self.analysis, &s.packets) else {
                continue;
            };
            total = Some(match total {
                None => c,
                Some(mut t) => {
                    for (h, x) in t.hit.iter_mut().zip(&c.hit) {
                        *h += x;
                    }
                    t
                }
            });
        }
        if let Some(t) = total {
            let uncovered = t
                .feasible
                .iter()
                .zip(&t.hit)
                .filter(|(_, &h)| h == 0)
                .map(|(p, _)| (p.id, "not exercised by the traffic run".to_string()))
                .collect();
            report.coverage = Some(Coverage {
                feasible_paths: t.feasible.len(),
                exercised_paths: t.covered(),
                uncovered,
            });
        }
    }

    /// The mutant self-test: each built-in bad parallelization against each kind of
    /// traffic.
    fn mutants(&self, sources: &[Source], report: &mut VerifyReport) -> Result<(), VerifyError> {
        let input = MutantInput {
            analysis: &self.analysis,
            renamed: &self.renamed,
            cores: self.opts.cores,
            seed: self.opts.seed,
        };
        let mut mutant_binary: Option<GeneratedBinary> = None;
        for m in mutants::catalog() {
            let mut row = MutantRow {
                mutant: m.name.to_string(),
                description: m.description.to_string(),
                strategy: if m.strategy == Strategy::Sn
                    && self.analysis.verdict.strategy != "shared-nothing"
                {
                    Strategy::Locks
                } else {
                    m.strategy
                },
                results: Vec::new(),
                skipped: m.skip_reason(&self.nic, &input),
            };
            if row.skipped.is_some() {
                report.mutants.push(row);
                continue;
            }
            (self.progress)(&format!("mutant {}", m.name));
            // A generator mutant is wrong code whatever the strategy: on an NF that cannot
            // be shared-nothing it runs under locks instead of an invalid sn run.
            let strategy = if m.strategy == Strategy::Sn
                && self.analysis.verdict.strategy != "shared-nothing"
            {
                Strategy::Locks
            } else {
                m.strategy
            };
            let mut req = self.request(strategy, None);
            let mut binary = &self.binary;
            match m.kind {
                MutantKind::Nic(_) => {
                    let cfg = m
                        .nic(&self.nic, &input)
                        .map_err(|e| VerifyError::Compare(e.to_string()))?;
                    let path = self.opts.work_dir.join(format!("mutant-{}.json", m.name));
                    let text = serde_json::to_string(&cfg)
                        .map_err(|e| VerifyError::Compare(e.to_string()))?;
                    std::fs::write(&path, text).map_err(|source| VerifyError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    req.rss = Some(path);
                }
                MutantKind::Runtime(rm) => {
                    req.mutant = Some(rm.name().to_string());
                    req.seed = Some(self.opts.seed);
                }
                MutantKind::NoRename => req.no_rename = true,
                MutantKind::Generator => {
                    if mutant_binary.is_none() {
                        (self.progress)("building the expiry-off-by-one mutant");
                        mutant_binary = Some(GeneratedBinary::build(
                            &self.builder.clone().with_progress(false),
                            &self.program,
                            &GenOptions {
                                expiry_off_by_one: true,
                            },
                        )?);
                    }
                    if let Some(b) = &mutant_binary {
                        binary = b;
                    }
                }
            }
            for kind in [
                SourceKind::Capture,
                SourceKind::Random,
                SourceKind::Adversarial,
            ] {
                let group: Vec<&Source> = sources
                    .iter()
                    .filter(|s| match kind {
                        SourceKind::Capture => {
                            matches!(s.report.kind, SourceKind::Capture | SourceKind::Synthetic)
                        }
                        SourceKind::Adversarial => {
                            matches!(s.report.kind, SourceKind::Adversarial | SourceKind::Paths)
                        }
                        k => s.report.kind == k,
                    })
                    .collect();
                if group.is_empty() {
                    continue;
                }
                let mut result = MutantResult {
                    source: kind,
                    killed: false,
                    by: None,
                    class: None,
                };
                // A runtime mutant's race shows only under some interleavings: try a few
                // deterministic schedules per trace.
                let schedules: Vec<Option<u64>> = match m.kind {
                    MutantKind::Runtime(_) => (0..MUTANT_SCHEDULES)
                        .map(|k| Some(self.opts.seed.wrapping_add(k)))
                        .collect(),
                    _ => vec![req.seed],
                };
                'traces: for s in group {
                    let reference = Expected::new(
                        compact_reference(&self.program, self.opts.parse_mode, &s.packets)?,
                        &s.packets,
                    );
                    for &seed in &schedules {
                        req.seed = seed;
                        let ds = self.check_run(binary, &reference, &req)?;
                        if let Some(d) = ds.iter().find(|d| !d.class.is_envelope()) {
                            result.killed = true;
                            result.by = Some(s.report.name.clone());
                            result.class = Some(d.class);
                            let mut run = StrategyReport::new(
                                req.strategy,
                                req.cores,
                                req.schedule_name(),
                                s.report.name.clone(),
                                level_for(req.strategy, &self.renamed),
                                s.packets.len() as u64,
                            );
                            run.mutant = Some(m.name.to_string());
                            run.extend(ds.into_iter().take(50));
                            report.strategies.push(run);
                            break 'traces;
                        }
                    }
                }
                row.results.push(result);
            }
            report.mutants.push(row);
        }
        Ok(())
    }

    /// Runs the whole verification.
    pub fn run(&self) -> Result<VerifyReport, VerifyError> {
        let mut report = VerifyReport::new(self.program.name.clone(), self.opts.strict);
        let mut notes = Vec::new();
        let strategies = self.strategies(&mut notes);
        let sources = self.sources(&mut notes)?;
        for s in &sources {
            report.sources.push(s.report.clone());
            self.check_source(s, &strategies, &mut report)?;
        }
        self.proof(&mut report);
        self.coverage(&sources, &mut report);
        if self.opts.mutants {
            self.mutants(&sources, &mut report)?;
        }
        notes.push(
            "locks and tm runs steer with Microsoft's default key (4-tuple), so packets that \
             share state meet on different cores; sn runs use the solved keys"
                .to_string(),
        );
        notes.push(format!(
            "generated binary {} ({})",
            self.binary.built.binary.display(),
            if self.binary.built.cached {
                "cached build"
            } else {
                "built now"
            }
        ));
        report.notes.extend(notes);
        Ok(report)
    }
}

/// Counts of each divergence class over a report's ordinary runs (for summaries).
pub fn class_totals(report: &VerifyReport) -> Vec<(DivergenceClass, u64)> {
    let mut out: Vec<(DivergenceClass, u64)> = Vec::new();
    for run in report.strategies.iter().filter(|r| r.mutant.is_none()) {
        for c in &run.counts {
            match out.iter_mut().find(|(k, _)| *k == c.class) {
                Some((_, n)) => *n += c.count,
                None => out.push((c.class, c.count)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On 2 CPUs the default check (interpreter, `seq`, `sn` on 2 cores at once) has
    /// more threads than CPUs, so it does not pin; 16 CPUs have room for it.
    #[test]
    fn threads_at_once_count_the_interpreter_and_both_binaries() {
        assert_eq!(threads_at_once(2), 4);
        assert_eq!(threads_at_once(8), 10);
        assert!(threads_at_once(2) > 2 && threads_at_once(2) <= 16);
    }

    #[test]
    fn free_space_is_known_for_existing_folders_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }

    /// The default scratch folder is this process's own, in a place that exists.
    #[test]
    fn default_work_dir_is_per_process() {
        let dir = default_work_dir();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert_eq!(name, format!("maestro-verify-{}", std::process::id()));
        assert!(dir.parent().is_some_and(Path::is_dir), "{}", dir.display());
    }
}
