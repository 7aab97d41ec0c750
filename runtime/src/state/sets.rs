//! Small bounded sets, one per index (e.g. the port-scan detector's touched ports).

use super::{check_capacity, StateError, MAX_CAPACITY};

/// Largest `per_set` accepted. Membership is a linear scan, meant for small sets.
pub const SETS_MAX_PER_SET: u32 = 1 << 16;

/// `sets` independent sets, each holding at most `per_set` distinct elements.
///
/// This replaces the PSD's per-source port vector, whose C cleanup is buggy (quirk Q11):
/// the NF clears a source's set on expiry or reallocation.
#[derive(Debug, Clone)]
pub struct BoundedSets<T> {
    sets: Vec<Vec<T>>,
    per_set: u32,
}

impl<T: Eq + Clone> BoundedSets<T> {
    /// `sets` empty sets. Fails unless `0 < sets <= MAX_CAPACITY` and
    /// `0 < per_set <= SETS_MAX_PER_SET`.
    pub fn new(sets: u32, per_set: u32) -> Result<Self, StateError> {
        check_capacity("sets (number of sets)", sets, MAX_CAPACITY)?;
        check_capacity("sets (elements per set)", per_set, SETS_MAX_PER_SET)?;
        Ok(BoundedSets {
            sets: (0..sets).map(|_| Vec::new()).collect(),
            per_set,
        })
    }

    /// Empties set `i`; `false` when out of range.
    pub fn clear(&mut self, i: u32) -> bool {
        match self.sets.get_mut(i as usize) {
            Some(s) => {
                s.clear();
                true
            }
            None => false,
        }
    }

    /// Whether set `i` holds `x`; `false` when out of range.
    pub fn contains(&self, i: u32, x: &T) -> bool {
        self.sets.get(i as usize).is_some_and(|s| s.contains(x))
    }

    /// Adds `x` to set `i`; `false` (and no change) if out of range, present or full.
    pub fn insert(&mut self, i: u32, x: T) -> bool {
        let per_set = self.per_set as usize;
        match self.sets.get_mut(i as usize) {
            Some(s) if s.len() < per_set && !s.contains(&x) => {
                s.push(x);
                true
            }
            _ => false,
        }
    }

    /// The number of elements in set `i`; 0 when out of range.
    pub fn count(&self, i: u32) -> u32 {
        self.sets.get(i as usize).map_or(0, |s| s.len() as u32)
    }

    /// The number of sets.
    pub fn sets(&self) -> u32 {
        self.sets.len() as u32
    }

    /// The most elements one set can hold.
    pub fn per_set(&self) -> u32 {
        self.per_set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_distinct() {
        let mut p = BoundedSets::<u16>::new(2, 2).unwrap();
        assert!(p.insert(0, 80));
        assert!(!p.insert(0, 80));
        assert!(p.insert(0, 443));
        assert!(!p.insert(0, 22), "full");
        assert!(p.contains(0, &443));
        assert!(!p.contains(1, &443));
        assert_eq!(p.count(0), 2);
        assert!(p.clear(0));
        assert_eq!(p.count(0), 0);
        assert!(p.insert(0, 22));
        assert!(!p.insert(2, 22));
        assert!(!p.clear(2));
        assert!(!p.contains(2, &22));
        assert_eq!(p.count(2), 0);
        assert_eq!((p.sets(), p.per_set()), (2, 2));
    }

    #[test]
    fn parameters_checked() {
        assert!(matches!(
            BoundedSets::<u8>::new(0, 1),
            Err(StateError::ZeroCapacity { .. })
        ));
        assert!(matches!(
            BoundedSets::<u8>::new(1, 0),
            Err(StateError::ZeroCapacity { .. })
        ));
        assert!(BoundedSets::<u8>::new(1, SETS_MAX_PER_SET + 1).is_err());
    }
}
