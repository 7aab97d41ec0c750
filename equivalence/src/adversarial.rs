//! Traffic that gives the checker teeth (`equivalence.md`, "Traffic that gives the
//! checker teeth"), built from the analysis and the RSS configuration rather than from
//! luck. Every trace says what it targets ([`AdversarialTrace::purpose`]).
//!
//! Families (each a function; [`generate`] runs them all):
//! - [`co_location_pairs`]: for every sharding constraint, packets on both of its sides
//!   (the fw LAN flow and its WAN reply; the NAT LAN flow and the WAN reply addressed to
//!   the external port the sequential NAT gave it, read from the reference
//!   interpreter's output; many packets with equal keyed fields for single-port
//!   constraints), plus ICMP and fragments of the same flows (classes the NIC hashes
//!   differently).
//! - [`reta_collisions`]: more flows than one core's share of a table, all steered into
//!   one RETA bucket. Toeplitz is linear over GF(2), so the flows are a coset of the
//!   kernel of the key's RETA-bit columns restricted to the state key's bits: solved,
//!   not searched.
//! - [`expiry_boundaries`]: an entry, then a probe exactly at, one ns before and one ns
//!   after its expiry (`timestamp < now - ttl` expires, so `last + ttl` still hits),
//!   through every way the analysis says packets read the object (a reply, a frame to a
//!   learned MAC, a client packet that needs a live backend).
//! - [`limits`]: a per-key bound (a port-scan detector's ports per source, a connection
//!   limiter's flows per client) driven to its limit with the NF's own configuration,
//!   new values racing for the last slot, then probes at the expiry deadline.
//! - [`odd_packets`]: non-IP, IPv6, VLAN, IPv4 options, fragments, truncated headers,
//!   ICMP, bad lengths, from every port.
//! - [`table_full`]: capacity + a few flows within the ttl (every core given its share),
//!   their replies, then fresh keys at the first entry's expiry deadline: the table is
//!   full exactly where the expiry decides.
//! - [`random`]: a proptest strategy of small traces (few flows, both ports, replies,
//!   time steps around the ttl) and [`random::shrink`] to a minimal failing one.
//!
//! The state a family needs first (a backend before a flow can be pinned) comes from the
//! analysis (`prerequisites`); probes are aimed at the core holding the state they probe
//! under both the solved steering and the `locks` one ([`locks_nic`]).
//!
//! Time is only ever the generator's: traces start at [`BASE_TIME`] and step by
//! [`STEP`]; everything is deterministic given the context's seed.

use std::collections::BTreeSet;

use etherparse::PacketBuilder;
use maestro_analyzer::sym::report::{Analysis, PairConstraint, SiteInfo};
use maestro_analyzer::{NfProgram, StateKind};
use maestro_interpreter::{InterpError, InterpOptions, Interpreter};
use maestro_rss::{reta_columns, Field, RssConfig, INPUT_BITS};
use maestro_runtime::exec::nic::{NicConfig, NicModel, PortRss};
use maestro_runtime::exec::shard_capacity;
use maestro_runtime::packet::{PacketView, ParseMode};
use maestro_runtime::{InputPacket, Observation};

/// First timestamp of every trace (1 s: far from 0, so `now - ttl` arithmetic is
/// exercised on both sides of zero only where a trace wants it).
pub const BASE_TIME: u64 = 1_000_000_000;
/// Gap between consecutive packets of a trace (1 µs).
pub const STEP: u64 = 1_000;
/// Tables larger than this are not filled by [`table_full`] (the trace would have
/// millions of packets); lower the capacity with `--set` to test them.
pub const MAX_FILL: u32 = 1 << 20;

/// One generated trace and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdversarialTrace {
    /// `family:detail`, e.g. `co-location:lan-wan`, `expiry:flows:at`.
    pub name: String,
    /// What it targets, in words.
    pub purpose: String,
    pub packets: Vec<InputPacket>,
}

/// Why traffic could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum AdversarialError {
    #[error("the reference interpreter cannot start the NF `{nf}`: {source}; check the NF with `maestro check`")]
    Interpreter {
        nf: String,
        #[source]
        source: InterpError,
    },
}

/// One port's RSS settings as the NIC applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSteering {
    pub port: u16,
    pub key: Vec<u8>,
    pub rss_types: Vec<String>,
    /// The RETA this port uses.
    pub reta: Vec<u16>,
}

/// The RSS configuration the traffic is built against (keys and RETAs per port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steering {
    pub ports: Vec<PortSteering>,
}

impl Steering {
    /// From the solver's configuration.
    pub fn from_rss(cfg: &RssConfig) -> Steering {
        Steering {
            ports: cfg
                .ports
                .iter()
                .map(|p| PortSteering {
                    port: p.port,
                    key: p.key.clone(),
                    rss_types: p.rss_types.clone(),
                    reta: cfg.reta.clone(),
                })
                .collect(),
        }
    }

    /// From the runtime's NIC configuration (per-port RETA overrides honoured).
    pub fn from_nic(cfg: &NicConfig) -> Steering {
        Steering {
            ports: cfg
                .ports
                .iter()
                .map(|p| PortSteering {
                    port: p.port,
                    key: p.key.clone(),
                    rss_types: p.rss_types.clone(),
                    reta: p.reta.clone().unwrap_or_else(|| cfg.reta.clone()),
                })
                .collect(),
        }
    }

    pub fn port(&self, port: u16) -> Option<&PortSteering> {
        self.ports.iter().find(|p| p.port == port)
    }
}

/// What the generators read.
#[derive(Clone, Copy, Debug)]
pub struct AdversarialContext<'a> {
    /// The checked NF (capacities, ttls, devices; after `--set`).
    pub program: &'a NfProgram,
    pub analysis: &'a Analysis,
    /// Keys and RETA; `None` skips [`reta_collisions`].
    pub steering: Option<&'a Steering>,
    /// Cores of the parallel runs (the shard capacity depends on it).
    pub cores: usize,
    pub seed: u64,
    pub parse_mode: ParseMode,
}

/// Every family, in the order of the module doc.
pub fn generate(ctx: &AdversarialContext<'_>) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let mut out = co_location_pairs(ctx)?;
    out.extend(reta_collisions(ctx)?);
    out.extend(expiry_boundaries(ctx)?);
    out.extend(limits(ctx)?);
    out.extend(odd_packets(ctx));
    out.extend(table_full(ctx)?);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------

/// An IPv4 5-tuple as the NF reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    /// 6 (TCP), 17 (UDP) or 1 (ICMP).
    pub proto: u8,
}

/// IP protocol numbers used here.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;

impl Tuple {
    pub fn get(&self, f: Field) -> u32 {
        match f {
            Field::Src => self.src,
            Field::Dst => self.dst,
            Field::Sport => u32::from(self.sport),
            Field::Dport => u32::from(self.dport),
        }
    }

    /// Sets a field (port values are truncated to 16 bits).
    pub fn set(&mut self, f: Field, v: u32) {
        match f {
            Field::Src => self.src = v,
            Field::Dst => self.dst = v,
            Field::Sport => self.sport = v as u16,
            Field::Dport => self.dport = v as u16,
        }
    }

    /// The other direction of the conversation.
    pub fn reversed(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }

    /// The 96 Toeplitz input bits `src|dst|sport|dport`; input bit `i` (MSB first, as in
    /// [`maestro_rss::reta_columns`]) is bit `95 - i` of the result.
    pub fn hash_bits(&self) -> u128 {
        (u128::from(self.src) << 64)
            | (u128::from(self.dst) << 32)
            | (u128::from(self.sport) << 16)
            | u128::from(self.dport)
    }

    /// The tuple whose hash input is `bits` (protocol `proto`).
    pub fn from_hash_bits(bits: u128, proto: u8) -> Tuple {
        Tuple {
            src: (bits >> 64) as u32,
            dst: (bits >> 32) as u32,
            sport: (bits >> 16) as u16,
            dport: bits as u16,
            proto,
        }
    }

    /// The tuple of a frame as the NF parses it (ports 0 without L4).
    pub fn of_frame(frame: &[u8], mode: ParseMode) -> Option<Tuple> {
        let view = PacketView::new(frame, mode);
        let ip = view.ipv4()?;
        let (sport, dport) = view.l4_ports().unwrap_or((0, 0));
        Some(Tuple {
            src: ip.src_u32(),
            dst: ip.dst_u32(),
            sport,
            dport,
            proto: ip.proto(),
        })
    }
}

/// The MAC addresses used on `port`: hosts behind it send from `02:00:00:00:<port>:01`
/// to `02:00:00:00:<port>:02`.
pub fn macs(port: u16) -> ([u8; 6], [u8; 6]) {
    let p = port as u8;
    ([0x02, 0, 0, 0, p, 0x01], [0x02, 0, 0, 0, p, 0x02])
}

fn build<B: Finish>(b: B, payload: usize) -> Vec<u8> {
    b.finish(&vec![0u8; payload])
}

trait Finish {
    fn finish(self, payload: &[u8]) -> Vec<u8>;
}

macro_rules! finish {
    ($t:ty) => {
        impl Finish for etherparse::PacketBuilderStep<$t> {
            fn finish(self, payload: &[u8]) -> Vec<u8> {
                let mut out = Vec::with_capacity(self.size(payload.len()));
                // Writing into a Vec fails only on sizes beyond the IP length fields; our
                // payloads are tiny, and an empty frame would still be a valid test input.
                if self.write(&mut out, payload).is_err() {
                    out.clear();
                }
                out
            }
        }
    };
}
finish!(etherparse::UdpHeader);
finish!(etherparse::TcpHeader);
finish!(etherparse::Icmpv4Header);

/// A well-formed frame of the tuple sent from `port`: TCP (a SYN), UDP, or an ICMP echo
/// request for any other protocol.
pub fn frame(t: &Tuple, port: u16) -> Vec<u8> {
    let (s, d) = macs(port);
    let ip = PacketBuilder::ethernet2(s, d).ipv4(t.src.to_be_bytes(), t.dst.to_be_bytes(), 64);
    match t.proto {
        TCP => build(ip.tcp(t.sport, t.dport, 1000, 65535).syn(), 6),
        UDP => build(ip.udp(t.sport, t.dport), 18),
        _ => build(ip.icmpv4_echo_request(t.sport, t.dport), 18),
    }
}

/// Recomputes the IPv4 header checksum of an Ethernet frame in place.
fn fix_ipv4_checksum(f: &mut [u8]) {
    if f.len() < 34 {
        return;
    }
    let ihl = (usize::from(f[14] & 0x0f) * 4).clamp(20, f.len() - 14);
    f[24] = 0;
    f[25] = 0;
    let sum = maestro_runtime::packet::ipv4_header_checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
}

/// The odd frames of [`odd_packets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OddKind {
    /// An ARP request (EtherType 0x0806).
    Arp,
    /// IPv6 with TCP.
    Ipv6Tcp,
    /// IPv6 with UDP.
    Ipv6Udp,
    /// An 802.1Q tag (VLAN 7) in front of an IPv4 UDP packet.
    Vlan,
    /// IPv4 with 4 bytes of options (IHL 6), then UDP.
    Ipv4Options,
    /// The first fragment of a datagram (MF set, offset 0, TCP header for TCP tuples,
    /// else UDP).
    FirstFragment,
    /// A later fragment (offset 1480 bytes, MF clear) whose payload starts with the
    /// tuple's ports, so an NF that reads "ports" there sees the tuple.
    LaterFragment,
    /// An ICMP echo request.
    Icmp,
    /// EtherType IPv4 but only 12 bytes of IPv4 header.
    TruncatedIpv4,
    /// A complete IPv4 header (protocol TCP) and only 2 bytes of TCP header.
    TruncatedTcp,
    /// IPv4 UDP whose total length claims more bytes than the frame has.
    BadTotalLength,
}

impl OddKind {
    pub const ALL: [OddKind; 11] = [
        OddKind::Arp,
        OddKind::Ipv6Tcp,
        OddKind::Ipv6Udp,
        OddKind::Vlan,
        OddKind::Ipv4Options,
        OddKind::FirstFragment,
        OddKind::LaterFragment,
        OddKind::Icmp,
        OddKind::TruncatedIpv4,
        OddKind::TruncatedTcp,
        OddKind::BadTotalLength,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OddKind::Arp => "arp",
            OddKind::Ipv6Tcp => "ipv6-tcp",
            OddKind::Ipv6Udp => "ipv6-udp",
            OddKind::Vlan => "vlan",
            OddKind::Ipv4Options => "ipv4-options",
            OddKind::FirstFragment => "first-fragment",
            OddKind::LaterFragment => "later-fragment",
            OddKind::Icmp => "icmp",
            OddKind::TruncatedIpv4 => "truncated-ipv4",
            OddKind::TruncatedTcp => "truncated-tcp",
            OddKind::BadTotalLength => "bad-total-length",
        }
    }
}

/// An odd frame carrying the tuple's addresses (and ports where the kind has them),
/// sent from `port`.
pub fn odd_frame(kind: OddKind, t: &Tuple, port: u16) -> Vec<u8> {
    let (s, d) = macs(port);
    let udp = Tuple { proto: UDP, ..*t };
    let tcp = Tuple { proto: TCP, ..*t };
    match kind {
        OddKind::Arp => {
            let mut f = Vec::with_capacity(42);
            f.extend_from_slice(&[0xff; 6]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&t.src.to_be_bytes());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&t.dst.to_be_bytes());
            f
        }
        OddKind::Ipv6Tcp | OddKind::Ipv6Udp => {
            let v6 = |a: u32| {
                let mut b = [0u8; 16];
                b[0..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                b[12..16].copy_from_slice(&a.to_be_bytes());
                b
            };
            let ip = PacketBuilder::ethernet2(s, d).ipv6(v6(t.src), v6(t.dst), 64);
            if kind == OddKind::Ipv6Tcp {
                build(ip.tcp(t.sport, t.dport, 1000, 65535).syn(), 6)
            } else {
                build(ip.udp(t.sport, t.dport), 18)
            }
        }
        OddKind::Vlan => {
            let plain = frame(&udp, port);
            let mut f = plain[..12].to_vec();
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
            f.extend_from_slice(&plain[12..]);
            f
        }
        OddKind::Ipv4Options => {
            let plain = frame(&udp, port);
            let mut f = plain[..34].to_vec();
            f.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
            f.extend_from_slice(&plain[34..]);
            f[14] = 0x46;
            let total = u16::from_be_bytes([f[16], f[17]]).wrapping_add(4);
            f[16..18].copy_from_slice(&total.to_be_bytes());
            fix_ipv4_checksum(&mut f);
            f
        }
        OddKind::FirstFragment => {
            let mut f = frame(if t.proto == TCP { &tcp } else { &udp }, port);
            f[20] = 0x20; // MF, offset 0
            f[21] = 0;
            fix_ipv4_checksum(&mut f);
            f
        }
        OddKind::LaterFragment => {
            let mut f = frame(if t.proto == TCP { &tcp } else { &udp }, port);
            let off: u16 = 1480 / 8; // MF clear
            f[20..22].copy_from_slice(&off.to_be_bytes());
            fix_ipv4_checksum(&mut f);
            f
        }
        OddKind::Icmp => frame(&Tuple { proto: ICMP, ..*t }, port),
        OddKind::TruncatedIpv4 => {
            let mut f = frame(&udp, port);
            f.truncate(14 + 12);
            f
        }
        OddKind::TruncatedTcp => {
            let mut f = frame(&tcp, port);
            f.truncate(14 + 20 + 2);
            f[16..18].copy_from_slice(&22u16.to_be_bytes());
            fix_ipv4_checksum(&mut f);
            f
        }
        OddKind::BadTotalLength => {
            let mut f = frame(&udp, port);
            f[16..18].copy_from_slice(&1500u16.to_be_bytes());
            fix_ipv4_checksum(&mut f);
            f
        }
    }
}

// ---------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------

/// splitmix64: small, seedable, and the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `family` under `seed` (families do not share streams).
    pub fn new(seed: u64, family: &str) -> Rng {
        let salt = family.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed ^ salt)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A random TCP or UDP tuple inside realistic prefixes: clients in 10.0.0.0/16,
    /// servers in 198.18.0.0/15 (the benchmarking range), ephemeral client ports,
    /// well-known or registered server ports.
    pub fn tuple(&mut self, proto: u8) -> Tuple {
        let client = 0x0a00_0000 | (self.below(1 << 16) as u32);
        let server = 0xc612_0000 | (self.below(1 << 17) as u32);
        Tuple {
            src: client,
            dst: server,
            sport: 1024 + self.below(64_000) as u16,
            dport: [80u16, 443, 53, 8080, 22, 5000][self.below(6) as usize],
            proto,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Building traces against the reference interpreter
// ---------------------------------------------------------------------------------------

/// A trace under construction, fed packet by packet to the reference interpreter so
/// that later packets can depend on what the sequential NF did (the NAT's port).
pub struct TraceBuilder {
    interp: Interpreter,
    packets: Vec<InputPacket>,
    observations: Vec<Observation>,
    /// Timestamp of the next packet.
    pub now: u64,
    mode: ParseMode,
}

impl TraceBuilder {
    pub fn new(program: &NfProgram, mode: ParseMode) -> Result<TraceBuilder, AdversarialError> {
        let interp = Interpreter::new(
            program,
            InterpOptions {
                parse_mode: mode,
                ..InterpOptions::default()
            },
        )
        .map_err(|source| AdversarialError::Interpreter {
            nf: program.name.clone(),
            source,
        })?;
        Ok(TraceBuilder {
            interp,
            packets: Vec::new(),
            observations: Vec::new(),
            now: BASE_TIME,
            mode,
        })
    }

    /// Sends a frame at [`TraceBuilder::now`], then advances the clock by [`STEP`].
    pub fn send(&mut self, port: u16, data: Vec<u8>) -> Observation {
        let t = self.now;
        self.now = self.now.saturating_add(STEP);
        self.send_at(port, data, t)
    }

    /// Sends a frame at time `t` (the clock moves to `t + STEP` if that is later).
    pub fn send_at(&mut self, port: u16, data: Vec<u8>, t: u64) -> Observation {
        let p = InputPacket {
            port,
            time_ns: t,
            data,
        };
        let obs = self.interp.process(&p);
        self.packets.push(p);
        self.observations.push(obs.clone());
        self.now = self.now.max(t.saturating_add(STEP));
        obs
    }

    /// The tuple of the reply to an output: the output frame's 5-tuple reversed.
    pub fn reply_to(&self, obs: &Observation) -> Option<Tuple> {
        let t = Tuple::of_frame(obs.bytes()?, self.mode)?;
        if t.proto == TCP || t.proto == UDP {
            Some(t.reversed())
        } else {
            None
        }
    }

    pub fn packets(&self) -> &[InputPacket] {
        &self.packets
    }

    /// The interpreter's observations so far (the sequential reference of the trace).
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    pub fn finish(self, name: impl Into<String>, purpose: impl Into<String>) -> AdversarialTrace {
        AdversarialTrace {
            name: name.into(),
            purpose: purpose.into(),
            packets: self.packets,
        }
    }
}

/// The field equalities of a constraint as (field of packet 1, field of packet 2).
pub fn equalities(pc: &PairConstraint) -> Vec<(Field, Field)> {
    pc.equalities
        .iter()
        .filter_map(|e| Some((Field::parse(&e.p1)?, Field::parse(&e.p2)?)))
        .filter(|(a, b)| a.width() == b.width())
        .collect()
}

/// A packet-2 tuple for packet 1 under the equalities: equal fields copied, the rest
/// random. `reverse` applies the equalities from packet 2's side (packet 1 given as
/// `p` is then the constraint's packet 2).
pub fn constrained_peer(eqs: &[(Field, Field)], p: &Tuple, rng: &mut Rng, reverse: bool) -> Tuple {
    let mut q = rng.tuple(p.proto);
    for &(f1, f2) in eqs {
        if reverse {
            q.set(f1, p.get(f2));
        } else {
            q.set(f2, p.get(f1));
        }
    }
    q
}

/// `n` flows (alternately TCP and UDP) that the steering spreads round-robin over the
/// cores when packets of them arrive on `port`, so that every core holds some state
/// (and per-core allocators all hand out values). Each flow is the first of up to 256
/// candidates that lands on its target core; without steering (or on one core) they are
/// plain random flows.
fn spread(ctx: &AdversarialContext<'_>, port: u16, n: usize, rng: &mut Rng) -> Vec<Tuple> {
    let proto = |k: usize| if k.is_multiple_of(2) { TCP } else { UDP };
    let steer = ctx
        .steering
        .and_then(|s| s.port(port))
        .filter(|_| ctx.cores > 1)
        .and_then(|ps| {
            let t = maestro_runtime::rss::Toeplitz::new(&ps.key).ok()?;
            (!ps.reta.is_empty() && ps.reta.len().is_power_of_two()).then_some((t, ps.reta.clone()))
        });
    (0..n)
        .map(|k| {
            let Some((toeplitz, reta)) = &steer else {
                return rng.tuple(proto(k));
            };
            let target = (k % ctx.cores) as u16;
            let mut t = rng.tuple(proto(k));
            for _ in 0..256 {
                let bucket = toeplitz.hash_unchecked(&base_input(&t)) as usize & (reta.len() - 1);
                if reta[bucket] == target {
                    break;
                }
                t = rng.tuple(proto(k));
            }
            t
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Probes that must meet the state they probe
// ---------------------------------------------------------------------------------------

/// Candidates tried when aiming a packet at a core ([`Nics::aim`]).
const AIM_TRIES: usize = 256;

/// The NIC configuration `verify` runs `locks` and `tm` with: Microsoft's key over
/// 4-tuples on every port and a round-robin RETA, so that packets that share state meet
/// on different cores (what a lock protocol must get right).
pub fn locks_nic(program: &NfProgram, cores: usize) -> NicConfig {
    NicConfig::default_for(program.port_count).with_cores(cores)
}

impl Steering {
    /// As the runtime's NIC configuration (every port with its own RETA).
    pub fn nic_config(&self) -> NicConfig {
        NicConfig {
            ports: self
                .ports
                .iter()
                .map(|p| PortRss {
                    port: p.port,
                    key: p.key.clone(),
                    rss_types: p
                        .rss_types
                        .iter()
                        .flat_map(|t| t.split('|'))
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect(),
                    reta: Some(p.reta.clone()),
                })
                .collect(),
            reta: self
                .ports
                .first()
                .map_or_else(|| vec![0], |p| p.reta.clone()),
        }
    }
}

/// The NIC models of the parallel runs: the solved configuration (`sn`, only when the
/// verdict allows shared-nothing) and the `locks`/`tm` one. A packet that must see the
/// state another packet left (a probe at an expiry deadline, a read-back at a full table)
/// is aimed at that packet's core under both: per-core tables of `sn` must hold it, and
/// under `locks` on real threads another core could run it first.
struct Nics {
    sn: Option<NicModel>,
    locks: Option<NicModel>,
}

impl Nics {
    fn new(ctx: &AdversarialContext<'_>) -> Nics {
        if ctx.cores < 2 {
            return Nics {
                sn: None,
                locks: None,
            };
        }
        let sn = ctx
            .steering
            .filter(|_| ctx.analysis.verdict.strategy == "shared-nothing")
            .and_then(|s| NicModel::new(&s.nic_config(), ctx.cores).ok());
        let locks = NicModel::new(&locks_nic(ctx.program, ctx.cores), ctx.cores).ok();
        Nics { sn, locks }
    }

    /// The core of a frame under each model (`sn`, then `locks`).
    fn cores(&self, port: u16, frame: &[u8]) -> [Option<u16>; 2] {
        [
            self.sn.as_ref().map(|m| m.steer(port, frame).core),
            self.locks.as_ref().map(|m| m.steer(port, frame).core),
        ]
    }

    /// The `sn` core of a frame (0 without an `sn` model).
    fn sn_core(&self, port: u16, frame: &[u8]) -> u16 {
        self.sn.as_ref().map_or(0, |m| m.steer(port, frame).core)
    }

    /// The first of up to [`AIM_TRIES`] frames from `make` that lands on `target` under
    /// every model (the last one tried when none does: the probe is still sent).
    fn aim(
        &self,
        target: [Option<u16>; 2],
        port: u16,
        rng: &mut Rng,
        mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut f = make(rng);
        for _ in 1..AIM_TRIES {
            if self.cores(port, &f) == target {
                break;
            }
            f = make(rng);
        }
        f
    }
}

/// A header field a state key is built from, as the analysis names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyField {
    Ip(Field),
    EthSrc,
    EthDst,
}

impl KeyField {
    fn parse(name: &str) -> Option<KeyField> {
        match name {
            "pkt.eth.src" => Some(KeyField::EthSrc),
            "pkt.eth.dst" => Some(KeyField::EthDst),
            _ => Field::parse(name).map(KeyField::Ip),
        }
    }
}

/// The headers of a frame that keys are built from: its tuple and its two MACs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Headers {
    tuple: Tuple,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
}

impl Headers {
    /// The tuple as [`frame`] sends it from `port` (the port's host MACs).
    fn of(tuple: Tuple, port: u16) -> Headers {
        let (src_mac, dst_mac) = macs(port);
        Headers {
            tuple,
            src_mac,
            dst_mac,
        }
    }

    fn frame(&self, port: u16) -> Vec<u8> {
        let mut f = frame(&self.tuple, port);
        if f.len() >= 12 {
            f[0..6].copy_from_slice(&self.dst_mac);
            f[6..12].copy_from_slice(&self.src_mac);
        }
        f
    }

    /// Copies `from`'s value of `f_from` into this packet's `f_to` (same kind and width;
    /// otherwise nothing).
    fn copy_from(&mut self, f_to: KeyField, from: &Headers, f_from: KeyField) {
        let mac = |h: &Headers, f: KeyField| match f {
            KeyField::EthSrc => Some(h.src_mac),
            KeyField::EthDst => Some(h.dst_mac),
            KeyField::Ip(_) => None,
        };
        match (f_to, f_from) {
            (KeyField::Ip(a), KeyField::Ip(b)) if a.width() == b.width() => {
                self.tuple.set(a, from.tuple.get(b));
            }
            (KeyField::EthSrc, _) => {
                if let Some(m) = mac(from, f_from) {
                    self.src_mac = m;
                }
            }
            (KeyField::EthDst, _) => {
                if let Some(m) = mac(from, f_from) {
                    self.dst_mac = m;
                }
            }
            _ => {}
        }
    }
}

/// A site's key, one entry per component in order (`None` for a component that is not
/// one plain header field); empty for sites keyed by an index or by nothing.
fn site_key(site: &SiteInfo) -> Vec<Option<KeyField>> {
    site.keys
        .iter()
        .find(|k| k.form == "key")
        .map(|k| {
            k.components
                .iter()
                .map(|c| match c.fields.as_slice() {
                    [f] if c.form == "field" => KeyField::parse(f),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a site creates entries (`add`, `allocate`, `put`).
fn creates(site: &SiteInfo) -> bool {
    site.access == "write" && matches!(site.method.as_str(), "add" | "allocate" | "put")
}

/// The key an entry of `object` is created with on `port`.
fn creating_key(analysis: &Analysis, object: &str, port: u16) -> Vec<Option<KeyField>> {
    analysis
        .sites
        .iter()
        .filter(|s| s.object == object && s.port == port && creates(s))
        .map(site_key)
        .find(|k| !k.is_empty())
        .unwrap_or_default()
}

/// The ways packets read `object`: (port, key), one per distinct pair.
fn read_keys(analysis: &Analysis, object: &str) -> Vec<(u16, Vec<Option<KeyField>>)> {
    let mut out: Vec<(u16, Vec<Option<KeyField>>)> = Vec::new();
    for s in analysis
        .sites
        .iter()
        .filter(|s| s.object == object && s.access == "read")
    {
        let k = (s.port, site_key(s));
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// A probe that reads `object` on `port` by `read` the entry a packet with headers
/// `created` made with key `create`: the created key's values copied into the read key's
/// fields, component by component (an index- or global-keyed read needs no value).
/// `None` when the two keys cannot be matched.
fn keyed_probe(
    created: &Headers,
    create: &[Option<KeyField>],
    read: &[Option<KeyField>],
    mut probe: Headers,
) -> Option<Headers> {
    if read.is_empty() {
        return Some(probe);
    }
    if read.len() != create.len() {
        return None;
    }
    for (r, c) in read.iter().zip(create) {
        if let (Some(r), Some(c)) = (r, c) {
            probe.copy_from(*r, created, *c);
        }
    }
    Some(probe)
}

/// Objects that the paths creating `object` read first (a flow is pinned only while a
/// backend is alive), each with a port whose packets create entries of it and do not
/// create `object`: one packet there puts the prior state in place.
fn prerequisites(analysis: &Analysis, object: &str) -> Vec<(u16, String)> {
    let own: Vec<u16> = creating_ports(analysis, object)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let paths: BTreeSet<usize> = analysis
        .sites
        .iter()
        .filter(|s| s.object == object && creates(s))
        .flat_map(|s| s.paths.iter().copied())
        .collect();
    let mut out: Vec<(u16, String)> = Vec::new();
    for s in analysis.sites.iter().filter(|s| {
        s.object != object && s.access == "read" && s.paths.iter().any(|p| paths.contains(p))
    }) {
        if out.iter().any(|(_, o)| *o == s.object) {
            continue;
        }
        if let Some((port, _)) = creating_ports(analysis, &s.object)
            .into_iter()
            .find(|(p, _)| !own.contains(p))
        {
            out.push((port, s.object.clone()));
        }
    }
    out
}

/// Whether `q` (packet 2) satisfies the equalities with `p` (packet 1).
fn satisfies(eqs: &[(Field, Field)], p: &Tuple, q: &Tuple) -> bool {
    eqs.iter().all(|&(f1, f2)| p.get(f1) == q.get(f2))
}

fn pair_name(pc: &PairConstraint) -> String {
    format!("{}-{}", pc.devices[0], pc.devices[1])
}

fn constraint_words(pc: &PairConstraint) -> String {
    let eqs: Vec<String> = pc
        .equalities
        .iter()
        .map(|e| {
            format!(
                "{}.{} == {}.{}",
                pc.devices[0],
                short(&e.p1),
                pc.devices[1],
                short(&e.p2)
            )
        })
        .collect();
    let objects: BTreeSet<&str> = pc.sources.iter().map(|s| s.object.as_str()).collect();
    format!(
        "a {} packet and a {} packet with {} share `{}`",
        pc.devices[0],
        pc.devices[1],
        if eqs.is_empty() {
            "any fields".to_string()
        } else {
            eqs.join(", ")
        },
        objects.into_iter().collect::<Vec<_>>().join("`, `")
    )
}

fn short(field: &str) -> &str {
    field.strip_prefix("pkt.").unwrap_or(field)
}

/// The reply tuple for packet 1 of a cross-port constraint: the reply to what the
/// sequential NF sent out, if it satisfies the constraint, else a constrained peer.
fn peer_of(
    b: &TraceBuilder,
    obs: &Observation,
    eqs: &[(Field, Field)],
    p1: &Tuple,
    rng: &mut Rng,
) -> Tuple {
    match b.reply_to(obs) {
        Some(r) if satisfies(eqs, p1, &r) => r,
        _ => constrained_peer(eqs, p1, rng, false),
    }
}

/// Flows per constraint in [`co_location_pairs`] (enough to spread over cores).
const PAIR_FLOWS: usize = 8;

/// For every sharding constraint, packets on both of its sides: see the module doc.
pub fn co_location_pairs(
    ctx: &AdversarialContext<'_>,
) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let mut out = Vec::new();
    for pc in &ctx.analysis.constraints.pairs {
        let eqs = equalities(pc);
        let [a, b] = pc.ports;
        let mut rng = Rng::new(ctx.seed, &format!("pairs:{a}:{b}"));
        let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
        let p1s = spread(ctx, a, PAIR_FLOWS, &mut rng);
        let mut firsts = Vec::new();
        for p in &p1s {
            firsts.push(tb.send(a, frame(p, a)));
        }
        if a != b {
            // Replies to what left the NF (the NAT's external port), then the flows again,
            // then flows opened from the other side and their answers.
            let peers: Vec<Tuple> = p1s
                .iter()
                .zip(&firsts)
                .map(|(p, o)| peer_of(&tb, o, &eqs, p, &mut rng))
                .collect();
            for q in &peers {
                tb.send(b, frame(q, b));
            }
            for p in &p1s {
                tb.send(a, frame(p, a));
            }
            for q in &peers {
                tb.send(b, frame(q, b));
            }
            let opened = spread(ctx, b, PAIR_FLOWS / 2, &mut rng);
            let mut answers = Vec::new();
            for q in &opened {
                answers.push(tb.send(b, frame(q, b)));
            }
            for (q, o) in opened.iter().zip(&answers) {
                let p = match tb.reply_to(o) {
                    Some(r) if satisfies(&eqs, &r, q) => r,
                    _ => constrained_peer(&eqs, q, &mut rng, true),
                };
                tb.send(a, frame(&p, a));
            }
        } else {
            // Same port: many packets with the keyed fields equal and the others not.
            for _ in 0..3 {
                for p in &p1s {
                    let q = constrained_peer(&eqs, p, &mut rng, false);
                    tb.send(b, frame(&q, b));
                }
            }
        }
        out.push(tb.finish(
            format!("co-location:{}", pair_name(pc)),
            format!("both sides of the constraint: {}", constraint_words(pc)),
        ));
        out.push(odd_classes(ctx, pc, &eqs)?);
    }
    Ok(out)
}

/// ICMP and fragments on both sides of a constraint: classes the NIC hashes with other
/// fields (or not at all) than TCP/UDP, yet the NF may key the same state on them.
fn odd_classes(
    ctx: &AdversarialContext<'_>,
    pc: &PairConstraint,
    eqs: &[(Field, Field)],
) -> Result<AdversarialTrace, AdversarialError> {
    let [a, b] = pc.ports;
    let mut rng = Rng::new(ctx.seed, &format!("classes:{a}:{b}"));
    let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
    for p in spread(ctx, a, PAIR_FLOWS / 2, &mut rng) {
        // The flow as a fragment first (state keyed on the fragment's pseudo ports), then
        // its regular packets, ICMP between the same hosts, and the other side.
        tb.send(a, odd_frame(OddKind::LaterFragment, &p, a));
        let o = tb.send(a, frame(&p, a));
        tb.send(a, odd_frame(OddKind::FirstFragment, &p, a));
        tb.send(a, odd_frame(OddKind::Icmp, &p, a));
        let q = peer_of(&tb, &o, eqs, &p, &mut rng);
        tb.send(b, frame(&q, b));
        tb.send(b, odd_frame(OddKind::LaterFragment, &q, b));
        tb.send(b, odd_frame(OddKind::FirstFragment, &q, b));
        tb.send(b, odd_frame(OddKind::Icmp, &q, b));
    }
    // A fresh flow seen only as a later fragment, answered by a regular reply.
    for p in spread(ctx, a, PAIR_FLOWS / 2, &mut rng) {
        let o = tb.send(a, odd_frame(OddKind::LaterFragment, &p, a));
        let q = peer_of(&tb, &o, eqs, &p, &mut rng);
        tb.send(b, frame(&q, b));
    }
    Ok(tb.finish(
        format!("odd-classes:{}", pair_name(pc)),
        format!("fragments and ICMP of flows on both sides (the NIC hashes them by addresses only, or not at all): {}", constraint_words(pc)),
    ))
}

// ---------------------------------------------------------------------------------------
// RETA-bucket collisions
// ---------------------------------------------------------------------------------------

/// The sequential capacity of a state object, if it has one that fills.
fn capacity_of(kind: &StateKind) -> Option<u32> {
    match kind {
        StateKind::Table { capacity, .. }
        | StateKind::Map { capacity, .. }
        | StateKind::Vector { capacity, .. }
        | StateKind::DChain { capacity, .. } => Some(*capacity),
        StateKind::Sets { sets, .. } => Some(*sets),
        _ => None,
    }
}

/// The ttl of an expiring object.
fn ttl_of(kind: &StateKind) -> Option<u64> {
    match kind {
        StateKind::Table { ttl, .. }
        | StateKind::DChain { ttl, .. }
        | StateKind::Sketch { ttl, .. } => Some(*ttl),
        _ => None,
    }
}

/// Objects the parallel strategies split: written (not read-only) with a capacity.
fn written_with_capacity<'p>(ctx: &AdversarialContext<'p>) -> Vec<(&'p str, u32)> {
    ctx.program
        .states
        .iter()
        .filter_map(|s| {
            let written = ctx
                .analysis
                .objects
                .iter()
                .any(|o| o.name == s.name && !o.read_only);
            let cap = capacity_of(&s.kind)?;
            (written
                && matches!(
                    s.kind,
                    StateKind::Table { .. } | StateKind::DChain { .. } | StateKind::Map { .. }
                ))
            .then_some((s.name.as_str(), cap))
        })
        .collect()
}

/// Ports on which packets create entries of `object` (an `add`/`allocate`/`put`), and
/// the hashable packet fields its keys are built from there.
fn creating_ports(analysis: &Analysis, object: &str) -> Vec<(u16, Vec<Field>)> {
    let mut out: Vec<(u16, Vec<Field>)> = Vec::new();
    for site in analysis
        .sites
        .iter()
        .filter(|s| s.object == object && s.access == "write")
    {
        if !matches!(site.method.as_str(), "add" | "allocate" | "put") {
            continue;
        }
        let mut fields: Vec<Field> = site
            .keys
            .iter()
            .flat_map(|k| k.components.iter())
            .flat_map(|c| c.fields.iter())
            .filter_map(|f| Field::parse(f))
            .collect();
        // The key of `add` is usually the one `get` built: take those too.
        for other in analysis
            .sites
            .iter()
            .filter(|s| s.object == object && s.port == site.port)
        {
            fields.extend(
                other
                    .keys
                    .iter()
                    .filter(|k| k.form == "key")
                    .flat_map(|k| k.components.iter())
                    .flat_map(|c| c.fields.iter())
                    .filter_map(|f| Field::parse(f)),
            );
        }
        fields.sort();
        fields.dedup();
        match out.iter_mut().find(|(p, _)| *p == site.port) {
            Some((_, fs)) => {
                fs.extend(fields);
                fs.sort();
                fs.dedup();
            }
            None => out.push((site.port, fields)),
        }
    }
    out
}

/// Whether the entries `object` gets on `port` are keyed by the source MAC address (a
/// learning bridge): such keys are not RSS-hashable, and filling the table needs
/// distinct MACs rather than distinct IP tuples.
fn keyed_by_src_mac(analysis: &Analysis, object: &str, port: u16) -> bool {
    analysis
        .sites
        .iter()
        .filter(|s| s.object == object && s.port == port && s.access == "write")
        .filter(|s| matches!(s.method.as_str(), "add" | "allocate" | "put"))
        .flat_map(|s| s.keys.iter().flat_map(|k| k.components.iter()))
        .any(|c| c.fields.iter().any(|f| f == "pkt.eth.src"))
}

/// A source MAC per flow number: locally administered, unicast, distinct for every `k`.
fn flow_mac(k: u32) -> [u8; 6] {
    let b = k.to_be_bytes();
    [0x02, 0x10, b[0], b[1], b[2], b[3]]
}

/// A basis of the tuples that leave the RETA index unchanged: vectors of input-bit flips
/// (as `u128` masks over [`Tuple::hash_bits`]) confined to `fields`, each in the kernel
/// of the key's RETA-bit columns. Gaussian elimination over GF(2); low-order bits of the
/// fields come first, so the first basis vectors flip the bits that vary inside real
/// prefixes.
pub fn bucket_kernel(key: &[u8], reta_size: usize, fields: &[Field]) -> Vec<u128> {
    let bits = reta_size.trailing_zeros() as usize;
    let cols = reta_columns(key, bits);
    // Candidate input bits, least significant bit of each field first.
    let mut vary: Vec<usize> = Vec::new();
    let max_width = fields.iter().map(|f| f.width()).max().unwrap_or(0);
    for depth in 0..max_width {
        for f in fields {
            if depth < f.width() {
                vary.push(f.offset() + f.width() - 1 - depth);
            }
        }
    }
    let mask_of = |i: usize| 1u128 << (INPUT_BITS - 1 - i);
    // Pivots: (reduced column, pivot bit, combination of input bits).
    let mut pivots: Vec<(u64, u64, u128)> = Vec::new();
    let mut kernel = Vec::new();
    for &i in &vary {
        let mut v = cols[i];
        let mut comb = mask_of(i);
        for &(pv, pbit, pcomb) in &pivots {
            if v & pbit != 0 {
                v ^= pv;
                comb ^= pcomb;
            }
        }
        if v == 0 {
            kernel.push(comb);
        } else {
            let pbit = v & v.wrapping_neg();
            // Keep earlier pivots reduced on the new pivot bit.
            for p in pivots.iter_mut() {
                if p.0 & pbit != 0 {
                    p.0 ^= v;
                    p.2 ^= comb;
                }
            }
            pivots.push((v, pbit, comb));
        }
    }
    kernel
}

/// `count` distinct tuples whose RETA index under `key` equals that of `base`, differing
/// from it only in `fields` (the `k`-th is `base` plus the basis vectors selected by the
/// bits of `k`). `None` if the kernel is too small for `count` tuples.
pub fn colliding_tuples(
    base: &Tuple,
    key: &[u8],
    reta_size: usize,
    fields: &[Field],
    count: usize,
) -> Option<Vec<Tuple>> {
    let kernel = bucket_kernel(key, reta_size, fields);
    let needed = usize::BITS - count.saturating_sub(1).leading_zeros();
    if (kernel.len() as u32) < needed && count > 1 {
        return None;
    }
    let b = base.hash_bits();
    Some(
        (0..count)
            .map(|k| {
                let mut x = b;
                for (j, v) in kernel.iter().enumerate().take(usize::BITS as usize) {
                    if (k >> j) & 1 == 1 {
                        x ^= v;
                    }
                }
                Tuple::from_hash_bits(x, base.proto)
            })
            .collect(),
    )
}

/// For every written object with a capacity and every port that creates its entries:
/// more flows than one core's share (`shard_capacity(C, cores)`) but at most `C`, all
/// in one RETA bucket, then the packets that read them back (the other side of each
/// co-location constraint on the object, else the flows again).
pub fn reta_collisions(
    ctx: &AdversarialContext<'_>,
) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let Some(steering) = ctx.steering else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (object, cap) in written_with_capacity(ctx) {
        let share = shard_capacity(cap, ctx.cores);
        if share >= cap {
            continue; // one core: the per-core table is the sequential one
        }
        let count = (share as usize + (share as usize / 8).max(4)).min(cap as usize);
        for (port, fields) in creating_ports(ctx.analysis, object) {
            let Some(ps) = steering.port(port) else {
                continue;
            };
            if fields.is_empty() {
                continue; // keys RSS cannot hash (MACs): no bucket to aim at
            }
            let mut rng = Rng::new(ctx.seed, &format!("reta:{object}:{port}"));
            let base = rng.tuple(UDP);
            let Some(flows) = colliding_tuples(&base, &ps.key, ps.reta.len(), &fields, count)
            else {
                continue;
            };
            let bucket = maestro_runtime::rss::Toeplitz::new(&ps.key)
                .map(|t| (t.hash_unchecked(&base_input(&base)) as usize) & (ps.reta.len() - 1))
                .unwrap_or(0);
            let core = ps.reta.get(bucket).copied().unwrap_or(0);
            let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
            let firsts: Vec<Observation> = flows
                .iter()
                .map(|f| tb.send(port, frame(f, port)))
                .collect();
            let back = ctx.analysis.constraints.pairs.iter().find(|pc| {
                pc.ports[0] == port
                    && pc.ports[1] != port
                    && pc.sources.iter().any(|s| s.object == object)
            });
            match back {
                Some(pc) => {
                    let eqs = equalities(pc);
                    let other = pc.ports[1];
                    for (f, o) in flows.iter().zip(&firsts) {
                        let q = peer_of(&tb, o, &eqs, f, &mut rng);
                        tb.send(other, frame(&q, other));
                    }
                }
                None => {
                    for f in &flows {
                        tb.send(port, frame(f, port));
                    }
                }
            }
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            out.push(tb.finish(
                format!("reta-collision:{object}:{}", ctx.analysis.nf.device_name(port)),
                format!(
                    "{count} flows on {} varying only [{}], all in RETA bucket {bucket} (core {core}): more than the {share} entries of one core's `{object}` but within its {cap}",
                    ctx.analysis.nf.device_name(port),
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(out)
}

/// The 12-byte Toeplitz input of a tuple.
fn base_input(t: &Tuple) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&t.src.to_be_bytes());
    b[4..8].copy_from_slice(&t.dst.to_be_bytes());
    b[8..10].copy_from_slice(&t.sport.to_be_bytes());
    b[10..12].copy_from_slice(&t.dport.to_be_bytes());
    b
}

// ---------------------------------------------------------------------------------------
// Expiry boundaries
// ---------------------------------------------------------------------------------------

/// The probe offsets around `last + ttl`, with their names.
pub const EXPIRY_OFFSETS: [(&str, i64); 3] = [("before", -1), ("at", 0), ("after", 1)];

/// For every expiring object: an entry created at `t0`, then (in separate traces) a
/// probe at `t0 + ttl - 1`, `t0 + ttl` (both hit: expiry is strict) and `t0 + ttl + 1`
/// (miss), plus a chain where a hit at `t0 + ttl` refreshes the entry and a probe one ns
/// past the refreshed deadline misses. The probe is the other side of a co-location
/// constraint on the object (a WAN reply), or the creating packet again.
///
/// Every other way the analysis says packets read the object (another port, another key
/// such as a bridge's destination MAC, or no key at all such as a load balancer's backend
/// lookup) gets the same three probes, with the created entry's key values copied into
/// the read key (`keyed_probe`). Objects whose creating paths read other state first
/// get that state put in place before the entry and again just before each probe
/// (`prerequisites`); probes are aimed at the entry's core under the `sn` and `locks`
/// steerings.
pub fn expiry_boundaries(
    ctx: &AdversarialContext<'_>,
) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let nics = Nics::new(ctx);
    let mut out = Vec::new();
    for state in &ctx.program.states {
        let Some(ttl) = ttl_of(&state.kind) else {
            continue;
        };
        let object = state.name.as_str();
        let pc = ctx
            .analysis
            .constraints
            .pairs
            .iter()
            .filter(|pc| pc.sources.iter().any(|s| s.object == object))
            .max_by_key(|pc| pc.ports[0] != pc.ports[1]);
        let creating = creating_ports(ctx.analysis, object);
        let (create_port, probe_port, eqs) = match pc {
            Some(pc) => (pc.ports[0], pc.ports[1], Some(equalities(pc))),
            None => match creating.first() {
                Some((p, _)) => (*p, *p, None),
                None => continue,
            },
        };
        let mut rng = Rng::new(ctx.seed, &format!("expiry:{object}"));
        let flow = rng.tuple(UDP);
        let created = Headers::of(flow, create_port);
        let near = nics.cores(create_port, &created.frame(create_port));
        let needs = prerequisites(ctx.analysis, object);
        let primers: Vec<(u16, Vec<u8>)> = needs
            .iter()
            .map(|(port, _)| {
                let f = nics.aim(near, *port, &mut rng, |r| frame(&r.tuple(UDP), *port));
                (*port, f)
            })
            .collect();
        let needs_words = if needs.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = needs.iter().map(|(_, o)| o.as_str()).collect();
            format!(
                "; `{}` put in place first and again 2 ns before the probe",
                names.join("`, `")
            )
        };
        // The prerequisites, then the entry at t0.
        let open = || -> Result<(TraceBuilder, u64, Observation), AdversarialError> {
            let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
            if !primers.is_empty() {
                let t = tb.now;
                for (port, f) in &primers {
                    tb.send_at(*port, f.clone(), t);
                }
            }
            let t0 = tb.now;
            let o = tb.send_at(create_port, frame(&flow, create_port), t0);
            Ok((tb, t0, o))
        };
        // The prerequisites again 2 ns before a probe at `t` (they may have expired too);
        // no entry created at t0 changes state there.
        let reprime = |tb: &mut TraceBuilder, t0: u64, t: u64| {
            if t.saturating_sub(2) > t0 {
                for (port, f) in &primers {
                    tb.send_at(*port, f.clone(), t - 2);
                }
            }
        };
        let probe_of = |tb: &TraceBuilder, o: &Observation, rng: &mut Rng| match &eqs {
            Some(eqs) if create_port != probe_port => peer_of(tb, o, eqs, &flow, rng),
            _ => flow,
        };
        for (label, off) in EXPIRY_OFFSETS {
            let (mut tb, t0, o) = open()?;
            let probe = probe_of(&tb, &o, &mut rng);
            let t = t0.saturating_add(ttl).saturating_add_signed(off);
            reprime(&mut tb, t0, t);
            tb.send_at(probe_port, frame(&probe, probe_port), t);
            out.push(tb.finish(
                format!("expiry:{object}:{label}"),
                format!("`{object}` entry created at t0, probed at t0 + ttl {off:+} ns (ttl {ttl} ns; entries expire when their time < now - ttl){needs_words}"),
            ));
        }
        let (mut tb, t0, o) = open()?;
        let probe = probe_of(&tb, &o, &mut rng);
        let t1 = t0.saturating_add(ttl);
        reprime(&mut tb, t0, t1);
        tb.send_at(create_port, frame(&flow, create_port), t1);
        let t2 = t1.saturating_add(ttl);
        reprime(&mut tb, t1, t2);
        tb.send_at(probe_port, frame(&probe, probe_port), t2);
        tb.send_at(
            probe_port,
            frame(&probe, probe_port),
            t2.saturating_add(ttl).saturating_add(1),
        );
        out.push(tb.finish(
            format!("expiry:{object}:chain"),
            format!("`{object}` entry refreshed exactly at its deadline, then probed at the new deadline and one ns past the next{needs_words}"),
        ));

        // The other reads of the object.
        let ckey = creating_key(ctx.analysis, object, create_port);
        let cross = pc.is_some_and(|pc| pc.ports[0] != pc.ports[1]);
        for (port, rkey) in read_keys(ctx.analysis, object) {
            let main = (port == probe_port && cross)
                || ((port == create_port || port == probe_port) && rkey == ckey);
            if main {
                continue;
            }
            let fresh = |r: &mut Rng| {
                let (src_mac, dst_mac) = probe_macs(port);
                Headers {
                    tuple: r.tuple(UDP),
                    src_mac,
                    dst_mac,
                }
            };
            if keyed_probe(&created, &ckey, &rkey, fresh(&mut rng)).is_none() {
                continue;
            }
            let probe = nics.aim(near, port, &mut rng, |r| {
                keyed_probe(&created, &ckey, &rkey, fresh(r))
                    .unwrap_or_else(|| fresh(r))
                    .frame(port)
            });
            let how = key_words(&rkey);
            let device = ctx.analysis.nf.device_name(port);
            for (label, off) in EXPIRY_OFFSETS {
                let (mut tb, t0, _) = open()?;
                let t = t0.saturating_add(ttl).saturating_add_signed(off);
                reprime(&mut tb, t0, t);
                tb.send_at(port, probe.clone(), t);
                out.push(tb.finish(
                    format!("expiry:{object}:{label}:{device}-{how}"),
                    format!("`{object}` entry created at t0 on {}, read on {device} by {how} at t0 + ttl {off:+} ns (ttl {ttl} ns){needs_words}", ctx.analysis.nf.device_name(create_port)),
                ));
            }
        }
    }
    Ok(out)
}

/// Host MACs of probes sent from `port` (distinct from [`macs`], so that a probe keyed by
/// a destination MAC does not also refresh the entry it probes as its source).
fn probe_macs(port: u16) -> ([u8; 6], [u8; 6]) {
    let p = port as u8;
    ([0x02, 0, 0, 0, p, 0x03], [0x02, 0, 0, 0, p, 0x04])
}

/// A read key in words for trace names: `eth.dst`, `ip.src+ip.dst`, `index`.
fn key_words(key: &[Option<KeyField>]) -> String {
    if key.is_empty() {
        return "index".to_string();
    }
    key.iter()
        .map(|f| match f {
            Some(KeyField::Ip(f)) => short(f.name()).to_string(),
            Some(KeyField::EthSrc) => "eth.src".to_string(),
            Some(KeyField::EthDst) => "eth.dst".to_string(),
            None => "expr".to_string(),
        })
        .collect::<Vec<_>>()
        .join("+")
}

// ---------------------------------------------------------------------------------------
// Per-key limits
// ---------------------------------------------------------------------------------------

/// New values in [`limits`] that compete for the last slots of a bound.
pub const LIMIT_BURST: usize = 8;
/// Bounds larger than this are not filled (the traces would be long).
pub const MAX_LIMIT: u32 = 1 << 16;

/// A per-key bound that packets fill with distinct values of one header field, all under
/// one key: a set family's `per_set` (a port-scan detector's ports per source) or a
/// sketch's `threshold` (a connection limiter's flows per client).
struct Limit<'p> {
    object: &'p str,
    port: u16,
    /// The field whose distinct values count against the bound.
    element: Field,
    bound: u32,
    /// Deadlines probed, with whose ttl each is.
    ttls: Vec<(u64, String)>,
}

/// The ttl of a named object.
fn ttl_named(program: &NfProgram, name: &str) -> Option<u64> {
    program
        .states
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| ttl_of(&s.kind))
        .filter(|&t| t > 0)
}

/// The per-key bounds of the NF, from its state declarations and the analysis: where
/// packets add to each, and which header field to vary.
fn limits_of<'p>(ctx: &AdversarialContext<'p>) -> Vec<Limit<'p>> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    for state in &ctx.program.states {
        let object = state.name.as_str();
        match state.kind {
            StateKind::Sets { per_set, .. } => {
                // The first `insert` whose value is one hashable header field, and the
                // table whose index keys the sets (`sources` for `ports.insert(i, ..)`
                // with `i` from `sources.get`).
                let found = a
                    .ports
                    .iter()
                    .flat_map(|p| p.paths.iter())
                    .flat_map(|path| path.ops.iter().map(move |op| (path.port, op)))
                    .filter(|(_, op)| op.object == object && op.method == "insert")
                    .find_map(|(port, op)| {
                        let element = Field::parse(op.arg.as_deref()?)?;
                        let owner = op
                            .index
                            .as_deref()
                            .and_then(|i| i.split('.').next())
                            .filter(|o| *o != object)
                            .map(str::to_string);
                        Some((port, element, owner))
                    });
                let Some((port, element, owner)) = found else {
                    continue;
                };
                let ttls = owner
                    .and_then(|o| ttl_named(ctx.program, &o).map(|t| (t, o)))
                    .into_iter()
                    .collect();
                out.push(Limit {
                    object,
                    port,
                    element,
                    bound: per_set,
                    ttls,
                });
            }
            StateKind::Sketch { threshold, ttl, .. } => {
                // Where packets count (a write other than expiry), by which key; the
                // value varied is the first hashable field the key leaves out.
                let Some(site) = a
                    .sites
                    .iter()
                    .find(|s| s.object == object && s.access == "write" && s.method != "expire")
                else {
                    continue;
                };
                let key = site_key(site);
                let Some(element) = [Field::Sport, Field::Dport, Field::Src, Field::Dst]
                    .into_iter()
                    .find(|f| !key.contains(&Some(KeyField::Ip(*f))))
                else {
                    continue;
                };
                // The sketch's own ttl, and those of the entries created on the same
                // paths (a connection limiter's flow).
                let mut ttls: Vec<(u64, String)> = Vec::new();
                if ttl > 0 {
                    ttls.push((ttl, object.to_string()));
                }
                for s in a.sites.iter().filter(|s| {
                    creates(s)
                        && s.object != object
                        && s.paths.iter().any(|p| site.paths.contains(p))
                }) {
                    if let Some(t) = ttl_named(ctx.program, &s.object) {
                        if !ttls.iter().any(|(x, _)| *x == t) {
                            ttls.push((t, s.object.clone()));
                        }
                    }
                }
                out.push(Limit {
                    object,
                    port: site.port,
                    element,
                    bound: threshold,
                    ttls,
                });
            }
            _ => {}
        }
    }
    out
}

/// The deadlines of a filled bound that [`limits`] probes, with their names: the first
/// value's entries (a connection limiter's first flow) and the last packet's (a
/// port-scan detector's source, which every packet refreshes).
const LIMIT_DEADLINES: [&str; 2] = ["first", "last"];

/// Per-key bounds driven to the limit with the NF's own configuration (`Limit`): one
/// key (every other field fixed) gets `bound - 1` distinct values, then a burst of
/// [`LIMIT_BURST`] new values that compete for the last slot (aimed at alternating cores
/// under the `locks` steering, so that write paths race). Then, for each ttl of the
/// bound or of what is created with it, and each deadline of `LIMIT_DEADLINES`
/// (`t + ttl` for the first and the last packet of the fill), one trace per probe time
/// -1/0/+1 ns around it, and a `refreshed` trace where a read-only packet (the first
/// value again, after the fill and before any deadline) refreshes the entries first and
/// the probe comes 1 ns after the deadline: the refresh must keep them alive. Each probe
/// is the first value again, then a new value, at the same time: whether the bound still
/// holds decides both exactly where expiry does.
pub fn limits(ctx: &AdversarialContext<'_>) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let nics = Nics::new(ctx);
    let mut out = Vec::new();
    for lim in limits_of(ctx) {
        let (object, port, bound) = (lim.object, lim.port, lim.bound);
        let values = 1u64 << lim.element.width().min(32);
        let needed = u64::from(bound) + LIMIT_BURST as u64 * 9 + 2;
        if bound == 0 || bound > MAX_LIMIT || needed > values {
            continue;
        }
        let mut rng = Rng::new(ctx.seed, &format!("limit:{object}"));
        let key = rng.tuple(UDP);
        let start = rng.next_u64();
        // Distinct values by construction: start + j (mod the field's range).
        let with = |j: u64| {
            let mut t = key;
            t.set(lim.element, (start.wrapping_add(j) % values) as u32);
            t
        };
        let mut j = 0u64;
        let stored: Vec<Tuple> = (0..bound - 1)
            .map(|_| {
                j += 1;
                with(j - 1)
            })
            .collect();
        // The burst: new values, each the next one that lands on its target core.
        let mut burst = Vec::with_capacity(LIMIT_BURST);
        for b in 0..LIMIT_BURST {
            let target = (b % ctx.cores.max(1)) as u16;
            let mut t = with(j);
            j += 1;
            for _ in 0..8 {
                let on = nics
                    .locks
                    .as_ref()
                    .is_none_or(|m| m.steer(port, &frame(&t, port)).core == target);
                if on {
                    break;
                }
                t = with(j);
                j += 1;
            }
            burst.push(t);
        }
        let fresh = with(j);
        let first = stored.first().or(burst.first()).copied().unwrap_or(key);
        let needs = prerequisites(ctx.analysis, object);
        let near = nics.cores(port, &frame(&key, port));
        let primers: Vec<(u16, Vec<u8>)> = needs
            .iter()
            .map(|(p, _)| {
                (
                    *p,
                    nics.aim(near, *p, &mut rng, |r| frame(&r.tuple(UDP), *p)),
                )
            })
            .collect();
        // The prerequisites and the fill; gives the times of its first and last packets.
        let fill = |tb: &mut TraceBuilder| -> (u64, u64) {
            let t = tb.now;
            for (p, f) in &primers {
                tb.send_at(*p, f.clone(), t);
            }
            let t_first = tb.now;
            for t in stored.iter().chain(&burst) {
                tb.send(port, frame(t, port));
            }
            (t_first, tb.packets().last().map_or(t_first, |p| p.time_ns))
        };
        // The probes at `t`: the prerequisites (2 ns early), the first value, a new one.
        let probe = |tb: &mut TraceBuilder, t: u64| {
            let last = tb.packets().last().map_or(0, |p| p.time_ns);
            for (p, f) in &primers {
                tb.send_at(*p, f.clone(), t.saturating_sub(2).max(last));
            }
            tb.send_at(port, frame(&first, port), t);
            tb.send_at(port, frame(&fresh, port), t);
        };
        let words = format!(
            "`{object}` (bound {bound} per key) filled on {} with {} distinct `{}` values under one key, then {LIMIT_BURST} new ones racing for the last slot",
            ctx.analysis.nf.device_name(port),
            bound - 1,
            short(lim.element.name())
        );
        if lim.ttls.is_empty() {
            let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
            fill(&mut tb);
            let t = tb.now;
            probe(&mut tb, t);
            out.push(tb.finish(
                format!("limit:{object}"),
                format!("{words}, then the first value again and a new one"),
            ));
            continue;
        }
        let several = lim.ttls.len() > 1;
        for (ttl, whose) in &lim.ttls {
            for (d, deadline) in LIMIT_DEADLINES.iter().enumerate() {
                let name = |label: &str| {
                    if several {
                        format!("limit:{object}:{deadline}:{label}:{whose}")
                    } else {
                        format!("limit:{object}:{deadline}:{label}")
                    }
                };
                for (label, off) in EXPIRY_OFFSETS {
                    let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
                    let times = fill(&mut tb);
                    let from = if d == 0 { times.0 } else { times.1 };
                    probe(
                        &mut tb,
                        from.saturating_add(*ttl).saturating_add_signed(off),
                    );
                    out.push(tb.finish(
                        name(label),
                        format!("{words}; the first value again and a new one at the {deadline} packet's time + ttl {off:+} ns (`{whose}`'s ttl {ttl} ns)"),
                    ));
                }
                let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
                let (t_first, t_last) = fill(&mut tb);
                let from = if d == 0 { t_first } else { t_last };
                let first_deadline = t_first.saturating_add(*ttl);
                if first_deadline <= t_last.saturating_add(2) {
                    continue; // the fill outlasts the ttl: no room for a refresh
                }
                let t_read = t_last + (first_deadline - t_last) / 2;
                tb.send_at(port, frame(&first, port), t_read);
                probe(&mut tb, from.saturating_add(*ttl).saturating_add(1));
                out.push(tb.finish(
                    name("refreshed"),
                    format!("{words}; the first value again before any deadline (a read-only refresh), then the first value and a new one 1 ns after the {deadline} packet's time + ttl (`{whose}`'s ttl {ttl} ns): the refresh keeps the entries alive"),
                ));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Odd packets and full tables
// ---------------------------------------------------------------------------------------

/// Every [`OddKind`] from every port, each between two ordinary packets of one flow so
/// that an odd packet that corrupts state shows on the next ordinary one.
pub fn odd_packets(ctx: &AdversarialContext<'_>) -> Vec<AdversarialTrace> {
    let mut rng = Rng::new(ctx.seed, "odd");
    let mut packets = Vec::new();
    let mut now = BASE_TIME;
    let mut push = |port: u16, data: Vec<u8>, packets: &mut Vec<InputPacket>| {
        packets.push(InputPacket {
            port,
            time_ns: now,
            data,
        });
        now += STEP;
    };
    for port in 0..ctx.program.port_count.max(1) {
        let flow = rng.tuple(UDP);
        for kind in OddKind::ALL {
            push(port, frame(&flow, port), &mut packets);
            push(port, odd_frame(kind, &flow, port), &mut packets);
        }
        push(port, frame(&flow, port), &mut packets);
    }
    vec![AdversarialTrace {
        name: "odd-packets".to_string(),
        purpose: "non-IP, IPv6, VLAN, IPv4 options, fragments, truncated headers, ICMP and bad lengths from every port, between packets of one flow".to_string(),
        packets,
    }]
}

/// For every written object with a capacity `C` (up to [`MAX_FILL`]): `C` distinct keys
/// on a creating port within the ttl, 4 more (the table is full), the packets that read
/// them back, then fresh keys around the deadline of the first entry.
///
/// With the solved steering (`sn`), the `C` keys give the cores their shares
/// ([`shard_capacity`]) in order, core 0 first, so that the sequential table and core
/// 0's table fill together. The first entry (on core 0) is the sentinel: it is not read
/// back, so it is the oldest entry when the probes come. Each probe is a fresh key on the
/// sentinel's core and its read-back at the same time: at `t0 + ttl - 1` and `t0 + ttl`
/// the table is still full (expiry is strict), at `t0 + ttl + 1` the sentinel's slot is
/// free. Objects whose creating paths read other state get it first and again 2 ns
/// before each probe (`prerequisites`).
pub fn table_full(ctx: &AdversarialContext<'_>) -> Result<Vec<AdversarialTrace>, AdversarialError> {
    let nics = Nics::new(ctx);
    let mut out = Vec::new();
    for (object, cap) in written_with_capacity(ctx) {
        if cap > MAX_FILL {
            continue;
        }
        let Some((port, fields)) = creating_ports(ctx.analysis, object).into_iter().next() else {
            continue;
        };
        let ttl = ctx
            .program
            .states
            .iter()
            .find(|s| s.name == object)
            .and_then(|s| ttl_of(&s.kind))
            .filter(|&t| t > 0);
        let mut rng = Rng::new(ctx.seed, &format!("full:{object}"));
        let cap = cap as usize;
        // Distinct in the keyed fields by construction: candidate k is a random tuple
        // whose first keyed field has k XORed into a random base (no repeats).
        let key_field = fields.first().copied().unwrap_or(Field::Src);
        let base = rng.tuple(UDP).get(key_field);
        let distinct = 1u64 << key_field.width().min(32);
        // MAC-keyed state (a learning bridge): one source MAC per candidate, read back
        // by frames addressed to it from another port.
        let by_mac = fields.is_empty() && keyed_by_src_mac(ctx.analysis, object, port);
        let mut next_k: u32 = 0;
        let mut candidate = |rng: &mut Rng| -> (u32, Tuple, Vec<u8>) {
            let k = next_k;
            next_k = next_k.wrapping_add(1);
            let mut t = rng.tuple(UDP);
            t.set(key_field, base ^ k);
            let mut f = frame(&t, port);
            if by_mac && f.len() >= 12 {
                f[6..12].copy_from_slice(&flow_mac(k));
            }
            (k, t, f)
        };
        // Core quotas under `sn`: the shares in core order, `cap` in all.
        let mut quota: Vec<usize> = Vec::new();
        if nics.sn.is_some() {
            let share = shard_capacity(cap as u32, ctx.cores) as usize;
            let mut left = cap;
            for _ in 0..ctx.cores {
                quota.push(share.min(left));
                left -= share.min(left);
            }
        }
        let budget = (cap as u64)
            .saturating_mul(8)
            .saturating_add(4096)
            .min(distinct);
        let mut flows: Vec<(u32, Tuple, Vec<u8>)> = Vec::with_capacity(cap + 4);
        let mut tried = 0u64;
        while flows.len() < cap && tried < budget {
            tried += 1;
            let c = candidate(&mut rng);
            if quota.is_empty() {
                flows.push(c);
                continue;
            }
            let core = usize::from(nics.sn_core(port, &c.2));
            let first_on_zero = !flows.is_empty() || core == 0;
            if first_on_zero && quota.get(core).is_some_and(|&q| q > 0) {
                quota[core] -= 1;
                flows.push(c);
            }
        }
        // Steering that cannot meet the quotas (a key RSS does not hash): the rest
        // unsteered; then 4 over the capacity.
        while flows.len() < cap + 4 && tried < distinct {
            tried += 1;
            flows.push(candidate(&mut rng));
        }
        let needs = prerequisites(ctx.analysis, object);
        let near = flows
            .first()
            .map_or([None, None], |(_, _, f)| nics.cores(port, f));
        let primers: Vec<(u16, Vec<u8>)> = needs
            .iter()
            .map(|(p, _)| {
                (
                    *p,
                    nics.aim(near, *p, &mut rng, |r| frame(&r.tuple(UDP), *p)),
                )
            })
            .collect();
        let back = ctx.analysis.constraints.pairs.iter().find(|pc| {
            pc.ports[0] == port
                && pc.ports[1] != port
                && pc.sources.iter().any(|s| s.object == object)
        });
        let other = (port + 1) % ctx.program.port_count.max(1);
        // The packet that reads back the entry a packet `f` (key `k`, tuple `t`) created.
        let read_back = |tb: &TraceBuilder,
                         o: &Observation,
                         k: u32,
                         t: &Tuple,
                         f: &[u8],
                         rng: &mut Rng|
         -> (u16, Vec<u8>) {
            if by_mac {
                let cores = nics.cores(port, f);
                let data = nics.aim(cores, other, rng, |r| {
                    let mut data = frame(&r.tuple(UDP), other);
                    data[0..6].copy_from_slice(&flow_mac(k));
                    data
                });
                (other, data)
            } else if let Some(pc) = back {
                let q = peer_of(tb, o, &equalities(pc), t, rng);
                (pc.ports[1], frame(&q, pc.ports[1]))
            } else {
                (port, f.to_vec())
            }
        };
        let mut tb = TraceBuilder::new(ctx.program, ctx.parse_mode)?;
        let t_prime = tb.now;
        for (p, f) in &primers {
            tb.send_at(*p, f.clone(), t_prime);
        }
        let t0 = tb.now;
        let firsts: Vec<Observation> = flows
            .iter()
            .map(|(_, _, f)| tb.send(port, f.clone()))
            .collect();
        for ((k, t, f), o) in flows.iter().zip(&firsts).skip(1) {
            let (p, data) = read_back(&tb, o, *k, t, f, &mut rng);
            tb.send(p, data);
        }
        let mut probed = false;
        if let (Some(ttl), Some((_, _, f0))) = (ttl, flows.first()) {
            let cores0 = nics.cores(port, f0);
            for (_, off) in EXPIRY_OFFSETS {
                let t = t0.saturating_add(ttl).saturating_add_signed(off);
                let last = tb.packets().last().map_or(0, |p| p.time_ns);
                if t < last {
                    break; // the fill outlasted the ttl: no clean deadline left
                }
                for (p, f) in &primers {
                    tb.send_at(*p, f.clone(), t.saturating_sub(2).max(last));
                }
                let mut probe = None;
                let data = nics.aim(cores0, port, &mut rng, |r| {
                    let c = candidate(r);
                    let f = c.2.clone();
                    probe = Some(c);
                    f
                });
                let Some((k, tuple, _)) = probe else {
                    break;
                };
                let o = tb.send_at(port, data.clone(), t);
                let (p, back_data) = read_back(&tb, &o, k, &tuple, &data, &mut rng);
                tb.send_at(p, back_data, t);
                probed = true;
            }
        }
        let probes = if probed {
            format!(
                ", then a fresh key and its read-back at the first entry's deadline -1/0/+1 ns (ttl {} ns; the first entry is not read back)",
                ttl.unwrap_or(0)
            )
        } else {
            String::new()
        };
        out.push(tb.finish(
            format!("table-full:{object}"),
            format!(
                "{} distinct flows for `{object}` (capacity {cap}{}) within its ttl, then the packets that read them back{probes}",
                flows.len(),
                if nics.sn.is_some() { ", every core given its share" } else { "" }
            ),
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Random traces
// ---------------------------------------------------------------------------------------

/// Property-based random traces: a few flows from small address pools (so keys
/// collide), both ports, replies to what the sequential NF sent, time steps around the
/// ttl. A trace is a list of [`random::Op`]s, made concrete against the reference
/// interpreter, so that proptest shrinks the ops and every shrunk trace is still
/// meaningful (a reply still answers the port the NF chose).
pub mod random {
    use std::cell::RefCell;
    use std::sync::Arc;

    use maestro_analyzer::NfProgram;
    use maestro_runtime::packet::ParseMode;
    use maestro_runtime::InputPacket;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

    use super::{frame, odd_frame, OddKind, TraceBuilder, Tuple, TCP, UDP};

    /// What a packet is, relative to its flow.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// The flow itself from the LAN side.
        Request,
        /// The reply to the flow's last output (or its reversed tuple) from the WAN side.
        Reply,
        /// A later fragment of the flow (LAN side).
        Fragment,
        /// ICMP between the flow's hosts (LAN side).
        Icmp,
    }

    /// Time since the previous packet.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Gap {
        Same,
        Ns,
        Us,
        TtlMinus1,
        Ttl,
        TtlPlus1,
    }

    /// One packet of a random trace.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Op {
        pub flow: usize,
        pub kind: Kind,
        pub gap: Gap,
    }

    /// A random trace before it is made concrete.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Spec {
        pub flows: Vec<Tuple>,
        pub ops: Vec<Op>,
    }

    /// The ports and the time scale a trace is made for.
    #[derive(Clone, Debug)]
    pub struct Params {
        pub program: Arc<NfProgram>,
        pub parse_mode: ParseMode,
        /// Port of requests and of replies.
        pub lan: u16,
        pub wan: u16,
        /// The ttl gaps are measured with (the smallest ttl of the NF; 1 s without one).
        pub ttl: u64,
        pub max_flows: usize,
        pub max_len: usize,
    }

    impl Params {
        /// Defaults for an NF: its `lan`/`wan` devices (else ports 0 and 1), its
        /// smallest ttl, 4 flows, 24 packets.
        pub fn for_program(program: &NfProgram, parse_mode: ParseMode) -> Params {
            let lan = program.device_port("lan").unwrap_or(0);
            let wan = program
                .device_port("wan")
                .unwrap_or(if program.port_count > 1 { 1 } else { 0 });
            let ttl = program
                .states
                .iter()
                .filter_map(|s| super::ttl_of(&s.kind))
                .filter(|&t| t > 0)
                .min()
                .unwrap_or(1_000_000_000);
            Params {
                program: Arc::new(program.clone()),
                parse_mode,
                lan,
                wan,
                ttl,
                max_flows: 4,
                max_len: 24,
            }
        }
    }

    fn tuple_strategy() -> impl Strategy<Value = Tuple> {
        (
            0u32..4,
            0u32..3,
            prop::sample::select(vec![1000u16, 1001, 2000, 53]),
            prop::sample::select(vec![80u16, 53, 443]),
            prop::bool::ANY,
        )
            .prop_map(|(c, s, sport, dport, tcp)| Tuple {
                src: 0x0a00_0001 + c,
                dst: 0xc633_6401 + s,
                sport,
                dport,
                proto: if tcp { TCP } else { UDP },
            })
    }

    fn op_strategy(flows: usize) -> impl Strategy<Value = Op> {
        let kind = prop_oneof![4 => Just(Kind::Request), 4 => Just(Kind::Reply), 1 => Just(Kind::Fragment), 1 => Just(Kind::Icmp)];
        let gap = prop_oneof![
            2 => Just(Gap::Same),
            2 => Just(Gap::Ns),
            6 => Just(Gap::Us),
            1 => Just(Gap::TtlMinus1),
            1 => Just(Gap::Ttl),
            1 => Just(Gap::TtlPlus1),
        ];
        (0..flows.max(1), kind, gap).prop_map(|(flow, kind, gap)| Op { flow, kind, gap })
    }

    /// Specs of up to `max_flows` flows and `max_len` packets.
    pub fn spec_strategy(max_flows: usize, max_len: usize) -> impl Strategy<Value = Spec> {
        prop::collection::vec(tuple_strategy(), 1..=max_flows.max(1)).prop_flat_map(move |flows| {
            let n = flows.len();
            prop::collection::vec(op_strategy(n), 1..=max_len.max(1)).prop_map(move |ops| Spec {
                flows: flows.clone(),
                ops,
            })
        })
    }

    /// Makes a spec concrete: requests on `lan`, replies on `wan` to the flow's last
    /// output as the reference interpreter produced it.
    pub fn concretize(params: &Params, spec: &Spec) -> Vec<InputPacket> {
        let Ok(mut tb) = TraceBuilder::new(&params.program, params.parse_mode) else {
            return Vec::new();
        };
        let mut last_reply: Vec<Option<Tuple>> = vec![None; spec.flows.len()];
        let mut t = super::BASE_TIME;
        for op in &spec.ops {
            let Some(flow) = spec.flows.get(op.flow) else {
                continue;
            };
            t = t.saturating_add(match op.gap {
                Gap::Same => 0,
                Gap::Ns => 1,
                Gap::Us => 1_000,
                Gap::TtlMinus1 => params.ttl.saturating_sub(1),
                Gap::Ttl => params.ttl,
                Gap::TtlPlus1 => params.ttl.saturating_add(1),
            });
            let (port, data) = match op.kind {
                Kind::Request => (params.lan, frame(flow, params.lan)),
                Kind::Reply => {
                    let r = last_reply[op.flow].unwrap_or_else(|| flow.reversed());
                    (params.wan, frame(&r, params.wan))
                }
                Kind::Fragment => (
                    params.lan,
                    odd_frame(OddKind::LaterFragment, flow, params.lan),
                ),
                Kind::Icmp => (params.lan, odd_frame(OddKind::Icmp, flow, params.lan)),
            };
            let obs = tb.send_at(port, data, t);
            if port == params.lan {
                if let Some(r) = tb.reply_to(&obs) {
                    last_reply[op.flow] = Some(r);
                }
            }
        }
        tb.packets().to_vec()
    }

    /// Random concrete traces.
    pub fn trace_strategy(params: Params) -> impl Strategy<Value = Vec<InputPacket>> {
        let p = params.clone();
        spec_strategy(params.max_flows, params.max_len).prop_map(move |s| concretize(&p, &s))
    }

    /// A deterministic runner for `cases` cases under `seed` (no failure files).
    pub fn runner(cases: u32, seed: u64) -> TestRunner {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 8) as u8) ^ (i as u8);
        }
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    /// Runs up to `cases` random traces; at the first on which `diverges` is true,
    /// shrinks it and returns the minimal failing trace (with its spec). `None`: no
    /// random trace diverged.
    pub fn shrink(
        params: &Params,
        cases: u32,
        seed: u64,
        diverges: impl FnMut(&[InputPacket]) -> bool,
    ) -> Option<(Spec, Vec<InputPacket>)> {
        let mut runner = runner(cases, seed);
        let pred = RefCell::new(diverges);
        let p = params.clone();
        let result = runner.run(&spec_strategy(params.max_flows, params.max_len), |spec| {
            let packets = concretize(&p, &spec);
            let failed = (pred.borrow_mut())(&packets);
            if failed {
                Err(TestCaseError::fail("diverges"))
            } else {
                Ok(())
            }
        });
        match result {
            Err(TestError::Fail(_, spec)) => {
                let packets = concretize(params, &spec);
                Some((spec, packets))
            }
            _ => None,
        }
    }
}
