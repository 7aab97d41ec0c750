//! Count-min sketch of the connection limiter (`nf-semantics.md` §2.7), with the intended
//! per-row cells rather than the C code's shared map (quirk Q10).

use super::age_list::AgeList;
use super::{check_capacity, StateError};
use crate::hash::{crc32c_step, SKETCH_SALTS};

/// The number of rows (`SKETCH_HASHES`).
pub const SKETCH_ROWS: usize = 4;

/// Largest width accepted (each row is indexed like a dchain, so libVig's `IRANG_LIMIT`).
pub const SKETCH_MAX_WIDTH: u32 = 1 << 20;

/// `SKETCH_ROWS × width` cells, each absent or holding a count and a last-touch stamp.
///
/// Each row keeps its present cells in an age list (oldest first), so `expire` only looks
/// at cells that actually expire instead of scanning the whole sketch on every packet.
#[derive(Debug, Clone)]
pub struct CountMinSketch {
    width: u32,
    ttl: u64,
    threshold: u32,
    /// `crc32c_step(0, SALT[r])`, the per-row starting accumulator.
    seeds: [u32; SKETCH_ROWS],
    /// Indexed `r * width + c`; meaningful only for present cells.
    counts: Vec<u32>,
    stamps: Vec<u64>,
    /// Row `r`'s present cells, least recently touched first.
    rows: [AgeList; SKETCH_ROWS],
}

impl CountMinSketch {
    /// An empty sketch. Fails unless `0 < width <= 1 << 20`.
    pub fn new(width: u32, ttl: u64, threshold: u32) -> Result<Self, StateError> {
        check_capacity("sketch width", width, SKETCH_MAX_WIDTH)?;
        let cells = SKETCH_ROWS * width as usize;
        Ok(CountMinSketch {
            width,
            ttl,
            threshold,
            seeds: SKETCH_SALTS.map(|s| crc32c_step(0, s)),
            counts: vec![0; cells],
            stamps: vec![0; cells],
            rows: std::array::from_fn(|_| AgeList::new(width)),
        })
    }

    /// The cell of `key_hash` in each row:
    /// `crc32c_step(crc32c_step(0, SALT[r]), key_hash) % width`.
    #[inline]
    pub fn cells(&self, key_hash: u32) -> [u32; 4] {
        self.seeds
            .map(|seed| crc32c_step(seed, key_hash) % self.width)
    }

    /// Removes every cell whose stamp is `< now - ttl` (saturating).
    pub fn expire(&mut self, now: u64) {
        let threshold = now.saturating_sub(self.ttl);
        let width = self.width as usize;
        for (r, row) in self.rows.iter_mut().enumerate() {
            while let Some(c) = row.front() {
                if self.stamps[r * width + c as usize] >= threshold {
                    break;
                }
                row.unlink(c);
            }
        }
    }

    /// Whether the key is over the limit: at least one of its cells is present and the
    /// minimum count over its present cells is `> threshold`.
    pub fn over(&self, key_hash: u32) -> bool {
        let mut min: Option<u32> = None;
        for (r, c) in self.cells(key_hash).into_iter().enumerate() {
            if let Some((count, _)) = self.cell(r as u32, c) {
                min = Some(min.map_or(count, |m| m.min(count)));
            }
        }
        min.is_some_and(|m| m > self.threshold)
    }

    /// Counts one more for the key: an absent cell appears with count 0, a present one is
    /// incremented (saturating); all four are stamped `now`.
    pub fn touch(&mut self, key_hash: u32, now: u64) {
        let width = self.width as usize;
        for (r, c) in self.cells(key_hash).into_iter().enumerate() {
            let slot = r * width + c as usize;
            let row = &mut self.rows[r];
            if row.contains(c) {
                self.counts[slot] = self.counts[slot].saturating_add(1);
                row.move_to_back(c, ());
            } else {
                self.counts[slot] = 0;
                row.push_back(c, ());
            }
            self.stamps[slot] = now;
        }
    }

    /// Restamps the key's present cells with `now`; absent cells stay absent.
    pub fn refresh(&mut self, key_hash: u32, now: u64) {
        let width = self.width as usize;
        for (r, c) in self.cells(key_hash).into_iter().enumerate() {
            let row = &mut self.rows[r];
            if row.contains(c) {
                self.stamps[r * width + c as usize] = now;
                row.move_to_back(c, ());
            }
        }
    }

    /// Cell `(row, col)` as `(count, stamp)`; `None` if absent or out of range.
    #[inline]
    pub fn cell(&self, row: u32, col: u32) -> Option<(u32, u64)> {
        let r = self.rows.get(row as usize)?;
        if !r.contains(col) {
            return None;
        }
        let slot = row as usize * self.width as usize + col as usize;
        Some((self.counts[slot], self.stamps[slot]))
    }

    /// The number of present cells over all rows.
    pub fn present(&self) -> u32 {
        self.rows.iter().map(AgeList::len).sum()
    }

    /// The number of cells per row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The idle time after which a cell disappears.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// The count a key's minimum must exceed to be over the limit.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_checked() {
        assert_eq!(
            CountMinSketch::new(0, 1, 1).unwrap_err(),
            StateError::ZeroCapacity {
                what: "sketch width"
            }
        );
        assert!(CountMinSketch::new(SKETCH_MAX_WIDTH + 1, 1, 1).is_err());
    }

    #[test]
    fn touch_starts_at_zero_and_over_is_strict() {
        let mut s = CountMinSketch::new(1024, 100, 2).unwrap();
        let k = 0xdead_beef;
        assert!(!s.over(k), "no present cell is never over");
        s.touch(k, 1);
        for (r, c) in s.cells(k).into_iter().enumerate() {
            assert_eq!(s.cell(r as u32, c), Some((0, 1)));
        }
        s.touch(k, 2);
        s.touch(k, 3);
        assert!(!s.over(k), "count 2 is not > 2");
        s.touch(k, 4);
        assert!(s.over(k));
        assert_eq!(s.present(), 4);
    }

    #[test]
    fn refresh_and_expire() {
        let mut s = CountMinSketch::new(64, 10, 0).unwrap();
        s.touch(1, 0);
        s.touch(2, 5);
        s.refresh(1, 5);
        s.refresh(3, 5); // absent cells of key 3 (unless shared) stay absent
        s.expire(15);
        assert!(s
            .cells(1)
            .iter()
            .enumerate()
            .all(|(r, &c)| s.cell(r as u32, c).is_some()));
        s.expire(16);
        assert_eq!(s.present(), 0);
        assert!(!s.over(1));
    }

    #[test]
    fn cells_use_salted_crc() {
        let s = CountMinSketch::new(1000, 1, 1).unwrap();
        let k = 0x0102_0304;
        let want: Vec<u32> = SKETCH_SALTS
            .iter()
            .map(|&salt| crc32c_step(crc32c_step(0, salt), k) % 1000)
            .collect();
        assert_eq!(s.cells(k).to_vec(), want);
        assert_eq!(s.cell(4, 0), None);
        assert_eq!(s.cell(0, 1000), None);
    }

    #[test]
    fn count_saturates() {
        let mut s = CountMinSketch::new(1, 10, 5).unwrap();
        s.touch(0, 0);
        let slot = 0;
        s.counts[slot] = u32::MAX - 1;
        s.touch(0, 0);
        s.touch(0, 0);
        assert_eq!(s.cell(0, 0), Some((u32::MAX, 0)));
    }
}
