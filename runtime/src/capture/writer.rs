//! Streaming capture writer.
//!
//! File headers (pcap global header; pcapng section header and one interface block per
//! port) are produced by `pcap-file`. Packet records are laid out here, into one output
//! buffer flushed in 1 MiB writes: `pcap-file` encodes every block twice (once to learn
//! its length), which halves the speed of long traces, and callers that build frames
//! (the traffic generator) can append a frame straight into the buffer with
//! [`CaptureWriter::append_with`], saving a copy per packet.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use pcap_file::pcap::{PcapHeader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::{CaptureError, CaptureFormat, MAX_CAPLEN};
use crate::trace::InputPacket;

/// The output buffer is handed to the sink once it holds this much.
const FLUSH_AT: usize = 1 << 20;
/// Record header sizes: pcap record header; pcapng Enhanced Packet Block up to its data.
const PCAP_RECORD_HEADER: usize = 16;
const EPB_HEADER: usize = 28;
/// pcapng block type of an Enhanced Packet Block.
const EPB_TYPE: u32 = 6;

/// Where a writer's bytes go.
enum Sink {
    File(File),
    Mem(Vec<u8>),
    Other(Box<dyn Write + Send>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(bytes),
            Sink::Mem(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Sink::Other(w) => w.write_all(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Mem(_) => Ok(()),
            Sink::Other(w) => w.flush(),
        }
    }
}

/// A streaming capture writer. Classic pcap: nanosecond magic, Ethernet link type,
/// little-endian, no ports (they are not representable). pcapng: one interface per port,
/// named `port0`, `port1`… with nanosecond `if_tsresol`, and each packet on its port's
/// interface, so reading it back with `--device-map auto` restores the ports.
pub struct CaptureWriter {
    path: PathBuf,
    ports: u16,
    format: CaptureFormat,
    buf: Vec<u8>,
    sink: Sink,
}

impl fmt::Debug for CaptureWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("path", &self.path)
            .field("ports", &self.ports)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl CaptureWriter {
    /// Creates (truncates) `path`; pcapng gets one interface per port, nanosecond resolution.
    pub fn create(path: &Path, format: CaptureFormat, ports: u16) -> Result<Self, CaptureError> {
        let file = File::create(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::build(path.to_path_buf(), format, ports, Sink::File(file))
    }

    /// An in-memory writer, for tests; [`finish`](Self::finish) returns the bytes.
    pub fn to_vec(format: CaptureFormat, ports: u16) -> Self {
        let path = PathBuf::from("<memory>");
        Self::build(path, format, ports, Sink::Mem(Vec::new()))
            .expect("file headers encode into memory")
    }

    /// A writer into any byte sink (a pipe, a socket, `io::sink()`); `name` stands for it
    /// in error messages. The writer does its own buffering.
    pub fn from_writer(
        name: &str,
        out: Box<dyn Write + Send>,
        format: CaptureFormat,
        ports: u16,
    ) -> Result<Self, CaptureError> {
        Self::build(PathBuf::from(name), format, ports, Sink::Other(out))
    }

    fn build(
        path: PathBuf,
        format: CaptureFormat,
        ports: u16,
        sink: Sink,
    ) -> Result<Self, CaptureError> {
        let header = file_header(format, ports).map_err(|e| CaptureError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut buf = Vec::with_capacity(FLUSH_AT + 64 * 1024);
        buf.extend_from_slice(&header);
        Ok(CaptureWriter {
            path,
            ports,
            format,
            buf,
            sink,
        })
    }

    pub fn ports(&self) -> u16 {
        self.ports
    }

    /// Appends one packet seen on `port` at `time_ns`.
    pub fn write(&mut self, port: u16, time_ns: u64, data: &[u8]) -> Result<(), CaptureError> {
        self.append_with(|buf| {
            buf.extend_from_slice(data);
            Some((port, time_ns))
        })
        .map(|_| ())
    }

    /// Appends an NF input packet.
    pub fn write_input(&mut self, p: &InputPacket) -> Result<(), CaptureError> {
        self.write(p.port, p.time_ns, &p.data)
    }

    /// Appends one record whose frame `fill` writes straight into the output buffer: it
    /// appends the frame's bytes and returns its port and timestamp, or returns `None`
    /// having appended nothing. Returns whether a record was written. On error nothing
    /// of the record stays in the output.
    pub fn append_with<F>(&mut self, fill: F) -> Result<bool, CaptureError>
    where
        F: FnOnce(&mut Vec<u8>) -> Option<(u16, u64)>,
    {
        let at = self.buf.len();
        let header_len = match self.format {
            CaptureFormat::Pcap => PCAP_RECORD_HEADER,
            CaptureFormat::PcapNg => EPB_HEADER,
        };
        self.buf.resize(at + header_len, 0);
        let Some((port, time_ns)) = fill(&mut self.buf) else {
            self.buf.truncate(at);
            return Ok(false);
        };
        let len = self.buf.len() - at - header_len;
        if let Err(e) = self.check_record(port, time_ns, len) {
            self.buf.truncate(at);
            return Err(e);
        }
        let len32 = len as u32; // checked against MAX_CAPLEN above
        match self.format {
            CaptureFormat::Pcap => {
                let h = &mut self.buf[at..at + PCAP_RECORD_HEADER];
                h[0..4].copy_from_slice(&((time_ns / 1_000_000_000) as u32).to_le_bytes());
                h[4..8].copy_from_slice(&((time_ns % 1_000_000_000) as u32).to_le_bytes());
                h[8..12].copy_from_slice(&len32.to_le_bytes());
                h[12..16].copy_from_slice(&len32.to_le_bytes());
            }
            CaptureFormat::PcapNg => {
                let pad = (4 - len % 4) % 4;
                self.buf.extend_from_slice(&[0u8; 3][..pad]);
                let block_len = (EPB_HEADER + len + pad + 4) as u32;
                self.buf.extend_from_slice(&block_len.to_le_bytes());
                let h = &mut self.buf[at..at + EPB_HEADER];
                h[0..4].copy_from_slice(&EPB_TYPE.to_le_bytes());
                h[4..8].copy_from_slice(&block_len.to_le_bytes());
                h[8..12].copy_from_slice(&u32::from(port).to_le_bytes());
                h[12..16].copy_from_slice(&((time_ns >> 32) as u32).to_le_bytes());
                h[16..20].copy_from_slice(&(time_ns as u32).to_le_bytes());
                h[20..24].copy_from_slice(&len32.to_le_bytes());
                h[24..28].copy_from_slice(&len32.to_le_bytes());
            }
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush_buffer()?;
        }
        Ok(true)
    }

    fn check_record(&self, port: u16, time_ns: u64, len: usize) -> Result<(), CaptureError> {
        if port >= self.ports {
            return Err(CaptureError::PortOutOfRange {
                path: self.path.clone(),
                port,
                ports: self.ports,
            });
        }
        if len > MAX_CAPLEN as usize {
            return Err(CaptureError::Write {
                path: self.path.clone(),
                reason: format!(
                    "a {len}-byte packet is longer than the {MAX_CAPLEN}-byte snap length"
                ),
            });
        }
        if self.format == CaptureFormat::Pcap && time_ns / 1_000_000_000 > u64::from(u32::MAX) {
            return Err(CaptureError::Write {
                path: self.path.clone(),
                reason: format!(
                    "timestamp {time_ns} ns does not fit a classic pcap (seconds past 2106); \
                     write pcapng instead"
                ),
            });
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<(), CaptureError> {
        let result = self.sink.write_all(&self.buf);
        self.buf.clear();
        result.map_err(|source| CaptureError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes out what is buffered and flushes the sink; returns the bytes of a
    /// [`to_vec`](Self::to_vec) writer.
    pub fn finish(mut self) -> Result<Option<Vec<u8>>, CaptureError> {
        self.flush_buffer()?;
        self.sink.flush().map_err(|source| CaptureError::Io {
            path: self.path.clone(),
            source,
        })?;
        match self.sink {
            Sink::Mem(v) => Ok(Some(v)),
            Sink::File(_) | Sink::Other(_) => Ok(None),
        }
    }
}

/// The bytes a capture of `format` starts with, before any packet.
fn file_header(format: CaptureFormat, ports: u16) -> Result<Vec<u8>, pcap_file::PcapError> {
    match format {
        CaptureFormat::Pcap => {
            let header = PcapHeader {
                version_major: 2,
                version_minor: 4,
                ts_correction: 0,
                ts_accuracy: 0,
                snaplen: MAX_CAPLEN,
                datalink: DataLink::ETHERNET,
                ts_resolution: TsResolution::NanoSecond,
                endianness: Endianness::Little,
            };
            Ok(PcapWriter::with_header(Vec::new(), header)?.into_writer())
        }
        CaptureFormat::PcapNg => {
            let section = SectionHeaderBlock {
                endianness: Endianness::Little,
                ..Default::default()
            };
            let mut w = PcapNgWriter::with_section_header(Vec::new(), section)?;
            for port in 0..ports {
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen: MAX_CAPLEN,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(format!("port{port}"))),
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                w.write_pcapng_block(idb)?;
            }
            Ok(w.into_inner())
        }
    }
}
