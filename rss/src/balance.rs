//! `--balance trace.pcap`: rebalance the RETA for a capture, in the spirit of Maestro's
//! offline balancing (`maestro-reference.md` §3) but without its flaw: Maestro balances
//! each port's table with that port's key, so the two ports of a firewall or NAT can end
//! up with different tables and lose co-location. Here every port loads the **one**
//! table computed, so the "equal RETA index bits" argument of the proof still holds.
//!
//! Load is counted in **packets** (the work a core does), per RETA bucket, summed over
//! ports: each packet is hashed the way the NIC would hash it ([`nic_input`]: its class,
//! its port's key and `rss_types`; packets with no enabled hash type get hash 0 and land
//! in bucket 0, as on the NIC). Buckets are then assigned greedily, largest first, each
//! to the least-loaded core (ties: the core with fewer buckets, then the lower number);
//! buckets the capture never hit are spread so that every core owns about as many
//! buckets, which keeps unseen traffic spread as well as a round-robin table would.

use std::collections::BTreeSet;
use std::path::Path;

use maestro_analyzer::sym::report::Analysis;
use maestro_analyzer::PacketClass;
use maestro_runtime::capture::{CaptureError, CaptureItem, CaptureReader, DeviceMap, PortAssigner};
use maestro_runtime::rss::{HashInput, Toeplitz};
use serde::Serialize;

use crate::spread::imbalance;
use crate::RssConfig;

/// How many refused records a sample keeps as examples.
const EXAMPLES: usize = 5;

/// One captured packet, reduced to what the NIC's RSS looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CapturedPacket {
    /// Position of the record in the file, from 0.
    pub record: u64,
    /// The NF input port the device map gave it.
    pub port: u16,
    /// The class the NIC sees (EtherType at offset 12, as the analyzer models it: a
    /// VLAN-tagged frame is not IP).
    pub class: PacketClass,
    /// IPv4 addresses (zero when not IPv4).
    pub src: u32,
    pub dst: u32,
    /// IPv4 protocol (zero when not IPv4).
    pub proto: u8,
    /// TCP/UDP ports of [`PacketClass::Ipv4TcpUdp`] packets (zero otherwise).
    pub sport: u16,
    pub dport: u16,
}

/// A capture read for balancing or spread measurement.
#[derive(Clone, Debug, Default)]
pub struct CaptureSample {
    /// The file, as given.
    pub capture: String,
    /// Records in the file, refused ones included.
    pub records: u64,
    pub packets: Vec<CapturedPacket>,
    /// Records not used, with up to five examples (`record N ...: reason; fix`).
    pub refused: u64,
    pub refused_examples: Vec<String>,
}

/// Why a capture cannot be used for balancing. Record-level problems are not errors:
/// they are counted in [`CaptureSample::refused`] with examples.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{capture}: none of its {records} record(s) could be used{examples}; check it with `maestro run <nf> --pcap {capture}` or choose another --device-map")]
    NoPackets {
        capture: String,
        records: u64,
        /// `: record 0 ...; record 1 ...`, or empty.
        examples: String,
    },
    #[error("port {port} ({device}) has its own RETA; --balance computes one table shared by all ports (co-located ports must agree on every bucket): drop the per-port table first")]
    PerPortReta { port: u16, device: String },
}

/// The NF's LAN and WAN ports for the device map: its `lan`/`wan` devices, else 0 and 1
/// (what `maestro run` uses).
pub fn lan_wan(analysis: &Analysis) -> (u16, u16) {
    let port = |name: &str, default: u16| {
        analysis
            .nf
            .devices
            .iter()
            .find(|d| d.name == name)
            .map_or(default, |d| d.port)
    };
    (port("lan", 0), port("wan", 1))
}

/// The NIC's view of one Ethernet frame: its class and hashed fields, or why no NIC
/// would parse it (a reason that names the fix).
pub fn classify(frame: &[u8]) -> Result<(PacketClass, u32, u32, u8, u16, u16), String> {
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(o)?, *frame.get(o + 1)?]))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_be_bytes([
            *frame.get(o)?,
            *frame.get(o + 1)?,
            *frame.get(o + 2)?,
            *frame.get(o + 3)?,
        ]))
    };
    let Some(ety) = u16_at(12) else {
        return Err(format!(
            "{} byte(s) is shorter than an Ethernet header (14); the capture cut the frame: re-capture with a larger snap length (`tcpdump -s 0`)",
            frame.len()
        ));
    };
    match ety {
        0x0800 => {}
        0x86dd => return Ok((PacketClass::Ipv6, 0, 0, 0, 0, 0)),
        _ => return Ok((PacketClass::NonIp, 0, 0, 0, 0, 0)),
    }
    let (Some(vihl), Some(frag), Some(proto), Some(src), Some(dst)) = (
        frame.get(14),
        u16_at(20),
        frame.get(23),
        u32_at(26),
        u32_at(30),
    ) else {
        return Err(format!(
            "IPv4 header cut by the capture ({} of 34 bytes up to the addresses); re-capture with a larger snap length (`tcpdump -s 0`)",
            frame.len()
        ));
    };
    let ihl = usize::from(vihl & 0x0f);
    if ihl < 5 {
        return Err(format!(
            "IPv4 header length (IHL) {ihl} is below 5: a malformed header no NIC parses; drop such frames from the capture"
        ));
    }
    if frag & 0x3fff != 0 {
        return Ok((PacketClass::Ipv4Fragment, src, dst, *proto, 0, 0));
    }
    if *proto != 6 && *proto != 17 {
        return Ok((PacketClass::Ipv4Other, src, dst, *proto, 0, 0));
    }
    let l4 = 14 + 4 * ihl;
    let (Some(sport), Some(dport)) = (u16_at(l4), u16_at(l4 + 2)) else {
        return Err(format!(
            "TCP/UDP ports cut by the capture ({} bytes, ports at {l4}..{}); re-capture with a larger snap length (`tcpdump -s 0`)",
            frame.len(),
            l4 + 4
        ));
    };
    Ok((PacketClass::Ipv4TcpUdp, src, dst, *proto, sport, dport))
}

/// What the NIC feeds to Toeplitz for `p` on a port enabling `rss_types` (DPDK `rss_hf`
/// names); `None` when no enabled type covers the packet's class, and the NIC gives it
/// hash 0. TCP/UDP types hash the 4-tuple (DPDK semantics; with `ethtool ... sd` the
/// ports are left out, which changes no RETA index because the solved keys have zero
/// port columns on the RETA bits whenever ports are not among the port's fields).
pub fn nic_input(p: &CapturedPacket, rss_types: &[String]) -> Option<HashInput> {
    let on = |t: &str| rss_types.iter().any(|x| x == t);
    let ports = match p.class {
        PacketClass::Ipv4TcpUdp => {
            let ty = if p.proto == 6 {
                "NONFRAG_IPV4_TCP"
            } else {
                "NONFRAG_IPV4_UDP"
            };
            if !on(ty) {
                return None;
            }
            true
        }
        PacketClass::Ipv4Other if on("NONFRAG_IPV4_OTHER") => false,
        PacketClass::Ipv4Fragment if on("FRAG_IPV4") => false,
        _ => return None,
    };
    Some(HashInput::ipv4(
        p.src.into(),
        p.dst.into(),
        p.sport,
        p.dport,
        ports,
    ))
}

/// Reads a capture file; each packet gets its port from `map` (`lan`/`wan` as in
/// [`lan_wan`]), and records that cannot be used are counted with examples.
pub fn read_capture(
    path: &Path,
    map: DeviceMap,
    lan: u16,
    wan: u16,
    ports: u16,
) -> Result<CaptureSample, BalanceError> {
    let reader = CaptureReader::open(path)?;
    read_from(reader, &path.display().to_string(), map, lan, wan, ports)
}

/// [`read_capture`] over an open reader; `name` stands for the file in messages.
pub fn read_from(
    reader: CaptureReader,
    name: &str,
    map: DeviceMap,
    lan: u16,
    wan: u16,
    ports: u16,
) -> Result<CaptureSample, BalanceError> {
    let mut assigner = PortAssigner::new(map, lan, wan);
    let mut s = CaptureSample {
        capture: name.to_string(),
        ..CaptureSample::default()
    };
    let refuse = |s: &mut CaptureSample, why: String| {
        s.refused += 1;
        if s.refused_examples.len() < EXAMPLES {
            s.refused_examples.push(why);
        }
    };
    for item in reader {
        s.records += 1;
        let rec = match item {
            CaptureItem::Refused(r) => {
                refuse(&mut s, r.to_string());
                continue;
            }
            CaptureItem::Packet(rec) => rec,
        };
        let port = match assigner.assign(&rec) {
            Ok(p) if p < ports => p,
            Ok(p) => {
                refuse(
                    &mut s,
                    format!(
                        "record #{}: input port {p} does not exist (the NF has {ports} port(s)); choose another --device-map",
                        rec.index
                    ),
                );
                continue;
            }
            Err(why) => {
                refuse(&mut s, format!("record #{}: {why}", rec.index));
                continue;
            }
        };
        match classify(&rec.data) {
            Ok((class, src, dst, proto, sport, dport)) => s.packets.push(CapturedPacket {
                record: rec.index,
                port,
                class,
                src,
                dst,
                proto,
                sport,
                dport,
            }),
            Err(why) => refuse(&mut s, format!("record #{}: {why}", rec.index)),
        }
    }
    if s.packets.is_empty() {
        let examples = if s.refused_examples.is_empty() {
            String::new()
        } else {
            format!(": {}", s.refused_examples.join("; "))
        };
        return Err(BalanceError::NoPackets {
            capture: s.capture,
            records: s.records,
            examples,
        });
    }
    Ok(s)
}

/// Per-port hashers, built once for a sample.
pub(crate) struct Hashers {
    keys: Vec<Option<Toeplitz>>,
}

impl Hashers {
    pub(crate) fn new(cfg: &RssConfig) -> Self {
        Hashers {
            keys: cfg
                .ports
                .iter()
                .map(|p| Toeplitz::new(&p.key).ok())
                .collect(),
        }
    }

    /// The RETA bucket of `p` under its port's key and types: the NIC's hash (0 when no
    /// enabled type covers the packet) masked to the table. `None` for a port the
    /// configuration does not have.
    pub(crate) fn bucket(&self, cfg: &RssConfig, p: &CapturedPacket, size: usize) -> Option<usize> {
        let pi = usize::from(p.port);
        let port = cfg.ports.get(pi)?;
        let key = self.keys.get(pi)?.as_ref()?;
        let h = nic_input(p, &port.rss_types).map_or(0, |i| key.hash_unchecked(i.as_bytes()));
        Some(h as usize & (size - 1))
    }
}

/// Packets per RETA bucket, all ports together (every port loads the same table).
pub fn bucket_loads(cfg: &RssConfig, sample: &CaptureSample) -> Vec<u64> {
    let size = cfg.reta.len().max(1);
    let mut loads = vec![0u64; size];
    let h = Hashers::new(cfg);
    for p in &sample.packets {
        if let Some(b) = h.bucket(cfg, p, size) {
            loads[b] += 1;
        }
    }
    loads
}

/// Per-core load of `bucket_loads` under `reta`.
pub fn core_loads(reta: &[u16], cores: usize, bucket_loads: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; cores];
    for (b, &l) in bucket_loads.iter().enumerate() {
        if let Some(c) = reta.get(b).and_then(|&q| out.get_mut(usize::from(q))) {
            *c += l;
        }
    }
    out
}

/// The greedy table: buckets by decreasing load (ties: lower bucket first), each onto
/// the least-loaded core (ties: fewer buckets, then lower core); unloaded buckets onto
/// the core with fewest buckets. `cores` must be at least 1.
pub fn greedy_reta(bucket_loads: &[u64], cores: usize) -> Vec<u16> {
    let cores = cores.max(1);
    let mut order: Vec<usize> = (0..bucket_loads.len()).collect();
    order.sort_by(|&a, &b| bucket_loads[b].cmp(&bucket_loads[a]).then(a.cmp(&b)));
    let mut load = vec![0u64; cores];
    let mut count = vec![0usize; cores];
    let mut reta = vec![0u16; bucket_loads.len()];
    for b in order {
        let l = bucket_loads[b];
        let c = (0..cores)
            .min_by_key(|&c| {
                if l > 0 {
                    (load[c], count[c], c)
                } else {
                    (0, count[c], c)
                }
            })
            .unwrap_or(0);
        load[c] += l;
        count[c] += 1;
        reta[b] = c as u16;
    }
    reta
}

/// What `--balance` did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalanceReport {
    pub capture: String,
    /// What the loads count.
    pub unit: &'static str,
    pub records: u64,
    /// Packets counted.
    pub packets: u64,
    pub refused: u64,
    pub refused_examples: Vec<String>,
    /// Distinct RETA buckets the capture hit.
    pub buckets_hit: usize,
    /// The heaviest bucket's share of the packets: no table can do better than it.
    pub largest_bucket: u64,
    pub per_core_before: Vec<u64>,
    pub per_core_after: Vec<u64>,
    /// `max / mean` packets per core.
    pub imbalance_before: f64,
    pub imbalance_after: f64,
}

/// Rebalances `cfg.reta` (shared by every port) for `sample`, records the report in
/// `cfg.balance` and a note, and returns it. The result keeps the old table when the
/// greedy one is not better on the capture.
pub fn balance(cfg: &mut RssConfig, sample: &CaptureSample) -> Result<BalanceReport, BalanceError> {
    if let Some(p) = cfg.ports.iter().find(|p| p.reta.is_some()) {
        return Err(BalanceError::PerPortReta {
            port: p.port,
            device: p.device.clone(),
        });
    }
    let loads = bucket_loads(cfg, sample);
    let before = core_loads(&cfg.reta, cfg.cores, &loads);
    let greedy = greedy_reta(&loads, cfg.cores);
    let after = core_loads(&greedy, cfg.cores, &loads);
    let to_usize = |v: &[u64]| v.iter().map(|&x| x as usize).collect::<Vec<_>>();
    let (ib, ia) = (imbalance(&to_usize(&before)), imbalance(&to_usize(&after)));
    let (per_core_after, imbalance_after) = if ia <= ib {
        cfg.reta = greedy;
        (after, ia)
    } else {
        (before.clone(), ib)
    };
    let report = BalanceReport {
        capture: sample.capture.clone(),
        unit: "packets",
        records: sample.records,
        packets: loads.iter().sum(),
        refused: sample.refused,
        refused_examples: sample.refused_examples.clone(),
        buckets_hit: loads.iter().filter(|&&l| l > 0).count(),
        largest_bucket: loads.iter().copied().max().unwrap_or(0),
        per_core_before: before,
        per_core_after,
        imbalance_before: ib,
        imbalance_after,
    };
    cfg.notes.push(format!(
        "RETA balanced for {} ({} packets in {} buckets): imbalance (max/mean packets per core) {:.3} -> {:.3}; one table for every port, so co-location is kept",
        report.capture, report.packets, report.buckets_hit, ib, imbalance_after
    ));
    cfg.balance = Some(report.clone());
    Ok(report)
}

/// Distinct IPv4 flows (port, 5-tuple) of a sample, one packet each: flows for spread
/// figures. Non-IPv4 packets are left out (the NIC gives them no hash).
pub fn ipv4_flows(sample: &CaptureSample) -> Vec<CapturedPacket> {
    let mut seen = BTreeSet::new();
    sample
        .packets
        .iter()
        .filter(|p| !matches!(p.class, PacketClass::NonIp | PacketClass::Ipv6))
        .filter(|p| seen.insert((p.port, p.src, p.dst, p.proto, p.sport, p.dport)))
        .copied()
        .collect()
}
