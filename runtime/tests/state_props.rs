//! Model-based property tests for the state types: random operation sequences on small
//! capacities (so tables fill up), run against deliberately simple reference models.
//! Time only moves forward, as the dchain contract requires.

use std::collections::{BTreeMap, BTreeSet};

use maestro_runtime::hash::SKETCH_SALTS;
use maestro_runtime::state::{
    BoundedSets, Cht, CountMinSketch, DChain, ExpiringTable, Map, Vector,
};
use proptest::prelude::*;

const CASES: u32 = 3000;
const MAX_OPS: usize = 60;

/// An index argument: mostly in range for capacities 1..=8, sometimes far out of range.
fn index() -> impl Strategy<Value = u32> {
    prop_oneof![9 => 0u32..10, 1 => Just(u32::MAX)]
}

/// A time step; 0 is common so that equal timestamps (ties at the threshold) occur.
fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![2 => Just(0u64), 3 => 1u64..4, 1 => 4u64..12]
}

// ---------------------------------------------------------------------------------------
// DChain

/// Age order as a plain list (oldest first) and the free list as a stack (top = last).
struct ChainModel {
    cap: u32,
    ages: Vec<(u32, u64)>,
    free: Vec<u32>,
}

impl ChainModel {
    fn new(cap: u32) -> Self {
        ChainModel {
            cap,
            ages: Vec::new(),
            free: (0..cap).rev().collect(),
        }
    }
    fn pos(&self, i: u32) -> Option<usize> {
        self.ages.iter().position(|&(j, _)| j == i)
    }
    fn allocate(&mut self, now: u64) -> Option<u32> {
        let i = self.free.pop()?;
        self.ages.push((i, now));
        Some(i)
    }
    fn rejuvenate(&mut self, i: u32, now: u64) -> bool {
        match self.pos(i) {
            Some(p) => {
                self.ages.remove(p);
                self.ages.push((i, now));
                true
            }
            None => false,
        }
    }
    fn expire_one(&mut self, threshold: u64) -> Option<u32> {
        match self.ages.first() {
            Some(&(i, ts)) if ts < threshold => {
                self.ages.remove(0);
                self.free.push(i);
                Some(i)
            }
            _ => None,
        }
    }
    fn free(&mut self, i: u32) -> bool {
        match self.pos(i) {
            Some(p) => {
                self.ages.remove(p);
                self.free.push(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone)]
enum ChainOp {
    Allocate(u64),
    Rejuvenate(u32, u64),
    /// Threshold is `now + 1 - back` (saturating): from "everything up to now" downwards.
    ExpireOne(u64),
    Free(u32),
}

fn chain_op() -> impl Strategy<Value = ChainOp> {
    prop_oneof![
        4 => dt().prop_map(ChainOp::Allocate),
        3 => (index(), dt()).prop_map(|(i, d)| ChainOp::Rejuvenate(i, d)),
        3 => (0u64..10).prop_map(ChainOp::ExpireOne),
        2 => index().prop_map(ChainOp::Free),
    ]
}

fn check_chain(d: &DChain, m: &ChainModel) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.capacity(), m.cap);
    prop_assert_eq!(d.allocated(), m.ages.len() as u32);
    prop_assert_eq!(d.is_full(), m.free.is_empty());
    prop_assert_eq!(d.next_free(), m.free.last().copied());
    prop_assert_eq!(d.oldest(), m.ages.first().copied());
    for i in (0..m.cap + 2).chain([u32::MAX]) {
        let ts = m.pos(i).map(|p| m.ages[p].1);
        prop_assert_eq!(d.is_allocated(i), ts.is_some(), "index {}", i);
        prop_assert_eq!(d.timestamp(i), ts, "index {}", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn dchain_matches_model(cap in 1u32..=8, ops in prop::collection::vec(chain_op(), 0..MAX_OPS)) {
        let mut d = DChain::new(cap).unwrap();
        let mut m = ChainModel::new(cap);
        let mut now = 0u64;
        check_chain(&d, &m)?;
        for op in ops {
            match op {
                ChainOp::Allocate(step) => {
                    now += step;
                    prop_assert_eq!(d.allocate(now), m.allocate(now));
                }
                ChainOp::Rejuvenate(i, step) => {
                    now += step;
                    prop_assert_eq!(d.rejuvenate(i, now), m.rejuvenate(i, now));
                }
                ChainOp::ExpireOne(back) => {
                    let threshold = (now + 1).saturating_sub(back);
                    prop_assert_eq!(d.expire_one(threshold), m.expire_one(threshold));
                }
                ChainOp::Free(i) => prop_assert_eq!(d.free(i), m.free(i)),
            }
            check_chain(&d, &m)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// ExpiringTable

/// A BTreeMap for the keys, a list in age order, a free stack and plain key/value arrays.
struct TableModel {
    cap: u32,
    ttl: u64,
    map: BTreeMap<u8, u32>,
    ages: Vec<(u32, u64)>,
    free: Vec<u32>,
    keys: Vec<Option<u8>>,
    values: Vec<u32>,
}

impl TableModel {
    fn new(cap: u32, ttl: u64) -> Self {
        TableModel {
            cap,
            ttl,
            map: BTreeMap::new(),
            ages: Vec::new(),
            free: (0..cap).rev().collect(),
            keys: vec![None; cap as usize],
            values: vec![0; cap as usize],
        }
    }
    fn expire(&mut self, now: u64) -> u32 {
        let threshold = now.saturating_sub(self.ttl);
        let mut n = 0;
        while let Some(&(i, ts)) = self.ages.first() {
            if ts >= threshold {
                break;
            }
            self.ages.remove(0);
            self.free.push(i);
            self.map.remove(&self.keys[i as usize].unwrap());
            n += 1;
        }
        n
    }
    fn add(&mut self, k: u8, v: u32, now: u64) -> Option<u32> {
        if self.map.contains_key(&k) {
            return None;
        }
        let i = self.free.pop()?;
        self.ages.push((i, now));
        self.map.insert(k, i);
        self.keys[i as usize] = Some(k);
        self.values[i as usize] = v;
        Some(i)
    }
    fn refresh(&mut self, i: u32, now: u64) -> bool {
        match self.ages.iter().position(|&(j, _)| j == i) {
            Some(p) => {
                self.ages.remove(p);
                self.ages.push((i, now));
                true
            }
            None => false,
        }
    }
    fn remove(&mut self, k: u8) -> bool {
        match self.map.remove(&k) {
            Some(i) => {
                let p = self.ages.iter().position(|&(j, _)| j == i).unwrap();
                self.ages.remove(p);
                self.free.push(i);
                true
            }
            None => false,
        }
    }
    fn set_value(&mut self, i: u32, v: u32) -> bool {
        match self.values.get_mut(i as usize) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone)]
enum TableOp {
    Tick(u64),
    Expire,
    Add(u8, u32),
    Refresh(u32),
    Remove(u8),
    SetValue(u32, u32),
}

const KEYS: u8 = 12;

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        3 => dt().prop_map(TableOp::Tick),
        3 => Just(TableOp::Expire),
        5 => (0..KEYS, any::<u32>()).prop_map(|(k, v)| TableOp::Add(k, v)),
        2 => index().prop_map(TableOp::Refresh),
        2 => (0..KEYS).prop_map(TableOp::Remove),
        1 => (index(), any::<u32>()).prop_map(|(i, v)| TableOp::SetValue(i, v)),
    ]
}

fn check_table(t: &ExpiringTable<u8, u32>, m: &TableModel) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.len(), m.map.len() as u32);
    prop_assert_eq!(t.is_full(), m.free.is_empty());
    prop_assert_eq!(t.capacity(), m.cap);
    prop_assert_eq!(t.ttl(), m.ttl);
    for k in 0..KEYS + 1 {
        prop_assert_eq!(t.get(&k), m.map.get(&k).copied(), "key {}", k);
        prop_assert_eq!(t.contains(&k), m.map.contains_key(&k));
    }
    for i in (0..m.cap + 2).chain([u32::MAX]) {
        let allocated = m.ages.iter().any(|&(j, _)| j == i);
        prop_assert_eq!(t.has_index(i), allocated, "index {}", i);
        prop_assert_eq!(t.key(i), m.keys.get(i as usize).and_then(|k| k.as_ref()));
        prop_assert_eq!(t.value(i), m.values.get(i as usize));
        prop_assert_eq!(
            t.chain().timestamp(i),
            m.ages.iter().find(|&&(j, _)| j == i).map(|&(_, ts)| ts)
        );
    }
    // Coherence: allocated index <=> its key maps back to it.
    for (&k, &i) in &m.map {
        prop_assert_eq!(t.key(i), Some(&k));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn table_matches_model(
        cap in 1u32..=8,
        ttl in 0u64..8,
        ops in prop::collection::vec(table_op(), 0..MAX_OPS),
    ) {
        let mut t = ExpiringTable::<u8, u32>::new(cap, ttl).unwrap();
        let mut m = TableModel::new(cap, ttl);
        let mut now = 0u64;
        for op in ops {
            match op {
                TableOp::Tick(step) => now += step,
                TableOp::Expire => prop_assert_eq!(t.expire(now), m.expire(now)),
                TableOp::Add(k, v) => prop_assert_eq!(t.add(k, v, now), m.add(k, v, now)),
                TableOp::Refresh(i) => prop_assert_eq!(t.refresh(i, now), m.refresh(i, now)),
                TableOp::Remove(k) => prop_assert_eq!(t.remove(&k), m.remove(k)),
                TableOp::SetValue(i, v) => prop_assert_eq!(t.set_value(i, v), m.set_value(i, v)),
            }
            check_table(&t, &m)?;
        }
    }

    /// An entry stamped `ts` survives expiry at `ts + ttl` and is gone at `ts + ttl + 1`,
    /// whatever else is in the table.
    #[test]
    fn table_expiry_exact_threshold(
        cap in 1u32..=8,
        ttl in 0u64..1_000_000_000_000,
        start in 0u64..1_000_000,
        gaps in prop::collection::vec(0u64..3, 1..8),
    ) {
        let mut t = ExpiringTable::<u32, ()>::new(cap, ttl).unwrap();
        let mut stamps = Vec::new();
        let mut ts = start;
        for (k, gap) in gaps.iter().enumerate() {
            ts += gap;
            if t.add(k as u32, (), ts).is_some() {
                stamps.push((k as u32, ts));
            }
        }
        // Walk the distinct stamps in order so that `now` never decreases.
        let mut distinct: Vec<u64> = stamps.iter().map(|&(_, ts)| ts).collect();
        distinct.dedup();
        for &s in &distinct {
            t.expire(s + ttl);
            for &(k, ts) in &stamps {
                prop_assert_eq!(t.contains(&k), ts >= s, "at now = {} + ttl {}: key stamped {}", s, ttl, ts);
            }
            t.expire(s + ttl + 1);
            for &(k, ts) in &stamps {
                prop_assert_eq!(t.contains(&k), ts > s, "at now = {} + ttl {} + 1: key stamped {}", s, ttl, ts);
            }
        }
        prop_assert!(t.is_empty());
    }

    /// After expiry or removal the most recently freed index is the next one handed out.
    #[test]
    fn table_lifo_reuse(
        cap in 1u32..=8,
        ops in prop::collection::vec(table_op(), 0..MAX_OPS),
        key in 0..KEYS,
    ) {
        let ttl = 3;
        let mut t = ExpiringTable::<u8, u32>::new(cap, ttl).unwrap();
        let mut now = 0u64;
        let mut last_freed: Option<u32> = None;
        for op in ops {
            match op {
                TableOp::Tick(step) => now += step,
                TableOp::Expire => {
                    // Predict the freed indexes in head order: the last one is on top.
                    let before: Vec<u32> = (0..cap).filter(|&i| t.has_index(i)).collect();
                    let mut by_age: Vec<(u64, u32)> = before
                        .iter()
                        .map(|&i| (t.chain().timestamp(i).unwrap(), i))
                        .collect();
                    by_age.sort();
                    let n = t.expire(now);
                    if n > 0 {
                        let gone: Vec<u32> = before.iter().copied().filter(|&i| !t.has_index(i)).collect();
                        prop_assert_eq!(gone.len() as u32, n);
                        // Freed oldest first, so the newest of the freed is on top. Ties in
                        // timestamp are broken by list order, which the chain knows; the
                        // index handed out next must be one of the freed with the max stamp.
                        let max_ts = gone.iter().map(|&i| by_age.iter().find(|e| e.1 == i).unwrap().0).max();
                        let top = t.chain().next_free().unwrap();
                        prop_assert!(gone.contains(&top));
                        prop_assert_eq!(Some(by_age.iter().find(|e| e.1 == top).unwrap().0), max_ts);
                        last_freed = Some(top);
                    }
                }
                TableOp::Add(k, v) => {
                    let got = t.add(k, v, now);
                    if got.is_some() {
                        if let Some(f) = last_freed.take() {
                            prop_assert_eq!(got, Some(f), "the most recently freed index must be reused first");
                        }
                    }
                }
                TableOp::Refresh(i) => {
                    t.refresh(i, now);
                }
                TableOp::Remove(k) => {
                    if let Some(i) = t.get(&k) {
                        prop_assert!(t.remove(&k));
                        last_freed = Some(i);
                    } else {
                        prop_assert!(!t.remove(&k));
                    }
                }
                TableOp::SetValue(i, v) => {
                    t.set_value(i, v);
                }
            }
        }
        // Finally: remove any present key and add a fresh one; it gets the same index.
        if let Some(i) = (0..KEYS).find_map(|k| t.get(&k)) {
            let k = *t.key(i).unwrap();
            prop_assert!(t.remove(&k));
            let fresh = KEYS + 1 + key;
            prop_assert_eq!(t.add(fresh, 0, now), Some(i));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Map

#[derive(Debug, Clone)]
enum MapOp {
    Put(u8, u16),
    Erase(u8),
}

fn map_op() -> impl Strategy<Value = MapOp> {
    prop_oneof![
        3 => (0..KEYS, any::<u16>()).prop_map(|(k, v)| MapOp::Put(k, v)),
        2 => (0..KEYS).prop_map(MapOp::Erase),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn map_matches_model(cap in 1u32..=8, ops in prop::collection::vec(map_op(), 0..MAX_OPS)) {
        let mut map = Map::<u8, u16>::new(cap).unwrap();
        let mut model = BTreeMap::<u8, u16>::new();
        for op in ops {
            match op {
                MapOp::Put(k, v) => {
                    let ok = !model.contains_key(&k) && (model.len() as u32) < cap;
                    if ok {
                        model.insert(k, v);
                    }
                    prop_assert_eq!(map.put(k, v), ok);
                }
                MapOp::Erase(k) => prop_assert_eq!(map.erase(&k), model.remove(&k)),
            }
            prop_assert_eq!(map.len(), model.len() as u32);
            prop_assert_eq!(map.is_full(), model.len() as u32 == cap);
            prop_assert_eq!(map.is_empty(), model.is_empty());
            for k in 0..KEYS {
                prop_assert_eq!(map.get(&k), model.get(&k));
                prop_assert_eq!(map.contains(&k), model.contains_key(&k));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// BoundedSets

#[derive(Debug, Clone)]
enum SetsOp {
    Insert(u32, u8),
    Clear(u32),
}

fn sets_op() -> impl Strategy<Value = SetsOp> {
    prop_oneof![
        5 => (index(), 0u8..8).prop_map(|(i, x)| SetsOp::Insert(i, x)),
        1 => index().prop_map(SetsOp::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn bounded_sets_match_model(
        sets in 1u32..=8,
        per_set in 1u32..=5,
        ops in prop::collection::vec(sets_op(), 0..MAX_OPS),
    ) {
        let mut s = BoundedSets::<u8>::new(sets, per_set).unwrap();
        let mut model: Vec<BTreeSet<u8>> = vec![BTreeSet::new(); sets as usize];
        for op in ops {
            match op {
                SetsOp::Insert(i, x) => {
                    let ok = match model.get_mut(i as usize) {
                        Some(set) if (set.len() as u32) < per_set && !set.contains(&x) => {
                            set.insert(x);
                            true
                        }
                        _ => false,
                    };
                    prop_assert_eq!(s.insert(i, x), ok);
                }
                SetsOp::Clear(i) => {
                    let ok = match model.get_mut(i as usize) {
                        Some(set) => {
                            set.clear();
                            true
                        }
                        None => false,
                    };
                    prop_assert_eq!(s.clear(i), ok);
                }
            }
            for i in (0..sets + 2).chain([u32::MAX]) {
                let set = model.get(i as usize);
                prop_assert_eq!(s.count(i), set.map_or(0, |x| x.len() as u32));
                for x in 0u8..8 {
                    prop_assert_eq!(s.contains(i, &x), set.is_some_and(|st| st.contains(&x)));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CountMinSketch

/// §1.6 verbatim, so the model does not share the table-driven hash with the runtime.
fn crc32c_bitwise(acc: u32, x: u32) -> u32 {
    let mut acc = acc ^ x;
    for _ in 0..32 {
        acc = (acc >> 1) ^ if acc & 1 != 0 { 0x82F6_3B78 } else { 0 };
    }
    acc
}

/// Plain `[4][W]` arrays of optional `(count, stamp)`, expired by a full scan.
struct SketchModel {
    width: u32,
    ttl: u64,
    threshold: u32,
    cells: [Vec<Option<(u32, u64)>>; 4],
}

impl SketchModel {
    fn col(&self, r: usize, key: u32) -> usize {
        (crc32c_bitwise(crc32c_bitwise(0, SKETCH_SALTS[r]), key) % self.width) as usize
    }
    fn touch(&mut self, key: u32, now: u64) {
        for r in 0..4 {
            let c = self.col(r, key);
            let cell = &mut self.cells[r][c];
            *cell = Some(match *cell {
                None => (0, now),
                Some((n, _)) => (n.saturating_add(1), now),
            });
        }
    }
    fn refresh(&mut self, key: u32, now: u64) {
        for r in 0..4 {
            let c = self.col(r, key);
            if let Some((_, ts)) = &mut self.cells[r][c] {
                *ts = now;
            }
        }
    }
    fn expire(&mut self, now: u64) {
        let threshold = now.saturating_sub(self.ttl);
        for row in &mut self.cells {
            for cell in row.iter_mut() {
                if matches!(cell, Some((_, ts)) if *ts < threshold) {
                    *cell = None;
                }
            }
        }
    }
    fn over(&self, key: u32) -> bool {
        (0..4)
            .filter_map(|r| self.cells[r][self.col(r, key)].map(|(n, _)| n))
            .min()
            .is_some_and(|m| m > self.threshold)
    }
}

#[derive(Debug, Clone)]
enum SketchOp {
    Tick(u64),
    Touch(usize),
    Refresh(usize),
    Expire,
}

fn sketch_op() -> impl Strategy<Value = SketchOp> {
    prop_oneof![
        2 => dt().prop_map(SketchOp::Tick),
        5 => (0usize..6).prop_map(SketchOp::Touch),
        2 => (0usize..6).prop_map(SketchOp::Refresh),
        2 => Just(SketchOp::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn sketch_matches_model(
        width in 1u32..=8,
        ttl in 0u64..8,
        threshold in 0u32..4,
        keys in prop::collection::vec(any::<u32>(), 6),
        ops in prop::collection::vec(sketch_op(), 0..MAX_OPS),
    ) {
        let mut s = CountMinSketch::new(width, ttl, threshold).unwrap();
        let mut m = SketchModel {
            width,
            ttl,
            threshold,
            cells: std::array::from_fn(|_| vec![None; width as usize]),
        };
        let mut now = 0u64;
        for &k in &keys {
            let want: Vec<u32> = (0..4).map(|r| m.col(r, k) as u32).collect();
            prop_assert_eq!(s.cells(k).to_vec(), want);
        }
        for op in ops {
            match op {
                SketchOp::Tick(step) => now += step,
                SketchOp::Touch(k) => {
                    s.touch(keys[k], now);
                    m.touch(keys[k], now);
                }
                SketchOp::Refresh(k) => {
                    s.refresh(keys[k], now);
                    m.refresh(keys[k], now);
                }
                SketchOp::Expire => {
                    s.expire(now);
                    m.expire(now);
                }
            }
            for r in 0..4u32 {
                for c in 0..width {
                    prop_assert_eq!(s.cell(r, c), m.cells[r as usize][c as usize], "cell ({}, {})", r, c);
                }
            }
            for &k in &keys {
                prop_assert_eq!(s.over(k), m.over(k), "key {:#x}", k);
            }
            let present = m.cells.iter().flatten().filter(|c| c.is_some()).count() as u32;
            prop_assert_eq!(s.present(), present);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Vector: a plain Vec model.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn vector_matches_model(
        cap in 1u32..=8,
        ops in prop::collection::vec((index(), any::<Option<u16>>()), 0..MAX_OPS),
    ) {
        let mut v = Vector::<u16>::new(cap).unwrap();
        let mut model = vec![0u16; cap as usize];
        for (i, op) in ops {
            match op {
                Some(x) => {
                    let in_range = (i as usize) < model.len();
                    prop_assert_eq!(v.set(i, x), in_range);
                    if in_range {
                        model[i as usize] = x;
                    }
                }
                None => prop_assert_eq!(v.get(i), model.get(i as usize)),
            }
        }
        for (i, x) in model.iter().enumerate() {
            prop_assert_eq!(v.get(i as u32), Some(x));
        }
    }
}

// ---------------------------------------------------------------------------------------
// CHT: the preference order of §2.6 computed independently, as "the backend whose
// permutation reaches the row first, ties to the lower backend", against `row` and `find`.

fn small_prime() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![2u32, 3, 5, 7, 11, 13, 97])
}

fn first_position(i: u32, h: u32, row: u32) -> u32 {
    let offset = (31 * i) % h;
    let shift = (i % (h - 1)) + 1;
    (0..h)
        .find(|&j| (offset + shift * j) % h == row)
        .expect("a permutation of a prime height reaches every row")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn cht_matches_model(
        h in small_prime(),
        b in 1u32..=8,
        hash in any::<u64>(),
        live in prop::collection::vec(any::<bool>(), 8),
    ) {
        let cht = Cht::new(h, b).unwrap();
        let row = (hash % u64::from(h)) as u32;
        let mut expected: Vec<u32> = (0..b).collect();
        expected.sort_by_key(|&i| (first_position(i, h, row), i));
        prop_assert_eq!(cht.row(row), &expected[..]);
        let first_live = expected.iter().copied().find(|&i| live[i as usize]);
        prop_assert_eq!(cht.find(hash, |i| live[i as usize]), first_live);
    }
}
