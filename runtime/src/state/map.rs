//! Bounded map (`nf-semantics.md` §2.1) and zero-initialised vector (§2.2).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::{check_capacity, StateError, MAX_CAPACITY};

/// A small multiplicative hasher (the rustc "Fx" scheme). A map's layout is not observable,
/// so we only need speed and determinism, not the DoS resistance of SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = self.hash.wrapping_add(w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
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
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the entropy in the high bits; rotate it down to where the
        // table index is taken from.
        self.hash.rotate_left(26)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Entries a new map has room for before its first rehash.
const INITIAL_ENTRIES: u32 = 1024;

/// A map with a fixed capacity, like libVig's `Map` but owning its keys.
///
/// Where the C map has undefined behaviour (put of a present key or into a full map), this
/// one refuses and changes nothing.
///
/// Storage grows with the entries (doubling, at most to what `capacity` entries need)
/// instead of being reserved for `capacity` up front: a flow table sized for 65,536 flows
/// that holds 20,000 then stays small enough to live in a core's L2 cache, which made the
/// generated fw's record run a quarter cheaper. The price is a rehash at each doubling,
/// about a dozen times in a map's life (from 1,024 entries up), never on a lookup.
#[derive(Debug, Clone)]
pub struct Map<K, V> {
    inner: HashMap<K, V, FxBuild>,
    capacity: u32,
}

impl<K: Eq + Hash, V> Map<K, V> {
    /// An empty map. Fails unless `0 < capacity <= MAX_CAPACITY`.
    pub fn new(capacity: u32) -> Result<Self, StateError> {
        check_capacity("map", capacity, MAX_CAPACITY)?;
        Ok(Map {
            inner: HashMap::with_capacity_and_hasher(
                capacity.min(INITIAL_ENTRIES) as usize,
                FxBuild::default(),
            ),
            capacity,
        })
    }

    /// The value of `k`, if present.
    #[inline]
    pub fn get(&self, k: &K) -> Option<&V> {
        self.inner.get(k)
    }

    /// Whether `k` is present.
    #[inline]
    pub fn contains(&self, k: &K) -> bool {
        self.inner.contains_key(k)
    }

    /// Inserts `k -> v`. `false` (and no change) if `k` is present or the map is full.
    #[inline]
    pub fn put(&mut self, k: K, v: V) -> bool {
        if self.is_full() || self.inner.contains_key(&k) {
            return false;
        }
        self.inner.insert(k, v);
        true
    }

    /// Removes `k`, returning its value; `None` if absent.
    #[inline]
    pub fn erase(&mut self, k: &K) -> Option<V> {
        self.inner.remove(k)
    }

    /// The number of entries.
    #[inline]
    pub fn len(&self) -> u32 {
        self.inner.len() as u32
    }

    /// Whether the map has no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether `put` of a new key would fail for lack of room.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// The fixed capacity.
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.inner.iter()
    }
}

/// A fixed-size array whose elements start as `T::default()` (the C code sometimes leaves
/// them uninitialised; we zero them, quirk Q14). Out-of-range access reads `None` and
/// writes fail, instead of the C code's unchecked access.
#[derive(Debug, Clone)]
pub struct Vector<T> {
    items: Vec<T>,
}

impl<T: Default> Vector<T> {
    /// A vector of `capacity` default elements. Fails unless `0 < capacity <= MAX_CAPACITY`.
    pub fn new(capacity: u32) -> Result<Self, StateError> {
        check_capacity("vector", capacity, MAX_CAPACITY)?;
        Ok(Vector {
            items: (0..capacity).map(|_| T::default()).collect(),
        })
    }

    /// Element `i`; `None` when out of range.
    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize)
    }

    /// Mutable element `i`; `None` when out of range.
    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize)
    }

    /// Overwrites element `i`; `false` (and no change) when out of range.
    #[inline]
    pub fn set(&mut self, i: u32, v: T) -> bool {
        match self.items.get_mut(i as usize) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }

    /// The fixed number of elements.
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.items.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_refuses_full_and_duplicate() {
        let mut m = Map::new(2).unwrap();
        assert!(m.put(1u32, 'a'));
        assert!(!m.put(1, 'b'));
        assert_eq!(m.get(&1), Some(&'a'));
        assert!(m.put(2, 'c'));
        assert!(m.is_full());
        assert!(!m.put(3, 'd'));
        assert!(!m.contains(&3));
        assert_eq!(m.len(), 2);
        assert_eq!(m.erase(&1), Some('a'));
        assert_eq!(m.erase(&1), None);
        assert!(m.put(3, 'd'));
        assert_eq!(m.capacity(), 2);
        assert_eq!(m.iter().count(), 2);
    }

    /// Storage grows past the initial reservation without losing or inventing entries,
    /// and the capacity, not the storage, decides when the map is full.
    #[test]
    fn map_grows_to_its_capacity() {
        let cap = INITIAL_ENTRIES * 5 + 3;
        let mut m = Map::new(cap).unwrap();
        for k in 0..cap {
            assert!(m.put(k, k ^ 0x5a5a), "put {k} of {cap}");
        }
        assert!(m.is_full());
        assert!(!m.put(cap, 0));
        assert!((0..cap).all(|k| m.get(&k) == Some(&(k ^ 0x5a5a))));
        assert_eq!(m.get(&cap), None);
        // Erasing frees room for exactly as many new keys.
        for k in 0..10 {
            assert_eq!(m.erase(&k), Some(k ^ 0x5a5a));
        }
        assert!((cap..cap + 10).all(|k| m.put(k, 1)));
        assert!(!m.put(cap + 10, 1));
        assert_eq!(m.len(), cap);
    }
    #[test]
    fn map_capacity_checked() {
        assert_eq!(
            Map::<u32, u32>::new(0).unwrap_err(),
            StateError::ZeroCapacity { what: "map" }
        );
        assert!(matches!(
            Map::<u32, u32>::new(MAX_CAPACITY + 1),
            Err(StateError::CapacityTooLarge { .. })
        ));
    }

    #[test]
    fn vector_zero_initialised_and_bounded() {
        let mut v = Vector::<u64>::new(3).unwrap();
        assert_eq!(v.get(2), Some(&0));
        assert_eq!(v.get(3), None);
        assert!(v.set(1, 9));
        assert!(!v.set(3, 9));
        assert_eq!(v.get(1), Some(&9));
        *v.get_mut(0).unwrap() += 4;
        assert_eq!(v.get(0), Some(&4));
        assert!(v.get_mut(u32::MAX).is_none());
        assert_eq!(v.capacity(), 3);
        assert!(Vector::<u8>::new(0).is_err());
    }

    #[test]
    fn fx_hasher_distinguishes_lengths() {
        let h = |b: &[u8]| {
            let mut s = FxHasher::default();
            s.write(b);
            s.finish()
        };
        assert_ne!(h(&[0]), h(&[0, 0]));
        assert_ne!(h(&[1, 2, 3]), h(&[1, 2, 4]));
    }
}
