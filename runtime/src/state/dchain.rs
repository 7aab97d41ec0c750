//! DoubleChain: libVig's index allocator with timestamps (`nf-semantics.md` §2.3).

use super::age_list::AgeList;
use super::{check_capacity, StateError};

/// libVig's `IRANG_LIMIT`: the largest index range a dchain accepts.
pub const DCHAIN_MAX_CAPACITY: u32 = 1 << 20;

/// Allocates indexes in `[0, capacity)` and keeps them in age order for expiry.
///
/// The index choice is part of NF behaviour (NAT ports, LB backend indexes), so it follows
/// libVig exactly: free indexes form a LIFO stack, initially `0, 1, …, capacity-1` with 0
/// on top, and a freed index is the next one handed out. Allocation and rejuvenation move
/// an index to the tail of the age list; expiry looks only at the head, which is correct
/// because `now` never decreases. All operations are O(1).
#[derive(Debug, Clone)]
pub struct DChain {
    /// The age order, with each index's timestamp kept in its cell.
    ages: AgeList<u64>,
    capacity: u32,
    /// The free stack; its top is the last element.
    free: Vec<u32>,
}

impl DChain {
    /// A chain with every index free. Fails unless `0 < capacity <= 1 << 20`.
    pub fn new(capacity: u32) -> Result<Self, StateError> {
        check_capacity("dchain", capacity, DCHAIN_MAX_CAPACITY)?;
        Ok(DChain {
            ages: AgeList::new(capacity),
            capacity,
            free: (0..capacity).rev().collect(),
        })
    }

    /// The size of the index range.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Pops the top of the free stack, stamps it `now` and makes it the most recent.
    /// `None` iff every index is allocated.
    #[inline]
    pub fn allocate(&mut self, now: u64) -> Option<u32> {
        let i = self.free.pop()?;
        self.ages.push_back(i, now);
        Some(i)
    }

    /// Restamps an allocated index with `now` and makes it the most recent. `false` (and no
    /// change) if `index` is free or out of range.
    #[inline]
    pub fn rejuvenate(&mut self, index: u32, now: u64) -> bool {
        if !self.ages.contains(index) {
            return false;
        }
        self.ages.move_to_back(index, now);
        true
    }

    /// Frees the least recently touched index iff its timestamp is `< threshold`, pushing
    /// it on top of the free stack. Only the head is examined.
    #[inline]
    pub fn expire_one(&mut self, threshold: u64) -> Option<u32> {
        let head = self.ages.front()?;
        if self.ages.value(head) >= threshold {
            return None;
        }
        self.ages.unlink(head);
        self.free.push(head);
        Some(head)
    }

    /// Whether [`DChain::expire_one`] with this `threshold` would free an index: the
    /// oldest stamp is `< threshold`. Read-only, so a speculative pass (the `locks`
    /// strategy) can tell whether expiry needs the write lock.
    #[inline]
    pub fn would_expire(&self, threshold: u64) -> bool {
        self.oldest().is_some_and(|(_, stamp)| stamp < threshold)
    }

    /// Whether `index` is allocated; `false` when out of range.
    #[inline]
    pub fn is_allocated(&self, index: u32) -> bool {
        self.ages.contains(index)
    }

    /// Frees an allocated index, pushing it on top of the free stack. `false` (and no
    /// change) if it is already free or out of range.
    #[inline]
    pub fn free(&mut self, index: u32) -> bool {
        if !self.ages.contains(index) {
            return false;
        }
        self.ages.unlink(index);
        self.free.push(index);
        true
    }

    /// The timestamp of an allocated index; `None` if free or out of range.
    #[inline]
    pub fn timestamp(&self, index: u32) -> Option<u64> {
        self.ages.contains(index).then(|| self.ages.value(index))
    }

    /// How many indexes are allocated.
    #[inline]
    pub fn allocated(&self) -> u32 {
        self.ages.len()
    }

    /// Whether every index is allocated (the next `allocate` fails).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// The index `allocate` would hand out next, if any; lets callers predict the LIFO
    /// choice without allocating.
    #[inline]
    pub fn next_free(&self) -> Option<u32> {
        self.free.last().copied()
    }

    /// The least recently touched allocated index and its timestamp.
    #[inline]
    pub fn oldest(&self) -> Option<(u32, u64)> {
        self.ages.front().map(|i| (i, self.ages.value(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_limits() {
        assert_eq!(
            DChain::new(0).unwrap_err(),
            StateError::ZeroCapacity { what: "dchain" }
        );
        assert!(matches!(
            DChain::new(DCHAIN_MAX_CAPACITY + 1),
            Err(StateError::CapacityTooLarge { .. })
        ));
        let d = DChain::new(DCHAIN_MAX_CAPACITY).unwrap();
        assert_eq!(d.capacity(), DCHAIN_MAX_CAPACITY);
        assert_eq!(d.next_free(), Some(0));
    }

    #[test]
    fn fresh_chain_hands_out_ascending_then_fails() {
        let mut d = DChain::new(3).unwrap();
        assert_eq!(d.allocate(5), Some(0));
        assert_eq!(d.allocate(6), Some(1));
        assert_eq!(d.allocate(7), Some(2));
        assert!(d.is_full());
        assert_eq!(d.allocate(8), None);
        assert_eq!(d.allocated(), 3);
        assert_eq!(d.timestamp(1), Some(6));
        assert_eq!(d.ages.to_vec(), vec![0, 1, 2]);
    }

    #[test]
    fn freed_index_is_next_out() {
        let mut d = DChain::new(4).unwrap();
        for t in 0..4 {
            d.allocate(t);
        }
        assert!(d.free(2));
        assert!(!d.free(2));
        assert!(d.free(0));
        assert_eq!(d.allocate(10), Some(0));
        assert_eq!(d.allocate(11), Some(2));
        assert_eq!(d.allocate(12), None);
    }

    #[test]
    fn expire_one_strict_and_head_only() {
        let mut d = DChain::new(4).unwrap();
        assert_eq!(d.expire_one(u64::MAX), None);
        d.allocate(10); // 0
        d.allocate(20); // 1
        d.allocate(30); // 2
        assert!(d.rejuvenate(0, 40)); // order 1, 2, 0
        assert_eq!(d.expire_one(20), None, "ts == threshold survives");
        assert_eq!(d.expire_one(21), Some(1));
        // The head is now 2 (ts 30); 0 (ts 40) is not looked at.
        assert_eq!(d.expire_one(31), Some(2));
        assert_eq!(d.expire_one(31), None);
        // Freed in order 1 then 2: 2 is on top.
        assert_eq!(d.allocate(50), Some(2));
        assert_eq!(d.allocate(50), Some(1));
        assert_eq!(d.allocate(50), Some(3));
    }

    #[test]
    fn would_expire_agrees_with_expire_one() {
        let mut d = DChain::new(3).unwrap();
        assert!(!d.would_expire(u64::MAX), "an empty chain frees nothing");
        d.allocate(10);
        d.allocate(20);
        assert!(!d.would_expire(10), "ts == threshold survives");
        assert!(d.would_expire(11));
        assert!(d.rejuvenate(0, 30)); // order 1 (20), 0 (30)
        assert!(!d.would_expire(20));
        assert!(d.would_expire(21));
        for threshold in [0, 20, 21, 30, 31] {
            let mut e = d.clone();
            assert_eq!(d.would_expire(threshold), e.expire_one(threshold).is_some());
        }
    }

    #[test]
    fn out_of_range_is_harmless() {
        let mut d = DChain::new(2).unwrap();
        d.allocate(1);
        for i in [2, 3, u32::MAX] {
            assert!(!d.is_allocated(i));
            assert!(!d.rejuvenate(i, 5));
            assert!(!d.free(i));
            assert_eq!(d.timestamp(i), None);
        }
        assert!(!d.rejuvenate(1, 5), "free index is not rejuvenated");
        assert_eq!(d.allocated(), 1);
        assert_eq!(d.oldest(), Some((0, 1)));
    }
}
