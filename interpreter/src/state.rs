//! State objects of a running NF and the meaning of each state call.
//!
//! Values are [`Value`]s; table and vector slots are [`Slot`]s so that a never-written
//! slot reads as the zero value of its declared type (the runtime only knows
//! `Default`, which cannot know the type). Tables and maps whose keys pack into 128 bits
//! key by [`PackedKey`]s, and tables with scalar (or no) values store them as [`Bits`]:
//! flat entries that a lookup reads without chasing pointers.

use crate::key::{KeyCodec, PackedKey};
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

/// A scalar table value as its bits (`Value::bits`); 0, the default, is the zero value
/// of every scalar type, so a never-written slot reads as zero as with [`Slot`]. The
/// declared type (that of the table's zero value) turns bits back into a value; the
/// checker guarantees that stored values have it, so the round trip is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bits(u64);

/// How a table stores keys: packed, or as the values themselves.
trait TableKey: Eq + std::hash::Hash + Clone {
    fn encode(codec: &KeyCodec, v: &Value) -> Self;
    fn decode(&self, codec: &KeyCodec) -> Value;
    /// `*dst = self.decode(codec)`, reusing `dst`'s record where possible.
    fn decode_into(&self, codec: &KeyCodec, dst: &mut Value);
}

impl TableKey for PackedKey {
    #[inline]
    fn encode(codec: &KeyCodec, v: &Value) -> Self {
        codec.encode(v)
    }
    fn decode(&self, codec: &KeyCodec) -> Value {
        codec.decode(*self)
    }
    fn decode_into(&self, codec: &KeyCodec, dst: &mut Value) {
        codec.decode_into(*self, dst)
    }
}

impl TableKey for Value {
    #[inline]
    fn encode(_: &KeyCodec, v: &Value) -> Self {
        v.clone()
    }
    fn decode(&self, _: &KeyCodec) -> Value {
        self.clone()
    }
    fn decode_into(&self, _: &KeyCodec, dst: &mut Value) {
        *dst = self.clone();
    }
}

/// How a table stores values.
trait TableSlot: Default {
    fn store(v: Option<Value>) -> Self;
    /// The stored value; `zero` (the declared type's zero value) when never written.
    fn load(&self, zero: &Value) -> Value;
}

impl TableSlot for Slot {
    #[inline]
    fn store(v: Option<Value>) -> Self {
        Slot(v)
    }
    #[inline]
    fn load(&self, zero: &Value) -> Value {
        self.0.clone().unwrap_or_else(|| zero.clone())
    }
}

impl TableSlot for Bits {
    #[inline]
    fn store(v: Option<Value>) -> Self {
        Bits(v.map_or(0, |v| v.bits()))
    }
    #[inline]
    fn load(&self, zero: &Value) -> Value {
        let x = self.0;
        match zero {
            Value::Int(t, _) => Value::Int(*t, x),
            Value::Bool(_) => Value::Bool(x != 0),
            Value::Mac(_) => {
                let b = x.to_be_bytes();
                Value::Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            Value::Ip4(_) => Value::Ip4(x as u32),
            Value::Device(_) => Value::Device(x as u16),
            // Records are stored as [`Slot`]s.
            Value::Record(_) => zero.clone(),
        }
    }
}

/// An expiring table with its key codec and the zero values of its types.
struct TableObj<K, V> {
    t: ExpiringTable<K, V>,
    codec: KeyCodec,
    key_zero: Value,
    value_zero: Value,
}

/// A table in the representation its types allow.
enum AnyTable {
    PackedBits(TableObj<PackedKey, Bits>),
    PackedSlot(TableObj<PackedKey, Slot>),
    ValueBits(TableObj<Value, Bits>),
    ValueSlot(TableObj<Value, Slot>),
}

/// Runs `$body` with `$t` bound to the table, whatever its representation.
macro_rules! with_table {
    ($any:expr, $t:ident => $body:expr) => {
        match $any {
            AnyTable::PackedBits($t) => $body,
            AnyTable::PackedSlot($t) => $body,
            AnyTable::ValueBits($t) => $body,
            AnyTable::ValueSlot($t) => $body,
        }
    };
}

/// A map keyed by packed keys or by values.
enum AnyMap {
    Packed(Map<PackedKey, Value>, KeyCodec),
    Value(Map<Value, Value>),
}

pub struct StateObj {
    name: String,
    kind: Kind,
}

enum Kind {
    Table(AnyTable),
    Map(AnyMap),
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
            } => {
                let codec = KeyCodec::new(*key, records.clone());
                let key_zero = Value::zero(*key, records);
                let value_zero = match value {
                    Some(v) => Value::zero(*v, records),
                    None => Value::Bool(false),
                };
                let scalar = !matches!(value_zero, Value::Record(_));
                macro_rules! table {
                    ($variant:ident) => {
                        AnyTable::$variant(TableObj {
                            t: ExpiringTable::new(*capacity, *ttl)
                                .map_err(alloc_err(decl, "capacity"))?,
                            codec,
                            key_zero,
                            value_zero,
                        })
                    };
                }
                Kind::Table(match (codec.packs(), scalar) {
                    (true, true) => table!(PackedBits),
                    (true, false) => table!(PackedSlot),
                    (false, true) => table!(ValueBits),
                    (false, false) => table!(ValueSlot),
                })
            }
            StateKind::Map {
                key,
                capacity,
                init,
                ..
            } => {
                let codec = KeyCodec::new(*key, records.clone());
                let mut m = if codec.packs() {
                    AnyMap::Packed(
                        Map::new(*capacity).map_err(alloc_err(decl, "capacity"))?,
                        codec,
                    )
                } else {
                    AnyMap::Value(Map::new(*capacity).map_err(alloc_err(decl, "capacity"))?)
                };
                if let Some(init) = init {
                    for (i, (k, v)) in init.entries.iter().enumerate() {
                        if !map_put(&mut m, k, v.clone()) {
                            return Err(InterpError::MapInit {
                                state: decl.name.clone(),
                                path: init.path.display().to_string(),
                                entry: i + 1,
                            });
                        }
                    }
                }
                Kind::Map(m)
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

#[inline(always)]
fn index(v: Option<&Value>) -> u64 {
    match v {
        Some(v) => v.bits(),
        None => 0,
    }
}

#[inline]
fn boolean(x: bool) -> Result<Option<Value>, OutOfRange> {
    Ok(Some(Value::Bool(x)))
}

#[inline]
fn oob(index: u64, limit: u64, fallback: Option<Value>) -> Result<Option<Value>, OutOfRange> {
    Err(OutOfRange {
        index,
        limit,
        fallback,
    })
}

/// Puts `k -> v` into a map; `false` if full or present.
fn map_put(m: &mut AnyMap, k: &Value, v: Value) -> bool {
    match m {
        AnyMap::Packed(m, codec) => m.put(codec.encode(k), v),
        AnyMap::Value(m) => m.put(k.clone(), v),
    }
}

/// Performs `states[sid].method(a0, a1)` at time `now`.
///
/// `Ok(None)` is "no result". Index arguments are `u32` by type; `has_index` and
/// `is_allocated` answer `false` out of range without a fault (they are how programs test
/// untrusted indexes), every other call through an out-of-range index is an
/// [`OutOfRange`] fault with the zero value (or `false`) as its result. The first
/// argument is borrowed (keys are encoded from it, indexes read from it), the second is
/// moved into the state.
///
/// Inline, with the table methods: the results then stay in registers instead of being
/// moved through three frames (a third of the cost of a call was that).
#[inline(always)]
pub fn call(
    states: &mut [StateObj],
    sid: usize,
    method: Method,
    a0: Option<&Value>,
    a1: Option<Value>,
    now: u64,
) -> Result<Option<Value>, OutOfRange> {
    use Method::*;
    // The CHT reads another object (its backend table): handle it before borrowing.
    if method == ChtFind {
        let Some(StateObj {
            kind: Kind::Cht { c, backends },
            ..
        }) = states.get(sid)
        else {
            return Ok(None);
        };
        let h = index(a0);
        let table = match states.get(*backends).map(|s| &s.kind) {
            Some(Kind::Table(t)) => t,
            _ => return Ok(None),
        };
        return Ok(with_table!(table, t => c.find(h, |b| t.t.has_index(b)).map(u32v)));
    }
    let Some(obj) = states.get_mut(sid) else {
        return Ok(None);
    };
    // Keys are encoded from a reference: no clone of a record value.
    let no_key = Value::Bool(false);
    let kr = a0.unwrap_or(&no_key);
    match (&mut obj.kind, method) {
        (Kind::Table(t), _) => with_table!(t, t => table_call(t, method, a0, a1, now)),
        (Kind::Map(AnyMap::Packed(m, codec)), _) => {
            map_call(m, |k| codec.encode(k), method, kr, a1)
        }
        (Kind::Map(AnyMap::Value(m)), _) => map_call(m, Value::clone, method, kr, a1),

        (Kind::Vector { v, zero }, VectorGet) => {
            let i = index(a0);
            match v.get(i.min(u32::MAX as u64) as u32) {
                Some(s) if i <= u32::MAX as u64 => {
                    Ok(Some(s.0.clone().unwrap_or_else(|| zero.clone())))
                }
                _ => oob(i, v.capacity() as u64, Some(zero.clone())),
            }
        }
        (Kind::Vector { v, .. }, VectorSet) => {
            let i = index(a0);
            if i > u32::MAX as u64 || !v.set(i as u32, Slot(a1)) {
                return oob(i, v.capacity() as u64, None);
            }
            Ok(None)
        }

        (Kind::DChain { d, .. }, DChainAllocate) => Ok(d.allocate(now).map(u32v)),
        (Kind::DChain { d, .. }, DChainRefresh) => {
            let i = index(a0);
            if i >= d.capacity() as u64 {
                return oob(i, d.capacity() as u64, Some(Value::Bool(false)));
            }
            boolean(d.rejuvenate(i as u32, now))
        }
        (Kind::DChain { d, .. }, DChainIsAllocated) => {
            let i = index(a0);
            boolean(i < d.capacity() as u64 && d.is_allocated(i as u32))
        }
        (Kind::DChain { d, .. }, DChainFree) => {
            let i = index(a0);
            if i >= d.capacity() as u64 {
                return oob(i, d.capacity() as u64, Some(Value::Bool(false)));
            }
            boolean(d.free(i as u32))
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
        (Kind::Sketch(s), SketchOver) => boolean(s.over(hash_value(kr))),
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
        (Kind::IdealSketch(s), SketchOver) => boolean(s.over(hash_value(kr))),
        (Kind::IdealSketch(s), SketchTouch) => {
            s.touch(hash_value(kr), now);
            Ok(None)
        }
        (Kind::IdealSketch(s), SketchRefresh) => {
            s.refresh(hash_value(kr), now);
            Ok(None)
        }

        (Kind::Sets { s, sets }, m @ (SetsClear | SetsContains | SetsInsert | SetsCount)) => {
            let i = index(a0);
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
                SetsContains => boolean(s.contains(i, &x)),
                SetsInsert => boolean(s.insert(i, x)),
                _ => Ok(Some(u32v(s.count(i)))),
            }
        }
        // A method of another kind: the checker rules it out.
        _ => Ok(None),
    }
}

/// [`call`] of a table method without a second argument, or `None` (nothing done) if
/// the object is not a table or the method takes two. Each method is a separate
/// instance of [`table_call`] with the method fixed, so the hot calls of a flow table
/// (`expire`, `get`, `refresh`, `value`) run without dispatch or argument moves.
#[inline(always)]
pub fn table_call_unary(
    states: &mut [StateObj],
    sid: usize,
    method: Method,
    a0: Option<&Value>,
    now: u64,
) -> Option<Result<Option<Value>, OutOfRange>> {
    let Some(StateObj {
        kind: Kind::Table(t),
        ..
    }) = states.get_mut(sid)
    else {
        return None;
    };
    macro_rules! each {
        ($($m:ident),*) => {
            match method {
                $(Method::$m => with_table!(t, t => table_call(t, Method::$m, a0, None, now)),)*
                _ => return None,
            }
        };
    }
    Some(each!(
        TableExpire,
        TableGet,
        TableContains,
        TableAdd,
        TableRefresh,
        TableHasIndex,
        TableKey,
        TableValue,
        TableRemove,
        TableFull,
        TableSize
    ))
}

/// `*dst = t.key(i)` (the [`Method::TableKey`] call of [`call`] with index `i`, whose
/// result goes to `dst`), decoding into `dst`'s record when nothing else holds it.
/// `None` (nothing done) if the object is not a table; an out-of-range index leaves
/// `dst` alone and is the call's [`OutOfRange`].
pub fn table_key_into(
    states: &mut [StateObj],
    sid: usize,
    i: u64,
    dst: &mut Value,
) -> Option<Result<(), OutOfRange>> {
    let Some(StateObj {
        kind: Kind::Table(t),
        ..
    }) = states.get_mut(sid)
    else {
        return None;
    };
    Some(with_table!(t, t => {
        let cap = t.t.capacity() as u64;
        if i >= cap {
            return Some(Err(OutOfRange {
                index: i,
                limit: cap,
                fallback: Some(t.key_zero.clone()),
            }));
        }
        match t.t.key(i as u32) {
            Some(k) => k.decode_into(&t.codec, dst),
            None => *dst = t.key_zero.clone(),
        }
        Ok(())
    }))
}

/// The table methods ([`call`]), for every representation of the table.
#[inline(always)]
fn table_call<K: TableKey, V: TableSlot>(
    obj: &mut TableObj<K, V>,
    method: Method,
    a0: Option<&Value>,
    mut a1: Option<Value>,
    now: u64,
) -> Result<Option<Value>, OutOfRange> {
    use Method::*;
    let TableObj {
        t,
        codec,
        key_zero,
        value_zero,
    } = obj;
    let no_key = Value::Bool(false);
    let key = || K::encode(codec, a0.unwrap_or(&no_key));
    let cap = t.capacity() as u64;
    let result = match method {
        // The inline check first: most packets expire nothing, and `expire` is a call.
        TableExpire => Ok(Some(u32v(if t.would_expire(now) {
            t.expire(now)
        } else {
            0
        }))),
        TableGet => Ok(t.get(&key()).map(u32v)),
        TableContains => boolean(t.contains(&key())),
        TableAdd => Ok(t.add(key(), V::store(a1.take()), now).map(u32v)),
        TableRefresh => {
            let i = index(a0);
            if i >= cap {
                return oob(i, cap, Some(Value::Bool(false)));
            }
            boolean(t.refresh(i as u32, now))
        }
        TableHasIndex => {
            let i = index(a0);
            boolean(i < cap && t.has_index(i as u32))
        }
        TableKey => {
            let i = index(a0);
            if i >= cap {
                return oob(i, cap, Some(key_zero.clone()));
            }
            Ok(Some(
                t.key(i as u32)
                    .map(|k| k.decode(codec))
                    .unwrap_or_else(|| key_zero.clone()),
            ))
        }
        TableValue => {
            let i = index(a0);
            if i >= cap {
                return oob(i, cap, Some(value_zero.clone()));
            }
            Ok(Some(t.value(i as u32).map_or_else(
                || value_zero.clone(),
                |s| s.load(value_zero),
            )))
        }
        TableSetValue => {
            let i = index(a0);
            if i >= cap {
                return oob(i, cap, None);
            }
            t.set_value(i as u32, V::store(a1.take()));
            Ok(None)
        }
        TableRemove => boolean(t.remove(&key())),
        TableFull => boolean(t.is_full()),
        TableSize => Ok(Some(u32v(t.len()))),
        // A method of another kind: the checker rules it out.
        _ => Ok(None),
    };
    // An unused second argument is dropped here, where the callers that pass none
    // (`table_call_unary`) see that there is nothing to drop.
    if let Some(v) = a1 {
        drop(v);
    }
    result
}

/// The map methods ([`call`]); `encode` turns a key value into the map's key.
#[inline]
fn map_call<K: Eq + std::hash::Hash>(
    m: &mut Map<K, Value>,
    encode: impl Fn(&Value) -> K,
    method: Method,
    k: &Value,
    a1: Option<Value>,
) -> Result<Option<Value>, OutOfRange> {
    use Method::*;
    match method {
        MapGet => Ok(m.get(&encode(k)).cloned()),
        MapContains => boolean(m.contains(&encode(k))),
        MapPut => boolean(m.put(encode(k), a1.unwrap_or(Value::Bool(false)))),
        MapErase => boolean(m.erase(&encode(k)).is_some()),
        MapSize => Ok(Some(u32v(m.len()))),
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
