//! The syntax tree, as written. Every node has a span; nothing is resolved yet.
//!
//! The checker ([`super::check`]) turns this into the checked IR ([`super::ir`]).

use super::diag::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A type as written: a single name (`u32`, `mac`, `FlowId`, `file`, ...).
pub type TypeExpr = Ident;

#[derive(Clone, Debug)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Nf {
        name: Ident,
        description: String,
        span: Span,
    },
    Device {
        name: Ident,
        port: u64,
        port_span: Span,
    },
    Config {
        name: Ident,
        ty: TypeExpr,
        value: Expr,
    },
    Record {
        name: Ident,
        fields: Vec<(Ident, TypeExpr)>,
    },
    State {
        name: Ident,
        kind: Ident,
        type_args: Vec<TypeExpr>,
        params: Vec<(Ident, Expr)>,
        span: Span,
    },
    Process {
        body: Block,
        span: Span,
    },
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Ipv4,
    L4,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    Let {
        mutable: bool,
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `target = value;` (a local or a packet field).
    Assign {
        target: Expr,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Block,
        /// `else { ... }`; an `else if` is a block holding one `if` statement.
        els: Option<Block>,
    },
    IfLet {
        name: Ident,
        call: Expr,
        then: Block,
        els: Option<Block>,
    },
    Parse {
        layer: Layer,
        els: Block,
    },
    Drop,
    Flood,
    Forward(Expr),
    /// An expression statement (only state calls are accepted by the checker).
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `!`: logical not on `bool`, bitwise not on integers.
    Not,
    /// `-` on `i64`.
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        use BinOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Rem => "%",
            BitAnd => "&",
            BitOr => "|",
            BitXor => "^",
            Shl => "<<",
            Shr => ">>",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            And => "&&",
            Or => "||",
        }
    }

    pub fn is_comparison(self) -> bool {
        use BinOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge)
    }
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Int(u64),
    /// A duration literal, in nanoseconds (always `u64`).
    Duration(u64),
    Bool(bool),
    Ip4(u32),
    Mac([u8; 6]),
    Str(String),
    /// A plain name: local, config, device, `now`, `pkt`.
    Name(Ident),
    /// The `in` keyword: the input device.
    In,
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cast(Box<Expr>, TypeExpr),
    /// `name(args)`: a built-in function.
    Call(Ident, Vec<Expr>),
    /// `recv.method(args)`: a state call.
    MethodCall {
        recv: Box<Expr>,
        method: Ident,
        args: Vec<Expr>,
    },
    /// `Name { field: value, ... }`.
    RecordLit {
        name: Ident,
        fields: Vec<(Ident, Expr)>,
    },
    /// `e.field` (also the packet paths `pkt.ip.src`).
    Field(Box<Expr>, Ident),
}
