//! `map(..., init: FILE)` entry files.
//!
//! One entry per line: the key's fields then the value's fields, flattened in declaration
//! order (nested records included), separated by white space; `#` starts a comment.
//! Parsed at load time, so that a bad file is reported before any packet is processed.

use super::diag::{Diagnostic, FileId, SourceFile, Span};
use super::types::{parse_scalar_literal, RecordDef, Type, Value};
use std::collections::HashMap;
use std::path::Path;

pub enum InitError {
    /// The file could not be read (message names the file).
    Io(String),
    /// Positioned errors in the file.
    Diags(Vec<Diagnostic>),
}

/// The scalar leaves of a type, in declaration order.
fn leaves(ty: Type, records: &[RecordDef], out: &mut Vec<(String, Type)>, prefix: &str) {
    match ty {
        Type::Record(id) => {
            if let Some(r) = records.get(id.0 as usize) {
                for (n, t) in &r.fields {
                    let name = if prefix.is_empty() {
                        n.clone()
                    } else {
                        format!("{prefix}.{n}")
                    };
                    leaves(*t, records, out, &name);
                }
            }
        }
        t => out.push((prefix.to_string(), t)),
    }
}

/// Rebuilds a value of `ty` from its leaves.
fn assemble(ty: Type, records: &[RecordDef], it: &mut impl Iterator<Item = Value>) -> Value {
    match ty {
        Type::Record(id) => {
            let fields = records
                .get(id.0 as usize)
                .map(|r| {
                    r.fields
                        .iter()
                        .map(|(_, t)| assemble(*t, records, it))
                        .collect()
                })
                .unwrap_or_default();
            Value::Record(fields)
        }
        t => it.next().unwrap_or_else(|| Value::zero(t, records)),
    }
}

pub fn load(
    path: &Path,
    file: FileId,
    key: Type,
    value: Type,
    records: &[RecordDef],
    capacity: u32,
    state: &str,
) -> Result<Vec<(Value, Value)>, InitError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        InitError::Io(format!(
            "cannot read the init file {} of map `{state}`: {e}",
            path.display()
        ))
    })?;
    let src = SourceFile::new(file, path.display().to_string(), text);
    parse(&src, key, value, records, capacity, state).map_err(InitError::Diags)
}

/// Parses the entries of an init file.
pub fn parse(
    src: &SourceFile,
    key: Type,
    value: Type,
    records: &[RecordDef],
    capacity: u32,
    state: &str,
) -> Result<Vec<(Value, Value)>, Vec<Diagnostic>> {
    let mut columns = Vec::new();
    leaves(key, records, &mut columns, "key");
    let key_count = columns.len();
    leaves(value, records, &mut columns, "value");
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();

    let mut errors = Vec::new();
    let mut entries = Vec::new();
    let mut first_line: HashMap<Value, u32> = HashMap::new();
    let mut offset = 0usize;
    for (lineno, raw) in src.text.split('\n').enumerate() {
        let line_start = offset;
        offset += raw.len() + 1;
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        // Tokens with their byte offsets.
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, c) in content
            .char_indices()
            .chain(std::iter::once((content.len(), ' ')))
        {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    tokens.push((s, &content[s..i]));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if tokens.is_empty() {
            continue;
        }
        let span_of =
            |s: usize, len: usize| Span::new(src.id, line_start + s, line_start + s + len);
        if tokens.len() != columns.len() {
            let (s, t) = tokens.get(columns.len()).copied().unwrap_or_else(|| {
                let last = tokens[tokens.len() - 1];
                (last.0 + last.1.len(), "")
            });
            errors.push(src.error(
                span_of(s, t.len()),
                format!(
                    "expected {} fields ({}), found {}",
                    columns.len(),
                    names.join(" "),
                    tokens.len()
                ),
            ));
            continue;
        }
        let mut vals = Vec::with_capacity(columns.len());
        let mut ok = true;
        for ((s, t), (name, ty)) in tokens.iter().zip(&columns) {
            match parse_scalar_literal(t, *ty) {
                Ok(v) => vals.push(v),
                Err(msg) => {
                    errors.push(src.error(span_of(*s, t.len()), format!("field `{name}`: {msg}")));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let mut it = vals.into_iter();
        let k = assemble(key, records, &mut (&mut it).take(key_count));
        let v = assemble(value, records, &mut it);
        let line = lineno as u32 + 1;
        if let Some(prev) = first_line.get(&k) {
            errors.push(src.error(
                span_of(tokens[0].0, tokens[0].1.len()),
                format!("duplicate key: the same key is on line {prev}"),
            ));
            continue;
        }
        first_line.insert(k.clone(), line);
        if entries.len() as u64 >= capacity as u64 {
            errors.push(src.error(
                span_of(tokens[0].0, tokens[0].1.len()),
                format!(
                    "too many entries: map `{state}` has capacity {capacity}, and this is \
                     entry {}",
                    entries.len() + 1
                ),
            ));
            break;
        }
        entries.push((k, v));
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}
