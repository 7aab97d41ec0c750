//! The emitter: one walk over the checked IR, producing unformatted Rust.
//!
//! Every construct maps to the interpreter's rule for it (`interpreter/src/lib.rs` and
//! `state.rs`); comments below name the rule where the Rust is not obviously the same.
//!
//! The NF's body is emitted twice by the same walk: once as `decide` (`&mut self`, the
//! NF as written, with key-access instrumentation behind its `INSTRUMENTED` const
//! parameter, so that the uninstrumented copy pays nothing for it) and once in
//! *read-only* mode as `decide_read` (`&self`, for the speculative pass of the `locks`
//! strategy): there every mutating state call and every fault returns `Err(NeedsWrite)`,
//! expiry checks with `would_expire` instead of freeing, and refreshes go to the
//! `RefreshLog`.

use crate::info;
use crate::names;
use crate::{GenError, GenOptions};
use maestro_analyzer::lang::ast::{BinOp, Layer, UnOp};
use maestro_analyzer::{
    Action, Builtin, ConfigValue, Expr, ExprKind, IntTy, Method, NfProgram, PktField, Span,
    StateCall, StateKind, Stmt, StmtKind, Type, Value,
};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

/// A generated expression.
struct E {
    code: String,
    /// Safe as an operand or method receiver without parentheses.
    atom: bool,
    /// Holds a struct literal outside any parentheses (needs them in an `if` condition).
    brace: bool,
    /// Contains a state call (its arguments must then be evaluated into temporaries).
    has_call: bool,
}

impl E {
    fn atom(code: String) -> E {
        E {
            code,
            atom: true,
            brace: false,
            has_call: false,
        }
    }
    fn compound(code: String) -> E {
        E {
            code,
            atom: false,
            brace: false,
            has_call: false,
        }
    }
    /// As an operand: parenthesised unless atomic.
    fn operand(&self) -> String {
        if self.atom {
            self.code.clone()
        } else {
            format!("({})", self.code)
        }
    }
}

pub struct Emitter<'a> {
    p: &'a NfProgram,
    file: String,
    records: Vec<String>,
    configs: Vec<String>,
    devices: Vec<String>,
    states: Vec<String>,
    locals: Vec<String>,
    local_read: Vec<bool>,
    local_assigned: Vec<bool>,
    /// Per state object: split per core by `sn` (see [`info::sharded`]).
    sharded: Vec<bool>,
    opts: GenOptions,
    /// Emitting the read-only pass (`decide_read`).
    read: bool,
    uses_view: bool,
    uses_now: bool,
    uses_w: bool,
    uses_log: bool,
    /// Set by the key-access closure of `call`, which only borrows `self`.
    uses_access: std::cell::Cell<bool>,
}

/// What a body emission used (to name unused parameters `_x`).
#[derive(Clone, Copy, Default)]
struct Uses {
    view: bool,
    now: bool,
    w: bool,
    log: bool,
    /// Counts key accesses when instrumented (`decide` is then generic over
    /// `INSTRUMENTED`).
    access: bool,
}

type R<T> = Result<T, GenError>;

impl<'a> Emitter<'a> {
    pub fn new(p: &'a NfProgram, opts: &GenOptions) -> R<Emitter<'a>> {
        let file = std::path::Path::new(&p.source.name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.source.name.clone());
        // Type names the generated module uses itself (imports and prelude).
        let mut types: HashSet<String> = [
            "Nf",
            "Option",
            "Some",
            "None",
            "Result",
            "Ok",
            "Err",
            "Box",
            "ExpiringTable",
            "Map",
            "Vector",
            "DChain",
            "Cht",
            "CountMinSketch",
            "BoundedSets",
            "StateError",
            "ParseMode",
            "InputPacket",
            "Observation",
            "AccessLog",
            "GeneratedNf",
            "NeedsWrite",
            "Refresh",
            "RefreshLog",
            "RenamedField",
            "StateObjectInfo",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let records = p
            .records
            .iter()
            .map(|r| names::type_name(&r.name, &mut types))
            .collect();
        // `INSTRUMENTED` is `decide`'s const parameter.
        let mut consts: HashSet<String> = ["PORT_COUNT", "INSTRUMENTED"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let devices = p
            .devices
            .iter()
            .map(|d| names::const_name(&d.name, &mut consts))
            .collect();
        let configs = p
            .configs
            .iter()
            .map(|c| names::const_name(&c.name, &mut consts))
            .collect();
        let states = p
            .states
            .iter()
            .map(|s| {
                let n = names::field_name(&s.name);
                if n == "faults" || n == "mode" || n == "access" {
                    format!("{n}_")
                } else {
                    n
                }
            })
            .collect();
        // Locals: one Rust variable per slot; a name declared twice gets a suffix so an
        // assignment can never hit a shadowing variable.
        let mut seen: HashSet<String> = HashSet::new();
        let mut count = std::collections::HashMap::<&str, u32>::new();
        for l in &p.locals {
            *count.entry(l.name.as_str()).or_default() += 1;
        }
        let mut locals = Vec::new();
        for (i, l) in p.locals.iter().enumerate() {
            let base = names::value_name(&l.name);
            let mut n = if count[l.name.as_str()] > 1 {
                format!("{base}_{i}")
            } else {
                base.clone()
            };
            while !seen.insert(n.clone()) {
                n = format!("{n}_");
            }
            locals.push(n);
        }
        let mut e = Emitter {
            p,
            file,
            records,
            configs,
            devices,
            states,
            locals,
            local_read: vec![false; p.locals.len()],
            local_assigned: vec![false; p.locals.len()],
            sharded: info::sharded(p),
            opts: opts.clone(),
            read: false,
            uses_view: false,
            uses_now: false,
            uses_w: false,
            uses_log: false,
            uses_access: std::cell::Cell::new(false),
        };
        let body = &p.process;
        e.scan_block(body);
        for (i, read) in e.local_read.iter().enumerate() {
            if !read {
                e.locals[i] = format!("_{}", e.locals[i]);
            }
        }
        Ok(e)
    }

    // ----- analysis -----

    fn scan_block(&mut self, b: &[Stmt]) {
        for s in b {
            match &s.kind {
                StmtKind::Let { value, .. } => self.scan_expr(value),
                StmtKind::Assign { local, value } => {
                    self.local_assigned[local.0 as usize] = true;
                    self.scan_expr(value);
                }
                StmtKind::SetField { value, .. } => self.scan_expr(value),
                StmtKind::If { cond, then, els } => {
                    self.scan_expr(cond);
                    self.scan_block(then);
                    self.scan_block(els);
                }
                StmtKind::IfLet {
                    call, then, els, ..
                } => {
                    call.args.iter().for_each(|a| self.scan_expr(a));
                    self.scan_block(then);
                    self.scan_block(els);
                }
                StmtKind::Parse { els, .. } => self.scan_block(els),
                StmtKind::Call(c) => c.args.iter().for_each(|a| self.scan_expr(a)),
                StmtKind::Action(Action::Forward(e)) => self.scan_expr(e),
                StmtKind::Action(_) => {}
            }
        }
    }

    fn scan_expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Local(id) => {
                if let Some(r) = self.local_read.get_mut(id.0 as usize) {
                    *r = true;
                }
            }
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Field(a, _) => self.scan_expr(a),
            ExprKind::Binary(_, a, b) => {
                self.scan_expr(a);
                self.scan_expr(b);
            }
            ExprKind::Builtin(_, args) | ExprKind::Record(_, args) => {
                args.iter().for_each(|a| self.scan_expr(a))
            }
            ExprKind::Call(c) => c.args.iter().for_each(|a| self.scan_expr(a)),
            _ => {}
        }
    }

    // ----- helpers -----

    fn loc(&self, span: Span) -> String {
        let (l, c) = self.p.line_col(span);
        format!("{}:{}:{}", self.file, l, c)
    }

    fn unsupported(
        &self,
        span: Span,
        construct: impl Into<String>,
        reason: impl Into<String>,
    ) -> GenError {
        GenError::Unsupported {
            location: self.loc(span),
            construct: construct.into(),
            reason: reason.into(),
        }
    }

    fn ty(&self, t: Type) -> String {
        match t {
            Type::Int(i) => i.name().to_string(),
            Type::Bool => "bool".into(),
            Type::Mac => "[u8; 6]".into(),
            Type::Ip4 => "u32".into(),
            Type::Device => "u16".into(),
            Type::Record(id) => self
                .records
                .get(id.0 as usize)
                .cloned()
                .unwrap_or_else(|| "()".into()),
        }
    }

    /// `<T>::default()`: the zero value of a type (records derive `Default`).
    fn zero(&self, t: Type) -> String {
        format!("<{}>::default()", self.ty(t))
    }

    fn lit(&self, v: &Value, t: Type, span: Span) -> R<E> {
        Ok(match (v, t) {
            (Value::Int(IntTy::I64, x), _) => {
                let s = *x as i64;
                if s == i64::MIN {
                    E::atom("i64::MIN".into())
                } else if s < 0 {
                    E::compound(format!("{s}i64"))
                } else {
                    E::atom(format!("{s}i64"))
                }
            }
            (Value::Int(i, x), _) => E::atom(format!("{x}{}", i.name())),
            (Value::Bool(b), _) => E::atom(b.to_string()),
            (Value::Mac(m), _) => E::atom(format!(
                "[{:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}, {:#04x}]",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )),
            (Value::Ip4(a), _) => E::atom(format!(
                "0x{a:08x}_u32 /* {} */",
                std::net::Ipv4Addr::from(*a)
            )),
            (Value::Device(d), _) => E::atom(format!("{d}u16")),
            (Value::Record(fields), Type::Record(id)) => {
                let def = self.p.records.get(id.0 as usize).ok_or_else(|| {
                    self.unsupported(span, "a record constant", "unknown record type")
                })?;
                let mut s = format!("{} {{ ", self.ty(t));
                for ((name, ft), fv) in def.fields.iter().zip(fields.iter()) {
                    let _ = write!(
                        s,
                        "{}: {}, ",
                        names::field_name(name),
                        self.lit(fv, *ft, span)?.code
                    );
                }
                s.push('}');
                E {
                    code: s,
                    atom: true,
                    brace: true,
                    has_call: false,
                }
            }
            (Value::Record(_), _) => {
                return Err(self.unsupported(span, "a record constant", "its type is not a record"))
            }
        })
    }

    // ----- expressions -----

    fn expr(&mut self, e: &Expr) -> R<E> {
        Ok(match &e.kind {
            ExprKind::Const(v) => self.lit(v, e.ty, e.span)?,
            ExprKind::Config(id) => {
                let c = self
                    .p
                    .configs
                    .get(id.0 as usize)
                    .ok_or_else(|| self.unsupported(e.span, "a config", "unknown config"))?;
                match c.value {
                    // The interpreter gives `file` configs the value `false`.
                    ConfigValue::File { .. } => E::atom("false".into()),
                    ConfigValue::Value(_) => E::atom(self.configs[id.0 as usize].clone()),
                }
            }
            ExprKind::Device(id) => E::atom(
                self.devices
                    .get(id.0 as usize)
                    .cloned()
                    .ok_or_else(|| self.unsupported(e.span, "a device", "unknown device"))?,
            ),
            ExprKind::Local(id) => E::atom(
                self.locals
                    .get(id.0 as usize)
                    .cloned()
                    .ok_or_else(|| self.unsupported(e.span, "a local", "unknown local"))?,
            ),
            ExprKind::In => E::atom("packet.port".into()),
            ExprKind::Now => {
                self.uses_now = true;
                E::atom("now".into())
            }
            ExprKind::Packet(f) => self.read_field(*f),
            ExprKind::Unary(op, a) => {
                let x = self.expr(a)?;
                let code = match (op, a.ty) {
                    (UnOp::Not, Type::Bool | Type::Int(_)) => format!("!{}", x.operand()),
                    (UnOp::Neg, Type::Int(_)) => format!("{}.wrapping_neg()", x.operand()),
                    _ => {
                        return Err(self.unsupported(
                            e.span,
                            "a unary operator",
                            format!("operand of type {}", self.p.type_name(a.ty)),
                        ))
                    }
                };
                E {
                    has_call: x.has_call,
                    brace: false,
                    ..E::compound(code)
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.span)?,
            ExprKind::Cast(a) => self.cast(a, e.ty, e.span)?,
            ExprKind::Builtin(b, args) => self.builtin(*b, args, e.span)?,
            ExprKind::Record(id, fields) => {
                let def = self.p.records.get(id.0 as usize).ok_or_else(|| {
                    self.unsupported(e.span, "a record literal", "unknown record")
                })?;
                let mut s = format!("{} {{ ", self.ty(e.ty));
                let mut has_call = false;
                for ((name, _), f) in def.fields.iter().zip(fields) {
                    let x = self.expr(f)?;
                    has_call |= x.has_call;
                    let _ = write!(s, "{}: {}, ", names::field_name(name), x.code);
                }
                s.push('}');
                E {
                    code: s,
                    atom: true,
                    brace: true,
                    has_call,
                }
            }
            ExprKind::Field(r, i) => {
                let Type::Record(id) = r.ty else {
                    return Err(self.unsupported(e.span, "a field access", "not a record"));
                };
                let name = self
                    .p
                    .records
                    .get(id.0 as usize)
                    .and_then(|d| d.fields.get(*i as usize))
                    .map(|(n, _)| names::field_name(n))
                    .ok_or_else(|| self.unsupported(e.span, "a field access", "unknown field"))?;
                let x = self.expr(r)?;
                E {
                    code: format!("{}.{}", x.operand(), name),
                    atom: true,
                    brace: x.brace,
                    has_call: x.has_call,
                }
            }
            ExprKind::Call(c) => self.call(c)?,
        })
    }

    fn read_field(&mut self, f: PktField) -> E {
        self.uses_view = true;
        let code = match f {
            PktField::Len => "support::len(&view)",
            PktField::EthType => "support::eth_type(&view)",
            PktField::IpProto => "support::ip_proto(&view)",
            PktField::IpIhl => "support::ip_ihl(&view)",
            PktField::IpLen => "support::ip_len(&view)",
            PktField::IpId => "support::ip_id(&view)",
            PktField::IpFrag => "support::ip_frag(&view)",
            // Writable fields: a read sees the writes made so far on this path.
            _ => {
                self.uses_w = true;
                match f {
                    PktField::EthDst => "w.eth_dst(&view)",
                    PktField::EthSrc => "w.eth_src(&view)",
                    PktField::IpSrc => "w.ip_src(&view)",
                    PktField::IpDst => "w.ip_dst(&view)",
                    PktField::IpTtl => "w.ip_ttl(&view)",
                    PktField::IpTos => "w.ip_tos(&view)",
                    PktField::L4Sport => "w.l4_sport(&view)",
                    _ => "w.l4_dport(&view)",
                }
            }
        };
        E::atom(code.into())
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span) -> R<E> {
        use BinOp::*;
        let x = self.expr(a)?;
        let y = self.expr(b)?;
        let has_call = x.has_call || y.has_call;
        let brace = x.brace || y.brace;
        let infix = |sym: &str| E {
            code: format!("{} {sym} {}", x.operand(), y.operand()),
            atom: false,
            brace: (x.atom && x.brace) || (y.atom && y.brace),
            has_call,
        };
        let method = |m: &str| E {
            code: format!("{}.{m}({})", x.operand(), y.code),
            atom: true,
            brace,
            has_call,
        };
        let support = |f: &str, arg2: String| E {
            code: format!("support::NfInt::{f}({}, {arg2})", x.code),
            atom: true,
            brace: false,
            has_call,
        };
        let bad = || {
            self.unsupported(
                span,
                format!("the operator `{}`", op.as_str()),
                format!(
                    "operands of type {} and {}",
                    self.p.type_name(a.ty),
                    self.p.type_name(b.ty)
                ),
            )
        };
        if a.ty != b.ty {
            return Err(bad());
        }
        Ok(match op {
            // `&&`/`||` short-circuit, as in the interpreter.
            And => infix("&&"),
            Or => infix("||"),
            // Value equality; records compare field by field (derived).
            Eq => infix("=="),
            Ne => infix("!="),
            Lt | Le | Gt | Ge if matches!(a.ty, Type::Int(_) | Type::Ip4) => {
                // i64 compares signed, the rest unsigned: Rust's native comparisons.
                infix(match op {
                    Lt => "<",
                    Le => "<=",
                    Gt => ">",
                    _ => ">=",
                })
            }
            BitAnd if matches!(a.ty, Type::Int(_) | Type::Ip4) => infix("&"),
            BitOr if matches!(a.ty, Type::Int(_) | Type::Ip4) => infix("|"),
            _ if !a.ty.is_int() => return Err(bad()),
            // Integers wrap at their width.
            Add => method("wrapping_add"),
            Sub => method("wrapping_sub"),
            Mul => method("wrapping_mul"),
            BitXor => infix("^"),
            Div => support("nf_div", y.code.clone()),
            Rem => support("nf_rem", y.code.clone()),
            Shl => support("nf_shl", format!("{} as u64", y.operand())),
            Shr => support("nf_shr", format!("{} as u64", y.operand())),
            _ => return Err(bad()),
        })
    }

    /// `e as to`: the source's bits (`ops::cast` uses `Value::bits`), then truncated,
    /// zero-extended (sign-extended from `i64`) or reinterpreted.
    fn cast(&mut self, a: &Expr, to: Type, span: Span) -> R<E> {
        let x = self.expr(a)?;
        let has_call = x.has_call;
        let from = a.ty;
        if from == to {
            return Ok(x);
        }
        let bits = match from {
            Type::Mac => format!("support::mac_to_u64({})", x.code),
            Type::Record(_) => {
                return Err(self.unsupported(span, "a cast", "a record has no scalar bits"))
            }
            _ => format!("{} as u64", x.operand()),
        };
        let code = match to {
            Type::Int(IntTy::U64) if from != Type::Mac => format!("{} as u64", x.operand()),
            // `i64 as u16` and friends truncate the two's complement bits; `uN as i64`
            // zero-extends: exactly Rust's `as` between integers.
            Type::Int(t) if from != Type::Mac && from != Type::Bool => {
                format!("{} as {}", x.operand(), t.name())
            }
            Type::Int(t) => format!("({bits}) as {}", t.name()),
            Type::Ip4 if from != Type::Mac => format!("{} as u32", x.operand()),
            Type::Device if from != Type::Mac => format!("{} as u16", x.operand()),
            Type::Ip4 => format!("({bits}) as u32"),
            Type::Device => format!("({bits}) as u16"),
            Type::Bool => format!("({bits}) != 0"),
            Type::Mac => {
                return Ok(E {
                    code: format!("support::u64_to_mac({bits})"),
                    atom: true,
                    brace: false,
                    has_call,
                })
            }
            Type::Record(_) => return Ok(x),
        };
        Ok(E {
            code,
            atom: false,
            brace: false,
            has_call,
        })
    }

    fn builtin(&mut self, b: Builtin, args: &[Expr], span: Span) -> R<E> {
        let mut xs = Vec::new();
        for a in args {
            xs.push(self.expr(a)?);
        }
        let has_call = xs.iter().any(|x| x.has_call);
        let need = |n: usize| -> R<()> {
            if xs.len() == n && args.iter().all(|a| a.ty.is_int() && a.ty == args[0].ty) {
                Ok(())
            } else {
                Err(self.unsupported(
                    span,
                    format!("`{}`", b.name()),
                    format!("expects {n} integers of one type"),
                ))
            }
        };
        let code = match b {
            Builtin::Hash => {
                // Arguments are fed in order; a tuple feeds its elements in order.
                let parts: Vec<String> = xs.iter().map(|x| x.code.clone()).collect();
                format!("support::hash_of(&{})", tuple_of(&parts))
            }
            Builtin::Min | Builtin::Max | Builtin::SatAdd | Builtin::SatSub => {
                need(2)?;
                let m = match b {
                    Builtin::Min => "min",
                    Builtin::Max => "max",
                    Builtin::SatAdd => "saturating_add",
                    _ => "saturating_sub",
                };
                format!("{}.{m}({})", xs[0].operand(), xs[1].code)
            }
            Builtin::MulDiv => {
                need(3)?;
                format!(
                    "support::NfInt::nf_mul_div({}, {}, {})",
                    xs[0].code, xs[1].code, xs[2].code
                )
            }
        };
        Ok(E {
            code,
            atom: true,
            brace: false,
            has_call,
        })
    }

    // ----- state calls -----

    /// The time expiry uses: `now`, or `now + 1` in the deliberately wrong
    /// `expiry_off_by_one` variant.
    fn expiry_now(&self) -> &'static str {
        if self.opts.expiry_off_by_one {
            "now.saturating_add(1)"
        } else {
            "now"
        }
    }

    /// A state call as an expression of its result type: `Option<_>` for *opt* calls,
    /// `()` for calls without a result.
    fn call(&mut self, c: &StateCall) -> R<E> {
        use Method::*;
        let sid = c.state.0 as usize;
        let decl = self
            .p
            .states
            .get(sid)
            .ok_or_else(|| self.unsupported(c.span, "a state call", "unknown state object"))?;
        let s = format!("self.{}", self.states[sid]);
        let what = format!("{}.{}", decl.name, c.method.name());
        let loc = self.loc(c.span);
        let read = self.read;
        let obj = format!("{sid}u16 /* {} */", decl.name);
        let mut xs = Vec::new();
        for a in &c.args {
            xs.push(self.expr(a)?);
        }
        let needs_now = matches!(
            c.method,
            TableExpire
                | TableAdd
                | TableRefresh
                | DChainAllocate
                | DChainRefresh
                | DChainExpire
                | SketchExpire
                | SketchTouch
                | SketchRefresh
        );
        if needs_now {
            self.uses_now = true;
        }
        if read && matches!(c.method, TableRefresh | DChainRefresh | SketchRefresh) {
            self.uses_log = true;
        }
        let arg = |i: usize| -> R<&E> {
            xs.get(i).ok_or_else(|| {
                self.unsupported(
                    c.span,
                    format!("`{what}`"),
                    format!("missing argument {}", i + 1),
                )
            })
        };
        // The read-only pass: a mutating call is a write attempt. Its arguments are
        // still evaluated (they may read state, and the locals they use stay used).
        if read {
            let result_ty = match c.method {
                TableAdd | DChainAllocate => Some("Option<u32>"),
                TableRemove | MapPut | MapErase | DChainFree | SetsInsert => Some("bool"),
                TableSetValue | VectorSet | SketchTouch | SetsClear => Some("()"),
                _ => None,
            };
            if let Some(t) = result_ty {
                let args: Vec<String> = xs.iter().map(|x| format!("{}, ", x.code)).collect();
                return Ok(E {
                    code: format!("support::write_attempt::<{t}, _>(({}))?", args.concat()),
                    atom: true,
                    brace: false,
                    has_call: true,
                });
            }
        }
        let bind_all = xs.iter().any(|x| x.has_call);
        // The index range and the table value type. Sharded objects have per-core
        // capacities, so the range is the object's own, never the sequential constant.
        let (limit, value_ty) = match &decl.kind {
            StateKind::Table { value, .. } => (format!("{s}.capacity() as u64"), *value),
            StateKind::Vector { elem, .. } => (format!("{s}.capacity() as u64"), Some(*elem)),
            StateKind::DChain { .. } => (format!("{s}.capacity() as u64"), None),
            StateKind::Sets { .. } => (format!("{s}.sets() as u64"), None),
            _ => ("0u64".to_string(), None),
        };
        // Key-style calls: the key (and value) inline, or bound first when an argument
        // itself calls state (arguments are evaluated left to right before the call).
        // `instrument` counts the access per key (in `decide` only: the read pass
        // serves the `locks` strategy, instrumentation the shared-nothing check).
        let keyed = |instrument: bool, body: &dyn Fn(&str, &str) -> String| -> R<String> {
            let k = arg(0)?;
            let v = xs.get(1);
            let instrument = instrument && !read;
            if bind_all || instrument {
                let (pat, init) = match v {
                    Some(v) => (
                        "(key, value)".to_string(),
                        format!("({}, {})", k.code, v.code),
                    ),
                    None => ("key".to_string(), k.code.clone()),
                };
                // Compiled out of the uninstrumented `decide::<false>`.
                let touch = if instrument {
                    self.uses_access.set(true);
                    format!(
                        "if INSTRUMENTED {{ if let Some(acc) = self.access.as_mut() {{ acc.touch({obj}, AccessLog::key_of(&key)); }} }} "
                    )
                } else {
                    String::new()
                };
                Ok(format!(
                    "{{ let {pat} = {init}; {touch}{} }}",
                    body("key", "value")
                ))
            } else {
                let vc = v.map(|v| v.code.clone()).unwrap_or_default();
                Ok(body(&k.code, &vc))
            }
        };
        // Index-style calls: `index` bound as u64 (with the second argument, if any),
        // checked against the range; out of range is a fault with the fallback result
        // (in the read pass: the fault is left to the write pass).
        let indexed = |ok: &str, fallback: Option<&str>| -> R<String> {
            let i = arg(0)?;
            let (pat, init) = match xs.get(1) {
                Some(v) => (
                    "(index, value)".to_string(),
                    format!("({} as u64, {})", i.operand(), v.code),
                ),
                None => ("index".to_string(), format!("{} as u64", i.operand())),
            };
            let fault = if read {
                "return Err(NeedsWrite);".to_string()
            } else {
                format!("self.faults.out_of_range({loc:?}, {what:?}, index, {limit});")
            };
            Ok(match fallback {
                Some(f) if !read => format!(
                    "{{ let {pat} = {init}; if index < {limit} {{ {ok} }} else {{ {fault} {f} }} }}"
                ),
                Some(_) => format!(
                    "{{ let {pat} = {init}; if index < {limit} {{ {ok} }} else {{ {fault} }} }}"
                ),
                None => format!(
                    "{{ let {pat} = {init}; if index < {limit} {{ {ok}; }} else {{ {fault} }} }}"
                ),
            })
        };
        let value_default = || -> String {
            match value_ty {
                Some(t) => self.zero(t),
                None => "()".into(),
            }
        };
        let vzero = value_default();
        let now_x = self.expiry_now();
        let code = match (&decl.kind, c.method) {
            (StateKind::Table { .. }, TableExpire) if read => {
                format!("support::expire_read::<u32>({s}.would_expire({now_x}))?")
            }
            (StateKind::Table { .. }, TableExpire) => format!("{s}.expire({now_x})"),
            (StateKind::Table { .. }, TableGet) => keyed(true, &|k, _| format!("{s}.get(&{k})"))?,
            (StateKind::Table { .. }, TableContains) => {
                keyed(true, &|k, _| format!("{s}.contains(&{k})"))?
            }
            (StateKind::Table { .. }, TableAdd) => {
                // `add(k)` on a table with values stores the zero value (the
                // interpreter's never-written slot).
                let has_value = xs.len() > 1;
                keyed(true, &|k, v| {
                    let v = if has_value {
                        v.to_string()
                    } else {
                        vzero.clone()
                    };
                    format!("{s}.add({k}, {v}, now)")
                })?
            }
            (StateKind::Table { .. }, TableRefresh) if read => {
                indexed(
                    &format!(
                        "support::log_refresh(log, {obj}, index as u32, now, {s}.has_index(index as u32))?"
                    ),
                    Some("false"),
                )?
            }
            (StateKind::Table { .. }, TableRefresh) => {
                indexed(&format!("{s}.refresh(index as u32, now)"), Some("false"))?
            }
            (StateKind::Table { .. }, TableHasIndex) => format!(
                "{{ let index = {} as u64; index < {limit} && {s}.has_index(index as u32) }}",
                arg(0)?.operand()
            ),
            (StateKind::Table { key, .. }, TableKey) => {
                let z = self.zero(*key);
                indexed(
                    &format!(
                        "{s}.key(index as u32).copied().unwrap_or_else({z_fn})",
                        z_fn = zero_fn(&z)
                    ),
                    Some(&z),
                )?
            }
            (
                StateKind::Table {
                    value: Some(vt), ..
                },
                TableValue,
            ) => {
                let z = self.zero(*vt);
                indexed(
                    &format!(
                        "{s}.value(index as u32).copied().unwrap_or_else({})",
                        zero_fn(&z)
                    ),
                    Some(&z),
                )?
            }
            (StateKind::Table { value: Some(_), .. }, TableSetValue) => {
                indexed(&format!("{s}.set_value(index as u32, value)"), None)?
            }
            (StateKind::Table { .. }, TableRemove) => {
                keyed(true, &|k, _| format!("{s}.remove(&{k})"))?
            }
            (StateKind::Table { .. }, TableFull) => format!("{s}.is_full()"),
            (StateKind::Table { .. }, TableSize) => format!("{s}.len()"),

            (StateKind::Map { .. }, MapGet) => {
                keyed(true, &|k, _| format!("{s}.get(&{k}).copied()"))?
            }
            (StateKind::Map { .. }, MapContains) => {
                keyed(true, &|k, _| format!("{s}.contains(&{k})"))?
            }
            (StateKind::Map { .. }, MapPut) => keyed(true, &|k, v| format!("{s}.put({k}, {v})"))?,
            (StateKind::Map { .. }, MapErase) => {
                keyed(true, &|k, _| format!("{s}.erase(&{k}).is_some()"))?
            }
            (StateKind::Map { .. }, MapSize) => format!("{s}.len()"),

            (StateKind::Vector { elem, .. }, VectorGet) => {
                let z = self.zero(*elem);
                indexed(
                    &format!(
                        "{s}.get(index as u32).copied().unwrap_or_else({})",
                        zero_fn(&z)
                    ),
                    Some(&z),
                )?
            }
            (StateKind::Vector { .. }, VectorSet) => {
                indexed(&format!("{s}.set(index as u32, value)"), None)?
            }

            (StateKind::DChain { .. }, DChainAllocate) => format!("{s}.allocate(now)"),
            (StateKind::DChain { .. }, DChainRefresh) if read => {
                indexed(
                    &format!(
                        "support::log_refresh(log, {obj}, index as u32, now, {s}.is_allocated(index as u32))?"
                    ),
                    Some("false"),
                )?
            }
            (StateKind::DChain { .. }, DChainRefresh) => {
                indexed(&format!("{s}.rejuvenate(index as u32, now)"), Some("false"))?
            }
            (StateKind::DChain { .. }, DChainIsAllocated) => format!(
                "{{ let index = {} as u64; index < {limit} && {s}.is_allocated(index as u32) }}",
                arg(0)?.operand()
            ),
            (StateKind::DChain { .. }, DChainFree) => {
                indexed(&format!("{s}.free(index as u32)"), Some("false"))?
            }
            (StateKind::DChain { ttl, .. }, DChainExpire) if read => format!(
                "support::expire_read::<u32>({s}.would_expire({now_x}.saturating_sub({ttl}u64)))?"
            ),
            (StateKind::DChain { ttl, .. }, DChainExpire) => {
                format!("support::dchain_expire(&mut {s}, {now_x}, {ttl})")
            }

            (StateKind::Cht { backends, .. }, ChtFind) => {
                // Live backends are the allocated indexes of the backend table.
                let t = self
                    .states
                    .get(backends.0 as usize)
                    .cloned()
                    .ok_or_else(|| {
                        self.unsupported(c.span, "`cht.find`", "unknown backend table")
                    })?;
                format!(
                    "{{ let key = {} as u64; {s}.find(key, |b| self.{t}.has_index(b)) }}",
                    arg(0)?.operand()
                )
            }

            // The sketch is fed with the struct hash of the key.
            (StateKind::Sketch { .. }, SketchExpire) if read => {
                format!("support::expire_read::<()>(support::sketch_would_expire(&{s}, {now_x}))?")
            }
            (StateKind::Sketch { .. }, SketchExpire) => format!("{s}.expire({now_x})"),
            (StateKind::Sketch { .. }, SketchOver) => {
                keyed(true, &|k, _| format!("{s}.over(support::hash_of(&{k}))"))?
            }
            (StateKind::Sketch { .. }, SketchTouch) => {
                keyed(true, &|k, _| format!("{s}.touch(support::hash_of(&{k}), now)"))?
            }
            (StateKind::Sketch { .. }, SketchRefresh) if read => {
                keyed(false, &|k, _| {
                    format!("support::log_sketch_refresh(log, {obj}, &{s}, support::hash_of(&{k}), now)?")
                })?
            }
            (StateKind::Sketch { .. }, SketchRefresh) => {
                keyed(true, &|k, _| format!("{s}.refresh(support::hash_of(&{k}), now)"))?
            }

            (StateKind::Sets { .. }, SetsClear) => {
                indexed(&format!("{s}.clear(index as u32)"), None)?
            }
            (StateKind::Sets { .. }, SetsContains) => indexed(
                &format!("{s}.contains(index as u32, &value)"),
                Some("false"),
            )?,
            (StateKind::Sets { .. }, SetsInsert) => {
                indexed(&format!("{s}.insert(index as u32, value)"), Some("false"))?
            }
            (StateKind::Sets { .. }, SetsCount) => {
                indexed(&format!("{s}.count(index as u32)"), Some("0u32"))?
            }
            (kind, m) => {
                return Err(self.unsupported(
                    c.span,
                    format!("`{what}`"),
                    format!("`{}` is not a method of a {}", m.name(), kind.kind_name()),
                ))
            }
        };
        Ok(E {
            code,
            atom: true,
            brace: false,
            has_call: true,
        })
    }

    /// Whether a call gives a value (as opposed to nothing).
    fn call_has_result(m: Method) -> bool {
        use Method::*;
        !matches!(
            m,
            TableSetValue | VectorSet | SketchExpire | SketchTouch | SketchRefresh | SetsClear
        )
    }

    // ----- statements -----

    fn block(&mut self, b: &[Stmt], out: &mut String) -> R<()> {
        for s in b {
            self.stmt(s, out)?;
            // Statements after a path's action never run (the interpreter stops there);
            // emitting them would be unreachable code.
            if terminates(s) {
                break;
            }
        }
        Ok(())
    }

    fn cond(&mut self, e: &Expr) -> R<String> {
        let x = self.expr(e)?;
        Ok(if x.brace {
            format!("({})", x.code)
        } else {
            x.code
        })
    }

    fn stmt(&mut self, s: &Stmt, out: &mut String) -> R<()> {
        match &s.kind {
            StmtKind::Let { local, value } => {
                let i = local.0 as usize;
                let x = self.expr(value)?;
                let mutable = if self.local_assigned.get(i).copied().unwrap_or(false) {
                    "mut "
                } else {
                    ""
                };
                let ty = self.ty(self.p.locals[i].ty);
                let _ = writeln!(out, "let {mutable}{}: {ty} = {};", self.locals[i], x.code);
            }
            StmtKind::Assign { local, value } => {
                let x = self.expr(value)?;
                let _ = writeln!(out, "{} = {};", self.locals[local.0 as usize], x.code);
            }
            StmtKind::SetField { field, value } => {
                if !field.writable() {
                    return Err(self.unsupported(
                        s.span,
                        format!("a write to `{}`", field.path()),
                        "the field is read-only",
                    ));
                }
                let x = self.expr(value)?;
                self.uses_w = true;
                let setter = match field {
                    PktField::EthDst => "set_eth_dst",
                    PktField::EthSrc => "set_eth_src",
                    PktField::IpSrc => "set_ip_src",
                    PktField::IpDst => "set_ip_dst",
                    PktField::IpTtl => "set_ip_ttl",
                    PktField::IpTos => "set_ip_tos",
                    PktField::L4Sport => "set_l4_sport",
                    _ => "set_l4_dport",
                };
                let _ = writeln!(out, "w.{setter}({});", x.code);
            }
            StmtKind::If { cond, then, els } => {
                let c = self.cond(cond)?;
                let _ = writeln!(out, "if {c} {{");
                self.block(then, out)?;
                if els.is_empty() {
                    out.push_str("}\n");
                } else {
                    out.push_str("} else {\n");
                    self.block(els, out)?;
                    out.push_str("}\n");
                }
            }
            StmtKind::IfLet {
                local,
                call,
                then,
                els,
            } => {
                let x = self.call(call)?;
                let _ = writeln!(
                    out,
                    "if let Some({}) = {} {{",
                    self.locals[local.0 as usize], x.code
                );
                self.block(then, out)?;
                if els.is_empty() {
                    out.push_str("}\n");
                } else {
                    out.push_str("} else {\n");
                    self.block(els, out)?;
                    out.push_str("}\n");
                }
            }
            StmtKind::Parse { layer, els } => {
                self.uses_view = true;
                let l = match layer {
                    Layer::Ipv4 => "ipv4",
                    Layer::L4 => "l4",
                };
                let _ = writeln!(out, "// parse {l}\nif view.layout().{l}.is_none() {{");
                self.block(els, out)?;
                out.push_str("}\n");
            }
            StmtKind::Call(c) => {
                let x = self.call(c)?;
                if Self::call_has_result(c.method) {
                    let _ = writeln!(out, "let _ = {};", x.code);
                } else {
                    let _ = writeln!(out, "{};", x.code);
                }
            }
            StmtKind::Action(Action::Drop) if self.read => {
                out.push_str("return Ok(support::Action::Drop);\n")
            }
            StmtKind::Action(Action::Drop) => out.push_str("return support::Action::Drop;\n"),
            StmtKind::Action(Action::Flood) if self.read => {
                out.push_str("return Ok(support::Action::Flood);\n")
            }
            StmtKind::Action(Action::Flood) => out.push_str("return support::Action::Flood;\n"),
            StmtKind::Action(Action::Forward(e)) => {
                let x = self.expr(e)?;
                if self.read {
                    // A forward to a missing port is a fault: the write pass records it.
                    let _ = writeln!(
                        out,
                        "return support::forward_read({} as u64, packet.port, PORT_COUNT);",
                        x.operand(),
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "return support::forward({} as u64, packet.port, PORT_COUNT, &mut self.faults, {:?});",
                        x.operand(),
                        self.loc(s.span)
                    );
                }
            }
        }
        Ok(())
    }

    // ----- the module -----

    /// Emits the body of `process` in the current mode; what it used.
    fn body(&mut self, read: bool) -> R<(String, Uses)> {
        self.read = read;
        self.uses_view = false;
        self.uses_now = false;
        self.uses_w = false;
        self.uses_log = false;
        self.uses_access.set(false);
        let p = self.p;
        let mut body = String::new();
        self.block(&p.process, &mut body)?;
        if !p.process.iter().any(terminates) {
            // A path without an action drops (the checker rules this out).
            body.push_str(if read {
                "Ok(support::Action::Drop)\n"
            } else {
                "support::Action::Drop\n"
            });
        }
        let uses = Uses {
            view: self.uses_view,
            now: self.uses_now,
            w: self.uses_w,
            log: self.uses_log,
            access: self.uses_access.get(),
        };
        self.read = false;
        Ok((body, uses))
    }

    /// `let now` / `let view` at the top of a body, as it uses them.
    fn prelude(uses: Uses) -> String {
        let mut o = String::new();
        if uses.now {
            o.push_str("let now = packet.time_ns;\n");
        }
        if uses.view {
            o.push_str(
                "let view = maestro_runtime::packet::PacketView::new(&packet.data, self.mode);\n",
            );
        }
        o
    }

    pub fn module(mut self) -> R<String> {
        let p = self.p;
        let (body, uses) = self.body(false)?;
        let (read_body, read_uses) = self.body(true)?;

        let mut o = String::new();
        let _ = writeln!(
            o,
            "// The `{}` NF, generated by maestro from {}: do not edit.\n// {}\n//\n\
             // One implementation serves every strategy (`maestro_runtime::exec::GeneratedNf`):\n\
             // `process` runs a packet, `process_read` is the read-only pass of `locks`,\n\
             // `with_shards` sizes the per-core state of `sn`.{}\n",
            p.name,
            self.file,
            p.description.replace('\n', " "),
            if self.opts.expiry_off_by_one {
                "\n// MUTANT (expiry_off_by_one): every expiry uses `now + 1`, freeing entries\n\
                 // exactly at the threshold one nanosecond early. Deliberately wrong: it\n\
                 // exists for the checker's self-test (`maestro verify --mutants`)."
            } else {
                ""
            }
        );
        let mut used: BTreeSet<&str> = BTreeSet::new();
        for st in &p.states {
            used.insert(match st.kind {
                StateKind::Table { .. } => "ExpiringTable",
                StateKind::Map { .. } => "Map",
                StateKind::Vector { .. } => "Vector",
                StateKind::DChain { .. } => "DChain",
                StateKind::Cht { .. } => "Cht",
                StateKind::Sketch { .. } => "CountMinSketch",
                StateKind::Sets { .. } => "BoundedSets",
            });
        }
        used.insert("StateError");
        let list: Vec<&str> = used.into_iter().collect();
        let _ = writeln!(
            o,
            "use crate::support;\n\
             use maestro_runtime::exec::{{AccessLog, GeneratedNf, NeedsWrite, Refresh, RefreshLog, RenamedField, StateObjectInfo}};\n\
             use maestro_runtime::packet::ParseMode;\nuse maestro_runtime::state::{{{}}};\nuse maestro_runtime::{{InputPacket, Observation}};\n",
            list.join(", ")
        );

        // Devices and configs: evaluated at load time, baked in.
        let _ = writeln!(
            o,
            "/// `max(port) + 1`: ports the NF may forward to.\npub const PORT_COUNT: u16 = {};",
            p.port_count
        );
        for (i, d) in p.devices.iter().enumerate() {
            let _ = writeln!(
                o,
                "/// device `{}`\npub const {}: u16 = {};",
                d.name, self.devices[i], d.port
            );
        }
        for (i, c) in p.configs.iter().enumerate() {
            match (&c.value, c.ty) {
                (ConfigValue::Value(v), Some(t)) => {
                    let lit = self.lit(v, t, c.span)?;
                    let _ = writeln!(
                        o,
                        "/// config `{}`{}\npub const {}: {} = {};",
                        c.name,
                        if c.overridden {
                            " (set at generation)"
                        } else {
                            ""
                        },
                        self.configs[i],
                        self.ty(t),
                        lit.code
                    );
                }
                (ConfigValue::File { written, .. }, _) => {
                    let _ = writeln!(
                        o,
                        "// config `{}`: file {written:?}, read at generation time",
                        c.name
                    );
                }
                (ConfigValue::Value(_), None) => {
                    return Err(self.unsupported(
                        c.span,
                        format!("config `{}`", c.name),
                        "it has no type",
                    ))
                }
            }
        }
        o.push('\n');

        // Records.
        for (i, r) in p.records.iter().enumerate() {
            let name = &self.records[i];
            let _ = writeln!(
                o,
                "/// record `{}`\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]\npub struct {name} {{",
                r.name
            );
            for (f, t) in &r.fields {
                let _ = writeln!(o, "pub {}: {},", names::field_name(f), self.ty(*t));
            }
            o.push_str("}\n\n");
            let h = if r.fields.is_empty() { "_h" } else { "h" };
            let _ = writeln!(
                o,
                "/// Fields in declaration order, as `hash()` feeds records.\nimpl support::FeedHash for {name} {{\nfn feed(&self, {h}: &mut maestro_runtime::hash::StructHasher) {{"
            );
            for (f, _) in &r.fields {
                let _ = writeln!(
                    o,
                    "support::FeedHash::feed(&self.{}, h);",
                    names::field_name(f)
                );
            }
            o.push_str("}\n}\n\n");
        }

        // The NF.
        o.push_str("/// The NF's state; `process` runs one packet.\npub struct Nf {\n");
        let mut inits = String::new();
        let mut infos = String::new();
        let mut refreshes: Vec<String> = Vec::new();
        for (i, st) in p.states.iter().enumerate() {
            let f = &self.states[i];
            let sharded = self.sharded[i];
            // A sharded object's capacity is its per-core share.
            let cap = |c: u32| -> String {
                if sharded {
                    format!("maestro_runtime::exec::shard_capacity({c}, shards)")
                } else {
                    c.to_string()
                }
            };
            let (ty, init, info_cap) = match &st.kind {
                StateKind::Table {
                    key,
                    value,
                    capacity,
                    ttl,
                } => {
                    let v = value.map(|v| self.ty(v)).unwrap_or_else(|| "()".into());
                    refreshes.push(format!(
                        "{i} => {{ let _ = self.{f}.refresh(refresh.index, refresh.now); }}"
                    ));
                    (
                        format!("ExpiringTable<{}, {v}>", self.ty(*key)),
                        format!("ExpiringTable::new({}, {ttl})?", cap(*capacity)),
                        *capacity,
                    )
                }
                StateKind::Map {
                    key,
                    value,
                    capacity,
                    ..
                } => (
                    format!("Map<{}, {}>", self.ty(*key), self.ty(*value)),
                    format!("Map::new({})?", cap(*capacity)),
                    *capacity,
                ),
                StateKind::Vector { elem, capacity } => (
                    format!("Vector<{}>", self.ty(*elem)),
                    format!("Vector::new({})?", cap(*capacity)),
                    *capacity,
                ),
                StateKind::DChain { capacity, .. } => {
                    refreshes.push(format!(
                        "{i} => {{ let _ = self.{f}.rejuvenate(refresh.index, refresh.now); }}"
                    ));
                    (
                        "DChain".into(),
                        format!("DChain::new({})?", cap(*capacity)),
                        *capacity,
                    )
                }
                // Replicated in full: its preference rows do not depend on the shard,
                // and `find` skips backend indexes a shard's table does not have.
                StateKind::Cht {
                    height,
                    backend_count,
                    ..
                } => (
                    "Cht".into(),
                    format!("Cht::new({height}, {backend_count})?"),
                    *backend_count,
                ),
                StateKind::Sketch {
                    width,
                    ttl,
                    threshold,
                    ..
                } => {
                    // A logged sketch refresh carries the key's struct hash as `index`.
                    refreshes.push(format!(
                        "{i} => self.{f}.refresh(refresh.index, refresh.now),"
                    ));
                    (
                        "CountMinSketch".into(),
                        format!("CountMinSketch::new({width}, {ttl}, {threshold})?"),
                        *width,
                    )
                }
                StateKind::Sets {
                    elem,
                    sets,
                    per_set,
                } => (
                    format!("BoundedSets<{}>", self.ty(*elem)),
                    format!("BoundedSets::new({}, {per_set})?", cap(*sets)),
                    *sets,
                ),
            };
            let _ = writeln!(
                o,
                "/// state `{}` ({}{})\npub {f}: {ty},",
                st.name,
                st.kind.kind_name(),
                if sharded {
                    ", split per core by `sn`"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                infos,
                "StateObjectInfo {{ name: {:?}, kind: {:?}, capacity: {info_cap}, sharded: {sharded} }},",
                st.name,
                st.kind.kind_name()
            );
            match &st.kind {
                StateKind::Map {
                    key,
                    value,
                    capacity,
                    init: Some(mi),
                } => {
                    if mi.entries.len() > *capacity as usize {
                        return Err(self.unsupported(
                            st.span,
                            format!("map `{}`", st.name),
                            format!(
                                "its init file {} has {} entries, more than its capacity {capacity}",
                                mi.path.display(),
                                mi.entries.len()
                            ),
                        ));
                    }
                    let _ = writeln!(
                        inits,
                        "let mut {f}: {ty} = {init};\n// {} entries from {}{}",
                        mi.entries.len(),
                        mi.path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        if sharded {
                            " (a shard keeps those that fit its capacity)"
                        } else {
                            ""
                        }
                    );
                    for (k, v) in &mi.entries {
                        let k = self.lit(k, *key, st.span)?;
                        let v = self.lit(v, *value, st.span)?;
                        let _ = writeln!(inits, "{f}.put({}, {});", k.code, v.code);
                    }
                }
                _ => {
                    let _ = writeln!(inits, "let {f}: {ty} = {init};");
                }
            }
        }
        o.push_str(
            "faults: support::FaultLog,\nmode: ParseMode,\n\
             /// Key-access counts for the shared-nothing check (`None`: off).\n\
             access: Option<Box<AccessLog>>,\n}\n\n",
        );

        let fields: Vec<String> = self.states.iter().map(|f| format!("{f}, ")).collect();
        let shards = if self.sharded.iter().any(|&s| s) {
            "shards"
        } else {
            "_shards"
        };
        let _ = writeln!(
            o,
            r#"// `decide` mirrors the NF's paths: a `return` per action, index blocks in
// conditions, casts spelled out whatever the types.
#[allow(clippy::needless_return, clippy::unnecessary_cast, clippy::blocks_in_conditions)]
impl Nf {{
/// Allocates the state with the strict (Vigor) IPv4 rules.
pub fn new() -> Result<Nf, StateError> {{
Nf::with_parse_mode(ParseMode::Strict)
}}

/// Allocates the sequential state (and fills `map`s from their init files, read at
/// generation).
pub fn with_parse_mode(mode: ParseMode) -> Result<Nf, StateError> {{
Nf::with_shards(mode, 1)
}}

/// Allocates one of `shards` shared-nothing shards: written objects get
/// `shard_capacity` of their capacity, the others are replicated in full.
pub fn with_shards(mode: ParseMode, {shards}: usize) -> Result<Nf, StateError> {{
{inits}Ok(Nf {{ {fields}faults: support::FaultLog::default(), mode, access: None }})
}}

/// How many NF faults (out-of-range indexes, forwards to missing ports) happened.
pub fn fault_count(&self) -> u64 {{
self.faults.count
}}

/// The most recent fault, if any.
pub fn last_fault(&self) -> Option<&support::Fault> {{
self.faults.last.as_ref()
}}

/// Processes one packet: exactly one observation.
pub fn process(&mut self, packet: &InputPacket) -> Observation {{
let mut writes = support::Writes::default();
{decide}
support::observe(action, &packet.data, &writes, self.mode)
}}

/// The read-only pass: `process`'s observation when the packet's path writes no
/// state (refreshes go to `log`), `Err(NeedsWrite)` at the first write or fault.
/// Not instrumented: key counts serve the shared-nothing check only.
pub fn process_read(&self, packet: &InputPacket, log: &mut RefreshLog) -> Result<Observation, NeedsWrite> {{
let mut writes = support::Writes::default();
let action = self.decide_read(packet, &mut writes, log)?;
Ok(support::observe(action, &packet.data, &writes, self.mode))
}}
"#,
            fields = fields.concat(),
            decide = if uses.access {
                "// Instrumentation is chosen once per packet: `decide::<false>` has no key\n\
                 // counting in it at all.\n\
                 let action = if self.access.is_some() {\n\
                 self.decide::<true>(packet, &mut writes)\n\
                 } else {\n\
                 self.decide::<false>(packet, &mut writes)\n\
                 };"
            } else {
                "let action = self.decide(packet, &mut writes);"
            },
        );
        let w = if uses.w { "w" } else { "_w" };
        let generic = if uses.access {
            "<const INSTRUMENTED: bool>"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "/// The NF's `process` block: the action of this packet's path.\n\
             // `let mut` locals get dead initial values when every path overwrites them\n\
             // before reading (the language requires an initialiser): not a bug.\n\
             #[allow(unused_assignments)]\n\
             fn decide{generic}(&mut self, packet: &InputPacket, {w}: &mut support::Writes) -> support::Action {{"
        );
        o.push_str(&Self::prelude(uses));
        o.push_str(&body);
        o.push_str("}\n\n");
        let w = if read_uses.w { "w" } else { "_w" };
        let log = if read_uses.log { "log" } else { "_log" };
        let _ = writeln!(
            o,
            "/// `decide` in read-only mode (same paths): writes and faults are `Err(NeedsWrite)`.\n\
             #[allow(unused_assignments)]\n\
             fn decide_read(&self, packet: &InputPacket, {w}: &mut support::Writes, {log}: &mut RefreshLog) -> Result<support::Action, NeedsWrite> {{"
        );
        o.push_str(&Self::prelude(read_uses));
        o.push_str(&read_body);
        o.push_str("}\n}\n\n");

        // The executors' view of the NF.
        let renamed: Vec<String> = info::renamed_fields(p)
            .iter()
            .map(|r| {
                let ports: Vec<String> = r.in_ports.iter().map(|x| x.to_string()).collect();
                format!(
                    "RenamedField {{ out_field: {:?}, in_field: {:?}, in_ports: &[{}] }},",
                    r.out_field,
                    r.in_field,
                    ports.join(", ")
                )
            })
            .collect();
        let apply = match refreshes.len() {
            0 => "fn apply_refresh(&mut self, _refresh: &Refresh) {}".to_string(),
            _ => format!(
                "fn apply_refresh(&mut self, refresh: &Refresh) {{\n\
                 // Objects that are never refreshed log nothing.\n\
                 #[allow(clippy::match_single_binding, clippy::single_match)]\n\
                 match refresh.object {{\n{}\n_ => {{}}\n}}\n}}",
                refreshes.join("\n")
            ),
        };
        let _ = writeln!(
            o,
            r#"impl GeneratedNf for Nf {{
const NAME: &'static str = {name:?};
const STATE: &'static [StateObjectInfo] = &[
{infos}];
const PORT_COUNT: u16 = PORT_COUNT;
const LAN_PORT: u16 = {lan};
const WAN_PORT: u16 = {wan};
const RENAMED: &'static [RenamedField] = &[{renamed}];

fn with_shards(mode: ParseMode, shards: usize) -> Result<Nf, StateError> {{
Nf::with_shards(mode, shards)
}}

fn process(&mut self, packet: &InputPacket) -> Observation {{
Nf::process(self, packet)
}}

fn process_read(&self, packet: &InputPacket, log: &mut RefreshLog) -> Result<Observation, NeedsWrite> {{
Nf::process_read(self, packet, log)
}}

{apply}

fn fault_count(&self) -> u64 {{
self.faults.count
}}

fn set_instrumented(&mut self, on: bool) {{
self.access = if on {{ Some(Box::default()) }} else {{ None }};
}}

fn access_log(&self) -> Option<&AccessLog> {{
self.access.as_deref()
}}
}}"#,
            name = p.name,
            lan = p.device_port("lan").unwrap_or(0),
            wan = p.device_port("wan").unwrap_or(1),
            renamed = renamed.concat(),
        );
        Ok(o)
    }
}

/// `unwrap_or_else` argument giving a zero value.
fn zero_fn(z: &str) -> String {
    // `<T>::default()` -> `<T>::default` (a function path).
    z.trim_end_matches("()").to_string()
}

/// A tuple expression of the parts, nested past six (the support's tuple impls).
fn tuple_of(parts: &[String]) -> String {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    if parts.len() <= 6 {
        return format!("({},)", parts.join(", "));
    }
    let chunks: Vec<String> = parts.chunks(6).map(tuple_of).collect();
    tuple_of(&chunks)
}

/// Whether every path through the statement ends in an action.
pub(crate) fn terminates(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Action(_) => true,
        StmtKind::If { then, els, .. } | StmtKind::IfLet { then, els, .. } => {
            then.iter().any(terminates) && els.iter().any(terminates)
        }
        _ => false,
    }
}
