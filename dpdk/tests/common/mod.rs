//! What the DPDK tests share: a small hand-written `GeneratedNf` with one expiring
//! table (a firewall that also floods non-IP frames), frame builders and a trace.
#![allow(dead_code)]

use std::sync::Arc;

use maestro_dpdk::pcap::{port_by_name, QueueCaptures};
use maestro_dpdk::{DpdkError, Eal, Mempool, Port, PortConfig};
use maestro_runtime::exec::{
    shard_capacity, AccessLog, GeneratedNf, NeedsWrite, NicConfig, Refresh, RefreshLog,
    RenamedField, StateObjectInfo,
};
use maestro_runtime::packet::{PacketMut, PacketView, ParseMode};
use maestro_runtime::state::{ExpiringTable, StateError};
use maestro_runtime::{InputPacket, Observation};

/// Flow table capacity (split per core by `sn`).
pub const CAPACITY: u32 = 64;
/// Flow lifetime: 1 ms, so the trace's pauses expire flows.
pub const TTL_NS: u64 = 1_000_000;

type FlowKey = ([u8; 4], [u8; 4], u16, u16, u8);

/// Three ports: LAN 0, WAN 1, and a monitor port 2 that only receives floods.
/// - LAN IPv4 with ports: the flow is added (or refreshed), the MACs are swapped, and the
///   frame goes to WAN (even when the table is full).
/// - WAN IPv4 with ports: forwarded to LAN with TTL - 1 (checksum recomputed) when its
///   reverse flow is known, else dropped.
/// - LAN frames that are not IPv4 with ports: flooded (to WAN and the monitor port).
/// - Everything else: dropped.
pub struct FlowFw {
    flows: ExpiringTable<FlowKey, ()>,
    mode: ParseMode,
    faults: u64,
    log: Option<AccessLog>,
}

fn key_of(packet: &InputPacket, mode: ParseMode) -> Option<FlowKey> {
    let view = PacketView::new(&packet.data, mode);
    let ip = view.ipv4()?;
    let (sp, dp) = view.l4_ports()?;
    Some((ip.src(), ip.dst(), sp, dp, ip.proto()))
}

impl GeneratedNf for FlowFw {
    const NAME: &'static str = "flowfw";
    const STATE: &'static [StateObjectInfo] = &[StateObjectInfo {
        name: "flows",
        kind: "table",
        capacity: CAPACITY,
        sharded: true,
    }];
    const PORT_COUNT: u16 = 3;
    const LAN_PORT: u16 = 0;
    const WAN_PORT: u16 = 1;
    const RENAMED: &'static [RenamedField] = &[];

    fn with_shards(mode: ParseMode, shards: usize) -> Result<Self, StateError> {
        Ok(FlowFw {
            flows: ExpiringTable::new(shard_capacity(CAPACITY, shards), TTL_NS)?,
            mode,
            faults: 0,
            log: None,
        })
    }

    fn process(&mut self, packet: &InputPacket) -> Observation {
        let now = packet.time_ns;
        self.flows.expire(now);
        let key = key_of(packet, self.mode);
        match (packet.port, key) {
            (0, Some(k)) => {
                if let Some(log) = &mut self.log {
                    log.touch(0, AccessLog::key_of(&k));
                }
                match self.flows.get(&k) {
                    Some(i) => {
                        self.flows.refresh(i, now);
                    }
                    None => {
                        let _ = self.flows.add(k, (), now);
                    }
                }
                let mut bytes = packet.data.clone();
                let mut m = PacketMut::new(&mut bytes, self.mode);
                let (src, dst) = (m.view().eth_src(), m.view().eth_dst());
                m.set_eth_src(dst);
                m.set_eth_dst(src);
                m.finish();
                Observation::Forward { port: 1, bytes }
            }
            (0, None) => Observation::Flood {
                bytes: packet.data.clone(),
            },
            (1, Some((s, d, sp, dp, proto))) => {
                let reverse = (d, s, dp, sp, proto);
                if let Some(log) = &mut self.log {
                    log.touch(0, AccessLog::key_of(&reverse));
                }
                match self.flows.get(&reverse) {
                    Some(i) => {
                        self.flows.refresh(i, now);
                        let mut bytes = packet.data.clone();
                        let mut m = PacketMut::new(&mut bytes, self.mode);
                        let ttl = m.view().ipv4().map_or(0, |ip| ip.ttl());
                        m.set_ip_ttl(ttl.wrapping_sub(1));
                        m.finish();
                        Observation::Forward { port: 0, bytes }
                    }
                    None => Observation::Drop,
                }
            }
            _ => Observation::Drop,
        }
    }

    /// The `locks` read pass: what `process` does when it changes nothing but flow
    /// times. A pending expiry or a new flow needs the write lock; a known flow's
    /// refresh is logged (the writer applies it later), as generated code does.
    fn process_read(
        &self,
        packet: &InputPacket,
        log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite> {
        let now = packet.time_ns;
        if self.flows.would_expire(now) {
            return Err(NeedsWrite);
        }
        let key = key_of(packet, self.mode);
        match (packet.port, key) {
            (0, Some(k)) => {
                let index = self.flows.get(&k).ok_or(NeedsWrite)?;
                log.push(Refresh {
                    object: 0,
                    index,
                    now,
                })?;
                let mut bytes = packet.data.clone();
                let mut m = PacketMut::new(&mut bytes, self.mode);
                let (src, dst) = (m.view().eth_src(), m.view().eth_dst());
                m.set_eth_src(dst);
                m.set_eth_dst(src);
                m.finish();
                Ok(Observation::Forward { port: 1, bytes })
            }
            (0, None) => Ok(Observation::Flood {
                bytes: packet.data.clone(),
            }),
            (1, Some((s, d, sp, dp, proto))) => match self.flows.get(&(d, s, dp, sp, proto)) {
                Some(index) => {
                    log.push(Refresh {
                        object: 0,
                        index,
                        now,
                    })?;
                    let mut bytes = packet.data.clone();
                    let mut m = PacketMut::new(&mut bytes, self.mode);
                    let ttl = m.view().ipv4().map_or(0, |ip| ip.ttl());
                    m.set_ip_ttl(ttl.wrapping_sub(1));
                    m.finish();
                    Ok(Observation::Forward { port: 0, bytes })
                }
                None => Ok(Observation::Drop),
            },
            _ => Ok(Observation::Drop),
        }
    }

    fn apply_refresh(&mut self, refresh: &Refresh) {
        if !self.flows.refresh(refresh.index, refresh.now) {
            self.faults += 1;
        }
    }

    fn fault_count(&self) -> u64 {
        self.faults
    }

    fn set_instrumented(&mut self, on: bool) {
        self.log = on.then(AccessLog::default);
    }

    fn access_log(&self) -> Option<&AccessLog> {
        self.log.as_ref()
    }
}

/// An Ethernet/IPv4 frame with a TCP (proto 6) or UDP (17) header and `payload` bytes.
pub fn ipv4_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
    payload: usize,
) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    let total = 20 + l4 + payload;
    let mut f = vec![0u8; 14 + total];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, dst[3]]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 1, src[3]]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f[46] = 0x50;
    } else {
        f[38..40].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    }
    for (i, b) in f[14 + 20 + l4..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut m = PacketMut::new(&mut f, ParseMode::Strict);
    m.set_ip_ttl(64);
    m.finish();
    f
}

/// An ARP-like frame (EtherType 0x0806): not IPv4, so the NF floods it.
pub fn arp_frame(n: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 2, n]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    f[21] = n;
    f
}

/// splitmix64, for a reproducible trace.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A trace of LAN flows, WAN replies (some early, some after a pause that expires
/// them), unknown WAN traffic and non-IP frames on both sides; times are strictly
/// increasing whole microseconds from a realistic epoch.
pub fn trace(seed: u64, packets: usize) -> Vec<InputPacket> {
    let mut rng = Rng(seed);
    let flows: Vec<FlowKey> = (0..96u32)
        .map(|i| {
            (
                [10, 0, (i / 200) as u8, (i % 200) as u8 + 1],
                [192, 168, 1, (i % 7) as u8 + 1],
                1024 + i as u16,
                if i % 3 == 0 { 53 } else { 443 },
                if i % 2 == 0 { 17 } else { 6 },
            )
        })
        .collect();
    let mut time = 1_700_000_000_000_000_000u64;
    let mut out = Vec::with_capacity(packets);
    for n in 0..packets {
        // A 3 ms pause every 300 packets expires every flow.
        time += if n % 300 == 299 {
            3_000_000
        } else {
            1_000 * (1 + rng.below(20))
        };
        let f = flows[rng.below(flows.len() as u64) as usize];
        let payload = rng.below(200) as usize;
        let (port, data) = match rng.below(100) {
            0..=44 => (0, ipv4_frame(f.0, f.1, f.2, f.3, f.4, payload)),
            45..=84 => (1, ipv4_frame(f.1, f.0, f.3, f.2, f.4, payload)),
            85..=89 => (1, ipv4_frame([8, 8, 8, 8], f.0, 53, f.2, 17, payload)),
            90..=95 => (0, arp_frame(n as u8)),
            _ => (1, arp_frame(n as u8)),
        };
        out.push(InputPacket {
            port,
            time_ns: time,
            data,
        });
    }
    out
}

/// A symmetric RSS configuration (key 0x6d5a repeated: both directions of a flow hash
/// alike) for ports 0 and 1, 128-entry RETA round-robin over `cores`.
pub fn symmetric_nic(cores: usize) -> NicConfig {
    let mut cfg = NicConfig::default_for(2).with_cores(cores);
    for p in &mut cfg.ports {
        p.key = [0x6d, 0x5a].repeat(26);
    }
    cfg
}

/// The frames the run sends per output port and core: `[port][core]`.
pub fn expected_outputs(
    packets: &[InputPacket],
    observations: &[Observation],
    cores_of: &[u16],
    ports: u16,
    cores: usize,
) -> Vec<Vec<Vec<Vec<u8>>>> {
    let mut out = vec![vec![Vec::new(); cores]; usize::from(ports)];
    for ((p, o), &c) in packets.iter().zip(observations).zip(cores_of) {
        let c = usize::from(c);
        match o {
            Observation::Drop => {}
            Observation::Forward { port, bytes } => out[usize::from(*port)][c].push(bytes.clone()),
            Observation::Flood { bytes } => {
                for q in (0..ports).filter(|&q| q != p.port) {
                    out[usize::from(q)][c].push(bytes.clone());
                }
            }
        }
    }
    out
}

/// EAL flags that need neither a NIC nor hugepages (two lcores); tests add their vdevs.
pub fn eal_without_nic() -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0-1",
        "--log-level=lib.eal:notice",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// EAL, or `None` (with a `SKIPPED:` line saying why) where the machine cannot run it at
/// all (no /dev/shm, no /var/run). Configuration errors (a bad vdev) fail the test.
pub fn eal_or_skip(args: Vec<String>) -> Option<Eal> {
    match Eal::init(&args) {
        Ok(eal) => Some(eal),
        Err(e @ (DpdkError::SharedConfig { .. } | DpdkError::NoHugepages { .. })) => {
            eprintln!("SKIPPED: DPDK's EAL cannot start on this machine: {e}");
            None
        }
        Err(e) => panic!("EAL init failed: {e}\nargs: {args:?}"),
    }
}

/// A set of queue captures' vdev arguments, renamed `net_pcap<prefix>` so that two sets
/// can live in one EAL.
pub fn vdev_args_named(caps: &QueueCaptures, prefix: &str) -> Vec<String> {
    caps.vdev_args()
        .expect("vdev args")
        .into_iter()
        .map(|a| a.replacen("--vdev=net_pcap", &format!("--vdev=net_pcap{prefix}"), 1))
        .collect()
}

/// The `net_pcap<prefix><port>` ports of [`FlowFw`], configured with `queues` queues.
pub fn ports_named<'e>(
    eal: &'e Eal,
    prefix: &str,
    queues: u16,
    pool: &Arc<Mempool<'e>>,
) -> Vec<Port<'e>> {
    (0..FlowFw::PORT_COUNT)
        .map(|p| {
            let name = format!("net_pcap{prefix}{p}");
            let id = port_by_name(eal, &name).unwrap_or_else(|| panic!("{name} is not a port"));
            Port::configure(eal, id, &PortConfig::new(queues), pool).expect("configure")
        })
        .collect()
}
