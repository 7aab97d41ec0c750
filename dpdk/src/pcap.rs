//! Captures through DPDK's `net_pcap` virtual devices, for runs without a NIC.
//!
//! A pcap vdev has no RSS: each `rx_pcap=` file is one receive queue. So the NIC's
//! steering is done ahead of time: [`write_queue_captures`] writes each port's packets
//! into one capture per queue exactly as maestro's [`NicModel`] steers them, and
//! [`QueueCaptures::vdev_args`] gives the `--vdev` arguments that load them (one
//! `tx_pcap=` per transmit queue collects what each core sends).

use std::path::{Path, PathBuf};

use maestro_runtime::capture::{
    CaptureFormat, CaptureItem, CaptureReader, CaptureWriter, DeviceMap, PortAssigner,
};
use maestro_runtime::exec::NicModel;
use maestro_runtime::InputPacket;

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::port::port_info;

fn capture_error(path: &Path, e: impl std::fmt::Display) -> DpdkError {
    DpdkError::Capture {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The NF inputs of a capture, admitted as the generated binaries' `run` admits them:
/// ports from `map` (packets for ports `>= ports` and unreadable records refused and
/// counted), times made monotone (an earlier record runs at its predecessor's time).
pub fn read_inputs(
    path: &Path,
    map: DeviceMap,
    lan: u16,
    wan: u16,
    ports: u16,
) -> Result<(Vec<InputPacket>, u64), DpdkError> {
    let mut reader = CaptureReader::open(path).map_err(|e| capture_error(path, e))?;
    let mut assigner = PortAssigner::new(map, lan, wan);
    let (mut packets, mut refused, mut clock) = (Vec::new(), 0u64, 0u64);
    while let Some(item) = reader.next_item() {
        let CaptureItem::Packet(record) = item else {
            refused += 1;
            continue;
        };
        match assigner.assign(&record) {
            Ok(port) if port < ports => {
                clock = clock.max(record.time_ns);
                packets.push(InputPacket {
                    port,
                    time_ns: clock,
                    data: record.data,
                });
            }
            _ => refused += 1,
        }
    }
    Ok((packets, refused))
}

/// One capture per (port, queue) to replay, and where each queue's output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueCaptures {
    /// `rx[port][queue]`: the packets the NIC would put on that queue, in input order.
    pub rx: Vec<Vec<PathBuf>>,
    /// `tx[port][queue]`: what core `queue` sends out of `port` (written by DPDK).
    pub tx: Vec<Vec<PathBuf>>,
    /// `counts[port][queue]`: packets in each receive capture.
    pub counts: Vec<Vec<u64>>,
}

/// Writes `packets` into `dir/rx-p<port>-q<queue>.pcap`, queue = the core the NIC model
/// steers each packet to (so use a model with one core for `seq`), keeping their times.
pub fn write_queue_captures(
    packets: &[InputPacket],
    nic: &NicModel,
    ports: u16,
    dir: &Path,
) -> Result<QueueCaptures, DpdkError> {
    let queues = nic.cores();
    let path = |kind: &str, p: u16, q: usize| dir.join(format!("{kind}-p{p}-q{q}.pcap"));
    let mut writers = Vec::new();
    let mut rx = Vec::new();
    let mut tx = Vec::new();
    for p in 0..ports {
        let mut row = Vec::new();
        let mut paths = Vec::new();
        for q in 0..queues {
            let file = path("rx", p, q);
            row.push(
                CaptureWriter::create(&file, CaptureFormat::Pcap, 1)
                    .map_err(|e| capture_error(&file, e))?,
            );
            paths.push(file);
        }
        writers.push(row);
        rx.push(paths);
        tx.push((0..queues).map(|q| path("tx", p, q)).collect());
    }
    let mut counts = vec![vec![0u64; queues]; usize::from(ports)];
    for (i, packet) in packets.iter().enumerate() {
        let p = usize::from(packet.port);
        if p >= writers.len() {
            return Err(DpdkError::Capture {
                path: dir.display().to_string(),
                reason: format!(
                    "packet {i} is for port {} but the captures have {ports} port(s)",
                    packet.port
                ),
            });
        }
        let q = usize::from(nic.steer(packet.port, &packet.data).core).min(queues - 1);
        writers[p][q]
            .write(0, packet.time_ns, &packet.data)
            .map_err(|e| capture_error(&rx[p][q], e))?;
        counts[p][q] += 1;
    }
    for (row, paths) in writers.into_iter().zip(&rx) {
        for (w, file) in row.into_iter().zip(paths) {
            w.finish().map_err(|e| capture_error(file, e))?;
        }
    }
    Ok(QueueCaptures { rx, tx, counts })
}

impl QueueCaptures {
    /// The vdev name of `port`: `net_pcap<port>`.
    pub fn vdev_name(port: u16) -> String {
        format!("net_pcap{port}")
    }

    /// `--vdev=net_pcap<p>,rx_pcap=..,..,tx_pcap=..,..` for every port. Paths must not
    /// contain commas (devargs separators).
    pub fn vdev_args(&self) -> Result<Vec<String>, DpdkError> {
        let mut args = Vec::new();
        for (p, (rx, tx)) in self.rx.iter().zip(&self.tx).enumerate() {
            let mut arg = format!("--vdev={}", Self::vdev_name(p as u16));
            for (kind, files) in [("rx_pcap", rx), ("tx_pcap", tx)] {
                for f in files {
                    let s = f.display().to_string();
                    if s.contains(',') {
                        return Err(DpdkError::Capture {
                            path: s,
                            reason: "a pcap vdev path cannot contain a comma; use another folder"
                                .into(),
                        });
                    }
                    arg.push_str(&format!(",{kind}={s}"));
                }
            }
            args.push(arg);
        }
        Ok(args)
    }
}

/// The DPDK port of the device called `name` (`net_pcap0`).
pub fn port_by_name(eal: &Eal, name: &str) -> Option<u16> {
    (0..eal.port_count()).find(|&p| port_info(eal, p).is_ok_and(|i| i.name == name))
}

/// Every frame of a capture, in order.
pub fn read_frames(path: &Path) -> Result<Vec<Vec<u8>>, DpdkError> {
    let reader = CaptureReader::open(path).map_err(|e| capture_error(path, e))?;
    let mut frames = Vec::new();
    for item in reader {
        match item {
            CaptureItem::Packet(r) => frames.push(r.data),
            CaptureItem::Refused(r) => {
                return Err(capture_error(
                    path,
                    format!("record {} is unreadable: {}", r.index, r.reason),
                ))
            }
        }
    }
    Ok(frames)
}
