//! Hand-written recursive-descent parser.
//!
//! Parsing stops at the first syntax error: recovery rarely gives useful follow-up
//! messages in a language this small, and the type checker collects several errors.
//!
//! Expression precedence, loosest first: `||`, `&&`, comparisons (not chainable), `|`,
//! `^`, `&`, `<< >>`, `+ -`, `* / %`, `as`, unary `! -`, then postfix `.field` and
//! `.method(args)`. As in Rust, a record literal `Name { ... }` is not allowed directly in
//! an `if` condition (write it in parentheses), so that `if in == wan { ... }` parses as
//! expected.

use super::ast::*;
use super::diag::{Diagnostic, SourceFile, Span};
use super::lexer::{tokenize, Keyword, Punct, Token, TokenKind};

/// Parses a whole source file.
pub fn parse(src: &SourceFile) -> Result<Module, Diagnostic> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        src,
        depth: 0,
    };
    p.module()
}

/// Nesting limit (parentheses, unary operators, blocks), so that hostile input cannot
/// overflow the stack, even in debug builds on a 2 MiB thread. Real NFs nest far less.
pub const MAX_DEPTH: u32 = 64;

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    src: &'a SourceFile,
    depth: u32,
}

type PResult<T> = Result<T, Diagnostic>;

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `bump` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_kind(&self) -> &TokenKind {
        &self.peek().kind
    }

    fn peek_nth(&self, n: usize) -> &TokenKind {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].kind
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn is_punct(&self, p: Punct) -> bool {
        *self.peek_kind() == TokenKind::Punct(p)
    }

    fn is_kw(&self, k: Keyword) -> bool {
        *self.peek_kind() == TokenKind::Keyword(k)
    }

    fn eat_punct(&mut self, p: Punct) -> bool {
        if self.is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_kw(&mut self, k: Keyword) -> bool {
        if self.is_kw(k) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// An error at the current token: "expected X, found Y", or the explanation when the
    /// token is a rejected reserved word.
    fn unexpected(&self, expected: &str) -> Diagnostic {
        let t = self.peek();
        if let TokenKind::Keyword(k) = t.kind {
            if let Some(why) = k.rejection() {
                return self.src.error(t.span, why);
            }
        }
        self.src
            .error(t.span, format!("expected {expected}, found {}", t.kind))
    }

    fn expect_punct(&mut self, p: Punct) -> PResult<Span> {
        if self.is_punct(p) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("`{}`", p.as_str())))
        }
    }

    fn expect_kw(&mut self, k: Keyword) -> PResult<Span> {
        if self.is_kw(k) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("`{}`", k.as_str())))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<Ident> {
        match self.peek_kind().clone() {
            TokenKind::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.src.error(
                self.peek().span,
                "nesting too deep: expressions and blocks may nest at most 64 levels",
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- items ----

    fn module(&mut self) -> PResult<Module> {
        let mut items = Vec::new();
        while *self.peek_kind() != TokenKind::Eof {
            items.push(self.item()?);
        }
        Ok(Module { items })
    }

    fn item(&mut self) -> PResult<Item> {
        let start = self.peek().span;
        match self.peek_kind() {
            TokenKind::Keyword(Keyword::Nf) => {
                self.bump();
                let name = self.ident("the NF name")?;
                let description = match self.peek_kind().clone() {
                    TokenKind::Str(s) => {
                        self.bump();
                        s
                    }
                    _ => return Err(self.unexpected("a description string")),
                };
                self.expect_punct(Punct::Semi)?;
                Ok(Item::Nf {
                    name,
                    description,
                    span: start.to(self.prev_span()),
                })
            }
            TokenKind::Ident(w) if w == "device" => {
                self.bump();
                let name = self.ident("a device name")?;
                self.expect_punct(Punct::Eq)?;
                let (port, port_span) = match self.peek_kind().clone() {
                    TokenKind::Int(v) => (v, self.bump().span),
                    _ => return Err(self.unexpected("a port number")),
                };
                self.expect_punct(Punct::Semi)?;
                Ok(Item::Device {
                    name,
                    port,
                    port_span,
                })
            }
            TokenKind::Keyword(Keyword::Config) => {
                self.bump();
                let name = self.ident("a config name")?;
                self.expect_punct(Punct::Colon)?;
                let ty = self.ident("a type")?;
                self.expect_punct(Punct::Eq)?;
                let value = self.expr(true)?;
                self.expect_punct(Punct::Semi)?;
                Ok(Item::Config { name, ty, value })
            }
            TokenKind::Keyword(Keyword::Record) => {
                self.bump();
                let name = self.ident("a record name")?;
                self.expect_punct(Punct::LBrace)?;
                let mut fields = Vec::new();
                while !self.is_punct(Punct::RBrace) {
                    let f = self.ident("a field name or `}`")?;
                    self.expect_punct(Punct::Colon)?;
                    let ty = self.ident("a field type")?;
                    fields.push((f, ty));
                    if !self.eat_punct(Punct::Comma) {
                        break;
                    }
                }
                self.expect_punct(Punct::RBrace)?;
                Ok(Item::Record { name, fields })
            }
            TokenKind::Keyword(Keyword::State) => {
                self.bump();
                let name = self.ident("a state name")?;
                self.expect_punct(Punct::Colon)?;
                let kind = self.ident(
                    "a state kind (`table`, `map`, `vector`, `dchain`, `cht`, `sketch` or `sets`)",
                )?;
                let mut type_args = Vec::new();
                if self.eat_punct(Punct::Lt) {
                    loop {
                        type_args.push(self.ident("a type")?);
                        if !self.eat_punct(Punct::Comma) {
                            break;
                        }
                    }
                    self.expect_punct(Punct::Gt)?;
                }
                self.expect_punct(Punct::LParen)?;
                let mut params = Vec::new();
                while !self.is_punct(Punct::RParen) {
                    let p = self.ident("a parameter name or `)`")?;
                    self.expect_punct(Punct::Colon)?;
                    let e = self.expr(true)?;
                    params.push((p, e));
                    if !self.eat_punct(Punct::Comma) {
                        break;
                    }
                }
                self.expect_punct(Punct::RParen)?;
                self.expect_punct(Punct::Semi)?;
                Ok(Item::State {
                    name,
                    kind,
                    type_args,
                    params,
                    span: start.to(self.prev_span()),
                })
            }
            TokenKind::Keyword(Keyword::Process) => {
                self.bump();
                let body = self.block()?;
                Ok(Item::Process {
                    body,
                    span: start.to(self.prev_span()),
                })
            }
            _ => Err(self
                .unexpected("an item (`nf`, `device`, `config`, `record`, `state` or `process`)")),
        }
    }

    // ---- statements ----

    fn block(&mut self) -> PResult<Block> {
        self.enter()?;
        let lo = self.expect_punct(Punct::LBrace)?;
        let mut stmts = Vec::new();
        while !self.is_punct(Punct::RBrace) {
            if *self.peek_kind() == TokenKind::Eof {
                return Err(self.unexpected("a statement or `}`"));
            }
            stmts.push(self.stmt()?);
        }
        let hi = self.expect_punct(Punct::RBrace)?;
        self.leave();
        Ok(Block {
            stmts,
            span: lo.to(hi),
        })
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        let lo = self.peek().span;
        let kind = match self.peek_kind() {
            TokenKind::Keyword(Keyword::Let) => {
                self.bump();
                let mutable = self.eat_kw(Keyword::Mut);
                let name = self.ident("a variable name")?;
                let ty = if self.eat_punct(Punct::Colon) {
                    Some(self.ident("a type")?)
                } else {
                    None
                };
                self.expect_punct(Punct::Eq)?;
                let value = self.expr(true)?;
                self.expect_punct(Punct::Semi)?;
                StmtKind::Let {
                    mutable,
                    name,
                    ty,
                    value,
                }
            }
            TokenKind::Keyword(Keyword::If) => return self.if_stmt(),
            TokenKind::Keyword(Keyword::Parse) => {
                self.bump();
                let layer = match self.peek_kind() {
                    TokenKind::Ident(s) if s == "ipv4" => Layer::Ipv4,
                    TokenKind::Ident(s) if s == "l4" => Layer::L4,
                    _ => return Err(self.unexpected("`ipv4` or `l4` after `parse`")),
                };
                self.bump();
                if !self.is_kw(Keyword::Else) {
                    return Err(
                        self.unexpected("`else { ... }` (the block run when the header is absent)")
                    );
                }
                self.bump();
                let els = self.block()?;
                StmtKind::Parse { layer, els }
            }
            TokenKind::Keyword(Keyword::Drop) => {
                self.bump();
                self.expect_punct(Punct::Semi)?;
                StmtKind::Drop
            }
            TokenKind::Keyword(Keyword::Flood) => {
                self.bump();
                self.expect_punct(Punct::Semi)?;
                StmtKind::Flood
            }
            TokenKind::Keyword(Keyword::Forward) => {
                self.bump();
                self.expect_punct(Punct::LParen)?;
                let e = self.expr(true)?;
                self.expect_punct(Punct::RParen)?;
                self.expect_punct(Punct::Semi)?;
                StmtKind::Forward(e)
            }
            TokenKind::Keyword(k) if k.rejection().is_some() => {
                return Err(self.unexpected("a statement"))
            }
            _ => {
                let target = self.expr(true)?;
                if self.eat_punct(Punct::Eq) {
                    let value = self.expr(true)?;
                    self.expect_punct(Punct::Semi)?;
                    StmtKind::Assign { target, value }
                } else {
                    self.expect_punct(Punct::Semi)?;
                    StmtKind::Expr(target)
                }
            }
        };
        Ok(Stmt {
            kind,
            span: lo.to(self.prev_span()),
        })
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let lo = self.expect_kw(Keyword::If)?;
        let kind = if self.eat_kw(Keyword::Let) {
            let name = self.ident("a variable name after `if let`")?;
            self.expect_punct(Punct::Eq)?;
            let call = self.expr(false)?;
            let then = self.block()?;
            let els = self.else_part()?;
            StmtKind::IfLet {
                name,
                call,
                then,
                els,
            }
        } else {
            let cond = self.expr(false)?;
            let then = self.block()?;
            let els = self.else_part()?;
            StmtKind::If { cond, then, els }
        };
        self.leave();
        Ok(Stmt {
            kind,
            span: lo.to(self.prev_span()),
        })
    }

    fn else_part(&mut self) -> PResult<Option<Block>> {
        if !self.eat_kw(Keyword::Else) {
            return Ok(None);
        }
        if self.is_kw(Keyword::If) {
            let s = self.if_stmt()?;
            let span = s.span;
            return Ok(Some(Block {
                stmts: vec![s],
                span,
            }));
        }
        if !self.is_punct(Punct::LBrace) {
            return Err(self.unexpected("`{` or `if` after `else`"));
        }
        Ok(Some(self.block()?))
    }

    // ---- expressions ----

    /// `allow_record`: whether `Name { ... }` may appear at the top level (false in `if`
    /// conditions, reset inside parentheses and argument lists).
    fn expr(&mut self, allow_record: bool) -> PResult<Expr> {
        self.enter()?;
        let e = self.binary(0, allow_record);
        self.leave();
        e
    }

    fn binop_at(&self) -> Option<(BinOp, u8)> {
        use BinOp::*;
        let TokenKind::Punct(p) = self.peek_kind() else {
            return None;
        };
        Some(match p {
            Punct::PipePipe => (Or, 1),
            Punct::AmpAmp => (And, 2),
            Punct::EqEq => (Eq, 3),
            Punct::Ne => (Ne, 3),
            Punct::Lt => (Lt, 3),
            Punct::Le => (Le, 3),
            Punct::Gt => (Gt, 3),
            Punct::Ge => (Ge, 3),
            Punct::Pipe => (BitOr, 4),
            Punct::Caret => (BitXor, 5),
            Punct::Amp => (BitAnd, 6),
            Punct::Shl => (Shl, 7),
            Punct::Shr => (Shr, 7),
            Punct::Plus => (Add, 8),
            Punct::Minus => (Sub, 8),
            Punct::Star => (Mul, 9),
            Punct::Slash => (Div, 9),
            Punct::Percent => (Rem, 9),
            _ => return None,
        })
    }

    /// Precedence climbing over the binary operators.
    fn binary(&mut self, min_prec: u8, allow_record: bool) -> PResult<Expr> {
        let mut lhs = self.cast(allow_record)?;
        while let Some((op, prec)) = self.binop_at() {
            if prec <= min_prec {
                break;
            }
            let op_span = self.bump().span;
            self.enter()?;
            let rhs = self.binary(prec, allow_record)?;
            self.leave();
            if op.is_comparison() {
                if let Some((next, 3)) = self.binop_at() {
                    return Err(self.src.error(
                        self.peek().span,
                        format!(
                            "comparison operators cannot be chained: `{}` after `{}`; use \
                             `&&` and parentheses",
                            next.as_str(),
                            op.as_str()
                        ),
                    ));
                }
            }
            let _ = op_span;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn cast(&mut self, allow_record: bool) -> PResult<Expr> {
        let mut e = self.unary(allow_record)?;
        while self.eat_kw(Keyword::As) {
            let ty = self.ident("a type after `as`")?;
            let span = e.span.to(ty.span);
            e = Expr {
                kind: ExprKind::Cast(Box::new(e), ty),
                span,
            };
        }
        Ok(e)
    }

    fn unary(&mut self, allow_record: bool) -> PResult<Expr> {
        let op = if self.is_punct(Punct::Bang) {
            Some(UnOp::Not)
        } else if self.is_punct(Punct::Minus) {
            Some(UnOp::Neg)
        } else {
            None
        };
        if let Some(op) = op {
            let lo = self.bump().span;
            self.enter()?;
            let e = self.unary(allow_record)?;
            self.leave();
            let span = lo.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(e)),
                span,
            });
        }
        self.postfix(allow_record)
    }

    fn postfix(&mut self, allow_record: bool) -> PResult<Expr> {
        let mut e = self.primary(allow_record)?;
        while self.eat_punct(Punct::Dot) {
            let name = self.ident("a field or method name after `.`")?;
            if self.is_punct(Punct::LParen) {
                let args = self.args()?;
                let span = e.span.to(self.prev_span());
                e = Expr {
                    kind: ExprKind::MethodCall {
                        recv: Box::new(e),
                        method: name,
                        args,
                    },
                    span,
                };
            } else {
                let span = e.span.to(name.span);
                e = Expr {
                    kind: ExprKind::Field(Box::new(e), name),
                    span,
                };
            }
        }
        Ok(e)
    }

    fn args(&mut self) -> PResult<Vec<Expr>> {
        self.expect_punct(Punct::LParen)?;
        let mut args = Vec::new();
        while !self.is_punct(Punct::RParen) {
            args.push(self.expr(true)?);
            if !self.eat_punct(Punct::Comma) {
                break;
            }
        }
        self.expect_punct(Punct::RParen)?;
        Ok(args)
    }

    fn primary(&mut self, allow_record: bool) -> PResult<Expr> {
        let t = self.peek().clone();
        let lit = |kind| Ok(Expr { kind, span: t.span });
        match t.kind {
            TokenKind::Int(v) => {
                self.bump();
                lit(ExprKind::Int(v))
            }
            TokenKind::Duration(v) => {
                self.bump();
                lit(ExprKind::Duration(v))
            }
            TokenKind::Ip4(v) => {
                self.bump();
                lit(ExprKind::Ip4(v))
            }
            TokenKind::Mac(v) => {
                self.bump();
                lit(ExprKind::Mac(v))
            }
            TokenKind::Str(s) => {
                self.bump();
                lit(ExprKind::Str(s))
            }
            TokenKind::Keyword(Keyword::True) => {
                self.bump();
                lit(ExprKind::Bool(true))
            }
            TokenKind::Keyword(Keyword::False) => {
                self.bump();
                lit(ExprKind::Bool(false))
            }
            TokenKind::Keyword(Keyword::In) => {
                self.bump();
                lit(ExprKind::In)
            }
            TokenKind::Punct(Punct::LParen) => {
                self.bump();
                let mut e = self.expr(true)?;
                let hi = self.expect_punct(Punct::RParen)?;
                e.span = t.span.to(hi);
                Ok(e)
            }
            TokenKind::Ident(name) => {
                self.bump();
                let ident = Ident { name, span: t.span };
                if self.is_punct(Punct::LParen) {
                    let args = self.args()?;
                    let span = t.span.to(self.prev_span());
                    return Ok(Expr {
                        kind: ExprKind::Call(ident, args),
                        span,
                    });
                }
                if allow_record && self.is_punct(Punct::LBrace) && self.looks_like_record() {
                    return self.record_lit(ident);
                }
                Ok(Expr {
                    kind: ExprKind::Name(ident),
                    span: t.span,
                })
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// After `Name`, at `{`: a record literal starts with `}` or `field :`.
    fn looks_like_record(&self) -> bool {
        matches!(
            (self.peek_nth(1), self.peek_nth(2)),
            (TokenKind::Punct(Punct::RBrace), _)
                | (TokenKind::Ident(_), TokenKind::Punct(Punct::Colon))
        )
    }

    fn record_lit(&mut self, name: Ident) -> PResult<Expr> {
        self.expect_punct(Punct::LBrace)?;
        let mut fields = Vec::new();
        while !self.is_punct(Punct::RBrace) {
            let f = self.ident("a field name or `}`")?;
            self.expect_punct(Punct::Colon)?;
            let e = self.expr(true)?;
            fields.push((f, e));
            if !self.eat_punct(Punct::Comma) {
                break;
            }
        }
        let hi = self.expect_punct(Punct::RBrace)?;
        Ok(Expr {
            span: name.span.to(hi),
            kind: ExprKind::RecordLit { name, fields },
        })
    }
}
