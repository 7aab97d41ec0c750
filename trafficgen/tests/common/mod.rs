//! Shared trace checker: parses every frame with etherparse and checks every property the
//! generator promises, returning what it saw. Independent of the generator's own
//! statistics: everything here is measured from the frames.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use maestro_runtime::InputPacket;
use maestro_trafficgen::{host_mac, is_usable_unicast, nf_mac, wire_bits, Cidr, TraceConfig};

/// (src, dst, sport, dport, proto) as read from a frame.
pub type Tuple = (Ipv4Addr, Ipv4Addr, u16, u16, u8);

pub fn reverse(t: Tuple) -> Tuple {
    (t.1, t.0, t.3, t.2, t.4)
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Distinct flows, as their LAN-side (forward) tuple.
    pub flows: HashSet<Tuple>,
    pub udp_flows: usize,
    pub replies: u64,
    /// Packets of already-seen flows (the ones that could have been replies).
    pub repeat_packets: u64,
    /// Packets per flow (both directions), by forward tuple.
    pub counts: HashMap<Tuple, u64>,
    /// Time of each flow's first packet.
    pub first_seen: HashMap<Tuple, u64>,
    /// Packets per frame size (FCS included).
    pub sizes: BTreeMap<u16, u64>,
    /// Longest silence between consecutive packets of one flow (either direction).
    pub max_gap: u64,
    /// Silences longer than the config's expiry.
    pub gaps_over_expiry: u64,
    /// Shortest time from a flow's first packet to one of its replies.
    pub min_reply_delay: Option<u64>,
}

impl Stats {
    /// Packet counts per flow, heaviest first.
    pub fn sorted_counts(&self) -> Vec<u64> {
        let mut c: Vec<u64> = self.counts.values().copied().collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        c
    }
}

/// Parses a frame, checking Ethernet/IPv4/UDP-or-TCP layout, both checksums and the
/// lengths; returns its tuple.
pub fn parse(frame: &[u8]) -> Result<Tuple, String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("etherparse: {e}"))?;
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("not IPv4".into());
    };
    let iph = ip.header().to_header();
    if !iph.options.is_empty() || usize::from(iph.total_len) != frame.len() - 14 {
        return Err(format!("ip header {iph:?}"));
    }
    if iph.header_checksum != iph.calc_header_checksum() {
        return Err("bad IPv4 header checksum".into());
    }
    let (sport, dport, proto) = match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            if h.checksum == 0 || h.checksum != h.calc_checksum_ipv4(&iph, u.payload()).unwrap() {
                return Err("bad UDP checksum".into());
            }
            if usize::from(h.length) != frame.len() - 34 {
                return Err("bad UDP length".into());
            }
            (h.source_port, h.destination_port, 17)
        }
        Some(TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            if h.checksum != h.calc_checksum_ipv4(&iph, t.payload()).unwrap() {
                return Err("bad TCP checksum".into());
            }
            (h.source_port, h.destination_port, 6)
        }
        other => return Err(format!("transport {other:?}")),
    };
    // Independent check: pseudo-header + segment sums to all ones.
    let mut s: u32 = 0;
    let mut add = |b: &[u8]| {
        for w in b.chunks(2) {
            s += u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
        }
    };
    add(&frame[26..34]);
    add(&[0, proto]);
    add(&((frame.len() - 34) as u16).to_be_bytes());
    add(&frame[34..]);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    if s != 0xffff {
        return Err("L4 one's-complement sum is not 0xffff".into());
    }
    Ok((
        iph.source.into(),
        iph.destination.into(),
        sport,
        dport,
        proto,
    ))
}

fn usable_in(a: Ipv4Addr, prefix: &Cidr) -> bool {
    let host = !(u32::MAX
        .checked_shl(32 - u32::from(prefix.prefix_len()))
        .unwrap_or(0));
    let edge = prefix.prefix_len() < 31 && {
        let h = u32::from(a) & host;
        h == 0 || h == host
    };
    prefix.contains(a) && is_usable_unicast(a) && !edge
}

/// Checks every promised property of `packets` (generated from `config`).
pub fn check(config: &TraceConfig, packets: &[InputPacket]) -> Result<Stats, String> {
    let mut st = Stats::default();
    // Forward tuple -> (first packet time, last packet time).
    let mut seen: HashMap<Tuple, (u64, u64)> = HashMap::new();
    let sizes: HashSet<u16> = config.size_weights().iter().map(|&(s, _)| s).collect();
    let expiry = config.expiry_ns.unwrap_or(u64::MAX);
    if packets.len() as u64 != config.packets {
        return Err(format!(
            "{} packets, wanted {}",
            packets.len(),
            config.packets
        ));
    }
    // Bits on the wire so far, for rate_bps timestamps.
    let mut bits: u128 = 0;
    for (i, p) in packets.iter().enumerate() {
        let ctx = |m: String| format!("packet {i}: {m}");
        let want_t = match config.rate_bps {
            None => config
                .time_of(i as u64)
                .ok_or_else(|| ctx("time overflow".into()))?,
            Some(bps) => {
                let t = u128::from(config.start_ns) + bits * 1_000_000_000 / u128::from(bps);
                u64::try_from(t).map_err(|_| ctx("time overflow".into()))?
            }
        };
        if p.time_ns != want_t {
            return Err(ctx(format!("time {} != {}", p.time_ns, want_t)));
        }
        let size = u16::try_from(p.data.len() + 4).map_err(|_| ctx("huge frame".into()))?;
        if !sizes.contains(&size) {
            return Err(ctx(format!("frame size {size} not in the size mix")));
        }
        bits += u128::from(wire_bits(size));
        *st.sizes.entry(size).or_default() += 1;
        let t = parse(&p.data).map_err(ctx)?;
        if p.data[..6] != nf_mac(p.port) || p.data[6..12] != host_mac(p.port) {
            return Err(ctx("MACs do not match the port".into()));
        }
        let fwd = if p.port == config.lan_port {
            if !seen.contains_key(&t) {
                if seen.contains_key(&reverse(t)) {
                    return Err(ctx("LAN packet with a known flow's reversed tuple".into()));
                }
                if !usable_in(t.0, &config.flows.src_prefix)
                    || !usable_in(t.1, &config.flows.dst_prefix)
                    || t.0 == t.1
                {
                    return Err(ctx(format!("addresses {t:?} outside the prefixes")));
                }
                if t.2 < 1024 || t.3 == 0 {
                    return Err(ctx(format!("ports {t:?}")));
                }
                seen.insert(t, (p.time_ns, p.time_ns));
                st.flows.insert(t);
                st.first_seen.insert(t, p.time_ns);
                st.udp_flows += usize::from(t.4 == 17);
            } else {
                st.repeat_packets += 1;
            }
            t
        } else if p.port == config.wan_port {
            let f = reverse(t);
            let Some(&(first, _)) = seen.get(&f) else {
                return Err(ctx(format!("reply {t:?} before its flow's first packet")));
            };
            let delay = p.time_ns - first;
            if delay < config.reply_delay_ns {
                return Err(ctx(format!(
                    "reply {delay} ns after its flow's first packet, before the \
                     {} ns delay",
                    config.reply_delay_ns
                )));
            }
            st.min_reply_delay = Some(st.min_reply_delay.map_or(delay, |d| d.min(delay)));
            st.replies += 1;
            st.repeat_packets += 1;
            f
        } else {
            return Err(ctx(format!("unexpected port {}", p.port)));
        };
        let entry = seen.get_mut(&fwd).expect("inserted above");
        let gap = p.time_ns - entry.1;
        st.max_gap = st.max_gap.max(gap);
        st.gaps_over_expiry += u64::from(gap > expiry);
        entry.1 = p.time_ns;
        *st.counts.entry(fwd).or_default() += 1;
    }
    Ok(st)
}

/// Least-squares slope of ln(count) over ln(rank) for the leading ranks with at least
/// `min_count` packets (heaviest first).
pub fn slope(sorted: &[u64], min_count: u64) -> (f64, usize) {
    let ranks = sorted.iter().take_while(|&&c| c >= min_count).count();
    let pts: Vec<(f64, f64)> = sorted[..ranks]
        .iter()
        .enumerate()
        .map(|(i, &c)| (((i + 1) as f64).ln(), (c as f64).ln()))
        .collect();
    let n = ranks as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxy / sxx, ranks)
}
