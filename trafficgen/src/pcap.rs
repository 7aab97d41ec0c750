//! Writing a trace to a pcap/pcapng file through the runtime's [`CaptureWriter`].

use std::path::Path;

use maestro_runtime::capture::{CaptureFormat, CaptureWriter};

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
        let mut buf = Vec::with_capacity(self.config().frame_len());
        let mut n = 0;
        while let Some((port, time_ns)) = self.next_into(&mut buf) {
            writer.write(port, time_ns, &buf)?;
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
    let ports = config.port_count()?;
    let mut writer = CaptureWriter::create(path, format, ports)?;
    let n = gen.write_capture(&mut writer)?;
    writer.finish()?;
    Ok(n)
}
