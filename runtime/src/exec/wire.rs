//! The binary files between the equivalence checker and a generated binary.
//!
//! - A **packet file** (checker -> binary) holds the input trace: `InputPacket`s in input
//!   order. Written by [`PacketFileWriter`] / [`write_packets`], streamed back by
//!   [`PacketFileReader`] / [`read_packets`].
//! - A **record file** (binary -> checker) holds what a run did: a header (NF, strategy,
//!   cores, schedule, mutant, RTM status, renamed fields), one entry per input packet in
//!   input order (observation, [`PacketRecord`], input translations), then a trailer
//!   (NF faults, per-core access logs, engine statistics, renaming conflicts). Written by
//!   [`RecordFileWriter`] (streaming, chunk by chunk) or [`RecordFile::write`]; read by
//!   [`RecordFile::read`].
//!
//! Both are little-endian, start with an 8-byte magic and a `u32` version, and are read
//! without trusting any length: every read error names the file, the byte offset and what
//! was expected there. The exact layouts are in the docs of [`PACKET_MAGIC`] and
//! [`RECORD_MAGIC`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::engine::PacketRecord;
use super::nf::{AccessLog, Strategy};
use super::rename::{ConflictKind, RenameConflict, Translation};
use crate::capture::MAX_CAPLEN;
use crate::trace::{InputPacket, Observation};

/// Magic of a packet file. Layout (little-endian):
/// `"MSTPKTS\0"`, `version: u32` (= [`PACKET_VERSION`]), then until the end of the file,
/// per packet: `port: u16`, `time_ns: u64`, `len: u32` (at most [`MAX_FRAME`]),
/// `len` bytes of frame.
pub const PACKET_MAGIC: [u8; 8] = *b"MSTPKTS\0";
/// Version of the packet file layout.
pub const PACKET_VERSION: u32 = 1;
/// The largest frame either file holds (libpcap's largest snap length): a bigger length
/// is corruption, and must not make the reader allocate it.
pub const MAX_FRAME: u32 = MAX_CAPLEN;

/// Why a wire file cannot be written or read. Every variant names the file; read errors
/// also name the byte offset and what was expected there.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("{}: {source}; check that the path exists and is readable (writable for output)", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: byte offset {offset}: the file ends inside {expected}; it was cut short: write it again", path.display())]
    Truncated {
        path: PathBuf,
        offset: u64,
        expected: String,
    },
    #[error("{}: byte offset {offset}: expected {expected}, found {found}; the file is corrupt or not a {kind}: write it again", path.display())]
    Invalid {
        path: PathBuf,
        offset: u64,
        kind: &'static str,
        expected: String,
        found: String,
    },
}

impl WireError {
    fn io(path: &Path, source: io::Error) -> WireError {
        WireError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Low-level reading and writing
// ---------------------------------------------------------------------------------------

/// A byte source that knows its file name and offset, so every error can say where.
pub(crate) struct WireIn {
    path: PathBuf,
    kind: &'static str,
    src: BufReader<Box<dyn Read + Send>>,
    offset: u64,
}

impl WireIn {
    fn open(path: &Path, kind: &'static str) -> Result<WireIn, WireError> {
        let file = File::open(path).map_err(|e| WireError::io(path, e))?;
        Ok(WireIn::new(path.to_path_buf(), kind, Box::new(file)))
    }

    fn new(path: PathBuf, kind: &'static str, src: Box<dyn Read + Send>) -> WireIn {
        WireIn {
            path,
            kind,
            src: BufReader::with_capacity(256 * 1024, src),
            offset: 0,
        }
    }

    fn invalid(&self, at: u64, expected: impl Into<String>, found: impl Into<String>) -> WireError {
        WireError::Invalid {
            path: self.path.clone(),
            offset: at,
            kind: self.kind,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Fills `buf` entirely; a short read is [`WireError::Truncated`] at the offset where
    /// `what` starts.
    fn exact(
        &mut self,
        buf: &mut [u8],
        what: impl std::fmt::Display + Copy,
    ) -> Result<(), WireError> {
        let start = self.offset;
        let mut got = 0;
        while got < buf.len() {
            match self.src.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(WireError::Truncated {
                        path: self.path.clone(),
                        offset: start,
                        expected: format!("{what} ({} of {} bytes present)", got, buf.len()),
                    })
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WireError::io(&self.path, e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Whether the input is exhausted (nothing more to read).
    fn at_end(&mut self) -> Result<bool, WireError> {
        loop {
            match self.src.fill_buf() {
                Ok(b) => return Ok(b.is_empty()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WireError::io(&self.path, e)),
            }
        }
    }

    fn array<const K: usize>(
        &mut self,
        what: impl std::fmt::Display + Copy,
    ) -> Result<[u8; K], WireError> {
        let mut b = [0u8; K];
        self.exact(&mut b, what)?;
        Ok(b)
    }

    fn u8(&mut self, what: impl std::fmt::Display + Copy) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: impl std::fmt::Display + Copy) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: impl std::fmt::Display + Copy) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: impl std::fmt::Display + Copy) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: impl std::fmt::Display + Copy) -> Result<bool, WireError> {
        let at = self.offset;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.invalid(at, format!("{what} (0 or 1)"), format!("{v}"))),
        }
    }

    /// A `u32` length no larger than `max`, then that many bytes.
    fn bytes(
        &mut self,
        max: u32,
        what: impl std::fmt::Display + Copy,
    ) -> Result<Vec<u8>, WireError> {
        let at = self.offset;
        let len = self.u32(format_args!("the length of {what}"))?;
        if len > max {
            return Err(self.invalid(
                at,
                format!("the length of {what} (at most {max})"),
                format!("{len}"),
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.exact(&mut v, what)?;
        Ok(v)
    }

    /// A length-prefixed UTF-8 string of at most 64 KiB.
    fn string(&mut self, what: impl std::fmt::Display + Copy) -> Result<String, WireError> {
        let at = self.offset;
        let bytes = self.bytes(u32::from(u16::MAX), what)?;
        String::from_utf8(bytes)
            .map_err(|_| self.invalid(at + 4, format!("{what} as UTF-8 text"), "invalid UTF-8"))
    }

    /// A `u32` element count no larger than `max` (bounds what a corrupt count allocates).
    fn count(&mut self, max: u64, what: impl std::fmt::Display + Copy) -> Result<usize, WireError> {
        let at = self.offset;
        let n = self.u32(what)?;
        if u64::from(n) > max {
            return Err(self.invalid(at, format!("{what} (at most {max})"), format!("{n}")));
        }
        Ok(n as usize)
    }

    /// The magic and a supported version.
    fn header(&mut self, magic: &[u8; 8], version: u32) -> Result<(), WireError> {
        let what = format!("the magic {:?}", String::from_utf8_lossy(magic));
        let found: [u8; 8] = self.array(&what)?;
        if &found != magic {
            return Err(self.invalid(0, what, format!("{:?}", String::from_utf8_lossy(&found))));
        }
        let v = self.u32("the format version")?;
        if v != version {
            return Err(self.invalid(
                8,
                format!("format version {version}"),
                format!("version {v}"),
            ));
        }
        Ok(())
    }
}

/// A buffered byte sink that knows its file name, for error messages.
pub(crate) struct WireOut {
    path: PathBuf,
    out: BufWriter<Box<dyn Write + Send>>,
}

impl WireOut {
    fn create(path: &Path) -> Result<WireOut, WireError> {
        let file = File::create(path).map_err(|e| WireError::io(path, e))?;
        Ok(WireOut::new(path.to_path_buf(), Box::new(file)))
    }

    fn new(path: PathBuf, out: Box<dyn Write + Send>) -> WireOut {
        WireOut {
            path,
            out: BufWriter::with_capacity(1 << 20, out),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.out
            .write_all(bytes)
            .map_err(|e| WireError::io(&self.path, e))
    }

    fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put(&[v])
    }

    fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.put(&v.to_le_bytes())
    }

    /// A `u32` length (checked against `max`) then the bytes.
    fn bytes(&mut self, v: &[u8], max: u32, what: &str) -> Result<(), WireError> {
        let len = u32::try_from(v.len())
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| WireError::Io {
                path: self.path.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{what} is {} bytes long, more than the {max} the format allows",
                        v.len()
                    ),
                ),
            })?;
        self.u32(len)?;
        self.put(v)
    }

    fn string(&mut self, s: &str, what: &str) -> Result<(), WireError> {
        self.bytes(s.as_bytes(), u32::from(u16::MAX), what)
    }

    fn count(&mut self, n: usize, what: &str) -> Result<(), WireError> {
        let n = u32::try_from(n).map_err(|_| WireError::Io {
            path: self.path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, format!("too many {what}")),
        })?;
        self.u32(n)
    }

    fn flush(&mut self) -> Result<(), WireError> {
        self.out.flush().map_err(|e| WireError::io(&self.path, e))
    }
}

// ---------------------------------------------------------------------------------------
// Packet files
// ---------------------------------------------------------------------------------------

/// Streams input packets into a packet file.
pub struct PacketFileWriter {
    out: WireOut,
    written: u64,
}

impl PacketFileWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path) -> Result<PacketFileWriter, WireError> {
        Self::start(WireOut::create(path)?)
    }

    /// A writer into any byte sink; `name` stands for it in messages.
    pub fn from_writer(
        name: &str,
        out: Box<dyn Write + Send>,
    ) -> Result<PacketFileWriter, WireError> {
        Self::start(WireOut::new(PathBuf::from(name), out))
    }

    fn start(mut out: WireOut) -> Result<PacketFileWriter, WireError> {
        out.put(&PACKET_MAGIC)?;
        out.u32(PACKET_VERSION)?;
        Ok(PacketFileWriter { out, written: 0 })
    }

    /// Appends one packet.
    pub fn write(&mut self, p: &InputPacket) -> Result<(), WireError> {
        self.out.u16(p.port)?;
        self.out.u64(p.time_ns)?;
        self.out.bytes(&p.data, MAX_FRAME, "a frame")?;
        self.written += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes everything to the file.
    pub fn finish(mut self) -> Result<(), WireError> {
        self.out.flush()
    }
}

/// Streams the packets of a packet file back, in order. Yields `Err` once on a corrupt
/// or truncated packet and then stops.
pub struct PacketFileReader {
    input: WireIn,
    index: u64,
    failed: bool,
}

impl PacketFileReader {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<PacketFileReader, WireError> {
        Self::start(WireIn::open(path, "maestro packet file")?)
    }

    /// Reads a packet file held in memory; `name` stands for the file in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<PacketFileReader, WireError> {
        Self::start(WireIn::new(
            PathBuf::from(name),
            "maestro packet file",
            Box::new(io::Cursor::new(bytes)),
        ))
    }

    fn start(mut input: WireIn) -> Result<PacketFileReader, WireError> {
        input.header(&PACKET_MAGIC, PACKET_VERSION)?;
        Ok(PacketFileReader {
            input,
            index: 0,
            failed: false,
        })
    }

    /// The file (or the name given to [`from_bytes`](Self::from_bytes)).
    pub fn path(&self) -> &Path {
        &self.input.path
    }

    fn read_one(&mut self) -> Result<InputPacket, WireError> {
        let i = self.index;
        let port = self.input.u16(format_args!("the port of packet #{i}"))?;
        let time_ns = self
            .input
            .u64(format_args!("the timestamp of packet #{i}"))?;
        let data = self
            .input
            .bytes(MAX_FRAME, format_args!("the frame of packet #{i}"))?;
        Ok(InputPacket {
            port,
            time_ns,
            data,
        })
    }
}

impl Iterator for PacketFileReader {
    type Item = Result<InputPacket, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.input.at_end() {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        let item = self.read_one();
        match &item {
            Ok(_) => self.index += 1,
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

/// Writes `packets` to a new packet file at `path`.
pub fn write_packets(path: &Path, packets: &[InputPacket]) -> Result<(), WireError> {
    let mut w = PacketFileWriter::create(path)?;
    for p in packets {
        w.write(p)?;
    }
    w.finish()
}

/// Reads a whole packet file.
pub fn read_packets(path: &Path) -> Result<Vec<InputPacket>, WireError> {
    PacketFileReader::open(path)?.collect()
}

// ---------------------------------------------------------------------------------------
// Record files
// ---------------------------------------------------------------------------------------

/// Magic of a record file. Layout (little-endian; `str` = `u32` length + UTF-8 bytes,
/// `bytes` = `u32` length + bytes, `bool` = one byte 0/1):
///
/// ```text
/// "MSTRECS\0"  version: u32 (= RECORD_VERSION)
/// header:  nf: str, strategy: str (seq|sn|locks|tm), cores: u32, schedule: str
///          (threads | threads-unpinned | seed:N), mutant: str ("" = none),
///          rtm: str, parse_mode: str, renamed: u32 count x (out_field: str, in_field: str)
/// then per input packet, in input order:
///   tag 1: u8
///   observation: kind: u8 (0 drop, 1 forward, 2 flood); forward: port: u16;
///                forward and flood: frame: bytes
///   record: core: u16, queue_pos: u64, epoch: u64, wrote: bool, now: u64, hash: u32
///   translations: u8 count x (field: u16 (index into renamed), old: u64, new: u64)
/// then the trailer:
///   tag 2: u8
///   faults: u64
///   access logs: u32 cores x (present: bool; if present: u32 count x
///                (object: u16, key: u64, count: u64), sorted by (object, key))
///   stats: u32 count x (name: str, value: u64)
///   conflicts: u32 count x (index: u64, field: u16, seq: u64, par: u64,
///              kind: u8 (0 seq already mapped, 1 par already taken), other: u64
///              (the existing par value, resp. the existing seq value))
/// end of file (anything after the trailer is an error)
/// ```
pub const RECORD_MAGIC: [u8; 8] = *b"MSTRECS\0";
/// Version of the record file layout.
pub const RECORD_VERSION: u32 = 1;

const TAG_PACKET: u8 = 1;
const TAG_TRAILER: u8 = 2;
const OBS_DROP: u8 = 0;
const OBS_FORWARD: u8 = 1;
const OBS_FLOOD: u8 = 2;
/// Bounds on counts read from a record file, so a corrupt count cannot allocate memory
/// it does not describe.
const MAX_CORES: u64 = 4096;
const MAX_LIST: u64 = 1 << 28;

/// The run a record file describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub nf: String,
    pub strategy: Strategy,
    pub cores: u32,
    /// `threads`, `threads-unpinned` or `seed:N`.
    pub schedule: String,
    /// The runtime mutant's command-line name, if any.
    pub mutant: Option<String>,
    /// The RTM status as text (`used`, `unavailable: ...`, `not applicable`).
    pub rtm: String,
    /// `strict` or `maestro-compat`.
    pub parse_mode: String,
    /// The NF's `RENAMED` fields as (out field, in field); [`Translation::field`] and
    /// [`RenameConflict::field`] index this list.
    pub renamed: Vec<(String, String)>,
}

/// What happened to one input packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    pub observation: Observation,
    pub record: PacketRecord,
    /// The input fields the renamer rewrote before the NF saw the packet (their `index`
    /// is the entry's position).
    pub translations: Vec<Translation>,
}

/// One (object, key) a core touched, and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessCount {
    pub object: u16,
    pub key: u64,
    pub count: u64,
}

/// An [`AccessLog`] as sorted counts.
pub fn access_counts(log: &AccessLog) -> Vec<AccessCount> {
    let mut v: Vec<AccessCount> = log
        .counts()
        .iter()
        .map(|(&(object, key), &count)| AccessCount { object, key, count })
        .collect();
    v.sort_unstable();
    v
}

/// What a record file holds after the packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordTrailer {
    /// NF faults over the whole run.
    pub faults: u64,
    /// Per core, its instrumented accesses (`None`: not instrumented).
    pub access_logs: Vec<Option<Vec<AccessCount>>>,
    /// Engine statistics as (name, value), e.g. `per_core_packets.0`.
    pub stats: Vec<(String, u64)>,
    pub conflicts: Vec<RenameConflict>,
}

/// A whole record file in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFile {
    pub header: RecordHeader,
    pub entries: Vec<RecordEntry>,
    pub trailer: RecordTrailer,
}

impl RecordFile {
    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) -> Result<(), WireError> {
        let mut w = RecordFileWriter::create(path, &self.header)?;
        for e in &self.entries {
            w.entry(e)?;
        }
        w.finish(&self.trailer)
    }

    /// Reads a whole record file.
    pub fn read(path: &Path) -> Result<RecordFile, WireError> {
        Self::read_from(WireIn::open(path, "maestro record file")?)
    }

    /// Reads a record file held in memory; `name` stands for the file in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<RecordFile, WireError> {
        Self::read_from(WireIn::new(
            PathBuf::from(name),
            "maestro record file",
            Box::new(io::Cursor::new(bytes)),
        ))
    }

    fn read_from(mut input: WireIn) -> Result<RecordFile, WireError> {
        input.header(&RECORD_MAGIC, RECORD_VERSION)?;
        let header = read_header(&mut input)?;
        let mut entries = Vec::new();
        loop {
            let i = entries.len() as u64;
            let at = input.offset;
            match input.u8(format_args!("the tag of entry #{i} (1 packet, 2 trailer)"))? {
                TAG_PACKET => entries.push(read_entry(&mut input, i)?),
                TAG_TRAILER => break,
                t => {
                    return Err(input.invalid(
                        at,
                        format!("the tag of entry #{i} (1 packet, 2 trailer)"),
                        format!("{t}"),
                    ))
                }
            }
        }
        let trailer = read_trailer(&mut input)?;
        if !input.at_end()? {
            let at = input.offset;
            return Err(input.invalid(at, "the end of the file after the trailer", "more bytes"));
        }
        Ok(RecordFile {
            header,
            entries,
            trailer,
        })
    }
}

/// Streams a record file: the header at creation, entries as packets are processed,
/// the trailer at the end.
pub struct RecordFileWriter {
    out: WireOut,
    entries: u64,
}

impl RecordFileWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path, header: &RecordHeader) -> Result<RecordFileWriter, WireError> {
        Self::start(WireOut::create(path)?, header)
    }

    /// A writer into any byte sink; `name` stands for it in messages.
    pub fn from_writer(
        name: &str,
        out: Box<dyn Write + Send>,
        header: &RecordHeader,
    ) -> Result<RecordFileWriter, WireError> {
        Self::start(WireOut::new(PathBuf::from(name), out), header)
    }

    fn start(mut out: WireOut, h: &RecordHeader) -> Result<RecordFileWriter, WireError> {
        out.put(&RECORD_MAGIC)?;
        out.u32(RECORD_VERSION)?;
        out.string(&h.nf, "the NF name")?;
        out.string(h.strategy.name(), "the strategy")?;
        out.u32(h.cores)?;
        out.string(&h.schedule, "the schedule")?;
        out.string(h.mutant.as_deref().unwrap_or(""), "the mutant")?;
        out.string(&h.rtm, "the RTM status")?;
        out.string(&h.parse_mode, "the parse mode")?;
        out.count(h.renamed.len(), "renamed fields")?;
        for (o, i) in &h.renamed {
            out.string(o, "a renamed out field")?;
            out.string(i, "a renamed in field")?;
        }
        Ok(RecordFileWriter { out, entries: 0 })
    }

    /// Appends the entry of the next input packet.
    pub fn entry(&mut self, e: &RecordEntry) -> Result<(), WireError> {
        let out = &mut self.out;
        out.u8(TAG_PACKET)?;
        match &e.observation {
            Observation::Drop => out.u8(OBS_DROP)?,
            Observation::Forward { port, bytes } => {
                out.u8(OBS_FORWARD)?;
                out.u16(*port)?;
                out.bytes(bytes, MAX_FRAME, "an output frame")?;
            }
            Observation::Flood { bytes } => {
                out.u8(OBS_FLOOD)?;
                out.bytes(bytes, MAX_FRAME, "an output frame")?;
            }
        }
        let r = &e.record;
        out.u16(r.core)?;
        out.u64(r.queue_pos)?;
        out.u64(r.epoch)?;
        out.u8(u8::from(r.wrote))?;
        out.u64(r.now)?;
        out.u32(r.hash)?;
        let n = u8::try_from(e.translations.len()).map_err(|_| WireError::Io {
            path: out.path.clone(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "more than 255 translations of one packet",
            ),
        })?;
        out.u8(n)?;
        for t in &e.translations {
            out.u16(t.field)?;
            out.u64(t.old)?;
            out.u64(t.new)?;
        }
        self.entries += 1;
        Ok(())
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the trailer and flushes.
    pub fn finish(mut self, t: &RecordTrailer) -> Result<(), WireError> {
        let out = &mut self.out;
        out.u8(TAG_TRAILER)?;
        out.u64(t.faults)?;
        out.count(t.access_logs.len(), "cores")?;
        for log in &t.access_logs {
            out.u8(u8::from(log.is_some()))?;
            if let Some(counts) = log {
                out.count(counts.len(), "access counts")?;
                for c in counts {
                    out.u16(c.object)?;
                    out.u64(c.key)?;
                    out.u64(c.count)?;
                }
            }
        }
        out.count(t.stats.len(), "statistics")?;
        for (k, v) in &t.stats {
            out.string(k, "a statistic's name")?;
            out.u64(*v)?;
        }
        out.count(t.conflicts.len(), "conflicts")?;
        for c in &t.conflicts {
            out.u64(c.index)?;
            out.u16(c.field)?;
            out.u64(c.seq)?;
            out.u64(c.par)?;
            let (kind, other) = match c.kind {
                ConflictKind::SeqAlreadyMapped { existing_par } => (0, existing_par),
                ConflictKind::ParAlreadyTaken { existing_seq } => (1, existing_seq),
            };
            out.u8(kind)?;
            out.u64(other)?;
        }
        out.flush()
    }
}

fn read_header(input: &mut WireIn) -> Result<RecordHeader, WireError> {
    let nf = input.string("the NF name")?;
    let at = input.offset;
    let strategy_name = input.string("the strategy")?;
    let strategy = Strategy::parse(&strategy_name).ok_or_else(|| {
        input.invalid(
            at,
            "a strategy (seq, sn, locks or tm)",
            format!("{strategy_name:?}"),
        )
    })?;
    let cores = input.u32("the core count")?;
    let schedule = input.string("the schedule")?;
    let mutant = Some(input.string("the mutant")?).filter(|m| !m.is_empty());
    let rtm = input.string("the RTM status")?;
    let parse_mode = input.string("the parse mode")?;
    let n = input.count(MAX_LIST, "the number of renamed fields")?;
    let mut renamed = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let o = input.string("a renamed out field")?;
        let i = input.string("a renamed in field")?;
        renamed.push((o, i));
    }
    Ok(RecordHeader {
        nf,
        strategy,
        cores,
        schedule,
        mutant,
        rtm,
        parse_mode,
        renamed,
    })
}

fn read_observation(input: &mut WireIn, i: u64) -> Result<Observation, WireError> {
    let at = input.offset;
    let what = format!("the observation kind of packet #{i} (0 drop, 1 forward, 2 flood)");
    match input.u8(&what)? {
        OBS_DROP => Ok(Observation::Drop),
        OBS_FORWARD => {
            let port = input.u16(format_args!("the output port of packet #{i}"))?;
            let bytes = input.bytes(MAX_FRAME, format_args!("the output frame of packet #{i}"))?;
            Ok(Observation::Forward { port, bytes })
        }
        OBS_FLOOD => {
            let bytes = input.bytes(MAX_FRAME, format_args!("the output frame of packet #{i}"))?;
            Ok(Observation::Flood { bytes })
        }
        k => Err(input.invalid(at, what, format!("{k}"))),
    }
}

fn read_record(input: &mut WireIn, i: u64) -> Result<PacketRecord, WireError> {
    Ok(PacketRecord {
        core: input.u16(format_args!("the core of packet #{i}"))?,
        queue_pos: input.u64(format_args!("the queue position of packet #{i}"))?,
        epoch: input.u64(format_args!("the epoch of packet #{i}"))?,
        wrote: input.bool(format_args!("the wrote flag of packet #{i}"))?,
        now: input.u64(format_args!("the time (now) of packet #{i}"))?,
        hash: input.u32(format_args!("the RSS hash of packet #{i}"))?,
    })
}

fn read_entry(input: &mut WireIn, i: u64) -> Result<RecordEntry, WireError> {
    let observation = read_observation(input, i)?;
    let record = read_record(input, i)?;
    let n = input.u8(format_args!("the translation count of packet #{i}"))?;
    let mut translations = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        translations.push(Translation {
            index: i,
            field: input.u16(format_args!("a translated field of packet #{i}"))?,
            old: input.u64(format_args!("a translated old value of packet #{i}"))?,
            new: input.u64(format_args!("a translated new value of packet #{i}"))?,
        });
    }
    Ok(RecordEntry {
        observation,
        record,
        translations,
    })
}

fn read_access_log(input: &mut WireIn, core: usize) -> Result<Option<Vec<AccessCount>>, WireError> {
    if !input.bool(format_args!("whether core {core} has an access log"))? {
        return Ok(None);
    }
    let n = input.count(MAX_LIST, format_args!("the access count of core {core}"))?;
    let mut counts = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        counts.push(AccessCount {
            object: input.u16(format_args!("an accessed object of core {core}"))?,
            key: input.u64(format_args!("an accessed key of core {core}"))?,
            count: input.u64(format_args!("an access count of core {core}"))?,
        });
    }
    Ok(Some(counts))
}

fn read_conflict(input: &mut WireIn) -> Result<RenameConflict, WireError> {
    let index = input.u64("a conflict's packet index")?;
    let field = input.u16("a conflict's field")?;
    let seq = input.u64("a conflict's sequential value")?;
    let par = input.u64("a conflict's parallel value")?;
    let at = input.offset;
    let kind = input.u8("a conflict's kind (0 or 1)")?;
    let other = input.u64("a conflict's existing value")?;
    let kind = match kind {
        0 => ConflictKind::SeqAlreadyMapped {
            existing_par: other,
        },
        1 => ConflictKind::ParAlreadyTaken {
            existing_seq: other,
        },
        k => return Err(input.invalid(at, "a conflict's kind (0 or 1)", format!("{k}"))),
    };
    Ok(RenameConflict {
        index,
        field,
        seq,
        par,
        kind,
    })
}

fn read_trailer(input: &mut WireIn) -> Result<RecordTrailer, WireError> {
    let faults = input.u64("the fault count")?;
    let cores = input.count(MAX_CORES, "the number of access logs")?;
    let access_logs = (0..cores)
        .map(|c| read_access_log(input, c))
        .collect::<Result<_, _>>()?;
    let n = input.count(MAX_LIST, "the number of statistics")?;
    let mut stats = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let k = input.string("a statistic's name")?;
        let v = input.u64(format_args!("the value of statistic {k}"))?;
        stats.push((k, v));
    }
    let n = input.count(MAX_LIST, "the number of conflicts")?;
    let conflicts = (0..n)
        .map(|_| read_conflict(input))
        .collect::<Result<_, _>>()?;
    Ok(RecordTrailer {
        faults,
        access_logs,
        stats,
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::nf::Strategy;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as PStrategy;

    fn packet_bytes(packets: &[InputPacket]) -> Vec<u8> {
        let sink = SharedBuf::default();
        let mut w = PacketFileWriter::from_writer("<mem>", Box::new(sink.clone())).unwrap();
        for p in packets {
            w.write(p).unwrap();
        }
        w.finish().unwrap();
        sink.take()
    }

    fn record_bytes(file: &RecordFile) -> Vec<u8> {
        let sink = SharedBuf::default();
        let mut w =
            RecordFileWriter::from_writer("<mem>", Box::new(sink.clone()), &file.header).unwrap();
        for e in &file.entries {
            w.entry(e).unwrap();
        }
        w.finish(&file.trailer).unwrap();
        sink.take()
    }

    /// A `Write` whose bytes the test can take back after the writer is gone.
    #[derive(Clone, Default)]
    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl SharedBuf {
        fn take(&self) -> Vec<u8> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn arb_packet() -> impl PStrategy<Value = InputPacket> {
        (
            any::<u16>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(port, time_ns, data)| InputPacket {
                port,
                time_ns,
                data,
            })
    }

    fn arb_observation() -> impl PStrategy<Value = Observation> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            Just(Observation::Drop),
            (any::<u16>(), bytes.clone())
                .prop_map(|(port, bytes)| Observation::Forward { port, bytes }),
            bytes.prop_map(|bytes| Observation::Flood { bytes }),
        ]
    }

    fn arb_record() -> impl PStrategy<Value = PacketRecord> {
        (
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(|(core, queue_pos, epoch, wrote, now, hash)| PacketRecord {
                core,
                queue_pos,
                epoch,
                wrote,
                now,
                hash,
            })
    }

    fn arb_entries() -> impl PStrategy<Value = Vec<RecordEntry>> {
        let entry = (
            arb_observation(),
            arb_record(),
            proptest::collection::vec((any::<u16>(), any::<u64>(), any::<u64>()), 0..3),
        );
        proptest::collection::vec(entry, 0..20).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (observation, record, ts))| RecordEntry {
                    observation,
                    record,
                    translations: ts
                        .into_iter()
                        .map(|(field, old, new)| Translation {
                            index: i as u64,
                            field,
                            old,
                            new,
                        })
                        .collect(),
                })
                .collect()
        })
    }

    fn arb_conflict() -> impl PStrategy<Value = RenameConflict> {
        (
            any::<u64>(),
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(index, field, seq, par, which, other)| RenameConflict {
                index,
                field,
                seq,
                par,
                kind: if which {
                    ConflictKind::SeqAlreadyMapped {
                        existing_par: other,
                    }
                } else {
                    ConflictKind::ParAlreadyTaken {
                        existing_seq: other,
                    }
                },
            })
    }

    fn arb_trailer() -> impl PStrategy<Value = RecordTrailer> {
        let count = (any::<u16>(), any::<u64>(), any::<u64>())
            .prop_map(|(object, key, count)| AccessCount { object, key, count });
        (
            any::<u64>(),
            proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(count, 0..5)),
                0..4,
            ),
            proptest::collection::vec(("[a-z_.0-9]{0,12}", any::<u64>()), 0..5),
            proptest::collection::vec(arb_conflict(), 0..4),
        )
            .prop_map(|(faults, access_logs, stats, conflicts)| RecordTrailer {
                faults,
                access_logs,
                stats,
                conflicts,
            })
    }

    fn arb_header() -> impl PStrategy<Value = RecordHeader> {
        (
            "[a-z]{1,8}",
            proptest::sample::select(Strategy::ALL.to_vec()),
            any::<u32>(),
            "(threads|seed:[0-9]{1,5})",
            proptest::option::of("[a-z-]{1,20}"),
            ".{0,20}",
            proptest::collection::vec(("[a-z.]{1,8}", "[a-z.]{1,8}"), 0..3),
        )
            .prop_map(|(nf, strategy, cores, schedule, mutant, rtm, renamed)| {
                RecordHeader {
                    nf,
                    strategy,
                    cores,
                    schedule,
                    mutant,
                    rtm,
                    parse_mode: "strict".into(),
                    renamed,
                }
            })
    }

    proptest! {
        #[test]
        fn packet_files_round_trip(packets in proptest::collection::vec(arb_packet(), 0..30)) {
            let bytes = packet_bytes(&packets);
            let back: Vec<InputPacket> = PacketFileReader::from_bytes("p.bin", bytes)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(back, packets);
        }

        #[test]
        fn record_files_round_trip(
            header in arb_header(),
            entries in arb_entries(),
            trailer in arb_trailer(),
        ) {
            let file = RecordFile { header, entries, trailer };
            let back = RecordFile::from_bytes("r.bin", record_bytes(&file)).unwrap();
            prop_assert_eq!(back, file);
        }

        #[test]
        fn truncated_record_files_are_errors_never_panics(
            entries in arb_entries(),
            trailer in arb_trailer(),
            cut in any::<prop::sample::Index>(),
        ) {
            let header = RecordHeader {
                nf: "nat".into(),
                strategy: Strategy::Locks,
                cores: 2,
                schedule: "threads".into(),
                mutant: None,
                rtm: "not applicable".into(),
                parse_mode: "strict".into(),
                renamed: vec![],
            };
            let bytes = record_bytes(&RecordFile { header, entries, trailer });
            let cut = cut.index(bytes.len());
            let err = RecordFile::from_bytes("r.bin", bytes[..cut].to_vec()).unwrap_err();
            prop_assert!(matches!(err, WireError::Truncated { .. }), "{}", err);
            prop_assert!(err.to_string().starts_with("r.bin: byte offset "), "{}", err);
        }
    }

    fn sample_packets() -> Vec<InputPacket> {
        vec![
            InputPacket {
                port: 1,
                time_ns: 10,
                data: vec![1, 2, 3],
            },
            InputPacket {
                port: 0,
                time_ns: 20,
                data: vec![4; 10],
            },
        ]
    }

    #[test]
    fn files_on_disk_round_trip() {
        let dir = std::env::temp_dir().join(format!("maestro-wire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.bin");
        write_packets(&path, &sample_packets()).unwrap();
        assert_eq!(read_packets(&path).unwrap(), sample_packets());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_packets(Path::new("/nonexistent/p.bin")).unwrap_err();
        assert!(matches!(err, WireError::Io { .. }));
        assert!(err.to_string().starts_with("/nonexistent/p.bin: "), "{err}");
    }

    #[test]
    fn bad_magic_is_reported_at_offset_zero() {
        let mut bytes = packet_bytes(&sample_packets());
        bytes[0] = b'X';
        let err = PacketFileReader::from_bytes("p.bin", bytes).err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with("p.bin: byte offset 0: expected the magic"),
            "{msg}"
        );
        assert!(msg.contains("XSTPKTS"), "{msg}");
        // A record file is not a packet file either.
        let rec = record_bytes(&RecordFile {
            header: RecordHeader {
                nf: "fw".into(),
                strategy: Strategy::Seq,
                cores: 1,
                schedule: "threads".into(),
                mutant: None,
                rtm: "not applicable".into(),
                parse_mode: "strict".into(),
                renamed: vec![],
            },
            entries: vec![],
            trailer: RecordTrailer::default(),
        });
        let err = PacketFileReader::from_bytes("r.bin", rec).err().unwrap();
        assert!(
            err.to_string().contains("not a maestro packet file"),
            "{err}"
        );
    }

    #[test]
    fn wrong_version_is_reported() {
        let mut bytes = packet_bytes(&sample_packets());
        bytes[8] = 9;
        let err = PacketFileReader::from_bytes("p.bin", bytes).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("p.bin: byte offset 8: expected format version 1, found version 9"),
            "{err}"
        );
    }

    #[test]
    fn truncated_packet_names_packet_and_offset() {
        let bytes = packet_bytes(&sample_packets());
        // header 12 + packet 0 (2 + 8 + 4 + 3 = 17) = 29; packet 1 frame starts at 29 + 14.
        let cut = bytes[..bytes.len() - 4].to_vec();
        let mut r = PacketFileReader::from_bytes("p.bin", cut).unwrap();
        assert_eq!(r.next().unwrap().unwrap(), sample_packets()[0]);
        let err = r.next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.bin: byte offset 43: the file ends inside the frame of packet #1 (6 of 10 bytes \
             present); it was cut short: write it again"
        );
        assert!(r.next().is_none(), "the reader stops after an error");
    }

    #[test]
    fn absurd_frame_length_is_refused_before_allocating() {
        let mut bytes = packet_bytes(&sample_packets()[..1]);
        bytes[22..26].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = read_all(bytes).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "p.bin: byte offset 22: expected the length of the frame of packet #0 (at most 262144), found 4294967295"
            ),
            "{err}"
        );
    }

    fn read_all(bytes: Vec<u8>) -> Result<Vec<InputPacket>, WireError> {
        PacketFileReader::from_bytes("p.bin", bytes)?.collect()
    }

    #[test]
    fn record_file_rejects_trailing_bytes_and_bad_tags() {
        let file = RecordFile {
            header: RecordHeader {
                nf: "fw".into(),
                strategy: Strategy::Sn,
                cores: 2,
                schedule: "seed:7".into(),
                mutant: Some("keep-aborted-decision".into()),
                rtm: "not applicable".into(),
                parse_mode: "strict".into(),
                renamed: vec![],
            },
            entries: vec![RecordEntry {
                observation: Observation::Drop,
                record: PacketRecord::default(),
                translations: vec![],
            }],
            trailer: RecordTrailer::default(),
        };
        let bytes = record_bytes(&file);
        let mut longer = bytes.clone();
        longer.push(0);
        let err = RecordFile::from_bytes("r.bin", longer).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "byte offset {}: expected the end of the file after the trailer",
                bytes.len()
            )),
            "{err}"
        );
        // The first entry's tag sits right after the header.
        let tag_at = bytes.len() - 1 - (1 + 2 + 8 + 8 + 1 + 8 + 4 + 1) - (1 + 8 + 4 + 4 + 4);
        let mut bad = bytes.clone();
        assert_eq!(bad[tag_at], TAG_PACKET);
        bad[tag_at] = 7;
        let err = RecordFile::from_bytes("r.bin", bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "r.bin: byte offset {tag_at}: expected the tag of entry #0 (1 packet, 2 trailer), \
                 found 7; the file is corrupt or not a maestro record file: write it again"
            )
        );
    }
}
