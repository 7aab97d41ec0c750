//! The meaning of the pure operators, casts and built-ins.
//!
//! One implementation serves the constant evaluation of state parameters and the
//! interpreter, so the two can never disagree. All functions assume well-typed operands
//! (the checker guarantees it) and never panic on ill-typed ones: they give a zero value
//! instead.

use super::ast::{BinOp, UnOp};
use super::types::{IntTy, Type, Value};

/// Wraps raw bits to the width of `t`.
#[inline]
pub fn wrap(t: IntTy, v: u64) -> Value {
    Value::Int(t, v & t.mask())
}

#[inline]
pub fn unary(op: UnOp, v: &Value) -> Value {
    match (op, v) {
        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnOp::Not, Value::Int(t, x)) => wrap(*t, !x),
        (UnOp::Neg, Value::Int(t, x)) => wrap(*t, x.wrapping_neg()),
        _ => v.clone(),
    }
}

/// Binary operators other than `&&` and `||` (which short-circuit in the evaluator;
/// here they are evaluated strictly).
#[inline]
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    use BinOp::*;
    match op {
        Eq => return Value::Bool(a == b),
        Ne => return Value::Bool(a != b),
        And => return Value::Bool(a.as_bool() && b.as_bool()),
        Or => return Value::Bool(a.as_bool() || b.as_bool()),
        _ => {}
    }
    match (a, b) {
        (Value::Int(t, x), Value::Int(_, y)) => int_binary(op, *t, *x, *y),
        (Value::Ip4(x), Value::Ip4(y)) => match op {
            BitAnd => Value::Ip4(x & y),
            BitOr => Value::Ip4(x | y),
            BitXor => Value::Ip4(x ^ y),
            Lt => Value::Bool(x < y),
            Le => Value::Bool(x <= y),
            Gt => Value::Bool(x > y),
            Ge => Value::Bool(x >= y),
            _ => Value::Ip4(0),
        },
        _ => match op {
            Lt | Le | Gt | Ge => Value::Bool(false),
            _ => a.clone(),
        },
    }
}

fn int_binary(op: BinOp, t: IntTy, x: u64, y: u64) -> Value {
    use BinOp::*;
    let signed = t.is_signed();
    let sx = x as i64;
    let sy = y as i64;
    let bits = t.bits() as u64;
    let v = match op {
        Add => x.wrapping_add(y),
        Sub => x.wrapping_sub(y),
        Mul => x.wrapping_mul(y),
        // eBPF convention: x / 0 == 0 and x % 0 == x.
        Div if y == 0 => 0,
        Rem if y == 0 => x,
        Div if signed => sx.wrapping_div(sy) as u64,
        Rem if signed => sx.wrapping_rem(sy) as u64,
        Div => x / y,
        Rem => x % y,
        BitAnd => x & y,
        BitOr => x | y,
        BitXor => x ^ y,
        // The shift amount is taken modulo the width.
        Shl => x << (y % bits),
        // `>>` on i64 is arithmetic (sign-extending), as in Rust and C.
        Shr if signed => (sx >> (y % bits)) as u64,
        Shr => x >> (y % bits),
        Lt => return Value::Bool(if signed { sx < sy } else { x < y }),
        Le => return Value::Bool(if signed { sx <= sy } else { x <= y }),
        Gt => return Value::Bool(if signed { sx > sy } else { x > y }),
        Ge => return Value::Bool(if signed { sx >= sy } else { x >= y }),
        Eq | Ne | And | Or => unreachable_zero(),
    };
    wrap(t, v)
}

#[inline]
fn unreachable_zero() -> u64 {
    0
}

/// `e as to`. Integer casts truncate or zero-extend (sign-extend from `i64`);
/// `i64`/`uN as device` keeps the low 16 bits.
#[inline]
pub fn cast(v: &Value, to: Type) -> Value {
    let bits = v.bits();
    match to {
        Type::Int(t) => wrap(t, bits),
        Type::Ip4 => Value::Ip4(bits as u32),
        Type::Device => Value::Device(bits as u16),
        Type::Bool => Value::Bool(bits != 0),
        Type::Mac => {
            let b = bits.to_be_bytes();
            Value::Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        Type::Record(_) => v.clone(),
    }
}

/// The integer built-ins (`hash` needs the runtime and lives in the interpreter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Min,
    Max,
    SatAdd,
    SatSub,
    MulDiv,
    Hash,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "min" => Builtin::Min,
            "max" => Builtin::Max,
            "sat_add" => Builtin::SatAdd,
            "sat_sub" => Builtin::SatSub,
            "mul_div" => Builtin::MulDiv,
            "hash" => Builtin::Hash,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Min => "min",
            Builtin::Max => "max",
            Builtin::SatAdd => "sat_add",
            Builtin::SatSub => "sat_sub",
            Builtin::MulDiv => "mul_div",
            Builtin::Hash => "hash",
        }
    }
}

/// Evaluates `min`, `max`, `sat_add`, `sat_sub` and `mul_div` on same-typed integers.
pub fn builtin(b: Builtin, args: &[Value]) -> Value {
    let int = |i: usize| match args.get(i) {
        Some(Value::Int(t, v)) => (*t, *v),
        _ => (IntTy::U64, 0),
    };
    let (t, x) = int(0);
    let (_, y) = int(1);
    let signed = t.is_signed();
    match b {
        Builtin::Min | Builtin::Max => {
            let less = if signed {
                (x as i64) < (y as i64)
            } else {
                x < y
            };
            let pick_x = less == (b == Builtin::Min);
            Value::Int(t, if pick_x { x } else { y })
        }
        Builtin::SatAdd | Builtin::SatSub => {
            let v = if signed {
                let (a, c) = (x as i64, y as i64);
                (if b == Builtin::SatAdd {
                    a.saturating_add(c)
                } else {
                    a.saturating_sub(c)
                }) as u64
            } else if b == Builtin::SatAdd {
                x.saturating_add(y).min(t.mask())
            } else {
                x.saturating_sub(y)
            };
            Value::Int(t, v)
        }
        Builtin::MulDiv => {
            let (_, z) = int(2);
            Value::Int(t, mul_div(t, x, y, z))
        }
        Builtin::Hash => Value::Int(IntTy::U32, 0),
    }
}

/// `a * b / c` exactly in 128 bits, saturated to the type; `c == 0` gives 0.
pub fn mul_div(t: IntTy, a: u64, b: u64, c: u64) -> u64 {
    if c == 0 {
        return 0;
    }
    if t.is_signed() {
        let q = (a as i64 as i128)
            .checked_mul(b as i64 as i128)
            .map(|p| p / (c as i64 as i128));
        // |a*b| < 2^126 always fits i128; checked for clarity.
        let q = q.unwrap_or(0);
        q.clamp(i64::MIN as i128, i64::MAX as i128) as i64 as u64
    } else {
        let q = (a as u128) * (b as u128) / (c as u128);
        q.min(t.mask() as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u8v(x: u64) -> Value {
        Value::Int(IntTy::U8, x)
    }

    #[test]
    fn wrapping_and_division() {
        assert_eq!(binary(BinOp::Add, &u8v(250), &u8v(10)), u8v(4));
        assert_eq!(binary(BinOp::Div, &u8v(7), &u8v(0)), u8v(0));
        assert_eq!(binary(BinOp::Rem, &u8v(7), &u8v(0)), u8v(7));
        assert_eq!(binary(BinOp::Shl, &u8v(1), &u8v(9)), u8v(2));
        assert_eq!(unary(UnOp::Not, &u8v(0)), u8v(255));
    }

    #[test]
    fn mul_div_saturates() {
        assert_eq!(mul_div(IntTy::U64, u64::MAX, 4, 2), u64::MAX);
        assert_eq!(
            mul_div(IntTy::U64, 10_000_000_000, 1_000_000_000, 1_000_000_000),
            10_000_000_000
        );
        assert_eq!(mul_div(IntTy::U8, 200, 2, 1), 255);
        assert_eq!(mul_div(IntTy::U32, 1, 1, 0), 0);
    }
}
