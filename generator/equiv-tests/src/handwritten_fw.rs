//! The firewall of `nfs/fw/fw.nf`, written by hand on the runtime's `ExpiringTable`, as
//! a Rust programmer would write it without the generator: the baseline that tells what
//! generated code costs (`benches/fw_seq.rs`). `tests/handwritten.rs`
//! checks it against the interpreter.

use maestro_runtime::packet::{PacketView, ParseMode};
use maestro_runtime::state::{ExpiringTable, StateError};
use maestro_runtime::{InputPacket, Observation};

/// A flow as seen from the LAN (replies look it up with the 5-tuple reversed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Flow {
    src_ip: u32,
    dst_ip: u32,
    src_port: u16,
    dst_port: u16,
    proto: u8,
}

/// fw's defaults (its `config` lines).
pub const LAN: u16 = 0;
pub const WAN: u16 = 1;
const PORTS: u16 = 2;
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const LAN_PEER: [u8; 6] = [0x01, 0x23, 0x45, 0x67, 0x89, 0x00];
const WAN_PEER: [u8; 6] = [0x01, 0x23, 0x45, 0x67, 0x89, 0x01];

pub struct Firewall {
    /// Open flows and the LAN port each came from.
    flows: ExpiringTable<Flow, u16>,
    faults: u64,
}

impl Firewall {
    /// fw with `capacity` flows that expire after `ttl_ns` (fw's defaults: 65536, 100 s).
    pub fn new(capacity: u32, ttl_ns: u64) -> Result<Firewall, StateError> {
        Ok(Firewall {
            flows: ExpiringTable::new(capacity, ttl_ns)?,
            faults: 0,
        })
    }

    /// Forwards to a missing port count as faults, as in the interpreter.
    pub fn fault_count(&self) -> u64 {
        self.faults
    }

    pub fn process(&mut self, packet: &InputPacket) -> Observation {
        let now = packet.time_ns;
        self.flows.expire(now);
        let view = PacketView::new(&packet.data, ParseMode::Strict);
        let (Some(ip), Some((sport, dport))) = (view.ipv4(), view.l4_ports()) else {
            return Observation::Drop;
        };
        let flow = Flow {
            src_ip: ip.src_u32(),
            dst_ip: ip.dst_u32(),
            src_port: sport,
            dst_port: dport,
            proto: ip.proto(),
        };
        if packet.port == WAN {
            let reply = Flow {
                src_ip: flow.dst_ip,
                dst_ip: flow.src_ip,
                src_port: flow.dst_port,
                dst_port: flow.src_port,
                proto: flow.proto,
            };
            let Some(i) = self.flows.get(&reply) else {
                return Observation::Drop; // unsolicited
            };
            self.flows.refresh(i, now);
            let out = self.flows.value(i).copied().unwrap_or(LAN);
            return self.forward(packet, out, LAN_MAC, LAN_PEER);
        }
        match self.flows.get(&flow) {
            Some(i) => {
                self.flows.refresh(i, now);
            }
            None => {
                // A full table still forwards; the replies will be dropped.
                self.flows.add(flow, packet.port, now);
            }
        }
        self.forward(packet, WAN, WAN_MAC, WAN_PEER)
    }

    /// Sends the frame out of `port` with new MAC addresses (no checksum covers them).
    fn forward(
        &mut self,
        packet: &InputPacket,
        port: u16,
        src: [u8; 6],
        dst: [u8; 6],
    ) -> Observation {
        if port == packet.port {
            return Observation::Drop;
        }
        if port >= PORTS {
            self.faults += 1;
            return Observation::Drop;
        }
        let mut bytes = packet.data.clone();
        bytes[0..6].copy_from_slice(&dst);
        bytes[6..12].copy_from_slice(&src);
        Observation::Forward { port, bytes }
    }
}
