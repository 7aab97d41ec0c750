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

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// One dispatched packet: its index in the chunk, its hash and the packet.
#[derive(Clone, Debug)]
struct Queued {
    index: usize,
    hash: u32,
    packet: InputPacket,
}

/// A chunk of packets steered to per-core, per-port FIFO queues.
#[derive(Clone, Debug)]
pub struct Dispatched {
    /// `queues[core][port]`.
    queues: Vec<Vec<VecDeque<Queued>>>,
    len: usize,
}

impl Dispatched {
    /// Packets in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Executing cores (1 for `seq`).
    pub fn cores(&self) -> usize {
        self.queues.len()
    }

    /// Packets queued for `core` (all ports).
    pub fn core_len(&self, core: usize) -> usize {
        self.queues
            .get(core)
            .map_or(0, |ports| ports.iter().map(VecDeque::len).sum())
    }

    /// Packets queued for `core` from `port`.
    pub fn queue_len(&self, core: usize, port: u16) -> usize {
        self.queues
            .get(core)
            .and_then(|ports| ports.get(usize::from(port)))
            .map_or(0, VecDeque::len)
    }
}

/// A core's processing order: bursts of at most `batch` from one port queue, taken while
/// older (lower input index) than every other port's head. This is the input order of
/// the core's packets; the bursts are how a polling core gets there.
fn processing_order(mut ports: Vec<VecDeque<Queued>>, batch: usize) -> Vec<Queued> {
    let total = ports.iter().map(VecDeque::len).sum();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let heads = |ports: &[VecDeque<Queued>], skip: usize| {
            ports
                .iter()
                .enumerate()
                .filter(|&(p, _)| p != skip)
                .filter_map(|(_, q)| q.front().map(|x| x.index))
                .min()
                .unwrap_or(usize::MAX)
        };
        let Some(port) = (0..ports.len())
            .filter(|&p| !ports[p].is_empty())
            .min_by_key(|&p| ports[p].front().map_or(usize::MAX, |x| x.index))
        else {
            break;
        };
        let others = heads(&ports, port);
        let mut taken = 0;
        while taken < batch {
            match ports[port].front() {
                Some(q) if q.index < others => {}
                _ => break,
            }
            if let Some(q) = ports[port].pop_front() {
                out.push(q);
                taken += 1;
            }
        }
    }
    out
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
//   deterministic schedule, where no other reference exists).
// - `logs[c]`: used by core `c`'s worker while it holds its token, and by a writer while
//   it holds the write lock (no token is held then). Each core has one worker.
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

/// What a worker uses to run packets on one core.
enum Handle<'a, N> {
    Separate(&'a mut N),
    Locks(&'a LocksShared<N>),
    Tm(&'a TmShared<N>),
}

/// Per-chunk context shared by the workers.
struct Ctx<'a> {
    translator: Option<&'a dyn Translator>,
    base: u64,
    mutant: Option<RuntimeMutant>,
    tm_retries: u32,
}

/// One processed packet.
struct Done {
    index: usize,
    observation: Observation,
    record: PacketRecord,
}

/// A worker's output for one chunk.
#[derive(Default)]
struct CoreRun {
    done: Vec<Done>,
    stats: CoreStats,
    pin_failed: bool,
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

/// Runs one packet on `core`: the translator, the strategy's protocol, the record.
fn run_packet<N: GeneratedNf>(
    handle: &mut Handle<'_, N>,
    core: usize,
    pos: u64,
    q: Queued,
    ctx: &Ctx<'_>,
    stats: &mut CoreStats,
) -> Done {
    let Queued {
        index,
        hash,
        mut packet,
    } = q;
    let global = ctx.base + index as u64;
    if let Some(t) = ctx.translator {
        t.before(global, &mut packet);
    }
    let (observation, epoch, wrote, now) = match handle {
        Handle::Separate(nf) => (nf.process(&packet), 0, false, packet.time_ns),
        Handle::Locks(sh) => locks_packet(sh, core, &mut packet, ctx.mutant, stats),
        Handle::Tm(sh) => {
            let (o, seq, now) = tm_packet(sh, &mut packet, ctx.tm_retries, stats);
            (o, seq, true, now)
        }
    };
    if let Some(t) = ctx.translator {
        t.after(global, &packet, &observation);
    }
    stats.packets += 1;
    Done {
        index,
        observation,
        record: PacketRecord {
            core: u16::try_from(core).unwrap_or(u16::MAX),
            queue_pos: pos,
            epoch,
            wrote,
            now,
            hash,
        },
    }
}

/// A worker thread's loop over its core's packets.
fn worker<N: GeneratedNf>(
    mut handle: Handle<'_, N>,
    core: usize,
    pos0: u64,
    packets: Vec<Queued>,
    ctx: &Ctx<'_>,
    pin_cpu: Option<usize>,
) -> CoreRun {
    let mut run = CoreRun {
        done: Vec::with_capacity(packets.len()),
        ..CoreRun::default()
    };
    if let Some(cpu) = pin_cpu {
        run.pin_failed = !pin_current_thread(cpu);
    }
    for (k, q) in packets.into_iter().enumerate() {
        let d = run_packet(&mut handle, core, pos0 + k as u64, q, ctx, &mut run.stats);
        run.done.push(d);
    }
    run
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
    state: State<N>,
    /// Packets processed so far (the global index of the next chunk's first packet).
    seen: u64,
    /// Per executing core: packets it processed so far.
    queue_pos: Vec<u64>,
    stats: EngineStats,
    rng: SplitMix64,
    cpus: Vec<usize>,
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
        let mode = opts.parse_mode;
        let make = |shards: usize| -> Result<N, ExecError> {
            let mut nf =
                N::with_shards(mode, shards).map_err(|source| ExecError::State { source })?;
            if opts.instrument {
                nf.set_instrumented(true);
            }
            Ok(nf)
        };
        let (state, executing) = match opts.strategy {
            Strategy::Seq => (State::Separate(vec![make(1)?]), 1),
            Strategy::Sn => (
                State::Separate(
                    (0..opts.cores)
                        .map(|_| make(opts.cores))
                        .collect::<Result<_, _>>()?,
                ),
                opts.cores,
            ),
            Strategy::Locks => (
                State::Locks(Box::new(LocksShared {
                    lock: BigReaderLock::new(opts.cores),
                    nf: UnsafeCell::new(make(1)?),
                    logs: (0..opts.cores)
                        .map(|_| LogSlot(UnsafeCell::new(RefreshLog::default())))
                        .collect(),
                    drain: UnsafeCell::new(Vec::new()),
                    epoch: AtomicU64::new(0),
                    epoch_now: AtomicU64::new(0),
                })),
                opts.cores,
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
                opts.cores,
            ),
        };
        let seed = match opts.schedule {
            Schedule::Deterministic { seed } => seed,
            Schedule::Threads { .. } => 0,
        };
        Ok(Engine {
            nic,
            translator: None,
            state,
            seen: 0,
            queue_pos: vec![0; executing],
            stats: EngineStats {
                per_core: vec![CoreStats::default(); executing],
                ..EngineStats::default()
            },
            rng: SplitMix64(seed),
            cpus: allowed_cpus(),
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

    /// Steers a chunk into per-core, per-port queues (everything on core 0 for `seq`,
    /// whose records still carry the NIC hash).
    pub fn dispatch(&self, packets: Vec<InputPacket>) -> Dispatched {
        let cores = self.queue_pos.len();
        let mut queues: Vec<Vec<VecDeque<Queued>>> = vec![Vec::new(); cores];
        let len = packets.len();
        for (index, packet) in packets.into_iter().enumerate() {
            let steer = self.nic.steer(packet.port, &packet.data);
            let core = if cores == 1 {
                0
            } else {
                usize::from(steer.core).min(cores - 1)
            };
            let ports = &mut queues[core];
            let port = usize::from(packet.port);
            if ports.len() <= port {
                ports.resize_with(port + 1, VecDeque::new);
            }
            ports[port].push_back(Queued {
                index,
                hash: steer.hash,
                packet,
            });
        }
        Dispatched { queues, len }
    }

    /// Runs a dispatched chunk; the state carries over to the next chunk.
    pub fn process(&mut self, d: Dispatched) -> ChunkOutput {
        let n = d.len;
        let batch = self.opts.batch;
        let orders: Vec<Vec<Queued>> = d
            .queues
            .into_iter()
            .map(|ports| processing_order(ports, batch))
            .collect();
        let ctx = Ctx {
            translator: self.translator.as_deref(),
            base: self.seen,
            mutant: self.opts.mutant,
            tm_retries: self.opts.tm_retries,
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
                run_threads(&mut self.state, orders, &self.queue_pos, &ctx, pin_cpu)
            }
            Schedule::Deterministic { .. } => run_deterministic(
                &mut self.state,
                orders,
                &self.queue_pos,
                &ctx,
                &mut self.rng,
            ),
        };
        // Scatter by input index: every index in 0..n is produced by exactly one core.
        let mut out = ChunkOutput {
            observations: vec![Observation::Drop; n],
            records: vec![PacketRecord::default(); n],
        };
        let mut filled = 0usize;
        for (core, run) in runs.into_iter().enumerate() {
            self.queue_pos[core] += run.done.len() as u64;
            self.stats.per_core[core].add(&run.stats);
            self.stats.pin_failures += u64::from(run.pin_failed);
            filled += run.done.len();
            for d in run.done {
                out.observations[d.index] = d.observation;
                out.records[d.index] = d.record;
            }
        }
        debug_assert_eq!(filled, n, "every packet is processed exactly once");
        self.seen += n as u64;
        self.stats.chunks += 1;
        out
    }

    /// [`Engine::dispatch`] then [`Engine::process`].
    pub fn run(&mut self, packets: Vec<InputPacket>) -> ChunkOutput {
        let d = self.dispatch(packets);
        self.process(d)
    }

    /// NF faults so far, over every instance.
    pub fn fault_count(&self) -> u64 {
        match &self.state {
            State::Separate(nfs) => nfs.iter().map(GeneratedNf::fault_count).sum(),
            // SAFETY: workers exist only inside `process(&mut self)`; with `&self` no
            // worker runs, so a shared reference cannot race.
            State::Locks(sh) => unsafe { &*sh.nf.get() }.fault_count(),
            State::Tm(sh) => unsafe { &(*sh.state.get()).nf }.fault_count(),
        }
    }

    /// Per-core key-access logs of an instrumented `sn` run (`None` for a core when
    /// instrumentation is off). Empty for the other strategies: the sharding check asks
    /// whether two cores' *private* states saw the same key, and with one instance
    /// (`seq`, `locks`, `tm`) every core touching every key is expected and harmless.
    pub fn access_logs(&self) -> Vec<Option<AccessLog>> {
        match (&self.state, self.opts.strategy) {
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

    /// Counters over every chunk so far.
    pub fn stats(&self) -> EngineStats {
        self.stats.clone()
    }
}

/// One scoped thread per core with packets.
fn run_threads<N: GeneratedNf>(
    state: &mut State<N>,
    orders: Vec<Vec<Queued>>,
    queue_pos: &[u64],
    ctx: &Ctx<'_>,
    pin_cpu: impl Fn(usize) -> Option<usize>,
) -> Vec<CoreRun> {
    let cores = orders.len();
    let mut handles: Vec<Handle<'_, N>> = match state {
        State::Separate(nfs) => nfs.iter_mut().map(Handle::Separate).collect(),
        State::Locks(sh) => (0..cores).map(|_| Handle::Locks(&**sh)).collect(),
        State::Tm(sh) => (0..cores).map(|_| Handle::Tm(&**sh)).collect(),
    };
    handles.truncate(cores);
    std::thread::scope(|s| {
        let spawned: Vec<_> = handles
            .into_iter()
            .zip(orders)
            .enumerate()
            .map(|(core, (handle, packets))| {
                if packets.is_empty() {
                    return None;
                }
                let pin = pin_cpu(core);
                let pos0 = queue_pos[core];
                Some(s.spawn(move || worker(handle, core, pos0, packets, ctx, pin)))
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
fn run_deterministic<N: GeneratedNf>(
    state: &mut State<N>,
    orders: Vec<Vec<Queued>>,
    queue_pos: &[u64],
    ctx: &Ctx<'_>,
    rng: &mut SplitMix64,
) -> Vec<CoreRun> {
    let cores = orders.len();
    let mut pending: Vec<std::vec::IntoIter<Queued>> =
        orders.into_iter().map(Vec::into_iter).collect();
    let mut runs: Vec<CoreRun> = (0..cores).map(|_| CoreRun::default()).collect();
    let mut ready: Vec<usize> = Vec::with_capacity(cores);
    loop {
        ready.clear();
        ready.extend((0..cores).filter(|&c| !pending[c].as_slice().is_empty()));
        if ready.is_empty() {
            break;
        }
        let core = ready[(rng.next() % ready.len() as u64) as usize];
        let Some(q) = pending[core].next() else {
            continue;
        };
        let run = &mut runs[core];
        let pos = queue_pos[core] + run.done.len() as u64;
        let mut handle = match state {
            State::Separate(nfs) => Handle::Separate(&mut nfs[core]),
            State::Locks(sh) => Handle::Locks(&**sh),
            State::Tm(sh) => Handle::Tm(&**sh),
        };
        let d = run_packet(&mut handle, core, pos, q, ctx, &mut run.stats);
        run.done.push(d);
    }
    runs
}
