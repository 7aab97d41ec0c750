//! State objects of a running NF and the meaning of each state call.
//!
//! Values are [`Value`]s; table and vector slots are [`Slot`]s so that a never-written
//! slot reads as the zero value of its declared type (the runtime only knows
//! `Default`, which cannot know the type).

use crate::key::{Key, KeyCodec};
use crate::{hash_value, InterpError};
use maestro_analyzer::{IntTy, Method, RecordDef, StateDecl, StateKind, Value};
use maestro_runtime::state::{
    BoundedSets, Cht, CountMinSketch, DChain, ExpiringTable, Map, StateError, Vector,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A table or vector slot: `None` until first written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slot(Option<Value>);

pub struct StateObj {
    name: String,
    kind: Kind,
}

enum Kind {
    Table {
        t: ExpiringTable<Key, Slot>,
        codec: KeyCodec,
        key_zero: Value,
        value_zero: Value,
    },
    Map {
        m: Map<Key, Value>,
        codec: KeyCodec,
    },
    Vector {
        v: Vector<Slot>,
        zero: Value,
    },
    DChain {
        d: DChain,
        ttl: u64,
    },
    Cht {
        c: Cht,
        backends: usize,
    },
    Sketch(CountMinSketch),
    /// A sketch's collision-free limit ([`crate::InterpOptions::ideal_sketches`]).
    IdealSketch(IdealSketch),
    Sets {
        s: BoundedSets<Value>,
        sets: u32,
    },
}

/// An index outside the object's range: the call's fallback result and what to report.
pub struct OutOfRange {
    pub index: u64,
    pub limit: u64,
    pub fallback: Option<Value>,
}

fn alloc_err<'a>(
    decl: &'a StateDecl,
    param: &'static str,
) -> impl FnOnce(StateError) -> InterpError + 'a {
    move |source| InterpError::State {
        state: decl.name.clone(),
        kind: decl.kind.kind_name(),
        param,
        source,
    }
}

impl StateObj {
    /// Allocates `decl`; with `ideal_sketches`, a sketch becomes an [`IdealSketch`].
    pub fn new(
        decl: &StateDecl,
        records: &Arc<[RecordDef]>,
        ideal_sketches: bool,
    ) -> Result<StateObj, InterpError> {
        let kind = match &decl.kind {
            StateKind::Table {
                key,
                value,
                capacity,
                ttl,
            } => Kind::Table {
                t: ExpiringTable::new(*capacity, *ttl).map_err(alloc_err(decl, "capacity"))?,
                codec: KeyCodec::new(*key, records.clone()),
                key_zero: Value::zero(*key, records),
                value_zero: match value {
                    Some(v) => Value::zero(*v, records),
                    None => Value::Bool(false),
                },
            },
            StateKind::Map {
                key,
                capacity,
                init,
                ..
            } => {
                let codec = KeyCodec::new(*key, records.clone());
                let mut m = Map::new(*capacity).map_err(alloc_err(decl, "capacity"))?;
                if let Some(init) = init {
                    for (i, (k, v)) in init.entries.iter().enumerate() {
                        if !m.put(codec.encode(k), v.clone()) {
                            return Err(InterpError::MapInit {
                                state: decl.name.clone(),
                                path: init.path.display().to_string(),
                                entry: i + 1,
                            });
                        }
                    }
                }
                Kind::Map { m, codec }
            }
            StateKind::Vector { elem, capacity } => Kind::Vector {
                v: Vector::new(*capacity).map_err(alloc_err(decl, "capacity"))?,
                zero: Value::zero(*elem, records),
            },
            StateKind::DChain { capacity, ttl } => Kind::DChain {
                d: DChain::new(*capacity).map_err(alloc_err(decl, "capacity"))?,
                ttl: *ttl,
            },
            StateKind::Cht {
                height,
                backends,
                backend_count,
            } => {
                let param = |e: &StateError| match e {
                    StateError::NotPrime { .. } => "height",
                    _ => "backends",
                };
                let c = Cht::new(*height, *backend_count).map_err(|e| InterpError::State {
                    state: decl.name.clone(),
                    kind: "cht",
                    param: param(&e),
                    source: e,
                })?;
                Kind::Cht {
                    c,
                    backends: backends.0 as usize,
                }
            }
            StateKind::Sketch { ttl, threshold, .. } if ideal_sketches => {
                Kind::IdealSketch(IdealSketch::new(*ttl, *threshold))
            }
            StateKind::Sketch {
                width,
                ttl,
                threshold,
                ..
            } => Kind::Sketch(
                CountMinSketch::new(*width, *ttl, *threshold).map_err(alloc_err(decl, "width"))?,
            ),
            StateKind::Sets { sets, per_set, .. } => Kind::Sets {
                s: BoundedSets::new(*sets, *per_set).map_err(alloc_err(decl, "sets/per_set"))?,
                sets: *sets,
            },
        };
        Ok(StateObj {
            name: decl.name.clone(),
            kind,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[inline]
fn u32v(x: u32) -> Value {
    Value::Int(IntTy::U32, x as u64)
}

#[inline]
fn index(v: &Option<Value>) -> u64 {
    v.as_ref().map_or(0, Value::bits)
}

/// Performs `states[sid].method(a0, a1)` at time `now`.
///
/// `Ok(None)` is "no result". Index arguments are `u32` by type; `has_index` and
/// `is_allocated` answer `false` out of range without a fault (they are how programs test
/// untrusted indexes), every other call through an out-of-range index is an
/// [`OutOfRange`] fault with the zero value (or `false`) as its result.
pub fn call(
    states: &mut [StateObj],
    sid: usize,
    method: Method,
    a0: Option<Value>,
    a1: Option<Value>,
    now: u64,
) -> Result<Option<Value>, OutOfRange> {
    use Method::*;
    // The CHT reads another object (its backend table): handle it before borrowing.
    if method == ChtFind {
        let (h, backends) = match states.get(sid).map(|s| &s.kind) {
            Some(Kind::Cht { backends, .. }) => (index(&a0), *backends),
            _ => return Ok(None),
        };
        let Some(StateObj {
            kind: Kind::Cht { c, .. },
            ..
        }) = states.get(sid)
        else {
            return Ok(None);
        };
        let table = match states.get(backends).map(|s| &s.kind) {
            Some(Kind::Table { t, .. }) => t,
            _ => return Ok(None),
        };
        return Ok(c.find(h, |b| table.has_index(b)).map(u32v));
    }
    let Some(obj) = states.get_mut(sid) else {
        return Ok(None);
    };
    let b = |x: bool| Ok(Some(Value::Bool(x)));
    let oob = |i: u64, limit: u64, fallback: Option<Value>| {
        Err(OutOfRange {
            index: i,
            limit,
            fallback,
        })
    };
    // Keys are encoded from a reference: no clone of a record value.
    let no_key = Value::Bool(false);
    let kr = a0.as_ref().unwrap_or(&no_key);
    match (&mut obj.kind, method) {
        (Kind::Table { t, .. }, TableExpire) => Ok(Some(u32v(t.expire(now)))),
        (Kind::Table { t, codec, .. }, TableGet) => Ok(t.get(&codec.encode(kr)).map(u32v)),
        (Kind::Table { t, codec, .. }, TableContains) => b(t.contains(&codec.encode(kr))),
        (Kind::Table { t, codec, .. }, TableAdd) => {
            Ok(t.add(codec.encode(kr), Slot(a1), now).map(u32v))
        }
        (Kind::Table { t, .. }, TableRefresh) => {
            let i = index(&a0);
            if i >= t.capacity() as u64 {
                return oob(i, t.capacity() as u64, Some(Value::Bool(false)));
            }
            b(t.refresh(i as u32, now))
        }
        (Kind::Table { t, .. }, TableHasIndex) => {
            let i = index(&a0);
            b(i < t.capacity() as u64 && t.has_index(i as u32))
        }
        (
            Kind::Table {
                t, codec, key_zero, ..
            },
            TableKey,
        ) => {
            let i = index(&a0);
            if i >= t.capacity() as u64 {
                return oob(i, t.capacity() as u64, Some(key_zero.clone()));
            }
            Ok(Some(
                t.key(i as u32)
                    .map(|k| codec.decode(k))
                    .unwrap_or_else(|| key_zero.clone()),
            ))
        }
        (Kind::Table { t, value_zero, .. }, TableValue) => {
            let i = index(&a0);
            if i >= t.capacity() as u64 {
                return oob(i, t.capacity() as u64, Some(value_zero.clone()));
            }
            let v = t.value(i as u32).and_then(|s| s.0.clone());
            Ok(Some(v.unwrap_or_else(|| value_zero.clone())))
        }
        (Kind::Table { t, .. }, TableSetValue) => {
            let i = index(&a0);
            if i >= t.capacity() as u64 {
                return oob(i, t.capacity() as u64, None);
            }
            t.set_value(i as u32, Slot(a1));
            Ok(None)
        }
        (Kind::Table { t, codec, .. }, TableRemove) => b(t.remove(&codec.encode(kr))),
        (Kind::Table { t, .. }, TableFull) => b(t.is_full()),
        (Kind::Table { t, .. }, TableSize) => Ok(Some(u32v(t.len()))),

        (Kind::Map { m, codec }, MapGet) => Ok(m.get(&codec.encode(kr)).cloned()),
        (Kind::Map { m, codec }, MapContains) => b(m.contains(&codec.encode(kr))),
        (Kind::Map { m, codec }, MapPut) => {
            b(m.put(codec.encode(kr), a1.unwrap_or(Value::Bool(false))))
        }
        (Kind::Map { m, codec }, MapErase) => b(m.erase(&codec.encode(kr)).is_some()),
        (Kind::Map { m, .. }, MapSize) => Ok(Some(u32v(m.len()))),

        (Kind::Vector { v, zero }, VectorGet) => {
            let i = index(&a0);
            match v.get(i.min(u32::MAX as u64) as u32) {
                Some(s) if i <= u32::MAX as u64 => {
                    Ok(Some(s.0.clone().unwrap_or_else(|| zero.clone())))
                }
                _ => oob(i, v.capacity() as u64, Some(zero.clone())),
            }
        }
        (Kind::Vector { v, .. }, VectorSet) => {
            let i = index(&a0);
            if i > u32::MAX as u64 || !v.set(i as u32, Slot(a1)) {
                return oob(i, v.capacity() as u64, None);
            }
            Ok(None)
        }

        (Kind::DChain { d, .. }, DChainAllocate) => Ok(d.allocate(now).map(u32v)),
        (Kind::DChain { d, .. }, DChainRefresh) => {
            let i = index(&a0);
            if i >= d.capacity() as u64 {
                return oob(i, d.capacity() as u64, Some(Value::Bool(false)));
            }
            b(d.rejuvenate(i as u32, now))
        }
        (Kind::DChain { d, .. }, DChainIsAllocated) => {
            let i = index(&a0);
            b(i < d.capacity() as u64 && d.is_allocated(i as u32))
        }
        (Kind::DChain { d, .. }, DChainFree) => {
            let i = index(&a0);
            if i >= d.capacity() as u64 {
                return oob(i, d.capacity() as u64, Some(Value::Bool(false)));
            }
            b(d.free(i as u32))
        }
        (Kind::DChain { d, ttl }, DChainExpire) => {
            let threshold = now.saturating_sub(*ttl);
            let mut n = 0u32;
            while d.expire_one(threshold).is_some() {
                n = n.saturating_add(1);
            }
            Ok(Some(u32v(n)))
        }

        (Kind::Sketch(s), SketchExpire) => {
            s.expire(now);
            Ok(None)
        }
        (Kind::Sketch(s), SketchOver) => b(s.over(hash_value(kr))),
        (Kind::Sketch(s), SketchTouch) => {
            s.touch(hash_value(kr), now);
            Ok(None)
        }
        (Kind::Sketch(s), SketchRefresh) => {
            s.refresh(hash_value(kr), now);
            Ok(None)
        }
        (Kind::IdealSketch(s), SketchExpire) => {
            s.expire(now);
            Ok(None)
        }
        (Kind::IdealSketch(s), SketchOver) => b(s.over(hash_value(kr))),
        (Kind::IdealSketch(s), SketchTouch) => {
            s.touch(hash_value(kr), now);
            Ok(None)
        }
        (Kind::IdealSketch(s), SketchRefresh) => {
            s.refresh(hash_value(kr), now);
            Ok(None)
        }

        (Kind::Sets { s, sets }, m @ (SetsClear | SetsContains | SetsInsert | SetsCount)) => {
            let i = index(&a0);
            if i >= *sets as u64 {
                let fallback = match m {
                    SetsClear => None,
                    SetsCount => Some(u32v(0)),
                    _ => Some(Value::Bool(false)),
                };
                return oob(i, *sets as u64, fallback);
            }
            let i = i as u32;
            let x = a1.unwrap_or(Value::Bool(false));
            match m {
                SetsClear => {
                    s.clear(i);
                    Ok(None)
                }
                SetsContains => b(s.contains(i, &x)),
                SetsInsert => b(s.insert(i, x)),
                _ => Ok(Some(u32v(s.count(i)))),
            }
        }
        // A method of another kind: the checker rules it out.
        _ => Ok(None),
    }
}

/// A count-min sketch of unbounded width: every key hash has its own cell, so no two
/// keys ever share a count. Each operation means what [`CountMinSketch`]'s does for a key
/// whose four cells no other key touches (a fresh cell counts 0, `over` is `> threshold`,
/// idle cells expire after `ttl`).
pub struct IdealSketch {
    ttl: u64,
    threshold: u32,
    /// Key hash -> (count, last touch).
    cells: HashMap<u32, (u32, u64)>,
    /// (last touch, key hash) of every cell, oldest first, for expiry.
    by_age: BTreeSet<(u64, u32)>,
}

impl IdealSketch {
    pub fn new(ttl: u64, threshold: u32) -> IdealSketch {
        IdealSketch {
            ttl,
            threshold,
            cells: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// Removes cells last touched before `now - ttl` (saturating), like the sketch.
    pub fn expire(&mut self, now: u64) {
        let threshold = now.saturating_sub(self.ttl);
        while let Some(&(stamp, key)) = self.by_age.first() {
            if stamp >= threshold {
                break;
            }
            self.by_age.pop_first();
            self.cells.remove(&key);
        }
    }

    pub fn over(&self, key_hash: u32) -> bool {
        self.cells
            .get(&key_hash)
            .is_some_and(|&(count, _)| count > self.threshold)
    }

    pub fn touch(&mut self, key_hash: u32, now: u64) {
        let (count, stamp) = match self.cells.get(&key_hash) {
            Some(&(count, stamp)) => (count.saturating_add(1), Some(stamp)),
            None => (0, None),
        };
        self.restamp(key_hash, count, stamp, now);
    }

    pub fn refresh(&mut self, key_hash: u32, now: u64) {
        if let Some(&(count, stamp)) = self.cells.get(&key_hash) {
            self.restamp(key_hash, count, Some(stamp), now);
        }
    }

    fn restamp(&mut self, key_hash: u32, count: u32, old: Option<u64>, now: u64) {
        if let Some(old) = old {
            self.by_age.remove(&(old, key_hash));
        }
        self.by_age.insert((now, key_hash));
        self.cells.insert(key_hash, (count, now));
    }
}

#[cfg(test)]
mod ideal_sketch_tests {
    use super::*;

    /// Two keys whose four cells coincide in a `width`-wide sketch.
    fn colliding_pair(width: u32) -> (u32, u32) {
        let s = CountMinSketch::new(width, 10, 1).expect("sketch");
        let a = 1u32;
        let b = (2u32..)
            .find(|&k| s.cells(k) == s.cells(a))
            .expect("a collision");
        (a, b)
    }

    #[test]
    fn agrees_with_the_sketch_when_keys_do_not_collide() {
        let mut real = CountMinSketch::new(1 << 16, 10, 1).expect("sketch");
        let mut ideal = IdealSketch::new(10, 1);
        let keys = [7u32, 1_000_003, 42];
        assert!(keys
            .iter()
            .all(|&k| keys.iter().filter(|&&j| j != k).all(|&j| real
                .cells(j)
                .iter()
                .zip(real.cells(k))
                .all(|(x, y)| *x != y))));
        for now in 0..40u64 {
            let k = keys[(now % 3) as usize];
            real.expire(now);
            ideal.expire(now);
            assert_eq!(real.over(k), ideal.over(k), "over({k}) at {now}");
            if now % 5 == 0 {
                real.refresh(k, now);
                ideal.refresh(k, now);
            } else if now < 20 {
                real.touch(k, now);
                ideal.touch(k, now);
            }
        }
    }

    #[test]
    fn does_not_share_counts_between_colliding_keys() {
        let (a, b) = colliding_pair(2);
        let mut real = CountMinSketch::new(2, 100, 1).expect("sketch");
        let mut ideal = IdealSketch::new(100, 1);
        for now in 0..3 {
            real.touch(a, now);
            ideal.touch(a, now);
        }
        // Counts 0, 1, 2 for `a`: over the threshold 1, in both.
        assert!(real.over(a) && ideal.over(a));
        // `b` was never touched: only the real sketch's shared cells say it is over.
        assert!(real.over(b));
        assert!(!ideal.over(b));
    }

    #[test]
    fn idle_cells_expire() {
        let mut ideal = IdealSketch::new(10, 0);
        ideal.touch(5, 0);
        ideal.touch(5, 1);
        assert!(ideal.over(5));
        ideal.expire(11);
        assert!(ideal.over(5), "touched at 1, kept until 11");
        ideal.expire(12);
        assert!(!ideal.over(5));
        ideal.touch(5, 12);
        assert!(!ideal.over(5), "a fresh cell counts 0");
    }
}
