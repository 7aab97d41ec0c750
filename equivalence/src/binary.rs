//! The generated binary the checker runs: built from the NF with `maestro-build`, driven
//! through its `record` subcommand over packet files, its answers read back as record
//! files. The checker therefore tests the code that is deployed, not a re-interpretation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use maestro_analyzer::NfProgram;
use maestro_build::{Builder, Built};
use maestro_generator::{CrateOptions, GenOptions};
use maestro_runtime::exec::wire::{write_packets, RecordRun};
use maestro_runtime::exec::Strategy;
use maestro_runtime::InputPacket;
use serde::Deserialize;

/// Why the generated binary could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("cannot generate code for the NF: {0}")]
    Generate(#[from] maestro_generator::GenError),
    #[error(transparent)]
    Build(#[from] maestro_build::BuildError),
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} {command} failed (exit {code:?}): {stderr}")]
    Failed {
        binary: PathBuf,
        command: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("cannot read what {binary} wrote: {detail}")]
    Output { binary: PathBuf, detail: String },
}

/// What the binary's `info` says about the NF it implements.
#[derive(Clone, Debug, Deserialize)]
pub struct BinaryInfo {
    pub nf: String,
    pub port_count: u16,
    pub lan_port: u16,
    pub wan_port: u16,
    pub state: Vec<StateInfo>,
    pub renamed: Vec<RenamedInfo>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StateInfo {
    pub name: String,
    pub kind: String,
    pub capacity: u32,
    pub sharded: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RenamedInfo {
    pub out_field: String,
    pub in_field: String,
    pub in_ports: Vec<u16>,
}

/// How to run one `record`.
#[derive(Clone, Debug)]
pub struct RecordRequest {
    pub strategy: Strategy,
    pub cores: usize,
    /// `None`: real threads; `Some(seed)`: the deterministic schedule.
    pub seed: Option<u64>,
    /// Pin real threads to CPUs (one each). Right when the run has the CPUs to itself;
    /// when more threads run at once than there are CPUs, pinning stops the kernel from
    /// moving a worker off a CPU that another run's thread also wants.
    pub pin: bool,
    /// RSS configuration file (JSON) for parallel strategies.
    pub rss: Option<PathBuf>,
    pub instrument: bool,
    /// A runtime mutant's command-line name (`keep-aborted-decision`, ...).
    pub mutant: Option<String>,
    /// Run without input renaming (the per-core-allocator mutant).
    pub no_rename: bool,
    /// `strict` or `compat`.
    pub parse_mode: &'static str,
}

impl RecordRequest {
    pub fn new(strategy: Strategy, cores: usize) -> RecordRequest {
        RecordRequest {
            strategy,
            cores,
            seed: None,
            pin: true,
            rss: None,
            instrument: false,
            mutant: None,
            no_rename: false,
            parse_mode: "strict",
        }
    }

    /// The schedule as the report names it.
    pub fn schedule_name(&self) -> String {
        match self.seed {
            None if self.unpinned() => "threads-unpinned".to_string(),
            None => "threads".to_string(),
            Some(s) => format!("seed:{s}"),
        }
    }

    /// Real threads that the kernel may move between CPUs.
    fn unpinned(&self) -> bool {
        self.seed.is_none() && !self.pin
    }

    /// The binary's `--schedule` argument (pinning is its own flag).
    fn schedule_arg(&self) -> String {
        match self.seed {
            None => "threads".to_string(),
            Some(s) => format!("seed:{s}"),
        }
    }
}

/// A built generated binary.
#[derive(Clone, Debug)]
pub struct GeneratedBinary {
    pub built: Built,
    pub info: BinaryInfo,
    /// Packet and record files its runs reuse.
    scratch: Arc<ScratchFiles>,
}

impl GeneratedBinary {
    /// Generates the NF's crate (with `gen` options: mutants) and builds it, cached.
    pub fn build(
        builder: &Builder,
        program: &NfProgram,
        gen: &GenOptions,
    ) -> Result<GeneratedBinary, BinaryError> {
        let suffix = if gen.expiry_off_by_one { "-mutant" } else { "" };
        let package = format!("{}-nf{suffix}", program.name.replace('_', "-"));
        let options = CrateOptions {
            package: package.clone(),
            runtime_path: Builder::runtime_dir(),
            default_strategy: "seq".to_string(),
            gen: gen.clone(),
        };
        // Generate first, so generator errors are reported as such, not as write errors.
        maestro_generator::generate(program, gen)?;
        let built = builder.build(&package, |dir| {
            maestro_generator::write_crate(program, dir, &options)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?;
        let info = Self::read_info(&built.binary)?;
        Ok(GeneratedBinary {
            built,
            info,
            scratch: Arc::default(),
        })
    }

    fn read_info(binary: &Path) -> Result<BinaryInfo, BinaryError> {
        let out = maestro_build::retry_busy(|| Command::new(binary).arg("info").output()).map_err(
            |source| BinaryError::Spawn {
                binary: binary.to_path_buf(),
                source,
            },
        )?;
        if !out.status.success() {
            return Err(BinaryError::Failed {
                binary: binary.to_path_buf(),
                command: "info".into(),
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        serde_json::from_slice(&out.stdout).map_err(|e| BinaryError::Output {
            binary: binary.to_path_buf(),
            detail: format!("info JSON: {e}"),
        })
    }

    /// The scratch files its runs reuse (also for the packet files the checker writes).
    pub fn scratch(&self) -> &Arc<ScratchFiles> {
        &self.scratch
    }

    /// Names of the NF's state objects, by object number.
    pub fn object_names(&self) -> Vec<String> {
        self.info.state.iter().map(|s| s.name.clone()).collect()
    }

    /// Starts `record` over a packet file; [`RunningRecord::finish`] waits for it and
    /// reads what it wrote. Several may run at once (each is its own process).
    pub fn start(
        &self,
        packets: &Path,
        work: &Path,
        req: &RecordRequest,
    ) -> Result<RunningRecord, BinaryError> {
        let binary = &self.built.binary;
        let stem = format!(
            "records-{}-{}-{}-{}-{}",
            req.strategy.name(),
            req.cores,
            req.schedule_name().replace(':', "-"),
            std::process::id(),
            unique()
        );
        let output = self.scratch.take(work, "records");
        let stderr_path = work.join(format!("{stem}.err"));
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| BinaryError::Output {
            binary: binary.clone(),
            detail: format!(
                "cannot create {} for its error output ({e}); check that the work directory is writable",
                stderr_path.display()
            ),
        })?;
        let mut cmd = Command::new(binary);
        cmd.arg("record")
            .arg("--input")
            .arg(packets)
            .arg("--output")
            .arg(output.path())
            .args(["--strategy", req.strategy.name()])
            .args(["--cores", &req.cores.to_string()])
            .args(["--schedule", &req.schedule_arg()])
            .args(["--parse-mode", req.parse_mode])
            // Most frames leave with a few header bytes changed: the file stores the
            // changes, and the checker reads it with the inputs it wrote.
            .arg("--patch-frames");
        if let Some(rss) = &req.rss {
            cmd.arg("--rss").arg(rss);
        }
        if req.unpinned() {
            cmd.arg("--no-pin");
        }
        if req.instrument {
            cmd.arg("--instrument");
        }
        if let Some(m) = &req.mutant {
            cmd.args(["--mutant", m]);
        }
        if req.no_rename {
            cmd.arg("--no-rename");
        }
        // stderr goes to a file: a pipe nobody drains while other runs are awaited
        // could fill up and stall the child.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let mut running = RunningRecord {
            child: None,
            binary: binary.clone(),
            command: format!(
                "record --strategy {} --cores {} --schedule {}{}",
                req.strategy.name(),
                req.cores,
                req.schedule_arg(),
                if req.unpinned() { " --no-pin" } else { "" }
            ),
            output,
            stderr: stderr_path,
        };
        running.child = Some(maestro_build::retry_busy(|| cmd.spawn()).map_err(|source| {
            BinaryError::Spawn {
                binary: binary.clone(),
                source,
            }
        })?);
        Ok(running)
    }

    /// Runs `record` over a packet file holding `inputs` and reads the record file back.
    pub fn record<'a>(
        &self,
        packets: &Path,
        inputs: &'a [InputPacket],
        work: &Path,
        req: &RecordRequest,
    ) -> Result<RecordRun<'a>, BinaryError> {
        self.start(packets, work, req)?.finish(inputs)
    }

    /// Writes `packets` to a packet file in `work` and records one run over them.
    pub fn record_packets<'a>(
        &self,
        packets: &'a [InputPacket],
        work: &Path,
        req: &RecordRequest,
    ) -> Result<RecordRun<'a>, BinaryError> {
        let file = self.scratch.take(work, "packets");
        write_packets(file.path(), packets).map_err(|e| BinaryError::Output {
            binary: file.path().to_path_buf(),
            detail: e.to_string(),
        })?;
        self.record(file.path(), packets, work, req)
    }
}

/// A `record` run in progress. Dropped before [`finish`](Self::finish) (an error
/// elsewhere), it kills the child; either way its files are removed.
pub struct RunningRecord {
    child: Option<Child>,
    binary: PathBuf,
    command: String,
    output: ScratchFile,
    stderr: PathBuf,
}

impl RunningRecord {
    /// Waits for the run and reads its record file; `inputs` are the packets of the
    /// packet file it was given (its frames are stored as patches of them).
    pub fn finish(mut self, inputs: &[InputPacket]) -> Result<RecordRun<'_>, BinaryError> {
        let Some(mut child) = self.child.take() else {
            return Err(BinaryError::Output {
                binary: self.binary.clone(),
                detail: "the run was not started".into(),
            });
        };
        let status = child.wait().map_err(|source| BinaryError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if !status.success() {
            return Err(BinaryError::Failed {
                binary: self.binary.clone(),
                command: self.command.clone(),
                code: status.code(),
                stderr: std::fs::read(&self.stderr)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|e| format!("(cannot read its stderr: {e})")),
            });
        }
        RecordRun::read(self.output.path(), inputs).map_err(|e| BinaryError::Output {
            binary: self.binary.clone(),
            detail: e.to_string(),
        })
    }
}

impl Drop for RunningRecord {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Scratch files of the checker's runs (packet files, record files), reused: a file is
/// overwritten in place by its next user, which keeps its pages (see
/// `maestro_runtime::exec::wire`: rewriting 74 MB costs the kernel a fifth of writing a
/// new file). The spare files are removed with the pool.
#[derive(Debug, Default)]
pub struct ScratchFiles {
    spare: Mutex<Vec<PathBuf>>,
}

impl ScratchFiles {
    /// A file in `dir` for one writer and its readers until the guard is dropped: a spare
    /// one when there is one, else a new name starting with `stem`.
    pub fn take(self: &Arc<Self>, dir: &Path, stem: &str) -> ScratchFile {
        let reused = {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            spare
                .iter()
                .position(|p| p.parent() == Some(dir))
                .map(|i| spare.swap_remove(i))
        };
        let path = reused
            .unwrap_or_else(|| dir.join(format!("{stem}-{}-{}.bin", std::process::id(), unique())));
        ScratchFile {
            path,
            pool: Arc::clone(self),
        }
    }
}

impl Drop for ScratchFiles {
    fn drop(&mut self) {
        let spare = self.spare.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in spare.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A scratch file in use; dropped, it goes back to its pool.
#[derive(Debug)]
pub struct ScratchFile {
    path: PathBuf,
    pool: Arc<ScratchFiles>,
}

impl ScratchFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let mut spare = self.pool.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.push(std::mem::take(&mut self.path));
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A returned file is handed out again in its folder only, and the pool removes its
    /// spare files when it goes.
    #[test]
    fn scratch_files_are_reused_per_folder_and_removed_with_the_pool() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pool = Arc::new(ScratchFiles::default());
        let first = pool.take(a.path(), "packets");
        let path = first.path().to_path_buf();
        assert_eq!(path.parent(), Some(a.path()));
        std::fs::write(&path, b"x").unwrap();
        let other = pool.take(a.path(), "records");
        assert_ne!(other.path(), path, "in use: not handed out twice");
        drop(first);
        assert_ne!(
            pool.take(b.path(), "records").path(),
            path,
            "another folder"
        );
        let again = pool.take(a.path(), "records");
        assert_eq!(again.path(), path);
        drop((again, other));
        drop(pool);
        assert!(!path.exists());
    }

    /// Unpinned real threads are named so in the report and passed on as `--no-pin`; a
    /// seeded schedule runs on one thread, so pinning does not apply to it.
    #[test]
    fn pinning_shows_in_the_schedule_name_only_for_real_threads() {
        let mut req = RecordRequest::new(Strategy::Sn, 2);
        assert_eq!(req.schedule_name(), "threads");
        req.pin = false;
        assert!(req.unpinned());
        assert_eq!(req.schedule_name(), "threads-unpinned");
        assert_eq!(req.schedule_arg(), "threads");
        req.seed = Some(3);
        assert!(!req.unpinned());
        assert_eq!(req.schedule_name(), "seed:3");
        assert_eq!(req.schedule_arg(), "seed:3");
    }
}
