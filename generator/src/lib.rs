//! Code generation: turns a checked [`NfProgram`] into Rust source that runs on
//! `maestro-runtime` with exactly the reference interpreter's semantics.
//!
//! [`generate`] emits one module per NF that implements
//! `maestro_runtime::exec::GeneratedNf`: one implementation serves every strategy (the
//! strategies themselves are runtime code). The module holds one `pub struct Nf` whose
//! fields are the NF's state objects with concrete key and value types (one Rust struct
//! per NF record), config values and devices baked in as constants, a `process` method
//! that mirrors the NF's control flow, its read-only twin `process_read` for the `locks`
//! strategy, and `with_shards` for the per-core state of `sn`. Helpers shared by every
//! NF live in [`SUPPORT_SOURCE`], emitted once per crate as `crate::support`.
//! [`write_crate`] writes a standalone crate around it whose binary is the runtime's
//! driver, plus, with the cargo feature `dpdk`, a `dpdk` command that runs the NF on DPDK
//! through `maestro-dpdk`'s driver (an optional dependency: without the feature the
//! binary links the runtime alone).
//!
//! Correctness is established by `generator/equiv-tests`, which compiles the generated
//! code of every library NF and compares it packet by packet with the interpreter.

mod emit;
mod info;
mod names;

pub use info::{renamed_fields, sharded, Renamed};

use maestro_analyzer::NfProgram;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The helpers generated NFs import as `crate::support` (see `src/support.rs`).
pub const SUPPORT_SOURCE: &str = include_str!("support.rs");

/// Why an NF could not be turned into Rust.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A construct the generator cannot express (an ill-typed hand-built program, or a
    /// feature not supported yet).
    #[error("{location}: cannot generate code for {construct}: {reason}")]
    Unsupported {
        /// `file:line:col` in the NF source.
        location: String,
        construct: String,
        reason: String,
    },
    /// Writing the generated crate failed.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Code generation switches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenOptions {
    /// A deliberately wrong variant for the checker's self-test (`maestro verify
    /// --mutants`): every expiry uses `now + 1`, so entries exactly at the threshold are
    /// freed one nanosecond early. Never use it for anything else.
    pub expiry_off_by_one: bool,
}

/// Generates one NF as a Rust module implementing `maestro_runtime::exec::GeneratedNf`.
///
/// The module expects `crate::support` to be [`SUPPORT_SOURCE`] and a dependency on
/// `maestro-runtime`. The text is formatted with `rustfmt` when it is on the `PATH`
/// (otherwise it is indented by a simple brace counter).
pub fn generate(program: &NfProgram, options: &GenOptions) -> Result<String, GenError> {
    let raw = emit::Emitter::new(program, options)?.module()?;
    Ok(format_source(&raw))
}

/// [`generate`] with the default options (the correct NF).
pub fn generate_seq(program: &NfProgram) -> Result<String, GenError> {
    generate(program, &GenOptions::default())
}

/// Formats Rust source with `rustfmt` if available, else re-indents it.
pub fn format_source(src: &str) -> String {
    rustfmt(src).unwrap_or_else(|| reindent(src))
}

fn rustfmt(src: &str) -> Option<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let text = src.to_string();
    // Write from a thread so a large output cannot dead-lock against a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// Indents by brace depth: the fallback when `rustfmt` is missing.
fn reindent(src: &str) -> String {
    let mut out = String::new();
    let mut depth: usize = 0;
    for line in src.lines() {
        let t = line.trim();
        if t.starts_with('}') || t.starts_with(')') {
            depth = depth.saturating_sub(1);
        }
        if !t.is_empty() {
            out.push_str(&"    ".repeat(depth));
        }
        out.push_str(t);
        out.push('\n');
        let opens = t.matches(['{', '(']).count();
        let closes = t.matches(['}', ')']).count();
        let lead = usize::from(t.starts_with('}') || t.starts_with(')'));
        depth = (depth + opens).saturating_sub(closes - lead.min(closes));
    }
    out
}

/// Options of a standalone generated crate.
#[derive(Clone, Debug)]
pub struct CrateOptions {
    /// The package name (`<nf>-<strategy>` by default in `maestro generate`).
    pub package: String,
    /// Path of the `maestro-runtime` crate, as written in the generated `Cargo.toml`.
    /// `maestro-dpdk` (the optional dependency of the `dpdk` feature) is taken from the
    /// `dpdk` folder next to it, as in maestro's workspace ([`dpdk_path`]).
    pub runtime_path: PathBuf,
    /// The strategy the binary runs when its command line names none (`seq`, `sn`,
    /// `locks` or `tm`); every strategy stays available with `--strategy`.
    pub default_strategy: String,
    pub gen: GenOptions,
}

/// The strategy names a generated binary accepts.
pub const STRATEGIES: [&str; 4] = ["seq", "sn", "locks", "tm"];

/// Where a generated crate finds `maestro-dpdk`: the `dpdk` folder next to the runtime
/// (maestro's workspace layout); `None` when it is not there, in which case the crate's
/// `dpdk` feature stops the build with a message instead of a dependency.
pub fn dpdk_path(runtime_path: &Path) -> Option<PathBuf> {
    let dir = runtime_path.parent()?.join("dpdk");
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// Forward slashes, as Cargo.toml paths are written.
fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

/// Writes a standalone crate: `Cargo.toml` (a workspace of its own), `src/lib.rs`,
/// `src/nf.rs` (the NF), `src/support.rs` and `src/main.rs` (the runtime's driver for
/// this NF, every strategy; the default one from `options`).
pub fn write_crate(
    program: &NfProgram,
    out: &Path,
    options: &CrateOptions,
) -> Result<Vec<PathBuf>, GenError> {
    if !STRATEGIES.contains(&options.default_strategy.as_str()) {
        return Err(GenError::Unsupported {
            location: program.source.name.clone(),
            construct: format!("the default strategy `{}`", options.default_strategy),
            reason: format!("use one of {}", STRATEGIES.join(", ")),
        });
    }
    let nf = generate(program, &options.gen)?;
    let runtime = toml_path(&options.runtime_path);
    let dpdk = dpdk_path(&options.runtime_path);
    let (dpdk_dep, dpdk_feature) = match &dpdk {
        Some(dir) => (
            format!(
                "# With `--features dpdk`: the `dpdk` command (needs DPDK 22.11: libdpdk-dev).\n\
                 maestro-dpdk = {{ path = \"{}\", optional = true }}\n",
                toml_path(dir)
            ),
            "dpdk = [\"dep:maestro-dpdk\"]",
        ),
        None => (String::new(), "dpdk = []"),
    };
    let cargo = format!(
        "[package]\nname = \"{pkg}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\
         description = \"The `{nf}` NF (seq, sn, locks, tm), generated by maestro\"\n\n\
         # A workspace of its own, so the crate builds wherever it is written.\n[workspace]\n\n\
         [dependencies]\nmaestro-runtime = {{ path = \"{runtime}\" }}\n{dpdk_dep}\n\
         [features]\n{dpdk_feature}\n\n\
         [profile.release]\ndebug = 1\ncodegen-units = 1\nlto = \"thin\"\n",
        pkg = options.package,
        nf = program.name,
    );
    let lib = format!(
        "//! The `{nf}` NF ({desc}). Generated by `maestro generate`:\n\
         //! do not edit; regenerate from the NF source instead.{mutant}\n\n\
         pub mod nf;\npub mod support;\n\npub use nf::*;\n",
        nf = program.name,
        desc = program.description.replace('\n', " "),
        mutant = if options.gen.expiry_off_by_one {
            "\n//! MUTANT: expiry off by one (see `nf.rs`); for the checker's self-test only."
        } else {
            ""
        }
    );
    let main = format_source(&main_source(
        program,
        &options.package.replace('-', "_"),
        &options.default_strategy,
        dpdk.is_some(),
    ));
    let files = [
        ("Cargo.toml", cargo),
        ("src/lib.rs", lib),
        ("src/nf.rs", nf),
        ("src/support.rs", SUPPORT_SOURCE.to_string()),
        ("src/main.rs", main),
    ];
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| GenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| GenError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// `src/main.rs` of a standalone crate: the runtime's driver, run for this NF, and with
/// the `dpdk` feature maestro-dpdk's driver for `<nf> dpdk`. The drivers have no notion
/// of a default strategy, so `main` inserts `--strategy <default>` into `run`, `record`
/// and `dpdk` command lines that name none. Without the feature, `dpdk` says how to get
/// it (exit code 2).
fn main_source(program: &NfProgram, crate_name: &str, strategy: &str, has_dpdk: bool) -> String {
    let missing = if has_dpdk {
        String::new()
    } else {
        "\n#[cfg(feature = \"dpdk\")]\ncompile_error!(\"maestro-dpdk was not found next to the \
         runtime when this crate was generated (it looks for `dpdk/` beside `runtime/`): \
         regenerate it from a maestro checkout\");\n"
            .to_string()
    };
    format!(
        r#"//! The `{nf}` NF as a program: the runtime's driver (`run`, `record`, `info`; see
//! `--help`) and, built with `--features dpdk`, `dpdk` (the NF on DPDK lcores and ports;
//! see `dpdk --help`). `run`, `record` and `dpdk` use the strategy `{strategy}` unless
//! the command line names one with `--strategy`.

use std::process::ExitCode;

use maestro_runtime::exec::driver::{{CliOutput, DriverError}};

/// The strategy `maestro generate --strategy` chose for this binary.
const DEFAULT_STRATEGY: &str = "{strategy}";
{missing}
fn main() -> ExitCode {{
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().cloned().unwrap_or_default();
    let runs = matches!(command.as_str(), "run" | "record" | "dpdk");
    let named = args
        .iter()
        .any(|a| a == "--strategy" || a.starts_with("--strategy="));
    if runs && !named {{
        args.insert(1, format!("--strategy={{DEFAULT_STRATEGY}}"));
    }}
    let result = if command == "dpdk" {{
        dpdk(&args[1..])
    }} else {{
        maestro_runtime::exec::driver::run_cli::<{crate_name}::Nf>(&args)
    }};
    match result {{
        Ok(out) => {{
            for w in &out.warnings {{
                eprintln!("warning: {{w}}");
            }}
            print!("{{}}", out.stdout);
            ExitCode::SUCCESS
        }}
        Err(e) => {{
            eprintln!("error: {{e}}");
            ExitCode::from(e.exit_code())
        }}
    }}
}}

/// `{nf} dpdk ...`: maestro-dpdk's driver.
#[cfg(feature = "dpdk")]
fn dpdk(args: &[String]) -> Result<CliOutput, DriverError> {{
    maestro_dpdk::driver::run_cli::<{crate_name}::Nf>(args)
}}

/// `{nf} dpdk ...` in a build without DPDK: how to get one.
#[cfg(not(feature = "dpdk"))]
fn dpdk(_args: &[String]) -> Result<CliOutput, DriverError> {{
    Err(DriverError::Input(
        "`{nf} dpdk` is not in this build: it was compiled without the `dpdk` feature. \
         Rebuild it with `cargo build --release --features dpdk` (needs DPDK 22.11: \
         `apt-get install libdpdk-dev libclang-dev pkg-config`), or let maestro build and \
         run it: `maestro run <NF> --backend dpdk --eal \"EAL ARGS\" --strategy S --cores N`"
            .to_string(),
    ))
}}
"#,
        nf = program.name,
    )
}

#[cfg(test)]
#[allow(dead_code)]
#[path = "support.rs"]
mod support;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn nf_dir(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../nfs")
            .join(name)
    }

    #[test]
    fn every_library_nf_generates() {
        for nf in [
            "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
        ] {
            let program = maestro_analyzer::load_nf(&nf_dir(nf), &[]).expect("library NF loads");
            let src = super::generate_seq(&program).expect("generates");
            assert!(src.contains("pub struct Nf"), "{nf}");
            assert!(src.contains("pub fn process"), "{nf}");
            assert!(src.contains("impl GeneratedNf for Nf"), "{nf}");
            assert!(!src.contains("MUTANT"), "{nf}");
            let mutant = super::generate(
                &program,
                &super::GenOptions {
                    expiry_off_by_one: true,
                },
            )
            .expect("generates");
            assert!(mutant.contains("MUTANT"), "{nf}");
            // The mutant differs exactly where the NF expires something.
            assert_eq!(
                mutant.contains("now.saturating_add(1)"),
                src.contains(".expire(now)"),
                "{nf}"
            );
        }
    }

    #[test]
    fn hash_feeding_matches_the_interpreter_rules() {
        use super::support::{hash_of, FeedHash};
        use maestro_runtime::hash::StructHasher;
        // u16 0x1234 hashes as the word 0x3412; a u64 as two words, high half first.
        let mut h = StructHasher::new();
        h.word(0x3412);
        assert_eq!(hash_of(&0x1234u16), h.finish());
        let mut h = StructHasher::new();
        h.word(0x0403_0201);
        h.word(0x0807_0605);
        assert_eq!(hash_of(&0x0102_0304_0506_0708u64), h.finish());
        let mut h = StructHasher::new();
        (7u8, true).feed(&mut h);
        let mut g = StructHasher::new();
        g.word(7);
        g.word(1);
        assert_eq!(h.finish(), g.finish());
    }
}
