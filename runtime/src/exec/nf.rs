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

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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
///
/// Accesses are queued and counted [`AccessLog::BATCH`] at a time: a count is a cache
/// miss (one entry per flow), and a loop of independent counts overlaps its misses,
/// where one count per packet waited for each. [`AccessLog::counts`], `Clone` and `==`
/// see every access, queued or not.
#[derive(Debug, Default)]
pub struct AccessLog {
    counts: AccessCounts,
    /// Accesses not yet in `counts`, fewer than [`AccessLog::BATCH`].
    queued: Vec<(u16, u64)>,
}

/// The counts of an [`AccessLog`]: its keys are [`AccessLog::key_of`] values, already
/// well mixed, so the map hashes them with one multiplication.
pub type AccessCounts = HashMap<(u16, u64), u64, BuildHasherDefault<CountHasher>>;

impl AccessLog {
    /// Accesses queued before they are counted.
    pub const BATCH: usize = 256;

    /// A 64-bit identity for a key, the same in every process and run: [`KeyHasher`]
    /// over the key's `Hash` feed. Every state access of an instrumented run hashes its
    /// key, so this is a few multiplications, not SipHash.
    #[inline]
    pub fn key_of<K: Hash + ?Sized>(key: &K) -> u64 {
        let mut h = KeyHasher::default();
        key.hash(&mut h);
        h.finish()
    }

    /// Counts one access of `object` (its index in [`GeneratedNf::STATE`]) at `key`.
    #[inline]
    pub fn touch(&mut self, object: u16, key: u64) {
        if self.queued.capacity() == 0 {
            self.queued.reserve_exact(Self::BATCH);
        }
        self.queued.push((object, key));
        if self.queued.len() >= Self::BATCH {
            self.settle();
        }
    }

    /// Counts the queued accesses.
    pub fn settle(&mut self) {
        count_into(&mut self.counts, &self.queued);
        self.queued.clear();
    }

    /// Every (object, key) touched, with its count (borrowed when nothing is queued).
    pub fn counts(&self) -> Cow<'_, AccessCounts> {
        if self.queued.is_empty() {
            return Cow::Borrowed(&self.counts);
        }
        let mut all = self.counts.clone();
        count_into(&mut all, &self.queued);
        Cow::Owned(all)
    }

    pub fn clear(&mut self) {
        self.counts.clear();
        self.queued.clear();
    }
}

fn count_into(counts: &mut AccessCounts, accesses: &[(u16, u64)]) {
    for &a in accesses {
        *counts.entry(a).or_insert(0) += 1;
    }
}

impl Clone for AccessLog {
    /// A settled copy.
    fn clone(&self) -> Self {
        AccessLog {
            counts: self.counts().into_owned(),
            queued: Vec::new(),
        }
    }
}

impl PartialEq for AccessLog {
    /// The same counts, queued or not.
    fn eq(&self, other: &Self) -> bool {
        self.counts() == other.counts()
    }
}

impl Eq for AccessLog {}

/// The 128-bit product of `a` and `b`, its halves xored: a cheap, thoroughly mixing
/// step (every input bit reaches most output bits).
#[inline]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Odd constants from the digits of pi, e and sqrt(2): fixed forever, since the key
/// identities they make must not change between the processes of one check.
const KEY_SEED: u64 = 0x243f_6a88_85a3_08d3;
const KEY_MUL: u64 = 0xb7e1_5162_8aed_2a6b;
const COUNT_MUL: u64 = 0x6a09_e667_f3bc_c909;

/// The hasher of [`AccessLog::key_of`]: every word the key feeds is folded into the
/// state with a 64x64->128-bit multiplication, and the result gets murmur3's 64-bit
/// finalizer, so that keys differing in one field differ in about half the bits.
/// Deterministic: no per-process random state.
#[derive(Clone, Copy, Debug)]
pub struct KeyHasher {
    state: u64,
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher { state: KEY_SEED }
    }
}

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = fold_multiply(self.state ^ word, KEY_MUL);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length tells `[1]` from `[1, 0]`.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// murmur3's fmix64.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The hasher of [`AccessCounts`]: its keys are `(object, key_of value)`, the second
/// already a good hash, so one fold of the two suffices.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountHasher {
    state: u64,
}

impl Hasher for CountHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = self.state.rotate_left(8) ^ u64::from(b);
        }
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.state = self.state.rotate_left(16) ^ u64::from(i);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = self.state.rotate_left(32) ^ i;
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_multiply(self.state, COUNT_MUL)
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

    #[test]
    fn queued_accesses_count_everywhere() {
        // Around and across the batch size: counts, clones and equality see every
        // access whether it is still queued or already counted.
        for n in [
            0,
            1,
            AccessLog::BATCH - 1,
            AccessLog::BATCH,
            3 * AccessLog::BATCH + 7,
        ] {
            let mut log = AccessLog::default();
            let mut want: HashMap<(u16, u64), u64> = HashMap::new();
            for i in 0..n as u64 {
                let access = ((i % 3) as u16, i % 17);
                log.touch(access.0, access.1);
                *want.entry(access).or_default() += 1;
            }
            let got: HashMap<(u16, u64), u64> =
                log.counts().iter().map(|(&k, &v)| (k, v)).collect();
            assert_eq!(got, want, "{n} accesses");
            let copy = log.clone();
            assert_eq!(copy, log);
            assert_eq!(copy.counts().len(), want.len());
            let mut settled = AccessLog::default();
            for (&(o, k), &c) in &want {
                for _ in 0..c {
                    settled.touch(o, k);
                }
            }
            settled.settle();
            assert_eq!(settled, log, "{n} accesses, in another order");
            if n > 0 {
                log.touch(9, 9);
                assert_ne!(settled, log);
            }
            log.clear();
            assert!(log.counts().is_empty());
        }
    }

    /// A firewall-like flow key, hashed field by field as `derive(Hash)` feeds it.
    #[derive(Hash)]
    struct Flow {
        sport: u16,
        dport: u16,
        src: u32,
        dst: u32,
        proto: u8,
    }

    #[test]
    fn access_keys_of_structured_keys_do_not_collide() {
        // 2^20 flows differing in a few low bits of each field (the hard case for a
        // weak hash): every identity distinct, and the identities spread over both
        // halves of the word.
        let mut seen = std::collections::HashSet::new();
        let mut high = 0u32;
        for i in 0u32..1 << 20 {
            let k = AccessLog::key_of(&Flow {
                sport: (i & 0xf) as u16,
                dport: ((i >> 4) & 0xf) as u16,
                src: 0x0a00_0000 | ((i >> 8) & 0xf),
                dst: 0x0a00_0100 | ((i >> 12) & 0xf),
                proto: 6 + ((i >> 16) & 0xf) as u8,
            });
            assert!(seen.insert(k), "flow {i} collides");
            high += (k >> 63) as u32;
        }
        assert!(
            (high as f64 / (1 << 20) as f64 - 0.5).abs() < 0.01,
            "{high}"
        );
        // Byte strings: the length counts, zeros included.
        let keys: Vec<u64> = [&[][..], &[0], &[0, 0], &[1], &[1, 0], &[0; 8], &[0; 9]]
            .iter()
            .map(AccessLog::key_of)
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn access_keys_are_the_same_in_every_process() {
        // No per-process state: a hasher built now hashes like one built later, and
        // the identity of a key is a function of its fields alone.
        let mut a = KeyHasher::default();
        let mut b = KeyHasher::default();
        (7u32, 9u16).hash(&mut a);
        (7u32, 9u16).hash(&mut b);
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.finish(), AccessLog::key_of(&(7u32, 9u16)));
        assert_ne!(
            AccessLog::key_of(&(7u32, 9u16)),
            AccessLog::key_of(&(9u32, 7u16))
        );
    }
}
