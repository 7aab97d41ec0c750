//! Source positions and error reporting.
//!
//! Every token and AST node carries a [`Span`] (byte offsets into one [`SourceFile`]).
//! Spans are resolved to `line:col` only when an error is reported or a fault is
//! described, so the hot paths never pay for it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Which source file a span points into. An NF is a single file today; the id leaves room
/// for the `map` init files and for future includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// A half-open byte range `[lo, hi)` in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub fn new(file: FileId, lo: usize, hi: usize) -> Span {
        Span {
            file,
            lo: lo as u32,
            hi: hi as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }
}

/// One source text with its line table.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// The name used in messages (`fw.nf`, or the path given by the user).
    pub name: String,
    pub text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(id: FileId, name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        SourceFile {
            id,
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let offset = offset.min(self.text.len() as u32);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() as u32 + 1;
        (line as u32 + 1, col)
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: u32) -> &str {
        let i = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(i) else {
            return "";
        };
        let end = self
            .line_starts
            .get(i + 1)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }

    /// The source text under a span.
    pub fn snippet(&self, span: Span) -> &str {
        let lo = (span.lo as usize).min(self.text.len());
        let hi = (span.hi as usize).clamp(lo, self.text.len());
        self.text.get(lo..hi).unwrap_or("")
    }

    /// Builds a diagnostic for `span`.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(span.lo);
        let width = self
            .snippet(span)
            .chars()
            .take_while(|&c| c != '\n')
            .count();
        Diagnostic {
            file: self.name.clone(),
            line,
            col,
            message: message.into(),
            source_line: self.line_text(line).to_string(),
            width: width.max(1) as u32,
        }
    }
}

/// One error with its resolved position, ready to print:
///
/// ```text
/// fw.nf:12:5: error: expected `;`, found `}`
///    |     let x = 1
///    |              ^
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
    pub message: String,
    /// The whole source line the error points into (empty when there is none, as for
    /// `--set` errors).
    pub source_line: String,
    /// How many characters the caret underlines.
    pub width: u32,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )?;
        if !self.source_line.is_empty() {
            // Tabs keep their width so that the caret lines up.
            let pad: String = self
                .source_line
                .chars()
                .take(self.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n   | {}\n   | {}{}",
                self.source_line,
                pad,
                "^".repeat(self.width.min(80) as usize)
            )?;
        }
        Ok(())
    }
}

/// Everything that can go wrong while loading an NF.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path names no NF source (e.g. a folder without a `.nf` file).
    #[error("{}: {reason}", path.display())]
    NoSource { path: PathBuf, reason: String },
    /// Syntax or type errors, with positions (at least one).
    #[error("{}", render(.0))]
    Source(Vec<Diagnostic>),
    /// A `--set NAME=VALUE` that names nothing or whose value does not parse.
    #[error("--set {name}={value}: {reason}")]
    Override {
        name: String,
        value: String,
        reason: String,
    },
}

impl LoadError {
    /// The positioned diagnostics, when the error comes from a source or init file.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Source(d) => d,
            _ => &[],
        }
    }
}

fn render(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    if diags.len() > 1 {
        out.push_str(&format!("\n{} errors", diags.len()));
    }
    out
}

/// A shared handle on a source file, kept by the checked program so that later stages
/// (interpreter faults, symbolic execution reports) can name source positions.
pub type SharedSource = Arc<SourceFile>;
