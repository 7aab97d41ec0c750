//! Digests the runtime's sources into `MAESTRO_RUNTIME_DIGEST`, so that a cached build of
//! a generated crate is rebuilt whenever the runtime it links changes, and the sources of
//! `maestro-dpdk` and `dpdk-sys` into `MAESTRO_DPDK_DIGEST` for builds with the `dpdk`
//! feature, which link them too.

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

/// Digest of `files` (sorted), named relative to `root`; asks cargo to rerun when they
/// change.
fn digest(root: &Path, mut files: Vec<PathBuf>, watch: &[PathBuf]) -> String {
    for w in watch {
        println!("cargo:rerun-if-changed={}", w.display());
    }
    files.sort();
    let mut h = DefaultHasher::new();
    for f in &files {
        f.strip_prefix(root).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("..");
    let runtime = root.join("runtime");
    let mut files = vec![runtime.join("Cargo.toml")];
    collect(&runtime.join("src"), &mut files);
    let watch = [runtime.join("src"), runtime.join("Cargo.toml")];
    println!(
        "cargo:rustc-env=MAESTRO_RUNTIME_DIGEST={}",
        digest(&runtime, files, &watch)
    );
    // What a `--features dpdk` build compiles besides the runtime (not tests, examples
    // or docs).
    let (dpdk, sys) = (root.join("dpdk"), root.join("dpdk-sys"));
    let mut files = vec![
        dpdk.join("Cargo.toml"),
        sys.join("Cargo.toml"),
        sys.join("build.rs"),
        sys.join("wrapper.h"),
    ];
    collect(&dpdk.join("src"), &mut files);
    collect(&sys.join("src"), &mut files);
    collect(&sys.join("shim"), &mut files);
    let watch = [
        dpdk.join("Cargo.toml"),
        dpdk.join("src"),
        sys.join("Cargo.toml"),
        sys.join("build.rs"),
        sys.join("wrapper.h"),
        sys.join("src"),
        sys.join("shim"),
    ];
    println!(
        "cargo:rustc-env=MAESTRO_DPDK_DIGEST={}",
        digest(&root, files, &watch)
    );
    let runtime = runtime.canonicalize().unwrap_or(runtime);
    println!("cargo:rustc-env=MAESTRO_RUNTIME_DIR={}", runtime.display());
}
