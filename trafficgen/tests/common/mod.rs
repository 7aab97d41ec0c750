//! Shared trace checker: parses every frame with etherparse and checks every property the
//! generator promises, returning what it saw.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use maestro_runtime::InputPacket;
use maestro_trafficgen::{host_mac, is_usable_unicast, nf_mac, Cidr, TraceConfig};

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
}

/// Parses a frame, checking Ethernet/IPv4/UDP-or-TCP layout, both checksums and the
/// length; returns its tuple.
pub fn parse(frame: &[u8], config: &TraceConfig) -> Result<Tuple, String> {
    if frame.len() != usize::from(config.frame_size) - 4 {
        return Err(format!(
            "length {} for frame_size {}",
            frame.len(),
            config.frame_size
        ));
    }
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
    let mut seen: HashMap<Tuple, ()> = HashMap::new();
    if packets.len() as u64 != config.packets {
        return Err(format!(
            "{} packets, wanted {}",
            packets.len(),
            config.packets
        ));
    }
    for (i, p) in packets.iter().enumerate() {
        let ctx = |m: String| format!("packet {i}: {m}");
        let want_t = config
            .time_of(i as u64)
            .ok_or_else(|| ctx("time overflow".into()))?;
        if p.time_ns != want_t {
            return Err(ctx(format!("time {} != {}", p.time_ns, want_t)));
        }
        if i > 0 && p.time_ns < packets[i - 1].time_ns {
            return Err(ctx("time went backwards".into()));
        }
        let t = parse(&p.data, config).map_err(ctx)?;
        if p.data[..6] != nf_mac(p.port) || p.data[6..12] != host_mac(p.port) {
            return Err(ctx("MACs do not match the port".into()));
        }
        if p.port == config.lan_port {
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
                seen.insert(t, ());
                st.flows.insert(t);
                st.udp_flows += usize::from(t.4 == 17);
            } else {
                st.repeat_packets += 1;
            }
        } else if p.port == config.wan_port {
            if !seen.contains_key(&reverse(t)) {
                return Err(ctx(format!("reply {t:?} before its flow's first packet")));
            }
            st.replies += 1;
            st.repeat_packets += 1;
        } else {
            return Err(ctx(format!("unexpected port {}", p.port)));
        }
    }
    Ok(st)
}
