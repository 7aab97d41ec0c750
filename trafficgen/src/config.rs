//! What a trace looks like: [`TraceConfig`] (packet-level knobs) holding a [`FlowSpec`]
//! (flow-level knobs), the [`Cidr`] prefixes addresses are drawn from, and the
//! validation errors ([`TraceError`]).
//!
//! Every field has a default and the structs deserialize with `#[serde(default)]`, so a
//! config file only names what it changes and old files keep working when later issues
//! (flow skew, churn) add fields. Unknown fields are rejected to catch typos.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Smallest accepted [`TraceConfig::frame_size`]: the Ethernet minimum, FCS included.
pub const MIN_FRAME_SIZE: u16 = 64;
/// Largest accepted [`TraceConfig::frame_size`]: the untagged Ethernet maximum, FCS included.
pub const MAX_FRAME_SIZE: u16 = 1518;
/// Length of the Ethernet frame check sequence, counted by `frame_size` but never generated
/// (NFs and captures see frames without it, as [`maestro_runtime::InputPacket`] says).
pub const FCS_LEN: u16 = 4;
/// Most flows a trace may have. The flow table costs about 20 bytes per flow while
/// generating (plus a transient ~40 bytes per flow for the uniqueness check when it is
/// built), so this keeps a typo from asking for tens of gigabytes.
pub const MAX_FLOWS: u32 = 1 << 24;

/// An IPv4 prefix such as `10.0.0.0/8`, parsed from and serialized as `"a.b.c.d/p"`.
///
/// Host bits must be zero (`10.1.0.0/8` is refused rather than silently widened), so a
/// prefix always means what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: u32,
    len: u8,
}

impl Cidr {
    /// The prefix `network/len`; fails if `len > 32` or `network` has host bits set.
    pub fn new(network: Ipv4Addr, len: u8) -> Result<Self, TraceError> {
        let text = format!("{network}/{len}");
        if len > 32 {
            return Err(TraceError::BadCidr {
                text,
                reason: "the prefix length must be 0..=32".into(),
            });
        }
        let cidr = Cidr {
            network: u32::from(network) & mask(len),
            len,
        };
        if cidr.network != u32::from(network) {
            return Err(TraceError::BadCidr {
                text,
                reason: format!("host bits are set; did you mean {cidr}?"),
            });
        }
        Ok(cidr)
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The prefix length, 0..=32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == self.network
    }

    /// Mask of the host bits (all ones for `/0`, zero for `/32`).
    pub(crate) fn host_mask(&self) -> u32 {
        !mask(self.len)
    }

    pub(crate) fn network_u32(&self) -> u32 {
        self.network
    }

    /// Whether `addr` (inside this prefix) is one the generator may use: see
    /// [`is_usable_unicast`] for the global rules; in addition the prefix's own network and
    /// broadcast addresses are avoided when the prefix has more than two addresses (a /31
    /// or /32 has no such addresses, RFC 3021).
    pub(crate) fn usable(&self, addr: u32) -> bool {
        if !usable_u32(addr) {
            return false;
        }
        self.len >= 31 || (addr != self.network && addr != self.network | self.host_mask())
    }

    /// Whether some address of the prefix is [usable](Self::usable). Every excluded block
    /// is itself a prefix, so a prefix is either inside one (nothing usable) or at least
    /// half usable; the generator's rejection sampling therefore needs under two draws on
    /// average.
    pub(crate) fn has_usable(&self) -> bool {
        !EXCLUDED
            .iter()
            .any(|&(net, len)| self.len >= len && self.network & mask(len) == net)
    }
}

/// Address blocks never generated: "this network" 0.0.0.0/8, loopback 127.0.0.0/8, and
/// 224.0.0.0/3 (multicast, the reserved class E and the limited broadcast address).
/// Real NFs and hosts drop or special-case such addresses, which would make the trace
/// measure something other than flow handling.
const EXCLUDED: [(u32, u8); 3] = [(0x0000_0000, 8), (0x7f00_0000, 8), (0xe000_0000, 3)];

/// Whether `addr` is outside every [excluded](EXCLUDED) block.
pub fn is_usable_unicast(addr: Ipv4Addr) -> bool {
    usable_u32(u32::from(addr))
}

fn usable_u32(a: u32) -> bool {
    !EXCLUDED.iter().any(|&(net, len)| a & mask(len) == net)
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

impl FromStr for Cidr {
    type Err = TraceError;

    /// Parses `"a.b.c.d/p"` (the `/p` is required).
    fn from_str(s: &str) -> Result<Self, TraceError> {
        let bad = |reason: &str| TraceError::BadCidr {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, len) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("missing \"/prefix-length\""))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("the address is not a dotted-quad IPv4 address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| bad("the prefix length must be a number 0..=32"))?;
        Cidr::new(addr, len).map_err(|e| match e {
            TraceError::BadCidr { reason, .. } => bad(&reason),
            other => other,
        })
    }
}

impl TryFrom<String> for Cidr {
    type Error = TraceError;
    fn try_from(s: String) -> Result<Self, TraceError> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// The flows of a trace: how many, which protocols, which addresses.
///
/// Each flow is a distinct 5-tuple (also distinct from every other flow's reverse), with
/// source port in 1024..=65535 and destination port in 1..=65535, source address drawn
/// uniformly from the usable addresses of `src_prefix` and destination from `dst_prefix`
/// (never equal to the source).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowSpec {
    /// Number of flows, 1..=[`MAX_FLOWS`]. Default 40,000.
    pub count: u32,
    /// Share of the flows that are UDP (the rest are TCP), 0.0..=1.0. Exactly
    /// `round(count * udp_share)` flows are UDP, spread at random; with uniform flow
    /// choice this is also the expected share of packets. Default 1.0.
    pub udp_share: f64,
    /// Where LAN-side (source) addresses come from. Default `10.0.0.0/8`.
    pub src_prefix: Cidr,
    /// Where WAN-side (destination) addresses come from. Default `0.0.0.0/0`; excluded
    /// blocks (see [`is_usable_unicast`]) are skipped.
    pub dst_prefix: Cidr,
}

impl Default for FlowSpec {
    fn default() -> Self {
        FlowSpec {
            count: 40_000,
            udp_share: 1.0,
            src_prefix: Cidr {
                network: 0x0a00_0000,
                len: 8,
            },
            dst_prefix: Cidr { network: 0, len: 0 },
        }
    }
}

/// A whole synthetic trace. Same config (and crate version) → byte-identical trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// The flows packets are drawn from.
    pub flows: FlowSpec,
    /// Seed of the ChaCha8 generator. The flow table and the packet sequence use separate
    /// streams of it, so packet-level knobs (`reply_ratio`, `packets`, ...) never change
    /// which flows exist. Default 0.
    pub seed: u64,
    /// Number of packets. Default 1,000,000.
    pub packets: u64,
    /// Frame size in bytes *including* the 4-byte FCS, as networking usually counts
    /// ("64-byte packets"), 64..=1518. Generated frames omit the FCS, so they are
    /// `frame_size - 4` bytes long: 60 for the default 64. The IPv4 total length covers the
    /// whole rest of the frame (no Ethernet padding); the L4 payload is zeros.
    pub frame_size: u16,
    /// Packets per second, at least 1. Packet `i` has timestamp
    /// `start_ns + floor(i * 1e9 / rate_pps)`, computed exactly (no drift). Default 1,000,000.
    pub rate_pps: u64,
    /// Timestamp of the first packet, in nanoseconds. Default 0.
    pub start_ns: u64,
    /// Probability, 0.0..=1.0, that a packet of a flow that has already been seen is a
    /// reply: the reversed 5-tuple, arriving on `wan_port`. A flow's first packet is never
    /// a reply. Default 0.0.
    pub reply_ratio: f64,
    /// Port of the LAN side (where flows start). Default 0.
    pub lan_port: u16,
    /// Port of the WAN side (where replies arrive). Must differ from `lan_port`. Default 1.
    pub wan_port: u16,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            flows: FlowSpec::default(),
            seed: 0,
            packets: 1_000_000,
            frame_size: 64,
            rate_pps: 1_000_000,
            start_ns: 0,
            reply_ratio: 0.0,
            lan_port: 0,
            wan_port: 1,
        }
    }
}

impl TraceConfig {
    /// Length of every generated frame: `frame_size` minus the FCS.
    pub fn frame_len(&self) -> usize {
        usize::from(self.frame_size.saturating_sub(FCS_LEN))
    }

    /// Timestamp of packet `i`, `start_ns + floor(i * 1e9 / rate_pps)`, or `None` if it
    /// does not fit a `u64` (or the rate is zero).
    pub fn time_of(&self, i: u64) -> Option<u64> {
        if self.rate_pps == 0 {
            return None;
        }
        let offset = u128::from(i) * 1_000_000_000 / u128::from(self.rate_pps);
        u64::try_from(u128::from(self.start_ns) + offset).ok()
    }

    /// Checks every field; [`TraceGen::new`](crate::TraceGen::new) calls this first.
    pub fn validate(&self) -> Result<(), TraceError> {
        let f = &self.flows;
        if f.count == 0 {
            return Err(TraceError::ZeroFlows);
        }
        if f.count > MAX_FLOWS {
            return Err(TraceError::TooManyFlows {
                count: f.count,
                max: MAX_FLOWS,
            });
        }
        if !(0.0..=1.0).contains(&f.udp_share) {
            return Err(TraceError::Ratio {
                what: "flows.udp_share",
                value: f.udp_share,
            });
        }
        if !(0.0..=1.0).contains(&self.reply_ratio) {
            return Err(TraceError::Ratio {
                what: "reply_ratio",
                value: self.reply_ratio,
            });
        }
        for (what, p) in [
            ("flows.src_prefix", f.src_prefix),
            ("flows.dst_prefix", f.dst_prefix),
        ] {
            if !p.has_usable() {
                return Err(TraceError::NoUsableAddress { what, prefix: p });
            }
        }
        // Both sides a single, identical address: every flow would talk to itself.
        if f.src_prefix == f.dst_prefix && f.src_prefix.len == 32 {
            return Err(TraceError::SameSingleAddress {
                prefix: f.src_prefix,
            });
        }
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&self.frame_size) {
            return Err(TraceError::FrameSize {
                size: self.frame_size,
            });
        }
        if self.rate_pps == 0 {
            return Err(TraceError::ZeroRate);
        }
        if self.lan_port == self.wan_port {
            return Err(TraceError::SamePorts {
                port: self.lan_port,
            });
        }
        if self.packets > 0 && self.time_of(self.packets - 1).is_none() {
            return Err(TraceError::TimeOverflow {
                packets: self.packets,
                rate_pps: self.rate_pps,
                start_ns: self.start_ns,
            });
        }
        Ok(())
    }
}

/// Why a trace cannot be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error("flows.count is 0: a trace needs at least one flow")]
    ZeroFlows,
    #[error("flows.count is {count}, above the maximum of {max}")]
    TooManyFlows { count: u32, max: u32 },
    #[error(
        "frame_size {size} is outside {MIN_FRAME_SIZE}..={MAX_FRAME_SIZE} (the size counts \
         the 4-byte FCS, so 64 gives 60-byte frames)"
    )]
    FrameSize { size: u16 },
    #[error("{what} is {value}, but it must be a probability within 0.0..=1.0")]
    Ratio { what: &'static str, value: f64 },
    #[error(
        "invalid IPv4 prefix {text:?}: {reason} (expected \"a.b.c.d/p\", e.g. \"10.0.0.0/8\")"
    )]
    BadCidr { text: String, reason: String },
    #[error(
        "{what} {prefix} has no usable address: 0.0.0.0/8, 127.0.0.0/8 and 224.0.0.0/3 \
         (multicast, reserved, broadcast) are never generated"
    )]
    NoUsableAddress { what: &'static str, prefix: Cidr },
    #[error(
        "flows.src_prefix and flows.dst_prefix are both the single address {prefix}: \
         a flow's source and destination must differ"
    )]
    SameSingleAddress { prefix: Cidr },
    #[error("rate_pps is 0: the rate must be at least 1 packet per second")]
    ZeroRate,
    #[error("lan_port and wan_port are both {port}: replies must arrive on another port")]
    SamePorts { port: u16 },
    #[error(
        "{packets} packets at {rate_pps} packets/s from {start_ns} ns run past the largest \
         u64 timestamp: lower packets or start_ns, or raise rate_pps"
    )]
    TimeOverflow {
        packets: u64,
        rate_pps: u64,
        start_ns: u64,
    },
    #[error(
        "port {port} cannot be written to a capture: the writer numbers ports 0..65535, \
         so ports must be below 65535"
    )]
    PortTooLarge { port: u16 },
    /// Internal: etherparse refused to build the frame template (a bug, not a config
    /// problem: validation admits only buildable sizes).
    #[error("internal error building the frame template: {0}")]
    Template(String),
    #[error(transparent)]
    Capture(#[from] maestro_runtime::capture::CaptureError),
}
