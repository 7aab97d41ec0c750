//! Linear algebra over GF(2) with packed bit rows: the whole RSS problem is a homogeneous
//! linear system on key bits, so Gaussian elimination solves it exactly.

use rand::Rng;

/// A bit vector of fixed length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitVec {
    words: Vec<u64>,
}

impl BitVec {
    pub fn zeros(len: usize) -> Self {
        BitVec {
            words: vec![0; len.div_ceil(64)],
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        if v {
            self.words[i / 64] |= 1 << (i % 64);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    #[inline]
    pub fn toggle(&mut self, i: usize) {
        self.words[i / 64] ^= 1 << (i % 64);
    }

    pub fn xor_with(&mut self, other: &BitVec) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a ^= b;
        }
    }

    pub fn is_zero(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Parity of `self & other`: the value of a linear form at a point.
    pub fn dot(&self, other: &BitVec) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .fold(0u32, |acc, (a, b)| acc ^ (a & b).count_ones())
            & 1
            == 1
    }

    fn first_one(&self) -> Option<usize> {
        self.words
            .iter()
            .enumerate()
            .find(|(_, &w)| w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }
}

/// The solution space of `rows · x = 0`, kept in reduced row echelon form.
#[derive(Clone, Debug)]
pub struct Nullspace {
    vars: usize,
    /// (pivot variable, row): the row has its pivot and free variables only.
    rows: Vec<(usize, BitVec)>,
    pivot: BitVec,
    /// For each variable, the index in `rows` of the row it is the pivot of.
    row_of: Vec<Option<usize>>,
}

impl Nullspace {
    /// Eliminates `equations` over `vars` variables.
    pub fn new(vars: usize, equations: Vec<BitVec>) -> Self {
        let mut rows: Vec<(usize, BitVec)> = Vec::new();
        for mut eq in equations {
            // Reduce by existing pivots (kept fully reduced, so one pass suffices).
            for (p, r) in &rows {
                if eq.get(*p) {
                    eq.xor_with(r);
                }
            }
            let Some(p) = eq.first_one() else { continue };
            for (_, r) in rows.iter_mut() {
                if r.get(p) {
                    r.xor_with(&eq);
                }
            }
            rows.push((p, eq));
        }
        let mut pivot = BitVec::zeros(vars);
        let mut row_of = vec![None; vars];
        for (i, (p, _)) in rows.iter().enumerate() {
            pivot.set(*p, true);
            row_of[*p] = Some(i);
        }
        Nullspace {
            vars,
            rows,
            pivot,
            row_of,
        }
    }

    /// Whether variable `v` is zero in every solution: it is a pivot whose (fully
    /// reduced) row names no free variable.
    pub fn forced_zero(&self, v: usize) -> bool {
        match self.row_of.get(v).copied().flatten() {
            Some(i) => {
                self.rows[i]
                    .1
                    .words
                    .iter()
                    .map(|w| w.count_ones())
                    .sum::<u32>()
                    == 1
            }
            None => false,
        }
    }

    /// A solution with variable `v` set, if one exists: the basis vector of a free
    /// variable `v` depends on (chosen at random among them).
    pub fn basis_with(&self, v: usize, rng: &mut impl Rng) -> Option<BitVec> {
        if v >= self.vars {
            return None;
        }
        let free = match self.row_of[v] {
            None => v,
            Some(i) => {
                let row = &self.rows[i].1;
                let frees: Vec<usize> = (0..self.vars).filter(|&f| f != v && row.get(f)).collect();
                *frees.get(rng.gen_range(0..frees.len().max(1)))?
            }
        };
        let mut x = BitVec::zeros(self.vars);
        x.set(free, true);
        for (p, r) in &self.rows {
            if r.get(free) {
                x.set(*p, true);
            }
        }
        Some(x)
    }

    /// Dimension of the solution space.
    pub fn dimension(&self) -> usize {
        self.vars - self.rows.len()
    }

    /// A uniformly random solution.
    pub fn sample(&self, rng: &mut impl Rng) -> BitVec {
        let mut x = BitVec::zeros(self.vars);
        for i in 0..self.vars {
            if !self.pivot.get(i) && rng.gen::<bool>() {
                x.set(i, true);
            }
        }
        for (p, r) in &self.rows {
            // Pivot bits of x are still zero, so the dot product sees free variables only.
            let v = r.dot(&x);
            x.set(*p, v);
        }
        x
    }
}

/// Rank of a set of rows (each a `u64` of at most 64 columns).
pub fn rank(rows: &[u64]) -> usize {
    let mut basis: Vec<u64> = Vec::new();
    for &r in rows {
        let mut v = r;
        for &b in &basis {
            v = v.min(v ^ b);
        }
        if v != 0 {
            basis.push(v);
            basis.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
    basis.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn samples_satisfy_equations() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let vars = 130;
        let eqs: Vec<BitVec> = (0..90)
            .map(|_| {
                let mut e = BitVec::zeros(vars);
                for i in 0..vars {
                    e.set(i, rng.gen::<u8>() < 20);
                }
                e
            })
            .collect();
        let ns = Nullspace::new(vars, eqs.clone());
        assert!(ns.dimension() >= 40);
        for _ in 0..50 {
            let x = ns.sample(&mut rng);
            for e in &eqs {
                assert!(!e.dot(&x));
            }
        }
    }

    #[test]
    fn forced_variables_and_basis_vectors() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        // x0 = 0, x1 + x2 = 0, x3 free.
        let mut e0 = BitVec::zeros(4);
        e0.set(0, true);
        let mut e1 = BitVec::zeros(4);
        e1.set(1, true);
        e1.set(2, true);
        let ns = Nullspace::new(4, vec![e0.clone(), e1.clone()]);
        assert!(ns.forced_zero(0));
        for v in 1..4 {
            assert!(!ns.forced_zero(v), "{v}");
            let x = ns.basis_with(v, &mut rng).unwrap();
            assert!(x.get(v));
            assert!(!e0.dot(&x) && !e1.dot(&x));
        }
        assert!(ns.basis_with(0, &mut rng).is_none());
    }

    #[test]
    fn rank_of_rows() {
        assert_eq!(rank(&[1, 2, 3]), 2);
        assert_eq!(rank(&[0, 0]), 0);
        assert_eq!(rank(&[0b100, 0b110, 0b111]), 3);
    }
}
