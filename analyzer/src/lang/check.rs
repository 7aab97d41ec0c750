//! Name resolution and type checking: AST to checked IR.
//!
//! The checker also applies `--set` overrides (before state parameters are evaluated,
//! since they may depend on config), evaluates state parameters, loads `map` init files,
//! and checks the path properties of `process`: every path ends in an action, nothing
//! follows an action, and headers are read only after they are parsed on the current path.
//!
//! Errors are collected (several per run where they are independent); an expression that
//! fails to check yields `None` and its dependents stay silent, to avoid cascades.

use super::ast::{self, BinOp, Layer, UnOp};
use super::diag::{Diagnostic, LoadError, SharedSource, Span};
use super::init_file;
use super::ir::*;
use super::ops::{self, Builtin};
use super::types::{
    example_literal, parse_scalar_literal, IntTy, RecordDef, RecordId, Type, Value,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Checks a parsed module. `base_dir` resolves relative `file` config values.
pub fn check(
    module: &ast::Module,
    source: SharedSource,
    overrides: &[(String, String)],
    base_dir: Option<&Path>,
) -> Result<NfProgram, LoadError> {
    let mut cx = Checker {
        src: source.clone(),
        errors: Vec::new(),
        globals: HashMap::new(),
        records: Vec::new(),
        record_spans: Vec::new(),
        devices: Vec::new(),
        configs: Vec::new(),
        states: Vec::new(),
        locals: Vec::new(),
        scopes: Vec::new(),
        headers: Headers::None,
        const_mode: false,
        base_dir: base_dir.map(Path::to_path_buf),
        next_file_id: 1,
    };
    cx.check_module(module, overrides)
}

/// What a top-level name refers to.
#[derive(Clone, Copy, Debug)]
enum Global {
    Device(DeviceId),
    Config(ConfigId),
    Record(RecordId),
    State(StateId),
}

/// How far the packet has been parsed on the current path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Headers {
    None,
    Ipv4,
    L4,
}

struct ScopeEntry {
    name: String,
    id: LocalId,
    /// `None` when the initialiser failed to check: uses stay silent.
    ty: Option<Type>,
    mutable: bool,
}

struct Checker {
    src: SharedSource,
    errors: Vec<Diagnostic>,
    globals: HashMap<String, (Global, Span)>,
    records: Vec<RecordDef>,
    record_spans: Vec<Span>,
    devices: Vec<DeviceDecl>,
    configs: Vec<ConfigDecl>,
    /// Filled in declaration order; `None` until (or unless) a state checks.
    states: Vec<Option<StateDecl>>,
    locals: Vec<LocalDecl>,
    scopes: Vec<Vec<ScopeEntry>>,
    headers: Headers,
    /// In state parameters: only literals, config, devices and pure operators.
    const_mode: bool,
    base_dir: Option<PathBuf>,
    next_file_id: u32,
}

/// Names that cannot be declared: they mean something already.
const RESERVED_NAMES: &[&str] = &[
    "pkt", "now", "u8", "u16", "u32", "u64", "i64", "bool", "mac", "ip4", "device", "file",
];

fn kind_noun(g: Global) -> &'static str {
    match g {
        Global::Device(_) => "a device",
        Global::Config(_) => "a config",
        Global::Record(_) => "a record",
        Global::State(_) => "a state object",
    }
}

impl Checker {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        let d = self.src.error(span, msg);
        self.errors.push(d);
    }

    fn ty_name(&self, ty: Type) -> String {
        ty.display(&self.records).to_string()
    }

    fn line_col(&self, span: Span) -> String {
        let (l, c) = self.src.line_col(span.lo);
        format!("{l}:{c}")
    }

    // ---- top level ----

    fn check_module(
        &mut self,
        m: &ast::Module,
        overrides: &[(String, String)],
    ) -> Result<NfProgram, LoadError> {
        let mut nf: Option<(String, String)> = None;
        let mut process: Option<(&ast::Block, Span)> = None;

        // Pass 1: declare every top-level name, so that items may come in any order.
        for item in &m.items {
            match item {
                ast::Item::Nf {
                    name,
                    description,
                    span,
                } => {
                    if nf.is_some() {
                        self.err(*span, "expected exactly one `nf` item, found a second one");
                    } else {
                        nf = Some((name.name.clone(), description.clone()));
                    }
                }
                ast::Item::Process { body, span } => {
                    if process.is_some() {
                        self.err(
                            *span,
                            "expected exactly one `process` block, found a second one",
                        );
                    } else {
                        process = Some((body, *span));
                    }
                }
                ast::Item::Device { name, .. } => {
                    let id = DeviceId(self.devices.len() as u32);
                    if self.declare(name, Global::Device(id)) {
                        self.devices.push(DeviceDecl {
                            name: name.name.clone(),
                            port: 0,
                            span: name.span,
                        });
                    }
                }
                ast::Item::Config { name, .. } => {
                    let id = ConfigId(self.configs.len() as u32);
                    if self.declare(name, Global::Config(id)) {
                        self.configs.push(ConfigDecl {
                            name: name.name.clone(),
                            ty: None,
                            value: ConfigValue::Value(Value::Bool(false)),
                            overridden: false,
                            span: name.span,
                        });
                    }
                }
                ast::Item::Record { name, .. } => {
                    let id = RecordId(self.records.len() as u32);
                    if self.declare(name, Global::Record(id)) {
                        self.records.push(RecordDef {
                            name: name.name.clone(),
                            fields: Vec::new(),
                        });
                        self.record_spans.push(name.span);
                    }
                }
                ast::Item::State { name, .. } => {
                    let id = StateId(self.states.len() as u32);
                    if self.declare(name, Global::State(id)) {
                        self.states.push(None);
                    }
                }
            }
        }

        // Pass 2: records, devices, configs (in that order: configs need nothing else).
        for item in &m.items {
            if let ast::Item::Record { name, fields } = item {
                self.check_record(name, fields);
            }
        }
        self.check_record_cycles();
        for item in &m.items {
            match item {
                ast::Item::Device {
                    name,
                    port,
                    port_span,
                } => {
                    if let Some((Global::Device(id), _)) = self.globals.get(&name.name).copied() {
                        if *port >= 0xFFFF {
                            self.err(
                                *port_span,
                                format!(
                                    "expected a port number below 65535 (0xFFFF means flood), \
                                     found {port}"
                                ),
                            );
                        } else {
                            self.devices[id.0 as usize].port = *port as u16;
                        }
                    }
                }
                ast::Item::Config { name, ty, value } => self.check_config(name, ty, value),
                _ => {}
            }
        }

        // Overrides apply before anything reads config values. Errors in the source take
        // precedence over a bad override: they are what the user must fix first.
        if let Err(e) = self.apply_overrides(overrides) {
            if self.errors.is_empty() {
                return Err(e);
            }
            return Err(LoadError::Source(std::mem::take(&mut self.errors)));
        }

        // Pass 3: state objects (CHTs last: they refer to tables).
        for pass in 0..2 {
            for item in &m.items {
                if let ast::Item::State {
                    name,
                    kind,
                    type_args,
                    params,
                    span,
                } = item
                {
                    if (kind.name == "cht") != (pass == 1) {
                        continue;
                    }
                    if let Some((Global::State(id), _)) = self.globals.get(&name.name).copied() {
                        let decl = self.check_state(name, kind, type_args, params, *span);
                        self.states[id.0 as usize] = decl;
                    }
                }
            }
        }

        // Pass 4: the process body.
        let mut body = Vec::new();
        match process {
            Some((block, _)) => {
                let (b, terminates) = self.block(block);
                body = b;
                if !terminates {
                    let end = Span {
                        lo: block.span.hi.saturating_sub(1),
                        ..block.span
                    };
                    self.err(
                        end,
                        "expected every path of `process` to end in an action (`drop;`, \
                         `flood;` or `forward(...);`), found a path that reaches the end of \
                         `process`",
                    );
                }
            }
            None => {
                let end = self.src.text.len();
                self.err(
                    Span::new(self.src.id, end, end),
                    "expected a `process { ... }` block, found none",
                );
            }
        }
        let (name, description) = match nf {
            Some(n) => n,
            None => {
                self.err(
                    Span::new(self.src.id, 0, 0),
                    "expected an `nf NAME \"description\";` item, found none",
                );
                Default::default()
            }
        };

        if !self.errors.is_empty() {
            self.errors.sort_by_key(|d| (d.line, d.col));
            self.errors.dedup();
            return Err(LoadError::Source(std::mem::take(&mut self.errors)));
        }
        let states: Vec<StateDecl> = self.states.drain(..).flatten().collect();
        let port_count = self
            .devices
            .iter()
            .map(|d| d.port as u32 + 1)
            .max()
            .unwrap_or(0) as u16;
        Ok(NfProgram {
            name,
            description,
            devices: std::mem::take(&mut self.devices),
            port_count,
            configs: std::mem::take(&mut self.configs),
            records: std::mem::take(&mut self.records),
            states,
            locals: std::mem::take(&mut self.locals),
            process: body,
            source: self.src.clone(),
        })
    }

    /// Declares a top-level name; reports duplicates and reserved names.
    fn declare(&mut self, name: &ast::Ident, g: Global) -> bool {
        if RESERVED_NAMES.contains(&name.name.as_str()) {
            self.err(
                name.span,
                format!(
                    "expected a new name, found the reserved name `{}`",
                    name.name
                ),
            );
            return false;
        }
        if let Some((prev, span)) = self.globals.get(&name.name).copied() {
            let at = self.line_col(span);
            self.err(
                name.span,
                format!(
                    "duplicate name `{}`: already defined as {} at {at}",
                    name.name,
                    kind_noun(prev)
                ),
            );
            return false;
        }
        self.globals.insert(name.name.clone(), (g, name.span));
        true
    }

    /// Resolves a type name (a scalar or a record).
    fn resolve_type(&mut self, t: &ast::TypeExpr) -> Option<Type> {
        if let Some(ty) = Type::scalar_from_name(&t.name) {
            return Some(ty);
        }
        match self.globals.get(&t.name).copied() {
            Some((Global::Record(id), _)) => Some(Type::Record(id)),
            Some((g, _)) => {
                self.err(
                    t.span,
                    format!(
                        "expected a type, found `{}`, which is {}",
                        t.name,
                        kind_noun(g)
                    ),
                );
                None
            }
            None => {
                self.err(
                    t.span,
                    format!(
                        "unknown type `{}`: expected u8, u16, u32, u64, i64, bool, mac, ip4, \
                         device or a record name",
                        t.name
                    ),
                );
                None
            }
        }
    }

    fn check_record(&mut self, name: &ast::Ident, fields: &[(ast::Ident, ast::TypeExpr)]) {
        let Some((Global::Record(id), _)) = self.globals.get(&name.name).copied() else {
            return;
        };
        let mut out: Vec<(String, Type)> = Vec::new();
        for (f, t) in fields {
            if out.iter().any(|(n, _)| *n == f.name) {
                self.err(
                    f.span,
                    format!("duplicate field `{}` in record `{}`", f.name, name.name),
                );
                continue;
            }
            if let Some(ty) = self.resolve_type(t) {
                out.push((f.name.clone(), ty));
            }
        }
        if fields.is_empty() {
            self.err(
                name.span,
                format!("expected at least one field in record `{}`", name.name),
            );
        }
        self.records[id.0 as usize].fields = out;
    }

    /// Records may nest but not recursively (a record would have infinite size).
    fn check_record_cycles(&mut self) {
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let n = self.records.len();
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS with an explicit stack of (record, next field index).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (r, ref mut fi)) = stack.last_mut() {
                let next = self.records[r].fields.get(*fi).map(|(_, t)| *t);
                *fi += 1;
                match next {
                    None => {
                        state[r] = 2;
                        stack.pop();
                    }
                    Some(Type::Record(RecordId(c))) => {
                        let c = c as usize;
                        if state[c] == 1 {
                            let span = self.record_spans[r];
                            let msg = format!(
                                "recursive record `{}`: it contains `{}`, which contains it \
                                 again; records must have a finite size",
                                self.records[r].name, self.records[c].name
                            );
                            self.err(span, msg);
                            // Break the cycle so later stages never recurse forever.
                            self.records[r]
                                .fields
                                .retain(|(_, t)| *t != Type::Record(RecordId(c as u32)));
                            state[r] = 2;
                            stack.pop();
                        } else if state[c] == 0 {
                            state[c] = 1;
                            stack.push((c, 0));
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    fn check_config(&mut self, name: &ast::Ident, ty: &ast::TypeExpr, value: &ast::Expr) {
        let Some((Global::Config(id), _)) = self.globals.get(&name.name).copied() else {
            return;
        };
        let idx = id.0 as usize;
        if ty.name == "file" {
            match &value.kind {
                ast::ExprKind::Str(s) => {
                    let resolved = self.resolve_path(s);
                    self.configs[idx].value = ConfigValue::File {
                        written: s.clone(),
                        resolved,
                    };
                }
                _ => self.err(
                    value.span,
                    "expected a file path string such as \"rules.txt\" for a `file` config",
                ),
            }
            return;
        }
        let Some(t) = Type::scalar_from_name(&ty.name) else {
            self.err(
                ty.span,
                format!(
                    "expected a config type (u8, u16, u32, u64, i64, bool, mac, ip4, device or \
                     file), found `{}`",
                    ty.name
                ),
            );
            return;
        };
        self.configs[idx].ty = Some(t);
        match config_literal(value, t) {
            Ok(v) => self.configs[idx].value = ConfigValue::Value(v),
            Err(msg) => self.err(value.span, msg),
        }
    }

    fn resolve_path(&self, written: &str) -> PathBuf {
        let p = PathBuf::from(written);
        match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        }
    }

    fn apply_overrides(&mut self, overrides: &[(String, String)]) -> Result<(), LoadError> {
        for (name, value) in overrides {
            let fail = |reason: String| LoadError::Override {
                name: name.clone(),
                value: value.clone(),
                reason,
            };
            match self.globals.get(name).copied() {
                Some((Global::Config(id), _)) => {
                    let c = &mut self.configs[id.0 as usize];
                    match (&c.ty, &c.value) {
                        (None, ConfigValue::File { .. }) => {
                            let written = value.trim().trim_matches('"').to_string();
                            if written.is_empty() {
                                return Err(fail(
                                    "expected a file path such as `rules.txt`, found nothing"
                                        .into(),
                                ));
                            }
                            let resolved = {
                                let p = PathBuf::from(&written);
                                match &self.base_dir {
                                    Some(base) if p.is_relative() => base.join(p),
                                    _ => p,
                                }
                            };
                            let c = &mut self.configs[id.0 as usize];
                            c.value = ConfigValue::File { written, resolved };
                            c.overridden = true;
                        }
                        (Some(t), _) => {
                            let t = *t;
                            let v = parse_scalar_literal(value, t)
                                .map_err(|e| fail(format!("config `{name}`: {e}")))?;
                            c.value = ConfigValue::Value(v);
                            c.overridden = true;
                        }
                        // The declaration itself failed to check; its error is reported.
                        (None, _) => {}
                    }
                }
                Some((Global::Device(id), _)) => {
                    let v = parse_scalar_literal(value, Type::Device)
                        .map_err(|e| fail(format!("device `{name}`: {e}")))?;
                    if let Value::Device(p) = v {
                        self.devices[id.0 as usize].port = p;
                    }
                }
                Some((g, _)) => {
                    return Err(fail(format!(
                        "`{name}` is {}; only config parameters and devices can be set",
                        kind_noun(g)
                    )))
                }
                None => {
                    let mut known: Vec<&str> = self
                        .configs
                        .iter()
                        .map(|c| c.name.as_str())
                        .chain(self.devices.iter().map(|d| d.name.as_str()))
                        .collect();
                    known.sort_unstable();
                    return Err(fail(format!(
                        "no config parameter or device named `{name}`; known names: {}",
                        if known.is_empty() {
                            "(none)".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
        }
        Ok(())
    }

    // ---- state objects ----

    fn check_state(
        &mut self,
        name: &ast::Ident,
        kind: &ast::Ident,
        type_args: &[ast::TypeExpr],
        params: &[(ast::Ident, ast::Expr)],
        span: Span,
    ) -> Option<StateDecl> {
        // (kind, type-argument counts, required params, optional params)
        let (targ_range, required, optional): (std::ops::RangeInclusive<usize>, &[&str], &[&str]) =
            match kind.name.as_str() {
                "table" => (1..=2, &["capacity", "ttl"], &[]),
                "map" => (2..=2, &["capacity"], &["init"]),
                "vector" => (1..=1, &["capacity"], &[]),
                "dchain" => (0..=0, &["capacity", "ttl"], &[]),
                "cht" => (0..=0, &["height", "backends"], &[]),
                "sketch" => (1..=1, &["width", "ttl", "threshold"], &[]),
                "sets" => (1..=1, &["sets", "per_set"], &[]),
                other => {
                    self.err(
                        kind.span,
                        format!(
                            "unknown state kind `{other}`: expected table, map, vector, \
                             dchain, cht, sketch or sets"
                        ),
                    );
                    return None;
                }
            };
        if !targ_range.contains(&type_args.len()) {
            let expected = match (targ_range.start(), targ_range.end()) {
                (0, 0) => "no type arguments".to_string(),
                (a, b) if a == b => format!("{a} type argument{}", if *a == 1 { "" } else { "s" }),
                (a, b) => format!("{a} or {b} type arguments"),
            };
            self.err(
                kind.span,
                format!(
                    "expected {expected} for a `{}`, found {}",
                    kind.name,
                    type_args.len()
                ),
            );
            return None;
        }
        let mut targs = Vec::new();
        for t in type_args {
            targs.push(self.resolve_type(t)?);
        }

        // Parameters: each known one exactly once.
        let mut given: HashMap<&str, &ast::Expr> = HashMap::new();
        let mut ok = true;
        for (p, e) in params {
            if !required.contains(&p.name.as_str()) && !optional.contains(&p.name.as_str()) {
                let all: Vec<&str> = required.iter().chain(optional).copied().collect();
                self.err(
                    p.span,
                    format!(
                        "unknown parameter `{}` for a `{}`: expected {}",
                        p.name,
                        kind.name,
                        all.join(", ")
                    ),
                );
                ok = false;
            } else if given.insert(p.name.as_str(), e).is_some() {
                self.err(p.span, format!("parameter `{}` given twice", p.name));
                ok = false;
            }
        }
        for r in required {
            if !given.contains_key(r) {
                self.err(
                    name.span,
                    format!("missing parameter `{r}` for {} `{}`", kind.name, name.name),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let what = |p: &str| format!("`{p}` of `{}`", name.name);
        let kind = match kind.name.as_str() {
            "table" => StateKind::Table {
                key: targs[0],
                value: targs.get(1).copied(),
                capacity: self.positive_u32(given["capacity"], &what("capacity"))?,
                ttl: self.const_u64(given["ttl"], &what("ttl"))?,
            },
            "map" => {
                let capacity = self.positive_u32(given["capacity"], &what("capacity"))?;
                let init = match given.get("init") {
                    Some(e) => Some(self.map_init(name, e, targs[0], targs[1], capacity)?),
                    None => None,
                };
                StateKind::Map {
                    key: targs[0],
                    value: targs[1],
                    capacity,
                    init,
                }
            }
            "vector" => StateKind::Vector {
                elem: targs[0],
                capacity: self.positive_u32(given["capacity"], &what("capacity"))?,
            },
            "dchain" => StateKind::DChain {
                capacity: self.positive_u32(given["capacity"], &what("capacity"))?,
                ttl: self.const_u64(given["ttl"], &what("ttl"))?,
            },
            "cht" => {
                let height_expr = given["height"];
                let height = self.positive_u32(height_expr, &what("height"))?;
                if height < 2 || !is_prime(height) {
                    self.err(
                        height_expr.span,
                        format!(
                            "expected a prime number > 1 for `height` of `{}`, found {height}",
                            name.name
                        ),
                    );
                    return None;
                }
                let b = given["backends"];
                let table = match &b.kind {
                    ast::ExprKind::Name(id) => match self.globals.get(&id.name).copied() {
                        Some((Global::State(sid), _)) => match &self.states[sid.0 as usize] {
                            Some(StateDecl {
                                kind: StateKind::Table { capacity, .. },
                                ..
                            }) => Some((sid, *capacity)),
                            // The table failed to check: its own error is reported.
                            None => return None,
                            Some(_) => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                let Some((backends, backend_count)) = table else {
                    self.err(
                        b.span,
                        format!(
                            "expected the name of a `table` declared in this NF for `backends` \
                             of `{}`, found `{}`",
                            name.name,
                            self.src.snippet(b.span)
                        ),
                    );
                    return None;
                };
                StateKind::Cht {
                    height,
                    backends,
                    backend_count,
                }
            }
            "sketch" => StateKind::Sketch {
                key: targs[0],
                width: self.positive_u32(given["width"], &what("width"))?,
                ttl: self.const_u64(given["ttl"], &what("ttl"))?,
                threshold: self.const_u32(given["threshold"], &what("threshold"))?,
            },
            "sets" => StateKind::Sets {
                elem: targs[0],
                sets: self.positive_u32(given["sets"], &what("sets"))?,
                per_set: self.positive_u32(given["per_set"], &what("per_set"))?,
            },
            _ => return None,
        };
        Some(StateDecl {
            name: name.name.clone(),
            kind,
            span,
        })
    }

    /// Checks and evaluates a constant expression of type `ty`.
    fn const_value(&mut self, e: &ast::Expr, ty: Type, what: &str) -> Option<Value> {
        self.const_mode = true;
        let x = self.expr_of(e, ty, what);
        self.const_mode = false;
        Some(self.eval_const(&x?))
    }

    fn const_u64(&mut self, e: &ast::Expr, what: &str) -> Option<u64> {
        self.const_value(e, Type::U64, what).map(|v| v.bits())
    }

    fn const_u32(&mut self, e: &ast::Expr, what: &str) -> Option<u32> {
        self.const_value(e, Type::U32, what)
            .map(|v| v.bits() as u32)
    }

    fn positive_u32(&mut self, e: &ast::Expr, what: &str) -> Option<u32> {
        let v = self.const_u32(e, what)?;
        if v == 0 {
            self.err(e.span, format!("expected {what} to be > 0, found 0"));
            return None;
        }
        Some(v)
    }

    /// Evaluates an expression checked in const mode.
    fn eval_const(&self, e: &Expr) -> Value {
        match &e.kind {
            ExprKind::Const(v) => v.clone(),
            ExprKind::Config(id) => match &self.configs[id.0 as usize].value {
                ConfigValue::Value(v) => v.clone(),
                ConfigValue::File { .. } => Value::zero(e.ty, &self.records),
            },
            ExprKind::Device(id) => Value::Device(self.devices[id.0 as usize].port),
            ExprKind::Unary(op, a) => ops::unary(*op, &self.eval_const(a)),
            ExprKind::Binary(op, a, b) => {
                ops::binary(*op, &self.eval_const(a), &self.eval_const(b))
            }
            ExprKind::Cast(a) => ops::cast(&self.eval_const(a), e.ty),
            ExprKind::Builtin(b, args) => {
                let vals: Vec<Value> = args.iter().map(|a| self.eval_const(a)).collect();
                ops::builtin(*b, &vals)
            }
            ExprKind::Record(_, fields) => {
                Value::Record(fields.iter().map(|f| self.eval_const(f)).collect())
            }
            ExprKind::Field(r, i) => match self.eval_const(r) {
                Value::Record(fs) => fs
                    .get(*i as usize)
                    .cloned()
                    .unwrap_or_else(|| Value::zero(e.ty, &self.records)),
                _ => Value::zero(e.ty, &self.records),
            },
            _ => Value::zero(e.ty, &self.records),
        }
    }

    fn map_init(
        &mut self,
        state: &ast::Ident,
        e: &ast::Expr,
        key: Type,
        value: Type,
        capacity: u32,
    ) -> Option<MapInit> {
        let path = match &e.kind {
            ast::ExprKind::Str(s) => self.resolve_path(s),
            ast::ExprKind::Name(id) => match self.globals.get(&id.name).copied() {
                Some((Global::Config(c), _)) => match &self.configs[c.0 as usize].value {
                    ConfigValue::File { resolved, .. } => resolved.clone(),
                    ConfigValue::Value(_) => {
                        self.err(
                            e.span,
                            format!(
                                "expected a `file` config for `init` of `{}`, found config `{}` \
                                 of another type",
                                state.name, id.name
                            ),
                        );
                        return None;
                    }
                },
                _ => {
                    self.err(
                        e.span,
                        format!(
                            "expected a `file` config (or a path string) for `init` of `{}`, \
                             found `{}`",
                            state.name, id.name
                        ),
                    );
                    return None;
                }
            },
            _ => {
                self.err(
                    e.span,
                    format!(
                        "expected a `file` config (or a path string) for `init` of `{}`",
                        state.name
                    ),
                );
                return None;
            }
        };
        let file_id = super::diag::FileId(self.next_file_id);
        self.next_file_id += 1;
        match init_file::load(
            &path,
            file_id,
            key,
            value,
            &self.records,
            capacity,
            &state.name,
        ) {
            Ok(entries) => Some(MapInit { path, entries }),
            Err(init_file::InitError::Io(msg)) => {
                self.err(e.span, msg);
                None
            }
            Err(init_file::InitError::Diags(ds)) => {
                self.errors.extend(ds);
                None
            }
        }
    }

    // ---- statements ----

    /// Checks a block in a new scope. Returns the statements and whether every path
    /// through the block ends in an action.
    fn block(&mut self, b: &ast::Block) -> (Block, bool) {
        self.scopes.push(Vec::new());
        let saved = self.headers;
        let mut out = Vec::new();
        let mut terminated = false;
        for s in &b.stmts {
            if terminated {
                self.err(
                    s.span,
                    "unreachable statement: every path before it already ended in an action",
                );
                break;
            }
            let (stmt, t) = self.stmt(s);
            if let Some(stmt) = stmt {
                out.push(stmt);
            }
            terminated = t;
        }
        self.headers = saved;
        self.scopes.pop();
        (out, terminated)
    }

    fn stmt(&mut self, s: &ast::Stmt) -> (Option<Stmt>, bool) {
        let span = s.span;
        let mk = |kind| Some(Stmt { kind, span });
        match &s.kind {
            ast::StmtKind::Let {
                mutable,
                name,
                ty,
                value,
            } => {
                let declared = match ty {
                    Some(t) => self.resolve_type(t).map(Some),
                    None => Some(None),
                };
                let v = match declared {
                    Some(Some(t)) => self.expr_of(value, t, &format!("`{}`", name.name)),
                    Some(None) => self.expr(value, None),
                    None => {
                        // Still check the initialiser for its own errors.
                        self.expr(value, None);
                        None
                    }
                };
                let ty = v.as_ref().map(|v| v.ty);
                let local = self.declare_local(name, ty, *mutable);
                match (v, local) {
                    (Some(value), Some(local)) => (mk(StmtKind::Let { local, value }), false),
                    _ => (None, false),
                }
            }
            ast::StmtKind::Assign { target, value } => (self.assign(target, value, span), false),
            ast::StmtKind::If { cond, then, els } => {
                let c = self.expr_of(cond, Type::Bool, "an `if` condition");
                let (then, t1) = self.block(then);
                let (els, t2) = match els {
                    Some(b) => self.block(b),
                    None => (Vec::new(), false),
                };
                let stmt = c.and_then(|cond| mk(StmtKind::If { cond, then, els }));
                (stmt, t1 && t2)
            }
            ast::StmtKind::IfLet {
                name,
                call,
                then,
                els,
            } => {
                let c = self.opt_call(call);
                self.scopes.push(Vec::new());
                let local = match &c {
                    Some((_, ty)) => self.declare_local(name, Some(*ty), false),
                    None => {
                        self.declare_local(name, None, false);
                        None
                    }
                };
                let (then, t1) = self.block(then);
                self.scopes.pop();
                let (els, t2) = match els {
                    Some(b) => self.block(b),
                    None => (Vec::new(), false),
                };
                let stmt = match (c, local) {
                    (Some((call, _)), Some(local)) => mk(StmtKind::IfLet {
                        local,
                        call,
                        then,
                        els,
                    }),
                    _ => None,
                };
                (stmt, t1 && t2)
            }
            ast::StmtKind::Parse { layer, els } => {
                let (els_block, t) = self.block(els);
                if !t {
                    let end = Span {
                        lo: els.span.hi.saturating_sub(1),
                        ..els.span
                    };
                    let l = match layer {
                        Layer::Ipv4 => "ipv4",
                        Layer::L4 => "l4",
                    };
                    self.err(
                        end,
                        format!(
                            "expected the `else` block of `parse {l}` to end in an action \
                             (`drop;`, `flood;` or `forward(...);`) on every path, found a \
                             path that reaches its end"
                        ),
                    );
                }
                let h = match layer {
                    Layer::Ipv4 => Headers::Ipv4,
                    Layer::L4 => Headers::L4,
                };
                self.headers = self.headers.max(h);
                (
                    mk(StmtKind::Parse {
                        layer: *layer,
                        els: els_block,
                    }),
                    false,
                )
            }
            ast::StmtKind::Drop => (mk(StmtKind::Action(Action::Drop)), true),
            ast::StmtKind::Flood => (mk(StmtKind::Action(Action::Flood)), true),
            ast::StmtKind::Forward(e) => {
                let x = self.expr(e, Some(Type::Device));
                let x = x.and_then(|x| {
                    if x.ty == Type::Device {
                        Some(x)
                    } else {
                        let found = self.ty_name(x.ty);
                        self.err(
                            e.span,
                            format!(
                                "expected a `device` for `forward`, found {found} (use a device \
                                 name, `in`, or `... as device`)"
                            ),
                        );
                        None
                    }
                });
                (
                    x.and_then(|x| mk(StmtKind::Action(Action::Forward(x)))),
                    true,
                )
            }
            ast::StmtKind::Expr(e) => match &e.kind {
                ast::ExprKind::MethodCall { recv, method, args } => {
                    let c = self.state_call(recv, method, args, e.span);
                    (c.and_then(|(call, _)| mk(StmtKind::Call(call))), false)
                }
                _ => {
                    self.err(
                        e.span,
                        "expected a statement, found an expression whose value is unused (only \
                         state calls can stand alone)",
                    );
                    (None, false)
                }
            },
        }
    }

    fn declare_local(
        &mut self,
        name: &ast::Ident,
        ty: Option<Type>,
        mutable: bool,
    ) -> Option<LocalId> {
        if RESERVED_NAMES.contains(&name.name.as_str()) {
            self.err(
                name.span,
                format!(
                    "expected a new name, found the reserved name `{}`",
                    name.name
                ),
            );
            return None;
        }
        if let Some((Global::State(_), _)) = self.globals.get(&name.name) {
            self.err(
                name.span,
                format!(
                    "`{}` is a state object; expected another name for this local",
                    name.name
                ),
            );
            return None;
        }
        // A local without a type (its initialiser failed) gets no slot.
        let id = match ty {
            Some(_) => LocalId(self.locals.len() as u32),
            None => LocalId(u32::MAX),
        };
        let entry = ScopeEntry {
            name: name.name.clone(),
            id,
            ty,
            mutable,
        };
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(entry);
        }
        let ty = ty?;
        self.locals.push(LocalDecl {
            name: name.name.clone(),
            ty,
            mutable,
            span: name.span,
        });
        Some(id)
    }

    fn lookup_local(&self, name: &str) -> Option<&ScopeEntry> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|e| e.name == name)
    }

    fn assign(&mut self, target: &ast::Expr, value: &ast::Expr, span: Span) -> Option<Stmt> {
        match &target.kind {
            ast::ExprKind::Name(id) => {
                let Some(entry) = self.lookup_local(&id.name) else {
                    let msg = match self.globals.get(&id.name) {
                        Some((g, _)) => format!(
                            "cannot assign to `{}`, which is {}: only mutable locals and packet \
                             fields can be assigned",
                            id.name,
                            kind_noun(*g)
                        ),
                        None => format!("unknown name `{}`", id.name),
                    };
                    self.err(id.span, msg);
                    self.expr(value, None);
                    return None;
                };
                let (lid, ty, mutable) = (entry.id, entry.ty, entry.mutable);
                if !mutable {
                    self.err(
                        id.span,
                        format!(
                            "cannot assign to immutable local `{}`: declare it with `let mut {}`",
                            id.name, id.name
                        ),
                    );
                }
                let v = match ty {
                    Some(t) => self.expr_of(value, t, &format!("`{}`", id.name)),
                    None => None,
                };
                if !mutable {
                    return None;
                }
                v.map(|value| Stmt {
                    kind: StmtKind::Assign { local: lid, value },
                    span,
                })
            }
            ast::ExprKind::Field(..) => {
                let Some(field) = self.packet_path(target)? else {
                    self.err(
                        target.span,
                        "cannot assign to a record field: build a new record instead",
                    );
                    return None;
                };
                if !field.writable() {
                    self.err(
                        target.span,
                        format!(
                            "`{}` is read-only; the writable fields are pkt.eth.src, \
                             pkt.eth.dst, pkt.ip.src, pkt.ip.dst, pkt.ip.ttl, pkt.ip.tos, \
                             pkt.l4.sport and pkt.l4.dport",
                            field.path()
                        ),
                    );
                    return None;
                }
                let avail = self.check_available(field, target.span);
                let v = self.expr_of(value, field.ty(), &format!("`{}`", field.path()))?;
                if !avail {
                    return None;
                }
                Some(Stmt {
                    kind: StmtKind::SetField { field, value: v },
                    span,
                })
            }
            _ => {
                self.err(
                    target.span,
                    "cannot assign to this expression: only mutable locals and packet fields can \
                     be assigned",
                );
                None
            }
        }
    }

    /// The call of an `if let`: an *opt* state call. Returns it with its result type.
    fn opt_call(&mut self, e: &ast::Expr) -> Option<(StateCall, Type)> {
        let ast::ExprKind::MethodCall { recv, method, args } = &e.kind else {
            self.expr(e, None);
            self.err(
                e.span,
                "expected a state call that may have no result after `if let` (such as \
                 `t.get(k)`, `t.add(k, v)`, `m.get(k)`, `d.allocate()` or `c.find(h)`), found \
                 another expression",
            );
            return None;
        };
        let (call, ret) = self.state_call(recv, method, args, e.span)?;
        if !call.method.is_opt() {
            let snippet = self.src.snippet(e.span).to_string();
            let hint = match ret {
                Some(Type::Bool) => format!("; write `if {snippet} {{ ... }}` instead"),
                Some(_) => format!("; write `let x = {snippet};` instead"),
                None => String::new(),
            };
            self.err(
                e.span,
                format!(
                    "expected a call that may have no result after `if let` (get, add, \
                     allocate, find), found `{}`, which always has one{hint}",
                    method.name
                ),
            );
            return None;
        }
        ret.map(|t| (call, t))
    }

    // ---- expressions ----

    /// Checks an expression that must have type `ty`.
    fn expr_of(&mut self, e: &ast::Expr, ty: Type, what: &str) -> Option<Expr> {
        let x = self.expr(e, Some(ty))?;
        if x.ty != ty {
            let (exp, found) = (self.ty_name(ty), self.ty_name(x.ty));
            self.err(
                e.span,
                format!("mismatched types: expected {exp} for {what}, found {found}"),
            );
            return None;
        }
        Some(x)
    }

    fn expr(&mut self, e: &ast::Expr, expected: Option<Type>) -> Option<Expr> {
        let span = e.span;
        let mk = |kind, ty| Some(Expr { kind, ty, span });
        match &e.kind {
            ast::ExprKind::Int(v) => {
                let t = match expected {
                    Some(Type::Int(t)) => t,
                    _ => IntTy::U64,
                };
                if *v > t.max_bits() {
                    self.err(
                        span,
                        format!(
                            "integer literal {v} does not fit in {} (at most {})",
                            t.name(),
                            t.max_bits()
                        ),
                    );
                    return None;
                }
                mk(ExprKind::Const(Value::Int(t, *v)), Type::Int(t))
            }
            ast::ExprKind::Duration(v) => {
                mk(ExprKind::Const(Value::Int(IntTy::U64, *v)), Type::U64)
            }
            ast::ExprKind::Bool(b) => mk(ExprKind::Const(Value::Bool(*b)), Type::Bool),
            ast::ExprKind::Ip4(a) => mk(ExprKind::Const(Value::Ip4(*a)), Type::Ip4),
            ast::ExprKind::Mac(m) => mk(ExprKind::Const(Value::Mac(*m)), Type::Mac),
            ast::ExprKind::Str(_) => {
                self.err(
                    span,
                    "unexpected string: strings are only allowed as the NF description and as \
                     `file` config values",
                );
                None
            }
            ast::ExprKind::In => {
                if self.const_mode {
                    self.err(span, "expected a constant, found `in` (the input device is only known per packet)");
                    return None;
                }
                mk(ExprKind::In, Type::Device)
            }
            ast::ExprKind::Name(id) => self.name(id),
            ast::ExprKind::Unary(op, a) => {
                let x = self.expr(a, expected)?;
                let ok = match op {
                    UnOp::Not => x.ty == Type::Bool || x.ty.is_int(),
                    UnOp::Neg => x.ty == Type::I64,
                };
                if !ok {
                    let found = self.ty_name(x.ty);
                    let msg = match op {
                        UnOp::Not => {
                            format!("expected a bool or an integer after `!`, found {found}")
                        }
                        UnOp::Neg => format!(
                            "expected an i64 after unary `-`, found {found} (unsigned values \
                             cannot be negated; declare the type, e.g. `let x: i64 = -1;`)"
                        ),
                    };
                    self.err(span, msg);
                    return None;
                }
                let ty = x.ty;
                mk(ExprKind::Unary(*op, Box::new(x)), ty)
            }
            ast::ExprKind::Binary(op, a, b) => self.binary(*op, a, b, expected, span),
            ast::ExprKind::Cast(a, t) => self.cast(a, t, span),
            ast::ExprKind::Call(f, args) => self.builtin(f, args, expected, span),
            ast::ExprKind::MethodCall { recv, method, args } => {
                let (call, ret) = self.state_call(recv, method, args, span)?;
                if call.method.is_opt() {
                    let snippet = self.src.snippet(span).to_string();
                    self.err(
                        span,
                        format!(
                            "`{}` may have no result, so it is only usable in `if let`: write \
                             `if let x = {snippet} {{ ... }} else {{ ... }}`",
                            method.name
                        ),
                    );
                    return None;
                }
                let Some(ty) = ret else {
                    self.err(
                        span,
                        format!("`{}` has no result; expected a value here", method.name),
                    );
                    return None;
                };
                mk(ExprKind::Call(Box::new(call)), ty)
            }
            ast::ExprKind::RecordLit { name, fields } => self.record_lit(name, fields, span),
            ast::ExprKind::Field(base, f) => {
                if let Some(field) = self.packet_path(e)? {
                    if self.const_mode {
                        self.err(span, "expected a constant, found a packet field");
                        return None;
                    }
                    if !self.check_available(field, span) {
                        return None;
                    }
                    return mk(ExprKind::Packet(field), field.ty());
                }
                let r = self.expr(base, None)?;
                let Type::Record(rid) = r.ty else {
                    let found = self.ty_name(r.ty);
                    self.err(
                        f.span,
                        format!(
                            "no field `{}` on a value of type {found}: only records have fields",
                            f.name
                        ),
                    );
                    return None;
                };
                let def = &self.records[rid.0 as usize];
                let Some(i) = def.field_index(&f.name) else {
                    let names: Vec<&str> = def.fields.iter().map(|(n, _)| n.as_str()).collect();
                    let msg = format!(
                        "record `{}` has no field `{}`; its fields are {}",
                        def.name,
                        f.name,
                        names.join(", ")
                    );
                    self.err(f.span, msg);
                    return None;
                };
                let ty = def.fields[i].1;
                mk(ExprKind::Field(Box::new(r), i as u32), ty)
            }
        }
    }

    fn name(&mut self, id: &ast::Ident) -> Option<Expr> {
        let span = id.span;
        let mk = |kind, ty| Some(Expr { kind, ty, span });
        if !self.const_mode {
            if let Some(entry) = self.lookup_local(&id.name) {
                let (lid, ty) = (entry.id, entry.ty);
                // A local whose initialiser failed has no type: stay silent.
                return mk(ExprKind::Local(lid), ty?);
            }
        }
        match id.name.as_str() {
            "now" => {
                if self.const_mode {
                    self.err(span, "expected a constant, found `now` (state parameters are evaluated once, at start-up)");
                    return None;
                }
                return mk(ExprKind::Now, Type::U64);
            }
            "pkt" => {
                self.err(
                    span,
                    "`pkt` is not a value: expected a packet field such as `pkt.eth.src`",
                );
                return None;
            }
            _ => {}
        }
        match self.globals.get(&id.name).copied() {
            Some((Global::Config(c), _)) => {
                let decl = &self.configs[c.0 as usize];
                match decl.ty {
                    Some(ty) => mk(ExprKind::Config(c), ty),
                    None => {
                        if matches!(decl.value, ConfigValue::File { .. }) {
                            self.err(
                                span,
                                format!("`{}` is a `file` config: it can only be used as `init` of a map", id.name),
                            );
                        }
                        None
                    }
                }
            }
            Some((Global::Device(d), _)) => mk(ExprKind::Device(d), Type::Device),
            Some((g, _)) => {
                let hint = match g {
                    Global::State(_) => "; call one of its methods",
                    _ => "",
                };
                self.err(
                    span,
                    format!(
                        "expected a value, found `{}`, which is {}{hint}",
                        id.name,
                        kind_noun(g)
                    ),
                );
                None
            }
            None => {
                self.err(span, format!("unknown name `{}`", id.name));
                None
            }
        }
    }

    /// Recognises `pkt.HEADER.FIELD` and `pkt.len`. `Ok(None)`: not a packet path;
    /// `None` (outer): an invalid packet path, already reported.
    fn packet_path(&mut self, e: &ast::Expr) -> Option<Option<PktField>> {
        let ast::ExprKind::Field(base, f) = &e.kind else {
            return Some(None);
        };
        let is_pkt = |x: &ast::Expr| matches!(&x.kind, ast::ExprKind::Name(n) if n.name == "pkt");
        if is_pkt(base) {
            if f.name == "len" {
                return Some(Some(PktField::Len));
            }
            if matches!(f.name.as_str(), "eth" | "ip" | "l4") {
                self.err(
                    e.span,
                    format!(
                        "`pkt.{}` is a header, not a value: expected a field such as `pkt.{}.{}`",
                        f.name,
                        f.name,
                        if f.name == "l4" { "sport" } else { "src" }
                    ),
                );
            } else {
                self.err(
                    f.span,
                    format!(
                        "unknown packet field `pkt.{}`: expected `pkt.len` or a field of \
                         `pkt.eth`, `pkt.ip` or `pkt.l4`",
                        f.name
                    ),
                );
            }
            return None;
        }
        if let ast::ExprKind::Field(inner, header) = &base.kind {
            if is_pkt(inner) {
                return match PktField::from_path(&header.name, &f.name) {
                    Some(p) => Some(Some(p)),
                    None => {
                        self.err(
                            e.span,
                            format!(
                                "unknown packet field `pkt.{}.{}`; the fields are pkt.len, \
                                 pkt.eth.{{src, dst, type}}, pkt.ip.{{src, dst, proto, ttl, tos, \
                                 ihl, len, id, frag}} and pkt.l4.{{sport, dport}}",
                                header.name, f.name
                            ),
                        );
                        None
                    }
                };
            }
        }
        Some(None)
    }

    /// Reports a header used before it is parsed on the current path.
    fn check_available(&mut self, field: PktField, span: Span) -> bool {
        let (need, stmt) = match field.requires() {
            None => return true,
            Some(Layer::Ipv4) => (Headers::Ipv4, "`parse ipv4 else { ... }` (or `parse l4`)"),
            Some(Layer::L4) => (Headers::L4, "`parse l4 else { ... }`"),
        };
        if self.headers >= need {
            return true;
        }
        self.err(
            span,
            format!(
                "`{}` is used before its header is parsed on this path: expected {stmt} \
                 earlier in this block or an enclosing one",
                field.path()
            ),
        );
        false
    }

    /// Whether an expression is an integer literal whose type comes from context.
    fn is_flexible_literal(e: &ast::Expr) -> bool {
        match &e.kind {
            ast::ExprKind::Int(_) => true,
            ast::ExprKind::Unary(_, a) => Self::is_flexible_literal(a),
            ast::ExprKind::Binary(op, a, b) => {
                !op.is_comparison()
                    && !matches!(op, BinOp::And | BinOp::Or)
                    && Self::is_flexible_literal(a)
                    && Self::is_flexible_literal(b)
            }
            _ => false,
        }
    }

    /// Checks two operands that must have the same type; an integer literal takes the
    /// type of the other operand.
    fn same_typed_pair(
        &mut self,
        a: &ast::Expr,
        b: &ast::Expr,
        expected: Option<Type>,
    ) -> Option<(Expr, Expr)> {
        if Self::is_flexible_literal(a) && !Self::is_flexible_literal(b) {
            let y = self.expr(b, expected);
            let x = self.expr(a, y.as_ref().map(|y| y.ty).or(expected));
            Some((x?, y?))
        } else {
            let x = self.expr(a, expected);
            let y = self.expr(b, x.as_ref().map(|x| x.ty).or(expected));
            Some((x?, y?))
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        a: &ast::Expr,
        b: &ast::Expr,
        expected: Option<Type>,
        span: Span,
    ) -> Option<Expr> {
        use BinOp::*;
        let mk = |x: Expr, y: Expr, ty| {
            Some(Expr {
                kind: ExprKind::Binary(op, Box::new(x), Box::new(y)),
                ty,
                span,
            })
        };
        if matches!(op, And | Or) {
            let x = self.expr_of(a, Type::Bool, &format!("the operands of `{}`", op.as_str()));
            let y = self.expr_of(b, Type::Bool, &format!("the operands of `{}`", op.as_str()));
            return mk(x?, y?, Type::Bool);
        }
        let arith_expected = match expected {
            Some(t) if !op.is_comparison() => Some(t),
            _ => None,
        };
        let (x, y) = self.same_typed_pair(a, b, arith_expected)?;
        let (tx, ty) = (x.ty, y.ty);
        let ok = tx == ty
            && match op {
                Add | Sub | Mul | Div | Rem | Shl | Shr | BitXor => tx.is_int(),
                BitAnd | BitOr => tx.is_int() || tx == Type::Ip4,
                Eq | Ne => true,
                Lt | Le | Gt | Ge => tx.is_int() || tx == Type::Ip4,
                And | Or => false,
            };
        if !ok {
            let (nx, ny) = (self.ty_name(tx), self.ty_name(ty));
            let need = match op {
                Add | Sub | Mul | Div | Rem | Shl | Shr | BitXor => {
                    "two operands of the same integer type"
                }
                BitAnd | BitOr => "two operands of the same integer type, or two ip4",
                Eq | Ne => "two operands of the same type",
                _ => "two operands of the same integer type, or two ip4",
            };
            let hint = if tx != ty && tx.is_int() && ty.is_int() {
                " (there is no implicit widening: convert with `as`)"
            } else {
                ""
            };
            self.err(
                span,
                format!(
                    "mismatched types: `{}` expects {need}, found {nx} and {ny}{hint}",
                    op.as_str()
                ),
            );
            return None;
        }
        let result = if op.is_comparison() { Type::Bool } else { tx };
        mk(x, y, result)
    }

    fn cast(&mut self, a: &ast::Expr, t: &ast::TypeExpr, span: Span) -> Option<Expr> {
        let Some(to) = Type::scalar_from_name(&t.name) else {
            self.err(
                t.span,
                format!("expected a scalar type after `as`, found `{}`", t.name),
            );
            return None;
        };
        // A literal operand takes the type the conversion expects.
        let hint = match to {
            Type::Ip4 => Some(Type::U32),
            Type::Device => Some(Type::U16),
            _ => None,
        };
        let x = self.expr(a, hint)?;
        let from = x.ty;
        let ok = from == to
            || matches!(
                (from, to),
                (Type::Int(_), Type::Int(_))
                    | (Type::Ip4, Type::U32)
                    | (Type::U32, Type::Ip4)
                    | (Type::Mac, Type::U64)
                    | (Type::Device, Type::Int(_))
                    | (Type::Int(_), Type::Device)
                    | (Type::Bool, Type::Int(_))
            );
        if !ok {
            let (f, tn) = (self.ty_name(from), self.ty_name(to));
            self.err(
                span,
                format!(
                    "cannot cast {f} to {tn}: the casts are between integer types, ip4 <-> u32, \
                     mac -> u64, device <-> integers and bool -> integer"
                ),
            );
            return None;
        }
        Some(Expr {
            kind: ExprKind::Cast(Box::new(x)),
            ty: to,
            span,
        })
    }

    fn builtin(
        &mut self,
        f: &ast::Ident,
        args: &[ast::Expr],
        expected: Option<Type>,
        span: Span,
    ) -> Option<Expr> {
        let Some(b) = Builtin::from_name(&f.name) else {
            let msg = match self.globals.get(&f.name) {
                Some((Global::State(_), _)) => format!(
                    "`{}` is a state object: call a method, e.g. `{}.get(...)`",
                    f.name, f.name
                ),
                _ => format!(
                    "unknown function `{}`: expected a built-in (min, max, sat_add, sat_sub, \
                     mul_div, hash); user functions are not allowed, write the code inline",
                    f.name
                ),
            };
            self.err(f.span, msg);
            for a in args {
                self.expr(a, None);
            }
            return None;
        };
        let arity = match b {
            Builtin::Min | Builtin::Max | Builtin::SatAdd | Builtin::SatSub => Some(2),
            Builtin::MulDiv => Some(3),
            Builtin::Hash => None,
        };
        if let Some(n) = arity {
            if args.len() != n {
                self.err(
                    span,
                    format!(
                        "expected {n} arguments for `{}`, found {}",
                        b.name(),
                        args.len()
                    ),
                );
                return None;
            }
        } else if args.is_empty() {
            self.err(
                span,
                "expected at least one argument for `hash`, found none",
            );
            return None;
        }
        if b == Builtin::Hash {
            if self.const_mode {
                self.err(span, "`hash` is not allowed in a state parameter");
                return None;
            }
            let mut out = Vec::new();
            for a in args {
                out.push(self.expr(a, None));
            }
            let out: Option<Vec<Expr>> = out.into_iter().collect();
            return Some(Expr {
                kind: ExprKind::Builtin(b, out?),
                ty: Type::U32,
                span,
            });
        }
        // All operands share one integer type; a literal takes the others' type.
        let anchor = args.iter().position(|a| !Self::is_flexible_literal(a));
        let mut ty = expected.filter(|t| t.is_int());
        let mut checked: Vec<Option<Expr>> = vec![None; args.len()];
        if let Some(i) = anchor {
            let x = self.expr(&args[i], ty)?;
            ty = Some(x.ty);
            checked[i] = Some(x);
        }
        for (i, a) in args.iter().enumerate() {
            if checked[i].is_none() {
                checked[i] = Some(self.expr(a, ty)?);
                if ty.is_none() {
                    ty = checked[i].as_ref().map(|x| x.ty);
                }
            }
        }
        let out: Vec<Expr> = checked.into_iter().flatten().collect();
        let t0 = out[0].ty;
        if !t0.is_int() || out.iter().any(|x| x.ty != t0) {
            let found: Vec<String> = out.iter().map(|x| self.ty_name(x.ty)).collect();
            self.err(
                span,
                format!(
                    "mismatched types: `{}` expects arguments of one integer type, found {}",
                    b.name(),
                    found.join(", ")
                ),
            );
            return None;
        }
        Some(Expr {
            kind: ExprKind::Builtin(b, out),
            ty: t0,
            span,
        })
    }

    fn record_lit(
        &mut self,
        name: &ast::Ident,
        fields: &[(ast::Ident, ast::Expr)],
        span: Span,
    ) -> Option<Expr> {
        let rid = match self.globals.get(&name.name).copied() {
            Some((Global::Record(r), _)) => r,
            other => {
                let msg = match other {
                    Some((g, _)) => format!(
                        "expected a record name before `{{`, found `{}`, which is {}",
                        name.name,
                        kind_noun(g)
                    ),
                    None => format!("unknown record `{}`", name.name),
                };
                self.err(name.span, msg);
                return None;
            }
        };
        let def = self.records[rid.0 as usize].clone();
        let mut slots: Vec<Option<Expr>> = vec![None; def.fields.len()];
        let mut seen = vec![false; def.fields.len()];
        let mut ok = true;
        for (f, e) in fields {
            let Some(i) = def.field_index(&f.name) else {
                let names: Vec<&str> = def.fields.iter().map(|(n, _)| n.as_str()).collect();
                self.err(
                    f.span,
                    format!(
                        "record `{}` has no field `{}`; its fields are {}",
                        def.name,
                        f.name,
                        names.join(", ")
                    ),
                );
                self.expr(e, None);
                ok = false;
                continue;
            };
            if seen[i] {
                self.err(
                    f.span,
                    format!("field `{}` of `{}` given twice", f.name, def.name),
                );
                ok = false;
                continue;
            }
            seen[i] = true;
            let ft = def.fields[i].1;
            slots[i] = self.expr_of(e, ft, &format!("field `{}` of `{}`", f.name, def.name));
            ok &= slots[i].is_some();
        }
        let missing: Vec<&str> = def
            .fields
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|((n, _), _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            self.err(
                span,
                format!(
                    "expected every field of `{}` exactly once, found {} missing: {}",
                    def.name,
                    if missing.len() == 1 { "one" } else { "some" },
                    missing.join(", ")
                ),
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some(Expr {
            kind: ExprKind::Record(rid, slots.into_iter().flatten().collect()),
            ty: Type::Record(rid),
            span,
        })
    }

    /// Resolves and checks `state.method(args)`. Returns the call and its result type
    /// (`None` for calls without a result).
    fn state_call(
        &mut self,
        recv: &ast::Expr,
        method: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Option<(StateCall, Option<Type>)> {
        let ast::ExprKind::Name(sname) = &recv.kind else {
            self.err(
                recv.span,
                format!(
                    "expected a state object before `.{}(...)`: only state objects have methods",
                    method.name
                ),
            );
            return None;
        };
        let sid = match self.globals.get(&sname.name).copied() {
            Some((Global::State(s), _)) => s,
            other => {
                let what = match other {
                    Some((g, _)) => format!("`{}`, which is {}", sname.name, kind_noun(g)),
                    None if self.lookup_local(&sname.name).is_some() => {
                        format!("the local `{}`", sname.name)
                    }
                    None => format!("unknown name `{}`", sname.name),
                };
                self.err(
                    sname.span,
                    format!(
                        "expected a state object before `.{}(...)`, found {what}",
                        method.name
                    ),
                );
                return None;
            }
        };
        if self.const_mode {
            self.err(span, "expected a constant, found a state call");
            return None;
        }
        // The state failed to check: its error is already reported.
        let kind = self.states[sid.0 as usize].as_ref()?.kind.clone();
        let sig = method_signature(&kind, &method.name);
        let Some((m, params, ret)) = sig else {
            let names = method_names(&kind);
            self.err(
                method.span,
                format!(
                    "unknown method `{}` for `{}` (a {}): expected one of {}",
                    method.name,
                    sname.name,
                    kind.kind_name(),
                    names.join(", ")
                ),
            );
            return None;
        };
        if m == Method::TableValue || m == Method::TableSetValue {
            if let StateKind::Table { value: None, .. } = kind {
                self.err(
                    method.span,
                    format!(
                        "`{}` has no values (it is declared `table<K>`), so it has no `{}`",
                        sname.name, method.name
                    ),
                );
                return None;
            }
        }
        let params: Vec<Type> = match m {
            // `t.add(k)` for tables without values.
            Method::TableAdd => {
                if let StateKind::Table { value: None, .. } = kind {
                    params[..1].to_vec()
                } else {
                    params
                }
            }
            _ => params,
        };
        if args.len() != params.len() {
            self.err(
                span,
                format!(
                    "expected {} argument{} for `{}.{}`, found {}",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    sname.name,
                    method.name,
                    args.len()
                ),
            );
            for a in args {
                self.expr(a, None);
            }
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, (a, t)) in args.iter().zip(&params).enumerate() {
            let what = format!("argument {} of `{}.{}`", i + 1, sname.name, method.name);
            match self.expr_of(a, *t, &what) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        Some((
            StateCall {
                state: sid,
                method: m,
                args: out,
                span,
            },
            ret,
        ))
    }
}

/// A method's id, parameter types and result type for a state kind.
fn method_signature(kind: &StateKind, name: &str) -> Option<(Method, Vec<Type>, Option<Type>)> {
    use Method::*;
    let idx = Type::U32;
    let b = Some(Type::Bool);
    Some(match kind {
        StateKind::Table { key, value, .. } => {
            let k = *key;
            let v = value.unwrap_or(Type::Bool);
            match name {
                "expire" => (TableExpire, vec![], Some(Type::U32)),
                "get" => (TableGet, vec![k], Some(idx)),
                "contains" => (TableContains, vec![k], b),
                "add" => (TableAdd, vec![k, v], Some(idx)),
                "refresh" => (TableRefresh, vec![idx], b),
                "has_index" => (TableHasIndex, vec![idx], b),
                "key" => (TableKey, vec![idx], Some(k)),
                "value" => (TableValue, vec![idx], Some(v)),
                "set_value" => (TableSetValue, vec![idx, v], None),
                "remove" => (TableRemove, vec![k], b),
                "full" => (TableFull, vec![], b),
                "size" => (TableSize, vec![], Some(Type::U32)),
                _ => return None,
            }
        }
        StateKind::Map { key, value, .. } => match name {
            "get" => (MapGet, vec![*key], Some(*value)),
            "contains" => (MapContains, vec![*key], b),
            "put" => (MapPut, vec![*key, *value], b),
            "erase" => (MapErase, vec![*key], b),
            "size" => (MapSize, vec![], Some(Type::U32)),
            _ => return None,
        },
        StateKind::Vector { elem, .. } => match name {
            "get" => (VectorGet, vec![idx], Some(*elem)),
            "set" => (VectorSet, vec![idx, *elem], None),
            _ => return None,
        },
        StateKind::DChain { .. } => match name {
            "allocate" => (DChainAllocate, vec![], Some(idx)),
            "refresh" => (DChainRefresh, vec![idx], b),
            "is_allocated" => (DChainIsAllocated, vec![idx], b),
            "free" => (DChainFree, vec![idx], b),
            "expire" => (DChainExpire, vec![], Some(Type::U32)),
            _ => return None,
        },
        StateKind::Cht { .. } => match name {
            "find" => (ChtFind, vec![Type::U64], Some(idx)),
            _ => return None,
        },
        StateKind::Sketch { key, .. } => match name {
            "expire" => (SketchExpire, vec![], None),
            "over" => (SketchOver, vec![*key], b),
            "touch" => (SketchTouch, vec![*key], None),
            "refresh" => (SketchRefresh, vec![*key], None),
            _ => return None,
        },
        StateKind::Sets { elem, .. } => match name {
            "clear" => (SetsClear, vec![idx], None),
            "contains" => (SetsContains, vec![idx, *elem], b),
            "insert" => (SetsInsert, vec![idx, *elem], b),
            "count" => (SetsCount, vec![idx], Some(Type::U32)),
            _ => return None,
        },
    })
}

fn method_names(kind: &StateKind) -> &'static [&'static str] {
    match kind {
        StateKind::Table { .. } => &[
            "expire",
            "get",
            "contains",
            "add",
            "refresh",
            "has_index",
            "key",
            "value",
            "set_value",
            "remove",
            "full",
            "size",
        ],
        StateKind::Map { .. } => &["get", "contains", "put", "erase", "size"],
        StateKind::Vector { .. } => &["get", "set"],
        StateKind::DChain { .. } => &["allocate", "refresh", "is_allocated", "free", "expire"],
        StateKind::Cht { .. } => &["find"],
        StateKind::Sketch { .. } => &["expire", "over", "touch", "refresh"],
        StateKind::Sets { .. } => &["clear", "contains", "insert", "count"],
    }
}

/// The default value of a config: a literal of its type.
fn config_literal(e: &ast::Expr, ty: Type) -> Result<Value, String> {
    let v = match (&e.kind, ty) {
        (ast::ExprKind::Int(v), Type::Int(t)) if *v <= t.max_bits() => Some(Value::Int(t, *v)),
        (ast::ExprKind::Int(v), Type::Int(t)) => {
            return Err(format!(
                "integer literal {v} does not fit in {} (at most {})",
                t.name(),
                t.max_bits()
            ))
        }
        (ast::ExprKind::Int(v), Type::Device) if *v < 0xFFFF => Some(Value::Device(*v as u16)),
        (ast::ExprKind::Duration(v), Type::Int(IntTy::U64)) => Some(Value::Int(IntTy::U64, *v)),
        (ast::ExprKind::Unary(UnOp::Neg, inner), Type::Int(IntTy::I64)) => match inner.kind {
            ast::ExprKind::Int(v) if v <= 1 << 63 => Some(Value::Int(IntTy::I64, v.wrapping_neg())),
            _ => None,
        },
        (ast::ExprKind::Bool(b), Type::Bool) => Some(Value::Bool(*b)),
        (ast::ExprKind::Ip4(a), Type::Ip4) => Some(Value::Ip4(*a)),
        (ast::ExprKind::Mac(m), Type::Mac) => Some(Value::Mac(*m)),
        _ => None,
    };
    v.ok_or_else(|| {
        format!(
            "expected a literal of type {} such as `{}` as the config default",
            ty.display(&[]),
            example_literal(ty)
        )
    })
}

// `u32::is_multiple_of` is newer than the workspace's rust-version (1.80).
#[allow(clippy::manual_is_multiple_of)]
fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while (d as u64) * (d as u64) <= n as u64 {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}
