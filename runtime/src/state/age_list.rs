//! An intrusive doubly linked list over the indexes `[0, n)`, ordered by last touch.
//!
//! This is the age order of libVig's dchain (`R + 2` link cells in C; here one sentinel
//! and a "not linked" marker). Every operation is O(1), which is what lets expiry look
//! only at the head instead of scanning.

/// Marks an index that is not in the list.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(crate) struct AgeList {
    /// `prev[i]`/`next[i]` for `i < n`; index `n` is the sentinel (head = `next[n]`,
    /// tail = `prev[n]`). `prev[i] == NIL` iff `i` is not linked.
    prev: Vec<u32>,
    next: Vec<u32>,
    len: u32,
}

impl AgeList {
    /// An empty list over `[0, n)`. The caller guarantees `n < u32::MAX`.
    pub(crate) fn new(n: u32) -> Self {
        let cells = n as usize + 1;
        let mut prev = vec![NIL; cells];
        let mut next = vec![NIL; cells];
        prev[n as usize] = n;
        next[n as usize] = n;
        AgeList { prev, next, len: 0 }
    }

    #[inline]
    fn sentinel(&self) -> u32 {
        (self.prev.len() - 1) as u32
    }

    /// Whether `i` is in range and linked.
    #[inline]
    pub(crate) fn contains(&self, i: u32) -> bool {
        i < self.sentinel() && self.prev[i as usize] != NIL
    }

    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// The least recently touched index.
    #[inline]
    pub(crate) fn front(&self) -> Option<u32> {
        let s = self.sentinel();
        let head = self.next[s as usize];
        (head != s).then_some(head)
    }

    /// Links `i` at the tail. Caller guarantees `i` is in range and not linked.
    #[inline]
    pub(crate) fn push_back(&mut self, i: u32) {
        debug_assert!(i < self.sentinel() && !self.contains(i));
        let s = self.sentinel();
        let tail = self.prev[s as usize];
        self.next[tail as usize] = i;
        self.prev[i as usize] = tail;
        self.next[i as usize] = s;
        self.prev[s as usize] = i;
        self.len += 1;
    }

    /// Unlinks `i`. Caller guarantees `i` is linked.
    #[inline]
    pub(crate) fn unlink(&mut self, i: u32) {
        debug_assert!(self.contains(i));
        let p = self.prev[i as usize];
        let n = self.next[i as usize];
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
        self.prev[i as usize] = NIL;
        self.next[i as usize] = NIL;
        self.len -= 1;
    }

    /// Moves a linked `i` to the tail (most recent).
    #[inline]
    pub(crate) fn move_to_back(&mut self, i: u32) {
        self.unlink(i);
        self.push_back(i);
    }

    /// The linked indexes from head (oldest) to tail; for tests and debugging.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u32> {
        let s = self.sentinel();
        let mut out = Vec::new();
        let mut cur = self.next[s as usize];
        while cur != s {
            out.push(cur);
            cur = self.next[cur as usize];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_unlink_move() {
        let mut l = AgeList::new(4);
        assert_eq!(l.front(), None);
        l.push_back(2);
        l.push_back(0);
        l.push_back(3);
        assert_eq!(l.to_vec(), vec![2, 0, 3]);
        assert_eq!(l.front(), Some(2));
        l.move_to_back(2);
        assert_eq!(l.to_vec(), vec![0, 3, 2]);
        l.unlink(3);
        assert_eq!(l.to_vec(), vec![0, 2]);
        assert!(!l.contains(3));
        assert!(!l.contains(4));
        assert!(!l.contains(u32::MAX));
        assert_eq!(l.len(), 2);
        l.unlink(0);
        l.unlink(2);
        assert_eq!(l.front(), None);
        assert_eq!(l.len(), 0);
    }
}
