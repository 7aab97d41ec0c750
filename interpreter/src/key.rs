//! Compact keys for tables and maps.
//!
//! A record [`Value`] lives behind a pointer, so a hash-table hit would chase it to compare
//! keys, and every stored key would be a separate heap object. Keys whose scalar leaves fit
//! in 128 bits (every key of the classic NFs: a 5-tuple is 104 bits) are packed inline
//! instead; larger keys fall back to the value itself. Packing is injective for values of
//! one type, so equality and hashing of keys agree with those of values.

use maestro_analyzer::{RecordDef, Type, Value};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Packed(u128),
    Boxed(Value),
}

/// A packed key hashes as one well-mixed word. The runtime's maps hash with a
/// multiplicative (Fx) hasher whose low bits, which pick the bucket, depend only on the
/// low bits of the words fed to it; a packed 5-tuple's low bits are the protocol and the
/// low bits of an address. Over the 80,000 flow keys of the checker's benchmark trace
/// the low 17 bits took 512 values, and lookups were 1.6 to 3 times slower than with
/// this mix.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::Packed(bits) => state.write_u64(mix128(*bits)),
            Key::Boxed(v) => {
                state.write_u8(1);
                v.hash(state);
            }
        }
    }
}

/// MurmurHash3's 64-bit finalizer over both halves: every input bit reaches every
/// output bit.
#[inline]
fn mix128(x: u128) -> u64 {
    let fmix = |mut h: u64| {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    };
    fmix((x as u64) ^ fmix((x >> 64) as u64))
}

/// Converts values of one type to and from [`Key`]s.
#[derive(Clone, Debug)]
pub struct KeyCodec {
    ty: Type,
    /// Whether the type's leaves fit in 128 bits.
    packed: bool,
    records: Arc<[RecordDef]>,
}

/// Width in bits of a scalar leaf.
fn leaf_bits(ty: Type) -> u32 {
    match ty {
        Type::Int(t) => t.bits(),
        Type::Bool => 1,
        Type::Mac => 48,
        Type::Ip4 => 32,
        Type::Device => 16,
        Type::Record(_) => 0,
    }
}

/// Total bits of a type's leaves, or `None` past 128 (or for malformed records).
fn total_bits(ty: Type, records: &[RecordDef], depth: u32) -> Option<u32> {
    match ty {
        Type::Record(id) => {
            let r = records.get(id.0 as usize)?;
            if depth > 16 {
                return None;
            }
            let mut n = 0u32;
            for (_, t) in &r.fields {
                n += total_bits(*t, records, depth + 1)?;
                if n > 128 {
                    return None;
                }
            }
            Some(n)
        }
        t => Some(leaf_bits(t)),
    }
}

impl KeyCodec {
    pub fn new(ty: Type, records: Arc<[RecordDef]>) -> KeyCodec {
        let packed = total_bits(ty, &records, 0).is_some_and(|n| n <= 128);
        KeyCodec {
            ty,
            packed,
            records,
        }
    }

    #[inline]
    pub fn encode(&self, v: &Value) -> Key {
        if !self.packed {
            return Key::Boxed(v.clone());
        }
        let mut acc = 0u128;
        pack(v, &mut acc);
        Key::Packed(acc)
    }

    /// Rebuilds the value of a key (for `t.key(i)`).
    pub fn decode(&self, k: &Key) -> Value {
        match k {
            Key::Boxed(v) => v.clone(),
            Key::Packed(bits) => {
                let mut shift = total_bits(self.ty, &self.records, 0).unwrap_or(0);
                unpack(self.ty, &self.records, *bits, &mut shift)
            }
        }
    }
}

/// Appends the leaves of `v`, first leaf in the most significant position.
fn pack(v: &Value, acc: &mut u128) {
    let (bits, width) = match v {
        Value::Int(t, x) => (*x as u128, t.bits()),
        Value::Bool(b) => (*b as u128, 1),
        Value::Mac(_) => (v.bits() as u128, 48),
        Value::Ip4(a) => (*a as u128, 32),
        Value::Device(d) => (*d as u128, 16),
        Value::Record(fields) => {
            for f in fields.iter() {
                pack(f, acc);
            }
            return;
        }
    };
    *acc = (*acc << width) | bits;
}

/// Reads leaves back; `shift` counts the bits still to read.
fn unpack(ty: Type, records: &[RecordDef], bits: u128, shift: &mut u32) -> Value {
    let mut take = |w: u32| -> u64 {
        *shift = shift.saturating_sub(w);
        let mask = if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        ((bits >> *shift) & mask) as u64
    };
    match ty {
        Type::Int(t) => Value::Int(t, take(t.bits())),
        Type::Bool => Value::Bool(take(1) != 0),
        Type::Mac => {
            let x = take(48).to_be_bytes();
            Value::Mac([x[2], x[3], x[4], x[5], x[6], x[7]])
        }
        Type::Ip4 => Value::Ip4(take(32) as u32),
        Type::Device => Value::Device(take(16) as u16),
        Type::Record(id) => {
            let fields: Vec<Value> = records
                .get(id.0 as usize)
                .map(|r| {
                    r.fields
                        .iter()
                        .map(|(_, t)| unpack(*t, records, bits, shift))
                        .collect()
                })
                .unwrap_or_default();
            Value::Record(fields.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maestro_analyzer::{IntTy, RecordId};

    #[test]
    fn round_trip() {
        let records: Arc<[RecordDef]> = vec![RecordDef {
            name: "F".into(),
            fields: vec![
                ("a".into(), Type::U16),
                ("m".into(), Type::Mac),
                ("ok".into(), Type::Bool),
                ("ip".into(), Type::Ip4),
                ("d".into(), Type::Device),
                ("p".into(), Type::U8),
            ],
        }]
        .into();
        let c = KeyCodec::new(Type::Record(RecordId(0)), records);
        let v = Value::Record(
            vec![
                Value::Int(IntTy::U16, 0xbeef),
                Value::Mac([1, 2, 3, 4, 5, 0xff]),
                Value::Bool(true),
                Value::Ip4(0x0a000001),
                Value::Device(3),
                Value::Int(IntTy::U8, 17),
            ]
            .into(),
        );
        let k = c.encode(&v);
        assert!(matches!(k, Key::Packed(_)));
        assert_eq!(c.decode(&k), v);

        // Equal keys hash alike, and keys that differ only in high bits do not share
        // the low bits of their hash (what picks a bucket).
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(&k), state.hash_one(k.clone()));
        let low: std::collections::HashSet<u64> =
            (0..256u128).map(|i| mix128(i << 96 | 6) & 0xfff).collect();
        assert!(low.len() > 200, "{} distinct low bit patterns", low.len());

        let big = KeyCodec::new(Type::I64, Arc::from(Vec::new()));
        let v = Value::Int(IntTy::I64, (-2i64) as u64);
        assert_eq!(big.decode(&big.encode(&v)), v);
    }
}
