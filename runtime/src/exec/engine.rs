//! The executors: one generated NF run as `seq`, `sn`, `locks` or `tm` over packets the
//! [`NicModel`] steers to cores, on pinned threads or under a deterministic seeded
//! schedule, with one observation and one [`PacketRecord`] per input packet.
//!
//! Semantics (the executor contract every strategy and the equivalence checker rely on):
//! - **Dispatch.** Each core has one FIFO queue per port and processes its packets in
//!   input order: bursts of at most `batch` from one port queue while they are older than
//!   the other ports' heads. `seq` puts everything on core 0 and ignores the steering.
//! - **Locks.** A reader's `now` is `max(time, epoch_now)`; it runs
//!   [`GeneratedNf::process_read`] under its reader token, logging refreshes. On
//!   [`NeedsWrite`] it drops what it logged, takes the write lock, sets
//!   `now = max(time, epoch_now, every core's latest reader now)`, applies every core's
//!   logged refreshes sorted stably by `(now, core)`, runs [`GeneratedNf::process`] (whose
//!   decision counts), bumps the epoch and sets `epoch_now = now`. Readers record the
//!   epoch they saw, writers the one they made; [`commit_order`] sorts by
//!   `(epoch, writer first, now, core, queue_pos)`, and the sequential NF replayed in that
//!   order with the recorded `now`s gives the same observations.
//! - **Tm.** Inside the transaction (or the fallback lock): `now = max(time, last_now)`,
//!   `seq += 1`, `process`; the record's epoch is `seq`.
//! - **Sn.** One instance per core, `now` is the packet time, cores are independent.
//!
//! The threaded and the deterministic schedules run the very same per-packet code
//! ([`Engine::process`] differs only in who picks the next packet), so the deterministic
//! schedule tests the protocol the threads run.
//!
//! That per-packet code is [`SharedNf`] (the state for a strategy and core count) and
//! its [`NfCore`]s (one per core): backends with threads of their own, such as
//! maestro-dpdk's lcores, run the same protocols through them.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::lock::BigReaderLock;
use super::nf::{AccessLog, GeneratedNf, NeedsWrite, Refresh, RefreshLog, Strategy};
use super::nic::NicModel;
use super::rtm::{rtm_status, RtmStatus, TmLock};
use crate::packet::ParseMode;
use crate::rss::RssError;
use crate::state::StateError;
use crate::{InputPacket, Observation};

/// Why an executor could not be set up. Packets never cause errors: every packet gets an
/// observation.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "NIC configuration is not valid JSON for this model: {source}; expected the output of \
         `maestro rss <nf> --format json` (ports with port/key/rss_types, and reta)"
    )]
    NicJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read NIC configuration {path}: {source}; check the path")]
    NicRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NIC configuration {path}: {source}")]
    NicFile {
        path: String,
        #[source]
        source: Box<ExecError>,
    },
    #[error("port {port}: {source}")]
    BadKey {
        port: u16,
        #[source]
        source: RssError,
    },
    #[error(
        "port {port}: RSS key is {len} bytes; NICs take 40 (82599, mlx5) or 52 (i40e, ice) \
         bytes: write 80 or 104 hex digits"
    )]
    KeyLength { port: u16, len: usize },
    #[error(
        "{which} has {size} entries; a RETA size is a power of two between 2 and 65536 \
         (NICs use 128, 512 or 2048)"
    )]
    BadRetaSize { which: String, size: usize },
    #[error(
        "{which}: entry {bucket} sends packets to queue {queue}, but the run has {cores} \
         core(s); solve with --cores N or use NicConfig::with_cores"
    )]
    RetaEntry {
        which: String,
        bucket: usize,
        queue: u16,
        cores: usize,
    },
    #[error("port {port}: unknown RSS hash type `{name}`; known DPDK names: {known}")]
    UnknownRssType {
        port: u16,
        name: String,
        known: String,
    },
    #[error("port {port} is configured twice in the NIC configuration; keep one entry per port")]
    DuplicatePort { port: u16 },
    #[error("a run needs at least one core: use --cores 1 or more")]
    NoCores,
    #[error("batch size 0: the dispatcher needs bursts of at least one packet (DPDK uses 32)")]
    NoBatch,
    #[error(
        "the NIC model steers to {nic} cores but the run has {run}: build the NicModel with \
         the run's core count"
    )]
    CoreMismatch { nic: usize, run: usize },
    #[error("mutant {mutant} applies to the locks strategy only, not {strategy}")]
    MutantStrategy {
        mutant: &'static str,
        strategy: &'static str,
    },
    #[error(
        "mutant {mutant} needs the deterministic schedule: under threads it would write the \
         shared state while other cores read it (a data race, not just a wrong answer)"
    )]
    MutantNeedsDeterministic { mutant: &'static str },
    #[error("cannot allocate the NF's state: {source}")]
    State {
        #[source]
        source: StateError,
    },
}

/// Who decides which core runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// One OS thread per core; `pin` binds worker `c` to CPU `c % available`.
    Threads { pin: bool },
    /// One thread; a splitmix64 generator seeded with `seed` picks, before each packet,
    /// which core with pending packets runs its next one. Reproducible interleavings.
    Deterministic { seed: u64 },
}

/// Deliberately wrong `locks` executors, for the equivalence checker's self-test (it
/// must reject both). Never use them to run an NF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeMutant {
    /// The write re-run happens (state changes as normal), but the packet's observation
    /// is the aborted read pass's bail-out, as in Maestro's generated C (the shadowed
    /// `dst_device`): forward the input frame unchanged to port 1 (drop if it came from
    /// port 1).
    KeepAbortedDecision,
    /// A writing packet runs `process` holding only its reader token, without the
    /// write lock, the refresh drain or an epoch bump, and is recorded as a reader.
    /// Deterministic schedule only.
    ReadLockOnWrite,
}

impl RuntimeMutant {
    pub const ALL: [RuntimeMutant; 2] = [
        RuntimeMutant::KeepAbortedDecision,
        RuntimeMutant::ReadLockOnWrite,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeMutant::KeepAbortedDecision => "keep-aborted-decision",
            RuntimeMutant::ReadLockOnWrite => "read-lock-on-write",
        }
    }

    pub fn parse(text: &str) -> Option<RuntimeMutant> {
        RuntimeMutant::ALL.into_iter().find(|m| m.name() == text)
    }
}

/// How to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub strategy: Strategy,
    pub cores: usize,
    pub schedule: Schedule,
    /// Receive burst size (DPDK's `rte_eth_rx_burst` of 32 in Maestro).
    pub batch: usize,
    /// Count key accesses per core (the `sn` sharding check).
    pub instrument: bool,
    pub mutant: Option<RuntimeMutant>,
    pub parse_mode: ParseMode,
    /// RTM attempts before the fallback lock (Maestro's `HTM_SGL_INIT_BUDGET`).
    pub tm_retries: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Seq,
            cores: 1,
            schedule: Schedule::Threads { pin: true },
            batch: 32,
            instrument: false,
            mutant: None,
            parse_mode: ParseMode::Strict,
            tm_retries: 2,
        }
    }
}

/// What the run did with one packet, for the equivalence checker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PacketRecord {
    /// The core that processed it.
    pub core: u16,
    /// Its position in that core's processing order (counted across chunks).
    pub queue_pos: u64,
    /// `locks`: the epoch a reader saw or a writer made; `tm`: the commit sequence
    /// number; 0 for `seq` and `sn`.
    pub epoch: u64,
    /// `locks`: the packet ran under the write lock; `tm`: always; `seq`/`sn`: never.
    pub wrote: bool,
    /// The time the NF saw (`locks`/`tm` may move it forward to keep time monotone).
    pub now: u64,
    /// The NIC's RSS hash (0 when not hashed).
    pub hash: u32,
}

/// The result of one chunk, in input order: `observations[i]` and `records[i]` belong to
/// the chunk's `i`-th packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkOutput {
    pub observations: Vec<Observation>,
    pub records: Vec<PacketRecord>,
}

/// When the phases of one [`Engine::run_chunk_timed`] chunk ended: the steering of the
/// chunk to cores (serial, the software stand-in for the NIC's RSS) at `dispatched`,
/// every worker's processing (the parallel part, threads joined) at `processed`. The
/// in-order hand-out of the results ([`ChunkResults`]) comes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPhases {
    pub dispatched: Instant,
    pub processed: Instant,
}

/// A hook around each packet, run on the worker right before and after the NF sees it
/// (input renaming for NFs that write values they chose). `index` counts packets across
/// every chunk the engine processed.
pub trait Translator: Send + Sync {
    fn before(&self, index: u64, packet: &mut InputPacket);
    fn after(&self, index: u64, packet: &InputPacket, observation: &Observation);
}

/// Per-core counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreStats {
    pub packets: u64,
    /// `locks`: speculative read-only passes.
    pub read_passes: u64,
    /// `locks`: read passes that needed the write lock.
    pub aborts: u64,
    /// `locks`: packets run under the write lock.
    pub writes: u64,
    /// `tm`: critical sections committed as RTM transactions.
    pub tm_commits: u64,
    /// `tm`: critical sections run under the fallback lock.
    pub tm_fallbacks: u64,
    /// `tm`: aborted transactions.
    pub tm_aborts: u64,
}

impl CoreStats {
    fn add(&mut self, o: &CoreStats) {
        self.packets += o.packets;
        self.read_passes += o.read_passes;
        self.aborts += o.aborts;
        self.writes += o.writes;
        self.tm_commits += o.tm_commits;
        self.tm_fallbacks += o.tm_fallbacks;
        self.tm_aborts += o.tm_aborts;
    }
}

/// Counters over every chunk so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub per_core: Vec<CoreStats>,
    /// Worker threads that could not be pinned (not fatal).
    pub pin_failures: u64,
    /// Chunks processed.
    pub chunks: u64,
}

impl EngineStats {
    /// The sum over cores.
    pub fn total(&self) -> CoreStats {
        let mut t = CoreStats::default();
        for c in &self.per_core {
            t.add(c);
        }
        t
    }
}

/// The commit order π the run followed, as indices into `records`: for `locks` and `tm`,
/// sorted by `(epoch, writer first, now, core, queue_pos)` (for `tm` the epochs are the
/// unique commit numbers); for `seq` and `sn` the input order (`sn` cores are
/// independent, so no interleaving needs explaining).
pub fn commit_order(strategy: Strategy, records: &[PacketRecord]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    if matches!(strategy, Strategy::Locks | Strategy::Tm) {
        order.sort_by_key(|&i| {
            let r = &records[i];
            (r.epoch, !r.wrote, r.now, r.core, r.queue_pos)
        });
    }
    order
}

/// Where the NIC sent each packet of a chunk. Kept by the engine between chunks, so
/// that steering a chunk allocates nothing once the buffers have grown.
#[derive(Clone, Debug, Default)]
struct Steering {
    /// Per packet: its NIC hash.
    hashes: Vec<u32>,
    /// Per packet: its executing core (left empty when one core executes everything).
    cores: Vec<u16>,
    /// Per executing core: the chunk indices of its packets in input order, which is its
    /// processing order (see [`Steering::fill`]).
    orders: Vec<Vec<usize>>,
}

impl Steering {
    /// Steers `packets` to `cores` executing cores (all on core 0 when `cores == 1`).
    ///
    /// A core polls one FIFO queue per port and takes bursts of at most `batch` from the
    /// port whose head arrived first, while they are older than every other port's head:
    /// every burst starts at the oldest packet it has and stops before an older one
    /// elsewhere, so the bursts visit the core's packets in input order whatever
    /// `batch` is. The per-port queues are therefore not built: the order is the core's
    /// packets filtered out of the chunk.
    fn fill(&mut self, nic: &NicModel, cores: usize, packets: &[InputPacket]) {
        self.hashes.clear();
        self.cores.clear();
        self.orders.resize_with(cores, Vec::new);
        for o in &mut self.orders {
            o.clear();
        }
        self.hashes.reserve(packets.len());
        if cores == 1 {
            self.orders[0].extend(0..packets.len());
            self.hashes
                .extend(packets.iter().map(|p| nic.steer(p.port, &p.data).hash));
            return;
        }
        self.cores.reserve(packets.len());
        for (index, p) in packets.iter().enumerate() {
            let steer = nic.steer(p.port, &p.data);
            let core = usize::from(steer.core).min(cores - 1);
            self.hashes.push(steer.hash);
            self.cores.push(core as u16);
            self.orders[core].push(index);
        }
    }

    /// The executing core of chunk packet `index`.
    fn core_of(&self, index: usize) -> usize {
        self.cores.get(index).map_or(0, |&c| usize::from(c))
    }
}

/// A chunk of packets steered to cores: each core's packets in its processing order.
#[derive(Clone, Debug)]
pub struct Dispatched {
    packets: Vec<InputPacket>,
    steering: Steering,
}

impl Dispatched {
    /// Packets in the chunk.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Executing cores (1 for `seq`).
    pub fn cores(&self) -> usize {
        self.steering.orders.len()
    }

    /// Packets queued for `core` (all ports).
    pub fn core_len(&self, core: usize) -> usize {
        self.steering.orders.get(core).map_or(0, Vec::len)
    }

    /// Packets queued for `core` from `port`.
    pub fn queue_len(&self, core: usize, port: u16) -> usize {
        self.steering.orders.get(core).map_or(0, |order| {
            order
                .iter()
                .filter(|&&i| self.packets[i].port == port)
                .count()
        })
    }
}

/// Per-core refresh log on its own cache line.
#[repr(align(128))]
struct LogSlot(UnsafeCell<RefreshLog>);

/// The shared state of `locks`.
struct LocksShared<N> {
    lock: BigReaderLock,
    nf: UnsafeCell<N>,
    logs: Box<[LogSlot]>,
    /// The writer's scratch space for the refresh drain.
    drain: UnsafeCell<Vec<(u64, usize, Refresh)>>,
    epoch: AtomicU64,
    epoch_now: AtomicU64,
}

// SAFETY: the big-reader lock guards every `UnsafeCell` here:
// - `nf`: readers create only `&N`, and only while holding their reader token; `&mut N`
//   is created only while holding the write lock, which excludes every reader token (or,
//   for the `ReadLockOnWrite` mutant, under a reader token in the one-thread
//   deterministic schedule, where no other reference exists; only the engine can set a
//   mutant, and it checks the schedule).
// - `logs[c]`: used by core `c`'s worker while it holds its token, and by a writer while
//   it holds the write lock (no token is held then). Each core has one worker: the
//   only `NfCore` of core `c`, which `SharedNf::cores_mut` hands out once per `&mut`
//   borrow of the state.
// - `drain`: only under the write lock.
// `N: Send + Sync` (a `GeneratedNf` bound) makes sharing `&N` across threads sound.
unsafe impl<N: GeneratedNf> Sync for LocksShared<N> {}

/// The shared state of `tm`.
struct TmState<N> {
    nf: N,
    seq: u64,
    last_now: u64,
}

struct TmShared<N> {
    lock: TmLock,
    state: UnsafeCell<TmState<N>>,
}

// SAFETY: `state` is accessed only inside `TmLock::run`, i.e. inside an RTM transaction
// that reads the fallback lock word (conflicting accesses abort it) or under the
// fallback lock itself; both serialize every access.
unsafe impl<N: GeneratedNf> Sync for TmShared<N> {}

enum State<N> {
    /// `seq` (one instance) or `sn` (one per core).
    Separate(Vec<N>),
    Locks(Box<LocksShared<N>>),
    Tm(Box<TmShared<N>>),
}

/// What one core uses to run packets.
enum Handle<'a, N> {
    Separate(&'a mut N),
    Locks(&'a LocksShared<N>),
    Tm(&'a TmShared<N>),
}

/// What the strategy's protocol did with one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// The NF's decision (for `locks`, the one of the pass that counts).
    pub observation: Observation,
    /// `locks`: the epoch a reader saw or a writer made; `tm`: the commit sequence
    /// number; 0 for `seq` and `sn`. With `wrote` and `now` it places the packet in the
    /// commit order ([`commit_order`]).
    pub epoch: u64,
    /// `locks`: the packet ran under the write lock; `tm`: always; `seq`/`sn`: never.
    pub wrote: bool,
    /// The time the NF saw (`locks`/`tm` move it forward to keep the shared state's
    /// time monotone).
    pub now: u64,
}

/// A generated NF's state for one strategy and core count, with the per-packet
/// protocol of each strategy: one instance (`seq`), one per core (`sn`), one behind the
/// big-reader lock with per-core refresh logs (`locks`), one inside transactions
/// (`tm`).
///
/// It is what every executor runs: the [`Engine`] (threads or a seeded schedule over
/// in-memory chunks) and other backends on their own threads (maestro-dpdk's lcores).
/// [`SharedNf::cores_mut`] hands out one [`NfCore`] per core; each is used by one
/// thread, and the borrow keeps them unique, which is what makes the `locks` protocol's
/// per-core slots sound.
pub struct SharedNf<N: GeneratedNf> {
    strategy: Strategy,
    state: State<N>,
    /// Executing cores (1 for `seq`).
    cores: usize,
    tm_retries: u32,
    mutant: Option<RuntimeMutant>,
}

impl<N: GeneratedNf> SharedNf<N> {
    /// Allocates the NF's state for `strategy` on `cores` cores (`seq` always runs one;
    /// `sn` sizes each core's state with [`GeneratedNf::with_shards`]).
    pub fn new(
        strategy: Strategy,
        cores: usize,
        parse_mode: ParseMode,
    ) -> Result<SharedNf<N>, ExecError> {
        if cores == 0 {
            return Err(ExecError::NoCores);
        }
        let make = |shards: usize| -> Result<N, ExecError> {
            N::with_shards(parse_mode, shards).map_err(|source| ExecError::State { source })
        };
        let (state, executing) = match strategy {
            Strategy::Seq => (State::Separate(vec![make(1)?]), 1),
            Strategy::Sn => (
                State::Separate((0..cores).map(|_| make(cores)).collect::<Result<_, _>>()?),
                cores,
            ),
            Strategy::Locks => (
                State::Locks(Box::new(LocksShared {
                    lock: BigReaderLock::new(cores),
                    nf: UnsafeCell::new(make(1)?),
                    logs: (0..cores)
                        .map(|_| LogSlot(UnsafeCell::new(RefreshLog::default())))
                        .collect(),
                    drain: UnsafeCell::new(Vec::new()),
                    epoch: AtomicU64::new(0),
                    epoch_now: AtomicU64::new(0),
                })),
                cores,
            ),
            Strategy::Tm => (
                State::Tm(Box::new(TmShared {
                    lock: TmLock::new(true),
                    state: UnsafeCell::new(TmState {
                        nf: make(1)?,
                        seq: 0,
                        last_now: 0,
                    }),
                })),
                cores,
            ),
        };
        Ok(SharedNf {
            strategy,
            state,
            cores: executing,
            tm_retries: RunOptions::default().tm_retries,
            mutant: None,
        })
    }

    /// Counts key accesses per core (the `sn` sharding check; see
    /// [`SharedNf::access_logs`]).
    pub fn set_instrumented(&mut self, on: bool) {
        match &mut self.state {
            State::Separate(nfs) => nfs.iter_mut().for_each(|nf| nf.set_instrumented(on)),
            State::Locks(sh) => sh.nf.get_mut().set_instrumented(on),
            State::Tm(sh) => sh.state.get_mut().nf.set_instrumented(on),
        }
    }

    /// RTM attempts before `tm` takes the fallback lock (Maestro's
    /// `HTM_SGL_INIT_BUDGET`; 2 by default).
    pub fn set_tm_retries(&mut self, retries: u32) {
        self.tm_retries = retries;
    }

    /// Installs a deliberately wrong `locks` protocol. Crate-private: the engine checks
    /// that `ReadLockOnWrite` only runs on its one-thread schedule, where writing under
    /// a reader token cannot race.
    fn set_mutant(&mut self, mutant: Option<RuntimeMutant>) {
        self.mutant = mutant;
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Executing cores: 1 for `seq`, the requested count otherwise.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// One handle per executing core, `[c].core() == c`, counters at zero. Each may go
    /// to its own thread; together they borrow the state, so no other handle of the
    /// same core can exist meanwhile.
    pub fn cores_mut(&mut self) -> Vec<NfCore<'_, N>> {
        let (tm_retries, mutant, cores) = (self.tm_retries, self.mutant, self.cores);
        let core = |core, handle| NfCore {
            core,
            handle,
            tm_retries,
            mutant,
            stats: CoreStats::default(),
        };
        match &mut self.state {
            State::Separate(nfs) => nfs
                .iter_mut()
                .enumerate()
                .map(|(c, nf)| core(c, Handle::Separate(nf)))
                .collect(),
            State::Locks(sh) => {
                let sh: &LocksShared<N> = sh;
                (0..cores).map(|c| core(c, Handle::Locks(sh))).collect()
            }
            State::Tm(sh) => {
                let sh: &TmShared<N> = sh;
                (0..cores).map(|c| core(c, Handle::Tm(sh))).collect()
            }
        }
    }

    /// NF faults so far, over every instance.
    pub fn fault_count(&self) -> u64 {
        match &self.state {
            State::Separate(nfs) => nfs.iter().map(GeneratedNf::fault_count).sum(),
            // SAFETY: handles borrow `self` mutably (`cores_mut`); with `&self` none
            // exists, so no core runs and a shared reference cannot race.
            State::Locks(sh) => unsafe { &*sh.nf.get() }.fault_count(),
            State::Tm(sh) => unsafe { &(*sh.state.get()).nf }.fault_count(),
        }
    }

    /// Per-core key-access logs of an instrumented `sn` run (`None` for a core when
    /// instrumentation is off). Empty for the other strategies: the sharding check asks
    /// whether two cores' *private* states saw the same key, and with one instance
    /// (`seq`, `locks`, `tm`) every core touching every key is expected and harmless.
    pub fn access_logs(&self) -> Vec<Option<AccessLog>> {
        match (&self.state, self.strategy) {
            (State::Separate(nfs), Strategy::Sn) => {
                nfs.iter().map(|nf| nf.access_log().cloned()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether `tm` used RTM transactions; [`RtmStatus::NotApplicable`] otherwise.
    pub fn rtm_status(&self) -> RtmStatus {
        match &self.state {
            State::Tm(sh) if sh.lock.uses_rtm() => RtmStatus::Used,
            State::Tm(_) => match rtm_status() {
                RtmStatus::Used => RtmStatus::Unavailable("RTM not used".into()),
                other => other,
            },
            _ => RtmStatus::NotApplicable,
        }
    }
}

/// One core of a [`SharedNf`]: runs packets under the strategy's protocol and counts
/// what the protocol did ([`CoreStats`]).
pub struct NfCore<'a, N> {
    core: usize,
    handle: Handle<'a, N>,
    tm_retries: u32,
    mutant: Option<RuntimeMutant>,
    stats: CoreStats,
}

impl<N: GeneratedNf> NfCore<'_, N> {
    /// The core's index (its `locks` reader slot and refresh log).
    pub fn core(&self) -> usize {
        self.core
    }

    /// Runs `packet` on this core. `locks` and `tm` set `packet.time_ns` to the time the
    /// NF saw ([`Processed::now`]).
    #[inline]
    pub fn process(&mut self, packet: &mut InputPacket) -> Processed {
        self.stats.packets += 1;
        let (observation, epoch, wrote, now) = match &mut self.handle {
            Handle::Separate(nf) => (nf.process(packet), 0, false, packet.time_ns),
            Handle::Locks(sh) => locks_packet(sh, self.core, packet, self.mutant, &mut self.stats),
            Handle::Tm(sh) => {
                let (o, seq, now) = tm_packet(sh, packet, self.tm_retries, &mut self.stats);
                (o, seq, true, now)
            }
        };
        Processed {
            observation,
            epoch,
            wrote,
            now,
        }
    }

    /// [`NfCore::process`] leaving `packet` as it is: `seq`/`sn` run it in place,
    /// `locks`/`tm` (which may move its time) run a copy in `scratch`.
    #[inline]
    pub fn process_ref(&mut self, packet: &InputPacket, scratch: &mut InputPacket) -> Processed {
        if let Handle::Separate(nf) = &mut self.handle {
            self.stats.packets += 1;
            return Processed {
                observation: nf.process(packet),
                epoch: 0,
                wrote: false,
                now: packet.time_ns,
            };
        }
        copy_packet(scratch, packet);
        self.process(scratch)
    }

    /// What the protocol did on this core so far (`packets` counts every packet).
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }
}

/// Per-chunk context shared by the workers.
struct Ctx<'a> {
    translator: Option<&'a dyn Translator>,
    base: u64,
}

/// One processed packet (its chunk index is implied by its core's order).
struct Done {
    observation: Observation,
    record: PacketRecord,
}

/// What a worker reports for one chunk besides its [`Done`]s.
#[derive(Default)]
struct CoreRun {
    stats: CoreStats,
    pin_failed: bool,
}

/// Copies `src` into `dst`, reusing `dst`'s frame buffer (a derived `clone_from`
/// would allocate a new one).
fn copy_packet(dst: &mut InputPacket, src: &InputPacket) {
    dst.port = src.port;
    dst.time_ns = src.time_ns;
    dst.data.clear();
    dst.data.extend_from_slice(&src.data);
}

fn empty_packet() -> InputPacket {
    InputPacket {
        port: 0,
        time_ns: 0,
        data: Vec::new(),
    }
}

/// The observation Maestro's buggy locks code keeps: the read pass's bail-out value,
/// device 1.
fn aborted_decision(packet: &InputPacket) -> Observation {
    if packet.port == 1 {
        Observation::Drop
    } else {
        Observation::Forward {
            port: 1,
            bytes: packet.data.clone(),
        }
    }
}

/// The `locks` protocol for one packet on `core`; returns the observation and
/// `(epoch, wrote, now)`.
fn locks_packet<N: GeneratedNf>(
    sh: &LocksShared<N>,
    core: usize,
    packet: &mut InputPacket,
    mutant: Option<RuntimeMutant>,
    stats: &mut CoreStats,
) -> (Observation, u64, bool, u64) {
    let time = packet.time_ns;
    {
        let guard = sh.lock.read(core);
        let now = time.max(sh.epoch_now.load(Ordering::Relaxed));
        let epoch = sh.epoch.load(Ordering::Relaxed);
        packet.time_ns = now;
        // SAFETY: core `core`'s log, used by its own worker under its token (see
        // `LocksShared`).
        let log = unsafe { &mut *sh.logs[core].0.get() };
        let mark = log.len();
        stats.read_passes += 1;
        // SAFETY: a shared reference under a reader token.
        let read = unsafe { &*sh.nf.get() }.process_read(packet, log);
        match read {
            Ok(observation) => {
                guard.publish_now(now);
                return (observation, epoch, false, now);
            }
            Err(NeedsWrite) => {
                log.truncate(mark);
                stats.aborts += 1;
            }
        }
        if mutant == Some(RuntimeMutant::ReadLockOnWrite) {
            // SAFETY: this mutant is only accepted with the one-thread deterministic
            // schedule (checked in `Engine::new`): no other reference to the NF exists.
            let observation = unsafe { &mut *sh.nf.get() }.process(packet);
            guard.publish_now(now);
            return (observation, epoch, false, now);
        }
    }
    let guard = sh.lock.write();
    let now = time
        .max(sh.epoch_now.load(Ordering::Relaxed))
        .max(guard.max_reader_now());
    // SAFETY: the write lock is held: no reader token is taken, so these are the only
    // references to the NF, the logs and the drain buffer.
    let nf = unsafe { &mut *sh.nf.get() };
    let pending = unsafe { &mut *sh.drain.get() };
    pending.clear();
    for (c, slot) in sh.logs.iter().enumerate() {
        let log = unsafe { &mut *slot.0.get() };
        pending.extend(log.drain().map(|r| (r.now, c, r)));
    }
    // Stable: a core's refreshes keep their log order among equal times.
    pending.sort_by_key(|&(now, c, _)| (now, c));
    for (_, _, r) in pending.iter() {
        nf.apply_refresh(r);
    }
    packet.time_ns = now;
    let mut observation = nf.process(packet);
    let epoch = sh.epoch.load(Ordering::Relaxed) + 1;
    sh.epoch.store(epoch, Ordering::Relaxed);
    sh.epoch_now.store(now, Ordering::Relaxed);
    stats.writes += 1;
    drop(guard);
    if mutant == Some(RuntimeMutant::KeepAbortedDecision) {
        observation = aborted_decision(packet);
    }
    (observation, epoch, true, now)
}

/// The `tm` protocol for one packet; returns the observation and `(seq, now)`.
fn tm_packet<N: GeneratedNf>(
    sh: &TmShared<N>,
    packet: &mut InputPacket,
    retries: u32,
    stats: &mut CoreStats,
) -> (Observation, u64, u64) {
    let time = packet.time_ns;
    let ((observation, seq, now), outcome) = sh.lock.run(retries, || {
        // SAFETY: inside the transaction or the fallback lock (see `TmShared`).
        let st = unsafe { &mut *sh.state.get() };
        let now = time.max(st.last_now);
        st.last_now = now;
        st.seq += 1;
        packet.time_ns = now;
        (st.nf.process(packet), st.seq, now)
    });
    stats.tm_aborts += u64::from(outcome.aborts);
    if outcome.committed {
        stats.tm_commits += 1;
    } else {
        stats.tm_fallbacks += 1;
    }
    (observation, seq, now)
}

/// Runs one packet on `nf`'s core: the translator, the strategy's protocol, the record.
/// `index` is the packet's position in the chunk, `pos` in the core's order.
///
/// The chunk's packets are shared by the workers and left as they are (the record
/// file's frame patches refer to them): a packet that the translator rewrites or whose
/// time the strategy moves is first copied into `scratch`, the worker's own packet.
#[inline]
fn run_packet<N: GeneratedNf>(
    nf: &mut NfCore<'_, N>,
    pos: u64,
    index: usize,
    src: &InputPacket,
    hash: u32,
    ctx: &Ctx<'_>,
    scratch: &mut InputPacket,
) -> Done {
    let global = ctx.base + index as u64;
    let p = match ctx.translator {
        None => nf.process_ref(src, scratch),
        Some(t) => {
            copy_packet(scratch, src);
            t.before(global, scratch);
            let p = nf.process(scratch);
            t.after(global, scratch, &p.observation);
            p
        }
    };
    Done {
        observation: p.observation,
        record: PacketRecord {
            core: u16::try_from(nf.core()).unwrap_or(u16::MAX),
            queue_pos: pos,
            epoch: p.epoch,
            wrote: p.wrote,
            now: p.now,
            hash,
        },
    }
}

/// Where a worker puts each packet it processed, in its core's order.
trait CoreSink: Send {
    /// Hands over packet `src`'s observation and record.
    fn put(&mut self, src: &InputPacket, done: Done);
    /// Room for `n` more packets.
    fn reserve(&mut self, n: usize);
}

impl CoreSink for &mut Vec<Done> {
    #[inline]
    fn put(&mut self, _src: &InputPacket, done: Done) {
        self.push(done);
    }

    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n);
    }
}

/// Turns each observation into bytes on the worker that produced it
/// ([`Engine::run_chunk_encoded`]): the observation (and its frame) is dropped right
/// away on the thread that allocated it, and the caller merges bytes in input order
/// instead of holding a chunk of observations.
pub trait ObservationEncoder: Sync {
    type Error: Send;
    /// What the encoder keeps per core from packet to packet (and chunk to chunk: the
    /// caller keeps the states), used by that core's worker only.
    type State: Default + Send;

    /// Appends the encoding of `observation` to `out`; `input` is the packet as the
    /// chunk holds it (before any input translation).
    fn encode(
        &self,
        state: &mut Self::State,
        input: &InputPacket,
        observation: &Observation,
        out: &mut Vec<u8>,
    ) -> Result<(), Self::Error>;
}

/// One core's encoded results of a chunk (kept by the engine and reused).
#[derive(Debug, Default)]
struct CoreEncoded {
    bytes: Vec<u8>,
    /// Per packet, in the core's order: where its bytes end in `bytes`.
    ends: Vec<usize>,
    records: Vec<PacketRecord>,
}

impl CoreEncoded {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.records.clear();
    }
}

/// The first encoding error of a core: its position in the core's order, and why.
type Failure<E> = Option<(usize, E)>;

struct EncodingSink<'a, E: ObservationEncoder> {
    encoder: &'a E,
    state: &'a mut E::State,
    out: &'a mut CoreEncoded,
    failed: &'a mut Failure<E::Error>,
}

impl<E: ObservationEncoder> CoreSink for EncodingSink<'_, E> {
    #[inline]
    fn put(&mut self, src: &InputPacket, done: Done) {
        if self.failed.is_none() {
            if let Err(e) =
                self.encoder
                    .encode(self.state, src, &done.observation, &mut self.out.bytes)
            {
                *self.failed = Some((self.out.records.len(), e));
            }
        }
        self.out.ends.push(self.out.bytes.len());
        self.out.records.push(done.record);
    }

    fn reserve(&mut self, n: usize) {
        self.out.ends.reserve(n);
        self.out.records.reserve(n);
    }
}

/// A worker's loop over its core's packets (`order`: chunk indices), into `out`.
#[allow(clippy::too_many_arguments)]
fn worker<N: GeneratedNf, S: CoreSink>(
    mut nf: NfCore<'_, N>,
    pos0: u64,
    packets: &[InputPacket],
    order: &[usize],
    hashes: &[u32],
    ctx: &Ctx<'_>,
    pin_cpu: Option<usize>,
    out: &mut S,
) -> CoreRun {
    let mut pin_failed = false;
    if let Some(cpu) = pin_cpu {
        pin_failed = !pin_current_thread(cpu);
    }
    out.reserve(order.len());
    let mut scratch = empty_packet();
    for (k, &i) in order.iter().enumerate() {
        let src = &packets[i];
        let d = run_packet(
            &mut nf,
            pos0 + k as u64,
            i,
            src,
            hashes[i],
            ctx,
            &mut scratch,
        );
        out.put(src, d);
    }
    CoreRun {
        stats: nf.stats().clone(),
        pin_failed,
    }
}

/// The CPUs this process may run on, in order.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Binds the calling thread to `cpu`; false if the OS refused.
#[cfg(target_os = "linux")]
fn pin_current_thread(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: `set` is a plain bit set; sched_setaffinity(0, ...) affects this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_cpu: usize) -> bool {
    false
}

/// splitmix64: a tiny, well-mixed, seedable generator for the deterministic schedule.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A generated NF running under one strategy. State persists across chunks.
pub struct Engine<N: GeneratedNf> {
    nic: NicModel,
    opts: RunOptions,
    translator: Option<Arc<dyn Translator>>,
    nf: SharedNf<N>,
    /// Packets processed so far (the global index of the next chunk's first packet).
    seen: u64,
    /// Per executing core: packets it processed so far.
    queue_pos: Vec<u64>,
    stats: EngineStats,
    rng: SplitMix64,
    cpus: Vec<usize>,
    /// The steering of the chunk being run by [`Engine::run_chunk`] (reused).
    steering: Steering,
    /// Per executing core: its processed packets of the current chunk, in its order.
    /// Kept (emptied) between chunks, so a run of many chunks allocates them once.
    done: Vec<Vec<Done>>,
    /// The same for [`Engine::run_chunk_encoded`].
    encoded: Vec<CoreEncoded>,
}

impl<N: GeneratedNf> Engine<N> {
    /// Allocates the NF's state for the strategy and checks the options.
    pub fn new(nic: NicModel, opts: RunOptions) -> Result<Engine<N>, ExecError> {
        if opts.cores == 0 {
            return Err(ExecError::NoCores);
        }
        if opts.batch == 0 {
            return Err(ExecError::NoBatch);
        }
        if opts.strategy != Strategy::Seq && nic.cores() > opts.cores {
            return Err(ExecError::CoreMismatch {
                nic: nic.cores(),
                run: opts.cores,
            });
        }
        if let Some(m) = opts.mutant {
            if opts.strategy != Strategy::Locks {
                return Err(ExecError::MutantStrategy {
                    mutant: m.name(),
                    strategy: opts.strategy.name(),
                });
            }
            if m == RuntimeMutant::ReadLockOnWrite
                && !matches!(opts.schedule, Schedule::Deterministic { .. })
            {
                return Err(ExecError::MutantNeedsDeterministic { mutant: m.name() });
            }
        }
        let mut nf = SharedNf::new(opts.strategy, opts.cores, opts.parse_mode)?;
        if opts.instrument {
            nf.set_instrumented(true);
        }
        nf.set_tm_retries(opts.tm_retries);
        nf.set_mutant(opts.mutant);
        let executing = nf.cores();
        let seed = match opts.schedule {
            Schedule::Deterministic { seed } => seed,
            Schedule::Threads { .. } => 0,
        };
        Ok(Engine {
            nic,
            translator: None,
            nf,
            seen: 0,
            queue_pos: vec![0; executing],
            stats: EngineStats {
                per_core: vec![CoreStats::default(); executing],
                ..EngineStats::default()
            },
            rng: SplitMix64(seed),
            cpus: allowed_cpus(),
            steering: Steering::default(),
            done: (0..executing).map(|_| Vec::new()).collect(),
            encoded: (0..executing).map(|_| CoreEncoded::default()).collect(),
            opts,
        })
    }

    /// The options the engine runs with.
    pub fn options(&self) -> &RunOptions {
        &self.opts
    }

    /// Sets (or removes) the input renaming hook.
    pub fn set_translator(&mut self, t: Option<Arc<dyn Translator>>) {
        self.translator = t;
    }

    /// Steers a chunk to cores (everything on core 0 for `seq`, whose records still
    /// carry the NIC hash).
    pub fn dispatch(&self, packets: Vec<InputPacket>) -> Dispatched {
        let mut steering = Steering::default();
        steering.fill(&self.nic, self.queue_pos.len(), &packets);
        Dispatched { packets, steering }
    }

    /// Runs a dispatched chunk; the state carries over to the next chunk.
    pub fn process(&mut self, d: Dispatched) -> ChunkOutput {
        self.execute_done(&d.packets, &d.steering);
        collect(ChunkResults {
            done: &mut self.done,
            steering: &d.steering,
            len: d.packets.len(),
        })
    }

    /// [`Engine::dispatch`] then [`Engine::process`].
    pub fn run(&mut self, packets: Vec<InputPacket>) -> ChunkOutput {
        collect(self.run_chunk(&packets))
    }

    /// Runs the next chunk, borrowed (the engine neither keeps nor changes the packets),
    /// and returns its results to take in input order. Steering and per-core buffers are
    /// the engine's own, reused from chunk to chunk.
    pub fn run_chunk(&mut self, packets: &[InputPacket]) -> ChunkResults<'_> {
        let mut steering = std::mem::take(&mut self.steering);
        steering.fill(&self.nic, self.queue_pos.len(), packets);
        self.execute_done(packets, &steering);
        self.steering = steering;
        ChunkResults {
            done: &mut self.done,
            steering: &self.steering,
            len: packets.len(),
        }
    }

    /// [`Engine::run_chunk`], also saying when its phases ended, so that a caller can
    /// time the serial steering apart from the workers (the `run` driver's
    /// `dispatch_seconds` and `nf_seconds`). A separate method so that `run_chunk` and
    /// the record path stay without clock reads.
    pub fn run_chunk_timed(&mut self, packets: &[InputPacket]) -> (ChunkResults<'_>, ChunkPhases) {
        let mut steering = std::mem::take(&mut self.steering);
        steering.fill(&self.nic, self.queue_pos.len(), packets);
        let dispatched = Instant::now();
        self.execute_done(packets, &steering);
        let processed = Instant::now();
        self.steering = steering;
        (
            ChunkResults {
                done: &mut self.done,
                steering: &self.steering,
                len: packets.len(),
            },
            ChunkPhases {
                dispatched,
                processed,
            },
        )
    }

    /// [`Engine::run_chunk`] with each observation encoded by `encoder` on its worker,
    /// right after the NF produced it: what the `record` driver streams into a record
    /// file, without a chunk of observations in between. `states` holds the encoder's
    /// state of each executing core (grown to their number with defaults): pass the
    /// same vector for every chunk of a run.
    pub fn run_chunk_encoded<E: ObservationEncoder>(
        &mut self,
        packets: &[InputPacket],
        encoder: &E,
        states: &mut Vec<E::State>,
    ) -> EncodedResults<'_, E::Error> {
        if states.len() < self.encoded.len() {
            states.resize_with(self.encoded.len(), E::State::default);
        }
        let mut steering = std::mem::take(&mut self.steering);
        steering.fill(&self.nic, self.queue_pos.len(), packets);
        let mut encoded = std::mem::take(&mut self.encoded);
        let mut failed: Vec<Failure<E::Error>> = encoded.iter().map(|_| None).collect();
        {
            let mut sinks: Vec<EncodingSink<'_, E>> = encoded
                .iter_mut()
                .zip(failed.iter_mut())
                .zip(states.iter_mut())
                .map(|((out, failed), state)| {
                    out.clear();
                    EncodingSink {
                        encoder,
                        state,
                        out,
                        failed,
                    }
                })
                .collect();
            self.execute(packets, &steering, &mut sinks);
        }
        self.steering = steering;
        self.encoded = encoded;
        EncodedResults {
            cores: &self.encoded,
            steering: &self.steering,
            failed,
            len: packets.len(),
        }
    }

    /// [`Engine::execute`] into `self.done`.
    fn execute_done(&mut self, packets: &[InputPacket], steering: &Steering) {
        let mut done = std::mem::take(&mut self.done);
        {
            for d in &mut done {
                d.clear();
            }
            let mut sinks: Vec<&mut Vec<Done>> = done.iter_mut().collect();
            self.execute(packets, steering, &mut sinks);
        }
        self.done = done;
    }

    /// Runs every core's packets of a steered chunk into its sink (`sinks[core]`), and
    /// accounts for them.
    fn execute<S: CoreSink>(
        &mut self,
        packets: &[InputPacket],
        steering: &Steering,
        sinks: &mut [S],
    ) {
        let n = packets.len();
        let ctx = Ctx {
            translator: self.translator.as_deref(),
            base: self.seen,
        };
        let work = Work {
            packets,
            steering,
            queue_pos: &self.queue_pos,
            ctx: &ctx,
        };
        let runs = match self.opts.schedule {
            Schedule::Threads { pin } => {
                let cpus = if pin { &self.cpus[..] } else { &[][..] };
                let pin_cpu = |core: usize| {
                    if !pin {
                        None
                    } else if cpus.is_empty() {
                        Some(usize::MAX) // fails: counted as a pin failure
                    } else {
                        Some(cpus[core % cpus.len()])
                    }
                };
                run_threads(&mut self.nf, &work, sinks, pin_cpu)
            }
            Schedule::Deterministic { .. } => {
                run_deterministic(&mut self.nf, &work, sinks, &mut self.rng)
            }
        };
        let mut filled = 0u64;
        for (core, run) in runs.into_iter().enumerate() {
            self.queue_pos[core] += run.stats.packets;
            filled += run.stats.packets;
            self.stats.per_core[core].add(&run.stats);
            self.stats.pin_failures += u64::from(run.pin_failed);
        }
        debug_assert_eq!(filled, n as u64, "every packet is processed exactly once");
        self.seen += n as u64;
        self.stats.chunks += 1;
    }

    /// NF faults so far, over every instance.
    pub fn fault_count(&self) -> u64 {
        self.nf.fault_count()
    }

    /// Per-core key-access logs of an instrumented `sn` run; see
    /// [`SharedNf::access_logs`].
    pub fn access_logs(&self) -> Vec<Option<AccessLog>> {
        self.nf.access_logs()
    }

    /// Whether `tm` used RTM transactions; [`RtmStatus::NotApplicable`] otherwise.
    pub fn rtm_status(&self) -> RtmStatus {
        self.nf.rtm_status()
    }

    /// Counters over every chunk so far.
    pub fn stats(&self) -> EngineStats {
        self.stats.clone()
    }
}

/// A steered chunk, as the workers see it.
struct Work<'a> {
    packets: &'a [InputPacket],
    steering: &'a Steering,
    queue_pos: &'a [u64],
    ctx: &'a Ctx<'a>,
}

/// One scoped thread per core with packets.
fn run_threads<N: GeneratedNf, S: CoreSink>(
    nf: &mut SharedNf<N>,
    work: &Work<'_>,
    sinks: &mut [S],
    pin_cpu: impl Fn(usize) -> Option<usize>,
) -> Vec<CoreRun> {
    let orders = &work.steering.orders;
    let mut cores = nf.cores_mut();
    cores.truncate(orders.len());
    std::thread::scope(|s| {
        let spawned: Vec<_> = cores
            .into_iter()
            .zip(sinks.iter_mut())
            .map(|(nf, out)| {
                let core = nf.core();
                let order = &orders[core][..];
                if order.is_empty() {
                    return None;
                }
                let pin = pin_cpu(core);
                let pos0 = work.queue_pos[core];
                let (packets, hashes, ctx) = (work.packets, &work.steering.hashes[..], work.ctx);
                Some(s.spawn(move || worker(nf, pos0, packets, order, hashes, ctx, pin, out)))
            })
            .collect();
        spawned
            .into_iter()
            .map(|h| match h {
                None => CoreRun::default(),
                Some(h) => match h.join() {
                    Ok(run) => run,
                    // A panic in the NF is a bug in generated code: surface it.
                    Err(payload) => std::panic::resume_unwind(payload),
                },
            })
            .collect()
    })
}

/// One thread; before each packet the generator picks which core with pending packets
/// runs next.
fn run_deterministic<N: GeneratedNf, S: CoreSink>(
    nf: &mut SharedNf<N>,
    work: &Work<'_>,
    sinks: &mut [S],
    rng: &mut SplitMix64,
) -> Vec<CoreRun> {
    let orders = &work.steering.orders;
    let cores = orders.len();
    let mut pending: Vec<std::slice::Iter<'_, usize>> = orders.iter().map(|o| o.iter()).collect();
    let mut nfs = nf.cores_mut();
    nfs.truncate(cores);
    let mut ready: Vec<usize> = Vec::with_capacity(cores);
    let mut scratch = empty_packet();
    for (sink, order) in sinks.iter_mut().zip(orders) {
        sink.reserve(order.len());
    }
    loop {
        ready.clear();
        ready.extend((0..cores).filter(|&c| !pending[c].as_slice().is_empty()));
        if ready.is_empty() {
            break;
        }
        let core = ready[(rng.next() % ready.len() as u64) as usize];
        let (Some(&i), Some(nf)) = (pending[core].next(), nfs.get_mut(core)) else {
            continue;
        };
        let pos = work.queue_pos[core] + nf.stats().packets;
        let src = &work.packets[i];
        let d = run_packet(
            nf,
            pos,
            i,
            src,
            work.steering.hashes[i],
            work.ctx,
            &mut scratch,
        );
        sinks[core].put(src, d);
    }
    nfs.iter()
        .map(|nf| CoreRun {
            stats: nf.stats().clone(),
            pin_failed: false,
        })
        .collect()
}

/// The results of one chunk, handed out in input order by [`ChunkResults::for_each`]
/// (what is not taken is dropped with them).
pub struct ChunkResults<'e> {
    done: &'e mut Vec<Vec<Done>>,
    steering: &'e Steering,
    len: usize,
}

impl ChunkResults<'_> {
    /// Packets in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `sink(i, observation, record)` for the chunk's packets `i = 0, 1, ...` in
    /// input order; stops at the first error.
    pub fn for_each<E>(
        self,
        mut sink: impl FnMut(usize, Observation, PacketRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        if let [only] = &mut self.done[..] {
            for (i, d) in only.drain(..).enumerate() {
                sink(i, d.observation, d.record)?;
            }
            return Ok(());
        }
        // Each core's results are in its order, the input order of its packets: the
        // chunk's order is the merge that follows each packet's core.
        let mut per_core: Vec<std::vec::Drain<'_, Done>> =
            self.done.iter_mut().map(|d| d.drain(..)).collect();
        for i in 0..self.len {
            let Some(d) = per_core
                .get_mut(self.steering.core_of(i))
                .and_then(Iterator::next)
            else {
                debug_assert!(false, "packet {i} was not processed");
                break;
            };
            sink(i, d.observation, d.record)?;
        }
        Ok(())
    }
}

impl Drop for ChunkResults<'_> {
    fn drop(&mut self) {
        for d in self.done.iter_mut() {
            d.clear();
        }
    }
}

/// A chunk's results as vectors.
pub(crate) fn collect(results: ChunkResults<'_>) -> ChunkOutput {
    let mut out = ChunkOutput {
        observations: Vec::with_capacity(results.len()),
        records: Vec::with_capacity(results.len()),
    };
    let _ = results.for_each(|_, o, r| {
        out.observations.push(o);
        out.records.push(r);
        Ok::<(), std::convert::Infallible>(())
    });
    out
}

/// The results of one chunk run by [`Engine::run_chunk_encoded`], handed out in input
/// order by [`EncodedResults::for_each`].
pub struct EncodedResults<'e, Err> {
    cores: &'e [CoreEncoded],
    steering: &'e Steering,
    failed: Vec<Failure<Err>>,
    len: usize,
}

impl<Err> EncodedResults<'_, Err> {
    /// Packets in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `sink(i, encoded, record)` for the chunk's packets `i = 0, 1, ...` in input
    /// order, `encoded` being what the encoder wrote for packet `i`. Stops at the first
    /// error: the sink's, or the encoder's at the packet it failed on.
    pub fn for_each<E: From<Err>>(
        mut self,
        mut sink: impl FnMut(usize, &[u8], &PacketRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut next = vec![0usize; self.cores.len()];
        for i in 0..self.len {
            let c = self.steering.core_of(i);
            let (Some(core), Some(k)) = (self.cores.get(c), next.get_mut(c)) else {
                debug_assert!(false, "packet {i} has no core");
                break;
            };
            if let Some(failed) = self.failed.get_mut(c) {
                if failed.as_ref().is_some_and(|(at, _)| at == k) {
                    if let Some((_, e)) = failed.take() {
                        return Err(e.into());
                    }
                }
            }
            let start = if *k == 0 { 0 } else { core.ends[*k - 1] };
            let (Some(&end), Some(record)) = (core.ends.get(*k), core.records.get(*k)) else {
                debug_assert!(false, "packet {i} was not processed");
                break;
            };
            *k += 1;
            sink(i, &core.bytes[start..end], record)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::nf::{RenamedField, StateObjectInfo};
    use crate::state::StateError;

    /// Counts the packets that write: a packet whose first byte is 1 needs the write
    /// lock and answers with the count after it; the others are read-only drops.
    struct Counter {
        count: u64,
    }

    impl GeneratedNf for Counter {
        const NAME: &'static str = "counter";
        const STATE: &'static [StateObjectInfo] = &[];
        const PORT_COUNT: u16 = 1;
        const LAN_PORT: u16 = 0;
        const WAN_PORT: u16 = 0;
        const RENAMED: &'static [RenamedField] = &[];

        fn with_shards(_mode: ParseMode, _shards: usize) -> Result<Self, StateError> {
            Ok(Counter { count: 0 })
        }
        fn process(&mut self, packet: &InputPacket) -> Observation {
            if packet.data.first() != Some(&1) {
                return Observation::Drop;
            }
            self.count += 1;
            Observation::Forward {
                port: 0,
                bytes: self.count.to_le_bytes().to_vec(),
            }
        }
        fn process_read(
            &self,
            packet: &InputPacket,
            _log: &mut RefreshLog,
        ) -> Result<Observation, NeedsWrite> {
            match packet.data.first() {
                Some(&1) => Err(NeedsWrite),
                _ => Ok(Observation::Drop),
            }
        }
        fn apply_refresh(&mut self, _refresh: &Refresh) {}
        fn fault_count(&self) -> u64 {
            0
        }
        fn set_instrumented(&mut self, _on: bool) {}
        fn access_log(&self) -> Option<&AccessLog> {
            None
        }
    }

    fn packet(i: u64) -> InputPacket {
        InputPacket {
            port: 0,
            time_ns: 1_000 + i,
            data: vec![u8::from(i.is_multiple_of(3)), 0],
        }
    }

    /// Runs 3000 packets per core on real threads through the public handles and
    /// returns each core's `(observation, processed)` list and its counters.
    fn run_on_threads(nf: &mut SharedNf<Counter>) -> Vec<(Vec<Processed>, CoreStats)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = nf
                .cores_mut()
                .into_iter()
                .map(|mut core| {
                    s.spawn(move || {
                        let mut scratch = empty_packet();
                        let out: Vec<Processed> = (0..3000)
                            .map(|i| {
                                let src = packet(i);
                                if i % 2 == 0 {
                                    core.process_ref(&src, &mut scratch)
                                } else {
                                    let mut p = src.clone();
                                    core.process(&mut p)
                                }
                            })
                            .collect();
                        (out, core.stats().clone())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        })
    }

    #[test]
    fn shared_state_handles_serialize_writers_across_threads() {
        for strategy in [Strategy::Locks, Strategy::Tm] {
            let mut nf = SharedNf::<Counter>::new(strategy, 3, ParseMode::Strict).expect("state");
            assert_eq!(nf.cores(), 3);
            let runs = run_on_threads(&mut nf);
            let mut writes: Vec<(u64, u64)> = Vec::new();
            for (c, (out, stats)) in runs.iter().enumerate() {
                assert_eq!(stats.packets, 3000, "{strategy:?} core {c}");
                for p in out {
                    assert!(p.now >= 1_000, "{strategy:?}: time only moves forward");
                    match &p.observation {
                        Observation::Forward { bytes, .. } => {
                            assert!(p.wrote, "{strategy:?}: a count comes from a writer");
                            let count = u64::from_le_bytes(bytes[..8].try_into().expect("8"));
                            writes.push((p.epoch, count));
                        }
                        _ => assert_eq!(
                            p.wrote,
                            strategy == Strategy::Tm,
                            "{strategy:?}: reads stay reads under locks"
                        ),
                    }
                }
                if strategy == Strategy::Locks {
                    assert_eq!(stats.read_passes, 3000, "core {c}");
                    assert_eq!(stats.writes, 1000, "core {c}: every third packet writes");
                    assert_eq!(stats.aborts, stats.writes);
                } else {
                    assert_eq!(stats.tm_commits + stats.tm_fallbacks, 3000, "core {c}");
                }
            }
            // Mutual exclusion: 3000 writes saw the counts 1..=3000 exactly once each,
            // and under locks the epoch a writer made is the count it saw.
            writes.sort_unstable_by_key(|&(_, count)| count);
            let counts: Vec<u64> = writes.iter().map(|&(_, c)| c).collect();
            assert_eq!(counts, (1..=3000).collect::<Vec<_>>(), "{strategy:?}");
            if strategy == Strategy::Locks {
                assert!(writes.iter().all(|&(epoch, count)| epoch == count));
            }
            assert_eq!(nf.fault_count(), 0);
        }
    }

    #[test]
    fn shared_state_shapes() {
        let mut seq = SharedNf::<Counter>::new(Strategy::Seq, 4, ParseMode::Strict).expect("seq");
        assert_eq!(seq.cores(), 1, "seq runs one core");
        assert_eq!(seq.cores_mut().len(), 1);
        let mut sn = SharedNf::<Counter>::new(Strategy::Sn, 4, ParseMode::Strict).expect("sn");
        let cores: Vec<usize> = sn.cores_mut().iter().map(NfCore::core).collect();
        assert_eq!(cores, [0, 1, 2, 3]);
        assert_eq!(sn.rtm_status(), RtmStatus::NotApplicable);
        assert!(matches!(
            SharedNf::<Counter>::new(Strategy::Locks, 0, ParseMode::Strict),
            Err(ExecError::NoCores)
        ));
        // seq/sn leave the packet alone; the others run a copy.
        let mut scratch = empty_packet();
        let src = packet(3);
        let p = sn.cores_mut()[2].process_ref(&src, &mut scratch);
        assert_eq!((p.epoch, p.wrote, p.now), (0, false, src.time_ns));
        assert!(scratch.data.is_empty(), "sn needs no copy");
    }
}
