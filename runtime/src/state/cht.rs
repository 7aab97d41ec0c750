//! Consistent-hashing table of the load balancer (`nf-semantics.md` §2.6).

use super::{check_capacity, StateError, DCHAIN_MAX_CAPACITY};

/// libVig's `MAX_CHT_HEIGHT`.
pub const CHT_MAX_HEIGHT: u32 = 40_000;

/// Largest `height × backends` table accepted (256 MiB of `u32`s).
pub const CHT_MAX_CELLS: u64 = 1 << 26;

/// A `height × backends` table of backend preference lists, filled once at start-up.
///
/// The fill order decides which backend a flow goes to, so it reproduces libVig's
/// `cht_fill_cht` exactly. Liveness is not part of the table: [`Cht::find`] walks a row
/// and asks the caller which backends are alive.
#[derive(Debug, Clone)]
pub struct Cht {
    height: u32,
    backends: u32,
    table: Vec<u32>,
}

// `is_multiple_of` needs Rust 1.87; the workspace supports 1.80.
#[allow(unknown_lints, clippy::manual_is_multiple_of)]
fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while d.saturating_mul(d) <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

impl Cht {
    /// Builds the table. `height` must be a prime in `2..=40000`; `backends` must be in
    /// `1..=1 << 20` and `height × backends` at most [`CHT_MAX_CELLS`].
    pub fn new(height: u32, backends: u32) -> Result<Self, StateError> {
        if height > CHT_MAX_HEIGHT {
            return Err(StateError::CapacityTooLarge {
                what: "cht height",
                capacity: u64::from(height),
                max: u64::from(CHT_MAX_HEIGHT),
            });
        }
        if !is_prime(height) {
            return Err(StateError::NotPrime { height });
        }
        check_capacity("cht backends", backends, DCHAIN_MAX_CAPACITY)?;
        let cells = u64::from(height) * u64::from(backends);
        if cells > CHT_MAX_CELLS {
            return Err(StateError::CapacityTooLarge {
                what: "cht (height × backends)",
                capacity: cells,
                max: CHT_MAX_CELLS,
            });
        }

        let h = u64::from(height);
        let b = backends as usize;
        // offset_i = (31*i) mod H, shift_i = (i mod (H-1)) + 1.
        let offsets: Vec<u64> = (0..u64::from(backends)).map(|i| (31 * i) % h).collect();
        let shifts: Vec<u64> = (0..u64::from(backends)).map(|i| i % (h - 1) + 1).collect();
        let mut table = vec![0u32; cells as usize];
        let mut next = vec![0usize; height as usize];
        for j in 0..h {
            for i in 0..b {
                let row = ((offsets[i] + shifts[i] * j) % h) as usize;
                table[row * b + next[row]] = i as u32;
                next[row] += 1;
            }
        }
        debug_assert!(next.iter().all(|&n| n == b));
        Ok(Cht {
            height,
            backends,
            table,
        })
    }

    /// The first live backend in row `hash mod height`, in preference order; `None` if
    /// none of them is live.
    #[inline]
    pub fn find(&self, hash: u64, is_live: impl Fn(u32) -> bool) -> Option<u32> {
        let row = (hash % u64::from(self.height)) as u32;
        self.row(row).iter().copied().find(|&b| is_live(b))
    }

    /// Row `r`'s preference list (a permutation of the backends); empty when out of range.
    pub fn row(&self, r: u32) -> &[u32] {
        if r >= self.height {
            return &[];
        }
        let b = self.backends as usize;
        let start = r as usize * b;
        &self.table[start..start + b]
    }

    /// The number of rows (prime).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The number of backends, i.e. the length of each row.
    pub fn backends(&self) -> u32 {
        self.backends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primality() {
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(97));
        assert!(is_prime(39_989));
        assert!(!is_prime(40_000));
    }

    #[test]
    fn hand_computed_h5_b3() {
        // perm_0 = 0 1 2 3 4 (offset 0, shift 1)
        // perm_1 = 1 3 0 2 4 (offset 1, shift 2)
        // perm_2 = 2 0 3 1 4 (offset 2, shift 3)
        // Filling by position j, then backend i:
        let c = Cht::new(5, 3).unwrap();
        assert_eq!(c.row(0), &[0, 2, 1]);
        assert_eq!(c.row(1), &[1, 0, 2]);
        assert_eq!(c.row(2), &[2, 0, 1]);
        assert_eq!(c.row(3), &[1, 2, 0]);
        assert_eq!(c.row(4), &[0, 1, 2]);
        assert_eq!(c.row(5), &[] as &[u32]);
        assert_eq!(c.height(), 5);
        assert_eq!(c.backends(), 3);
    }

    #[test]
    fn hand_computed_h2_b3() {
        // H = 2: every shift is 1; offsets 0, 1, 0.
        // perm_0 = 0 1, perm_1 = 1 0, perm_2 = 0 1.
        let c = Cht::new(2, 3).unwrap();
        assert_eq!(c.row(0), &[0, 2, 1]);
        assert_eq!(c.row(1), &[1, 0, 2]);
    }

    #[test]
    fn every_row_is_a_permutation() {
        for (h, b) in [(2, 1), (3, 7), (7, 3), (97, 32), (101, 200)] {
            let c = Cht::new(h, b).unwrap();
            for r in 0..h {
                let mut row = c.row(r).to_vec();
                row.sort_unstable();
                assert_eq!(row, (0..b).collect::<Vec<_>>(), "H={h} B={b} row {r}");
            }
        }
    }

    #[test]
    fn find_walks_the_row() {
        let c = Cht::new(5, 3).unwrap();
        // 7 mod 5 = 2 -> [2, 0, 1]
        assert_eq!(c.find(7, |_| true), Some(2));
        assert_eq!(c.find(7, |b| b != 2), Some(0));
        assert_eq!(c.find(7, |b| b == 1), Some(1));
        assert_eq!(c.find(7, |_| false), None);
        assert_eq!(
            c.find(u64::MAX, |_| true),
            Some(c.row((u64::MAX % 5) as u32)[0])
        );
    }

    #[test]
    fn bad_parameters() {
        for h in [0, 1, 4, 96, 39_999] {
            assert_eq!(
                Cht::new(h, 3).unwrap_err(),
                StateError::NotPrime { height: h }
            );
        }
        assert!(matches!(
            Cht::new(40_009, 3),
            Err(StateError::CapacityTooLarge {
                what: "cht height",
                ..
            })
        ));
        assert_eq!(
            Cht::new(97, 0).unwrap_err(),
            StateError::ZeroCapacity {
                what: "cht backends"
            }
        );
        assert!(matches!(
            Cht::new(39_989, 1 << 20),
            Err(StateError::CapacityTooLarge { .. })
        ));
    }
}
