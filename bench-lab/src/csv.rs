//! `results.csv`: one row per (point, repetition), failures included, written and read
//! with the `csv` crate through [`Row`]'s serde derive.
//!
//! Rows are appended and flushed as runs end, so an interrupted sweep keeps what it
//! measured. Reading goes by column name: files written before the per-phase columns
//! ([`OPTIONAL`]) existed read with those values absent.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::LabError;

/// The columns, in the order they are written (the field order of [`Row`]).
pub const HEADER: [&str; 27] = [
    "nf",
    "strategy",
    "cores",
    "frame_size",
    "churn_fpm",
    "zipf",
    "packets",
    "rep",
    "status",
    "error",
    "processing_seconds",
    "mpps",
    "spread",
    "packets_per_core",
    "forwarded",
    "dropped",
    "flooded",
    "refused",
    "rtm",
    "load1",
    "wall_seconds",
    "ingress",
    "trace",
    "started",
    "dispatch_seconds",
    "nf_seconds",
    "collect_seconds",
];

/// Columns a file may lack (added after the first sweeps were committed): read as
/// absent.
pub const OPTIONAL: [&str; 3] = ["dispatch_seconds", "nf_seconds", "collect_seconds"];

/// What to do about a `results.csv` that does not read.
const FIX: &str = "correct or delete that line (each line after the header is one run), \
                   or re-run the sweep into a fresh --out folder";

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The binary exited non-zero, printed no (or bad) JSON, or processed fewer packets
    /// than the trace holds.
    Failed,
    /// Killed after the sweep's per-run timeout.
    Timeout,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Ok, Status::Failed, Status::Timeout]
            .into_iter()
            .find(|s| s.name() == text)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub nf: String,
    pub strategy: String,
    pub cores: usize,
    /// `64` or `imix`.
    pub frame_size: String,
    pub churn_fpm: u64,
    /// Written as Rust prints it (`0`, `1.26`), as the plot names are.
    #[serde(serialize_with = "display")]
    pub zipf: f64,
    /// Packets in the trace.
    pub packets: u64,
    /// 1-based.
    pub rep: u32,
    pub status: Status,
    /// Why a run failed (empty when it did not).
    pub error: String,
    /// The engine's processing time as the binary measured it (dispatch, the NF and the
    /// in-order collection; capture reading excluded).
    #[serde(serialize_with = "fixed::<9, _>")]
    pub processing_seconds: Option<f64>,
    /// Packets over `processing_seconds`, in millions (end to end).
    #[serde(serialize_with = "fixed::<4, _>")]
    pub mpps: Option<f64>,
    /// Max over mean of the packets per core (1.0: perfectly even).
    #[serde(serialize_with = "fixed::<4, _>")]
    pub spread: Option<f64>,
    /// `;`-separated in the file.
    #[serde(with = "per_core")]
    pub packets_per_core: Vec<u64>,
    pub forwarded: Option<u64>,
    pub dropped: Option<u64>,
    pub flooded: Option<u64>,
    pub refused: Option<u64>,
    /// The binary's RTM report (`not applicable`, or why `tm` fell back).
    pub rtm: String,
    /// 1-minute load average when the run started.
    #[serde(serialize_with = "fixed_f::<2, _>")]
    pub load1: f64,
    /// The whole binary run, capture reading and start-up included.
    #[serde(serialize_with = "fixed_f::<3, _>")]
    pub wall_seconds: f64,
    /// `lan` or `wan`: where the trace's flows start.
    pub ingress: String,
    /// The trace's file name.
    pub trace: String,
    /// UTC start of the run.
    pub started: String,
    /// The binary's serial software-RSS steering (`run --json`'s `dispatch_seconds`).
    #[serde(default, serialize_with = "fixed::<9, _>")]
    pub dispatch_seconds: Option<f64>,
    /// The workers' processing, wall time of the parallel part (`nf_seconds`).
    #[serde(default, serialize_with = "fixed::<9, _>")]
    pub nf_seconds: Option<f64>,
    /// The in-order collection of the results (`collect_seconds`).
    #[serde(default, serialize_with = "fixed::<9, _>")]
    pub collect_seconds: Option<f64>,
}

impl Row {
    /// Packets over the workers' time alone, in millions: the NF's own throughput,
    /// without the serial dispatch and collection. `None` for failed runs and for rows
    /// of files that predate `nf_seconds`.
    pub fn nf_mpps(&self) -> Option<f64> {
        match (self.status, self.nf_seconds) {
            (Status::Ok, Some(s)) if s > 0.0 => Some(self.packets as f64 / s / 1e6),
            _ => None,
        }
    }
}

fn display<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `DIGITS` decimals: timings to the nanosecond, rates to 1e-4, without float noise.
fn fixed<const DIGITS: usize, S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.collect_str(&format_args!("{x:.DIGITS$}")),
        None => s.serialize_none(),
    }
}

fn fixed_f<const DIGITS: usize, S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.DIGITS$}"))
}

/// Packets per core as one field, `n0;n1;...` (empty when the run measured nothing).
mod per_core {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = v.iter().map(u64::to_string).collect();
        s.serialize_str(&text.join(";"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(';')
            .map(|x| {
                x.trim().parse().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{x}` is not a packet count (expected counts separated by `;`)"
                    ))
                })
            })
            .collect()
    }
}

fn bad(path: &Path, line: u64, reason: String) -> LabError {
    LabError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
        fix: FIX.to_string(),
    }
}

/// A `csv` error as the file, the line and what is wrong.
fn csv_error(path: &Path, e: ::csv::Error) -> LabError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => LabError::Io {
            path: path.to_path_buf(),
            source,
        },
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => bad(
            path,
            line,
            format!(
                "{len} fields where the header has {expected_len} (a field with a comma must be in double quotes)"
            ),
        ),
        ::csv::ErrorKind::Utf8 { err, .. } => bad(path, line, format!("not UTF-8 text: {err}")),
        other => bad(path, line, format!("{other:?}")),
    }
}

/// The column of an error that serde raised (the `csv` crate knows the column of its
/// own parse errors only): the columns whose values serde code checks.
fn serde_error_column(
    headers: &::csv::StringRecord,
    record: &::csv::StringRecord,
) -> Option<usize> {
    let at = |name: &str| headers.iter().position(|h| h == name);
    let status = at("status")?;
    if Status::parse(record.get(status)?).is_none() {
        return Some(status);
    }
    let per_core = at("packets_per_core")?;
    let text = record.get(per_core)?;
    let counts_ok = text.is_empty() || text.split(';').all(|x| x.trim().parse::<u64>().is_ok());
    (!counts_ok).then_some(per_core)
}

/// Reads `results.csv`: checks that the header has every column the report needs and
/// parses every row by column name (the columns of [`OPTIONAL`] may be missing).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, LabError> {
    let file = File::open(path).map_err(LabError::io(path))?;
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(std::io::BufReader::new(file));
    let headers = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    if headers.is_empty() {
        return Err(LabError::Csv {
            path: path.to_path_buf(),
            line: 1,
            reason: "empty file: no header".into(),
            fix: "re-run the sweep (`maestro bench ... --out DIR`) to write it".into(),
        });
    }
    let missing: Vec<&str> = HEADER
        .iter()
        .copied()
        .filter(|h| !OPTIONAL.contains(h) && !headers.iter().any(|x| x == *h))
        .collect();
    if !missing.is_empty() {
        return Err(LabError::Csv {
            path: path.to_path_buf(),
            line: 1,
            reason: format!(
                "the header lacks the column{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
            fix: format!(
                "this is not a `maestro bench` results.csv (its columns: {}); point --out at a sweep folder",
                HEADER.join(",")
            ),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let row = record.deserialize::<Row>(Some(&headers)).map_err(|e| {
            let reason = match e.kind() {
                ::csv::ErrorKind::Deserialize { err, .. } => {
                    let column = err
                        .field()
                        .map(|i| i as usize)
                        .or_else(|| serde_error_column(&headers, &record));
                    match column {
                        Some(i) => format!(
                            "column {} = `{}`: {}",
                            headers.get(i).unwrap_or("?"),
                            record.get(i).unwrap_or(""),
                            err.kind()
                        ),
                        None => err.kind().to_string(),
                    }
                }
                other => format!("{other:?}"),
            };
            bad(path, line, reason)
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Appends rows to `results.csv` as runs end.
pub struct CsvWriter {
    writer: ::csv::Writer<File>,
    path: PathBuf,
}

impl CsvWriter {
    /// Creates (or truncates) the file and writes the header at once, so that a sweep
    /// whose first run never ends still leaves a readable file.
    pub fn create(path: &Path) -> Result<CsvWriter, LabError> {
        let file = File::create(path).map_err(LabError::io(path))?;
        let mut writer = ::csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        writer
            .write_record(HEADER)
            .map_err(|e| csv_error(path, e))?;
        writer.flush().map_err(LabError::io(path))?;
        Ok(CsvWriter {
            writer,
            path: path.to_path_buf(),
        })
    }

    /// Writes one row and flushes it to the file.
    pub fn append(&mut self, row: &Row) -> Result<(), LabError> {
        self.writer
            .serialize(row)
            .map_err(|e| csv_error(&self.path, e))?;
        self.writer.flush().map_err(LabError::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Row {
        Row {
            nf: "fw".into(),
            strategy: "sn".into(),
            cores: 2,
            frame_size: "64".into(),
            churn_fpm: 1_000_000,
            zipf: 1.26,
            packets: 20_000,
            rep: 1,
            status: Status::Failed,
            error: "exit 3: \"boom\", then\nmore".into(),
            processing_seconds: None,
            mpps: None,
            spread: None,
            packets_per_core: vec![],
            forwarded: None,
            dropped: None,
            flooded: None,
            refused: None,
            rtm: String::new(),
            load1: 1.5,
            wall_seconds: 0.25,
            ingress: "lan".into(),
            trace: "t.pcapng".into(),
            started: "2026-01-01T00:00:00Z".into(),
            dispatch_seconds: None,
            nf_seconds: None,
            collect_seconds: None,
        }
    }

    fn ok_row() -> Row {
        Row {
            status: Status::Ok,
            error: String::new(),
            processing_seconds: Some(0.012345),
            mpps: Some(1.6201),
            spread: Some(1.0123),
            packets_per_core: vec![9_900, 10_100],
            forwarded: Some(20_000),
            dropped: Some(0),
            flooded: Some(0),
            refused: Some(0),
            rtm: "not applicable".into(),
            dispatch_seconds: Some(0.002),
            nf_seconds: Some(0.01),
            collect_seconds: Some(0.000345),
            ..sample()
        }
    }

    #[test]
    fn rows_round_trip_through_csv_and_each_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = CsvWriter::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            HEADER.join(",") + "\n"
        );
        let (a, b) = (sample(), ok_row());
        w.append(&a).unwrap();
        // On disk before the writer is dropped: an interrupted sweep keeps it.
        assert_eq!(read_rows(&path).unwrap(), vec![a.clone()]);
        w.append(&b).unwrap();
        assert_eq!(read_rows(&path).unwrap(), vec![a, b.clone()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(",1.26,") && text.contains(",9900;10100,"),
            "{text}"
        );
        assert!(text.contains(",0.012345000,1.6201,"), "{text}");
        assert_eq!(b.nf_mpps(), Some(2.0));
    }

    #[test]
    fn header_is_the_field_order() {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.serialize(sample()).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
    }

    #[test]
    fn files_without_the_phase_columns_read_them_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        // A line of results/sweeps/2core-vm/results.csv, written before the columns.
        let old = HEADER[..24].join(",")
            + "\nfw,sn,2,64,0,0,1000000,1,ok,,0.122909809,8.1360,1.0075,503740;496260,1000000,0,0,0,not applicable,0.56,0.282,lan,t.pcapng,2026-11-24T05:09:42Z\n";
        std::fs::write(&path, old).unwrap();
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.packets_per_core, vec![503_740, 496_260]);
        assert_eq!((r.mpps, r.zipf), (Some(8.136), 0.0));
        assert_eq!(
            (r.dispatch_seconds, r.nf_seconds, r.collect_seconds),
            (None, None, None)
        );
        assert_eq!(r.nf_mpps(), None);
    }

    #[test]
    fn bad_files_are_refused_naming_file_line_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let err = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_rows(&path).unwrap_err().to_string()
        };
        let e = err("x,y\n1,2\n");
        assert!(
            e.contains("r.csv, line 1") && e.contains("lacks the columns nf, strategy"),
            "{e}"
        );
        assert!(e.contains("point --out at a sweep folder"), "{e}");
        assert!(err("").contains("empty file"));

        // A bad number on the third line (the second row).
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.serialize(ok_row()).unwrap();
        w.serialize(Row { rep: 2, ..ok_row() }).unwrap();
        let good = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let e = err(&good.replacen(",2,ok,,0.012345000,1.6201,", ",2,ok,,0.012345000,fast,", 1));
        assert!(
            e.contains("r.csv, line 3") && e.contains("column mpps = `fast`"),
            "{e}"
        );
        assert!(e.contains("correct or delete that line"), "{e}");
        let e = err(&good.replacen(",ok,", ",fine,", 1));
        assert!(
            e.contains("line 2") && e.contains("column status = `fine`") && e.contains("`ok`"),
            "{e}"
        );
        let e = err(&good.replacen(",9900;10100,", ",9900;x,", 1));
        assert!(
            e.contains("column packets_per_core = `9900;x`: `x` is not a packet count"),
            "{e}"
        );
        let e = err(&(good.clone() + "fw,sn\n"));
        assert!(
            e.contains("line 4") && e.contains("2 fields where the header has 27"),
            "{e}"
        );
    }
}
