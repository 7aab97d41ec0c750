//! Builds generated NF crates, cached.
//!
//! `maestro run --strategy` and `maestro verify` run the generated code itself, so they
//! compile it first. A build is keyed by a digest of every file of the generated crate
//! (which covers the NF, its config, the generator version and any mutant option) and of
//! the runtime's sources at the time this crate was compiled, so an unchanged NF is never
//! rebuilt and a changed runtime always is. Cargo features are part of the key too: a
//! build with [`DPDK_FEATURE`] (the generated binary's `dpdk` command) is its own cache
//! entry, keyed also by the sources of `maestro-dpdk` and `dpdk-sys`. All builds share
//! one cargo target directory in the cache, so the runtime and its dependencies compile
//! once.
//!
//! Layout of the cache (`$MAESTRO_CACHE`, else `$XDG_CACHE_HOME/maestro`, else
//! `~/.cache/maestro`):
//! - `builds/<package>-<key>/`: the crate sources, and once built the binary and `built.ok`;
//! - `target/`: the shared cargo target directory;
//! - `staging/`: crates being written.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Digest of the runtime sources this crate was compiled with.
pub const RUNTIME_DIGEST: &str = env!("MAESTRO_RUNTIME_DIGEST");

/// Digest of the `maestro-dpdk` and `dpdk-sys` sources this crate was compiled with.
pub const DPDK_DIGEST: &str = env!("MAESTRO_DPDK_DIGEST");

/// The cargo feature of generated crates that adds the `dpdk` command (and links
/// `maestro-dpdk`, hence DPDK).
pub const DPDK_FEATURE: &str = "dpdk";

/// Part of every cache key. Version 2: caches of version 1 may hold another version's
/// binary under a crate's key (see [`touch_files`]), so none of them is reused.
const CACHE_VERSION: u32 = 2;

/// Why a generated crate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "cannot use the build cache at {path}: {source} (set MAESTRO_CACHE to a writable folder)"
    )]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the generated crate: {0}")]
    Write(String),
    #[error(
        "cannot start cargo ({cargo}): {source}; is the Rust toolchain installed and on PATH?"
    )]
    Cargo {
        cargo: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the generated crate in {dir} does not compile (a generator bug; please report it with this output):\n{output}")]
    Compile { dir: PathBuf, output: String },
    #[error("cargo built {dir} but the binary {binary} is missing")]
    NoBinary { dir: PathBuf, binary: PathBuf },
}

/// A built generated crate.
#[derive(Clone, Debug)]
pub struct Built {
    /// The executable (a copy private to this build).
    pub binary: PathBuf,
    /// The crate's folder in the cache.
    pub crate_dir: PathBuf,
    /// Whether the build came from the cache.
    pub cached: bool,
    /// The cache key.
    pub key: String,
}

/// Builds generated crates into a cache.
#[derive(Clone, Debug)]
pub struct Builder {
    cache: PathBuf,
    progress: bool,
}

impl Builder {
    /// A builder over `cache`, or the default cache folder.
    pub fn new(cache: Option<PathBuf>) -> Builder {
        Builder {
            cache: cache.unwrap_or_else(default_cache),
            progress: true,
        }
    }

    /// Turns the compile progress display (on stderr, only on a terminal) on or off.
    pub fn with_progress(mut self, on: bool) -> Builder {
        self.progress = on;
        self
    }

    /// The cache folder.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// The runtime crate that generated crates depend on (this checkout's `runtime/`).
    pub fn runtime_dir() -> PathBuf {
        PathBuf::from(env!("MAESTRO_RUNTIME_DIR"))
    }

    /// Writes a crate with `write` (into an empty folder it is given), then returns its
    /// built `package` binary: from the cache when an identical crate was built before.
    pub fn build<F>(&self, package: &str, write: F) -> Result<Built, BuildError>
    where
        F: FnOnce(&Path) -> Result<(), String>,
    {
        self.build_with_features(package, &[], write)
    }

    /// [`Builder::build`] with cargo `features` on (`cargo build --features ...`). The
    /// features are part of the cache key, so the same crate with and without them are
    /// two cache entries; with [`DPDK_FEATURE`] the key also covers `maestro-dpdk` and
    /// `dpdk-sys`.
    pub fn build_with_features<F>(
        &self,
        package: &str,
        features: &[&str],
        write: F,
    ) -> Result<Built, BuildError>
    where
        F: FnOnce(&Path) -> Result<(), String>,
    {
        let mut features: Vec<&str> = features.to_vec();
        features.sort_unstable();
        features.dedup();
        let staging_root = self.cache.join("staging");
        let staging = staging_root.join(format!("{package}-{}-{}", std::process::id(), nanos()));
        create_dir(&staging)?;
        write(&staging).map_err(BuildError::Write)?;
        let key = digest_dir(&staging, &features).map_err(|source| BuildError::Cache {
            path: staging.clone(),
            source,
        })?;
        let dir = self.cache.join("builds").join(format!("{package}-{key}"));
        let binary = dir.join(package);
        let ready = || dir.join("built.ok").is_file() && binary.is_file();
        let cached = |staging: &Path| {
            let _ = std::fs::remove_dir_all(staging);
            Ok(Built {
                binary: binary.clone(),
                crate_dir: dir.clone(),
                cached: true,
                key: key.clone(),
            })
        };
        if ready() {
            return cached(&staging);
        }
        create_dir(&self.cache.join("builds"))?;
        // One build per package name at a time, across threads and processes:
        // - every version of a package is built to the same `target/release/{package}`, so
        //   two versions (an NF under two configs) built at once could each copy the
        //   other's binary between its `cargo build` and its copy;
        // - a second builder of the same version waits here, then finds the first one's
        //   binary, instead of deleting and rewriting a binary the first is already
        //   running ("text file busy").
        let lock_path = self.cache.join("builds").join(format!("{package}.lock"));
        let lock = std::fs::File::create(&lock_path).map_err(|source| BuildError::Cache {
            path: lock_path.clone(),
            source,
        })?;
        lock.lock().map_err(|source| BuildError::Cache {
            path: lock_path.clone(),
            source,
        })?;
        if ready() {
            return cached(&staging);
        }
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::rename(&staging, &dir).is_err() {
            // The folder could not be replaced; build over what is there.
            let _ = std::fs::remove_dir_all(&staging);
        }
        touch_files(&dir).map_err(|source| BuildError::Cache {
            path: dir.clone(),
            source,
        })?;
        self.cargo_build(&dir, package, &features)?;
        let target = self.cache.join("target");
        let built = target.join("release").join(package);
        if !built.is_file() {
            return Err(BuildError::NoBinary { dir, binary: built });
        }
        // Copy, then rename into place: the binary's path never names a half-written
        // file, and a process still running an older copy keeps its own inode.
        let partial = dir.join(format!("{package}.partial-{}", std::process::id()));
        std::fs::copy(&built, &partial)
            .and_then(|_| std::fs::rename(&partial, &binary))
            .map_err(|source| BuildError::Cache {
                path: binary.clone(),
                source,
            })?;
        std::fs::write(dir.join("built.ok"), RUNTIME_DIGEST).map_err(|source| {
            BuildError::Cache {
                path: dir.join("built.ok"),
                source,
            }
        })?;
        drop(lock);
        Ok(Built {
            binary,
            crate_dir: dir,
            cached: false,
            key,
        })
    }

    /// `cargo build --release --offline [--features ...]` with a progress line per
    /// compiled crate.
    fn cargo_build(&self, dir: &Path, package: &str, features: &[&str]) -> Result<(), BuildError> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(&cargo);
        command.args([
            "build",
            "--release",
            "--offline",
            "--message-format",
            "json-render-diagnostics",
        ]);
        if !features.is_empty() {
            command.arg("--features").arg(features.join(","));
        }
        let mut child = command
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", self.cache.join("target"))
            // The generated crate must not inherit flags meant for maestro's own build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BuildError::Cargo {
                cargo: cargo.clone(),
                source,
            })?;
        let bar = self.progress_bar(package);
        let mut stderr = child.stderr.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut rendered = String::new();
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                match msg["reason"].as_str() {
                    Some("compiler-artifact") => {
                        if let Some(name) = msg["target"]["name"].as_str() {
                            bar.inc(1);
                            bar.set_message(format!("compiled {name}"));
                        }
                    }
                    Some("compiler-message") => {
                        if let Some(text) = msg["message"]["rendered"].as_str() {
                            rendered.push_str(text);
                        }
                    }
                    _ => {}
                }
            }
        }
        let status = child.wait().map_err(|source| BuildError::Cargo {
            cargo: cargo.clone(),
            source,
        })?;
        bar.finish_and_clear();
        let stderr = err_reader.join().unwrap_or_default();
        if !status.success() {
            return Err(BuildError::Compile {
                dir: dir.to_path_buf(),
                output: format!("{rendered}{stderr}"),
            });
        }
        Ok(())
    }

    fn progress_bar(&self, package: &str) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} building {prefix} ({pos} crates) {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(package.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("MAESTRO_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("maestro");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("maestro");
    }
    std::env::temp_dir().join("maestro-cache")
}

fn create_dir(path: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(path).map_err(|source| BuildError::Cache {
        path: path.to_path_buf(),
        source,
    })
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Digest of every file under `dir` (relative names and contents), of the runtime, and
/// of the features (sorted) with what they link.
fn digest_dir(dir: &Path, features: &[&str]) -> std::io::Result<String> {
    let files = files_under(dir)?;
    let mut h = DefaultHasher::new();
    CACHE_VERSION.hash(&mut h);
    RUNTIME_DIGEST.hash(&mut h);
    // Nothing is added without features: their keys stay what they were.
    if !features.is_empty() {
        features.hash(&mut h);
        if features.contains(&DPDK_FEATURE) {
            DPDK_DIGEST.hash(&mut h);
        }
    }
    for f in &files {
        f.strip_prefix(dir).unwrap_or(f).hash(&mut h);
        std::fs::read(f)?.hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// Sets the modification time of every file under `dir` to now.
///
/// Cargo keys a build unit of a path package by its path relative to its workspace root,
/// so every version of a generated crate (one NF under two configs) is the same unit in
/// the shared target folder, and cargo decides whether it is fresh by comparing the
/// sources' times with the last build's. A version written while another was building
/// would look older than that build and not be compiled: its binary would be the other
/// version's. Under the package's lock, "now" is after every earlier build of it.
fn touch_files(dir: &Path) -> std::io::Result<()> {
    let now = std::time::SystemTime::now();
    for f in files_under(dir)? {
        std::fs::File::options()
            .write(true)
            .open(&f)?
            .set_modified(now)?;
    }
    Ok(())
}

/// Every file under `dir`, at any depth, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Linux's "text file busy": exec of a file some process holds open for writing.
const ETXTBSY: i32 = 26;

/// Runs `start` (which spawns a binary that may just have been installed) again while it
/// fails with "text file busy". A child that another thread of this process forks holds
/// every descriptor open at that moment until it execs, a freshly written binary's
/// included, and Linux refuses to exec a file open for writing; the window is short, so
/// a few retries close it.
pub fn retry_busy<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    const TRIES: u64 = 50;
    let mut tried = 0;
    loop {
        match start() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tried < TRIES => {
                tried += 1;
                std::thread::sleep(Duration::from_millis(2 * tried));
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_hello(dir: &Path, text: &str) -> Result<(), String> {
        std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"hello-gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("src/main.rs"),
            format!("fn main() {{ println!(\"{text}\"); }}\n"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn builds_once_then_hits_the_cache_and_rebuilds_on_change() {
        let cache = tempfile::tempdir().expect("temp dir");
        let b = Builder::new(Some(cache.path().to_path_buf())).with_progress(false);
        let first = b
            .build("hello-gen", |d| write_hello(d, "one"))
            .expect("builds");
        assert!(!first.cached);
        let out = Command::new(&first.binary).output().expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one");
        let again = b
            .build("hello-gen", |d| write_hello(d, "one"))
            .expect("cached");
        assert!(again.cached);
        assert_eq!(again.key, first.key);
        let changed = b
            .build("hello-gen", |d| write_hello(d, "two"))
            .expect("rebuilds");
        assert!(!changed.cached);
        assert_ne!(changed.key, first.key);
        let out = Command::new(&changed.binary).output().expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "two");
        // The first binary is a private copy: still the old program.
        let out = Command::new(&first.binary).output().expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one");
    }

    #[test]
    fn concurrent_builds_of_one_crate_build_it_once_and_both_run_it() {
        let cache = tempfile::tempdir().expect("temp dir");
        let b = Builder::new(Some(cache.path().to_path_buf())).with_progress(false);
        let builds: Vec<Built> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let built = b
                            .build("hello-gen", |d| write_hello(d, "same"))
                            .expect("builds");
                        // Run it at once, while the others may still be installing.
                        let out =
                            retry_busy(|| Command::new(&built.binary).output()).expect("runs");
                        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "same");
                        built
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        assert_eq!(builds.iter().filter(|b| !b.cached).count(), 1);
        assert!(builds.windows(2).all(|w| w[0].binary == w[1].binary));
    }

    /// Versions of one package built at once each get their own program (they share
    /// the cargo output path, so their builds must not interleave).
    #[test]
    fn concurrent_builds_of_two_versions_keep_them_apart() {
        let cache = tempfile::tempdir().expect("temp dir");
        let b = Builder::new(Some(cache.path().to_path_buf())).with_progress(false);
        std::thread::scope(|s| {
            for round in 0..2 {
                let handles: Vec<_> = ["left", "right"]
                    .into_iter()
                    .map(|text| {
                        let b = &b;
                        s.spawn(move || {
                            let text = format!("{text}-{round}");
                            let built = b
                                .build("hello-gen", |d| write_hello(d, &text))
                                .expect("builds");
                            let out =
                                retry_busy(|| Command::new(&built.binary).output()).expect("runs");
                            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), text);
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().expect("no panic");
                }
            }
        });
    }

    /// A crate whose binary says whether its `loud` feature is on.
    fn write_featured(dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"featured-gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             [workspace]\n[features]\nloud = []\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("src/main.rs"),
            "fn main() { println!(\"{}\", cfg!(feature = \"loud\")); }\n",
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn features_are_built_and_keyed_apart() {
        let cache = tempfile::tempdir().expect("temp dir");
        let b = Builder::new(Some(cache.path().to_path_buf())).with_progress(false);
        let run = |built: &Built| {
            let out = retry_busy(|| Command::new(&built.binary).output()).expect("runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let plain = b.build("featured-gen", write_featured).expect("builds");
        let loud = b
            .build_with_features("featured-gen", &["loud"], write_featured)
            .expect("builds with the feature");
        assert!(!plain.cached && !loud.cached);
        assert_ne!(plain.key, loud.key, "the feature is in the key");
        assert_eq!(run(&plain), "false");
        assert_eq!(run(&loud), "true");
        let again = b
            .build_with_features("featured-gen", &["loud", "loud"], write_featured)
            .expect("cached");
        assert!(again.cached);
        assert_eq!(again.key, loud.key, "features are a set");
        assert_eq!(run(&again), "true");
        assert!(
            b.build("featured-gen", write_featured)
                .expect("cached")
                .cached
        );
    }

    #[test]
    fn a_crate_that_does_not_compile_is_reported_with_cargo_output() {
        let cache = tempfile::tempdir().expect("temp dir");
        let b = Builder::new(Some(cache.path().to_path_buf())).with_progress(false);
        let err = b
            .build("hello-gen", |d| write_hello(d, "\"); let x: u8 = \"no"))
            .expect_err("does not compile");
        let text = err.to_string();
        assert!(text.contains("does not compile"), "{text}");
        assert!(text.contains("error"), "{text}");
    }
}
