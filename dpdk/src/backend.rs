//! Runs a generated NF's packet path on DPDK lcores: core `c` runs on the `c`-th EAL
//! lcore and owns receive and transmit queue `c` of every port, as the NIC's RSS (or a
//! pre-split capture) fills them.
//!
//! Per packet it does what the in-memory executors do (`runtime/src/exec/engine.rs`):
//! the frame is copied into the core's [`InputPacket`] (the [`GeneratedNf`] contract
//! takes an owned frame), `process` decides, and the decision is applied to the mbuf:
//! a forward rewrites it in place and queues it on the output port's queue `c`, a flood
//! sends it to every other port (copies from the mempool), a drop frees it. Every
//! received packet is counted once as forwarded, flooded or dropped, and every frame
//! meant to leave as sent, dropped by a full transmit ring, or not sent for a stated
//! reason ([`RunReport::check_accounting`]).
//!
//! Strategies: every one the runtime has, through its [`SharedNf`]: `seq` (one core, one
//! instance), `sn` (one instance per core, capacities per `shard_capacity`), `locks`
//! (one instance behind the big-reader lock: speculative read passes, refresh logs,
//! writes under the write lock) and `tm` (one instance inside RTM transactions or the
//! fallback lock). Each lcore runs its [`NfCore`], so the protocols are the runtime's
//! own code, not a copy; [`DpdkRunOptions::record`] keeps the per-packet records
//! (epoch, writer, `now`) that place each packet in the run's commit order.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dpdk_sys as sys;
use maestro_runtime::exec::{
    CoreStats, GeneratedNf, NfCore, PacketRecord, RtmStatus, SharedNf, Strategy,
};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};
use serde::Serialize;

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::Mbuf;
use crate::port::{Port, PortStats, RxQueue, TxQueue, MAX_BURST};

/// In which order a core takes the packets of its ports' queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RxOrder {
    /// Poll each port in turn and process each burst as it comes (Maestro's loop): the
    /// order of a real NIC.
    #[default]
    PortBursts,
    /// Merge the ports' queues by receive time (ties: lower port first), as the
    /// in-memory executors order a core's packets. Exact for pcap vdevs, which deliver
    /// whatever they hold when polled; on a NIC it only reorders what has arrived.
    Timestamp,
}

/// Where a packet's time (the NF's `now`) comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Clock {
    /// The PMD's receive timestamp when it gives one in a known unit (net_pcap: the
    /// capture's time, to the microsecond), else [`Clock::Tsc`].
    #[default]
    Auto,
    /// The receive time: Unix nanoseconds at the start of the run plus the TSC time
    /// since.
    Tsc,
}

/// When the cores stop (whichever condition comes first; none: run until `flag`).
#[derive(Clone, Debug, Default)]
pub struct StopWhen {
    /// Stop when this becomes true (a signal handler, another thread).
    pub flag: Option<Arc<AtomicBool>>,
    /// Stop a core after this many consecutive polls of all its queues found nothing: a
    /// replayed pcap is over. `None` on a NIC, where traffic may pause.
    pub idle_rounds: Option<u64>,
    /// Stop every core once the cores together received at least this many packets
    /// (checked after each receive burst, so up to a burst per core more arrive).
    pub packets: Option<u64>,
    /// Stop every core this long after the start (measured with the TSC).
    pub duration: Option<Duration>,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct DpdkRunOptions {
    pub strategy: Strategy,
    /// Cores for `sn`, `locks` and `tm` (ignored by `seq`, which uses one).
    pub cores: usize,
    /// Receive burst (DPDK's usual 32).
    pub burst: usize,
    pub order: RxOrder,
    pub clock: Clock,
    pub stop: StopWhen,
    pub parse_mode: ParseMode,
    /// Transmit attempts that send nothing before the rest of a burst is dropped.
    pub tx_retries: u32,
    /// `tm`: RTM attempts before the fallback lock (the runtime's default, 2).
    pub tm_retries: u32,
    /// Keep one [`PacketRecord`] per packet in [`CoreReport::records`] (memory grows
    /// with the run: for replays and checks, not for a NIC at line rate).
    pub record: bool,
}

impl Default for DpdkRunOptions {
    fn default() -> Self {
        DpdkRunOptions {
            strategy: Strategy::Sn,
            cores: 1,
            burst: 32,
            order: RxOrder::PortBursts,
            clock: Clock::Auto,
            stop: StopWhen::default(),
            parse_mode: ParseMode::Strict,
            tx_retries: 64,
            tm_retries: 2,
            record: false,
        }
    }
}

impl DpdkRunOptions {
    /// Cores that execute: 1 for `seq`, `cores` otherwise.
    pub fn executing_cores(&self) -> usize {
        if self.strategy == Strategy::Seq {
            1
        } else {
            self.cores
        }
    }
}

/// One core's counters. Invariants ([`RunReport::check_accounting`]):
/// `rx == forwarded + flooded + dropped`, and every frame meant to leave
/// (`forwarded + flooded * (ports - 1)`) is in `tx + tx_dropped + copy_failed +
/// too_big + no_such_port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoreReport {
    pub core: usize,
    pub lcore: u32,
    pub rx: u64,
    pub forwarded: u64,
    pub flooded: u64,
    /// Dropped by the NF.
    pub dropped: u64,
    /// Frames handed to transmit queues and taken by the NIC.
    pub tx: u64,
    /// Frames the transmit queue refused `tx_retries` times (ring full), then freed.
    pub tx_dropped: u64,
    /// Output frames that needed a fresh mbuf (flood copies, segmented inputs) and
    /// found the mempool empty.
    pub copy_failed: u64,
    /// Output frames larger than an mbuf's data room.
    pub too_big: u64,
    /// Forwards to a port the run does not have (an NF fault).
    pub no_such_port: u64,
    /// Packets whose time was earlier than the core's previous one (run at that time).
    pub time_clamped: u64,
    /// Packets without a PMD receive timestamp under [`Clock::Auto`] (TSC time used).
    pub untimed: u64,
    pub rx_per_port: Vec<u64>,
    pub tx_per_port: Vec<u64>,
    pub tx_dropped_per_port: Vec<u64>,
    /// What the strategy's protocol did (`locks`: read passes, aborts, writes; `tm`:
    /// commits, fallbacks, aborts), as the runtime's executors count it.
    pub protocol: CoreStats,
    /// With [`DpdkRunOptions::record`]: one record per packet in this core's processing
    /// order (`queue_pos` counts from 0; `hash` is the NIC's RSS hash, 0 without one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<PacketRecord>,
}

/// One port's counters over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortReport {
    /// The NF's port number.
    pub port: u16,
    /// The DPDK port it ran on.
    pub dpdk_port: u16,
    pub rx: u64,
    pub tx: u64,
    pub tx_dropped: u64,
    /// The device's own counters over the run (after minus before).
    pub device: PortStats,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub nf: &'static str,
    pub strategy: &'static str,
    pub per_core: Vec<CoreReport>,
    pub per_port: Vec<PortReport>,
    pub nf_faults: u64,
    /// `tm`: whether RTM transactions were used.
    pub rtm: RtmStatus,
    /// Wall time from launch to the last core's stop.
    pub seconds: f64,
}

impl RunReport {
    /// Packets received over every core.
    pub fn rx(&self) -> u64 {
        self.per_core.iter().map(|c| c.rx).sum()
    }

    /// Frames the NICs took.
    pub fn tx(&self) -> u64 {
        self.per_core.iter().map(|c| c.tx).sum()
    }

    /// Received packets per second over the run, in millions.
    pub fn mpps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rx() as f64 / self.seconds / 1e6
        } else {
            0.0
        }
    }

    /// Checks that every packet is accounted for, per core and per port; `Err` names
    /// the first counter that does not add up.
    pub fn check_accounting(&self) -> Result<(), String> {
        let ports = self.per_port.len() as u64;
        for c in &self.per_core {
            if c.rx != c.forwarded + c.flooded + c.dropped {
                return Err(format!(
                    "core {}: rx {} != forwarded {} + flooded {} + dropped {}",
                    c.core, c.rx, c.forwarded, c.flooded, c.dropped
                ));
            }
            let meant = c.forwarded + c.flooded * ports.saturating_sub(1);
            let fate = c.tx + c.tx_dropped + c.copy_failed + c.too_big + c.no_such_port;
            if meant != fate {
                return Err(format!(
                    "core {}: {meant} frames meant to leave but tx {} + tx_dropped {} + \
                     copy_failed {} + too_big {} + no_such_port {} = {fate}",
                    c.core, c.tx, c.tx_dropped, c.copy_failed, c.too_big, c.no_such_port
                ));
            }
            if c.rx_per_port.iter().sum::<u64>() != c.rx
                || c.tx_per_port.iter().sum::<u64>() != c.tx
                || c.tx_dropped_per_port.iter().sum::<u64>() != c.tx_dropped
            {
                return Err(format!(
                    "core {}: per-port counters do not sum to totals",
                    c.core
                ));
            }
        }
        for p in &self.per_port {
            let i = usize::from(p.port);
            let sum = |f: fn(&CoreReport) -> &Vec<u64>| -> u64 {
                self.per_core
                    .iter()
                    .map(|c| f(c).get(i).copied().unwrap_or(0))
                    .sum()
            };
            if p.rx != sum(|c| &c.rx_per_port) || p.tx != sum(|c| &c.tx_per_port) {
                return Err(format!(
                    "port {}: counters differ from the cores' sums",
                    p.port
                ));
            }
        }
        Ok(())
    }
}

/// Runs `N` on `ports` (NF port `i` on `ports[i]`, each configured with one receive
/// queue per executing core and at least as many transmit queues) until
/// `opts.stop` says so. Call it from the thread that initialised EAL (core 0 runs
/// there; cores 1.. on the next lcores). Mbufs for flood copies come from each output
/// port's mempool.
pub fn run<N: GeneratedNf>(
    eal: &Eal,
    ports: &[Port<'_>],
    opts: &DpdkRunOptions,
) -> Result<RunReport, DpdkError> {
    let cores = opts.executing_cores();
    if cores == 0 || opts.burst == 0 || opts.burst > MAX_BURST {
        return Err(DpdkError::BadRunShape);
    }
    if ports.len() != usize::from(N::PORT_COUNT) {
        return Err(DpdkError::PortCount {
            nf: N::NAME,
            want: N::PORT_COUNT,
            got: ports.len(),
        });
    }
    for p in ports {
        let mismatch = |what, have| DpdkError::QueuesPerCore {
            port: p.id(),
            what,
            have,
            cores,
        };
        if usize::from(p.rx_queues()) != cores {
            return Err(mismatch("receive", p.rx_queues()));
        }
        if usize::from(p.tx_queues()) < cores {
            return Err(mismatch("transmit", p.tx_queues()));
        }
    }
    let lcores = eal.lcores();
    if lcores.len() < cores {
        return Err(DpdkError::NotEnoughLcores {
            cores,
            lcores: lcores.len(),
            last: cores - 1,
        });
    }
    let mut shared = SharedNf::<N>::new(opts.strategy, cores, opts.parse_mode).map_err(|e| {
        DpdkError::NfState {
            nf: N::NAME,
            reason: e.to_string(),
        }
    })?;
    shared.set_tm_retries(opts.tm_retries);
    let before: Vec<PortStats> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    let clock = ClockBase::now();
    let shared_stop = SharedStop {
        received: AtomicU64::new(0),
        deadline: opts.stop.duration.map(|d| clock.deadline(d)),
    };
    let mut jobs: Vec<Job<'_>> = Vec::with_capacity(cores);
    for nf in shared.cores_mut() {
        let core = nf.core();
        let rx: Vec<RxQueue<'_, '_>> = ports
            .iter()
            .filter_map(|p| p.rx_queue(core as u16))
            .collect();
        let tx: Vec<TxQueue<'_, '_>> = ports
            .iter()
            .filter_map(|p| p.tx_queue(core as u16))
            .collect();
        if rx.len() != ports.len() || tx.len() != ports.len() {
            return Err(DpdkError::LcoreBusy {
                lcore: lcores[core],
                code: -libc::EBUSY,
            });
        }
        let worker = Worker {
            core,
            lcore: lcores[core],
            nf,
            rx,
            tx,
            opts,
            clock,
            shared_stop: &shared_stop,
        };
        jobs.push(Job {
            work: Some(Box::new(move || worker.run())),
            result: None,
        });
    }
    let start = Instant::now();
    let results = launch(lcores, &mut jobs)?;
    let seconds = start.elapsed().as_secs_f64();
    drop(jobs);
    let mut per_core = Vec::with_capacity(cores);
    for r in results {
        per_core.push(r.map_err(|message| DpdkError::CorePanicked { message })?);
    }
    let per_port = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let after = p.stats().unwrap_or_default();
            let b = before[i];
            PortReport {
                port: i as u16,
                dpdk_port: p.id(),
                rx: per_core.iter().map(|c| c.rx_per_port[i]).sum(),
                tx: per_core.iter().map(|c| c.tx_per_port[i]).sum(),
                tx_dropped: per_core.iter().map(|c| c.tx_dropped_per_port[i]).sum(),
                device: PortStats {
                    ipackets: after.ipackets.saturating_sub(b.ipackets),
                    opackets: after.opackets.saturating_sub(b.opackets),
                    imissed: after.imissed.saturating_sub(b.imissed),
                    ierrors: after.ierrors.saturating_sub(b.ierrors),
                    oerrors: after.oerrors.saturating_sub(b.oerrors),
                    rx_nombuf: after.rx_nombuf.saturating_sub(b.rx_nombuf),
                },
            }
        })
        .collect();
    Ok(RunReport {
        nf: N::NAME,
        strategy: opts.strategy.name(),
        per_core,
        per_port,
        nf_faults: shared.fault_count(),
        rtm: shared.rtm_status(),
        seconds,
    })
}

/// A core's work, handed to its lcore through a raw pointer.
struct Job<'a> {
    work: Option<Box<dyn FnOnce() -> CoreReport + Send + 'a>>,
    result: Option<Result<CoreReport, String>>,
}

impl Job<'_> {
    fn execute(&mut self) {
        if let Some(work) = self.work.take() {
            self.result = Some(catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into())
            }));
        }
    }
}

/// What `rte_eal_remote_launch` runs on a worker lcore.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `launch` passes a pointer to a live `Job` that nothing else touches until
    // `rte_eal_wait_lcore` returns for this lcore; the panic is caught inside.
    let job = unsafe { &mut *arg.cast::<Job<'_>>() };
    job.execute();
    0
}

/// Runs job 0 here (the main lcore) and job `c` on `lcores[c]`, waits for all, and
/// returns their results in core order.
fn launch(
    lcores: &[u32],
    jobs: &mut [Job<'_>],
) -> Result<Vec<Result<CoreReport, String>>, DpdkError> {
    let base = jobs.as_mut_ptr();
    let mut launched = Vec::new();
    let mut failure = None;
    for (c, &lcore) in lcores.iter().enumerate().take(jobs.len()).skip(1) {
        // SAFETY: each job is a distinct element that outlives the wait below; the
        // worker gets the only pointer to its job.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), base.add(c).cast(), lcore) };
        if rc != 0 {
            failure = Some(DpdkError::LcoreBusy { lcore, code: rc });
            break;
        }
        launched.push(lcore);
    }
    if failure.is_none() {
        // SAFETY: job 0 is not shared with any worker.
        unsafe { &mut *base }.execute();
    }
    for &lcore in &launched {
        // SAFETY: waits for the worker we launched on `lcore`.
        unsafe { sys::rte_eal_wait_lcore(lcore) };
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(jobs
        .iter_mut()
        .map(|j| {
            j.result
                .take()
                .unwrap_or_else(|| Err("the core did not run".into()))
        })
        .collect())
}

/// The run's time origin for [`Clock::Tsc`].
#[derive(Clone, Copy, Debug)]
struct ClockBase {
    unix_ns: u64,
    tsc: u64,
    hz: u64,
}

impl ClockBase {
    fn now() -> ClockBase {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        // SAFETY: plain reads of the TSC and its frequency (EAL measured it).
        let (tsc, hz) = unsafe { (sys::maestro_rdtsc(), sys::rte_get_tsc_hz()) };
        ClockBase {
            unix_ns,
            tsc,
            hz: hz.max(1),
        }
    }

    /// The TSC value `d` after the start.
    fn deadline(&self, d: Duration) -> u64 {
        let ticks = d.as_nanos().saturating_mul(u128::from(self.hz)) / 1_000_000_000;
        self.tsc
            .saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
    }

    #[inline]
    fn ns(&self) -> u64 {
        // SAFETY: reads the TSC.
        let d = unsafe { sys::maestro_rdtsc() }.wrapping_sub(self.tsc);
        let ns = (u128::from(d) * 1_000_000_000 / u128::from(self.hz)) as u64;
        self.unix_ns.saturating_add(ns)
    }
}

/// What the cores share to stop together.
struct SharedStop {
    /// Packets received so far, over every core (kept only with
    /// [`StopWhen::packets`]).
    received: AtomicU64,
    /// The TSC value of [`StopWhen::duration`]'s end.
    deadline: Option<u64>,
}

/// One core: its handle on the NF and its queue of every port.
struct Worker<'a, 'p, 'e, N> {
    core: usize,
    lcore: u32,
    nf: NfCore<'a, N>,
    rx: Vec<RxQueue<'p, 'e>>,
    tx: Vec<TxQueue<'p, 'e>>,
    opts: &'a DpdkRunOptions,
    clock: ClockBase,
    shared_stop: &'a SharedStop,
}

/// A core's mutable state during the loop.
struct CoreState<'p> {
    report: CoreReport,
    /// Per output port: frames waiting for a transmit burst.
    out: Vec<Vec<Mbuf<'p>>>,
    scratch: InputPacket,
    last_now: u64,
}

impl<'a, 'p, 'e, N: GeneratedNf> Worker<'a, 'p, 'e, N> {
    fn run(mut self) -> CoreReport {
        let ports = self.rx.len();
        let mut st = CoreState {
            report: CoreReport {
                core: self.core,
                lcore: self.lcore,
                rx_per_port: vec![0; ports],
                tx_per_port: vec![0; ports],
                tx_dropped_per_port: vec![0; ports],
                ..CoreReport::default()
            },
            out: (0..ports)
                .map(|_| Vec::with_capacity(self.opts.burst))
                .collect(),
            scratch: InputPacket {
                port: 0,
                time_ns: 0,
                data: Vec::with_capacity(2048),
            },
            last_now: 0,
        };
        match self.opts.order {
            RxOrder::PortBursts => self.port_bursts(&mut st),
            RxOrder::Timestamp => self.timestamp_order(&mut st),
        }
        for q in 0..ports {
            self.flush(&mut st, q);
        }
        st.report.protocol = self.nf.stats().clone();
        st.report
    }

    fn stopped(&self, idle: u64) -> bool {
        let stop = &self.opts.stop;
        if let Some(flag) = &stop.flag {
            if flag.load(Ordering::Relaxed) {
                return true;
            }
        }
        if let Some(limit) = stop.packets {
            if self.shared_stop.received.load(Ordering::Relaxed) >= limit {
                return true;
            }
        }
        if let Some(deadline) = self.shared_stop.deadline {
            // SAFETY: reads the TSC.
            if unsafe { sys::maestro_rdtsc() } >= deadline {
                return true;
            }
        }
        stop.idle_rounds.is_some_and(|k| idle >= k)
    }

    /// Counts a receive burst towards [`StopWhen::packets`].
    #[inline]
    fn received(&self, n: usize) {
        if n > 0 && self.opts.stop.packets.is_some() {
            self.shared_stop
                .received
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The receive time of `m`, from queue `port`.
    #[inline]
    fn time_of(&self, st: &mut CoreState<'p>, port: usize, m: &Mbuf<'_>) -> u64 {
        match self.opts.clock {
            Clock::Auto => match self.rx[port].timestamp(m) {
                Some(t) => t,
                None => {
                    st.report.untimed += 1;
                    self.clock.ns()
                }
            },
            Clock::Tsc => self.clock.ns(),
        }
    }

    fn port_bursts(&mut self, st: &mut CoreState<'p>) {
        let ports = self.rx.len();
        let mut burst: Vec<Mbuf<'p>> = Vec::with_capacity(self.opts.burst);
        let mut idle = 0u64;
        loop {
            if self.stopped(idle) {
                return;
            }
            let mut got = 0;
            for p in 0..ports {
                let n = self.rx[p].rx(&mut burst, self.opts.burst);
                got += n;
                self.received(n);
                st.report.rx_per_port[p] += n as u64;
                for m in burst.drain(..) {
                    let t = self.time_of(st, p, &m);
                    self.handle(st, p, t, m);
                }
            }
            for q in 0..ports {
                self.flush(st, q);
            }
            idle = if got == 0 { idle + 1 } else { 0 };
        }
    }

    fn timestamp_order(&mut self, st: &mut CoreState<'p>) {
        let ports = self.rx.len();
        let mut staged: Vec<std::collections::VecDeque<(u64, Mbuf<'p>)>> = (0..ports)
            .map(|_| std::collections::VecDeque::with_capacity(self.opts.burst))
            .collect();
        let mut burst: Vec<Mbuf<'p>> = Vec::with_capacity(self.opts.burst);
        let mut idle = 0u64;
        loop {
            if self.stopped(idle) {
                return;
            }
            for (p, queue) in staged.iter_mut().enumerate() {
                if queue.is_empty() {
                    let n = self.rx[p].rx(&mut burst, self.opts.burst);
                    self.received(n);
                    st.report.rx_per_port[p] += n as u64;
                    for m in burst.drain(..) {
                        let t = self.time_of(st, p, &m);
                        queue.push_back((t, m));
                    }
                }
            }
            let next = staged
                .iter()
                .enumerate()
                .filter_map(|(p, q)| q.front().map(|(t, _)| (*t, p)))
                .min();
            match next.and_then(|(_, p)| staged[p].pop_front().map(|x| (p, x))) {
                Some((p, (t, m))) => {
                    idle = 0;
                    self.handle(st, p, t, m);
                }
                None => {
                    for q in 0..ports {
                        self.flush(st, q);
                    }
                    idle += 1;
                }
            }
        }
    }

    /// Runs one packet through the NF and applies its decision.
    #[inline]
    fn handle(&mut self, st: &mut CoreState<'p>, port: usize, time: u64, m: Mbuf<'p>) {
        st.report.rx += 1;
        let now = if time < st.last_now {
            st.report.time_clamped += 1;
            st.last_now
        } else {
            time
        };
        st.last_now = now;
        st.scratch.port = port as u16;
        st.scratch.time_ns = now;
        st.scratch.data.clear();
        m.copy_to(&mut st.scratch.data);
        let done = self.nf.process(&mut st.scratch);
        if self.opts.record {
            st.report.records.push(PacketRecord {
                core: u16::try_from(self.core).unwrap_or(u16::MAX),
                queue_pos: st.report.rx - 1,
                epoch: done.epoch,
                wrote: done.wrote,
                now: done.now,
                hash: m.rss_hash().unwrap_or(0),
            });
        }
        match done.observation {
            Observation::Drop => {
                st.report.dropped += 1;
            }
            Observation::Forward { port: out, bytes } => {
                st.report.forwarded += 1;
                let out = usize::from(out);
                if out >= self.rx.len() {
                    st.report.no_such_port += 1;
                } else if let Some(m) = self.rewrite(st, m, &bytes, out) {
                    self.enqueue(st, out, m);
                }
            }
            Observation::Flood { bytes } => {
                st.report.flooded += 1;
                // Every port but the input one; the last reuses the received mbuf.
                let ports = self.rx.len();
                let last = (0..ports).rev().find(|&q| q != port);
                let mut original = Some(m);
                for q in (0..ports).filter(|&q| q != port) {
                    let frame = if Some(q) == last {
                        original.take().and_then(|m| self.rewrite(st, m, &bytes, q))
                    } else {
                        match self.tx[q].port().pool().alloc() {
                            Some(fresh) => self.rewrite(st, fresh, &bytes, q),
                            None => {
                                st.report.copy_failed += 1;
                                None
                            }
                        }
                    };
                    if let Some(f) = frame {
                        self.enqueue(st, q, f);
                    }
                }
            }
        }
    }

    /// `m` holding `bytes`, to leave by port `q`: in place when they fit its first
    /// segment, else in a fresh mbuf from `q`'s pool (a segmented input); `None`
    /// (counted) when no mbuf can hold them.
    #[inline]
    fn rewrite(
        &self,
        st: &mut CoreState<'p>,
        mut m: Mbuf<'p>,
        bytes: &[u8],
        q: usize,
    ) -> Option<Mbuf<'p>> {
        if m.set_data(bytes) {
            return Some(m);
        }
        drop(m);
        if bytes.len() > usize::from(crate::mbuf::DATA_ROOM) {
            st.report.too_big += 1;
            return None;
        }
        let Some(mut fresh) = self.tx[q].port().pool().alloc() else {
            st.report.copy_failed += 1;
            return None;
        };
        if fresh.set_data(bytes) {
            Some(fresh)
        } else {
            st.report.too_big += 1;
            None
        }
    }

    #[inline]
    fn enqueue(&mut self, st: &mut CoreState<'p>, q: usize, m: Mbuf<'p>) {
        st.out[q].push(m);
        if st.out[q].len() >= self.opts.burst {
            self.flush(st, q);
        }
    }

    /// Sends port `q`'s waiting frames; after `tx_retries` attempts that send nothing the
    /// rest is freed and counted.
    fn flush(&mut self, st: &mut CoreState<'p>, q: usize) {
        let mut failures = 0;
        while !st.out[q].is_empty() {
            let sent = self.tx[q].tx(&mut st.out[q]) as u64;
            st.report.tx += sent;
            st.report.tx_per_port[q] += sent;
            if sent == 0 {
                failures += 1;
                if failures > self.opts.tx_retries {
                    let n = st.out[q].len() as u64;
                    st.report.tx_dropped += n;
                    st.report.tx_dropped_per_port[q] += n;
                    st.out[q].clear();
                }
            }
        }
    }
}
