//! The contract between generated NFs and the executors.
//!
//! Every generated NF implements [`GeneratedNf`] once; the strategies are runtime code
//! that drive that one implementation differently:
//! - `seq`: one instance, one core, [`GeneratedNf::process`] per packet in input order;
//! - `sn`: one instance per core, built by [`GeneratedNf::with_shards`] with the
//!   per-core capacities of [`shard_capacity`], no synchronization;
//! - `locks`: one shared instance behind a big-reader lock. Each packet first runs
//!   [`GeneratedNf::process_read`] (a `&self` pass: the borrow checker guarantees it
//!   cannot write) under its core's reader token; refreshes go to the core's
//!   [`RefreshLog`]; the first write attempt returns [`NeedsWrite`] and the packet is
//!   re-run with [`GeneratedNf::process`] under the write lock, whose decision is the one
//!   used. The writer first applies every core's logged refreshes with
//!   [`GeneratedNf::apply_refresh`], in commit order.
//! - `tm`: one shared instance, [`GeneratedNf::process`] inside a hardware transaction or
//!   under the global fallback lock.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::packet::ParseMode;
use crate::state::StateError;
use crate::{InputPacket, Observation};

/// How a generated NF is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// One core, input order: the reference the others are compared with.
    Seq,
    /// Shared-nothing: state per core, RSS co-locates packets that share state.
    Sn,
    /// One shared state behind a speculative big-reader lock.
    Locks,
    /// One shared state, each packet a hardware transaction (global lock without RTM).
    Tm,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::Seq, Strategy::Sn, Strategy::Locks, Strategy::Tm];

    /// The command-line name (`seq`, `sn`, `locks`, `tm`).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Seq => "seq",
            Strategy::Sn => "sn",
            Strategy::Locks => "locks",
            Strategy::Tm => "tm",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// The per-core capacity policy of the shared-nothing strategy (Maestro's
/// `spread_data_among_cores`): the next power of two at least `capacity / shards`,
/// rounded up, and never more than `capacity`. One shard keeps the sequential capacity,
/// so `sn` on one core is the sequential NF. Objects that no packet writes (static maps)
/// are replicated in full instead; see [`StateObjectInfo::sharded`].
///
/// A split capacity is a declared envelope: a core's table may fill under skew while
/// the sequential table would not (`capacity` divergences in the checker).
pub fn shard_capacity(capacity: u32, shards: usize) -> u32 {
    if shards <= 1 || capacity == 0 {
        return capacity;
    }
    let shards = u32::try_from(shards).unwrap_or(u32::MAX);
    let share = capacity.div_ceil(shards);
    share
        .checked_next_power_of_two()
        .unwrap_or(capacity)
        .min(capacity)
}

/// A state object of the NF, as reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateObjectInfo {
    /// The name in the NF source (`flows`).
    pub name: &'static str,
    /// The state kind (`table`, `map`, `vector`, `dchain`, `cht`, `sketch`, `sets`).
    pub kind: &'static str,
    /// The sequential capacity (entries; for a sketch its width, for a CHT its backends).
    pub capacity: u32,
    /// Whether `sn` splits its capacity with [`shard_capacity`] (written objects with
    /// a capacity) or replicates it in full (read-only objects, sketches, CHTs).
    pub sharded: bool,
}

/// The speculative read-only pass reached a write (or a fault): re-run under the write
/// lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedsWrite;

/// A refresh (rejuvenation) done by a read-only pass: `object` is the index of the state
/// object in [`GeneratedNf::STATE`], `index` the entry, `now` the time it was refreshed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    pub object: u16,
    pub index: u32,
    pub now: u64,
}

/// The refreshes a core's read-only passes made since the last write; bounded, so that
/// a long read-only phase cannot grow it without limit (a full log turns the next
/// refresh into a write).
#[derive(Clone, Debug)]
pub struct RefreshLog {
    entries: Vec<Refresh>,
    limit: usize,
}

impl RefreshLog {
    /// Default bound on logged refreshes per core.
    pub const DEFAULT_LIMIT: usize = 4096;

    pub fn new(limit: usize) -> RefreshLog {
        RefreshLog {
            entries: Vec::with_capacity(limit.min(1 << 16)),
            limit,
        }
    }

    /// Logs a refresh, or asks for the write lock when the log is full.
    #[inline]
    pub fn push(&mut self, refresh: Refresh) -> Result<(), NeedsWrite> {
        if self.entries.len() >= self.limit {
            return Err(NeedsWrite);
        }
        self.entries.push(refresh);
        Ok(())
    }

    /// Forgets the refreshes of an aborted pass: everything after `mark` (a length
    /// taken with [`RefreshLog::len`] before the pass).
    pub fn truncate(&mut self, mark: usize) {
        self.entries.truncate(mark);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Refresh] {
        &self.entries
    }

    /// Takes the logged refreshes out, leaving the log empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Refresh> {
        self.entries.drain(..)
    }
}

impl Default for RefreshLog {
    fn default() -> Self {
        RefreshLog::new(RefreshLog::DEFAULT_LIMIT)
    }
}

/// Key-based state accesses, counted per (object, key) when instrumentation is on. Only
/// accesses that name an entry by key are counted (table `get`/`add`/`remove`, map
/// `get`/`put`/`erase`, sketch and set updates by key): indexes are per-core names in a
/// shared-nothing run, so index-based accesses would be false alarms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessLog {
    counts: HashMap<(u16, u64), u64>,
}

impl AccessLog {
    /// A 64-bit identity for a key (SipHash with fixed keys: the same in every process).
    #[allow(deprecated)]
    pub fn key_of<K: Hash + ?Sized>(key: &K) -> u64 {
        let mut h = std::hash::SipHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    /// Counts one access of `object` (its index in [`GeneratedNf::STATE`]) at `key`.
    #[inline]
    pub fn touch(&mut self, object: u16, key: u64) {
        *self.counts.entry((object, key)).or_insert(0) += 1;
    }

    /// Every (object, key) touched, with its count.
    pub fn counts(&self) -> &HashMap<(u16, u64), u64> {
        &self.counts
    }

    pub fn clear(&mut self) {
        self.counts.clear();
    }
}

/// A header field an NF fills with a value it chose itself (an allocator index), and the
/// input field that later refers back to it: the NAT writes `l4.sport` from its port
/// allocator and reads `l4.dport` of WAN replies as that index. Parallel runs are then
/// equal to the sequential one only modulo a renaming of these values
/// (`shared/spec/equivalence.md`, "modulo renaming").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenamedField {
    /// The output field (`l4.sport`, `l4.dport`, `ip.src`, `ip.dst`).
    pub out_field: &'static str,
    /// The input field that carries the value back.
    pub in_field: &'static str,
    /// Input ports whose packets carry it back (where `in_field` selects state).
    pub in_ports: &'static [u16],
}

/// What every generated NF provides. Implemented by generated code only.
pub trait GeneratedNf: Send + Sync + Sized + 'static {
    /// The NF's name (`fw`).
    const NAME: &'static str;
    /// Its state objects; `object` numbers in [`Refresh`] and [`AccessLog`] index this.
    const STATE: &'static [StateObjectInfo];
    /// `max(port) + 1`.
    const PORT_COUNT: u16;
    /// The ports of its `lan` and `wan` devices (0 and 1 when it has no such names), for
    /// assigning capture packets to ports.
    const LAN_PORT: u16;
    const WAN_PORT: u16;
    /// Fields filled with NF-chosen values (empty for most NFs).
    const RENAMED: &'static [RenamedField];

    /// Allocates the state of one of `shards` shared-nothing shards (capacities per
    /// [`shard_capacity`] for objects with [`StateObjectInfo::sharded`]); `shards == 1`
    /// is the sequential NF.
    fn with_shards(mode: ParseMode, shards: usize) -> Result<Self, StateError>;

    /// Runs one packet (the NF's `process` block): exactly one observation.
    fn process(&mut self, packet: &InputPacket) -> Observation;

    /// The speculative read-only pass of the `locks` strategy: the same decision as
    /// [`GeneratedNf::process`] when the path writes no state, refreshes logged to `log`;
    /// [`NeedsWrite`] at the first write (or fault). On `Err` the caller discards what
    /// the pass logged ([`RefreshLog::truncate`]).
    fn process_read(
        &self,
        packet: &InputPacket,
        log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite>;

    /// Applies one logged refresh, as the sequential NF would have done it.
    fn apply_refresh(&mut self, refresh: &Refresh);

    /// NF faults so far (out-of-range indexes, forwards to missing ports).
    fn fault_count(&self) -> u64;

    /// Turns key-access counting on (a fresh log) or off.
    fn set_instrumented(&mut self, on: bool);

    /// The accesses counted since instrumentation was turned on (`None` when off).
    fn access_log(&self) -> Option<&AccessLog>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_capacity_follows_maestro() {
        assert_eq!(shard_capacity(65536, 1), 65536);
        assert_eq!(shard_capacity(65536, 16), 4096);
        assert_eq!(shard_capacity(1000, 3), 512);
        assert_eq!(shard_capacity(4, 2), 2);
        assert_eq!(shard_capacity(3, 2), 2);
        // never above the sequential capacity
        assert_eq!(shard_capacity(5, 1), 5);
        assert_eq!(shard_capacity(5, 2), 4);
        assert_eq!(shard_capacity(1, 4), 1);
    }

    #[test]
    fn refresh_log_is_bounded() {
        let mut log = RefreshLog::new(2);
        let r = Refresh {
            object: 0,
            index: 1,
            now: 5,
        };
        assert!(log.push(r).is_ok());
        let mark = log.len();
        assert!(log.push(r).is_ok());
        assert_eq!(log.push(r), Err(NeedsWrite));
        log.truncate(mark);
        assert_eq!(log.len(), 1);
        assert_eq!(log.drain().count(), 1);
        assert!(log.is_empty());
    }

    #[test]
    fn access_keys_are_stable() {
        assert_eq!(
            AccessLog::key_of(&(1u32, 2u16)),
            AccessLog::key_of(&(1u32, 2u16))
        );
        assert_ne!(AccessLog::key_of(&1u32), AccessLog::key_of(&2u32));
        let mut log = AccessLog::default();
        log.touch(0, 7);
        log.touch(0, 7);
        assert_eq!(log.counts()[&(0, 7)], 2);
    }
}
