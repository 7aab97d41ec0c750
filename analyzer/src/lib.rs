//! The maestro NF language front end.
//!
//! [`load_nf`] and [`parse_and_check`] turn an NF source into a checked [`NfProgram`]:
//! names resolved to slots and ids, every expression typed, config values and state
//! parameters evaluated (after `--set` overrides), `map` init files loaded. The language
//! is defined in `docs/nf-language.md`.

pub mod lang;
pub mod sym;

pub use lang::diag::{Diagnostic, LoadError, SourceFile, Span};
pub use lang::ir::*;
pub use lang::ops::Builtin;
pub use lang::types::{IntTy, RecordDef, RecordId, Type, Value};
pub use sym::paths::{Decision, PathSet, PathTrace};
pub use sym::{analyze, analyze_with, Analysis, AnalysisError, AnalyzeOptions, PacketClass};

use lang::diag::FileId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads an NF: `path` is either a `.nf` file or an NF folder, which must hold a single
/// `*.nf` file or `<folder-name>.nf`. `overrides` are `--set NAME=VALUE` pairs naming
/// config parameters or devices. Relative `file` configs resolve against the NF's folder.
pub fn load_nf(path: &Path, overrides: &[(String, String)]) -> Result<NfProgram, LoadError> {
    let file = find_source(path)?;
    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
        path: file.clone(),
        source,
    })?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_and_check(&file.display().to_string(), &text, overrides, Some(&base))
}

fn find_source(path: &Path) -> Result<PathBuf, LoadError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(LoadError::NoSource {
                path: path.to_path_buf(),
                reason: "no such file or folder (expected an NF folder or a .nf file)".into(),
            });
        }
        return Ok(path.to_path_buf());
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut nfs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "nf"))
        .collect();
    nfs.sort();
    match nfs.len() {
        0 => Err(LoadError::NoSource {
            path: path.to_path_buf(),
            reason: "no `.nf` file in this folder".into(),
        }),
        1 => Ok(nfs.remove(0)),
        _ => {
            let folder = path
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_default();
            let wanted = path.join(format!("{folder}.nf"));
            if wanted.is_file() {
                Ok(wanted)
            } else {
                let names: Vec<String> = nfs
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                    .collect();
                Err(LoadError::NoSource {
                    path: path.to_path_buf(),
                    reason: format!(
                        "several .nf files ({}) and none named `{folder}.nf`; name the file",
                        names.join(", ")
                    ),
                })
            }
        }
    }
}

/// Parses and checks one NF source. `file_name` is used in messages; `base_dir` resolves
/// relative `file` config values (the current directory when `None`).
pub fn parse_and_check(
    file_name: &str,
    source: &str,
    overrides: &[(String, String)],
    base_dir: Option<&Path>,
) -> Result<NfProgram, LoadError> {
    let src = Arc::new(SourceFile::new(FileId(0), file_name, source));
    let module = lang::parser::parse(&src).map_err(|d| LoadError::Source(vec![d]))?;
    lang::check::check(&module, src, overrides, base_dir)
}
