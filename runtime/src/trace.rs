//! What goes into an NF and what comes out of it.
//!
//! Definitions follow `shared/spec/equivalence.md`: every input packet yields exactly one
//! observation, so a trace of `n` packets always produces `n` observations.

use serde::{Deserialize, Serialize};

/// One packet as the NF receives it: the port it arrived on, its timestamp (the NF's
/// `now`, in nanoseconds) and the frame bytes, Ethernet header first, FCS excluded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputPacket {
    pub port: u16,
    pub time_ns: u64,
    pub data: Vec<u8>,
}

/// What the NF did with one input packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Observation {
    /// The packet was dropped (explicitly, or by forwarding it to its own input port).
    Drop,
    /// The packet left on `port` with these bytes.
    Forward { port: u16, bytes: Vec<u8> },
    /// The packet was copied to every port except its input port.
    Flood { bytes: Vec<u8> },
}

impl Observation {
    /// The bytes that leave the NF, if any.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Observation::Drop => None,
            Observation::Forward { bytes, .. } | Observation::Flood { bytes } => Some(bytes),
        }
    }
}
