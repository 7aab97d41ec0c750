//! The expiring table: libVig's "emap" triple of map, keys vector and dchain (§2.4).

use std::hash::Hash;

use super::dchain::{DChain, DCHAIN_MAX_CAPACITY};
use super::map::Map;
use super::{check_capacity, StateError};

/// A map `K -> index` whose indexes come from a [`DChain`], with the key and a value of
/// type `V` stored per index.
///
/// Keeps libVig's coherence invariant: an index is allocated iff its key is in the map and
/// maps back to it. Expiry and removal free indexes in LIFO order (the most recently freed
/// is the next handed out, which NAT ports expose) and leave `keys`/`values` in place:
/// values go stale exactly as in C, and NFs that read them after expiry see the old data.
#[derive(Debug, Clone)]
pub struct ExpiringTable<K, V> {
    map: Map<K, u32>,
    keys: Vec<Option<K>>,
    values: Vec<V>,
    chain: DChain,
    ttl: u64,
}

impl<K: Eq + Hash + Clone, V: Default> ExpiringTable<K, V> {
    /// An empty table. Fails unless `0 < capacity <= 1 << 20` (the dchain limit).
    pub fn new(capacity: u32, ttl: u64) -> Result<Self, StateError> {
        check_capacity("table", capacity, DCHAIN_MAX_CAPACITY)?;
        Ok(ExpiringTable {
            map: Map::new(capacity)?,
            keys: (0..capacity).map(|_| None).collect(),
            values: (0..capacity).map(|_| V::default()).collect(),
            chain: DChain::new(capacity)?,
            ttl,
        })
    }

    /// Frees every index whose timestamp is `< now - ttl` (saturating), oldest first,
    /// erasing its key from the map; returns how many. Values stay (stale).
    pub fn expire(&mut self, now: u64) -> u32 {
        let threshold = now.saturating_sub(self.ttl);
        let mut count = 0;
        while let Some(i) = self.chain.expire_one(threshold) {
            if let Some(k) = &self.keys[i as usize] {
                let erased = self.map.erase(k);
                debug_assert_eq!(erased, Some(i), "table map and chain out of sync");
            }
            count += 1;
        }
        count
    }

    /// Whether [`ExpiringTable::expire`] at `now` would free anything (same threshold
    /// rule). Read-only, so a speculative pass (the `locks` strategy) can tell whether
    /// expiry needs the write lock.
    #[inline]
    pub fn would_expire(&self, now: u64) -> bool {
        self.chain.would_expire(now.saturating_sub(self.ttl))
    }

    /// The index of `k`, if present.
    #[inline]
    pub fn get(&self, k: &K) -> Option<u32> {
        self.map.get(k).copied()
    }

    /// Whether `k` is present.
    #[inline]
    pub fn contains(&self, k: &K) -> bool {
        self.map.contains(k)
    }

    /// Allocates an index stamped `now` and stores `k` and `v` there. `None` (and no
    /// change) if the table is full or `k` is present.
    pub fn add(&mut self, k: K, v: V, now: u64) -> Option<u32> {
        if self.chain.is_full() || self.map.contains(&k) {
            return None;
        }
        let i = self.chain.allocate(now)?;
        self.keys[i as usize] = Some(k.clone());
        self.values[i as usize] = v;
        let inserted = self.map.put(k, i);
        debug_assert!(inserted, "table map full while chain has room");
        Some(i)
    }

    /// Restamps an allocated index with `now`; `false` if free or out of range.
    #[inline]
    pub fn refresh(&mut self, i: u32, now: u64) -> bool {
        self.chain.rejuvenate(i, now)
    }

    /// Whether index `i` is allocated; `false` when out of range.
    #[inline]
    pub fn has_index(&self, i: u32) -> bool {
        self.chain.is_allocated(i)
    }

    /// The key last stored at `i`; it may be stale if `i` has since been freed. `None` when
    /// out of range or never used.
    #[inline]
    pub fn key(&self, i: u32) -> Option<&K> {
        self.keys.get(i as usize)?.as_ref()
    }

    /// The value at `i`, stale or not; `None` only when out of range.
    #[inline]
    pub fn value(&self, i: u32) -> Option<&V> {
        self.values.get(i as usize)
    }

    /// Mutable value at `i`; `None` only when out of range.
    #[inline]
    pub fn value_mut(&mut self, i: u32) -> Option<&mut V> {
        self.values.get_mut(i as usize)
    }

    /// Overwrites the value at `i` (allocated or not); `false` when out of range.
    #[inline]
    pub fn set_value(&mut self, i: u32, v: V) -> bool {
        match self.values.get_mut(i as usize) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }

    /// Erases `k` and frees its index (on top of the free stack); `false` if absent.
    pub fn remove(&mut self, k: &K) -> bool {
        match self.map.erase(k) {
            Some(i) => {
                let freed = self.chain.free(i);
                debug_assert!(freed, "table map and chain out of sync");
                true
            }
            None => false,
        }
    }

    /// Whether every index is allocated (`add` fails).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.chain.is_full()
    }

    /// The number of entries.
    #[inline]
    pub fn len(&self) -> u32 {
        self.chain.allocated()
    }

    /// Whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fixed capacity (index range).
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.chain.capacity()
    }

    /// The expiry time in nanoseconds.
    #[inline]
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// The underlying index allocator (read-only), e.g. for a CHT's liveness check.
    #[inline]
    pub fn chain(&self) -> &DChain {
        &self.chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_checked() {
        assert_eq!(
            ExpiringTable::<u32, u32>::new(0, 1).unwrap_err(),
            StateError::ZeroCapacity { what: "table" }
        );
        assert!(matches!(
            ExpiringTable::<u32, u32>::new(DCHAIN_MAX_CAPACITY + 1, 1),
            Err(StateError::CapacityTooLarge { what: "table", .. })
        ));
    }

    #[test]
    fn would_expire_agrees_with_expire() {
        let mut t = ExpiringTable::<u32, ()>::new(4, 10).unwrap();
        assert!(!t.would_expire(u64::MAX));
        t.add(1, (), 5);
        t.add(2, (), 8);
        // threshold = now - 10: stamp 5 survives at now 15, goes at now 16.
        assert!(!t.would_expire(15));
        assert!(t.would_expire(16));
        assert!(!t.would_expire(3), "saturating: nothing is older than 0");
        for now in [0, 15, 16, 18, 19, 100] {
            let mut u = t.clone();
            assert_eq!(t.would_expire(now), u.expire(now) > 0, "now {now}");
        }
    }

    #[test]
    fn add_get_remove_with_stale_value() {
        let mut t = ExpiringTable::<u32, u64>::new(2, 10).unwrap();
        assert_eq!(t.key(0), None);
        assert_eq!(t.value(0), Some(&0));
        assert_eq!(t.add(7, 70, 1), Some(0));
        assert_eq!(t.add(7, 71, 1), None);
        assert_eq!(t.add(8, 80, 1), Some(1));
        assert!(t.is_full());
        assert_eq!(t.add(9, 90, 1), None);
        assert_eq!(t.get(&8), Some(1));
        assert!(t.remove(&7));
        assert!(!t.remove(&7));
        assert!(!t.has_index(0));
        assert_eq!(t.key(0), Some(&7), "key stays (stale)");
        assert_eq!(t.value(0), Some(&70), "value stays (stale)");
        assert_eq!(t.add(9, 90, 2), Some(0));
        assert_eq!(t.value(2), None);
        assert!(!t.set_value(2, 1));
        assert!(t.set_value(1, 81));
        assert_eq!(t.value(1), Some(&81));
        assert_eq!(t.len(), 2);
        assert_eq!(t.ttl(), 10);
        assert_eq!(t.capacity(), 2);
    }
}
