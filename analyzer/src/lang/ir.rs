//! The checked program: what the interpreter, the symbolic executor and the code
//! generator consume.
//!
//! Every name is resolved to an index (local slot, config, device, state object, record
//! type), every expression has its [`Type`], and the program is known to be well formed:
//! headers are only read after they are parsed, every path of `process` ends in an action,
//! `if let` binds only *opt* calls. Spans are kept for fault reports.

use super::ast::{BinOp, Layer, UnOp};
use super::diag::{SharedSource, Span};
use super::ops::Builtin;
use super::types::{RecordDef, RecordId, Type, Value};
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u32);

/// A loaded, checked NF.
#[derive(Clone, Debug)]
pub struct NfProgram {
    pub name: String,
    pub description: String,
    /// Device names and their ports (after `--set`), in declaration order.
    pub devices: Vec<DeviceDecl>,
    /// `max(port) + 1`, or 0 without devices.
    pub port_count: u16,
    /// Config parameters with their values after `--set`, in declaration order.
    pub configs: Vec<ConfigDecl>,
    pub records: Vec<RecordDef>,
    /// State objects with their evaluated parameters, in declaration order.
    pub states: Vec<StateDecl>,
    /// Every local of `process`, indexed by [`LocalId`]. Each `let` (and `if let`) gets its
    /// own slot, so an evaluator needs one flat frame of `locals.len()` values.
    pub locals: Vec<LocalDecl>,
    /// The body of `process`.
    pub process: Block,
    /// The source, for turning spans into `line:col`.
    pub source: SharedSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDecl {
    pub name: String,
    pub port: u16,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigValue {
    Value(Value),
    /// A `file` config: the path as written (relative to the NF folder) and resolved.
    File {
        written: String,
        resolved: PathBuf,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigDecl {
    pub name: String,
    /// `None` for `file` configs.
    pub ty: Option<Type>,
    pub value: ConfigValue,
    /// Whether `--set` changed it.
    pub overridden: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDecl {
    pub name: String,
    pub ty: Type,
    pub mutable: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDecl {
    pub name: String,
    pub kind: StateKind,
    pub span: Span,
}

/// A state object with its parameters evaluated (capacities are > 0, CHT heights prime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateKind {
    Table {
        key: Type,
        value: Option<Type>,
        capacity: u32,
        ttl: u64,
    },
    Map {
        key: Type,
        value: Type,
        capacity: u32,
        init: Option<MapInit>,
    },
    Vector {
        elem: Type,
        capacity: u32,
    },
    DChain {
        capacity: u32,
        ttl: u64,
    },
    Cht {
        height: u32,
        /// The `table` whose allocated indexes are the live backends.
        backends: StateId,
        /// The capacity of that table.
        backend_count: u32,
    },
    Sketch {
        key: Type,
        width: u32,
        ttl: u64,
        threshold: u32,
    },
    Sets {
        elem: Type,
        sets: u32,
        per_set: u32,
    },
}

impl StateKind {
    pub fn kind_name(&self) -> &'static str {
        match self {
            StateKind::Table { .. } => "table",
            StateKind::Map { .. } => "map",
            StateKind::Vector { .. } => "vector",
            StateKind::DChain { .. } => "dchain",
            StateKind::Cht { .. } => "cht",
            StateKind::Sketch { .. } => "sketch",
            StateKind::Sets { .. } => "sets",
        }
    }
}

/// The entries of a `map(..., init: FILE)`, parsed at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInit {
    pub path: PathBuf,
    /// (key, value) pairs in file order; keys are distinct.
    pub entries: Vec<(Value, Value)>,
}

/// A sequence of statements.
pub type Block = Vec<Stmt>;

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `let`: the new local's slot gets the value.
    Let {
        local: LocalId,
        value: Expr,
    },
    /// `x = e;` on a mutable local.
    Assign {
        local: LocalId,
        value: Expr,
    },
    /// A header write; the value's type matches the field.
    SetField {
        field: PktField,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Block,
        els: Block,
    },
    /// `if let local = call { then } else { els }`.
    IfLet {
        local: LocalId,
        call: StateCall,
        then: Block,
        els: Block,
    },
    /// On failure run `els` (which always ends in an action); on success continue.
    Parse {
        layer: Layer,
        els: Block,
    },
    /// A state call whose result, if any, is discarded.
    Call(StateCall),
    Action(Action),
}

#[derive(Clone, Debug)]
pub enum Action {
    Drop,
    Flood,
    /// The expression has type `device`.
    Forward(Expr),
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    /// A literal (or a folded constant).
    Const(Value),
    Config(ConfigId),
    Device(DeviceId),
    Local(LocalId),
    /// The input device.
    In,
    /// The packet's timestamp.
    Now,
    Packet(PktField),
    Unary(UnOp, Box<Expr>),
    /// Includes `&&` and `||`, which short-circuit.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cast(Box<Expr>),
    /// `min max sat_add sat_sub mul_div hash`; `hash` takes any values and gives `u32`.
    Builtin(Builtin, Vec<Expr>),
    /// Fields in declaration order.
    Record(RecordId, Vec<Expr>),
    Field(Box<Expr>, u32),
    /// A state call with a result (never an *opt* one: those only appear in `if let`).
    Call(Box<StateCall>),
}

#[derive(Clone, Debug)]
pub struct StateCall {
    pub state: StateId,
    pub method: Method,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// Every state method. The receiver kind is implied by the method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    TableExpire,
    TableGet,
    TableContains,
    TableAdd,
    TableRefresh,
    TableHasIndex,
    TableKey,
    TableValue,
    TableSetValue,
    TableRemove,
    TableFull,
    TableSize,
    MapGet,
    MapContains,
    MapPut,
    MapErase,
    MapSize,
    VectorGet,
    VectorSet,
    DChainAllocate,
    DChainRefresh,
    DChainIsAllocated,
    DChainFree,
    DChainExpire,
    ChtFind,
    SketchExpire,
    SketchOver,
    SketchTouch,
    SketchRefresh,
    SetsClear,
    SetsContains,
    SetsInsert,
    SetsCount,
}

impl Method {
    /// Whether the method changes its object. Expiry and refreshes count: they move
    /// timestamps, so an object that is only refreshed is still written state.
    pub fn mutates(self) -> bool {
        use Method::*;
        matches!(
            self,
            TableExpire
                | TableAdd
                | TableRefresh
                | TableSetValue
                | TableRemove
                | MapPut
                | MapErase
                | VectorSet
                | DChainAllocate
                | DChainRefresh
                | DChainFree
                | DChainExpire
                | SketchExpire
                | SketchTouch
                | SketchRefresh
                | SetsClear
                | SetsInsert
        )
    }

    /// The method's name in source.
    pub fn name(self) -> &'static str {
        use Method::*;
        match self {
            TableExpire | DChainExpire | SketchExpire => "expire",
            TableGet | MapGet | VectorGet => "get",
            TableContains | MapContains | SetsContains => "contains",
            TableAdd => "add",
            TableRefresh | DChainRefresh | SketchRefresh => "refresh",
            TableHasIndex => "has_index",
            TableKey => "key",
            TableValue => "value",
            TableSetValue => "set_value",
            TableRemove => "remove",
            TableFull => "full",
            TableSize | MapSize => "size",
            MapPut => "put",
            MapErase => "erase",
            VectorSet => "set",
            DChainAllocate => "allocate",
            DChainIsAllocated => "is_allocated",
            DChainFree => "free",
            ChtFind => "find",
            SketchOver => "over",
            SketchTouch => "touch",
            SetsClear => "clear",
            SetsInsert => "insert",
            SetsCount => "count",
        }
    }

    /// *opt* calls may have no result and are only usable in `if let` (or as statements).
    pub fn is_opt(self) -> bool {
        use Method::*;
        matches!(
            self,
            TableGet | TableAdd | MapGet | DChainAllocate | ChtFind
        )
    }
}

/// Packet fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PktField {
    Len,
    EthDst,
    EthSrc,
    EthType,
    IpSrc,
    IpDst,
    IpProto,
    IpTtl,
    IpTos,
    IpIhl,
    IpLen,
    IpId,
    IpFrag,
    L4Sport,
    L4Dport,
}

impl PktField {
    pub fn from_path(header: &str, field: &str) -> Option<PktField> {
        use PktField::*;
        Some(match (header, field) {
            ("eth", "dst") => EthDst,
            ("eth", "src") => EthSrc,
            ("eth", "type") => EthType,
            ("ip", "src") => IpSrc,
            ("ip", "dst") => IpDst,
            ("ip", "proto") => IpProto,
            ("ip", "ttl") => IpTtl,
            ("ip", "tos") => IpTos,
            ("ip", "ihl") => IpIhl,
            ("ip", "len") => IpLen,
            ("ip", "id") => IpId,
            ("ip", "frag") => IpFrag,
            ("l4", "sport") => L4Sport,
            ("l4", "dport") => L4Dport,
            _ => return None,
        })
    }

    pub fn ty(self) -> Type {
        use PktField::*;
        match self {
            Len | EthType | IpLen | IpId | IpFrag | L4Sport | L4Dport => Type::U16,
            EthDst | EthSrc => Type::Mac,
            IpSrc | IpDst => Type::Ip4,
            IpProto | IpTtl | IpTos | IpIhl => Type::U8,
        }
    }

    /// The header that must have been parsed before the field is used.
    pub fn requires(self) -> Option<Layer> {
        use PktField::*;
        match self {
            Len | EthDst | EthSrc | EthType => None,
            L4Sport | L4Dport => Some(Layer::L4),
            _ => Some(Layer::Ipv4),
        }
    }

    pub fn writable(self) -> bool {
        use PktField::*;
        matches!(
            self,
            EthDst | EthSrc | IpSrc | IpDst | IpTtl | IpTos | L4Sport | L4Dport
        )
    }

    pub fn path(self) -> &'static str {
        use PktField::*;
        match self {
            Len => "pkt.len",
            EthDst => "pkt.eth.dst",
            EthSrc => "pkt.eth.src",
            EthType => "pkt.eth.type",
            IpSrc => "pkt.ip.src",
            IpDst => "pkt.ip.dst",
            IpProto => "pkt.ip.proto",
            IpTtl => "pkt.ip.ttl",
            IpTos => "pkt.ip.tos",
            IpIhl => "pkt.ip.ihl",
            IpLen => "pkt.ip.len",
            IpId => "pkt.ip.id",
            IpFrag => "pkt.ip.frag",
            L4Sport => "pkt.l4.sport",
            L4Dport => "pkt.l4.dport",
        }
    }
}

impl NfProgram {
    /// Every state call of `process`, in source order; a call's argument calls come
    /// before it.
    pub fn state_calls(&self) -> Vec<&StateCall> {
        fn expr<'a>(e: &'a Expr, out: &mut Vec<&'a StateCall>) {
            match &e.kind {
                ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Field(a, _) => expr(a, out),
                ExprKind::Binary(_, a, b) => {
                    expr(a, out);
                    expr(b, out);
                }
                ExprKind::Builtin(_, args) | ExprKind::Record(_, args) => {
                    args.iter().for_each(|a| expr(a, out))
                }
                ExprKind::Call(c) => call(c, out),
                _ => {}
            }
        }
        fn call<'a>(c: &'a StateCall, out: &mut Vec<&'a StateCall>) {
            c.args.iter().for_each(|a| expr(a, out));
            out.push(c);
        }
        fn block<'a>(b: &'a [Stmt], out: &mut Vec<&'a StateCall>) {
            for s in b {
                match &s.kind {
                    StmtKind::Let { value, .. }
                    | StmtKind::Assign { value, .. }
                    | StmtKind::SetField { value, .. } => expr(value, out),
                    StmtKind::If { cond, then, els } => {
                        expr(cond, out);
                        block(then, out);
                        block(els, out);
                    }
                    StmtKind::IfLet {
                        call: c, then, els, ..
                    } => {
                        call(c, out);
                        block(then, out);
                        block(els, out);
                    }
                    StmtKind::Parse { els, .. } => block(els, out),
                    StmtKind::Call(c) => call(c, out),
                    StmtKind::Action(Action::Forward(e)) => expr(e, out),
                    StmtKind::Action(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        block(&self.process, &mut out);
        out
    }

    /// `line:col` (1-based) of a span in the NF source.
    pub fn line_col(&self, span: Span) -> (u32, u32) {
        self.source.line_col(span.lo)
    }

    /// `file:line:col` of a span, for fault reports.
    pub fn location(&self, span: Span) -> String {
        let (l, c) = self.line_col(span);
        format!("{}:{}:{}", self.source.name, l, c)
    }

    pub fn config(&self, name: &str) -> Option<&ConfigDecl> {
        self.configs.iter().find(|c| c.name == name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// `max(port) + 1` over the devices (0 without devices).
    pub fn port_count(&self) -> u16 {
        self.port_count
    }

    /// The port of a device, after `--set`.
    pub fn device_port(&self, name: &str) -> Option<u16> {
        self.device(name).map(|d| d.port)
    }

    pub fn device(&self, name: &str) -> Option<&DeviceDecl> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn state(&self, name: &str) -> Option<(StateId, &StateDecl)> {
        self.states
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
            .map(|(i, s)| (StateId(i as u32), s))
    }

    pub fn type_name(&self, ty: Type) -> String {
        ty.display(&self.records).to_string()
    }

    /// A human-readable summary of devices, config values and state objects, for
    /// `maestro info`-like output.
    pub fn config_summary(&self) -> String {
        ConfigSummary(self).to_string()
    }

    /// Same as [`NfProgram::config_summary`].
    pub fn summary(&self) -> String {
        self.config_summary()
    }
}

struct ConfigSummary<'a>(&'a NfProgram);

impl fmt::Display for ConfigSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        writeln!(f, "nf {}: {}", p.name, p.description)?;
        writeln!(f, "ports: {}", p.port_count)?;
        for d in &p.devices {
            writeln!(f, "  device {} = {}", d.name, d.port)?;
        }
        for c in &p.configs {
            let (ty, val) = match (&c.ty, &c.value) {
                (Some(t), ConfigValue::Value(v)) => {
                    (p.type_name(*t), v.display(&p.records).to_string())
                }
                (_, ConfigValue::File { written, .. }) => {
                    ("file".to_string(), format!("{written:?}"))
                }
                (None, ConfigValue::Value(v)) => ("?".to_string(), format!("{v:?}")),
            };
            let mark = if c.overridden { "  (set)" } else { "" };
            writeln!(f, "  config {}: {} = {}{}", c.name, ty, val, mark)?;
        }
        for s in &p.states {
            let t = |ty: &Type| p.type_name(*ty);
            let desc = match &s.kind {
                StateKind::Table {
                    key,
                    value,
                    capacity,
                    ttl,
                } => match value {
                    Some(v) => format!(
                        "table<{}, {}>(capacity: {capacity}, ttl: {ttl})",
                        t(key),
                        t(v)
                    ),
                    None => format!("table<{}>(capacity: {capacity}, ttl: {ttl})", t(key)),
                },
                StateKind::Map {
                    key,
                    value,
                    capacity,
                    init,
                } => {
                    let init = match init {
                        Some(i) => format!(
                            ", init: {} entries from {}",
                            i.entries.len(),
                            i.path.display()
                        ),
                        None => String::new(),
                    };
                    format!("map<{}, {}>(capacity: {capacity}{init})", t(key), t(value))
                }
                StateKind::Vector { elem, capacity } => {
                    format!("vector<{}>(capacity: {capacity})", t(elem))
                }
                StateKind::DChain { capacity, ttl } => {
                    format!("dchain(capacity: {capacity}, ttl: {ttl})")
                }
                StateKind::Cht {
                    height,
                    backends,
                    backend_count,
                } => {
                    let b = p
                        .states
                        .get(backends.0 as usize)
                        .map(|s| s.name.as_str())
                        .unwrap_or("?");
                    format!("cht(height: {height}, backends: {b} ({backend_count}))")
                }
                StateKind::Sketch {
                    key,
                    width,
                    ttl,
                    threshold,
                } => format!(
                    "sketch<{}>(width: {width}, ttl: {ttl}, threshold: {threshold})",
                    t(key)
                ),
                StateKind::Sets {
                    elem,
                    sets,
                    per_set,
                } => {
                    format!("sets<{}>(sets: {sets}, per_set: {per_set})", t(elem))
                }
            };
            writeln!(f, "  state {}: {}", s.name, desc)?;
        }
        Ok(())
    }
}
