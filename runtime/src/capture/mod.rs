//! Capture files in and out: streaming pcap/pcapng reading that never panics on bad
//! input, the rule that gives each captured packet its input port, and pcap/pcapng
//! writing.
//!
//! Reading is built on `pcap-file`'s slice parsers, fed by our own buffer: the crate's
//! own readers cannot skip a bad record and carry on (they stop on the first error
//! without consuming it), they reject snap-length-cut packets (`orig_len > snaplen`) and
//! they read pcapng timestamps as nanoseconds whatever the interface's `if_tsresol`.
//! So we frame records and blocks ourselves (which also bounds what a corrupt length
//! can make us read), let the crate decode them, and convert timestamps ourselves.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::{Endianness, TsResolution};
use thiserror::Error;

use crate::trace::InputPacket;

/// The largest captured length we accept (libpcap's `MAXIMUM_SNAPLEN`): a record that
/// claims more is corrupt, and its length cannot be trusted to find the next record.
pub const MAX_CAPLEN: u32 = 262_144;
/// The largest pcapng block we read: bounds the memory a corrupt length can claim.
pub const MAX_BLOCK_LEN: u32 = 16 << 20;

/// Ethernet's link type number in pcap and pcapng.
const LINKTYPE_ETHERNET: u32 = 1;
const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 1;
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
/// Read granularity of the streaming buffer.
const CHUNK: usize = 64 * 1024;

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Classic libpcap format (`.pcap`).
    Pcap,
    /// pcapng (`.pcapng`).
    PcapNg,
}

impl CaptureFormat {
    /// The format a file name suggests: `.pcapng` is pcapng, anything else classic pcap.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => CaptureFormat::PcapNg,
            _ => CaptureFormat::Pcap,
        }
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNg => "pcapng",
        })
    }
}

impl FromStr for CaptureFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pcap" => Ok(CaptureFormat::Pcap),
            "pcapng" => Ok(CaptureFormat::PcapNg),
            _ => Err(format!(
                "unknown capture format `{s}`: expected `pcap` or `pcapng`"
            )),
        }
    }
}

/// Timestamp resolution of a classic pcap file (from its magic number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampResolution {
    Micro,
    Nano,
}

/// One captured packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CaptureRecord {
    /// Position among the file's packet records, refused ones included, from 0.
    pub index: u64,
    /// The pcapng interface id; `None` for classic pcap.
    pub interface: Option<u32>,
    /// Timestamp in nanoseconds since the epoch.
    pub time_ns: u64,
    /// Length on the wire; more than `data.len()` when the capture cut the packet.
    pub orig_len: u32,
    /// The captured bytes, Ethernet header first.
    pub data: Vec<u8>,
}

impl CaptureRecord {
    /// The packet as an NF input arriving on `port`.
    pub fn into_input(self, port: u16) -> InputPacket {
        InputPacket {
            port,
            time_ns: self.time_ns,
            data: self.data,
        }
    }
}

/// A record the reader skipped, and why; counted and reported rather than fatal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefusedRecord {
    /// Position among the file's packet records.
    pub index: u64,
    /// Where the record (or block) starts in the file.
    pub byte_offset: u64,
    pub reason: String,
}

impl fmt::Display for RefusedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record #{} at byte offset {}: {}",
            self.index, self.byte_offset, self.reason
        )
    }
}

/// What the reader yields for each record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CaptureItem {
    Packet(CaptureRecord),
    Refused(RefusedRecord),
}

/// A capture that cannot be read (or written) at all. Each message names the file,
/// the place and what to do about it.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("{}: {source}; check that the path exists and is readable (writable for output)", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: empty file (0 bytes), not a capture; re-export the capture as pcap or pcapng", path.display())]
    Empty { path: PathBuf },
    #[error("{}", bad_magic_message(path, found))]
    BadMagic { path: PathBuf, found: [u8; 4] },
    #[error("{}: bad capture header at byte offset {offset}: {reason}", path.display())]
    Header {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: link type {linktype} is not Ethernet (1); the NFs need Ethernet frames: re-capture on an Ethernet interface or convert with `tcprewrite --dlt=enet`", path.display())]
    LinkType { path: PathBuf, linktype: u32 },
    #[error("{}: cannot write a packet on port {port}: the writer was created for {ports} port(s) (0..{ports})", path.display())]
    PortOutOfRange {
        path: PathBuf,
        port: u16,
        ports: u16,
    },
    #[error("{}: cannot write: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

fn bad_magic_message(path: &Path, found: &[u8; 4]) -> String {
    let hint = match found {
        [0x1f, 0x8b, ..] => "it looks gzip-compressed: decompress it first (`gunzip`)",
        [0x28, 0xb5, 0x2f, 0xfd] => "it looks zstd-compressed: decompress it first (`unzstd`)",
        _ => "convert it with `editcap -F pcap IN OUT.pcap`",
    };
    format!(
        "{}: not a pcap or pcapng file (magic 0x{:02x}{:02x}{:02x}{:02x} at offset 0); {hint}",
        path.display(),
        found[0],
        found[1],
        found[2],
        found[3]
    )
}

// ---------------------------------------------------------------------------------------
// Streaming input buffer
// ---------------------------------------------------------------------------------------

/// A growable window on the input: only the record being parsed is held in memory.
struct Input {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Input {
    fn new(src: Box<dyn Read + Send>) -> Self {
        Input {
            src,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
        }
    }

    /// File offset of the next unconsumed byte.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until `n` bytes are available; `Ok(false)` if the input ends first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.pos < n && !self.eof {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.base += self.pos as u64;
                self.pos = 0;
            }
            let old = self.buf.len();
            let want = (n - old).max(CHUNK);
            self.buf.resize(old + want, 0);
            match self.src.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(k) => self.buf.truncate(old + k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        Ok(self.buf.len() - self.pos >= n)
    }

    /// Takes the next `n` bytes (which must be available) out of the buffer.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let end = (self.pos + n).min(self.buf.len());
        let v = self.buf[self.pos..end].to_vec();
        self.pos = end;
        v
    }
}

fn rd16(e: Endianness, b: &[u8], off: usize) -> u16 {
    let mut w = [0u8; 2];
    for (i, x) in w.iter_mut().enumerate() {
        *x = b.get(off + i).copied().unwrap_or(0);
    }
    match e {
        Endianness::Big => u16::from_be_bytes(w),
        Endianness::Little => u16::from_le_bytes(w),
    }
}

fn rd32(e: Endianness, b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = b.get(off + i).copied().unwrap_or(0);
    }
    match e {
        Endianness::Big => u32::from_be_bytes(w),
        Endianness::Little => u32::from_le_bytes(w),
    }
}

fn rd64(e: Endianness, b: &[u8], off: usize) -> u64 {
    let hi = u64::from(rd32(e, b, off));
    let lo = u64::from(rd32(e, b, off + 4));
    match e {
        Endianness::Big => (hi << 32) | lo,
        Endianness::Little => (lo << 32) | hi,
    }
}

/// Converts pcapng timestamp ticks to nanoseconds. `if_tsresol`: top bit clear = ticks of
/// 10^-n s, top bit set = ticks of 2^-n s; `if_tsoffset` is a signed offset in seconds.
/// Saturates at 0 and `u64::MAX` ns (year 2554).
fn ticks_to_ns(ticks: u64, tsresol: u8, offset_s: i64) -> u64 {
    let t = u128::from(ticks);
    let ns: u128 = if tsresol & 0x80 == 0 {
        let exp = u32::from(tsresol);
        if exp <= 9 {
            t * 10u128.pow(9 - exp)
        } else {
            10u128.checked_pow(exp - 9).map_or(0, |d| t / d)
        }
    } else {
        (t * 1_000_000_000) >> u32::from(tsresol & 0x7f)
    };
    let total = ns as i128 + i128::from(offset_s) * 1_000_000_000;
    total.clamp(0, i128::from(u64::MAX)) as u64
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// What we keep of a pcapng Interface Description Block.
#[derive(Clone, Debug)]
struct Iface {
    linktype: u32,
    snaplen: u32,
    tsresol: u8,
    tsoffset_s: i64,
    /// Why packets on this interface cannot be read, if its IDB was unusable.
    broken: Option<String>,
}

impl Iface {
    fn from_block(idb: &InterfaceDescriptionBlock) -> Self {
        let mut iface = Iface {
            linktype: u32::from(idb.linktype),
            snaplen: idb.snaplen,
            tsresol: 6,
            tsoffset_s: 0,
            broken: None,
        };
        for opt in &idb.options {
            match opt {
                InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => iface.tsoffset_s = *o as i64,
                _ => {}
            }
        }
        iface
    }

    /// A lenient IDB reader for blocks `pcap-file` rejects over an option we do not use
    /// (e.g. it requires `if_tzone` to be 1 byte long where the spec says 4).
    fn lenient(e: Endianness, block: &[u8]) -> Option<Self> {
        let body = block.get(8..block.len().checked_sub(4)?)?;
        if body.len() < 8 {
            return None;
        }
        let mut iface = Iface {
            linktype: u32::from(rd16(e, body, 0)),
            snaplen: rd32(e, body, 4),
            tsresol: 6,
            tsoffset_s: 0,
            broken: None,
        };
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let code = rd16(e, opts, 0);
            let len = usize::from(rd16(e, opts, 2));
            if code == 0 {
                break;
            }
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match (code, len) {
                (9, 1) => iface.tsresol = value[0],
                (14, 8) => iface.tsoffset_s = rd64(e, value, 0) as i64,
                _ => {}
            }
            opts = opts.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
        }
        Some(iface)
    }
}

/// A packet-bearing pcapng block, decoded.
struct NgPacket {
    interface: Option<u32>,
    /// Raw timestamp ticks, `None` for a Simple Packet Block.
    ticks: Option<u64>,
    orig_len: u32,
    data: Vec<u8>,
}

struct NgState {
    endianness: Endianness,
    parser: PcapNgParser,
    interfaces: Vec<Iface>,
}

enum Kind {
    Pcap {
        parser: PcapParser,
        endianness: Endianness,
        nanos: bool,
        /// The header's snap length; 0 or above [`MAX_CAPLEN`] means [`MAX_CAPLEN`] (as libpcap).
        snaplen: u32,
    },
    PcapNg(Box<NgState>),
}

/// A streaming reader of pcap and pcapng files: holds one record in memory at a time.
///
/// Whole-file problems (not a capture, truncated file header, non-Ethernet link type)
/// are a [`CaptureError`] from [`open`](Self::open). Record problems become
/// [`CaptureItem::Refused`]: the reader carries on when the next record can still be
/// found (a caplen above the snap length, an unknown interface) and stops after the
/// refusal when it cannot (a truncated tail, an absurd length).
///
/// Timestamps become nanoseconds: pcap µs or ns by magic; pcapng by each interface's
/// `if_tsresol` (default µs) plus `if_tsoffset`. A Simple Packet Block has no timestamp
/// and takes the previous packet's, so time never goes backwards because of it.
pub struct CaptureReader {
    path: PathBuf,
    input: Input,
    kind: Kind,
    next_index: u64,
    last_time_ns: u64,
    done: bool,
    packets: u64,
    refused: u64,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("format", &self.format())
            .field("offset", &self.input.offset())
            .field("next_index", &self.next_index)
            .field("done", &self.done)
            .finish()
    }
}

/// A framing failure: where, and why.
type Stop = (u64, String);

impl CaptureReader {
    /// Opens a capture file for streaming.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::start(path.to_path_buf(), Box::new(file))
    }

    /// Reads a capture held in memory; `name` stands for the file in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, CaptureError> {
        Self::start(PathBuf::from(name), Box::new(io::Cursor::new(bytes)))
    }

    /// Reads a capture from any byte stream.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        Self::start(PathBuf::from(name), reader)
    }

    fn start(path: PathBuf, src: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let mut input = Input::new(src);
        let io_err = |path: &Path, source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let have_magic = input.fill(4).map_err(|e| io_err(&path, e))?;
        let head = input.avail();
        if head.is_empty() {
            return Err(CaptureError::Empty { path });
        }
        if !have_magic {
            return Err(CaptureError::Header {
                path,
                offset: 0,
                reason: format!(
                    "the file is only {} byte(s) long, too short for any capture header; it is not a pcap or pcapng file",
                    head.len()
                ),
            });
        }
        let found = [head[0], head[1], head[2], head[3]];
        let kind = match u32::from_be_bytes(found) {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                Self::start_pcap(&path, &mut input)?
            }
            SHB_TYPE => Self::start_pcapng(&path, &mut input)?,
            0xA1B2_CD34 | 0x34CD_B2A1 => {
                return Err(CaptureError::Header {
                    path,
                    offset: 0,
                    reason: "this is a \"modified\" (Kuznetzov) pcap, which maestro does not read; convert it with `editcap -F pcap IN OUT.pcap`".into(),
                })
            }
            _ => return Err(CaptureError::BadMagic { path, found }),
        };
        Ok(CaptureReader {
            path,
            input,
            kind,
            next_index: 0,
            last_time_ns: 0,
            done: false,
            packets: 0,
            refused: 0,
        })
    }

    fn start_pcap(path: &Path, input: &mut Input) -> Result<Kind, CaptureError> {
        let header_err = |reason: String| CaptureError::Header {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        };
        let complete = input.fill(24).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !complete {
            return Err(header_err(format!(
                "truncated pcap file header: {} of 24 bytes; the file was cut short: re-export or re-capture it",
                input.avail().len()
            )));
        }
        let header_bytes = input.take(24);
        let (_, parser) = PcapParser::new(&header_bytes).map_err(|e| {
            header_err(format!(
                "pcap file header rejected ({e}); convert it with `editcap -F pcap IN OUT.pcap`"
            ))
        })?;
        let header: PcapHeader = parser.header();
        let linktype = u32::from(header.datalink);
        if linktype & 0xffff != LINKTYPE_ETHERNET {
            return Err(CaptureError::LinkType {
                path: path.to_path_buf(),
                linktype,
            });
        }
        let snaplen = if header.snaplen == 0 || header.snaplen > MAX_CAPLEN {
            MAX_CAPLEN
        } else {
            header.snaplen
        };
        Ok(Kind::Pcap {
            parser,
            endianness: header.endianness,
            nanos: header.ts_resolution == TsResolution::NanoSecond,
            snaplen,
        })
    }

    fn start_pcapng(path: &Path, input: &mut Input) -> Result<Kind, CaptureError> {
        let header_err = |(offset, reason): Stop| CaptureError::Header {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        // The endianness passed here is irrelevant: the first block is a section header,
        // whose byte-order magic decides.
        let (off, e, btype, block) = match next_block_frame(input, Endianness::Big) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(header_err((0, "empty pcapng file".into()))),
            Err(stop) => return Err(header_err(stop)),
        };
        if btype != SHB_TYPE {
            return Err(header_err((
                off,
                "the first block is not a section header".into(),
            )));
        }
        let parser = section_parser(e, &block).map_err(|r| header_err((off, r)))?;
        Ok(Kind::PcapNg(Box::new(NgState {
            endianness: e,
            parser,
            interfaces: Vec::new(),
        })))
    }

    /// The file (or the name given to [`from_bytes`](Self::from_bytes)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> CaptureFormat {
        match self.kind {
            Kind::Pcap { .. } => CaptureFormat::Pcap,
            Kind::PcapNg(_) => CaptureFormat::PcapNg,
        }
    }

    /// The timestamp resolution of a classic pcap; `None` for pcapng, where each
    /// interface has its own.
    pub fn timestamp_resolution(&self) -> Option<TimestampResolution> {
        match self.kind {
            Kind::Pcap { nanos: true, .. } => Some(TimestampResolution::Nano),
            Kind::Pcap { nanos: false, .. } => Some(TimestampResolution::Micro),
            Kind::PcapNg(_) => None,
        }
    }

    /// Packets delivered so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Records refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The next packet or refused record; `None` at the end (or after a refusal that
    /// made the rest of the file unreadable).
    pub fn next_item(&mut self) -> Option<CaptureItem> {
        if self.done {
            return None;
        }
        let item = match self.kind {
            Kind::Pcap { .. } => self.next_pcap(),
            Kind::PcapNg(_) => self.next_pcapng(),
        };
        match &item {
            Some(CaptureItem::Packet(p)) => {
                self.packets += 1;
                self.last_time_ns = p.time_ns;
            }
            Some(CaptureItem::Refused(_)) => self.refused += 1,
            None => self.done = true,
        }
        item
    }

    fn index(&mut self) -> u64 {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    fn refuse(&mut self, byte_offset: u64, reason: String) -> Option<CaptureItem> {
        let index = self.index();
        Some(CaptureItem::Refused(RefusedRecord {
            index,
            byte_offset,
            reason,
        }))
    }

    /// Refuses and stops: what follows cannot be located.
    fn refuse_stop(&mut self, (byte_offset, reason): Stop) -> Option<CaptureItem> {
        self.done = true;
        self.refuse(
            byte_offset,
            format!("{reason}; the rest of the file is skipped"),
        )
    }

    fn next_pcap(&mut self) -> Option<CaptureItem> {
        let Kind::Pcap {
            endianness,
            nanos,
            snaplen,
            ..
        } = self.kind
        else {
            return None;
        };
        let off = self.input.offset();
        match self.input.fill(16) {
            Err(e) => return self.refuse_stop((off, format!("read error: {e}"))),
            Ok(false) => {
                let n = self.input.avail().len();
                if n == 0 {
                    return None;
                }
                return self.refuse_stop((
                    off,
                    format!("truncated record header ({n} of 16 bytes): the capture was cut short"),
                ));
            }
            Ok(true) => {}
        }
        let caplen = rd32(endianness, self.input.avail(), 8);
        if caplen > MAX_CAPLEN {
            return self.refuse_stop((
                off,
                format!(
                    "absurd captured length {caplen} (more than {MAX_CAPLEN}): the file is corrupt here, so record boundaries are lost; repair it (`pcapfix`) or keep the records before this one (`editcap -r IN OUT 1-{}`)",
                    self.next_index
                ),
            ));
        }
        let total = 16 + caplen as usize;
        match self.input.fill(total) {
            Err(e) => return self.refuse_stop((off, format!("read error: {e}"))),
            Ok(false) => {
                let n = self.input.avail().len() - 16;
                return self.refuse_stop((
                    off,
                    format!(
                        "truncated last record: its header says {caplen} captured bytes but only {n} remain (the capture was cut short)"
                    ),
                ));
            }
            Ok(true) => {}
        }
        let bytes = self.input.take(total);
        let Kind::Pcap { parser, .. } = &self.kind else {
            return None;
        };
        let (ts_sec, ts_frac, orig_len, data) = match parser.next_raw_packet(&bytes) {
            Ok((_, raw)) => (raw.ts_sec, raw.ts_frac, raw.orig_len, raw.data.into_owned()),
            Err(e) => return self.refuse_stop((off, format!("undecodable record ({e})"))),
        };
        if caplen > snaplen {
            return self.refuse(
                off,
                format!("captured length {caplen} exceeds the file's snap length {snaplen}; record skipped"),
            );
        }
        let frac_ns = if nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        let index = self.index();
        Some(CaptureItem::Packet(CaptureRecord {
            index,
            interface: None,
            time_ns: u64::from(ts_sec) * 1_000_000_000 + frac_ns,
            orig_len,
            data,
        }))
    }

    fn next_pcapng(&mut self) -> Option<CaptureItem> {
        loop {
            let Kind::PcapNg(ng) = &mut self.kind else {
                return None;
            };
            let (off, e, btype, block) = match next_block_frame(&mut self.input, ng.endianness) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(stop) => return self.refuse_stop(stop),
            };
            match btype {
                SHB_TYPE => {
                    if let Err(reason) = section_parser(e, &block).map(|parser| {
                        ng.parser = parser;
                        ng.endianness = e;
                        ng.interfaces.clear();
                    }) {
                        return self.refuse_stop((off, reason));
                    }
                }
                IDB_TYPE => {
                    let iface = match ng.parser.next_block(&block) {
                        Ok((_, Block::InterfaceDescription(idb))) => Iface::from_block(&idb),
                        other => {
                            let why = match other {
                                Err(err) => err.to_string(),
                                Ok(_) => "not an interface description".into(),
                            };
                            Iface::lenient(e, &block).unwrap_or(Iface {
                                linktype: 0,
                                snaplen: 0,
                                tsresol: 6,
                                tsoffset_s: 0,
                                broken: Some(format!(
                                    "its interface description block at byte offset {off} is malformed ({why})"
                                )),
                            })
                        }
                    };
                    ng.interfaces.push(iface);
                }
                EPB_TYPE | SPB_TYPE | PB_TYPE => {
                    let decoded = decode_packet_block(ng, e, btype, &block);
                    return self.deliver_ng(off, decoded);
                }
                _ => {} // statistics, name resolution, custom...: not needed
            }
        }
    }

    fn deliver_ng(&mut self, off: u64, decoded: Result<NgPacket, String>) -> Option<CaptureItem> {
        let p = match decoded {
            Ok(p) => p,
            Err(reason) => return self.refuse(off, reason),
        };
        let Kind::PcapNg(ng) = &self.kind else {
            return None;
        };
        let id = p.interface.unwrap_or(0);
        let check = match ng.interfaces.get(id as usize) {
            None => Err(format!(
                "packet on interface {id}, but the section declares {} interface(s) before it; record skipped",
                ng.interfaces.len()
            )),
            Some(Iface {
                broken: Some(why), ..
            }) => Err(format!("packet on interface {id}, whose {why}; record skipped")),
            Some(iface) if iface.linktype != LINKTYPE_ETHERNET => Err(format!(
                "interface {id} has link type {}, not Ethernet (1); record skipped",
                iface.linktype
            )),
            Some(_) if p.data.len() > MAX_CAPLEN as usize => Err(format!(
                "absurd captured length {} (more than {MAX_CAPLEN}); record skipped",
                p.data.len()
            )),
            Some(iface) if iface.snaplen != 0 && p.data.len() > iface.snaplen as usize => {
                Err(format!(
                    "captured length {} exceeds interface {id}'s snap length {}; record skipped",
                    p.data.len(),
                    iface.snaplen
                ))
            }
            Some(iface) => Ok(iface.clone()),
        };
        let iface = match check {
            Ok(i) => i,
            Err(reason) => return self.refuse(off, reason),
        };
        let time_ns = match p.ticks {
            Some(t) => ticks_to_ns(t, iface.tsresol, iface.tsoffset_s),
            None => self.last_time_ns,
        };
        let index = self.index();
        Some(CaptureItem::Packet(CaptureRecord {
            index,
            interface: Some(id),
            time_ns,
            orig_len: p.orig_len,
            data: p.data,
        }))
    }
}

impl Iterator for CaptureReader {
    type Item = CaptureItem;

    fn next(&mut self) -> Option<CaptureItem> {
        self.next_item()
    }
}

/// One whole pcapng block: `(file offset, byte order, block type, bytes)`.
type Frame = (u64, Endianness, u32, Vec<u8>);

/// Reads the next whole pcapng block; `Ok(None)` at a clean end of file, `Err` when the
/// block cannot be framed (the rest is unreadable).
fn next_block_frame(input: &mut Input, section: Endianness) -> Result<Option<Frame>, Stop> {
    let off = input.offset();
    let read_err = |e: io::Error| (off, format!("read error: {e}"));
    let truncated = |n: usize, what: &str| {
        (
            off,
            format!("truncated {what} ({n} bytes left at the end of the file): the capture was cut short"),
        )
    };
    if !input.fill(8).map_err(read_err)? {
        let n = input.avail().len();
        return if n == 0 {
            Ok(None)
        } else {
            Err(truncated(n, "block header"))
        };
    }
    let is_shb = input.avail()[..4] == SHB_TYPE.to_be_bytes();
    let section_type = rd32(section, input.avail(), 0);
    let (e, btype) = if is_shb {
        if !input.fill(12).map_err(read_err)? {
            return Err(truncated(input.avail().len(), "section header block"));
        }
        let e = match &input.avail()[8..12] {
            [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
            [0x4d, 0x3c, 0x2b, 0x1a] => Endianness::Little,
            &[a, b, c, d] => {
                return Err((
                    off,
                    format!("section header block with an invalid byte-order magic 0x{a:02x}{b:02x}{c:02x}{d:02x} (expected 0x1a2b3c4d in either byte order): the file is corrupt; repair it with `pcapfix`"),
                ))
            }
            _ => return Err(truncated(input.avail().len(), "section header block")),
        };
        (e, SHB_TYPE)
    } else {
        (section, section_type)
    };
    let len = rd32(e, input.avail(), 4);
    if len < 12 || len & 3 != 0 {
        return Err((
            off,
            format!("block of type 0x{btype:08x} has an invalid total length {len} (must be a multiple of 4, at least 12): the file is corrupt; repair it with `pcapfix`"),
        ));
    }
    if len > MAX_BLOCK_LEN {
        return Err((
            off,
            format!("block of type 0x{btype:08x} claims an absurd length {len} (more than {MAX_BLOCK_LEN}): the file is corrupt; repair it with `pcapfix`"),
        ));
    }
    if !input.fill(len as usize).map_err(read_err)? {
        return Err(truncated(
            input.avail().len(),
            &format!("block of {len} bytes"),
        ));
    }
    let block = input.take(len as usize);
    let trailer = rd32(e, &block, block.len() - 4);
    if trailer != len {
        return Err((
            off,
            format!("block of type 0x{btype:08x} has total length {len} at its start but {trailer} at its end: the file is corrupt; repair it with `pcapfix`"),
        ));
    }
    Ok(Some((off, e, btype, block)))
}

/// A `pcap-file` parser for the section this header block opens. When the crate rejects
/// the header over its options (which we do not need), a minimal header of the same byte
/// order stands in for it.
fn section_parser(e: Endianness, block: &[u8]) -> Result<PcapNgParser, String> {
    let major = rd16(e, block, 12);
    if major != 1 {
        return Err(format!(
            "pcapng major version {major} is not supported (only 1); convert the file with `editcap -F pcapng IN OUT.pcapng`"
        ));
    }
    if let Ok((_, parser)) = PcapNgParser::new(block) {
        return Ok(parser);
    }
    let shb = SectionHeaderBlock {
        endianness: e,
        ..Default::default()
    };
    let mut bytes = Vec::new();
    PcapNgWriter::with_section_header(&mut bytes, shb)
        .map(|_| ())
        .and_then(|()| PcapNgParser::new(&bytes).map(|(_, p)| p))
        .map_err(|err| format!("unreadable section header block ({err})"))
}

/// Decodes an Enhanced, Simple or (obsolete) Packet Block with `pcap-file`, falling back
/// to reading the fixed fields of an EPB ourselves when the crate rejects its options.
fn decode_packet_block(
    ng: &mut NgState,
    e: Endianness,
    btype: u32,
    block: &[u8],
) -> Result<NgPacket, String> {
    let parsed = ng.parser.next_block(block);
    match parsed {
        Ok((_, Block::EnhancedPacket(epb))) => Ok(NgPacket {
            interface: Some(epb.interface_id),
            ticks: Some(u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX)),
            orig_len: epb.original_len,
            data: epb.data.into_owned(),
        }),
        Ok((_, Block::SimplePacket(spb))) => {
            // The captured length is not stored: min(original length, snap length of
            // interface 0, bytes in the block), the block's padding excluded.
            let mut n = spb.data.len().min(spb.original_len as usize);
            if let Some(snap) = ng.interfaces.first().map(|i| i.snaplen) {
                if snap != 0 {
                    n = n.min(snap as usize);
                }
            }
            Ok(NgPacket {
                interface: Some(0),
                ticks: None,
                orig_len: spb.original_len,
                data: spb.data[..n].to_vec(),
            })
        }
        Ok((_, Block::Packet(pb))) => {
            // pcap-file reads the timestamp as one u64; on the wire it is two u32 words
            // (high first), so in little-endian files the halves come out swapped.
            let ticks = match e {
                Endianness::Big => pb.timestamp,
                Endianness::Little => pb.timestamp.rotate_left(32),
            };
            Ok(NgPacket {
                interface: Some(u32::from(pb.interface_id)),
                ticks: Some(ticks),
                orig_len: pb.original_len,
                data: pb.data.into_owned(),
            })
        }
        Ok(_) => Err(format!("block type 0x{btype:08x} decoded as another type")),
        Err(err) if btype == EPB_TYPE => lenient_epb(e, block)
            .ok_or_else(|| format!("malformed enhanced packet block ({err}); record skipped")),
        Err(err) => Err(format!(
            "malformed packet block of type 0x{btype:08x} ({err}); record skipped"
        )),
    }
}

/// The fixed fields and data of an EPB whose options `pcap-file` rejected.
fn lenient_epb(e: Endianness, block: &[u8]) -> Option<NgPacket> {
    let body = block.get(8..block.len().checked_sub(4)?)?;
    if body.len() < 20 {
        return None;
    }
    let caplen = rd32(e, body, 12) as usize;
    let data = body.get(20..20usize.checked_add(caplen)?)?.to_vec();
    Some(NgPacket {
        interface: Some(rd32(e, body, 0)),
        ticks: Some((u64::from(rd32(e, body, 4)) << 32) | u64::from(rd32(e, body, 8))),
        orig_len: rd32(e, body, 16),
        data,
    })
}

// ---------------------------------------------------------------------------------------
// Port assignment
// ---------------------------------------------------------------------------------------

/// How captured packets get their NF input port (the CLI's `--device-map`).
///
/// A capture records traffic, not which NF port it should arrive on; this rule decides.
/// Forms: `auto`, `interface`, `flow`, `port:N`, `subnet:A.B.C.D/P`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceMap {
    /// `auto` (default): the pcapng interface id when the record has one, else `flow`.
    #[default]
    Auto,
    /// `interface`: the pcapng interface id is the port; records without one (classic
    /// pcap) are refused.
    Interface,
    /// `flow`: the side that opened a conversation is the LAN, the reply side the WAN.
    /// A conversation is the unordered pair of endpoints: IP address and port plus the
    /// protocol for TCP/UDP over IPv4/IPv6, the IP address pair for other IP traffic
    /// (fragments included), the MAC pair for non-IP frames; VLAN-tagged frames are
    /// classified by their inner headers. The first packet of a conversation is
    /// LAN→WAN; later packets in its direction go to the LAN port, replies to the WAN port.
    Flow,
    /// `port:N`: every packet arrives on port N.
    Port(u16),
    /// `subnet:A.B.C.D/P`: an IPv4 source inside the subnet arrives on the LAN port,
    /// any other IPv4 source on the WAN port; non-IPv4 frames on the LAN port.
    Subnet { net: u32, prefix: u8 },
}

/// One-paragraph help for `--device-map`, for the CLI.
pub const DEVICE_MAP_HELP: &str = "How captured packets get their input port. \
`auto` (default): the pcapng interface id when there is one, else `flow`. \
`interface`: the pcapng interface id is the port (classic pcap records are refused). \
`flow`: the side that opened a conversation (TCP/UDP 5-tuple, else IP address pair, else MAC pair; \
VLAN tags looked through) arrives on the LAN port, replies on the WAN port. \
`port:N`: everything on port N. \
`subnet:A.B.C.D/P`: IPv4 sources inside the subnet on the LAN port, other IPv4 sources on the WAN port, non-IPv4 on the LAN port.";

impl fmt::Display for DeviceMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMap::Auto => f.write_str("auto"),
            DeviceMap::Interface => f.write_str("interface"),
            DeviceMap::Flow => f.write_str("flow"),
            DeviceMap::Port(p) => write!(f, "port:{p}"),
            DeviceMap::Subnet { net, prefix } => {
                write!(f, "subnet:{}/{prefix}", Ipv4Addr::from(*net))
            }
        }
    }
}

/// A `--device-map` value that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid device map `{input}`: {reason}; expected `auto`, `interface`, `flow`, `port:N` or `subnet:A.B.C.D/P`")]
pub struct DeviceMapParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for DeviceMap {
    type Err = DeviceMapParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| DeviceMapParseError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        match s {
            "auto" => return Ok(DeviceMap::Auto),
            "interface" => return Ok(DeviceMap::Interface),
            "flow" => return Ok(DeviceMap::Flow),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("port:") {
            return n
                .parse::<u16>()
                .map(DeviceMap::Port)
                .map_err(|_| err("the port must be a number from 0 to 65535"));
        }
        if let Some(rest) = s.strip_prefix("subnet:") {
            let (addr, prefix) = rest
                .split_once('/')
                .ok_or_else(|| err("the subnet needs a prefix length, as in 10.0.0.0/8"))?;
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| err("the subnet address must be an IPv4 address A.B.C.D"))?;
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| err("the prefix length must be a number from 0 to 32"))?;
            return Ok(DeviceMap::Subnet {
                net: u32::from(addr),
                prefix,
            });
        }
        Err(err("unknown form"))
    }
}

/// One end of a conversation, as [`DeviceMap::Flow`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Endpoint {
    Mac([u8; 6]),
    Ip(IpAddr),
    Sock(IpAddr, u16),
}

/// An unordered conversation: the protocol (6/17 for TCP/UDP, else 0) and both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Conversation {
    proto: u8,
    lo: Endpoint,
    hi: Endpoint,
}

fn mac_at(data: &[u8], off: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = data.get(off + i).copied().unwrap_or(0);
    }
    m
}

/// The IP source and destination of a frame, VLAN tags looked through.
fn ip_pair(p: &LaxSlicedPacket) -> Option<(IpAddr, IpAddr)> {
    match &p.net {
        Some(LaxNetSlice::Ipv4(s)) => {
            let h = s.header();
            Some((h.source_addr().into(), h.destination_addr().into()))
        }
        Some(LaxNetSlice::Ipv6(s)) => {
            let h = s.header();
            Some((h.source_addr().into(), h.destination_addr().into()))
        }
        None => None,
    }
}

/// `(protocol, source, destination)` of a frame, for [`DeviceMap::Flow`].
fn endpoints(data: &[u8]) -> (u8, Endpoint, Endpoint) {
    if let Ok(p) = LaxSlicedPacket::from_ethernet(data) {
        if let Some((s, d)) = ip_pair(&p) {
            return match &p.transport {
                Some(TransportSlice::Tcp(t)) => (
                    6,
                    Endpoint::Sock(s, t.source_port()),
                    Endpoint::Sock(d, t.destination_port()),
                ),
                Some(TransportSlice::Udp(u)) => (
                    17,
                    Endpoint::Sock(s, u.source_port()),
                    Endpoint::Sock(d, u.destination_port()),
                ),
                _ => (0, Endpoint::Ip(s), Endpoint::Ip(d)),
            };
        }
    }
    (
        0,
        Endpoint::Mac(mac_at(data, 6)),
        Endpoint::Mac(mac_at(data, 0)),
    )
}

/// Applies a [`DeviceMap`] to a stream of records, remembering conversations for `flow`.
#[derive(Clone, Debug)]
pub struct PortAssigner {
    map: DeviceMap,
    lan_port: u16,
    wan_port: u16,
    /// For each conversation, the endpoint that opened it (the LAN side).
    opened_by: HashMap<Conversation, Endpoint>,
}

impl PortAssigner {
    pub fn new(map: DeviceMap, lan_port: u16, wan_port: u16) -> Self {
        PortAssigner {
            map,
            lan_port,
            wan_port,
            opened_by: HashMap::new(),
        }
    }

    pub fn map(&self) -> DeviceMap {
        self.map
    }

    /// The input port of `rec`; `Err(reason)` means the record is refused.
    pub fn assign(&mut self, rec: &CaptureRecord) -> Result<u16, String> {
        match self.map {
            DeviceMap::Auto => match rec.interface {
                Some(id) => interface_port(id),
                None => Ok(self.flow(&rec.data)),
            },
            DeviceMap::Interface => match rec.interface {
                Some(id) => interface_port(id),
                None => Err("the record has no pcapng interface id (classic pcap); use --device-map flow, port:N or subnet:A.B.C.D/P".into()),
            },
            DeviceMap::Flow => Ok(self.flow(&rec.data)),
            DeviceMap::Port(p) => Ok(p),
            DeviceMap::Subnet { net, prefix } => {
                let mask = u32::MAX.checked_shl(32u32.saturating_sub(u32::from(prefix))).unwrap_or(0);
                let src = LaxSlicedPacket::from_ethernet(&rec.data)
                    .ok()
                    .and_then(|p| ip_pair(&p));
                Ok(match src {
                    Some((IpAddr::V4(s), _)) if u32::from(s) & mask != net & mask => {
                        self.wan_port
                    }
                    _ => self.lan_port,
                })
            }
        }
    }

    fn flow(&mut self, data: &[u8]) -> u16 {
        let (proto, src, dst) = endpoints(data);
        let conv = Conversation {
            proto,
            lo: src.min(dst),
            hi: src.max(dst),
        };
        let opener = *self.opened_by.entry(conv).or_insert(src);
        if opener == src {
            self.lan_port
        } else {
            self.wan_port
        }
    }
}

fn interface_port(id: u32) -> Result<u16, String> {
    u16::try_from(id).map_err(|_| format!("pcapng interface id {id} is not a valid port number"))
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

mod writer;
pub use writer::CaptureWriter;
