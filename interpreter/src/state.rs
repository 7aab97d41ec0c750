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
    pub fn new(decl: &StateDecl, records: &Arc<[RecordDef]>) -> Result<StateObj, InterpError> {
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
    let k = || a0.clone().unwrap_or(Value::Bool(false));
    match (&mut obj.kind, method) {
        (Kind::Table { t, .. }, TableExpire) => Ok(Some(u32v(t.expire(now)))),
        (Kind::Table { t, codec, .. }, TableGet) => Ok(t.get(&codec.encode(&k())).map(u32v)),
        (Kind::Table { t, codec, .. }, TableContains) => b(t.contains(&codec.encode(&k()))),
        (Kind::Table { t, codec, .. }, TableAdd) => {
            Ok(t.add(codec.encode(&k()), Slot(a1), now).map(u32v))
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
        (Kind::Table { t, codec, .. }, TableRemove) => b(t.remove(&codec.encode(&k()))),
        (Kind::Table { t, .. }, TableFull) => b(t.is_full()),
        (Kind::Table { t, .. }, TableSize) => Ok(Some(u32v(t.len()))),

        (Kind::Map { m, codec }, MapGet) => Ok(m.get(&codec.encode(&k())).cloned()),
        (Kind::Map { m, codec }, MapContains) => b(m.contains(&codec.encode(&k()))),
        (Kind::Map { m, codec }, MapPut) => {
            b(m.put(codec.encode(&k()), a1.unwrap_or(Value::Bool(false))))
        }
        (Kind::Map { m, codec }, MapErase) => b(m.erase(&codec.encode(&k())).is_some()),
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
        (Kind::Sketch(s), SketchOver) => b(s.over(hash_value(&k()))),
        (Kind::Sketch(s), SketchTouch) => {
            s.touch(hash_value(&k()), now);
            Ok(None)
        }
        (Kind::Sketch(s), SketchRefresh) => {
            s.refresh(hash_value(&k()), now);
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
