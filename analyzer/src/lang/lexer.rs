//! The lexer: source text to tokens with spans.
//!
//! Address literals are recognised here rather than in the parser, because `10.0.0.1`
//! and `01:23:45:67:89:ab` would otherwise be ambiguous with field access and with
//! `name: type` annotations.

use super::diag::{Diagnostic, FileId, SourceFile, Span};
use std::fmt;

/// Keywords (also the reserved words rejected with an explanation).
///
/// `device` is not a keyword: it starts an item only at the top level, and is otherwise a
/// type name (`table<mac, device>`) and a common field name (`device: device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keyword {
    Nf,
    Config,
    Record,
    State,
    Process,
    Let,
    Mut,
    If,
    Else,
    Parse,
    Drop,
    Flood,
    Forward,
    True,
    False,
    As,
    In,
    // Reserved: rejected wherever they appear.
    While,
    For,
    Loop,
    Fn,
    Return,
    Break,
    Continue,
}

impl Keyword {
    fn from_str(s: &str) -> Option<Keyword> {
        use Keyword::*;
        Some(match s {
            "nf" => Nf,
            "config" => Config,
            "record" => Record,
            "state" => State,
            "process" => Process,
            "let" => Let,
            "mut" => Mut,
            "if" => If,
            "else" => Else,
            "parse" => Parse,
            "drop" => Drop,
            "flood" => Flood,
            "forward" => Forward,
            "true" => True,
            "false" => False,
            "as" => As,
            "in" => In,
            "while" => While,
            "for" => For,
            "loop" => Loop,
            "fn" => Fn,
            "return" => Return,
            "break" => Break,
            "continue" => Continue,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use Keyword::*;
        match self {
            Nf => "nf",
            Config => "config",
            Record => "record",
            State => "state",
            Process => "process",
            Let => "let",
            Mut => "mut",
            If => "if",
            Else => "else",
            Parse => "parse",
            Drop => "drop",
            Flood => "flood",
            Forward => "forward",
            True => "true",
            False => "false",
            As => "as",
            In => "in",
            While => "while",
            For => "for",
            Loop => "loop",
            Fn => "fn",
            Return => "return",
            Break => "break",
            Continue => "continue",
        }
    }

    /// For reserved words: why the language has no such construct.
    pub fn rejection(self) -> Option<String> {
        use Keyword::*;
        let loops = "every path must be finite and enumerable; bulk work is done by state \
                     calls (`expire`) whose cost the runtime bounds";
        let funcs = "write the code inline; the only calls are the built-ins and state calls, \
                     none of which call back";
        match self {
            While | For | Loop => Some(format!(
                "Loops are not allowed (found `{}`): {loops}",
                self.as_str()
            )),
            Break | Continue => Some(format!(
                "Loops are not allowed, so neither is `{}`: {loops}",
                self.as_str()
            )),
            Fn => Some(format!("Functions are not allowed (found `fn`): {funcs}")),
            Return => Some(format!(
                "Functions are not allowed, so neither is `return`: {funcs}; end a path with \
                 `drop`, `flood` or `forward(...)`"
            )),
            _ => None,
        }
    }
}

/// Punctuation and operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Punct {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Lt,
    Gt,
    Le,
    Ge,
    EqEq,
    Ne,
    Eq,
    Comma,
    Semi,
    Colon,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Amp,
    AmpAmp,
    Pipe,
    PipePipe,
    Caret,
    Bang,
    Shl,
    Shr,
}

impl Punct {
    pub fn as_str(self) -> &'static str {
        use Punct::*;
        match self {
            LBrace => "{",
            RBrace => "}",
            LParen => "(",
            RParen => ")",
            Lt => "<",
            Gt => ">",
            Le => "<=",
            Ge => ">=",
            EqEq => "==",
            Ne => "!=",
            Eq => "=",
            Comma => ",",
            Semi => ";",
            Colon => ":",
            Dot => ".",
            Plus => "+",
            Minus => "-",
            Star => "*",
            Slash => "/",
            Percent => "%",
            Amp => "&",
            AmpAmp => "&&",
            Pipe => "|",
            PipePipe => "||",
            Caret => "^",
            Bang => "!",
            Shl => "<<",
            Shr => ">>",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Ident(String),
    Keyword(Keyword),
    /// Integer literal (decimal or hex, `_` separators removed).
    Int(u64),
    /// Duration literal, already in nanoseconds.
    Duration(u64),
    Ip4(u32),
    Mac([u8; 6]),
    Str(String),
    Punct(Punct),
    Eof,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Ident(s) => write!(f, "`{s}`"),
            TokenKind::Keyword(k) => write!(f, "`{}`", k.as_str()),
            TokenKind::Int(v) => write!(f, "`{v}`"),
            TokenKind::Duration(v) => write!(f, "duration `{v}ns`"),
            TokenKind::Ip4(a) => write!(f, "`{}`", std::net::Ipv4Addr::from(*a)),
            TokenKind::Mac(m) => write!(f, "`{}`", super::types::fmt_mac(m)),
            TokenKind::Str(s) => write!(f, "string {s:?}"),
            TokenKind::Punct(p) => write!(f, "`{}`", p.as_str()),
            TokenKind::Eof => write!(f, "end of file"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// Splits a whole file into tokens, ending with [`TokenKind::Eof`].
pub fn tokenize(src: &SourceFile) -> Result<Vec<Token>, Diagnostic> {
    Lexer {
        text: src.text.as_bytes(),
        pos: 0,
        file: src.id,
        src,
    }
    .run()
}

struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    file: FileId,
    src: &'a SourceFile,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Lexer<'a> {
    fn peek_at(&self, i: usize) -> u8 {
        self.text.get(self.pos + i).copied().unwrap_or(0)
    }

    fn err(&self, lo: usize, hi: usize, msg: impl Into<String>) -> Diagnostic {
        self.src
            .error(Span::new(self.file, lo, hi.max(lo + 1)), msg)
    }

    fn run(mut self) -> Result<Vec<Token>, Diagnostic> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia()?;
            let lo = self.pos;
            if self.pos >= self.text.len() {
                out.push(Token {
                    kind: TokenKind::Eof,
                    span: Span::new(self.file, lo, lo),
                });
                return Ok(out);
            }
            let kind = self.token()?;
            out.push(Token {
                kind,
                span: Span::new(self.file, lo, self.pos),
            });
        }
    }

    fn skip_trivia(&mut self) -> Result<(), Diagnostic> {
        loop {
            let b = self.peek_at(0);
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'/' && self.peek_at(1) == b'/' {
                while self.pos < self.text.len() && self.text[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else if b == b'/' && self.peek_at(1) == b'*' {
                let lo = self.pos;
                self.pos += 2;
                loop {
                    if self.pos >= self.text.len() {
                        return Err(self.err(lo, lo + 2, "unterminated `/*` comment"));
                    }
                    if self.peek_at(0) == b'*' && self.peek_at(1) == b'/' {
                        self.pos += 2;
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                return Ok(());
            }
        }
    }

    fn token(&mut self) -> Result<TokenKind, Diagnostic> {
        let b = self.peek_at(0);
        if let Some(mac) = self.mac_literal() {
            return Ok(TokenKind::Mac(mac));
        }
        if b.is_ascii_digit() {
            return self.number();
        }
        if is_ident_start(b) {
            let lo = self.pos;
            while is_ident_continue(self.peek_at(0)) {
                self.pos += 1;
            }
            // The slice is ASCII by construction.
            let word = std::str::from_utf8(&self.text[lo..self.pos]).unwrap_or("");
            return Ok(match Keyword::from_str(word) {
                Some(k) => TokenKind::Keyword(k),
                None => TokenKind::Ident(word.to_string()),
            });
        }
        if b == b'"' {
            return self.string();
        }
        self.punct()
    }

    /// `hh:hh:hh:hh:hh:hh`, not followed by an identifier character or another `:`.
    fn mac_literal(&mut self) -> Option<[u8; 6]> {
        let len = 17;
        let s = self.text.get(self.pos..self.pos + len)?;
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            let hi = (s[3 * i] as char).to_digit(16)?;
            let lo = (s[3 * i + 1] as char).to_digit(16)?;
            if i < 5 && s[3 * i + 2] != b':' {
                return None;
            }
            *byte = (hi * 16 + lo) as u8;
        }
        let next = self.text.get(self.pos + len).copied().unwrap_or(0);
        if is_ident_continue(next) || next == b':' {
            return None;
        }
        self.pos += len;
        Some(mac)
    }

    fn number(&mut self) -> Result<TokenKind, Diagnostic> {
        let lo = self.pos;
        let value = self.integer()?;
        // IPv4: four decimal parts separated by dots.
        if self.peek_at(0) == b'.' && self.peek_at(1).is_ascii_digit() {
            let mut parts = vec![value];
            while self.peek_at(0) == b'.' && self.peek_at(1).is_ascii_digit() {
                self.pos += 1;
                parts.push(self.integer()?);
            }
            let text = String::from_utf8_lossy(&self.text[lo..self.pos]).to_string();
            if parts.len() != 4 || parts.iter().any(|&p| p > 255) {
                return Err(self.err(
                    lo,
                    self.pos,
                    format!("expected an IPv4 address such as `10.0.0.1`, found `{text}`"),
                ));
            }
            let addr = parts.iter().fold(0u32, |acc, &p| (acc << 8) | p as u32);
            return Ok(TokenKind::Ip4(addr));
        }
        // Duration units.
        if is_ident_start(self.peek_at(0)) {
            let ulo = self.pos;
            while is_ident_continue(self.peek_at(0)) {
                self.pos += 1;
            }
            let unit = String::from_utf8_lossy(&self.text[ulo..self.pos]).to_string();
            let scale: u64 = match unit.as_str() {
                "ns" => 1,
                "us" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                _ => {
                    return Err(self.err(
                        ulo,
                        self.pos,
                        format!(
                            "expected a duration unit (`ns`, `us`, `ms` or `s`) after the \
                             number, found `{unit}`"
                        ),
                    ))
                }
            };
            return match value.checked_mul(scale) {
                Some(ns) => Ok(TokenKind::Duration(ns)),
                None => Err(self.err(
                    lo,
                    self.pos,
                    "duration too large: it must fit in u64 nanoseconds",
                )),
            };
        }
        Ok(TokenKind::Int(value))
    }

    /// Decimal or `0x` hex digits with `_` separators.
    fn integer(&mut self) -> Result<u64, Diagnostic> {
        let lo = self.pos;
        let hex = self.peek_at(0) == b'0' && matches!(self.peek_at(1), b'x' | b'X');
        if hex {
            self.pos += 2;
        }
        let radix = if hex { 16 } else { 10 };
        let mut value: u64 = 0;
        let mut digits = 0;
        let mut overflow = false;
        loop {
            let c = self.peek_at(0);
            if c == b'_' {
                self.pos += 1;
                continue;
            }
            let Some(d) = (c as char).to_digit(radix) else {
                break;
            };
            // A decimal number followed by hex letters is not a number of ours.
            match value
                .checked_mul(radix as u64)
                .and_then(|v| v.checked_add(d as u64))
            {
                Some(v) => value = v,
                None => overflow = true,
            }
            digits += 1;
            self.pos += 1;
        }
        if digits == 0 {
            return Err(self.err(lo, self.pos, "expected hex digits after `0x`"));
        }
        if overflow {
            return Err(self.err(lo, self.pos, "integer literal too large for u64"));
        }
        Ok(value)
    }

    fn string(&mut self) -> Result<TokenKind, Diagnostic> {
        let lo = self.pos;
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.text.get(self.pos) {
                None | Some(b'\n') => {
                    return Err(self.err(lo, lo + 1, "unterminated string: expected `\"`"))
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    return Err(self.err(
                        self.pos,
                        self.pos + 1,
                        "escapes are not supported in strings",
                    ))
                }
                Some(_) => self.pos += 1,
            }
        }
        let s = String::from_utf8_lossy(&self.text[start..self.pos]).to_string();
        self.pos += 1;
        Ok(TokenKind::Str(s))
    }

    fn punct(&mut self) -> Result<TokenKind, Diagnostic> {
        use Punct::*;
        let (p, len) = match (self.peek_at(0), self.peek_at(1)) {
            (b'<', b'<') => (Shl, 2),
            (b'>', b'>') => (Shr, 2),
            (b'<', b'=') => (Le, 2),
            (b'>', b'=') => (Ge, 2),
            (b'=', b'=') => (EqEq, 2),
            (b'!', b'=') => (Ne, 2),
            (b'&', b'&') => (AmpAmp, 2),
            (b'|', b'|') => (PipePipe, 2),
            (b'{', _) => (LBrace, 1),
            (b'}', _) => (RBrace, 1),
            (b'(', _) => (LParen, 1),
            (b')', _) => (RParen, 1),
            (b'<', _) => (Lt, 1),
            (b'>', _) => (Gt, 1),
            (b'=', _) => (Eq, 1),
            (b',', _) => (Comma, 1),
            (b';', _) => (Semi, 1),
            (b':', _) => (Colon, 1),
            (b'.', _) => (Dot, 1),
            (b'+', _) => (Plus, 1),
            (b'-', _) => (Minus, 1),
            (b'*', _) => (Star, 1),
            (b'/', _) => (Slash, 1),
            (b'%', _) => (Percent, 1),
            (b'&', _) => (Amp, 1),
            (b'|', _) => (Pipe, 1),
            (b'^', _) => (Caret, 1),
            (b'!', _) => (Bang, 1),
            _ => {
                let lo = self.pos;
                let rest = &self.src.text[lo.min(self.src.text.len())..];
                let c = rest.chars().next().unwrap_or('\0');
                return Err(self.err(
                    lo,
                    lo + c.len_utf8(),
                    format!("unexpected character `{}`", c.escape_default()),
                ));
            }
        };
        self.pos += len;
        Ok(TokenKind::Punct(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        let f = SourceFile::new(FileId(0), "t.nf", s);
        tokenize(&f).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn literals() {
        assert_eq!(
            kinds("10.0.0.1 01:23:45:67:89:ab ff:ff:ff:ff:ff:ff 65_536 0xFFFF 100s 250ms"),
            vec![
                TokenKind::Ip4(0x0a000001),
                TokenKind::Mac([1, 0x23, 0x45, 0x67, 0x89, 0xab]),
                TokenKind::Mac([0xff; 6]),
                TokenKind::Int(65536),
                TokenKind::Int(0xffff),
                TokenKind::Duration(100_000_000_000),
                TokenKind::Duration(250_000_000),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn field_access_is_not_an_address() {
        assert_eq!(
            kinds("a.b"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Punct(Punct::Dot),
                TokenKind::Ident("b".into()),
                TokenKind::Eof
            ]
        );
    }
}
