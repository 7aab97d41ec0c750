//! The binary files between the equivalence checker and a generated binary.
//!
//! - A **packet file** (checker -> binary) holds the input trace: `InputPacket`s in input
//!   order. Written by [`PacketFileWriter`] / [`write_packets`], streamed back by
//!   [`PacketFileReader`] / [`read_packets`].
//! - A **record file** (binary -> checker) holds what a run did: a header (NF, strategy,
//!   cores, schedule, mutant, RTM status, renamed fields), one entry per input packet in
//!   input order (observation, [`PacketRecord`], input translations), then a trailer
//!   (NF faults, per-core access logs, engine statistics, renaming conflicts). Written by
//!   [`RecordFileWriter`] (streaming, chunk by chunk; the `record` driver has the
//!   engine's workers encode observations with [`EntryEncoder`]) or [`RecordFile::write`];
//!   read by [`RecordRun::read`] / [`RecordFile::read`] (ordinary entries through a fast
//!   path, anything unusual through the careful reader that names what is wrong).
//!
//! Both are little-endian, start with an 8-byte magic and a `u32` version, and are read
//! without trusting any length: every read error names the file, the byte offset and what
//! was expected there. The exact layouts are in the docs of [`PACKET_MAGIC`] and
//! [`RECORD_MAGIC`].

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::engine::{ObservationEncoder, PacketRecord};
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
    #[error("{}: byte offset {offset}: entry #{entry} stores its output frame as patches of input packet #{entry}, but {given} input packets were given; read the file with the packets the run read (RecordFile::read_with_inputs)", path.display())]
    NeedsInputs {
        path: PathBuf,
        offset: u64,
        entry: u64,
        given: usize,
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

/// What a file's first 8 bytes must be, for error messages.
fn magic_name(magic: &[u8; 8]) -> String {
    format!("the magic {:?}", String::from_utf8_lossy(magic))
}

/// A mismatch as `(offset, expected, found)`, for the reader's own error type.
type Mismatch = (u64, String, String);

fn check_magic(magic: &[u8; 8], found: [u8; 8]) -> Result<(), Mismatch> {
    if &found == magic {
        return Ok(());
    }
    let found = format!("{:?}", String::from_utf8_lossy(&found));
    Err((0, magic_name(magic), found))
}

fn check_version(version: u32, v: u32) -> Result<(), Mismatch> {
    if v == version {
        return Ok(());
    }
    Err((
        8,
        format!("format version {version}"),
        format!("version {v}"),
    ))
}

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
        // Fast path: the buffer already holds the bytes (almost always).
        let avail = self.src.buffer();
        if avail.len() >= buf.len() {
            buf.copy_from_slice(&avail[..buf.len()]);
            self.src.consume(buf.len());
            self.offset += buf.len() as u64;
            return Ok(());
        }
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

    fn u16(&mut self, what: impl std::fmt::Display + Copy) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: impl std::fmt::Display + Copy) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: impl std::fmt::Display + Copy) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u32` length no larger than `max`, then that many bytes into `dst` (replacing
    /// what it held, reusing its buffer).
    fn bytes_into(
        &mut self,
        max: u32,
        what: impl std::fmt::Display + Copy,
        dst: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let at = self.offset;
        let len = self.u32(format_args!("the length of {what}"))?;
        if len > max {
            return Err(self.invalid(
                at,
                format!("the length of {what} (at most {max})"),
                format!("{len}"),
            ));
        }
        dst.clear();
        // Fast path: copy straight from the buffer (no zero-filling first).
        let avail = self.src.buffer();
        if avail.len() >= len as usize {
            dst.extend_from_slice(&avail[..len as usize]);
            self.src.consume(len as usize);
            self.offset += u64::from(len);
            return Ok(());
        }
        dst.resize(len as usize, 0);
        self.exact(dst, what)
    }

    /// The magic and a supported version.
    fn header(&mut self, magic: &[u8; 8], version: u32) -> Result<(), WireError> {
        let found = self.array(&magic_name(magic))?;
        check_magic(magic, found).map_err(|(at, e, f)| self.invalid(at, e, f))?;
        let v = self.u32("the format version")?;
        check_version(version, v).map_err(|(at, e, f)| self.invalid(at, e, f))
    }
}

/// A whole file in memory, read front to back: the record reader. Errors name the file,
/// the byte offset and what was expected there, as [`WireIn`]'s do.
struct SliceIn<'b> {
    path: &'b Path,
    kind: &'static str,
    bytes: &'b [u8],
    pos: usize,
    /// Why the last `Err(Stop)` was returned.
    failure: Option<WireError>,
}

/// A read of a [`SliceIn`] failed; the error waits in [`SliceIn::failure`]. A `Result`
/// carrying the (large) error itself made every field read of a million entries return
/// through memory.
#[derive(Debug)]
struct Stop;

impl<'b> SliceIn<'b> {
    fn new(path: &'b Path, kind: &'static str, bytes: &'b [u8]) -> SliceIn<'b> {
        SliceIn {
            path,
            kind,
            bytes,
            pos: 0,
            failure: None,
        }
    }

    /// Keeps `e` as the reason of the failure and stops.
    #[cold]
    fn fail(&mut self, e: WireError) -> Stop {
        self.failure = Some(e);
        Stop
    }

    /// The kept error (a generic one if a bug lost it).
    fn error(&mut self) -> WireError {
        self.failure.take().unwrap_or_else(|| WireError::Invalid {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            kind: self.kind,
            expected: "a readable entry".into(),
            found: "an error without a reason (a bug in the reader)".into(),
        })
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    #[cold]
    fn invalid(&mut self, at: u64, expected: impl Into<String>, found: impl Into<String>) -> Stop {
        let e = WireError::Invalid {
            path: self.path.to_path_buf(),
            offset: at,
            kind: self.kind,
            expected: expected.into(),
            found: found.into(),
        };
        self.fail(e)
    }

    /// The next `n` bytes; too few left is [`WireError::Truncated`] where `what` starts.
    fn take(&mut self, n: usize, what: impl std::fmt::Display) -> Result<&'b [u8], Stop> {
        let rest = &self.bytes[self.pos..];
        match rest.get(..n) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => {
                let e = WireError::Truncated {
                    path: self.path.to_path_buf(),
                    offset: self.pos as u64,
                    expected: format!("{what} ({} of {n} bytes present)", rest.len()),
                };
                Err(self.fail(e))
            }
        }
    }

    fn array<const K: usize>(&mut self, what: impl std::fmt::Display) -> Result<[u8; K], Stop> {
        let mut a = [0u8; K];
        a.copy_from_slice(self.take(K, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: impl std::fmt::Display) -> Result<u8, Stop> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: impl std::fmt::Display) -> Result<u16, Stop> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: impl std::fmt::Display) -> Result<u32, Stop> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: impl std::fmt::Display) -> Result<u64, Stop> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: impl std::fmt::Display + Copy) -> Result<bool, Stop> {
        let at = self.offset();
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.invalid(at, format!("{what} (0 or 1)"), format!("{v}"))),
        }
    }

    /// An unsigned LEB128 number of at most 10 bytes that fits 64 bits.
    fn varint(&mut self, what: impl std::fmt::Display + Copy) -> Result<u64, Stop> {
        let at = self.offset();
        let mut v = 0u64;
        for k in 0..10u32 {
            let b = match self.bytes.get(self.pos) {
                Some(&b) => b,
                None => {
                    let e = WireError::Truncated {
                        path: self.path.to_path_buf(),
                        offset: at,
                        expected: format!("{what} (a variable-length number, {k} bytes present)"),
                    };
                    return Err(self.fail(e));
                }
            };
            self.pos += 1;
            if k == 9 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * k);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid(
            at,
            format!("{what} (a variable-length number of at most 64 bits)"),
            "a longer one",
        ))
    }

    /// A `u32` length no larger than `max`, then that many bytes (borrowed).
    fn bytes(&mut self, max: u32, what: impl std::fmt::Display + Copy) -> Result<&'b [u8], Stop> {
        let at = self.offset();
        let len = self.u32(format_args!("the length of {what}"))?;
        if len > max {
            return Err(self.invalid(
                at,
                format!("the length of {what} (at most {max})"),
                format!("{len}"),
            ));
        }
        self.take(len as usize, what)
    }

    /// A length-prefixed UTF-8 string of at most 64 KiB.
    fn string(&mut self, what: impl std::fmt::Display + Copy) -> Result<String, Stop> {
        let at = self.offset();
        let bytes = self.bytes(u32::from(u16::MAX), what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.invalid(at + 4, format!("{what} as UTF-8 text"), "invalid UTF-8"))
    }

    /// A `u32` element count no larger than `max` (bounds what a corrupt count allocates).
    fn count(&mut self, max: u64, what: impl std::fmt::Display + Copy) -> Result<usize, Stop> {
        let at = self.offset();
        let n = self.u32(what)?;
        if u64::from(n) > max {
            return Err(self.invalid(at, format!("{what} (at most {max})"), format!("{n}")));
        }
        Ok(n as usize)
    }

    /// The magic and a supported version.
    fn header(&mut self, magic: &[u8; 8], version: u32) -> Result<(), Stop> {
        let found = self.array(magic_name(magic))?;
        check_magic(magic, found).map_err(|(at, e, f)| self.invalid(at, e, f))?;
        let v = self.u32("the format version")?;
        check_version(version, v).map_err(|(at, e, f)| self.invalid(at, e, f))
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Bytes a [`WireOut`] gathers before it writes them out.
const OUT_BUFFER: usize = 1 << 20;

/// A buffered byte sink that knows its file name, for error messages. Its buffer is a
/// plain `Vec` that encoders append to directly (see [`RecordFileWriter::entry_parts`]).
pub(crate) struct WireOut {
    path: PathBuf,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    /// Bytes written out so far.
    len: u64,
    /// The file being overwritten in place, cut to `len` at the end ([`WireOut::create`]).
    file: Option<File>,
}

impl WireOut {
    /// Writes `path` from its start, over what it holds, and cuts it to length when
    /// flushed or dropped. The checker rewrites the same scratch files run after run:
    /// overwriting keeps their pages, where truncating first frees them and every
    /// write then faults in and zeroes fresh ones (on tmpfs 7 ms instead of 35 for a
    /// 74 MB file, more on a VM).
    fn create(path: &Path) -> Result<WireOut, WireError> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| WireError::io(path, e))?;
        let sizer = file.try_clone().map_err(|e| WireError::io(path, e))?;
        let mut out = WireOut::new(path.to_path_buf(), Box::new(file));
        out.file = Some(sizer);
        Ok(out)
    }

    fn new(path: PathBuf, out: Box<dyn Write + Send>) -> WireOut {
        WireOut {
            path,
            out,
            buf: Vec::with_capacity(OUT_BUFFER + 4096),
            len: 0,
            file: None,
        }
    }

    /// Cuts an overwritten file to what was written.
    fn cut(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.set_len(self.len),
            None => Ok(()),
        }
    }

    /// Writes the buffer out once it holds [`OUT_BUFFER`] bytes.
    #[inline]
    fn spill(&mut self) -> Result<(), WireError> {
        if self.buf.len() >= OUT_BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), WireError> {
        let written = self.out.write_all(&self.buf);
        self.len += self.buf.len() as u64;
        self.buf.clear();
        written.map_err(|e| WireError::io(&self.path, e))
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.buf.extend_from_slice(bytes);
        self.spill()
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
        self.write_out()?;
        self.out
            .flush()
            .and_then(|()| self.cut())
            .map_err(|e| WireError::io(&self.path, e))
    }
}

impl Drop for WireOut {
    /// Like `BufWriter`: what was put is written out even without a final flush (errors
    /// cannot be reported here), and an overwritten file keeps nothing of its old
    /// contents past it.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.out.write_all(&self.buf);
            self.len += self.buf.len() as u64;
            self.buf.clear();
        }
        let _ = self.out.flush();
        let _ = self.cut();
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

    /// Reads the next packet into `p`, reusing its frame buffer.
    fn read_one_into(&mut self, p: &mut InputPacket) -> Result<(), WireError> {
        // Fast path: the whole packet is in the buffer and its length is sane; anything
        // else goes field by field, so errors name the field.
        let avail = self.input.src.buffer();
        if let Some(head) = avail.get(..14) {
            let len = u32::from_le_bytes([head[10], head[11], head[12], head[13]]);
            if len <= MAX_FRAME {
                if let Some(frame) = avail.get(14..14 + len as usize) {
                    p.port = u16::from_le_bytes([head[0], head[1]]);
                    p.time_ns = u64::from_le_bytes([
                        head[2], head[3], head[4], head[5], head[6], head[7], head[8], head[9],
                    ]);
                    p.data.clear();
                    p.data.extend_from_slice(frame);
                    self.input.src.consume(14 + len as usize);
                    self.input.offset += 14 + u64::from(len);
                    return Ok(());
                }
            }
        }
        let i = self.index;
        p.port = self.input.u16(format_args!("the port of packet #{i}"))?;
        p.time_ns = self
            .input
            .u64(format_args!("the timestamp of packet #{i}"))?;
        self.input.bytes_into(
            MAX_FRAME,
            format_args!("the frame of packet #{i}"),
            &mut p.data,
        )
    }

    /// Replaces `chunk` with the next up to `max` packets (fewer at the end of the file,
    /// none after it), reusing the frame buffers of the packets it held: a run that
    /// reads chunk after chunk into the same vector allocates nothing once it has grown.
    /// After an error `chunk` holds the packets before the bad one, and the reader
    /// yields nothing more.
    pub fn read_chunk_into(
        &mut self,
        chunk: &mut Vec<InputPacket>,
        max: usize,
    ) -> Result<(), WireError> {
        let mut n = 0;
        let result = loop {
            if n == max || self.failed {
                break Ok(());
            }
            // Every whole packet the buffer holds, straight out of it.
            let avail = self.input.src.buffer();
            let mut used = 0;
            let first = n;
            while n < max {
                let rest = &avail[used..];
                let Some(head) = rest.get(..14) else { break };
                let len = u32::from_le_bytes([head[10], head[11], head[12], head[13]]);
                if len > MAX_FRAME {
                    break;
                }
                let Some(frame) = rest.get(14..14 + len as usize) else {
                    break;
                };
                if n == chunk.len() {
                    chunk.push(InputPacket {
                        port: 0,
                        time_ns: 0,
                        data: Vec::with_capacity(frame.len()),
                    });
                }
                let p = &mut chunk[n];
                p.port = u16::from_le_bytes([head[0], head[1]]);
                p.time_ns = u64::from_le_bytes([
                    head[2], head[3], head[4], head[5], head[6], head[7], head[8], head[9],
                ]);
                p.data.clear();
                p.data.extend_from_slice(frame);
                used += 14 + len as usize;
                n += 1;
            }
            self.input.src.consume(used);
            self.input.offset += used as u64;
            self.index += (n - first) as u64;
            if n == max {
                break Ok(());
            }
            // The buffer ends inside a packet, or is empty: one packet field by field
            // (refilling the buffer; errors name the field).
            match self.input.at_end() {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            if n == chunk.len() {
                chunk.push(InputPacket {
                    port: 0,
                    time_ns: 0,
                    data: Vec::new(),
                });
            }
            if let Err(e) = self.read_one_into(&mut chunk[n]) {
                break Err(e);
            }
            self.index += 1;
            n += 1;
        };
        chunk.truncate(n);
        if result.is_err() {
            self.failed = true;
        }
        result
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
        let mut p = InputPacket {
            port: 0,
            time_ns: 0,
            data: Vec::new(),
        };
        match self.read_one_into(&mut p) {
            Ok(()) => {
                self.index += 1;
                Some(Ok(p))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
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
/// `bytes` = `u32` length + bytes, `bool` = one byte 0/1, `varint` = unsigned LEB128,
/// at most 10 bytes and 64 bits):
///
/// ```text
/// "MSTRECS\0"  version: u32 (= RECORD_VERSION)
/// header:  nf: str, strategy: str (seq|sn|locks|tm), cores: u32, schedule: str
///          (threads | threads-unpinned | seed:N), mutant: str ("" = none),
///          rtm: str, parse_mode: str, renamed: u32 count x (out_field: str, in_field: str),
///          frames: u8 (0 whole, 1 input patches: see FrameEncoding)
/// then per input packet, in input order:
///   tag 1: u8
///   observation: kind: u8 (0 drop, 1 forward, 2 flood); forward: port: u16;
///                forward and flood: frame
///     frame (frames 0): bytes
///     frame (frames 1): form: u8; form 0: bytes; form 1: the packet's input frame with
///                patches (same length): count: u8 x (skip: varint, len: varint >= 1,
///                len bytes), skip = unchanged bytes since the end of the previous patch
///                (since the start of the frame for the first)
///   record: flags: u8 (bit 0 wrote; bit 1 an epoch follows, else it is 0; bit 2 a
///           queue_pos follows, else it is the core's previous queue_pos + 1, or 0 for
///           the core's first packet; other bits 0), core: varint (at most 65535),
///           [epoch: varint], [queue_pos: varint],
///           now: varint (zigzag of the wrapping difference from the previous entry's now,
///           from 0 for the first entry), hash: u32
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
///
/// Version 2 made entries compact (version 1 spent 31 bytes on every record and always
/// stored whole frames): on a million packets the files and their reading were most of
/// the checker's time.
pub const RECORD_MAGIC: [u8; 8] = *b"MSTRECS\0";
/// Version of the record file layout.
pub const RECORD_VERSION: u32 = 2;

const TAG_PACKET: u8 = 1;
const TAG_TRAILER: u8 = 2;
const OBS_DROP: u8 = 0;
const OBS_FORWARD: u8 = 1;
const OBS_FLOOD: u8 = 2;
const FORM_WHOLE: u8 = 0;
const FORM_PATCHED: u8 = 1;
const FLAG_WROTE: u8 = 1;
const FLAG_EPOCH: u8 = 2;
const FLAG_QUEUE_POS: u8 = 4;
/// Differing runs separated by at most this many equal bytes share one patch (a patch
/// header costs two bytes).
const PATCH_GAP: usize = 2;
/// Bounds on counts read from a record file, so a corrupt count cannot allocate memory
/// it does not describe.
const MAX_CORES: u64 = 4096;
const MAX_LIST: u64 = 1 << 28;

/// How a record file stores output frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrameEncoding {
    /// Every frame whole: the file stands alone ([`RecordFile::read`]).
    #[default]
    Whole,
    /// A frame as long as its input as patches of the input frame (`record
    /// --patch-frames`, what the checker asks for). NFs rewrite a few header bytes, so
    /// the file is a fraction of the size, but reading it needs the packets the run read
    /// ([`RecordFile::read_with_inputs`], [`RecordRun::read`]).
    InputPatches,
}

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
    pub frames: FrameEncoding,
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

/// A whole record file in memory, every observation its own value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFile {
    pub header: RecordHeader,
    pub entries: Vec<RecordEntry>,
    pub trailer: RecordTrailer,
}

impl RecordFile {
    /// Writes the file to `path` (whole frames, whatever `header.frames` says: there
    /// are no inputs to patch).
    pub fn write(&self, path: &Path) -> Result<(), WireError> {
        let mut w = RecordFileWriter::create(path, &self.header)?;
        for e in &self.entries {
            w.entry(e)?;
        }
        w.finish(&self.trailer)
    }

    /// Reads a whole record file that stores whole frames.
    pub fn read(path: &Path) -> Result<RecordFile, WireError> {
        Ok(RecordRun::read(path, &[])?.into_file())
    }

    /// Reads a whole record file whose frames may be patches of `inputs`, the packets
    /// the run read, in order.
    pub fn read_with_inputs(path: &Path, inputs: &[InputPacket]) -> Result<RecordFile, WireError> {
        Ok(RecordRun::read(path, inputs)?.into_file())
    }

    /// Reads a record file held in memory; `name` stands for the file in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<RecordFile, WireError> {
        Ok(RecordRun::from_bytes(name, bytes, &[])?.into_file())
    }
}

/// How the compact records are implied by their predecessors (the same on both sides).
#[derive(Default)]
struct RecordContext {
    prev_now: u64,
    /// Per core, the queue position its next packet has unless the entry says otherwise.
    next_pos: Vec<u64>,
}

impl RecordContext {
    fn implied_pos(&mut self, core: u16) -> u64 {
        let c = usize::from(core);
        if self.next_pos.len() <= c {
            self.next_pos.resize(c + 1, 0);
        }
        self.next_pos[c]
    }

    fn advance(&mut self, r: &PacketRecord) {
        self.next_pos[usize::from(r.core)] = r.queue_pos.wrapping_add(1);
        self.prev_now = r.now;
    }
}

/// Appends an unsigned LEB128 number (7 bits per byte, low bits first).
#[cfg(test)]
fn put_varint(enc: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        enc.push((v as u8) | 0x80);
        v >>= 7;
    }
    enc.push(v as u8);
}

/// Writes an unsigned LEB128 number at `buf[at..]` (room checked by the caller's
/// sizing, or a panic-free bounds check) and returns where it ends.
#[inline]
fn put_varint_at(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

fn zigzag(d: u64) -> u64 {
    let d = d as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> u64 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as u64
}

#[inline]
fn varint_len(v: u64) -> usize {
    // ceil(bits / 7) for 1..=64 bits: (bits + 6) / 7 as a multiplication ((x * 37) >> 8
    // is x / 7 for x up to 70; a tested identity), not a division.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    ((bits + 6) * 37) >> 8
}

/// The runs of `out` that differ from `base` (same length), gaps of at most
/// [`PATCH_GAP`] equal bytes merged, into `runs` as `(start, end)`; with the size of
/// their patch encoding (form and count bytes included), or `None` beyond 255 runs.
/// The byte-by-byte definition that [`encode_patches`] computes word by word (the
/// tests hold one to the other).
#[cfg(test)]
fn diff_runs(base: &[u8], out: &[u8], runs: &mut Vec<(usize, usize)>) -> Option<usize> {
    runs.clear();
    let n = base.len().min(out.len());
    let mut size = 2;
    let mut prev_end = 0;
    let mut i = 0;
    while i < n {
        while i + 8 <= n && base[i..i + 8] == out[i..i + 8] {
            i += 8;
        }
        while i < n && base[i] == out[i] {
            i += 1;
        }
        if i == n {
            break;
        }
        let start = i;
        let mut end = i + 1;
        let mut j = end;
        while j < n && j - end <= PATCH_GAP {
            if base[j] != out[j] {
                end = j + 1;
            }
            j += 1;
        }
        if runs.len() == usize::from(u8::MAX) {
            return None;
        }
        runs.push((start, end));
        size += varint_len((start - prev_end) as u64) + varint_len((end - start) as u64);
        size += end - start;
        prev_end = end;
        i = end;
    }
    Some(size)
}

/// Frames up to this long are diffed in a bit set on the stack.
const STACK_DIFF: usize = 1024;

/// One bit per byte of an 8-byte word: bit `k` set iff byte `k` of `x` is not zero.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn nonzero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // Per byte: the high bit of (low 7 bits + 0x7f) | x is set iff the byte is not 0,
    // and no byte carries into the next.
    let high = (((x & LOW7) + LOW7) | x) & !LOW7;
    // Gathers the 8 high bits into the top byte, byte k's at bit 56 + k.
    high.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

/// The 8 bytes of `s` at `i`, little-endian (one unaligned load).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn word_at(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Bit `k` set iff byte `k` of the 16 bytes at `a[i..]` and `b[i..]` differ.
#[cfg(target_arch = "x86_64")]
#[inline]
fn diff16(a: &[u8], b: &[u8], i: usize) -> u64 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
    let (a, b) = (&a[i..i + 16], &b[i..i + 16]);
    // SAFETY: SSE2 is part of every x86_64 CPU (the target's baseline); the unaligned
    // loads read the 16 bytes of `a` and `b`, both slices of exactly 16 bytes.
    let equal = unsafe {
        let (x, y) = (
            _mm_loadu_si128(a.as_ptr().cast()),
            _mm_loadu_si128(b.as_ptr().cast()),
        );
        _mm_movemask_epi8(_mm_cmpeq_epi8(x, y))
    };
    u64::from(!(equal as u32) & 0xffff)
}

/// Bit `k` set iff byte `k` of the 16 bytes at `a[i..]` and `b[i..]` differ.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn diff16(a: &[u8], b: &[u8], i: usize) -> u64 {
    nonzero_bytes(word_at(a, i) ^ word_at(b, i))
        | nonzero_bytes(word_at(a, i + 8) ^ word_at(b, i + 8)) << 8
}

/// `bits[w]` bit `k` := byte `64 w + k` of `a` and `b` differ, for the words that
/// cover `a` and `b` (same length; bits past the end clear).
///
/// 16-byte blocks; a word's last block is the 16 bytes that end where the word (or the
/// frame) ends, overlapping the one before: a byte compares the same in both, so the
/// masks are simply ored.
fn diff_bits(a: &[u8], b: &[u8], bits: &mut [u64]) {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    if n < 16 {
        if let Some(w) = bits.first_mut() {
            *w = a
                .iter()
                .zip(b)
                .enumerate()
                .fold(0u64, |m, (k, (p, q))| m | u64::from(p != q) << k);
        }
        return;
    }
    for (k, word) in bits.iter_mut().enumerate() {
        let base = k * 64;
        let end = (base + 64).min(n);
        let mut m = 0u64;
        let mut i = base;
        while i + 16 <= end {
            m |= diff16(a, b, i) << (i - base);
            i += 16;
        }
        if i < end {
            // The last block ends at `end`; it may start in the previous word.
            let last = end - 16;
            m |= if last >= base {
                diff16(a, b, last) << (last - base)
            } else {
                diff16(a, b, last) >> (base - last)
            };
        }
        *word = m;
    }
}

/// Bit `p` of word `w` of `D | D >> 1 | D >> 2`: byte `p`, `p + 1` or `p + 2` differs
/// (`bits[w + 1]` must exist).
#[inline]
fn spread(bits: &[u64], w: usize) -> u64 {
    let (d, next) = (bits[w], bits[w + 1]);
    d | (d >> 1 | next << 63) | (d >> 2 | next << 62)
}

/// Frames up to this long are remembered by a [`PatchMemo`].
const MEMO_BYTES: usize = 128;
const MEMO_WORDS: usize = MEMO_BYTES / 64;
/// Patch encodings a [`PatchMemo`] keeps: one per kind of rewrite (an NF rewrites the
/// two directions of a flow differently).
const MEMO_SLOTS: usize = 4;

/// One remembered patch encoding.
#[derive(Clone, Debug, Default)]
struct Remembered {
    len: usize,
    /// The differing bytes, one bit each.
    diff: [u64; MEMO_WORDS],
    /// The encoding, form byte first.
    encoded: Vec<u8>,
}

/// What an [`EntryEncoder`] remembers of a core's last patched frames. NFs rewrite the
/// same header bytes with the same values packet after packet: the patches of a frame
/// depend only on which bytes differ from its input and on the output bytes they
/// cover, so when a frame differs where a remembered one did, and holds the bytes its
/// patches hold, its encoding is the remembered one and the run search is skipped.
#[derive(Clone, Debug, Default)]
pub struct PatchMemo {
    slots: Vec<Remembered>,
    /// The slot the next new encoding replaces.
    next: usize,
}

impl PatchMemo {
    /// The remembered encoding of `out`, whose differing bytes are `diff`, if any.
    #[inline]
    fn recall(&self, diff: &[u64], out: &[u8]) -> Option<&[u8]> {
        let n = out.len();
        if n > MEMO_BYTES {
            return None;
        }
        let used = n.div_ceil(64);
        // Element by element: `==` on slices this short would call memcmp.
        let same_diff = |r: &Remembered| (0..used).all(|w| r.diff[w] == diff[w]);
        self.slots
            .iter()
            .find(|r| r.len == n && same_diff(r) && holds(out, &r.encoded))
            .map(|r| &r.encoded[..])
    }

    fn remember(&mut self, diff: &[u64], out: &[u8], encoded: &[u8]) {
        let n = out.len();
        if n > MEMO_BYTES {
            return;
        }
        if self.slots.len() < MEMO_SLOTS {
            self.slots.push(Remembered::default());
        }
        let slot = self.next % self.slots.len();
        self.next = slot + 1;
        let r = &mut self.slots[slot];
        r.len = n;
        r.diff = [0; MEMO_WORDS];
        r.diff[..diff.len()].copy_from_slice(diff);
        r.encoded.clear();
        r.encoded.extend_from_slice(encoded);
    }
}

/// Whether `out` holds the bytes of the patches `encoded` (form, count, patches, as
/// [`encode_patches`] wrote them) where they go.
#[inline]
fn holds(out: &[u8], encoded: &[u8]) -> bool {
    let Some((&count, mut rest)) = encoded.get(1..).and_then(<[u8]>::split_first) else {
        return false;
    };
    let mut pos = 0;
    for _ in 0..count {
        let skip = checked_varint(&mut rest);
        let len = checked_varint(&mut rest);
        pos += skip;
        let (Some(want), Some(have)) = (rest.get(..len), out.get(pos..pos + len)) else {
            return false;
        };
        // Byte by byte: patches are a few bytes, too short for memcmp to pay.
        if want.iter().zip(have).any(|(w, h)| w != h) {
            return false;
        }
        rest = &rest[len..];
        pos += len;
    }
    true
}

/// Appends `out` as patches of `base` (same length: form, count, patches; see
/// [`RECORD_MAGIC`]) and returns true, or appends nothing and returns false when the
/// patches would not be shorter than the whole frame or need more than 255 runs.
///
/// A run starts at a differing byte and ends before the first three equal bytes that
/// follow it ([`PATCH_GAP`] equal bytes or fewer between differing ones are carried
/// inside a run). With `D` the bit set of differing bytes, a run ends at the first
/// clear bit after its start of `D | D >> 1 | D >> 2`; bits past the end are clear, so
/// every run ends by then.
fn encode_patches(
    base: &[u8],
    out: &[u8],
    enc: &mut Vec<u8>,
    memo: Option<&mut PatchMemo>,
) -> bool {
    debug_assert_eq!(PATCH_GAP, 2, "the run ends below are written for gaps of 2");
    let n = out.len();
    let used = n.div_ceil(64);
    // Two clear words past the used ones: `spread` reads the next word, and a run's
    // end may lie in the word after the last.
    let words = used + 2;
    let mut stack = [0u64; STACK_DIFF / 64 + 2];
    let mut heap = Vec::new();
    let bits: &mut [u64] = if words <= stack.len() {
        &mut stack[..words]
    } else {
        heap.resize(words, 0);
        &mut heap
    };
    diff_bits(base, out, &mut bits[..used]);
    let bits = &*bits;
    if let Some(known) = memo.as_deref().and_then(|m| m.recall(bits, out)) {
        enc.extend_from_slice(known);
        return true;
    }
    // Patches are kept only if shorter than `limit`: room for that much, written by
    // index and cut to size after (no capacity check per byte).
    let mark = enc.len();
    let limit = 5 + n;
    enc.resize(mark + limit, 0);
    let buf = &mut enc[mark..];
    buf[0] = FORM_PATCHED;
    let mut size = 2;
    let mut count = 0usize;
    let mut prev_end = 0;
    let mut from = 0;
    'runs: loop {
        // The next differing byte at or after `from`.
        let mut w = from / 64;
        if w >= used {
            break;
        }
        let mut m = bits[w] & (u64::MAX << (from % 64));
        while m == 0 {
            w += 1;
            if w >= used {
                break 'runs;
            }
            m = bits[w];
        }
        let start = w * 64 + m.trailing_zeros() as usize;
        // Its end: the first byte after it that starts three equal ones. The word
        // after the last used one is all clear, so the search stops there at the latest.
        let after = start + 1;
        let mut w = after / 64;
        let mut e = !spread(bits, w) & (u64::MAX << (after % 64));
        while e == 0 {
            w += 1;
            e = !spread(bits, w);
        }
        let end = w * 64 + e.trailing_zeros() as usize;
        let (skip, len) = ((start - prev_end) as u64, end - start);
        // Sizes only grow: once they reach the whole frame's, it is stored whole.
        let cost = varint_len(skip) + varint_len(len as u64) + len;
        if count == usize::from(u8::MAX) || size + cost >= limit {
            enc.truncate(mark);
            return false;
        }
        size = put_varint_at(buf, size, skip);
        size = put_varint_at(buf, size, len as u64);
        buf[size..size + len].copy_from_slice(&out[start..end]);
        size += len;
        count += 1;
        prev_end = end;
        from = end;
    }
    buf[1] = count as u8;
    enc.truncate(mark + size);
    if let Some(m) = memo {
        m.remember(&bits[..used], out, &enc[mark..]);
    }
    true
}

/// `out` as a record file written with [`FrameEncoding::InputPatches`] stores it against
/// its input `base`: `Some(count)` with the patches appended to `patches` (what
/// [`FrameRef::Patched`] holds), or `None`, appending nothing, where the file stores the
/// frame whole (another length, or no shorter as patches).
///
/// The encoding is a function of `base` and `out` alone, so two frames patched against
/// one base are equal exactly when their patches are: the checker compares a run's frames
/// with the reference's that way, without rebuilding either. `memo` (per caller) only
/// saves time.
pub fn frame_patches(
    base: &[u8],
    out: &[u8],
    patches: &mut Vec<u8>,
    memo: Option<&mut PatchMemo>,
) -> Option<u8> {
    if base.len() != out.len() || out.len() > MAX_FRAME as usize {
        return None;
    }
    let mark = patches.len();
    if !encode_patches(base, out, patches, memo) {
        return None;
    }
    // Drop the form and count bytes that lead an entry's frame.
    let count = patches[mark + 1];
    patches.copy_within(mark + 2.., mark);
    patches.truncate(patches.len() - 2);
    Some(count)
}

/// Encodes a frame (at most [`MAX_FRAME`] bytes: checked by the caller).
fn encode_frame(
    frames: FrameEncoding,
    enc: &mut Vec<u8>,
    bytes: &[u8],
    input: Option<&[u8]>,
    memo: Option<&mut PatchMemo>,
) {
    let whole = |enc: &mut Vec<u8>| {
        enc.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        enc.extend_from_slice(bytes);
    };
    if frames == FrameEncoding::Whole {
        return whole(enc);
    }
    if let Some(base) = input.filter(|b| b.len() == bytes.len()) {
        if encode_patches(base, bytes, enc, memo) {
            return;
        }
    }
    enc.push(FORM_WHOLE);
    whole(enc)
}

/// The refusal of an output frame longer than the format allows.
#[cold]
fn frame_too_long(path: &Path, len: usize) -> WireError {
    WireError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "an output frame is {len} bytes long, more than the {MAX_FRAME} the format allows"
            ),
        ),
    }
}

/// Encodes an entry's tag and observation (its frame whole or as patches of `input`);
/// `Err(length)` for a frame longer than [`MAX_FRAME`], leaving `enc` as it was.
fn encode_observation(
    frames: FrameEncoding,
    enc: &mut Vec<u8>,
    observation: &Observation,
    input: Option<&[u8]>,
    memo: Option<&mut PatchMemo>,
) -> Result<(), usize> {
    let frame = observation.bytes();
    if let Some(f) = frame.filter(|f| f.len() > MAX_FRAME as usize) {
        return Err(f.len());
    }
    enc.push(TAG_PACKET);
    match observation {
        Observation::Drop => enc.push(OBS_DROP),
        Observation::Forward { port, .. } => {
            enc.push(OBS_FORWARD);
            enc.extend_from_slice(&port.to_le_bytes());
        }
        Observation::Flood { .. } => enc.push(OBS_FLOOD),
    }
    if let Some(bytes) = frame {
        encode_frame(frames, enc, bytes, input, memo);
    }
    Ok(())
}

/// Encodes what an entry of a [`RecordFileWriter`]'s file starts with (tag,
/// observation, frame), on the engine's workers ([`Engine::run_chunk_encoded`]);
/// [`RecordFileWriter::entry_encoded`] adds the rest. Made by
/// [`RecordFileWriter::encoder`].
///
/// [`Engine::run_chunk_encoded`]: super::engine::Engine::run_chunk_encoded
#[derive(Clone, Debug)]
pub struct EntryEncoder {
    path: PathBuf,
    frames: FrameEncoding,
}

impl ObservationEncoder for EntryEncoder {
    type Error = WireError;
    type State = PatchMemo;

    fn encode(
        &self,
        memo: &mut PatchMemo,
        input: &InputPacket,
        observation: &Observation,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        encode_observation(self.frames, out, observation, Some(&input.data), Some(memo))
            .map_err(|len| frame_too_long(&self.path, len))
    }
}

/// The longest record encoding: flags, four varints, the hash.
const MAX_RECORD: usize = 1 + 4 * 10 + 4;

/// Encodes a record relative to `context` (see [`RECORD_MAGIC`]) and advances it.
fn encode_record(context: &mut RecordContext, enc: &mut Vec<u8>, r: &PacketRecord) {
    let implied = context.implied_pos(r.core);
    let mut flags = 0;
    if r.wrote {
        flags |= FLAG_WROTE;
    }
    if r.epoch != 0 {
        flags |= FLAG_EPOCH;
    }
    if r.queue_pos != implied {
        flags |= FLAG_QUEUE_POS;
    }
    let at = enc.len();
    enc.resize(at + MAX_RECORD, 0);
    let buf = &mut enc[at..];
    buf[0] = flags;
    let mut k = put_varint_at(buf, 1, u64::from(r.core));
    if r.epoch != 0 {
        k = put_varint_at(buf, k, r.epoch);
    }
    if r.queue_pos != implied {
        k = put_varint_at(buf, k, r.queue_pos);
    }
    k = put_varint_at(buf, k, zigzag(r.now.wrapping_sub(context.prev_now)));
    buf[k..k + 4].copy_from_slice(&r.hash.to_le_bytes());
    enc.truncate(at + k + 4);
    context.advance(r);
}

/// Streams a record file: the header at creation, entries as packets are processed,
/// the trailer at the end.
pub struct RecordFileWriter {
    out: WireOut,
    entries: u64,
    frames: FrameEncoding,
    context: RecordContext,
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
        out.u8(match h.frames {
            FrameEncoding::Whole => 0,
            FrameEncoding::InputPatches => 1,
        })?;
        Ok(RecordFileWriter {
            out,
            entries: 0,
            frames: h.frames,
            context: RecordContext::default(),
        })
    }

    /// Appends the entry of the next input packet, its frame whole.
    pub fn entry(&mut self, e: &RecordEntry) -> Result<(), WireError> {
        self.entry_with_input(e, None)
    }

    /// Appends the entry of the next input packet; with [`FrameEncoding::InputPatches`]
    /// its output frame is stored as patches of `input` (the frame the packet file
    /// holds for it) when that is shorter.
    pub fn entry_with_input(
        &mut self,
        e: &RecordEntry,
        input: Option<&[u8]>,
    ) -> Result<(), WireError> {
        self.entry_parts(&e.observation, &e.record, &e.translations, input)
    }

    /// [`RecordFileWriter::entry_with_input`] from the entry's parts, so that a caller
    /// streaming results need not assemble a [`RecordEntry`].
    ///
    /// The entry is checked first, then encoded straight into the output buffer.
    pub fn entry_parts(
        &mut self,
        observation: &Observation,
        record: &PacketRecord,
        translations: &[Translation],
        input: Option<&[u8]>,
    ) -> Result<(), WireError> {
        if let Some(f) = observation.bytes().filter(|f| f.len() > MAX_FRAME as usize) {
            return Err(frame_too_long(&self.out.path, f.len()));
        }
        let count = self.translation_count(translations)?;
        encode_observation(self.frames, &mut self.out.buf, observation, input, None)
            .map_err(|len| frame_too_long(&self.out.path, len))?;
        self.finish_entry(record, count, translations)
    }

    /// The encoder whose output [`RecordFileWriter::entry_encoded`] takes.
    pub fn encoder(&self) -> EntryEncoder {
        EntryEncoder {
            path: self.out.path.clone(),
            frames: self.frames,
        }
    }

    /// Appends the entry of the next input packet from what this writer's
    /// [`EntryEncoder`] encoded for it, its record and its translations: the same bytes
    /// as [`RecordFileWriter::entry_with_input`] with the packet's input frame.
    pub fn entry_encoded(
        &mut self,
        encoded: &[u8],
        record: &PacketRecord,
        translations: &[Translation],
    ) -> Result<(), WireError> {
        let count = self.translation_count(translations)?;
        self.out.buf.extend_from_slice(encoded);
        self.finish_entry(record, count, translations)
    }

    fn translation_count(&self, translations: &[Translation]) -> Result<u8, WireError> {
        u8::try_from(translations.len()).map_err(|_| WireError::Io {
            path: self.out.path.clone(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "more than 255 translations of one packet",
            ),
        })
    }

    /// The record and the translations of the entry whose observation was just encoded.
    fn finish_entry(
        &mut self,
        record: &PacketRecord,
        count: u8,
        translations: &[Translation],
    ) -> Result<(), WireError> {
        let enc = &mut self.out.buf;
        encode_record(&mut self.context, enc, record);
        enc.push(count);
        for t in translations {
            enc.extend_from_slice(&t.field.to_le_bytes());
            enc.extend_from_slice(&t.old.to_le_bytes());
            enc.extend_from_slice(&t.new.to_le_bytes());
        }
        self.entries += 1;
        self.out.spill()
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

// ---------------------------------------------------------------------------------------
// Reading record files
// ---------------------------------------------------------------------------------------

/// An output frame as the record file holds it, without copying it.
#[derive(Clone, Copy, Debug)]
pub enum FrameRef<'r> {
    Whole(&'r [u8]),
    /// The input frame `base` with `count` patches, encoded in `patches` as the file
    /// has them (checked when the file was read).
    Patched {
        base: &'r [u8],
        count: u8,
        patches: &'r [u8],
    },
}

/// Reads a varint of a patch that the reader has already checked.
fn checked_varint(buf: &mut &[u8]) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    while let Some((&b, rest)) = buf.split_first() {
        *buf = rest;
        v |= usize::from(b & 0x7f) << shift.min(63);
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

impl<'r> FrameRef<'r> {
    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            FrameRef::Whole(b) => b.len(),
            FrameRef::Patched { base, .. } => base.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f(offset, bytes)` for consecutive pieces that make up the frame.
    fn pieces(&self, mut f: impl FnMut(usize, &[u8]) -> bool) -> bool {
        match *self {
            FrameRef::Whole(b) => f(0, b),
            FrameRef::Patched {
                base,
                count,
                mut patches,
            } => {
                let mut pos = 0;
                for _ in 0..count {
                    let skip = checked_varint(&mut patches);
                    let len = checked_varint(&mut patches);
                    let (Some(kept), Some(data)) = (base.get(pos..pos + skip), patches.get(..len))
                    else {
                        return false;
                    };
                    if !f(pos, kept) || !f(pos + skip, data) {
                        return false;
                    }
                    patches = &patches[len..];
                    pos += skip + len;
                }
                base.get(pos..).is_some_and(|rest| f(pos, rest))
            }
        }
    }

    /// Whether the frame is exactly `bytes`.
    pub fn eq_bytes(&self, bytes: &[u8]) -> bool {
        self.len() == bytes.len()
            && self.pieces(|at, piece| bytes.get(at..at + piece.len()) == Some(piece))
    }

    /// The frame as its own bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len()];
        self.pieces(|at, piece| {
            if let Some(dst) = v.get_mut(at..at + piece.len()) {
                dst.copy_from_slice(piece);
            }
            true
        });
        v
    }
}

/// An observation as the record file holds it, without copying its frame.
#[derive(Clone, Copy, Debug)]
pub enum ObservationRef<'r> {
    Drop,
    Forward { port: u16, frame: FrameRef<'r> },
    Flood { frame: FrameRef<'r> },
}

impl ObservationRef<'_> {
    /// Whether this is `o` (same action, port and bytes).
    pub fn matches(&self, o: &Observation) -> bool {
        match (self, o) {
            (ObservationRef::Drop, Observation::Drop) => true,
            (ObservationRef::Forward { port, frame }, Observation::Forward { port: p, bytes }) => {
                port == p && frame.eq_bytes(bytes)
            }
            (ObservationRef::Flood { frame }, Observation::Flood { bytes }) => {
                frame.eq_bytes(bytes)
            }
            _ => false,
        }
    }

    pub fn to_observation(&self) -> Observation {
        match self {
            ObservationRef::Drop => Observation::Drop,
            ObservationRef::Forward { port, frame } => Observation::Forward {
                port: *port,
                bytes: frame.to_vec(),
            },
            ObservationRef::Flood { frame } => Observation::Flood {
                bytes: frame.to_vec(),
            },
        }
    }
}

/// Where an entry's observation lies in the file's bytes.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Start of the whole frame, resp. of the first patch.
    at: usize,
    /// Length of the whole frame, resp. the number of patches.
    len: u32,
    port: u16,
    kind: u8,
    patched: bool,
}

/// A record file read for comparison: records, translations and trailer decoded, each
/// observation left where it lies in the file (or in its input packet, for patched
/// frames) and looked at through [`ObservationRef`]s. Reading a million entries
/// allocates a few vectors, not a million frames.
pub struct RecordRun<'a> {
    pub header: RecordHeader,
    /// One per entry, input order.
    pub records: Vec<PacketRecord>,
    /// Every entry's translations, sorted by index.
    pub translations: Vec<Translation>,
    pub trailer: RecordTrailer,
    path: PathBuf,
    bytes: Vec<u8>,
    slots: Vec<Slot>,
    inputs: &'a [InputPacket],
}

impl<'a> RecordRun<'a> {
    /// Reads the record file at `path`; `inputs` are the packets the run read (needed
    /// when frames are [`FrameEncoding::InputPatches`]; may be empty otherwise).
    pub fn read(path: &Path, inputs: &'a [InputPacket]) -> Result<RecordRun<'a>, WireError> {
        let bytes = std::fs::read(path).map_err(|e| WireError::io(path, e))?;
        Self::parse(path.to_path_buf(), bytes, inputs)
    }

    /// Reads a record file held in memory; `name` stands for the file in messages.
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        inputs: &'a [InputPacket],
    ) -> Result<RecordRun<'a>, WireError> {
        Self::parse(PathBuf::from(name), bytes, inputs)
    }

    fn parse(
        path: PathBuf,
        bytes: Vec<u8>,
        inputs: &'a [InputPacket],
    ) -> Result<RecordRun<'a>, WireError> {
        Self::parse_with(path, bytes, inputs, true)
    }

    /// [`RecordRun::parse`], with or without [`quick_entry`] (the tests compare both).
    fn parse_with(
        path: PathBuf,
        bytes: Vec<u8>,
        inputs: &'a [InputPacket],
        quick: bool,
    ) -> Result<RecordRun<'a>, WireError> {
        // Entries take at least 10 bytes: bound the guess by the file's size.
        let guess = if inputs.is_empty() {
            bytes.len() / 32
        } else {
            inputs.len().min(bytes.len() / 10)
        };
        let mut slots = Vec::with_capacity(guess);
        let mut records = Vec::with_capacity(guess);
        let mut translations = Vec::new();
        let (header, trailer) = {
            let mut input = SliceIn::new(&path, "maestro record file", &bytes);
            match read_all_entries(
                &mut input,
                inputs,
                &mut slots,
                &mut records,
                &mut translations,
                quick,
            ) {
                Ok(parts) => parts,
                Err(Stop) => return Err(input.error()),
            }
        };
        Ok(RecordRun {
            header,
            records,
            translations,
            trailer,
            path,
            bytes,
            slots,
            inputs,
        })
    }

    /// The file (or the name given to [`from_bytes`](Self::from_bytes)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries (one per input packet the run processed).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Entry `i`'s observation.
    pub fn observation(&self, i: usize) -> Option<ObservationRef<'_>> {
        let s = *self.slots.get(i)?;
        let frame = || -> Option<FrameRef<'_>> {
            if s.patched {
                Some(FrameRef::Patched {
                    base: &self.inputs.get(i)?.data,
                    count: s.len as u8,
                    patches: self.bytes.get(s.at..)?,
                })
            } else {
                Some(FrameRef::Whole(
                    self.bytes.get(s.at..s.at + s.len as usize)?,
                ))
            }
        };
        Some(match s.kind {
            OBS_FORWARD => ObservationRef::Forward {
                port: s.port,
                frame: frame()?,
            },
            OBS_FLOOD => ObservationRef::Flood { frame: frame()? },
            _ => ObservationRef::Drop,
        })
    }

    /// Every observation as its own value.
    pub fn observations(&self) -> Vec<Observation> {
        (0..self.len())
            .filter_map(|i| self.observation(i))
            .map(|o| o.to_observation())
            .collect()
    }

    /// The whole file as a [`RecordFile`].
    pub fn into_file(self) -> RecordFile {
        let observations = self.observations();
        let mut translations = self.translations.into_iter().peekable();
        let entries = observations
            .into_iter()
            .zip(self.records)
            .enumerate()
            .map(|(i, (observation, record))| {
                let mut mine = Vec::new();
                while let Some(t) = translations.next_if(|t| t.index == i as u64) {
                    mine.push(t);
                }
                RecordEntry {
                    observation,
                    record,
                    translations: mine,
                }
            })
            .collect();
        RecordFile {
            header: self.header,
            entries,
            trailer: self.trailer,
        }
    }
}

/// Reads a whole record file into `slots`, `records` and `translations`.
fn read_all_entries(
    input: &mut SliceIn,
    inputs: &[InputPacket],
    slots: &mut Vec<Slot>,
    records: &mut Vec<PacketRecord>,
    translations: &mut Vec<Translation>,
    quick: bool,
) -> Result<(RecordHeader, RecordTrailer), Stop> {
    input.header(&RECORD_MAGIC, RECORD_VERSION)?;
    let header = read_header(input)?;
    let mut context = RecordContext::default();
    loop {
        let i = slots.len() as u64;
        // Ordinary entries the quick way; anything else (the trailer too) carefully.
        let taken = if quick {
            quick_entry(
                &input.bytes[input.pos..],
                input.pos,
                i,
                header.frames,
                inputs,
                &mut context,
                slots,
                records,
                translations,
            )
        } else {
            None
        };
        if let Some(taken) = taken {
            input.pos += taken;
            continue;
        }
        let at = input.offset();
        match input.u8(format_args!("the tag of entry #{i} (1 packet, 2 trailer)"))? {
            TAG_PACKET => {
                slots.push(read_observation(input, i, header.frames, inputs)?);
                records.push(read_record(input, i, &mut context)?);
                read_translations(input, i, translations)?;
            }
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
    let trailer = read_trailer(input)?;
    if !input.at_end() {
        let at = input.offset();
        return Err(input.invalid(at, "the end of the file after the trailer", "more bytes"));
    }
    Ok((header, trailer))
}

/// A varint from `b[*p..]` under the rules of [`SliceIn::varint`] (at most 10 bytes,
/// 64 bits), or `None` where that one fails.
#[inline(always)]
fn quick_varint(b: &[u8], p: &mut usize) -> Option<u64> {
    // Most numbers here (patch offsets and lengths, cores, time steps) fit one byte.
    let first = *b.get(*p)?;
    if first & 0x80 == 0 {
        *p += 1;
        return Some(u64::from(first));
    }
    let mut v = 0u64;
    for k in 0..10 {
        let byte = *b.get(*p + k)?;
        if k == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << (7 * k);
        if byte & 0x80 == 0 {
            *p += k + 1;
            return Some(v);
        }
    }
    None
}

/// Reads the packet entry at the start of `b` (entry #`i`, at `origin` in the file) if
/// it is well formed and ordinary, pushing its slot, record and translations and advancing `context`, and
/// returns its length; `None` (having changed nothing) for anything else: the trailer,
/// a corrupt entry, a rare shape. The careful reader then reads it and names what is
/// wrong. Every check of [`read_observation`], [`read_record`] and
/// [`read_translations`] is made here too, so the two readers accept the same files
/// (the tests hold them to it): this one reads a million entries several times faster.
#[allow(clippy::too_many_arguments)]
#[inline]
fn quick_entry(
    b: &[u8],
    origin: usize,
    i: u64,
    frames: FrameEncoding,
    inputs: &[InputPacket],
    context: &mut RecordContext,
    slots: &mut Vec<Slot>,
    records: &mut Vec<PacketRecord>,
    translations: &mut Vec<Translation>,
) -> Option<usize> {
    if *b.first()? != TAG_PACKET {
        return None;
    }
    let kind = *b.get(1)?;
    let mut p = 2;
    let port = match kind {
        OBS_DROP => None,
        OBS_FORWARD => {
            let v = u16::from_le_bytes([*b.get(2)?, *b.get(3)?]);
            p = 4;
            Some(v)
        }
        OBS_FLOOD => Some(0),
        _ => return None,
    };
    let slot = match port {
        None => Slot {
            at: 0,
            len: 0,
            port: 0,
            kind,
            patched: false,
        },
        Some(port) => {
            let form = match frames {
                FrameEncoding::Whole => FORM_WHOLE,
                FrameEncoding::InputPatches => {
                    p += 1;
                    *b.get(p - 1)?
                }
            };
            match form {
                FORM_WHOLE => {
                    let len = u32::from_le_bytes(b.get(p..p + 4)?.try_into().ok()?);
                    if len > MAX_FRAME {
                        return None;
                    }
                    let at = p + 4;
                    p = at.checked_add(len as usize)?;
                    if p > b.len() {
                        return None;
                    }
                    Slot {
                        at: origin + at,
                        len,
                        port,
                        kind,
                        patched: false,
                    }
                }
                FORM_PATCHED => {
                    let base = inputs.get(usize::try_from(i).ok()?)?.data.len();
                    let count = *b.get(p)?;
                    p += 1;
                    let at = p;
                    let mut pos = 0usize;
                    for _ in 0..count {
                        let skip = quick_varint(b, &mut p)?;
                        let len = quick_varint(b, &mut p)?;
                        let end = pos
                            .checked_add(usize::try_from(skip).ok()?)?
                            .checked_add(usize::try_from(len).ok()?)?;
                        if len == 0 || end > base {
                            return None;
                        }
                        p = p.checked_add(len as usize)?;
                        if p > b.len() {
                            return None;
                        }
                        pos = end;
                    }
                    Slot {
                        at: origin + at,
                        len: u32::from(count),
                        port,
                        kind,
                        patched: true,
                    }
                }
                _ => return None,
            }
        }
    };
    // The record.
    let flags = *b.get(p)?;
    p += 1;
    if flags & !(FLAG_WROTE | FLAG_EPOCH | FLAG_QUEUE_POS) != 0 {
        return None;
    }
    let core = u16::try_from(quick_varint(b, &mut p)?).ok()?;
    let epoch = if flags & FLAG_EPOCH != 0 {
        quick_varint(b, &mut p)?
    } else {
        0
    };
    let explicit_pos = if flags & FLAG_QUEUE_POS != 0 {
        Some(quick_varint(b, &mut p)?)
    } else {
        None
    };
    let delta = quick_varint(b, &mut p)?;
    let hash = u32::from_le_bytes(b.get(p..p + 4)?.try_into().ok()?);
    p += 4;
    let count = usize::from(*b.get(p)?);
    p += 1;
    let listed = b.get(p..p.checked_add(count * 18)?)?;
    // Well formed: commit.
    let queue_pos = match explicit_pos {
        Some(q) => {
            context.implied_pos(core);
            q
        }
        None => context.implied_pos(core),
    };
    let r = PacketRecord {
        core,
        queue_pos,
        epoch,
        wrote: flags & FLAG_WROTE != 0,
        now: context.prev_now.wrapping_add(unzigzag(delta)),
        hash,
    };
    context.advance(&r);
    records.push(r);
    for t in listed.chunks_exact(18) {
        let mut old = [0u8; 8];
        let mut new = [0u8; 8];
        old.copy_from_slice(&t[2..10]);
        new.copy_from_slice(&t[10..18]);
        translations.push(Translation {
            index: i,
            field: u16::from_le_bytes([t[0], t[1]]),
            old: u64::from_le_bytes(old),
            new: u64::from_le_bytes(new),
        });
    }
    slots.push(slot);
    Some(p + count * 18)
}

fn read_header(input: &mut SliceIn) -> Result<RecordHeader, Stop> {
    let nf = input.string("the NF name")?;
    let at = input.offset();
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
    let at = input.offset();
    let frames = match input.u8("the frame encoding (0 whole, 1 input patches)")? {
        0 => FrameEncoding::Whole,
        1 => FrameEncoding::InputPatches,
        k => {
            return Err(input.invalid(
                at,
                "the frame encoding (0 whole, 1 input patches)",
                format!("{k}"),
            ))
        }
    };
    Ok(RecordHeader {
        nf,
        strategy,
        cores,
        schedule,
        mutant,
        rtm,
        parse_mode,
        renamed,
        frames,
    })
}

fn read_observation(
    input: &mut SliceIn,
    i: u64,
    frames: FrameEncoding,
    inputs: &[InputPacket],
) -> Result<Slot, Stop> {
    let at = input.offset();
    let kind = input.u8(format_args!(
        "the observation kind of packet #{i} (0 drop, 1 forward, 2 flood)"
    ))?;
    let port = match kind {
        OBS_DROP => {
            return Ok(Slot {
                at: 0,
                len: 0,
                port: 0,
                kind,
                patched: false,
            })
        }
        OBS_FORWARD => input.u16(format_args!("the output port of packet #{i}"))?,
        OBS_FLOOD => 0,
        k => {
            return Err(input.invalid(
                at,
                format!("the observation kind of packet #{i} (0 drop, 1 forward, 2 flood)"),
                format!("{k}"),
            ))
        }
    };
    let whole = |input: &mut SliceIn| -> Result<Slot, Stop> {
        let frame = input.bytes(MAX_FRAME, format_args!("the output frame of packet #{i}"))?;
        Ok(Slot {
            at: input.pos - frame.len(),
            len: frame.len() as u32,
            port,
            kind,
            patched: false,
        })
    };
    if frames == FrameEncoding::Whole {
        return whole(input);
    }
    let form_at = input.offset();
    match input.u8(format_args!(
        "the frame form of packet #{i} (0 whole, 1 patched input)"
    ))? {
        FORM_WHOLE => whole(input),
        FORM_PATCHED => {
            let Some(base) = usize::try_from(i).ok().and_then(|k| inputs.get(k)) else {
                let e = WireError::NeedsInputs {
                    path: input.path.to_path_buf(),
                    offset: form_at,
                    entry: i,
                    given: inputs.len(),
                };
                return Err(input.fail(e));
            };
            let count = input.u8(format_args!("the patch count of packet #{i}"))?;
            let start = input.pos;
            let mut pos = 0u64;
            for k in 0..count {
                let at = input.offset();
                let skip = input.varint(format_args!("the skip of patch {k} of packet #{i}"))?;
                let len = input.varint(format_args!("the length of patch {k} of packet #{i}"))?;
                let end = pos.saturating_add(skip).saturating_add(len);
                if len == 0 || end > base.data.len() as u64 {
                    return Err(input.invalid(
                        at,
                        format!(
                            "patch {k} of packet #{i} inside its {}-byte input frame, not empty",
                            base.data.len()
                        ),
                        format!("{len} bytes at offset {}", pos.saturating_add(skip)),
                    ));
                }
                input.take(len as usize, format_args!("patch {k} of packet #{i}"))?;
                pos = end;
            }
            Ok(Slot {
                at: start,
                len: u32::from(count),
                port,
                kind,
                patched: true,
            })
        }
        k => Err(input.invalid(
            form_at,
            format!("the frame form of packet #{i} (0 whole, 1 patched input)"),
            format!("{k}"),
        )),
    }
}

fn read_record(
    input: &mut SliceIn,
    i: u64,
    context: &mut RecordContext,
) -> Result<PacketRecord, Stop> {
    let at = input.offset();
    let flags = input.u8(format_args!("the record flags of packet #{i}"))?;
    if flags & !(FLAG_WROTE | FLAG_EPOCH | FLAG_QUEUE_POS) != 0 {
        return Err(input.invalid(
            at,
            format!("the record flags of packet #{i} (bits 0 to 2)"),
            format!("{flags:#04x}"),
        ));
    }
    let core_at = input.offset();
    let core = input.varint(format_args!("the core of packet #{i}"))?;
    let core = u16::try_from(core).map_err(|_| {
        input.invalid(
            core_at,
            format!("the core of packet #{i} (at most 65535)"),
            format!("{core}"),
        )
    })?;
    let epoch = if flags & FLAG_EPOCH != 0 {
        input.varint(format_args!("the epoch of packet #{i}"))?
    } else {
        0
    };
    let queue_pos = if flags & FLAG_QUEUE_POS != 0 {
        input.varint(format_args!("the queue position of packet #{i}"))?
    } else {
        context.implied_pos(core)
    };
    // Makes sure the core has a slot even when its position was explicit.
    context.implied_pos(core);
    let delta = input.varint(format_args!("the time (now) of packet #{i}"))?;
    let now = context.prev_now.wrapping_add(unzigzag(delta));
    let hash = input.u32(format_args!("the RSS hash of packet #{i}"))?;
    let r = PacketRecord {
        core,
        queue_pos,
        epoch,
        wrote: flags & FLAG_WROTE != 0,
        now,
        hash,
    };
    context.advance(&r);
    Ok(r)
}

fn read_translations(input: &mut SliceIn, i: u64, out: &mut Vec<Translation>) -> Result<(), Stop> {
    let n = input.u8(format_args!("the translation count of packet #{i}"))?;
    for _ in 0..n {
        out.push(Translation {
            index: i,
            field: input.u16(format_args!("a translated field of packet #{i}"))?,
            old: input.u64(format_args!("a translated old value of packet #{i}"))?,
            new: input.u64(format_args!("a translated new value of packet #{i}"))?,
        });
    }
    Ok(())
}

fn read_access_log(input: &mut SliceIn, core: usize) -> Result<Option<Vec<AccessCount>>, Stop> {
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

fn read_conflict(input: &mut SliceIn) -> Result<RenameConflict, Stop> {
    let index = input.u64("a conflict's packet index")?;
    let field = input.u16("a conflict's field")?;
    let seq = input.u64("a conflict's sequential value")?;
    let par = input.u64("a conflict's parallel value")?;
    let at = input.offset();
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

fn read_trailer(input: &mut SliceIn) -> Result<RecordTrailer, Stop> {
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

    proptest! {
        /// Patches against one base decode to their frame, and two frames get the same
        /// patches exactly when they are equal (the checker compares frames by them).
        #[test]
        fn frame_patches_stand_for_their_frame(
            base in proptest::collection::vec(any::<u8>(), 1..300),
            edits in proptest::collection::vec((0usize..300, any::<u8>(), any::<bool>()), 0..20),
        ) {
            let mut a = base.clone();
            let mut b = base.clone();
            for (at, v, both) in &edits {
                let at = at % base.len();
                a[at] = *v;
                if *both {
                    b[at] = *v;
                }
            }
            let encode = |out: &[u8]| {
                let mut p = Vec::new();
                frame_patches(&base, out, &mut p, None).map(|count| (count, p))
            };
            for (out, enc) in [(&a, encode(&a)), (&b, encode(&b))] {
                if let Some((count, patches)) = &enc {
                    let frame = FrameRef::Patched { base: &base, count: *count, patches };
                    prop_assert_eq!(&frame.to_vec(), out);
                }
            }
            if let (Some(x), Some(y)) = (encode(&a), encode(&b)) {
                prop_assert_eq!(x == y, a == b);
            }
            prop_assert_eq!(frame_patches(&base, &base[1..], &mut Vec::new(), None), None);
        }
    }

    /// A file written over a longer one holds exactly the new contents, whether the
    /// writer finished or was dropped half way.
    #[test]
    fn files_are_overwritten_and_cut_to_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("packets.bin");
        let packet = |n: usize| InputPacket {
            port: 1,
            time_ns: n as u64,
            data: vec![n as u8; 60],
        };
        let long: Vec<InputPacket> = (0..500).map(packet).collect();
        let short: Vec<InputPacket> = (0..3).map(packet).collect();
        write_packets(&path, &long).unwrap();
        write_packets(&path, &short).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), packet_bytes(&short));
        assert_eq!(read_packets(&path).unwrap(), short);

        write_packets(&path, &long).unwrap();
        {
            let mut w = PacketFileWriter::create(&path).unwrap();
            w.write(&short[0]).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), packet_bytes(&short[..1]));
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
            any::<bool>(),
        )
            .prop_map(
                |(nf, strategy, cores, schedule, mutant, rtm, renamed, patches)| RecordHeader {
                    frames: if patches {
                        FrameEncoding::InputPatches
                    } else {
                        FrameEncoding::Whole
                    },
                    nf,
                    strategy,
                    cores,
                    schedule,
                    mutant,
                    rtm,
                    parse_mode: "strict".into(),
                    renamed,
                },
            )
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
                frames: FrameEncoding::Whole,
            };
            let bytes = record_bytes(&RecordFile { header, entries, trailer });
            let cut = cut.index(bytes.len());
            let err = RecordFile::from_bytes("r.bin", bytes[..cut].to_vec()).unwrap_err();
            prop_assert!(matches!(err, WireError::Truncated { .. }), "{}", err);
            prop_assert!(err.to_string().starts_with("r.bin: byte offset "), "{}", err);
        }
    }

    fn arb_header_fixed() -> RecordHeader {
        RecordHeader {
            nf: "fw".into(),
            strategy: Strategy::Locks,
            cores: 3,
            schedule: "seed:1".into(),
            mutant: None,
            rtm: "not applicable".into(),
            parse_mode: "strict".into(),
            renamed: vec![("l4.sport".into(), "l4.dport".into())],
            frames: FrameEncoding::Whole,
        }
    }

    /// A record file with patched frames: each observation written against `inputs`.
    fn patched_bytes(inputs: &[InputPacket], entries: &[RecordEntry]) -> Vec<u8> {
        let header = RecordHeader {
            nf: "fw".into(),
            strategy: Strategy::Sn,
            cores: 2,
            schedule: "threads".into(),
            mutant: None,
            rtm: "not applicable".into(),
            parse_mode: "strict".into(),
            renamed: vec![],
            frames: FrameEncoding::InputPatches,
        };
        let sink = SharedBuf::default();
        let mut w =
            RecordFileWriter::from_writer("<mem>", Box::new(sink.clone()), &header).unwrap();
        for (e, p) in entries.iter().zip(inputs) {
            w.entry_with_input(e, Some(&p.data)).unwrap();
        }
        w.finish(&RecordTrailer::default()).unwrap();
        sink.take()
    }

    /// Inputs, and entries whose frames are the inputs with some bytes changed (or, for
    /// some, other frames altogether).
    fn arb_patched() -> impl PStrategy<Value = (Vec<InputPacket>, Vec<RecordEntry>)> {
        let one = (
            arb_packet(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
            any::<u8>(),
            arb_record(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70)),
        );
        proptest::collection::vec(one, 0..20).prop_map(|v| {
            v.into_iter()
                .map(|(p, edits, kind, record, other)| {
                    let mut bytes = other.unwrap_or_else(|| p.data.clone());
                    for (at, b) in edits {
                        if !bytes.is_empty() {
                            let k = at.index(bytes.len());
                            bytes[k] = b;
                        }
                    }
                    let observation = match kind % 3 {
                        0 => Observation::Drop,
                        1 => Observation::Forward {
                            port: u16::from(kind),
                            bytes,
                        },
                        _ => Observation::Flood { bytes },
                    };
                    (
                        p,
                        RecordEntry {
                            observation,
                            record,
                            translations: vec![],
                        },
                    )
                })
                .unzip()
        })
    }

    proptest! {
        #[test]
        fn patched_frames_round_trip((inputs, entries) in arb_patched()) {
            let bytes = patched_bytes(&inputs, &entries);
            let run = RecordRun::from_bytes("r.bin", bytes, &inputs).unwrap();
            prop_assert_eq!(run.len(), entries.len());
            for (i, e) in entries.iter().enumerate() {
                let o = run.observation(i).unwrap();
                prop_assert!(o.matches(&e.observation), "entry {}", i);
                prop_assert_eq!(o.to_observation(), e.observation.clone());
            }
            let records: Vec<PacketRecord> = entries.iter().map(|e| e.record).collect();
            prop_assert_eq!(&run.records, &records);
            let file = run.into_file();
            prop_assert_eq!(file.entries, entries);
        }

        #[test]
        fn truncated_patched_files_are_errors_never_panics(
            (inputs, entries) in arb_patched(),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = patched_bytes(&inputs, &entries);
            let cut = cut.index(bytes.len());
            let err = RecordRun::from_bytes("r.bin", bytes[..cut].to_vec(), &inputs).err().unwrap();
            prop_assert!(matches!(err, WireError::Truncated { .. }), "{}", err);
            prop_assert!(err.to_string().starts_with("r.bin: byte offset "), "{}", err);
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn the_quick_reader_reads_as_the_careful_one(
            (inputs, entries) in arb_patched(),
            listed in proptest::collection::vec(
                proptest::collection::vec((any::<u16>(), any::<u64>(), any::<u64>()), 0..3),
                20,
            ),
            whole in any::<bool>(),
            damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let entries: Vec<RecordEntry> = entries
                .into_iter()
                .zip(listed)
                .enumerate()
                .map(|(i, (e, ts))| RecordEntry {
                    translations: ts
                        .into_iter()
                        .map(|(field, old, new)| Translation { index: i as u64, field, old, new })
                        .collect(),
                    ..e
                })
                .collect();
            let mut bytes = if whole {
                record_bytes(&RecordFile {
                    header: RecordHeader { frames: FrameEncoding::Whole, ..arb_header_fixed() },
                    entries: entries.clone(),
                    trailer: RecordTrailer::default(),
                })
            } else {
                patched_bytes(&inputs, &entries)
            };
            for (at, v) in damage {
                let k = at.index(bytes.len());
                bytes[k] = v;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len()));
            }
            let read = |quick| RecordRun::parse_with(PathBuf::from("r.bin"), bytes.clone(), &inputs, quick);
            match (read(true), read(false)) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(&a.header, &b.header);
                    prop_assert_eq!(&a.records, &b.records);
                    prop_assert_eq!(&a.translations, &b.translations);
                    prop_assert_eq!(&a.trailer, &b.trailer);
                    prop_assert_eq!(a.observations(), b.observations());
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "quick {:?}, careful {:?}", a.err(), b.err()),
            }
        }
    }

    proptest! {
        #[test]
        fn a_different_observation_does_not_match(
            (inputs, entries) in arb_patched(),
            flip in any::<prop::sample::Index>(),
        ) {
            let bytes = patched_bytes(&inputs, &entries);
            let run = RecordRun::from_bytes("r.bin", bytes, &inputs).unwrap();
            for (i, e) in entries.iter().enumerate() {
                let o = run.observation(i).unwrap();
                let flipped = |bytes: &[u8]| {
                    let mut b = bytes.to_vec();
                    if !b.is_empty() {
                        let k = flip.index(b.len());
                        b[k] ^= 1;
                    }
                    b
                };
                let other = match &e.observation {
                    Observation::Drop => Observation::Flood { bytes: vec![] },
                    Observation::Forward { port, bytes } if !bytes.is_empty() => {
                        Observation::Forward { port: *port, bytes: flipped(bytes) }
                    }
                    Observation::Forward { port, bytes } => Observation::Forward {
                        port: port.wrapping_add(1),
                        bytes: bytes.clone(),
                    },
                    Observation::Flood { bytes } if !bytes.is_empty() => {
                        Observation::Flood { bytes: flipped(bytes) }
                    }
                    Observation::Flood { .. } => Observation::Drop,
                };
                prop_assert!(!o.matches(&other), "entry {} matched {:?}", i, other);
            }
        }
    }

    fn mac_rewrite() -> (Vec<InputPacket>, Vec<RecordEntry>) {
        let input = InputPacket {
            port: 0,
            time_ns: 5,
            data: (0..60).collect(),
        };
        let mut out = input.data.clone();
        out[..12].copy_from_slice(&[0xaa; 12]);
        out[40] = 0xbb;
        let entry = RecordEntry {
            observation: Observation::Forward {
                port: 1,
                bytes: out,
            },
            record: PacketRecord {
                now: 5,
                ..PacketRecord::default()
            },
            translations: vec![],
        };
        (vec![input], vec![entry])
    }

    #[test]
    fn patches_are_small_and_need_the_inputs() {
        let (inputs, entries) = mac_rewrite();
        let bytes = patched_bytes(&inputs, &entries);
        let whole = record_bytes(&RecordFile {
            header: RecordHeader {
                frames: FrameEncoding::Whole,
                ..RecordRun::from_bytes("r.bin", bytes.clone(), &inputs)
                    .unwrap()
                    .header
            },
            entries: entries.clone(),
            trailer: RecordTrailer::default(),
        });
        // Two patches (12 bytes at 0, 1 byte at 40) instead of a 60-byte frame.
        assert_eq!(
            whole.len() - bytes.len(),
            (4 + 60) - (1 + 1 + 2 + 12 + 2 + 1)
        );
        let err = RecordFile::from_bytes("r.bin", bytes.clone()).unwrap_err();
        // trailer 21 bytes, the record and translation count 8, the patched frame 19.
        let form_at = bytes.len() - 21 - 8 - (1 + 1 + 2 + 12 + 2 + 1);
        assert_eq!(
            err.to_string(),
            format!(
                "r.bin: byte offset {form_at}: entry #0 stores its output frame as patches of \
                 input packet #0, but 0 input packets were given; read the file with the \
                 packets the run read (RecordFile::read_with_inputs)"
            )
        );
        // Inputs shorter than the patches reach: refused, naming the patch.
        let short = vec![InputPacket {
            data: vec![0; 30],
            ..inputs[0].clone()
        }];
        let err = RecordRun::from_bytes("r.bin", bytes, &short).err().unwrap();
        assert!(
            err.to_string().contains(
                "expected patch 1 of packet #0 inside its 30-byte input frame, not empty, found 1 bytes at offset 40"
            ),
            "{err}"
        );
    }

    #[test]
    fn patches_must_end_inside_their_input_exactly() {
        // The last patch ends at byte 41: inputs of 41 bytes or more hold it, 40 do not,
        // for the quick reader and the careful one alike.
        let (inputs, entries) = mac_rewrite();
        let bytes = patched_bytes(&inputs, &entries);
        for len in [39, 40, 41, 42] {
            let short = vec![InputPacket {
                data: inputs[0].data[..len].to_vec(),
                ..inputs[0].clone()
            }];
            for quick in [true, false] {
                let run =
                    RecordRun::parse_with(PathBuf::from("r.bin"), bytes.clone(), &short, quick);
                assert_eq!(run.is_ok(), len >= 41, "{len} bytes, quick {quick}");
            }
        }
    }

    #[test]
    fn a_cut_entry_names_the_file_the_packet_and_the_offset() {
        let (mut inputs, mut entries) = mac_rewrite();
        inputs.push(inputs[0].clone());
        entries.push(entries[0].clone());
        let bytes = patched_bytes(&inputs, &entries);
        // Entry #1 (32 bytes: 6 up to the patch count, patches of 14 and 3 bytes, 9 for
        // the record, whose queue position 0 is not the implied 1, and the translation
        // count) before the 21-byte trailer; its first patch's bytes follow the tag, kind,
        // port (2), form, count, skip and len.
        let entry1 = bytes.len() - 21 - 32;
        let patch_at = entry1 + 1 + 1 + 2 + 1 + 1 + 1 + 1;
        let err = RecordRun::from_bytes("r.bin", bytes[..patch_at + 5].to_vec(), &inputs)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "r.bin: byte offset {patch_at}: the file ends inside patch 0 of packet #1 (5 of \
                 12 bytes present); it was cut short: write it again"
            )
        );
    }

    #[test]
    fn records_on_disk_read_with_inputs() {
        let (inputs, entries) = mac_rewrite();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.bin");
        std::fs::write(&path, patched_bytes(&inputs, &entries)).unwrap();
        let file = RecordFile::read_with_inputs(&path, &inputs).unwrap();
        assert_eq!(file.entries, entries);
        let err = RecordFile::read(&path).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::NeedsInputs {
                    entry: 0,
                    given: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn varints_are_bounded() {
        let p = Path::new("v.bin");
        let read = |bytes: &[u8]| {
            let mut input = SliceIn::new(p, "test file", bytes);
            input.varint("a number").map_err(|Stop| input.error())
        };
        let long = [0xffu8; 11];
        let err = read(&long).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "v.bin: byte offset 0: expected a number (a variable-length number of at most 64 bits), found a longer one"
            ),
            "{err}"
        );
        let err = read(&[0x80, 0x80]).unwrap_err();
        assert!(
            matches!(err, WireError::Truncated { offset: 0, .. }),
            "{err}"
        );
        let mut max = [0xffu8; 10];
        max[9] = 1;
        assert_eq!(read(&max).unwrap(), u64::MAX);
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, v);
            assert_eq!(bytes.len(), varint_len(v));
            assert_eq!(read(&bytes).unwrap(), v);
        }
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 1] {
                let mut bytes = Vec::new();
                put_varint(&mut bytes, v);
                assert_eq!(bytes.len(), varint_len(v), "{v}");
            }
        }
        for d in [0u64, 1, u64::MAX, 1 << 63, 12345] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
    }

    #[test]
    fn unknown_record_flags_are_refused() {
        let (inputs, entries) = mac_rewrite();
        let mut bytes = patched_bytes(&inputs, &entries);
        let flags_at = bytes.len() - 21 - 8;
        assert_eq!(bytes[flags_at], 0);
        bytes[flags_at] = 0x10;
        let err = RecordRun::from_bytes("r.bin", bytes, &inputs)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "r.bin: byte offset {flags_at}: expected the record flags of packet #0 (bits 0 \
                 to 2), found 0x10; the file is corrupt or not a maestro record file: write it \
                 again"
            )
        );
    }

    /// The patches as the byte-by-byte [`diff_runs`] defines them, or `None` where the
    /// whole frame is stored.
    fn reference_patches(base: &[u8], out: &[u8]) -> Option<Vec<u8>> {
        let mut runs = Vec::new();
        let size = diff_runs(base, out, &mut runs)?;
        if size >= 5 + out.len() {
            return None;
        }
        let mut enc = vec![FORM_PATCHED, runs.len() as u8];
        let mut prev_end = 0;
        for &(start, end) in &runs {
            put_varint(&mut enc, (start - prev_end) as u64);
            put_varint(&mut enc, (end - start) as u64);
            enc.extend_from_slice(&out[start..end]);
            prev_end = end;
        }
        assert_eq!(enc.len(), size);
        Some(enc)
    }

    fn fast_patches(base: &[u8], out: &[u8]) -> Option<Vec<u8>> {
        let mut enc = vec![0xee];
        let patched = encode_patches(base, out, &mut enc, None);
        assert_eq!(enc[0], 0xee, "what was there stays");
        if patched {
            Some(enc[1..].to_vec())
        } else {
            assert_eq!(enc.len(), 1, "a refused frame leaves nothing behind");
            None
        }
    }

    /// A frame and a copy with changes: runs of changed bytes at random places, so that
    /// gaps of every size (and runs at both ends) occur.
    fn arb_changed() -> impl PStrategy<Value = (Vec<u8>, Vec<u8>)> {
        (0usize..2100, any::<u64>()).prop_map(|(n, seed)| {
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let base: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            let mut out = base.clone();
            let changes = if n == 0 { 0 } else { next() % 12 };
            let density = next() % 4;
            for _ in 0..changes {
                let at = (next() as usize) % n;
                let len = 1 + (next() as usize) % 6;
                for b in out.iter_mut().skip(at).take(len) {
                    *b ^= 1 + (next() % 255) as u8;
                }
            }
            if density == 0 {
                // Scattered single bytes: many runs, some frames beyond 255 of them.
                let step = 2 + (next() as usize) % 5;
                for b in out.iter_mut().step_by(step) {
                    *b = b.wrapping_add(1);
                }
            }
            (base, out)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn patches_are_the_byte_by_byte_definition((base, out) in arb_changed()) {
            prop_assert_eq!(fast_patches(&base, &out), reference_patches(&base, &out));
        }
    }

    /// A run of frames as an NF rewrites them: the same header bytes with the same
    /// values, now and then different values, other bytes, other lengths.
    fn arb_rewrites() -> impl PStrategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        prop::collection::vec((any::<u8>(), 0usize..8, 40usize..140, any::<u64>()), 1..60).prop_map(
            |frames| {
                frames
                    .into_iter()
                    .map(|(pick, what, n, seed)| {
                        let base: Vec<u8> =
                            (0..n).map(|i| (seed >> (i % 57)) as u8 ^ i as u8).collect();
                        let mut out = base.clone();
                        // The usual rewrite: 12 MAC bytes, mostly the same values.
                        for (i, b) in out.iter_mut().take(12).enumerate() {
                            *b = if what == 1 { pick } else { 0x40 + i as u8 };
                        }
                        match what {
                            2 => out[n / 2] ^= 0xff,
                            3 => out[n - 1] ^= 1,
                            4 => out[5] = base[5],
                            5 => out.copy_from_slice(&base),
                            6 => {
                                for b in out.iter_mut().step_by(3) {
                                    *b = !*b;
                                }
                            }
                            _ => {}
                        }
                        (base, out)
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn remembered_patches_are_the_patches(frames in arb_rewrites()) {
            let mut memo = PatchMemo::default();
            for (k, (base, out)) in frames.iter().enumerate() {
                let mut with = vec![7u8];
                let p1 = encode_patches(base, out, &mut with, Some(&mut memo));
                let mut without = vec![7u8];
                let p2 = encode_patches(base, out, &mut without, None);
                prop_assert_eq!(p1, p2, "frame {}", k);
                prop_assert_eq!(&with, &without, "frame {}", k);
            }
        }
    }

    #[test]
    fn the_same_rewrite_is_remembered_and_a_different_one_is_not() {
        // The header bytes the patches cover (gaps included) are the same in every
        // input, the rest differs.
        let frame = |seed: u8| -> Vec<u8> {
            (0..60)
                .map(|i| {
                    if i < 12 {
                        0x10 + i
                    } else {
                        seed.wrapping_mul(i) ^ 3
                    }
                })
                .collect()
        };
        let rewrite = |base: &[u8], mac: u8| {
            let mut out = base.to_vec();
            out[..6].fill(mac);
            out[8] = 0x77;
            out
        };
        let hit = |memo: &PatchMemo, base: &[u8], out: &[u8]| {
            let mut bits = [0u64; 3];
            diff_bits(base, out, &mut bits[..1]);
            memo.recall(&bits, out).is_some()
        };
        let mut memo = PatchMemo::default();
        let mut enc = Vec::new();
        let mut hits = 0;
        for k in 0..100u8 {
            let base = frame(k | 1);
            // Byte 8 of some inputs already holds the new value: other runs, no hit.
            let mut base = base;
            if k % 10 == 0 {
                base[8] = 0x77;
            }
            let mac = if k % 25 == 24 { 0x99 } else { 0x42 };
            let out = rewrite(&base, mac);
            hits += usize::from(hit(&memo, &base, &out));
            enc.clear();
            assert!(encode_patches(&base, &out, &mut enc, Some(&mut memo)));
            assert_eq!(
                Some(enc.clone()),
                reference_patches(&base, &out),
                "frame {k}"
            );
        }
        // Misses: the first frame (byte 8 unchanged), the first ordinary one and the
        // first with the other MAC; the memo keeps all three kinds after that.
        assert_eq!(hits, 100 - 3);
    }

    #[test]
    fn patches_at_word_and_frame_boundaries() {
        // Every single-byte and two-byte change, and changes three apart, in frames of
        // every length up to 140 (both sides of the 64-byte words and the 8-byte tails).
        for n in 0..140usize {
            let base: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            for at in 0..n {
                for (len, gap) in [(1, 0), (2, 0), (1, 3), (1, 2), (2, 1)] {
                    let mut out = base.clone();
                    out[at] ^= 0x5a;
                    if gap > 0 && at + gap < n {
                        out[at + gap] ^= 0xa5;
                    }
                    if len == 2 && at + 1 < n {
                        out[at + 1] ^= 0x11;
                    }
                    assert_eq!(
                        fast_patches(&base, &out),
                        reference_patches(&base, &out),
                        "n {n}, at {at}, len {len}, gap {gap}"
                    );
                }
            }
            assert_eq!(fast_patches(&base, &base), reference_patches(&base, &base));
        }
    }

    #[test]
    fn diff_runs_merge_small_gaps() {
        let base = [0u8; 32];
        let mut runs = Vec::new();
        assert_eq!(diff_runs(&base, &base, &mut runs), Some(2));
        assert!(runs.is_empty());
        let mut out = base;
        out[3] = 1;
        out[6] = 1; // two equal bytes between: one patch
        out[20] = 1; // far: another
        out[31] = 1; // the last byte
        assert_eq!(
            diff_runs(&base, &out, &mut runs),
            Some(2 + (2 + 4) + (2 + 1) + (2 + 1))
        );
        assert_eq!(runs, vec![(3, 7), (20, 21), (31, 32)]);
        // Gaps of three bytes stay apart: 150 one-byte patches fit the count byte, 300 do not.
        let sparse: Vec<u8> = (0..1200).map(|i| u8::from(i % 4 == 0)).collect();
        assert_eq!(
            diff_runs(&[0; 600], &sparse[..600], &mut runs),
            Some(2 + 150 * 3)
        );
        assert_eq!(diff_runs(&[0; 1200], &sparse, &mut runs), None);
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
                frames: FrameEncoding::Whole,
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
                frames: FrameEncoding::Whole,
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
        // entry: tag, kind, flags, core, now, hash (4), translation count; trailer: tag,
        // faults (8), three counts (4 each).
        let tag_at = bytes.len() - (1 + 1 + 1 + 1 + 1 + 4 + 1) - (1 + 8 + 4 + 4 + 4);
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
