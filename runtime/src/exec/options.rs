//! The `--name VALUE`, `--name=VALUE` and `--flag` command lines of generated binaries:
//! one parser and one help layout for the runtime's commands (`run`, `record`, `info`)
//! and for `maestro-dpdk`'s `dpdk`, which sits above the runtime.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// One `--name [VALUE]` a command accepts.
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    pub name: &'static str,
    /// The value's placeholder; `None` for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// An option that takes a value.
pub const fn opt(name: &'static str, value: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: Some(value),
        help,
    }
}

/// An option without a value.
pub const fn flag(name: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        name,
        value: None,
        help,
    }
}

/// The options of one command line.
#[derive(Debug, Default)]
pub struct Options {
    values: HashMap<&'static str, String>,
    flags: HashSet<&'static str>,
}

impl Options {
    /// The value given to `--name`, if any.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
}

/// Parses `args` against `specs`: `Ok(None)` for `-h`/`--help`, else the options, or the
/// message of a usage error. The word after an option that takes a value is its value
/// unless it is another of the command's options (so `--eal "--no-huge -m 256"` works
/// and `--pcap --json` is a missing value).
pub fn parse(command: &str, specs: &[OptSpec], args: &[String]) -> Result<Option<Options>, String> {
    let names_an_option = |word: &str| {
        word.strip_prefix("--").is_some_and(|body| {
            let name = body.split_once('=').map_or(body, |(n, _)| n);
            name == "help" || specs.iter().any(|s| s.name == name)
        })
    };
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            return Err(format!("unknown option `--{name}` for `{command}`"));
        };
        match (spec.value, inline) {
            (None, Some(_)) => return Err(format!("`--{name}` takes no value")),
            (None, None) => {
                o.flags.insert(spec.name);
            }
            (Some(placeholder), inline) => {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .filter(|v| !names_an_option(v))
                        .cloned()
                        .ok_or_else(|| {
                            format!("`--{name}` needs a value: --{name} {placeholder}")
                        })?,
                };
                if o.values.insert(spec.name, v).is_some() {
                    return Err(format!("`--{name}` is given twice"));
                }
            }
        }
    }
    Ok(Some(o))
}

/// The options part of a command's help: each option with its placeholder, then its
/// help indented below, and `--help` last.
pub fn describe(specs: &[OptSpec]) -> String {
    let mut s = String::new();
    for spec in specs {
        let left = match spec.value {
            Some(v) => format!("--{} {v}", spec.name),
            None => format!("--{}", spec.name),
        };
        let _ = writeln!(s, "  {left}\n      {}", spec.help);
    }
    let _ = writeln!(s, "  --help\n      print this help");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[OptSpec] = &[
        opt("eal", "\"ARGS\"", "EAL arguments"),
        opt("out", "FILE", "output"),
        flag("json", "JSON"),
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_flags_and_help() {
        let o = parse(
            "x",
            SPECS,
            &words(&["--eal", "--no-huge -m 256", "--out=a", "--json"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.value("eal"), Some("--no-huge -m 256"));
        assert_eq!(o.value("out"), Some("a"));
        assert!(o.flag("json") && !o.flag("out"));
        assert!(parse("x", SPECS, &words(&["--json", "-h"]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn usage_errors_name_the_option() {
        for (w, needle) in [
            (&["--out"][..], "`--out` needs a value: --out FILE"),
            (&["--out", "--json"][..], "`--out` needs a value"),
            (&["--out", "--help"][..], "`--out` needs a value"),
            (&["--json=1"][..], "`--json` takes no value"),
            (&["--out", "a", "--out", "b"][..], "`--out` is given twice"),
            (&["--bogus"][..], "unknown option `--bogus` for `x`"),
            (&["stray"][..], "unexpected argument `stray`"),
        ] {
            let e = parse("x", SPECS, &words(w)).unwrap_err();
            assert!(e.contains(needle), "{w:?}: {e}");
        }
    }

    #[test]
    fn help_lists_every_option_and_help() {
        let d = describe(SPECS);
        assert!(d.contains("  --eal \"ARGS\"\n      EAL arguments"));
        assert!(d.contains("  --json\n      JSON"));
        assert!(d.ends_with("  --help\n      print this help\n"));
    }
}
