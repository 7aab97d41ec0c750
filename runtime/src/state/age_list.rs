//! An intrusive doubly linked list over the indexes `[0, n)`, ordered by last touch.
//!
//! This is the age order of libVig's dchain (`R + 2` link cells in C; here one sentinel
//! and a "not linked" marker). Every operation is O(1), which is what lets expiry look
//! only at the head instead of scanning.

/// Marks an index that is not in the list.
const NIL: u32 = u32::MAX;

/// One index's links and the value its owner keeps beside them (the dchain's timestamp):
/// one cache line holds all that touching an index reads and writes, so a refresh costs
/// the cells of the index and its two neighbours, not one line per array.
#[derive(Debug, Clone, Copy)]
struct Cell<T> {
    prev: u32,
    next: u32,
    value: T,
}

#[derive(Debug, Clone)]
pub(crate) struct AgeList<T: Copy + Default = ()> {
    /// Cell `i` for `i < n`; cell `n` is the sentinel (head = its `next`, tail = its
    /// `prev`). `prev == NIL` iff `i` is not linked.
    cells: Vec<Cell<T>>,
    len: u32,
}

impl<T: Copy + Default> AgeList<T> {
    /// An empty list over `[0, n)`, every value `T::default()`. The caller guarantees
    /// `n < u32::MAX`.
    pub(crate) fn new(n: u32) -> Self {
        let unlinked = Cell {
            prev: NIL,
            next: NIL,
            value: T::default(),
        };
        let mut cells = vec![unlinked; n as usize + 1];
        cells[n as usize].prev = n;
        cells[n as usize].next = n;
        AgeList { cells, len: 0 }
    }

    #[inline]
    fn sentinel(&self) -> u32 {
        (self.cells.len() - 1) as u32
    }

    /// Whether `i` is in range and linked.
    #[inline]
    pub(crate) fn contains(&self, i: u32) -> bool {
        i < self.sentinel() && self.cells[i as usize].prev != NIL
    }

    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// The value kept for `i` (linked or not). Caller guarantees `i` is in range.
    #[inline]
    pub(crate) fn value(&self, i: u32) -> T {
        self.cells[i as usize].value
    }

    /// The least recently touched index.
    #[inline]
    pub(crate) fn front(&self) -> Option<u32> {
        let s = self.sentinel();
        let head = self.cells[s as usize].next;
        (head != s).then_some(head)
    }

    /// Links `i` at the tail with `value`. Caller guarantees `i` is in range and not
    /// linked.
    #[inline]
    pub(crate) fn push_back(&mut self, i: u32, value: T) {
        debug_assert!(i < self.sentinel() && !self.contains(i));
        let s = self.sentinel();
        let tail = self.cells[s as usize].prev;
        self.cells[tail as usize].next = i;
        self.cells[i as usize] = Cell {
            prev: tail,
            next: s,
            value,
        };
        self.cells[s as usize].prev = i;
        self.len += 1;
    }

    /// Unlinks `i`; its value stays. Caller guarantees `i` is linked.
    #[inline]
    pub(crate) fn unlink(&mut self, i: u32) {
        debug_assert!(self.contains(i));
        let Cell { prev, next, .. } = self.cells[i as usize];
        self.cells[prev as usize].next = next;
        self.cells[next as usize].prev = prev;
        let cell = &mut self.cells[i as usize];
        cell.prev = NIL;
        cell.next = NIL;
        self.len -= 1;
    }

    /// Moves a linked `i` to the tail (most recent), with a new value.
    #[inline]
    pub(crate) fn move_to_back(&mut self, i: u32, value: T) {
        self.unlink(i);
        self.push_back(i, value);
    }

    /// The linked indexes from head (oldest) to tail; for tests and debugging.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u32> {
        let s = self.sentinel();
        let mut out = Vec::new();
        let mut cur = self.cells[s as usize].next;
        while cur != s {
            out.push(cur);
            cur = self.cells[cur as usize].next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_unlink_move() {
        let mut l: AgeList = AgeList::new(4);
        assert_eq!(l.front(), None);
        l.push_back(2, ());
        l.push_back(0, ());
        l.push_back(3, ());
        assert_eq!(l.to_vec(), vec![2, 0, 3]);
        assert_eq!(l.front(), Some(2));
        l.move_to_back(2, ());
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
