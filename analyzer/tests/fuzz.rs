//! The front end never panics, whatever it is fed.

use maestro_analyzer::parse_and_check;
use proptest::prelude::*;

const FW: &str = include_str!("../../docs/examples/fw.nf");

/// Tokens of the language (and a few of other languages) to build plausible soups.
const VOCAB: &[&str] = &[
    "nf",
    "device",
    "config",
    "record",
    "state",
    "process",
    "let",
    "mut",
    "if",
    "else",
    "parse",
    "ipv4",
    "l4",
    "drop",
    "flood",
    "forward",
    "true",
    "false",
    "as",
    "in",
    "while",
    "for",
    "loop",
    "fn",
    "return",
    "break",
    "continue",
    "pkt",
    "now",
    "eth",
    "ip",
    "src",
    "dst",
    "sport",
    "len",
    "x",
    "y",
    "R",
    "t",
    "table",
    "map",
    "vector",
    "dchain",
    "cht",
    "sketch",
    "sets",
    "get",
    "add",
    "expire",
    "hash",
    "min",
    "mul_div",
    "u8",
    "u16",
    "u32",
    "u64",
    "i64",
    "bool",
    "mac",
    "ip4",
    "file",
    "capacity",
    "ttl",
    "height",
    "backends",
    "init",
    "{",
    "}",
    "(",
    ")",
    "<",
    ">",
    "<=",
    ">=",
    "==",
    "!=",
    "=",
    ",",
    ";",
    ":",
    ".",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "&&",
    "|",
    "||",
    "^",
    "!",
    "<<",
    ">>",
    "0",
    "1",
    "0xFF",
    "65_536",
    "100s",
    "5ms",
    "10.0.0.1",
    "01:23:45:67:89:ab",
    "\"desc\"",
    "\"rules.txt\"",
    "//c\n",
    "/*c*/",
    "#",
    "@",
    "\n",
    "9999999999999999999999",
    "-1",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..60).prop_map(|v| v.join(" "))
}

/// The firewall with a few tokens deleted, duplicated or replaced.
fn mutated_fw() -> impl Strategy<Value = String> {
    let toks: Vec<String> = FW.split_whitespace().map(str::to_string).collect();
    let n = toks.len();
    prop::collection::vec((0..n, 0u8..3, prop::sample::select(VOCAB)), 1..5).prop_map(
        move |edits| {
            let mut t = toks.clone();
            for (i, kind, w) in edits {
                let i = i % t.len().max(1);
                match kind {
                    0 if !t.is_empty() => {
                        t.remove(i);
                    }
                    1 => t.insert(i, w.to_string()),
                    _ => {
                        if let Some(x) = t.get_mut(i) {
                            *x = w.to_string();
                        }
                    }
                }
            }
            t.join(" ")
        },
    )
}

fn deep_nesting() -> impl Strategy<Value = String> {
    (
        1usize..3000,
        prop::sample::select(vec!["(", "!", "-", "{", "if x {"]),
    )
        .prop_map(|(n, s)| {
            format!(
                "nf t \"d\"; device a = 0; process {{ let x = {} 1; drop; }}",
                s.repeat(n)
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic(s in ".{0,200}") {
        let _ = parse_and_check("f.nf", &s, &[], None);
    }

    #[test]
    fn token_soups_never_panic(s in soup()) {
        let _ = parse_and_check("f.nf", &s, &[], None);
        let _ = parse_and_check("f.nf", &format!("nf t \"d\"; device a = 0; process {{ {s} }}"), &[], None);
    }

    #[test]
    fn mutated_programs_never_panic(s in mutated_fw()) {
        if let Err(e) = parse_and_check("f.nf", &s, &[], None) {
            // Every error renders with a position.
            prop_assert!(e.to_string().starts_with("f.nf:"));
        }
    }

    #[test]
    fn random_overrides_never_panic(k in prop::sample::select(vec!["max_flows", "wan", "lan_mac", "expiration_time", "nope"]), v in ".{0,24}") {
        let _ = parse_and_check("f.nf", FW, &[(k.to_string(), v)], None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn deep_nesting_never_overflows(s in deep_nesting()) {
        let _ = parse_and_check("f.nf", &s, &[], None);
    }
}
