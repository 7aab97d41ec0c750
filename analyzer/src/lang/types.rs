//! Types and run-time values of the NF language.
//!
//! [`Value`] lives here, not in the interpreter, because the front end already needs it
//! for config values and `map` init entries, and so that every later stage (interpreter,
//! symbolic executor, code generator) shares one representation.

use std::fmt;
use std::sync::Arc;

/// Identifies a record type: an index into [`super::ir::NfProgram::records`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntTy {
    U8,
    U16,
    U32,
    U64,
    I64,
}

impl IntTy {
    pub fn bits(self) -> u32 {
        match self {
            IntTy::U8 => 8,
            IntTy::U16 => 16,
            IntTy::U32 => 32,
            IntTy::U64 | IntTy::I64 => 64,
        }
    }

    pub fn is_signed(self) -> bool {
        self == IntTy::I64
    }

    /// All-ones mask of the width.
    pub fn mask(self) -> u64 {
        match self.bits() {
            64 => u64::MAX,
            b => (1u64 << b) - 1,
        }
    }

    /// Largest value, as bits.
    pub fn max_bits(self) -> u64 {
        if self.is_signed() {
            i64::MAX as u64
        } else {
            self.mask()
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
            IntTy::I64 => "i64",
        }
    }
}

/// The type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Int(IntTy),
    Bool,
    Mac,
    Ip4,
    Device,
    Record(RecordId),
}

impl Type {
    pub const U8: Type = Type::Int(IntTy::U8);
    pub const U16: Type = Type::Int(IntTy::U16);
    pub const U32: Type = Type::Int(IntTy::U32);
    pub const U64: Type = Type::Int(IntTy::U64);
    pub const I64: Type = Type::Int(IntTy::I64);

    /// Parses a scalar type name (records are resolved by the checker).
    pub fn scalar_from_name(name: &str) -> Option<Type> {
        Some(match name {
            "u8" => Type::U8,
            "u16" => Type::U16,
            "u32" => Type::U32,
            "u64" => Type::U64,
            "i64" => Type::I64,
            "bool" => Type::Bool,
            "mac" => Type::Mac,
            "ip4" => Type::Ip4,
            "device" => Type::Device,
            _ => return None,
        })
    }

    pub fn int(self) -> Option<IntTy> {
        match self {
            Type::Int(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_int(self) -> bool {
        matches!(self, Type::Int(_))
    }

    /// Shows the type, naming records through `records`.
    pub fn display<'a>(&self, records: &'a [RecordDef]) -> TypeDisplay<'a> {
        TypeDisplay { ty: *self, records }
    }
}

pub struct TypeDisplay<'a> {
    ty: Type,
    records: &'a [RecordDef],
}

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Type::Int(t) => f.write_str(t.name()),
            Type::Bool => f.write_str("bool"),
            Type::Mac => f.write_str("mac"),
            Type::Ip4 => f.write_str("ip4"),
            Type::Device => f.write_str("device"),
            Type::Record(id) => match self.records.get(id.0 as usize) {
                Some(r) => f.write_str(&r.name),
                None => write!(f, "record#{}", id.0),
            },
        }
    }
}

/// A declared record type. Fields are in declaration order, which is also the order of
/// [`Value::Record`] elements, of `hash()` feeding and of `map` init file columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDef {
    pub name: String,
    pub fields: Vec<(String, Type)>,
}

impl RecordDef {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(n, _)| n == name)
    }
}

/// A run-time value. Compact (24 bytes), cheap to clone (records are shared), and
/// `Eq + Hash` so that it can key the runtime's maps.
///
/// Integers keep their type so that a value is self-describing; `i64` is stored as its
/// two's-complement bits. Ports and addresses hold their numeric values (`10.0.0.1` is
/// `0x0a000001`), not their wire bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Int(IntTy, u64),
    Bool(bool),
    Mac([u8; 6]),
    Ip4(u32),
    Device(u16),
    Record(Arc<[Value]>),
}

impl Value {
    /// The zero value of a type: what fresh vectors hold and what out-of-range reads give.
    pub fn zero(ty: Type, records: &[RecordDef]) -> Value {
        Self::zero_depth(ty, records, 0)
    }

    fn zero_depth(ty: Type, records: &[RecordDef], depth: u32) -> Value {
        match ty {
            Type::Int(t) => Value::Int(t, 0),
            Type::Bool => Value::Bool(false),
            Type::Mac => Value::Mac([0; 6]),
            Type::Ip4 => Value::Ip4(0),
            Type::Device => Value::Device(0),
            Type::Record(id) => {
                // The checker rejects recursive records; the depth bound only guards
                // against programs built by hand.
                let fields = match records.get(id.0 as usize) {
                    Some(r) if depth < 64 => r
                        .fields
                        .iter()
                        .map(|(_, t)| Self::zero_depth(*t, records, depth + 1))
                        .collect(),
                    _ => Vec::new(),
                };
                Value::Record(fields.into())
            }
        }
    }

    /// The integer bits (also of `bool`, `ip4`, `device` and `mac`), for conditions,
    /// indexes and casts.
    #[inline]
    pub fn bits(&self) -> u64 {
        match self {
            Value::Int(_, v) => *v,
            Value::Bool(b) => *b as u64,
            Value::Mac(m) => mac_to_u64(m),
            Value::Ip4(a) => *a as u64,
            Value::Device(d) => *d as u64,
            Value::Record(_) => 0,
        }
    }

    #[inline]
    pub fn as_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn display<'a>(&'a self, records: &'a [RecordDef]) -> ValueDisplay<'a> {
        ValueDisplay {
            value: self,
            records,
        }
    }
}

pub struct ValueDisplay<'a> {
    value: &'a Value,
    records: &'a [RecordDef],
}

impl fmt::Display for ValueDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Value::Int(IntTy::I64, v) => write!(f, "{}", *v as i64),
            Value::Int(_, v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Mac(m) => f.write_str(&fmt_mac(m)),
            Value::Ip4(a) => write!(f, "{}", std::net::Ipv4Addr::from(*a)),
            Value::Device(d) => write!(f, "{d}"),
            Value::Record(fields) => {
                f.write_str("{ ")?;
                for (i, v) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v.display(self.records))?;
                }
                f.write_str(" }")
            }
        }
    }
}

pub fn mac_to_u64(m: &[u8; 6]) -> u64 {
    m.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64)
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// An example literal of a type, for error messages.
pub fn example_literal(ty: Type) -> &'static str {
    match ty {
        Type::Int(IntTy::U8) => "6",
        Type::Int(IntTy::U16) => "8080",
        Type::Int(IntTy::U32) => "65536",
        Type::Int(IntTy::U64) => "100s or 1_000_000",
        Type::Int(IntTy::I64) => "-2",
        Type::Bool => "true",
        Type::Mac => "01:23:45:67:89:ab",
        Type::Ip4 => "10.0.0.1",
        Type::Device => "1",
        Type::Record(_) => "(a record)",
    }
}

/// Parses one textual literal of a scalar type, as given to `--set` or in a `map` init
/// file. Integers are decimal or `0x` hex with `_` separators; `u64` also takes durations
/// (`100s`); `i64` takes a leading `-`; devices are port numbers.
pub fn parse_scalar_literal(text: &str, ty: Type) -> Result<Value, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "expected a value of type {} such as `{}`, found `{}`",
            ty_name(ty),
            example_literal(ty),
            text
        )
    };
    match ty {
        Type::Int(t) => {
            let (neg, digits) = match text.strip_prefix('-') {
                Some(rest) if t.is_signed() => (true, rest),
                _ => (false, text),
            };
            let v = parse_uint(digits, t == IntTy::U64).ok_or_else(bad)?;
            if t.is_signed() {
                let limit = if neg { 1u64 << 63 } else { i64::MAX as u64 };
                if v > limit {
                    return Err(format!("{} does not fit in i64", text));
                }
                Ok(Value::Int(t, if neg { v.wrapping_neg() } else { v }))
            } else if v > t.mask() {
                Err(format!(
                    "{} does not fit in {} (at most {})",
                    text,
                    t.name(),
                    t.mask()
                ))
            } else {
                Ok(Value::Int(t, v))
            }
        }
        Type::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        Type::Mac => parse_mac(text).map(Value::Mac).ok_or_else(bad),
        Type::Ip4 => text
            .parse::<std::net::Ipv4Addr>()
            .map(|a| Value::Ip4(u32::from(a)))
            .map_err(|_| bad()),
        Type::Device => match parse_uint(text, false) {
            Some(v) if v < 0xFFFF => Ok(Value::Device(v as u16)),
            Some(_) => Err(format!(
                "port {text} out of range: ports are below 65535 (0xFFFF means flood)"
            )),
            None => Err(bad()),
        },
        Type::Record(_) => Err("records have no literal form".to_string()),
    }
}

fn ty_name(ty: Type) -> &'static str {
    match ty {
        Type::Int(t) => t.name(),
        Type::Bool => "bool",
        Type::Mac => "mac",
        Type::Ip4 => "ip4",
        Type::Device => "device",
        Type::Record(_) => "record",
    }
}

/// Decimal or hex digits with `_` separators, optionally (when `duration`) with a unit.
fn parse_uint(text: &str, duration: bool) -> Option<u64> {
    let (digits, scale) = if duration {
        let units = [
            ("ns", 1u64),
            ("us", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
        ];
        match units
            .iter()
            .find(|(u, _)| text.ends_with(u) && !text.starts_with("0x"))
        {
            Some((u, s)) => (&text[..text.len() - u.len()], *s),
            None => (text, 1),
        }
    } else {
        (text, 1)
    };
    let (digits, radix) = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => (h, 16),
        None => (digits, 10),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()?.checked_mul(scale)
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(
            parse_scalar_literal("100s", Type::U64),
            Ok(Value::Int(IntTy::U64, 100_000_000_000))
        );
        assert_eq!(
            parse_scalar_literal("-2", Type::I64),
            Ok(Value::Int(IntTy::I64, (-2i64) as u64))
        );
        assert!(parse_scalar_literal("256", Type::U8).is_err());
        assert!(parse_scalar_literal("-1", Type::U32).is_err());
        assert_eq!(
            parse_scalar_literal("0xFF_FF", Type::U16),
            Ok(Value::Int(IntTy::U16, 0xffff))
        );
        assert_eq!(
            parse_scalar_literal("02:00:00:00:00:0a", Type::Mac),
            Ok(Value::Mac([2, 0, 0, 0, 0, 10]))
        );
        assert_eq!(
            parse_scalar_literal("10.0.0.1", Type::Ip4),
            Ok(Value::Ip4(0x0a000001))
        );
    }
}
