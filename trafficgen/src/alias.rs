//! Exact sampling from a discrete distribution in O(1): Walker's alias method, built with
//! Vose's numerically stable variant. Used for Zipf flow popularity.

use rand::distributions::{Distribution, Uniform};
use rand::RngCore;

/// One column of the alias table: keep the column with probability `prob`, else take
/// `alias`.
#[derive(Clone, Copy, Debug)]
struct Column {
    prob: f64,
    alias: u32,
}

/// An alias table over `0..n`.
#[derive(Debug)]
pub(crate) struct Alias {
    table: Vec<Column>,
    pick: Uniform<u32>,
}

/// 2^-53: turns the top 53 bits of a `u64` into a uniform `f64` in `[0, 1)`.
const UNIT: f64 = 1.0 / (1u64 << 53) as f64;

impl Alias {
    /// The table for probabilities proportional to `weights` (positive and finite; the
    /// caller guarantees `1 <= weights.len() <= u32::MAX`).
    pub(crate) fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let mut table = vec![
            Column {
                prob: 1.0,
                alias: 0,
            };
            n
        ];
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let (si, li) = (s as usize, l as usize);
            table[si] = Column {
                prob: scaled[si],
                alias: l,
            };
            // Vose: (big + small) - 1 loses less precision than big - (1 - small).
            scaled[li] = (scaled[li] + scaled[si]) - 1.0;
            if scaled[li] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left has (up to rounding) exactly probability 1 of keeping itself.
        for i in large.into_iter().chain(small) {
            table[i as usize] = Column {
                prob: 1.0,
                alias: i,
            };
        }
        Alias {
            pick: Uniform::new(0, n as u32),
            table,
        }
    }

    /// One draw: two random numbers, one table read.
    #[inline]
    pub(crate) fn sample<R: RngCore>(&self, rng: &mut R) -> u32 {
        let i = self.pick.sample(rng);
        let c = self.table[i as usize];
        let u = (rng.next_u64() >> 11) as f64 * UNIT;
        if u < c.prob {
            i
        } else {
            c.alias
        }
    }

    /// The probability of each outcome the table encodes (for tests).
    #[cfg(test)]
    pub(crate) fn probabilities(&self) -> Vec<f64> {
        let n = self.table.len() as f64;
        let mut p: Vec<f64> = self.table.iter().map(|c| c.prob / n).collect();
        for c in &self.table {
            if c.prob < 1.0 {
                p[c.alias as usize] += (1.0 - c.prob) / n;
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn zipf(n: usize, s: f64) -> Vec<f64> {
        let w: Vec<f64> = (1..=n).map(|r| (r as f64).powf(-s)).collect();
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|x| x / sum).collect()
    }

    #[test]
    fn table_encodes_the_exact_distribution() {
        for (n, s) in [
            (1, 1.0),
            (2, 0.5),
            (7, 2.0),
            (1000, 1.26),
            (40_000, 1.26),
            (500, 0.0),
        ] {
            let want = zipf(n, s);
            let got = Alias::new(&want).probabilities();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-12 * w.max(1e-300) + 1e-15,
                    "n={n} s={s} i={i}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn samples_follow_the_distribution() {
        // Chi-square goodness of fit over 20 outcomes (19 degrees of freedom): the 99.99th
        // percentile is 47.0; a fixed seed makes the test deterministic.
        let want = zipf(20, 1.26);
        let alias = Alias::new(&want);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws = 2_000_000u64;
        let mut counts = [0u64; 20];
        for _ in 0..draws {
            counts[alias.sample(&mut rng) as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&want)
            .map(|(&c, &p)| {
                let e = p * draws as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 47.0, "chi-square {chi2}, counts {counts:?}");
    }
}
