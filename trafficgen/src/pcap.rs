//! Writing a trace to a pcap/pcapng file through the runtime's [`CaptureWriter`].
//!
//! The generator writes each frame straight into the writer's output buffer
//! ([`CaptureWriter::append_with`]): no per-packet copy, no per-packet `write` call.

use std::path::Path;

use maestro_runtime::capture::{CaptureError, CaptureFormat, CaptureWriter};

use crate::config::{TraceConfig, TraceError};
use crate::gen::TraceGen;

impl TraceConfig {
    /// Number of ports a capture of this trace needs, `max(lan_port, wan_port) + 1` (the
    /// writer numbers ports `0..ports`; pcapng gets one interface per port).
    pub fn port_count(&self) -> Result<u16, TraceError> {
        let top = self.lan_port.max(self.wan_port);
        top.checked_add(1)
            .ok_or(TraceError::PortTooLarge { port: top })
    }
}

impl TraceGen {
    /// Writes every remaining packet to `writer` (which must have at least
    /// [`TraceConfig::port_count`] ports), reusing one frame buffer. Returns how many
    /// packets were written. Does not call [`CaptureWriter::finish`].
    pub fn write_capture(&mut self, writer: &mut CaptureWriter) -> Result<u64, TraceError> {
        let mut n = 0;
        while writer.append_with(|buf| self.append_next(buf).map(|(port, time, _)| (port, time)))? {
            n += 1;
        }
        Ok(n)
    }
}

/// Generates the trace of `config` into a capture file at `path` (created or truncated)
/// and returns the number of packets written. Streaming: memory does not grow with the
/// trace. In pcapng each port is its own interface, so ports survive; plain pcap has no
/// interfaces, and reading it back needs a device map (`DeviceMap::Flow` recovers the
/// ports, since every flow starts on the LAN side). On error the file may be partial.
pub fn write_pcap(
    config: &TraceConfig,
    path: &Path,
    format: CaptureFormat,
) -> Result<u64, TraceError> {
    let mut gen = TraceGen::new(config.clone())?;
    write_file(&mut gen, path, format)
}

/// [`write_pcap`] for a generator built by the caller (e.g. one
/// [`with_stats`](TraceGen::with_stats)): streams its remaining packets into a capture
/// file at `path`.
pub fn write_file(
    gen: &mut TraceGen,
    path: &Path,
    format: CaptureFormat,
) -> Result<u64, TraceError> {
    let ports = gen.config().port_count()?;
    check_pcap_time(gen.config(), format, path)?;
    let mut writer = CaptureWriter::create(path, format, ports)?;
    let n = gen.write_capture(&mut writer)?;
    writer.finish()?;
    Ok(n)
}

/// Classic pcap stores seconds in 32 bits: refuse up front a trace that runs past 2106.
fn check_pcap_time(
    config: &TraceConfig,
    format: CaptureFormat,
    path: &Path,
) -> Result<(), TraceError> {
    if format == CaptureFormat::Pcap
        && config
            .last_time_bound()
            .is_some_and(|t| t / 1_000_000_000 > u64::from(u32::MAX))
    {
        return Err(CaptureError::Write {
            path: path.to_path_buf(),
            reason: "the trace's timestamps run past 2106, beyond what classic pcap can \
                     store; write pcapng instead"
                .into(),
        }
        .into());
    }
    Ok(())
}
