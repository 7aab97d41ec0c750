//! The streaming generator: [`TraceGen`].
//!
//! Construction builds, once, a frame template per protocol at the largest frame size
//! (with etherparse, so the layout and flags are etherparse's), a table of the sizes in
//! use with their length fields and the constant parts of their checksums, and a compact
//! table of flows with the per-flow parts of the checksums precomputed. Each packet is
//! then a few random draws, one copy of a template prefix into the output `Vec<u8>` and
//! a few fixed-offset patches: no other allocation, no per-packet checksum pass, memory
//! independent of the trace length.
//!
//! Per packet, in this order (see [`TraceGen`] for the promises):
//! 1. the clock advances by the previous packet's share of the rate;
//! 2. churn replacements that are due happen (each queues its new flow's first packet);
//! 3. the flow is: a queued first packet of a new flow, else a keep-alive that is due,
//!    else a draw from the popularity distribution;
//! 4. the size is drawn; a drawn flow that has started may be a reply.

use std::collections::{HashSet, VecDeque};

use etherparse::PacketBuilder;
use maestro_runtime::InputPacket;
use rand::distributions::{Bernoulli, Distribution, Uniform};
use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::alias::Alias;
use crate::config::{wire_bits, Cidr, FlowSpec, TraceConfig, TraceError, FCS_LEN, MAX_FRAME_SIZE};
use crate::stats::{Recorder, TraceStats};

/// ChaCha streams of the seed. Keeping them apart means packet-level knobs never change
/// the flows, popularity never changes the flow table, and so on.
const FLOW_STREAM: u64 = 0;
const PACKET_STREAM: u64 = 1;
const RANK_STREAM: u64 = 2;
const CHURN_STREAM: u64 = 3;

/// "Never sent" in [`KeepAlive::last_fwd`].
const NEVER: u64 = u64::MAX;

/// Most retired 5-tuples held back from reuse at once (about 17 MB with their set
/// entries). Beyond it (churn × 2 × expiry above 262,144, e.g. 88M flows/min with a 100 ms
/// expiry) the oldest are released early, and a reuse within the hold then needs a random
/// draw to hit one of the most recently retired tuples: a chance of at most (tuples
/// held) / (tuple space) per new flow, below 2^-40 with the default prefixes.
const MAX_HOLD: usize = 1 << 18;

// Fixed offsets: Ethernet II without VLAN, IPv4 without options.
const IP: usize = 14;
const IP_LEN: usize = IP + 2;
const IP_CSUM: usize = IP + 10;
const IP_SRC: usize = IP + 12;
const IP_DST: usize = IP + 16;
const L4: usize = IP + 20;
const L4_SPORT: usize = L4;
const L4_DPORT: usize = L4 + 2;
const TCP_SEQ: usize = L4 + 4;
const TCP_ACK: usize = L4 + 8;
const UDP_LEN: usize = L4 + 4;
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
/// The checksum parts are the same in both directions: swapping source and destination
/// addresses (and ports) does not change a one's-complement sum.
#[derive(Clone, Copy, Debug)]
struct Flow {
    src: [u8; 4],
    dst: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    /// One's-complement sum (unfolded) of both addresses.
    addr_sum: u32,
    /// Sum of both ports.
    port_sum: u32,
    /// Timestamp of the flow's first (LAN) packet, once `started`.
    first_ns: u64,
    /// TCP: the next sequence number of the LAN side and of the WAN side. Each segment
    /// carries its side's number and acknowledges the other side's, and advances its side
    /// by its payload, so Wireshark's TCP analysis sees a consistent stream.
    seq: [u32; 2],
    tcp: bool,
    /// Whether the flow's first (LAN-side) packet has been generated.
    started: bool,
}

impl Flow {
    fn new(src: u32, dst: u32, sport: u16, dport: u16, tcp: bool) -> Flow {
        // Initial sequence numbers from the tuple (no random draw, so adding them kept
        // every trace's flow table): a SplitMix64 finalizer of the key.
        let mut z = (tuple_key(src, dst, sport, dport, 0) as u64)
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            ^ ((u64::from(src) << 32) | u64::from(dst));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let (src, dst) = (src.to_be_bytes(), dst.to_be_bytes());
        Flow {
            seq: [z as u32, (z >> 32) as u32],
            src,
            dst,
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            addr_sum: ones_sum(&src) + ones_sum(&dst),
            port_sum: u32::from(sport) + u32::from(dport),
            first_ns: 0,
            tcp,
            started: false,
        }
    }

    /// The key the uniqueness check uses: the smaller of the forward and reverse tuples.
    fn key(&self) -> u128 {
        let proto = if self.tcp { 6 } else { 17 };
        let (src, dst) = (u32::from_be_bytes(self.src), u32::from_be_bytes(self.dst));
        let (sport, dport) = (
            u16::from_be_bytes(self.sport),
            u16::from_be_bytes(self.dport),
        );
        tuple_key(src, dst, sport, dport, proto).min(tuple_key(dst, src, dport, sport, proto))
    }
}

/// A complete frame for one protocol at the largest size, with the parts that depend on
/// neither the flow nor the size (TTL, flags, zero payload), the length and checksum
/// fields zeroed, and the one's-complement sums of those constant parts.
struct Template {
    frame: Vec<u8>,
    ip_base: u32,
    l4_base: u32,
    csum_at: usize,
    udp: bool,
}

impl Template {
    fn new(tcp: bool) -> Result<Self, TraceError> {
        let l4_hdr = if tcp { TCP_HDR } else { UDP_HDR };
        let max_len = usize::from(MAX_FRAME_SIZE - FCS_LEN);
        let payload = vec![0u8; max_len - (L4 + l4_hdr)];
        // Placeholder MACs, addresses and ports: all patched per flow/packet.
        let eth = PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4([0; 4], [0; 4], 64);
        let mut frame = Vec::with_capacity(max_len);
        let built = if tcp {
            // A mid-conversation ACK segment: NFs here key on 5-tuples and ignore TCP
            // state. Sequence and acknowledgment numbers are patched per packet.
            eth.tcp(0, 0, 0, 65535).ack(0).write(&mut frame, &payload)
        } else {
            eth.udp(0, 0).write(&mut frame, &payload)
        };
        built.map_err(|e| TraceError::Template(e.to_string()))?;
        if frame.len() != max_len {
            return Err(TraceError::Template(format!(
                "etherparse built {} bytes instead of {max_len}",
                frame.len()
            )));
        }
        let csum_at = if tcp { TCP_CSUM } else { UDP_CSUM };
        // Size-dependent and flow-dependent fields: zero, patched per packet.
        frame[IP_LEN..IP_LEN + 2].fill(0);
        frame[IP_CSUM..IP_CSUM + 2].fill(0);
        frame[csum_at..csum_at + 2].fill(0);
        if !tcp {
            frame[UDP_LEN..UDP_LEN + 2].fill(0);
        }
        let ip_base = ones_sum(&frame[IP..L4]);
        let proto = if tcp { 6 } else { 17 };
        // The pseudo-header's protocol (its length is per size); the payload is zeros
        // and adds nothing.
        let l4_base = ones_sum(&frame[L4..L4 + l4_hdr]) + proto;
        Ok(Template {
            frame,
            ip_base,
            l4_base,
            csum_at,
            udp: !tcp,
        })
    }
}

/// One frame size in use: its length fields and the size-dependent checksum bases, per
/// protocol (`[udp, tcp]`), and its share of the clock.
#[derive(Clone, Debug)]
struct SizeClass {
    /// Frame size with FCS.
    size: u16,
    /// Frame length without FCS.
    len: usize,
    ip_len: [u8; 2],
    l4_len: [u8; 2],
    ip_base: [u32; 2],
    l4_base: [u32; 2],
    /// The clock advances `step_q + step_r / divisor` ns after a packet of this size.
    step_q: u64,
    step_r: u64,
}

impl SizeClass {
    fn new(size: u16, templates: &[Template; 2], config: &TraceConfig) -> SizeClass {
        let len = usize::from(size - FCS_LEN);
        let ip_len = (len - IP) as u32;
        let l4_len = (len - L4) as u32;
        let [udp, tcp] = templates;
        // With rate_bps a packet takes its wire bits; otherwise every packet 1/rate_pps s.
        let (num, div) = match config.rate_bps {
            Some(bps) => (wire_bits(size) * 1_000_000_000, bps),
            None => (1_000_000_000, config.rate_pps),
        };
        SizeClass {
            size,
            len,
            ip_len: (ip_len as u16).to_be_bytes(),
            l4_len: (l4_len as u16).to_be_bytes(),
            ip_base: [udp.ip_base + ip_len, tcp.ip_base + ip_len],
            // UDP counts its length twice: in the pseudo-header and in its own header.
            l4_base: [udp.l4_base + 2 * l4_len, tcp.l4_base + l4_len],
            step_q: num / div,
            step_r: num % div,
        }
    }
}

/// The frame-size distribution: exact integer weights, drawn with one uniform number and
/// a binary search over the cumulative weights.
struct Sizes {
    classes: Vec<SizeClass>,
    cumulative: Vec<u64>,
    /// `None` for a single size: no draw at all.
    pick: Option<Uniform<u64>>,
}

impl Sizes {
    fn new(config: &TraceConfig, templates: &[Template; 2]) -> Sizes {
        let weights = config.size_weights();
        let classes = weights
            .iter()
            .map(|&(size, _)| SizeClass::new(size, templates, config))
            .collect();
        let cumulative: Vec<u64> = weights
            .iter()
            .scan(0u64, |acc, &(_, w)| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        let total = cumulative.last().copied().unwrap_or(1);
        let pick = (weights.len() > 1).then(|| Uniform::new(0, total));
        Sizes {
            classes,
            cumulative,
            pick,
        }
    }

    #[inline]
    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        match &self.pick {
            None => 0,
            Some(u) => {
                let x = u.sample(rng);
                self.cumulative.partition_point(|&c| c <= x)
            }
        }
    }
}

/// Which flow a packet belongs to, by popularity.
enum Picker {
    Uniform(Uniform<u32>),
    Zipf(Alias),
}

impl Picker {
    #[inline]
    fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        match self {
            Picker::Uniform(u) => u.sample(rng),
            Picker::Zipf(a) => a.sample(rng),
        }
    }
}

/// Keep-alives. A cursor visits the flows in slot order, all of them once per `period`
/// (a quarter of the expiry), at evenly spaced times; a visited flow whose last LAN
/// packet is `period` or more old (or that never sent) gets the next packet. So no
/// active flow stays silent much past two periods, half the expiry. Validation keeps the
/// forced packets at most half of the packets, so the visits do not fall behind.
struct KeepAlive {
    period: u64,
    next_visit: u64,
    /// Visit `k` is at `start + floor(k * period / n)`: carried as quotient and remainder.
    step_q: u64,
    step_r: u64,
    rem: u64,
    n: u32,
    cursor: u32,
    last_fwd: Vec<u64>,
}

impl KeepAlive {
    fn new(expiry_ns: u64, start_ns: u64, n: u32) -> KeepAlive {
        let period = (expiry_ns / 4).max(1);
        KeepAlive {
            period,
            next_visit: start_ns,
            step_q: period / u64::from(n),
            step_r: period % u64::from(n),
            rem: 0,
            n,
            cursor: 0,
            last_fwd: vec![NEVER; n as usize],
        }
    }

    /// The flow that needs a keep-alive now, if any.
    #[inline]
    fn due(&mut self, now: u64) -> Option<u32> {
        while self.next_visit <= now {
            let c = self.cursor;
            self.cursor = if c + 1 == self.n { 0 } else { c + 1 };
            self.rem += self.step_r;
            let carry = self.rem >= u64::from(self.n);
            if carry {
                self.rem -= u64::from(self.n);
            }
            self.next_visit = self
                .next_visit
                .saturating_add(self.step_q + u64::from(carry));
            let last = self.last_fwd[c as usize];
            if last == NEVER || now - last >= self.period {
                return Some(c);
            }
        }
        None
    }
}

/// Churn: replacements at `start + k * 60e9 / fpm` ns, each retiring a uniformly chosen
/// flow for good and giving its slot a fresh 5-tuple.
struct Churn {
    /// Time of the next replacement; `None` once past the largest timestamp.
    next_ns: Option<u64>,
    step_q: u64,
    step_r: u64,
    rem: u64,
    fpm: u64,
    rng: ChaCha8Rng,
    pick: Uniform<u32>,
    /// Keys of the active flows and of the retired ones still on hold.
    taken: HashSet<u128>,
    /// Retired keys and when they may be reused (`hold_ns` after retirement).
    retired: VecDeque<(u64, u128)>,
    hold_ns: u64,
    /// Most entries of `retired`: the hold window's size, at most [`MAX_HOLD`].
    hold_cap: usize,
}

impl Churn {
    fn advance(&mut self) {
        self.rem += self.step_r;
        let carry = self.rem >= self.fpm;
        if carry {
            self.rem -= self.fpm;
        }
        self.next_ns = self
            .next_ns
            .and_then(|t| t.checked_add(self.step_q + u64::from(carry)));
    }
}

/// What one step decided.
struct Pick {
    slot: usize,
    class: usize,
    reply: bool,
    time_ns: u64,
    /// TCP sequence and acknowledgment numbers of this segment.
    seq: u32,
    ack: u32,
}

/// A streaming synthetic trace: an iterator of [`InputPacket`]s.
///
/// Promises, for a valid [`TraceConfig`]:
/// - Each packet belongs to one of `flows.count` active flows, drawn uniformly or by
///   Zipf popularity (exactly, over all flows; ranks are a random permutation of the flow
///   table). Active flows have distinct 5-tuples, also distinct from each other's reverse.
/// - A flow's first packet goes LAN → WAN; after `reply_delay_ns`, a packet drawn for it
///   is, with probability `reply_ratio`, its reply (reversed 5-tuple, arriving on
///   `wan_port`), else again LAN → WAN.
/// - With churn, at `start_ns + k * 60e9 / churn_fpm` (k = 1, 2, ...) a flow chosen
///   uniformly is retired (never sent again) and its slot gets a fresh 5-tuple (same
///   protocol and popularity rank), whose first packet is the next packet of the trace.
///   A retired tuple is not reused for `2 * expiry_ns` (the most recent 262,144 of them:
///   see `MAX_HOLD` in the source).
/// - Memory is O(flows + min(churn × 2 × expiry, 262,144)), allocated up front: it does
///   not grow with the trace length.
/// - With `expiry_ns`, no active flow is silent much past `expiry_ns / 2` (keep-alives;
///   [`TraceStats::max_gap_ns`] shows the actual figure).
/// - Frames are Ethernet II, IPv4 (no options, TTL 64, DF, ID 0) and UDP or TCP (ACK
///   flag; per-direction sequence numbers that advance by the payload, each segment
///   acknowledging the other side's next one), with valid checksums and a zero payload, sent from [`host_mac`]`(port)` to [`nf_mac`]`(port)` of the arrival port.
///   Sizes follow [`TraceConfig::sizes`]; timestamps `rate_pps` or `rate_bps` exactly.
pub struct TraceGen {
    config: TraceConfig,
    rng: ChaCha8Rng,
    picker: Picker,
    reply: Option<Bernoulli>,
    flows: Vec<Flow>,
    /// `[udp, tcp]`.
    templates: [Template; 2],
    sizes: Sizes,
    /// Destination then source MAC, for arrivals on the LAN and on the WAN port.
    macs: [[u8; 12]; 2],
    emitted: u64,
    /// Timestamp of the last packet (of the next one before the first), and the
    /// sub-nanosecond remainder in units of 1/divisor.
    time_ns: u64,
    time_rem: u64,
    divisor: u64,
    /// Size class of the last packet: the clock advances by its share.
    last_class: usize,
    churn: Option<Churn>,
    keepalive: Option<KeepAlive>,
    /// Slots whose new flow's first packet is due, oldest first.
    pending: VecDeque<u32>,
    stats: Option<Box<Recorder>>,
}

impl TraceGen {
    /// Validates `config` and builds the flow table (O(flows) time and memory).
    pub fn new(config: TraceConfig) -> Result<TraceGen, TraceError> {
        config.validate()?;
        let templates = [Template::new(false)?, Template::new(true)?];
        let sizes = Sizes::new(&config, &templates);

        let mut flow_rng = ChaCha8Rng::seed_from_u64(config.seed);
        flow_rng.set_stream(FLOW_STREAM);
        let (flows, taken) = build_flows(&config.flows, &mut flow_rng);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(PACKET_STREAM);

        let n = config.flows.count;
        let picker = if config.zipf_s > 0.0 {
            let mut rank_rng = ChaCha8Rng::seed_from_u64(config.seed);
            rank_rng.set_stream(RANK_STREAM);
            // slot_of_rank[r] is the slot of the flow of rank r + 1.
            let mut slot_of_rank: Vec<u32> = (0..n).collect();
            slot_of_rank.shuffle(&mut rank_rng);
            let mut weights = vec![0.0; n as usize];
            for (r, &slot) in slot_of_rank.iter().enumerate() {
                weights[slot as usize] = ((r + 1) as f64).powf(-config.zipf_s);
            }
            Picker::Zipf(Alias::new(&weights))
        } else {
            Picker::Uniform(Uniform::new(0, n))
        };

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
        let churn = match (config.churn_fpm, config.expiry_ns) {
            (0, _) | (_, None) => None,
            (fpm, Some(expiry)) => {
                let mut crng = ChaCha8Rng::seed_from_u64(config.seed);
                crng.set_stream(CHURN_STREAM);
                let minute = 60_000_000_000u64;
                let hold_ns = expiry.saturating_mul(2);
                // Replacements within one hold window, plus slack for rounding: the
                // structures are sized once so that memory stays flat. The set gets twice
                // its most entries, so removals (tombstones) never make it grow.
                let window = u128::from(fpm) * u128::from(hold_ns) / u128::from(minute) + 2;
                let hold_cap = usize::try_from(window).unwrap_or(MAX_HOLD).min(MAX_HOLD);
                let mut taken = taken;
                taken.reserve((2 * (n as usize + hold_cap)).saturating_sub(taken.len()));
                let mut c = Churn {
                    next_ns: Some(config.start_ns),
                    step_q: minute / fpm,
                    step_r: minute % fpm,
                    rem: 0,
                    fpm,
                    rng: crng,
                    pick: Uniform::new(0, n),
                    taken,
                    retired: VecDeque::with_capacity(hold_cap),
                    hold_ns,
                    hold_cap,
                };
                c.advance(); // the first replacement is one period in
                Some(c)
            }
        };
        let keepalive = config
            .expiry_ns
            .map(|e| KeepAlive::new(e, config.start_ns, n));
        let mac_pair = |port: u16| {
            let mut m = [0u8; 12];
            m[..6].copy_from_slice(&nf_mac(port));
            m[6..].copy_from_slice(&host_mac(port));
            m
        };
        Ok(TraceGen {
            picker,
            reply,
            macs: [mac_pair(config.lan_port), mac_pair(config.wan_port)],
            time_ns: config.start_ns,
            time_rem: 0,
            divisor: config.rate_bps.unwrap_or(config.rate_pps),
            last_class: 0,
            emitted: 0,
            flows,
            templates,
            sizes,
            churn,
            keepalive,
            pending: VecDeque::new(),
            stats: None,
            rng,
            config,
        })
    }

    /// Turns on statistics ([`stats`](Self::stats)); call before the first packet. Costs
    /// 17 bytes per flow and a few operations per packet.
    pub fn with_stats(mut self) -> TraceGen {
        self.stats = Some(Box::new(Recorder::new(
            self.flows.len(),
            self.sizes.classes.len(),
            self.config.expiry_ns,
        )));
        self
    }

    /// Statistics of the packets generated so far, if [`with_stats`](Self::with_stats)
    /// turned them on.
    pub fn stats(&self) -> Option<TraceStats> {
        let rec = self.stats.as_ref()?;
        let end_ns = if self.emitted == 0 {
            self.config.start_ns
        } else {
            let c = &self.sizes.classes[self.last_class];
            let carry = self.time_rem + c.step_r >= self.divisor;
            self.time_ns + c.step_q + u64::from(carry)
        };
        let sizes: Vec<u16> = self.sizes.classes.iter().map(|c| c.size).collect();
        Some(rec.finish(
            self.config.start_ns,
            end_ns,
            &sizes,
            self.config.churn_fpm,
            self.config.zipf_s,
            self.config.expiry_ns,
        ))
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
    #[inline]
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Option<(u16, u64)> {
        let p = self.step()?;
        buf.clear();
        self.write_frame(buf, &p);
        Some((self.port(p.reply), p.time_ns))
    }

    /// Appends the next frame to `out` (keeping what is there) and returns `(port,
    /// time_ns, frame length)`: how the capture writer puts frames straight into its
    /// output buffer.
    #[inline]
    pub(crate) fn append_next(&mut self, out: &mut Vec<u8>) -> Option<(u16, u64, usize)> {
        let p = self.step()?;
        self.write_frame(out, &p);
        Some((
            self.port(p.reply),
            p.time_ns,
            self.sizes.classes[p.class].len,
        ))
    }

    fn port(&self, reply: bool) -> u16 {
        if reply {
            self.config.wan_port
        } else {
            self.config.lan_port
        }
    }

    /// Appends the frame of `p` to `buf`.
    #[inline]
    fn write_frame(&self, buf: &mut Vec<u8>, p: &Pick) {
        let f = &self.flows[p.slot];
        let t = &self.templates[usize::from(f.tcp)];
        let c = &self.sizes.classes[p.class];
        let start = buf.len();
        buf.extend_from_slice(&t.frame[..c.len]);
        let frame = &mut buf[start..];
        let (src, dst, sport, dport) = if p.reply {
            (&f.dst, &f.src, &f.dport, &f.sport)
        } else {
            (&f.src, &f.dst, &f.sport, &f.dport)
        };
        let proto = usize::from(f.tcp);
        let ip = !fold(c.ip_base[proto] + f.addr_sum);
        let mut l4_sum = c.l4_base[proto] + f.addr_sum + f.port_sum;
        if f.tcp {
            frame[TCP_SEQ..TCP_SEQ + 4].copy_from_slice(&p.seq.to_be_bytes());
            frame[TCP_ACK..TCP_ACK + 4].copy_from_slice(&p.ack.to_be_bytes());
            l4_sum += (p.seq >> 16) + (p.seq & 0xffff) + (p.ack >> 16) + (p.ack & 0xffff);
        }
        let mut l4 = !fold(l4_sum);
        if t.udp {
            frame[UDP_LEN..UDP_LEN + 2].copy_from_slice(&c.l4_len);
            if l4 == 0 {
                l4 = 0xffff; // RFC 768: a computed 0 is sent as all ones (0 = "no checksum").
            }
        }
        frame[..12].copy_from_slice(&self.macs[usize::from(p.reply)]);
        frame[IP_LEN..IP_LEN + 2].copy_from_slice(&c.ip_len);
        frame[IP_CSUM..IP_CSUM + 2].copy_from_slice(&ip.to_be_bytes());
        frame[IP_SRC..IP_SRC + 4].copy_from_slice(src);
        frame[IP_DST..IP_DST + 4].copy_from_slice(dst);
        frame[L4_SPORT..L4_SPORT + 2].copy_from_slice(sport);
        frame[L4_DPORT..L4_DPORT + 2].copy_from_slice(dport);
        frame[t.csum_at..t.csum_at + 2].copy_from_slice(&l4.to_be_bytes());
    }

    /// Advances the trace by one packet.
    #[inline]
    fn step(&mut self) -> Option<Pick> {
        if self.emitted == self.config.packets {
            return None;
        }
        if self.emitted > 0 {
            // Validation proved the last timestamp fits, so these cannot overflow.
            let c = &self.sizes.classes[self.last_class];
            self.time_ns += c.step_q;
            self.time_rem += c.step_r;
            if self.time_rem >= self.divisor {
                self.time_rem -= self.divisor;
                self.time_ns += 1;
            }
        }
        self.emitted += 1;
        let now = self.time_ns;
        if self
            .churn
            .as_ref()
            .is_some_and(|c| c.next_ns.is_some_and(|t| t <= now))
        {
            self.churn_until(now);
        }

        // A new flow's first packet, a keep-alive, or popularity.
        let mut forced = None;
        while let Some(s) = self.pending.pop_front() {
            if !self.flows[s as usize].started {
                forced = Some((s, false));
                break;
            }
        }
        if forced.is_none() {
            if let Some(k) = &mut self.keepalive {
                forced = k.due(now).map(|s| (s, true));
            }
        }
        let slot = match forced {
            Some((s, _)) => s,
            None => self.picker.sample(&mut self.rng),
        } as usize;
        let class = self.sizes.sample(&mut self.rng);
        self.last_class = class;

        let flow = &mut self.flows[slot];
        let reply = forced.is_none()
            && flow.started
            && now - flow.first_ns >= self.config.reply_delay_ns
            && self.reply.is_some_and(|b| b.sample(&mut self.rng));
        let (mut seq, mut ack) = (0, 0);
        if flow.tcp {
            let side = usize::from(reply);
            (seq, ack) = (flow.seq[side], flow.seq[1 - side]);
            let payload = self.sizes.classes[class].len - (L4 + TCP_HDR);
            flow.seq[side] = seq.wrapping_add(payload as u32);
        }
        if !reply {
            if !flow.started {
                flow.started = true;
                flow.first_ns = now;
            }
            if let Some(k) = &mut self.keepalive {
                k.last_fwd[slot] = now;
            }
        }
        if let Some(st) = &mut self.stats {
            let keepalive = matches!(forced, Some((_, true)));
            st.record(
                slot,
                class,
                self.sizes.classes[class].len,
                reply,
                keepalive,
                now,
            );
        }
        Some(Pick {
            slot,
            class,
            reply,
            time_ns: now,
            seq,
            ack,
        })
    }

    /// Makes every churn replacement due at `now`.
    #[cold]
    fn churn_until(&mut self, now: u64) {
        let Some(churn) = &mut self.churn else {
            return;
        };
        while let Some(t) = churn.next_ns.filter(|&t| t <= now) {
            churn.advance();
            let slot = churn.pick.sample(&mut churn.rng) as usize;
            let old = self.flows[slot];
            // The old tuple stays taken until it has been silent for the hold time (or,
            // past MAX_HOLD held tuples, until it is the oldest).
            while let Some(&(free_at, key)) = churn.retired.front() {
                if free_at > now && churn.retired.len() < churn.hold_cap {
                    break;
                }
                churn.retired.pop_front();
                churn.taken.remove(&key);
            }
            churn
                .retired
                .push_back((t.saturating_add(churn.hold_ns), old.key()));
            self.flows[slot] = draw_flow(
                &self.config.flows,
                old.tcp,
                &mut churn.rng,
                &mut churn.taken,
            );
            self.pending.push_back(slot as u32);
            if let Some(k) = &mut self.keepalive {
                k.last_fwd[slot] = NEVER;
            }
            if let Some(st) = &mut self.stats {
                st.replace(slot);
            }
        }
    }
}

impl Iterator for TraceGen {
    type Item = InputPacket;

    fn next(&mut self) -> Option<InputPacket> {
        let p = self.step()?;
        // The only allocation per packet: the output frame itself.
        let mut data = Vec::with_capacity(self.sizes.classes[p.class].len);
        self.write_frame(&mut data, &p);
        Some(InputPacket {
            port: self.port(p.reply),
            time_ns: p.time_ns,
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

/// Draws `spec.count` distinct flows. Exactly `round(count * udp_share)` are UDP,
/// assigned by sampling without replacement so the protocol is independent of the flow's
/// position. Returns the flows and the set of their keys.
fn build_flows(spec: &FlowSpec, rng: &mut ChaCha8Rng) -> (Vec<Flow>, HashSet<u128>) {
    let n = spec.count;
    let mut udp_left = ((f64::from(n) * spec.udp_share).round() as u32).min(n);
    let mut flows = Vec::with_capacity(n as usize);
    let mut taken: HashSet<u128> = HashSet::with_capacity(n as usize);
    for i in 0..n {
        let is_udp = rng.gen_range(0..n - i) < udp_left;
        udp_left -= u32::from(is_udp);
        flows.push(draw_flow(spec, !is_udp, rng, &mut taken));
    }
    (flows, taken)
}

/// Draws a flow of the given protocol whose 5-tuple, and its reverse, are not `taken`
/// (so a reply of one flow can never look like another flow's forward packet), and takes
/// it. Source port in 1024..=65535, destination port in 1..=65535. The tuple space is at
/// least 64,512 × 65,535 per address pair, far above [`MAX_FLOWS`](crate::MAX_FLOWS), so
/// rejections stay rare.
fn draw_flow(spec: &FlowSpec, tcp: bool, rng: &mut ChaCha8Rng, taken: &mut HashSet<u128>) -> Flow {
    let proto: u8 = if tcp { 6 } else { 17 };
    loop {
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
            return Flow::new(src, dst, sport, dport, tcp);
        }
    }
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

/// Folds a sum of at most 2^32 - 1 into 16 bits (two rounds always suffice).
#[inline]
fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SizeMix;

    /// Every size and protocol, against frames etherparse builds from scratch.
    #[test]
    fn frames_match_etherparse_byte_for_byte() {
        let config = TraceConfig::default();
        let templates = [Template::new(false).unwrap(), Template::new(true).unwrap()];
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for size in [64u16, 65, 66, 101, 570, 1000, 1517, 1518] {
            let class = SizeClass::new(size, &templates, &config);
            for tcp in [false, true] {
                for _ in 0..100 {
                    let (src, dst) = (rng.gen::<u32>(), rng.gen::<u32>());
                    let (sport, dport) = (rng.gen::<u16>(), rng.gen::<u16>());
                    let flow = Flow::new(src, dst, sport, dport, tcp);
                    let g = TraceGen {
                        sizes: Sizes {
                            classes: vec![class.clone()],
                            cumulative: vec![1],
                            pick: None,
                        },
                        flows: vec![flow],
                        ..TraceGen::new(TraceConfig {
                            flows: FlowSpec {
                                count: 1,
                                ..FlowSpec::default()
                            },
                            ..TraceConfig::default()
                        })
                        .unwrap()
                    };
                    for reply in [false, true] {
                        let mut buf = Vec::new();
                        let (seq, ack) = (rng.gen::<u32>(), rng.gen::<u32>());
                        let pick = Pick {
                            slot: 0,
                            class: 0,
                            reply,
                            time_ns: 0,
                            seq,
                            ack,
                        };
                        g.write_frame(&mut buf, &pick);
                        let port = g.port(reply);
                        let (s, d, sp, dp) = if reply {
                            (dst, src, dport, sport)
                        } else {
                            (src, dst, sport, dport)
                        };
                        let b = PacketBuilder::ethernet2(host_mac(port), nf_mac(port)).ipv4(
                            s.to_be_bytes(),
                            d.to_be_bytes(),
                            64,
                        );
                        let l4 = if tcp { TCP_HDR } else { UDP_HDR };
                        let payload = vec![0u8; usize::from(size) - 4 - L4 - l4];
                        let mut want = Vec::new();
                        if tcp {
                            b.tcp(sp, dp, seq, 65535)
                                .ack(ack)
                                .write(&mut want, &payload)
                                .unwrap();
                        } else {
                            b.udp(sp, dp).write(&mut want, &payload).unwrap();
                        }
                        if !tcp && want[UDP_CSUM..UDP_CSUM + 2] == [0, 0] {
                            want[UDP_CSUM..UDP_CSUM + 2].copy_from_slice(&[0xff, 0xff]);
                        }
                        assert_eq!(buf, want, "size {size} tcp {tcp} reply {reply}");
                    }
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
                flows: FlowSpec {
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

    #[test]
    fn bit_rate_time_matches_division() {
        for bps in [1_000_000u64, 10_000_000_007, 100_000_000_000] {
            for sizes in [SizeMix::Fixed, SizeMix::Imix] {
                let cfg = TraceConfig {
                    rate_bps: Some(bps),
                    start_ns: 11,
                    packets: 3000,
                    frame_size: 128,
                    sizes: sizes.clone(),
                    flows: FlowSpec {
                        count: 3,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let mut g = TraceGen::new(cfg.clone()).unwrap();
                let mut buf = Vec::new();
                let mut bits: u128 = 0;
                let mut i = 0;
                while let Some((_, t)) = g.next_into(&mut buf) {
                    let want = 11 + bits * 1_000_000_000 / u128::from(bps);
                    assert_eq!(u128::from(t), want, "bps {bps} packet {i}");
                    if sizes == SizeMix::Fixed {
                        assert_eq!(Some(t), cfg.time_of(i));
                    }
                    bits += u128::from(wire_bits(buf.len() as u16 + 4));
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn fold_is_a_ones_complement_reduction() {
        for s in [0u32, 0xffff, 0x1_0000, 0x1_fffe, 0xffff_ffff, 0x1234_5678] {
            let mut want = u64::from(s);
            while want > 0xffff {
                want = (want & 0xffff) + (want >> 16);
            }
            assert_eq!(u64::from(fold(s)), want, "{s:#x}");
        }
    }
}
