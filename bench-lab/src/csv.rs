//! `results.csv`: one row per (point, repetition), failures included.
//!
//! Written by hand (RFC 4180 quoting) because the workspace builds offline and no CSV
//! crate is in its registry; the format is plain enough: a header, comma-separated
//! fields, fields with a comma, quote or line break in double quotes with quotes
//! doubled. Rows are appended and flushed as runs end, so an interrupted sweep keeps
//! what it measured.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::LabError;

/// The columns, in order.
pub const HEADER: [&str; 24] = [
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
];

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub nf: String,
    pub strategy: String,
    pub cores: usize,
    /// `64` or `imix`.
    pub frame_size: String,
    pub churn_fpm: u64,
    pub zipf: f64,
    /// Packets in the trace.
    pub packets: u64,
    /// 1-based.
    pub rep: u32,
    pub status: Status,
    /// Why a run failed (empty when it did not).
    pub error: String,
    /// The engine's processing time as the binary measured it (dispatch and process,
    /// capture reading excluded).
    pub processing_seconds: Option<f64>,
    pub mpps: Option<f64>,
    /// Max over mean of the packets per core (1.0: perfectly even).
    pub spread: Option<f64>,
    pub packets_per_core: Vec<u64>,
    pub forwarded: Option<u64>,
    pub dropped: Option<u64>,
    pub flooded: Option<u64>,
    pub refused: Option<u64>,
    /// The binary's RTM report (`not applicable`, or why `tm` fell back).
    pub rtm: String,
    /// 1-minute load average when the run started.
    pub load1: f64,
    /// The whole binary run, capture reading and start-up included.
    pub wall_seconds: f64,
    /// `lan` or `wan`: where the trace's flows start.
    pub ingress: String,
    /// The trace's file name.
    pub trace: String,
    /// UTC start of the run.
    pub started: String,
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

impl Row {
    /// The fields in [`HEADER`] order.
    pub fn fields(&self) -> Vec<String> {
        vec![
            self.nf.clone(),
            self.strategy.clone(),
            self.cores.to_string(),
            self.frame_size.clone(),
            self.churn_fpm.to_string(),
            self.zipf.to_string(),
            self.packets.to_string(),
            self.rep.to_string(),
            self.status.name().to_string(),
            self.error.clone(),
            opt_f(self.processing_seconds, 9),
            opt_f(self.mpps, 4),
            opt_f(self.spread, 4),
            self.packets_per_core
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(";"),
            opt(&self.forwarded),
            opt(&self.dropped),
            opt(&self.flooded),
            opt(&self.refused),
            self.rtm.clone(),
            format!("{:.2}", self.load1),
            format!("{:.3}", self.wall_seconds),
            self.ingress.clone(),
            self.trace.clone(),
            self.started.clone(),
        ]
    }

    /// A row from its fields (as [`read_rows`] splits them).
    pub fn from_fields(f: &[String]) -> Result<Row, String> {
        if f.len() != HEADER.len() {
            return Err(format!(
                "{} fields, expected {} ({})",
                f.len(),
                HEADER.len(),
                HEADER.join(",")
            ));
        }
        fn num<T: std::str::FromStr>(f: &[String], i: usize) -> Result<T, String> {
            f[i].parse()
                .map_err(|_| format!("column {}: `{}` is not a number", HEADER[i], f[i]))
        }
        fn opt_num<T: std::str::FromStr>(f: &[String], i: usize) -> Result<Option<T>, String> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                num(f, i).map(Some)
            }
        }
        let per_core = if f[13].is_empty() {
            Vec::new()
        } else {
            f[13]
                .split(';')
                .map(|x| {
                    x.parse()
                        .map_err(|_| format!("column packets_per_core: `{x}` is not a count"))
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Row {
            nf: f[0].clone(),
            strategy: f[1].clone(),
            cores: num(f, 2)?,
            frame_size: f[3].clone(),
            churn_fpm: num(f, 4)?,
            zipf: num(f, 5)?,
            packets: num(f, 6)?,
            rep: num(f, 7)?,
            status: Status::parse(&f[8])
                .ok_or_else(|| format!("column status: `{}` is not ok/failed/timeout", f[8]))?,
            error: f[9].clone(),
            processing_seconds: opt_num(f, 10)?,
            mpps: opt_num(f, 11)?,
            spread: opt_num(f, 12)?,
            packets_per_core: per_core,
            forwarded: opt_num(f, 14)?,
            dropped: opt_num(f, 15)?,
            flooded: opt_num(f, 16)?,
            refused: opt_num(f, 17)?,
            rtm: f[18].clone(),
            load1: num(f, 19)?,
            wall_seconds: num(f, 20)?,
            ingress: f[21].clone(),
            trace: f[22].clone(),
            started: f[23].clone(),
        })
    }
}

/// One CSV line (with its line break).
pub fn line(fields: &[String]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push('\n');
    out
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas,
/// doubled quotes and line breaks).
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: a quoted field is not closed"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Reads `results.csv`: checks the header and parses every row.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, LabError> {
    let text = std::fs::read_to_string(path).map_err(LabError::io(path))?;
    let bad = |reason: String| LabError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let records = parse(&text).map_err(bad)?;
    let Some((header, rows)) = records.split_first() else {
        return Err(bad("empty file: no header".into()));
    };
    if header.iter().map(String::as_str).ne(HEADER) {
        return Err(bad(format!(
            "the header is not the bench lab's ({}); was this file written by another version?",
            HEADER.join(",")
        )));
    }
    rows.iter()
        .enumerate()
        .map(|(i, f)| Row::from_fields(f).map_err(|e| bad(format!("row {}: {e}", i + 1))))
        .collect()
}

/// Appends rows to `results.csv` as runs end.
pub struct CsvWriter {
    file: std::fs::File,
    path: PathBuf,
}

impl CsvWriter {
    /// Creates (or truncates) the file and writes the header.
    pub fn create(path: &Path) -> Result<CsvWriter, LabError> {
        let mut file = std::fs::File::create(path).map_err(LabError::io(path))?;
        let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
        file.write_all(line(&header).as_bytes())
            .map_err(LabError::io(path))?;
        Ok(CsvWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn append(&mut self, row: &Row) -> Result<(), LabError> {
        self.file
            .write_all(line(&row.fields()).as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(LabError::io(&self.path))
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
        }
    }

    #[test]
    fn rows_round_trip_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = CsvWriter::create(&path).unwrap();
        let a = sample();
        let b = Row {
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
            ..sample()
        };
        w.append(&a).unwrap();
        w.append(&b).unwrap();
        let back = read_rows(&path).unwrap();
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse("a,\"b").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "x,y\n1,2\n").unwrap();
        let e = read_rows(&path).unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
    }
}
