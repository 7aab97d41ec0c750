//! What a trace looks like: [`TraceConfig`] (packet-level knobs) holding a [`FlowSpec`]
//! (flow-level knobs), the [`Cidr`] prefixes addresses are drawn from, the frame-size
//! distribution ([`SizeMix`]), and the validation errors ([`TraceError`]).
//!
//! Every field has a default and the structs deserialize with `#[serde(default)]`, so a
//! config file only names what it changes and old files keep working when fields are
//! added. Unknown fields are rejected to catch typos.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use maestro_runtime::capture::{CaptureItem, CaptureReader};
use serde::{Deserialize, Serialize};

/// Smallest accepted [`TraceConfig::frame_size`]: the Ethernet minimum, FCS included.
pub const MIN_FRAME_SIZE: u16 = 64;
/// Largest accepted [`TraceConfig::frame_size`]: the untagged Ethernet maximum, FCS included.
pub const MAX_FRAME_SIZE: u16 = 1518;
/// Length of the Ethernet frame check sequence, counted by `frame_size` but never generated
/// (NFs and captures see frames without it, as [`maestro_runtime::InputPacket`] says).
pub const FCS_LEN: u16 = 4;
/// Most flows a trace may have. The flow table costs about 40 bytes per flow while
/// generating (plus 16 with Zipf popularity, 8 with an expiry, 16 with statistics, and
/// ~40 for the uniqueness check: transient, kept only with churn), so this keeps a typo
/// from asking for tens of gigabytes.
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

/// Whether `addr` is outside every excluded block: 0.0.0.0/8, 127.0.0.0/8 and 224.0.0.0/3.
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
///
/// The fields after `wan_port` came with skew, churn, size mixes and bit rates; all have
/// defaults that reproduce the first cut's behaviour (uniform popularity, no churn, fixed
/// `frame_size`, `rate_pps` timestamps, replies without delay), so struct literals ending
/// in `..TraceConfig::default()` keep working.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// The flows packets are drawn from.
    pub flows: FlowSpec,
    /// Seed of the ChaCha8 generator. The flow table, the packet sequence, the popularity
    /// ranks and the churn use separate streams of it, so packet-level knobs
    /// (`reply_ratio`, `packets`, sizes, ...) never change which flows exist. Default 0.
    pub seed: u64,
    /// Number of packets. Default 1,000,000.
    pub packets: u64,
    /// Frame size in bytes *including* the 4-byte FCS, as networking usually counts
    /// ("64-byte packets"), 64..=1518, used when `sizes` is [`SizeMix::Fixed`]. Generated
    /// frames omit the FCS, so they are `frame_size - 4` bytes long: 60 for the default
    /// 64. The IPv4 total length covers the whole rest of the frame (no Ethernet padding);
    /// the L4 payload is zeros.
    pub frame_size: u16,
    /// Packets per second, at least 1. Packet `i` has timestamp
    /// `start_ns + floor(i * 1e9 / rate_pps)`, computed exactly (no drift). Ignored when
    /// `rate_bps` is set. Default 1,000,000.
    pub rate_pps: u64,
    /// Timestamp of the first packet, in nanoseconds. Default 0.
    pub start_ns: u64,
    /// Probability, 0.0..=1.0, that a packet of a flow that has already been seen (and
    /// whose first packet is at least `reply_delay_ns` old) is a reply: the reversed
    /// 5-tuple, arriving on `wan_port`. A flow's first packet is never a reply. Default 0.0.
    pub reply_ratio: f64,
    /// Port of the LAN side (where flows start). Default 0.
    pub lan_port: u16,
    /// Port of the WAN side (where replies arrive). Must differ from `lan_port`. Default 1.
    pub wan_port: u16,
    /// Zipf exponent `s` of flow popularity, 0.0..=2.0: the flow of rank `r` (1-based) is
    /// picked with probability proportional to `r^-s`, sampled exactly (alias method over
    /// all flows). 0 is uniform. Ranks are a random permutation of the flow table, so
    /// popularity is independent of addresses. CASTAN and Synapse use 1.26. Default 0.0.
    pub zipf_s: f64,
    /// Frame sizes: one fixed size (`frame_size`), CSIT's IMIX_v4_1, or any weighted mix
    /// (e.g. one measured from a capture). Default [`SizeMix::Fixed`].
    pub sizes: SizeMix,
    /// Bit rate on the wire, in bits per second. When set, timestamps follow it instead
    /// of `rate_pps`: each packet occupies `(frame size + 20) * 8` bits (the frame with
    /// FCS, plus 8 bytes of preamble and 12 of inter-frame gap), so packet `i` is at
    /// `start_ns + floor(sum of the previous packets' bits * 1e9 / rate_bps)`, exactly.
    /// Default `None`.
    pub rate_bps: Option<u64>,
    /// Least delay, in ns, between a flow's first (LAN) packet and any of its replies.
    /// Default 0.
    pub reply_delay_ns: u64,
    /// Churn, in flows per minute of trace time: at `start_ns + k * 60e9 / churn_fpm` ns
    /// (k = 1, 2, ...) a flow chosen uniformly at random is retired for good and its slot
    /// (its protocol and popularity rank) gets a fresh 5-tuple, whose first packet is the
    /// next one in the trace. Requires `expiry_ns`. Default 0 (no churn).
    pub churn_fpm: u64,
    /// Flow expiry time of the NF under test, in ns. When set, the generator promises
    /// the NF sees no other new flows than the churn: every active flow sends a LAN
    /// packet at least every `expiry_ns / 2` (a *keep-alive*, forced when popularity
    /// alone would leave it silent longer), and a retired 5-tuple is not reused for at
    /// least `2 * expiry_ns`. Needs `packet rate * expiry >= 8 * flows.count` (the rate
    /// of the largest frames, with `rate_bps`).
    /// Default `None` (no keep-alives).
    pub expiry_ns: Option<u64>,
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
            zipf_s: 0.0,
            sizes: SizeMix::Fixed,
            rate_bps: None,
            reply_delay_ns: 0,
            churn_fpm: 0,
            expiry_ns: None,
        }
    }
}

/// Bits a frame of `frame_size` bytes (FCS included) occupies on the wire: the frame,
/// the 8-byte preamble and start delimiter, and the 12-byte inter-frame gap.
pub fn wire_bits(frame_size: u16) -> u64 {
    (u64::from(frame_size) + 20) * 8
}

impl TraceConfig {
    /// Length of every generated frame when the size is fixed: `frame_size` minus the
    /// FCS. With a size mix, see [`max_frame_len`](Self::max_frame_len).
    pub fn frame_len(&self) -> usize {
        usize::from(self.frame_size.saturating_sub(FCS_LEN))
    }

    /// Length of the longest frame this trace can contain (FCS excluded).
    pub fn max_frame_len(&self) -> usize {
        let top = self
            .size_weights()
            .iter()
            .map(|&(size, _)| size)
            .max()
            .unwrap_or(self.frame_size);
        usize::from(top.saturating_sub(FCS_LEN))
    }

    /// The size distribution as `(frame size with FCS, weight)` pairs.
    pub fn size_weights(&self) -> Vec<(u16, u64)> {
        self.sizes.weights(self.frame_size)
    }

    /// Mean frame size (FCS included) of the size distribution.
    pub fn mean_frame_size(&self) -> f64 {
        let w = self.size_weights();
        let total: f64 = w.iter().map(|&(_, n)| n as f64).sum();
        if total == 0.0 {
            return f64::from(self.frame_size);
        }
        w.iter().map(|&(s, n)| f64::from(s) * n as f64).sum::<f64>() / total
    }

    /// Mean packet rate in packets per second: `rate_pps`, or with `rate_bps` the bit
    /// rate over the mean wire bits of a packet.
    pub fn mean_rate_pps(&self) -> f64 {
        match self.rate_bps {
            Some(bps) => bps as f64 / ((self.mean_frame_size() + 20.0) * 8.0),
            None => self.rate_pps as f64,
        }
    }

    /// The lowest packet rate the trace can have, in packets per second: `rate_pps`, or
    /// with `rate_bps` the bit rate over the wire bits of the largest frame. Keep-alive
    /// and churn budgets use it, so their promises hold whatever sizes are drawn.
    pub fn min_rate_pps(&self) -> f64 {
        match self.rate_bps {
            Some(bps) => {
                let top = self
                    .size_weights()
                    .iter()
                    .map(|&(s, _)| s)
                    .max()
                    .unwrap_or(self.frame_size);
                bps as f64 / wire_bits(top) as f64
            }
            None => self.rate_pps as f64,
        }
    }

    /// Timestamp of packet `i`, or `None` if it does not fit a `u64` (or the rate is
    /// zero). With `rate_bps`, only a fixed size makes it computable without the packet
    /// sequence; with a size mix it is `None` (the generator tracks it exactly).
    pub fn time_of(&self, i: u64) -> Option<u64> {
        let offset = match self.rate_bps {
            None if self.rate_pps == 0 => return None,
            None => u128::from(i) * 1_000_000_000 / u128::from(self.rate_pps),
            Some(0) => return None,
            Some(bps) => {
                let w = self.size_weights();
                let [(size, _)] = w[..] else {
                    return None;
                };
                u128::from(i) * u128::from(wire_bits(size)) * 1_000_000_000 / u128::from(bps)
            }
        };
        u64::try_from(u128::from(self.start_ns) + offset).ok()
    }

    /// An upper bound of the last packet's timestamp (exact with `rate_pps`), or `None`
    /// if it does not fit a `u64`.
    pub(crate) fn last_time_bound(&self) -> Option<u64> {
        let Some(last) = self.packets.checked_sub(1) else {
            return Some(self.start_ns);
        };
        match self.rate_bps {
            None => self.time_of(last),
            Some(0) => None,
            Some(bps) => {
                let bits = self
                    .size_weights()
                    .iter()
                    .map(|&(s, _)| wire_bits(s))
                    .max()
                    .unwrap_or(0);
                let offset = u128::from(last) * u128::from(bits) * 1_000_000_000 / u128::from(bps);
                u64::try_from(u128::from(self.start_ns) + offset).ok()
            }
        }
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
        if matches!(self.sizes, SizeMix::Fixed)
            && !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&self.frame_size)
        {
            return Err(TraceError::FrameSize {
                size: self.frame_size,
            });
        }
        self.sizes.validate()?;
        if !(0.0..=MAX_ZIPF_S).contains(&self.zipf_s) {
            return Err(TraceError::ZipfExponent { s: self.zipf_s });
        }
        match self.rate_bps {
            Some(0) => return Err(TraceError::ZeroBitRate),
            None if self.rate_pps == 0 => return Err(TraceError::ZeroRate),
            _ => {}
        }
        if self.lan_port == self.wan_port {
            return Err(TraceError::SamePorts {
                port: self.lan_port,
            });
        }
        if self.last_time_bound().is_none() {
            return Err(TraceError::TimeOverflow {
                packets: self.packets,
                rate_pps: self.rate_pps,
                start_ns: self.start_ns,
            });
        }
        if self.expiry_ns == Some(0) {
            return Err(TraceError::ZeroExpiry);
        }
        if let Some(expiry) = self.expiry_ns {
            // Keep-alives: every flow is visited once per expiry/4 and may need a packet
            // then; demanding twice that budget keeps the forced packets from falling
            // behind (see gen.rs).
            let per_expiry = self.min_rate_pps() * expiry as f64 / 1e9;
            if per_expiry < 8.0 * f64::from(f.count) {
                return Err(TraceError::ExpiryTooShort {
                    expiry_ns: expiry,
                    flows: f.count,
                    packets_per_expiry: per_expiry,
                });
            }
        }
        if self.churn_fpm > 0 {
            if self.expiry_ns.is_none() {
                return Err(TraceError::ChurnNeedsExpiry);
            }
            // Each replacement forces the new flow's first packet; keep those to a quarter
            // of the packets so keep-alives and popularity still have room.
            let max_fpm = self.min_rate_pps() * 60.0 / 4.0;
            if self.churn_fpm as f64 > max_fpm {
                return Err(TraceError::ChurnTooHigh {
                    fpm: self.churn_fpm,
                    max_fpm: max_fpm as u64,
                });
            }
        }
        Ok(())
    }
}

/// Largest accepted [`TraceConfig::zipf_s`].
pub const MAX_ZIPF_S: f64 = 2.0;

/// CSIT's `IMIX_v4_1`: per 48 packets, 28 of 64 B, 16 of 570 B and 4 of 1518 B (frame
/// sizes with FCS; mean 353.83 B).
pub const IMIX_V4_1: [(u16, u64); 3] = [(64, 28), (570, 16), (1518, 4)];

/// How frame sizes are chosen. Each packet draws its size independently (exact integer
/// weights), so the share of each size converges to its weight's share.
///
/// Serialized as `"fixed"`, `"imix"` or `{"weighted": [[64, 7], [570, 4], [1518, 1]]}`;
/// parsed (for command lines) from `fixed`, `imix`, a single size `128`, or a list
/// `64:7,570:4,1518:1` of `size:weight` pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeMix {
    /// Every frame is [`TraceConfig::frame_size`].
    #[default]
    Fixed,
    /// CSIT's [`IMIX_V4_1`].
    Imix,
    /// `(frame size with FCS, weight)` pairs, sizes 64..=1518; repeated sizes add up.
    Weighted(Vec<(u16, u64)>),
}

impl SizeMix {
    /// The distribution as `(frame size with FCS, weight)` pairs, sorted by size with
    /// repeats merged; `frame_size` is the size of [`SizeMix::Fixed`].
    pub fn weights(&self, frame_size: u16) -> Vec<(u16, u64)> {
        let mut w: Vec<(u16, u64)> = match self {
            SizeMix::Fixed => vec![(frame_size, 1)],
            SizeMix::Imix => IMIX_V4_1.to_vec(),
            SizeMix::Weighted(w) => w.iter().copied().filter(|&(_, n)| n > 0).collect(),
        };
        w.sort_unstable();
        w.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 = a.1.saturating_add(b.1);
                true
            } else {
                false
            }
        });
        w
    }

    fn validate(&self) -> Result<(), TraceError> {
        let SizeMix::Weighted(w) = self else {
            return Ok(());
        };
        let mut total: u64 = 0;
        for &(size, weight) in w {
            if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&size) {
                return Err(TraceError::FrameSize { size });
            }
            total = total
                .checked_add(weight)
                .ok_or_else(|| TraceError::BadSizeMix("the weights add up past 2^64".into()))?;
        }
        if total == 0 {
            return Err(TraceError::BadSizeMix(
                "no size has a positive weight".into(),
            ));
        }
        Ok(())
    }

    /// The frame sizes of the packets of a capture file (each record's original length
    /// plus the 4-byte FCS, raised to 64 or lowered to 1518 when outside), as a weighted
    /// mix: how Maestro's "internet" traces took their sizes from a real capture. Reads
    /// at most `limit` packets (all with `None`); refused records are skipped.
    pub fn from_capture(path: &Path, limit: Option<u64>) -> Result<SizeMix, TraceError> {
        let reader = CaptureReader::open(path)?;
        let mut counts = vec![0u64; usize::from(MAX_FRAME_SIZE) + 1];
        let mut n = 0u64;
        for item in reader {
            if limit.is_some_and(|l| n >= l) {
                break;
            }
            if let CaptureItem::Packet(r) = item {
                let size = r
                    .orig_len
                    .saturating_add(u32::from(FCS_LEN))
                    .clamp(u32::from(MIN_FRAME_SIZE), u32::from(MAX_FRAME_SIZE));
                counts[size as usize] += 1;
                n += 1;
            }
        }
        if n == 0 {
            return Err(TraceError::BadSizeMix(format!(
                "{} has no packets to take sizes from",
                path.display()
            )));
        }
        Ok(SizeMix::Weighted(
            counts
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(s, &c)| (s as u16, c))
                .collect(),
        ))
    }
}

impl fmt::Display for SizeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeMix::Fixed => f.write_str("fixed"),
            SizeMix::Imix => f.write_str("imix"),
            SizeMix::Weighted(w) => {
                for (i, (s, n)) in w.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{s}:{n}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for SizeMix {
    type Err = TraceError;

    /// `fixed`, `imix` (also `imix_v4_1`), a single size `128`, or `64:7,570:4,1518:1`.
    fn from_str(s: &str) -> Result<Self, TraceError> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "fixed" => return Ok(SizeMix::Fixed),
            "imix" | "imix_v4_1" | "imix-v4-1" => return Ok(SizeMix::Imix),
            _ => {}
        }
        let bad = |reason: String| {
            TraceError::BadSizeMix(format!(
                "{s:?}: {reason} (expected \"imix\", a size such as \"128\", or \
                 \"size:weight\" pairs such as \"64:7,570:4,1518:1\")"
            ))
        };
        let mut w = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (size, weight) = part.split_once(':').unwrap_or((part, "1"));
            let size: u16 = size
                .trim()
                .parse()
                .map_err(|_| bad(format!("{size:?} is not a frame size")))?;
            let weight: u64 = weight
                .trim()
                .parse()
                .map_err(|_| bad(format!("{weight:?} is not a whole-number weight")))?;
            w.push((size, weight));
        }
        let mix = SizeMix::Weighted(w);
        mix.validate().map_err(|e| bad(e.to_string()))?;
        Ok(mix)
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
        "{packets} packets from {start_ns} ns at the configured rate run past the largest \
         u64 timestamp (in the year 2554): lower packets or start_ns, or raise the rate"
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
    #[error("rate_bps is 0: the bit rate must be at least 1 bit per second")]
    ZeroBitRate,
    #[error(
        "zipf_s is {s}, but the Zipf exponent must be within 0.0..={MAX_ZIPF_S} (0 is uniform)"
    )]
    ZipfExponent { s: f64 },
    #[error("invalid size mix: {0}")]
    BadSizeMix(String),
    #[error("expiry_ns is 0: the NF's expiry time must be at least 1 ns")]
    ZeroExpiry,
    #[error(
        "an expiry of {expiry_ns} ns is too short for {flows} flows: at its lowest packet \
         rate the trace has only {packets_per_expiry:.0} packets per expiry time, and keeping every flow alive \
         (a packet per flow every half expiry, with room to spare) needs at least 8 per \
         flow ({needed}): raise the rate or the expiry, or lower the flow count",
        needed = 8 * u64::from(*flows)
    )]
    ExpiryTooShort {
        expiry_ns: u64,
        flows: u32,
        packets_per_expiry: f64,
    },
    #[error(
        "churn_fpm is set but expiry_ns is not: churn is defined against the NF's flow \
         expiry (Maestro's evaluation used 1000 us), so pass the expiry time the NF runs with"
    )]
    ChurnNeedsExpiry,
    #[error(
        "a churn of {fpm} flows/min is too high for the packet rate: each new flow needs \
         its first packet, and at most a quarter of the packets may be those \
         ({max_fpm} flows/min at this rate); raise the rate or lower the churn"
    )]
    ChurnTooHigh { fpm: u64, max_fpm: u64 },
    #[error("invalid {what} {text:?}: {reason}")]
    BadValue {
        what: &'static str,
        text: String,
        reason: String,
    },
    /// Internal: etherparse refused to build the frame template (a bug, not a config
    /// problem: validation admits only buildable sizes).
    #[error("internal error building the frame template: {0}")]
    Template(String),
    #[error(transparent)]
    Capture(#[from] maestro_runtime::capture::CaptureError),
}
