//! Compact keys for tables and maps.
//!
//! A record [`Value`] lives behind a pointer, so a hash-table hit would chase it to compare
//! keys, and every stored key would be a separate heap object. Keys whose scalar leaves fit
//! in 128 bits (every key of the classic NFs: a 5-tuple is 104 bits) are packed inline
//! instead ([`PackedKey`]); the state objects of other key types key by the value itself.
//! Packing is injective for values of one type, so equality and hashing of keys agree
//! with those of values.

use maestro_analyzer::{RecordDef, Type, Value};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The leaves of a key packed into 128 bits ([`KeyCodec`] says where each goes).
///
/// Two words rather than a `u128`: a `u128` is 16-byte aligned, which padded a hash-table
/// entry (key + `u32` index) to 32 bytes, and to 48 in an enum with the boxed keys; two
/// `u64`s make it 24, so the firewall's flow table spans half the memory it did and a
/// random lookup misses the cache less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedKey {
    hi: u64,
    lo: u64,
}

impl PackedKey {
    #[inline]
    fn from_u128(x: u128) -> PackedKey {
        PackedKey {
            hi: (x >> 64) as u64,
            lo: x as u64,
        }
    }

    #[inline]
    fn to_u128(self) -> u128 {
        (self.hi as u128) << 64 | self.lo as u128
    }
}

/// A packed key hashes as one well-mixed word. The runtime's maps hash with a
/// multiplicative (Fx) hasher whose low bits, which pick the bucket, depend only on the
/// low bits of the words fed to it; a packed 5-tuple's low bits are the protocol and the
/// low bits of an address. Over the 80,000 flow keys of the checker's benchmark trace
/// the low 17 bits took 512 values, and lookups were 1.6 to 3 times slower than with
/// this mix.
impl Hash for PackedKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(mix128(self.hi, self.lo))
    }
}

/// MurmurHash3's 64-bit finalizer over both halves: every input bit reaches every
/// output bit.
#[inline]
fn mix128(hi: u64, lo: u64) -> u64 {
    let fmix = |mut h: u64| {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    };
    fmix(lo ^ fmix(hi))
}

/// Converts values of one type to and from [`PackedKey`]s, when the type's leaves fit in
/// 128 bits (every key of the classic NFs: a 5-tuple is 104 bits). Packing is injective
/// for values of one type, so equality and hashing of packed keys agree with those of
/// values. Larger keys are stored as [`Value`]s themselves.
#[derive(Clone, Debug)]
pub struct KeyCodec {
    ty: Type,
    /// Total bits of the type's leaves; `None` past 128 (the type does not pack).
    bits: Option<u32>,
    /// Where each field of a flat record (or the one scalar) goes, when every leaf fits
    /// whole in one of the two words: then a key is built with one shift and one `or`
    /// per field. `None`: nested records, or a leaf would straddle the words; those
    /// pack as one 128-bit number, first leaf most significant.
    plan: Option<Vec<Place>>,
    records: Arc<[RecordDef]>,
}

/// The position of a leaf in a [`PackedKey`] built by plan.
#[derive(Clone, Copy, Debug)]
struct Place {
    /// 0: `lo`, 1: `hi`.
    word: u8,
    shift: u8,
    width: u8,
}

/// Places the leaves `widths` first fit into two 64-bit words; `None` if one does not fit.
fn plan_places(widths: &[u32]) -> Option<Vec<Place>> {
    let mut used = [0u32; 2];
    widths
        .iter()
        .map(|&w| {
            let word = (0..2).find(|&i| used[i] + w <= 64)?;
            let shift = used[word];
            used[word] += w;
            Some(Place {
                word: word as u8,
                shift: shift as u8,
                width: w as u8,
            })
        })
        .collect()
}

/// The plan of a type ([`KeyCodec::plan`]).
fn plan_of(ty: Type, records: &[RecordDef]) -> Option<Vec<Place>> {
    let widths: Vec<u32> = match ty {
        Type::Record(id) => {
            let r = records.get(id.0 as usize)?;
            r.fields
                .iter()
                .map(|(_, t)| match t {
                    Type::Record(_) => None,
                    t => Some(leaf_bits(*t)),
                })
                .collect::<Option<_>>()?
        }
        t => vec![leaf_bits(t)],
    };
    plan_places(&widths)
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
        let bits = total_bits(ty, &records, 0).filter(|&n| n <= 128);
        let plan = bits.and_then(|_| plan_of(ty, &records));
        KeyCodec {
            ty,
            bits,
            plan,
            records,
        }
    }

    /// Whether values of the type pack into a [`PackedKey`].
    pub fn packs(&self) -> bool {
        self.bits.is_some()
    }

    /// Packs a value of the codec's type (see [`KeyCodec::packs`]).
    #[inline]
    pub fn encode(&self, v: &Value) -> PackedKey {
        let Some(plan) = &self.plan else {
            return PackedKey::from_u128(pack(v));
        };
        let mut words = [0u64; 2];
        let fields = match v {
            Value::Record(fields) => &fields[..],
            scalar => std::slice::from_ref(scalar),
        };
        for (f, p) in fields.iter().zip(plan) {
            // Values are of the codec's type, so a leaf's bits fit its width.
            words[(p.word & 1) as usize] |= f.bits() << (p.shift & 63);
        }
        PackedKey {
            hi: words[1],
            lo: words[0],
        }
    }

    /// `*dst = self.decode(k)`, writing the fields into `dst`'s record when it is one of
    /// the right length that nothing else holds (no allocation).
    pub fn decode_into(&self, k: PackedKey, dst: &mut Value) {
        if let (Some(plan), Type::Record(id), Value::Record(r)) = (&self.plan, self.ty, &mut *dst) {
            if let (Some(def), Some(fields)) =
                (self.records.get(id.0 as usize), std::sync::Arc::get_mut(r))
            {
                if fields.len() == def.fields.len() && fields.len() == plan.len() {
                    for ((f, (_, t)), p) in fields.iter_mut().zip(&def.fields).zip(plan) {
                        *f = self.leaf_at(*t, p, k);
                    }
                    return;
                }
            }
        }
        *dst = self.decode(k);
    }

    /// The leaf of type `ty` at `p` in `k`.
    #[inline]
    fn leaf_at(&self, ty: Type, p: &Place, k: PackedKey) -> Value {
        let word = if p.word == 0 { k.lo } else { k.hi };
        let mask = if p.width >= 64 {
            u64::MAX
        } else {
            (1u64 << p.width) - 1
        };
        let x = (word >> p.shift) & mask;
        match ty {
            Type::Int(t) => Value::Int(t, x),
            Type::Bool => Value::Bool(x != 0),
            Type::Mac => {
                let b = x.to_be_bytes();
                Value::Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            Type::Ip4 => Value::Ip4(x as u32),
            Type::Device => Value::Device(x as u16),
            // Plans place scalars only.
            Type::Record(_) => {
                let mut shift = p.width as u32;
                unpack(ty, &self.records, x as u128, &mut shift)
            }
        }
    }

    /// Rebuilds the value of a packed key (for `t.key(i)`).
    pub fn decode(&self, k: PackedKey) -> Value {
        let Some(plan) = &self.plan else {
            let mut shift = self.bits.unwrap_or(0);
            return unpack(self.ty, &self.records, k.to_u128(), &mut shift);
        };
        let leaf_at = |ty: Type, p: &Place| self.leaf_at(ty, p, k);
        match self.ty {
            // One allocation: the zipped slice iterators have an exact length.
            Type::Record(id) => Value::Record(match self.records.get(id.0 as usize) {
                Some(r) => r
                    .fields
                    .iter()
                    .zip(plan)
                    .map(|((_, t), p)| leaf_at(*t, p))
                    .collect(),
                None => Arc::from(Vec::new()),
            }),
            t => plan
                .first()
                .map_or_else(|| Value::zero(t, &[]), |p| leaf_at(t, p)),
        }
    }
}

/// The bits and width of a scalar leaf; `None` for a record.
#[inline(always)]
fn leaf(v: &Value) -> Option<(u128, u32)> {
    Some(match v {
        Value::Int(t, x) => (*x as u128, t.bits()),
        Value::Bool(b) => (*b as u128, 1),
        Value::Mac(_) => (v.bits() as u128, 48),
        Value::Ip4(a) => (*a as u128, 32),
        Value::Device(d) => (*d as u128, 16),
        Value::Record(_) => return None,
    })
}

/// The leaves of `v`, first leaf in the most significant position. A flat record (the
/// usual key) is one loop without calls; nested records recurse.
#[inline]
fn pack(v: &Value) -> u128 {
    let Value::Record(fields) = v else {
        return leaf(v).map_or(0, |(bits, _)| bits);
    };
    let mut acc = 0u128;
    for f in fields.iter() {
        match leaf(f) {
            Some((bits, width)) => acc = (acc << width) | bits,
            None => pack_nested(f, &mut acc),
        }
    }
    acc
}

/// Appends the leaves of a nested record to `acc`.
#[inline(never)]
fn pack_nested(v: &Value, acc: &mut u128) {
    match leaf(v) {
        Some((bits, width)) => *acc = (*acc << width) | bits,
        None => {
            if let Value::Record(fields) = v {
                for f in fields.iter() {
                    pack_nested(f, acc);
                }
            }
        }
    }
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
    use proptest::prelude::*;

    /// `F` (87 bits: every scalar kind), `Outer { f: F, x: bool }` (122 bits, nested),
    /// `Wide { a: mac, b: mac, c: mac }` (144 bits, does not pack) and
    /// `Tight { a: mac, b: mac, x: u32 }` (128 bits, but `x` fits whole in neither word).
    fn records() -> Arc<[RecordDef]> {
        vec![
            RecordDef {
                name: "F".into(),
                fields: vec![
                    ("a".into(), Type::U16),
                    ("m".into(), Type::Mac),
                    ("ok".into(), Type::Bool),
                    ("ip".into(), Type::Ip4),
                    ("d".into(), Type::Device),
                    ("p".into(), Type::U8),
                ],
            },
            RecordDef {
                name: "Outer".into(),
                fields: vec![
                    ("f".into(), Type::Record(RecordId(0))),
                    ("x".into(), Type::Bool),
                ],
            },
            RecordDef {
                name: "Wide".into(),
                fields: vec![
                    ("a".into(), Type::Mac),
                    ("b".into(), Type::Mac),
                    ("c".into(), Type::Mac),
                ],
            },
            RecordDef {
                name: "Tight".into(),
                fields: vec![
                    ("a".into(), Type::Mac),
                    ("b".into(), Type::Mac),
                    ("x".into(), Type::U32),
                ],
            },
        ]
        .into()
    }

    fn tight_value(a: [u8; 6], b: [u8; 6], x: u32) -> Value {
        Value::Record(
            vec![
                Value::Mac(a),
                Value::Mac(b),
                Value::Int(IntTy::U32, x as u64),
            ]
            .into(),
        )
    }

    fn f_value(a: u16, m: [u8; 6], ok: bool, ip: u32, d: u16, p: u8) -> Value {
        Value::Record(
            vec![
                Value::Int(IntTy::U16, a as u64),
                Value::Mac(m),
                Value::Bool(ok),
                Value::Ip4(ip),
                Value::Device(d),
                Value::Int(IntTy::U8, p as u64),
            ]
            .into(),
        )
    }

    fn outer_value(f: Value, x: bool) -> Value {
        Value::Record(vec![f, Value::Bool(x)].into())
    }

    #[test]
    fn round_trip() {
        let records = records();
        let c = KeyCodec::new(Type::Record(RecordId(0)), records.clone());
        assert!(c.packs() && c.plan.is_some());
        let v = f_value(0xbeef, [1, 2, 3, 4, 5, 0xff], true, 0x0a000001, 3, 17);
        let k = c.encode(&v);
        assert_eq!(c.decode(k), v);

        let o = KeyCodec::new(Type::Record(RecordId(1)), records.clone());
        assert!(o.packs() && o.plan.is_none(), "nested: one 128-bit number");
        let w = outer_value(v, true);
        assert_eq!(o.decode(o.encode(&w)), w);

        assert!(!KeyCodec::new(Type::Record(RecordId(2)), records.clone()).packs());
        let t = KeyCodec::new(Type::Record(RecordId(3)), records);
        assert!(
            t.packs() && t.plan.is_none(),
            "a straddling leaf: one 128-bit number"
        );
        let v = tight_value([0xff; 6], [0x80, 0, 0, 0, 0, 1], u32::MAX);
        assert_eq!(t.decode(t.encode(&v)), v);

        // Equal keys hash alike, and keys that differ only in high bits do not share
        // the low bits of their hash (what picks a bucket).
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(k), state.hash_one(c.encode(&c.decode(k))));
        let low: std::collections::HashSet<u64> =
            (0..256u64).map(|i| mix128(i << 32, 6) & 0xfff).collect();
        assert!(low.len() > 200, "{} distinct low bit patterns", low.len());

        for (ty, v) in [
            (Type::Bool, Value::Bool(true)),
            (Type::Mac, Value::Mac([9, 8, 7, 6, 5, 4])),
            (Type::Device, Value::Device(65535)),
            (Type::Ip4, Value::Ip4(0xc0000201)),
        ] {
            let c = KeyCodec::new(ty, Arc::from(Vec::new()));
            assert!(c.plan.is_some());
            assert_eq!(c.decode(c.encode(&v)), v);
        }
        let big = KeyCodec::new(Type::I64, Arc::from(Vec::new()));
        let v = Value::Int(IntTy::I64, (-2i64) as u64);
        assert_eq!(big.decode(big.encode(&v)), v);
        let max = Value::Int(IntTy::I64, u64::MAX);
        assert_ne!(big.encode(&v), big.encode(&max));
    }

    /// A key is the size of two words, so a table entry (key, `u32` index) is 24 bytes.
    #[test]
    fn packed_key_is_two_words() {
        assert_eq!(std::mem::size_of::<(PackedKey, u32)>(), 24);
    }

    proptest! {
        /// Packing is injective: two different values of one type never share a key,
        /// and equal values always do (flat and nested records).
        #[test]
        fn different_values_never_share_a_key(
            a in (any::<u16>(), any::<[u8; 6]>(), any::<bool>(), any::<u32>(), any::<u16>(), any::<u8>(), any::<u32>()),
            b in (any::<u16>(), any::<[u8; 6]>(), any::<bool>(), any::<u32>(), any::<u16>(), any::<u8>(), any::<u32>()),
            flip in 0usize..7,
        ) {
            let records = records();
            let flat = KeyCodec::new(Type::Record(RecordId(0)), records.clone());
            let nested = KeyCodec::new(Type::Record(RecordId(1)), records.clone());
            let tight = KeyCodec::new(Type::Record(RecordId(3)), records);
            // Half of the time `b` differs from `a` in one field only, the hard case.
            let mut b = b;
            if flip < 6 {
                b = a;
                match flip {
                    0 => b.0 ^= 1 << (a.1[0] % 16),
                    1 => b.1[(a.0 % 6) as usize] ^= 0x80,
                    2 => b.2 = !b.2,
                    3 => b.3 ^= 1 << (a.1[1] % 32),
                    4 => b.4 ^= 1 << (a.1[2] % 16),
                    _ => b.5 ^= 1 << (a.1[3] % 8),
                }
            }
            let va = f_value(a.0, a.1, a.2, a.3, a.4, a.5);
            let vb = f_value(b.0, b.1, b.2, b.3, b.4, b.5);
            prop_assert_eq!(va == vb, flat.encode(&va) == flat.encode(&vb));
            prop_assert_eq!(flat.decode(flat.encode(&va)), va.clone());
            let oa = outer_value(va, a.6 & 1 == 1);
            let ob = outer_value(vb, b.6 & 1 == 1);
            prop_assert_eq!(oa == ob, nested.encode(&oa) == nested.encode(&ob));
            prop_assert_eq!(nested.decode(nested.encode(&ob)), ob);
            let ta = tight_value(a.1, b.1, a.3);
            let tb = tight_value(b.1, a.1, a.3 ^ b.3 & 1);
            prop_assert_eq!(ta == tb, tight.encode(&ta) == tight.encode(&tb));
            prop_assert_eq!(tight.decode(tight.encode(&tb)), tb);
        }
    }
}
