//! The streaming generator: [`TraceGen`].
//!
//! Construction builds, once, a frame template per protocol (with etherparse, so the
//! layout, lengths and flags are etherparse's) and a compact table of flows with their
//! checksums precomputed. Each packet is then one random flow choice, one copy of the
//! template into the output `Vec<u8>` and a few fixed-offset patches: no other allocation,
//! no per-packet checksum pass, memory independent of the trace length.

use std::collections::HashSet;

use etherparse::PacketBuilder;
use maestro_runtime::InputPacket;
use rand::distributions::{Bernoulli, Distribution, Uniform};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Cidr, TraceConfig, TraceError};

/// ChaCha stream of the flow table; packets use [`PACKET_STREAM`]. Keeping them apart
/// means packet-level knobs never change the flows, and later flow-level features (churn)
/// can take their own streams.
const FLOW_STREAM: u64 = 0;
const PACKET_STREAM: u64 = 1;

// Fixed offsets: Ethernet II without VLAN, IPv4 without options.
const IP: usize = 14;
const IP_CSUM: usize = IP + 10;
const IP_SRC: usize = IP + 12;
const IP_DST: usize = IP + 16;
const L4: usize = IP + 20;
const L4_SPORT: usize = L4;
const L4_DPORT: usize = L4 + 2;
const UDP_CSUM: usize = L4 + 6;
const TCP_CSUM: usize = L4 + 16;
const UDP_HDR: usize = 8;
const TCP_HDR: usize = 20;

/// MAC address of the NF's own interface on `port`: `02:00:00:00:PH:PL` (port big-endian),
/// which for ports below 256 is the NF library's default `lan_mac`/`wan_mac`
/// (`02:00:00:00:00:0P`). Generated frames are addressed to it.
pub fn nf_mac(port: u16) -> [u8; 6] {
    let [h, l] = port.to_be_bytes();
    [0x02, 0, 0, 0, h, l]
}

/// MAC address of the (single, simulated) host behind `port`: `02:00:00:01:PH:PL`.
/// Generated frames arriving on `port` come from it. Locally administered and unicast.
pub fn host_mac(port: u16) -> [u8; 6] {
    let [h, l] = port.to_be_bytes();
    [0x02, 0, 0, 0x01, h, l]
}

/// One flow, stored in wire order so that writing it is plain byte copies.
///
/// The checksums are the same in both directions: swapping source and destination
/// addresses (and ports) does not change a one's-complement sum, and nothing else in the
/// headers depends on the direction.
#[derive(Clone, Copy, Debug)]
struct Flow {
    src: [u8; 4],
    dst: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    ip_csum: [u8; 2],
    l4_csum: [u8; 2],
    tcp: bool,
    /// Whether the flow's first (LAN-side) packet has been generated.
    started: bool,
}

/// A complete frame for one protocol at the configured size, with the parts that do not
/// depend on the flow (lengths, TTL, flags, zero payload), and the one's-complement sums
/// of those constant parts, from which each flow's checksums follow in O(1).
struct Template {
    frame: Vec<u8>,
    ip_base: u32,
    l4_base: u32,
    csum_at: usize,
    udp: bool,
}

impl Template {
    fn new(frame_len: usize, tcp: bool) -> Result<Self, TraceError> {
        let l4_hdr = if tcp { TCP_HDR } else { UDP_HDR };
        // Validation guarantees frame_len >= 60 > 54, the largest header stack.
        let payload = vec![0u8; frame_len.saturating_sub(L4 + l4_hdr)];
        // Placeholder MACs, addresses and ports: all patched per flow/packet. Zero
        // addresses and ports make the base sums below simply "the rest of the header".
        let eth = PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4([0; 4], [0; 4], 64);
        let mut frame = Vec::with_capacity(frame_len);
        let built = if tcp {
            // A mid-conversation ACK segment: NFs here key on 5-tuples and ignore TCP
            // state, and a constant header keeps the checksum precomputable.
            eth.tcp(0, 0, 0, 65535).ack(0).write(&mut frame, &payload)
        } else {
            eth.udp(0, 0).write(&mut frame, &payload)
        };
        built.map_err(|e| TraceError::Template(e.to_string()))?;
        if frame.len() != frame_len {
            return Err(TraceError::Template(format!(
                "etherparse built {} bytes instead of {frame_len}",
                frame.len()
            )));
        }
        let csum_at = if tcp { TCP_CSUM } else { UDP_CSUM };
        // Constant parts only: zero the checksum fields before summing.
        let mut hdr = frame[..L4 + l4_hdr].to_vec();
        hdr[IP_CSUM..IP_CSUM + 2].fill(0);
        hdr[csum_at..csum_at + 2].fill(0);
        let ip_base = ones_sum(&hdr[IP..L4]);
        let l4_len = (frame_len - L4) as u32;
        let proto = if tcp { 6 } else { 17 };
        // Pseudo-header protocol and length, plus the L4 header; the payload is zeros and
        // adds nothing.
        let l4_base = ones_sum(&hdr[L4..]) + proto + l4_len;
        Ok(Template {
            frame,
            ip_base,
            l4_base,
            csum_at,
            udp: !tcp,
        })
    }

    /// IPv4 header and L4 checksums of a flow.
    fn checksums(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> (u16, u16) {
        let addrs = ones_sum(&src) + ones_sum(&dst);
        let ip = !fold(self.ip_base + addrs);
        let mut l4 = !fold(self.l4_base + addrs + u32::from(sport) + u32::from(dport));
        if self.udp && l4 == 0 {
            l4 = 0xffff; // RFC 768: a computed 0 is sent as all ones (0 = "no checksum").
        }
        (ip, l4)
    }
}

/// Sum of big-endian 16-bit words (odd tail padded with zero), not yet folded.
fn ones_sum(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut s: u32 = chunks
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A streaming synthetic trace: an iterator of [`InputPacket`]s.
///
/// Each packet picks a flow uniformly at random. A flow's first packet goes LAN → WAN
/// (arriving on `lan_port`); later ones are, with probability `reply_ratio`, its reply
/// (reversed 5-tuple, arriving on `wan_port`), else again LAN → WAN.
///
/// Frames are Ethernet II, IPv4 (no options, TTL 64, DF, ID 0) and UDP or TCP (ACK flag,
/// sequence and acknowledgment numbers 0), with valid checksums and a zero payload, sent
/// from [`host_mac`]`(port)` to [`nf_mac`]`(port)` of the arrival port.
///
/// Memory is O(flows) and independent of the trace length.
pub struct TraceGen {
    config: TraceConfig,
    rng: ChaCha8Rng,
    pick: Uniform<u32>,
    reply: Option<Bernoulli>,
    flows: Vec<Flow>,
    udp: Template,
    tcp: Template,
    /// Destination then source MAC, for arrivals on the LAN and on the WAN port.
    macs: [[u8; 12]; 2],
    emitted: u64,
    // Exact timestamps without 128-bit division: time = start + q*i + floor(r*i / rate),
    // carried incrementally as (time, remainder).
    time_ns: u64,
    time_rem: u64,
    step_q: u64,
    step_r: u64,
}

impl TraceGen {
    /// Validates `config` and builds the flow table (O(flows) time and memory).
    pub fn new(config: TraceConfig) -> Result<TraceGen, TraceError> {
        config.validate()?;
        let frame_len = config.frame_len();
        let udp = Template::new(frame_len, false)?;
        let tcp = Template::new(frame_len, true)?;

        let mut flow_rng = ChaCha8Rng::seed_from_u64(config.seed);
        flow_rng.set_stream(FLOW_STREAM);
        let flows = build_flows(&config, &udp, &tcp, &mut flow_rng);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(PACKET_STREAM);

        let reply = if config.reply_ratio > 0.0 {
            Some(
                Bernoulli::new(config.reply_ratio).map_err(|_| TraceError::Ratio {
                    what: "reply_ratio",
                    value: config.reply_ratio,
                })?,
            )
        } else {
            None
        };
        let mac_pair = |port: u16| {
            let mut m = [0u8; 12];
            m[..6].copy_from_slice(&nf_mac(port));
            m[6..].copy_from_slice(&host_mac(port));
            m
        };
        Ok(TraceGen {
            pick: Uniform::new(0, config.flows.count),
            reply,
            macs: [mac_pair(config.lan_port), mac_pair(config.wan_port)],
            time_ns: config.start_ns,
            time_rem: 0,
            step_q: 1_000_000_000 / config.rate_pps,
            step_r: 1_000_000_000 % config.rate_pps,
            emitted: 0,
            flows,
            udp,
            tcp,
            rng,
            config,
        })
    }

    /// The (validated) configuration this trace follows.
    pub fn config(&self) -> &TraceConfig {
        &self.config
    }

    /// Packets still to come.
    pub fn remaining(&self) -> u64 {
        self.config.packets - self.emitted
    }

    /// Like [`Iterator::next`], but writes the frame into `buf` (cleared first) instead of
    /// a fresh `Vec`, and returns `(port, time_ns)`. Lets writers reuse one buffer.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Option<(u16, u64)> {
        let (flow, reply, port, time) = self.step()?;
        let t = if flow.tcp { &self.tcp } else { &self.udp };
        buf.clear();
        buf.extend_from_slice(&t.frame);
        patch(buf, &flow, reply, &self.macs[usize::from(reply)], t.csum_at);
        Some((port, time))
    }

    /// Advances the trace by one packet: which flow, whether it is a reply, its port and
    /// timestamp.
    fn step(&mut self) -> Option<(Flow, bool, u16, u64)> {
        if self.emitted == self.config.packets {
            return None;
        }
        if self.emitted > 0 {
            // Validation proved the last timestamp fits, so these cannot overflow.
            self.time_ns += self.step_q;
            self.time_rem += self.step_r;
            if self.time_rem >= self.config.rate_pps {
                self.time_rem -= self.config.rate_pps;
                self.time_ns += 1;
            }
        }
        self.emitted += 1;
        let i = self.pick.sample(&mut self.rng) as usize;
        let flow = &mut self.flows[i];
        let reply = flow.started && self.reply.is_some_and(|b| b.sample(&mut self.rng));
        flow.started = true;
        let port = if reply {
            self.config.wan_port
        } else {
            self.config.lan_port
        };
        Some((*flow, reply, port, self.time_ns))
    }
}

/// Writes a flow's direction-dependent fields into a copy of its template.
#[inline]
fn patch(frame: &mut [u8], f: &Flow, reply: bool, macs: &[u8; 12], csum_at: usize) {
    let (src, dst, sport, dport) = if reply {
        (&f.dst, &f.src, &f.dport, &f.sport)
    } else {
        (&f.src, &f.dst, &f.sport, &f.dport)
    };
    frame[..12].copy_from_slice(macs);
    frame[IP_CSUM..IP_CSUM + 2].copy_from_slice(&f.ip_csum);
    frame[IP_SRC..IP_SRC + 4].copy_from_slice(src);
    frame[IP_DST..IP_DST + 4].copy_from_slice(dst);
    frame[L4_SPORT..L4_SPORT + 2].copy_from_slice(sport);
    frame[L4_DPORT..L4_DPORT + 2].copy_from_slice(dport);
    frame[csum_at..csum_at + 2].copy_from_slice(&f.l4_csum);
}

impl Iterator for TraceGen {
    type Item = InputPacket;

    fn next(&mut self) -> Option<InputPacket> {
        let (flow, reply, port, time_ns) = self.step()?;
        let t = if flow.tcp { &self.tcp } else { &self.udp };
        // The only allocation per packet: the output frame itself.
        let mut data = t.frame.clone();
        patch(
            &mut data,
            &flow,
            reply,
            &self.macs[usize::from(reply)],
            t.csum_at,
        );
        Some(InputPacket {
            port,
            time_ns,
            data,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining()) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl std::iter::FusedIterator for TraceGen {}

/// Draws `count` distinct flows. Exactly `round(count * udp_share)` are UDP, assigned by
/// sampling without replacement so the protocol is independent of the flow's position.
/// A flow is rejected if its 5-tuple, or its reverse, is already taken (so a reply of
/// one flow can never look like another flow's forward packet). The tuple space is at
/// least 64,512 × 65,535 per address pair, far above [`MAX_FLOWS`](crate::MAX_FLOWS), so
/// rejections stay rare.
fn build_flows(
    config: &TraceConfig,
    udp: &Template,
    tcp: &Template,
    rng: &mut ChaCha8Rng,
) -> Vec<Flow> {
    let spec = &config.flows;
    let n = spec.count;
    let mut udp_left = ((f64::from(n) * spec.udp_share).round() as u32).min(n);
    let mut flows = Vec::with_capacity(n as usize);
    let mut taken: HashSet<u128> = HashSet::with_capacity(n as usize);
    for i in 0..n {
        let is_udp = rng.gen_range(0..n - i) < udp_left;
        udp_left -= u32::from(is_udp);
        let proto: u8 = if is_udp { 17 } else { 6 };
        let (src, dst, sport, dport) = loop {
            let src = draw_addr(&spec.src_prefix, rng);
            let dst = draw_addr(&spec.dst_prefix, rng);
            if src == dst {
                continue;
            }
            let sport: u16 = rng.gen_range(1024..=65535);
            let dport: u16 = rng.gen_range(1..=65535);
            let fwd = tuple_key(src, dst, sport, dport, proto);
            let rev = tuple_key(dst, src, dport, sport, proto);
            if taken.insert(fwd.min(rev)) {
                break (src, dst, sport, dport);
            }
        };
        let (src, dst) = (src.to_be_bytes(), dst.to_be_bytes());
        let t = if is_udp { udp } else { tcp };
        let (ip_csum, l4_csum) = t.checksums(src, dst, sport, dport);
        flows.push(Flow {
            src,
            dst,
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            ip_csum: ip_csum.to_be_bytes(),
            l4_csum: l4_csum.to_be_bytes(),
            tcp: !is_udp,
            started: false,
        });
    }
    flows
}

/// A uniformly random usable address of `prefix` (rejection sampling; validation made
/// sure at least half of the prefix is usable).
fn draw_addr(prefix: &Cidr, rng: &mut ChaCha8Rng) -> u32 {
    loop {
        let a = prefix.network_u32() | (rng.gen::<u32>() & prefix.host_mask());
        if prefix.usable(a) {
            return a;
        }
    }
}

fn tuple_key(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> u128 {
    (u128::from(src) << 72)
        | (u128::from(dst) << 40)
        | (u128::from(sport) << 24)
        | (u128::from(dport) << 8)
        | u128::from(proto)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4Header, SlicedPacket, TcpHeader, UdpHeader};

    #[test]
    fn precomputed_checksums_match_etherparse() {
        for tcp in [false, true] {
            for len in [60usize, 61, 101, 1514] {
                let t = Template::new(len, tcp).unwrap();
                let mut rng = ChaCha8Rng::seed_from_u64(len as u64);
                for _ in 0..200 {
                    let (src, dst) = (rng.gen::<[u8; 4]>(), rng.gen::<[u8; 4]>());
                    let (sport, dport) = (rng.gen::<u16>(), rng.gen::<u16>());
                    let (ip, l4) = t.checksums(src, dst, sport, dport);
                    let mut f = t.frame.clone();
                    f[IP_SRC..IP_SRC + 4].copy_from_slice(&src);
                    f[IP_DST..IP_DST + 4].copy_from_slice(&dst);
                    f[L4_SPORT..L4_SPORT + 2].copy_from_slice(&sport.to_be_bytes());
                    f[L4_DPORT..L4_DPORT + 2].copy_from_slice(&dport.to_be_bytes());
                    let (iph, _) = Ipv4Header::from_slice(&f[IP..]).unwrap();
                    assert_eq!(ip, iph.calc_header_checksum());
                    let payload = &f[L4 + if tcp { TCP_HDR } else { UDP_HDR }..];
                    let want = if tcp {
                        let (h, _) = TcpHeader::from_slice(&f[L4..]).unwrap();
                        h.calc_checksum_ipv4(&iph, payload).unwrap()
                    } else {
                        let (h, _) = UdpHeader::from_slice(&f[L4..]).unwrap();
                        h.calc_checksum_ipv4(&iph, payload).unwrap()
                    };
                    assert_eq!(l4, want, "tcp={tcp} len={len}");
                    assert!(SlicedPacket::from_ethernet(&f).is_ok());
                }
            }
        }
    }

    #[test]
    fn incremental_time_matches_division() {
        for rate in [1u64, 3, 7, 999_999, 1_000_000, 1_000_000_007, 3_000_000_000] {
            let cfg = TraceConfig {
                rate_pps: rate,
                start_ns: 5,
                packets: 2000,
                flows: crate::FlowSpec {
                    count: 3,
                    ..Default::default()
                },
                ..Default::default()
            };
            let mut g = TraceGen::new(cfg.clone()).unwrap();
            let mut buf = Vec::new();
            let mut i = 0;
            while let Some((_, t)) = g.next_into(&mut buf) {
                assert_eq!(Some(t), cfg.time_of(i), "rate {rate} packet {i}");
                i += 1;
            }
            assert_eq!(i, 2000);
        }
    }
}
