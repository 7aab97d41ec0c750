//! Digests the runtime's sources into `MAESTRO_RUNTIME_DIGEST`, so that a cached build of
//! a generated crate is rebuilt whenever the runtime it links changes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let runtime = manifest.join("../runtime");
    println!("cargo:rerun-if-changed={}", runtime.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        runtime.join("Cargo.toml").display()
    );
    let mut files = vec![runtime.join("Cargo.toml")];
    collect(&runtime.join("src"), &mut files);
    files.sort();
    let mut h = DefaultHasher::new();
    for f in &files {
        f.strip_prefix(&runtime).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    println!("cargo:rustc-env=MAESTRO_RUNTIME_DIGEST={:016x}", h.finish());
    let runtime = runtime.canonicalize().unwrap_or(runtime);
    println!("cargo:rustc-env=MAESTRO_RUNTIME_DIR={}", runtime.display());
}
