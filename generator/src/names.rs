//! Rust names for NF identifiers: no keyword, no clash with the generator's own names.

use std::collections::HashSet;

/// Rust keywords (strict and reserved) that an NF identifier may spell.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "union", "gen",
];

/// Value names the generated `process` uses itself.
const INTERNAL_VALUES: &[&str] = &[
    "packet",
    "view",
    "w",
    "now",
    "index",
    "key",
    "value",
    "elem",
    "support",
    "maestro_runtime",
    "std",
    "core",
    "INSTRUMENTED",
];

/// A snake-case value name for an NF identifier.
pub fn value_name(name: &str) -> String {
    if KEYWORDS.contains(&name) || INTERNAL_VALUES.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// A field name (struct fields live in their own namespace: only keywords matter).
pub fn field_name(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// Upper-case constant names, distinct from each other and from `taken`.
pub fn const_name(name: &str, taken: &mut HashSet<String>) -> String {
    let base = name.to_ascii_uppercase();
    let mut n = base.clone();
    let mut k = 1;
    while KEYWORDS.contains(&n.as_str()) || !taken.insert(n.clone()) {
        n = format!("{base}_{k}");
        k += 1;
    }
    n
}

/// A type name for an NF record, distinct from the generator's own types.
pub fn type_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut n = name.to_string();
    let mut k = 1;
    while KEYWORDS.contains(&n.as_str()) || !taken.insert(n.clone()) {
        n = format!("{name}{k}");
        k += 1;
    }
    n
}
