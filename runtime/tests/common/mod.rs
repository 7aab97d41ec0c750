//! A hand-written `GeneratedNf` for the executor tests and benches: a firewall keyed by
//! the 5-tuple on an [`ExpiringTable`], with a read-only pass that logs refreshes and
//! asks for the write lock on an add or an expiry, as generated code does. Plus frame
//! builders and fw-like traces.
#![allow(dead_code)]

use maestro_runtime::exec::{
    AccessLog, GeneratedNf, NeedsWrite, Refresh, RefreshLog, RenamedField, StateObjectInfo,
};
use maestro_runtime::packet::{PacketView, ParseMode};
use maestro_runtime::state::{ExpiringTable, StateError};
use maestro_runtime::{InputPacket, Observation};

pub const LAN: u16 = 0;
pub const WAN: u16 = 1;

type FlowKey = (u32, u32, u16, u16, u8);

/// The firewall: LAN packets open (or refresh) their flow and go to the WAN; WAN packets
/// pass only if they answer an open flow; anything without IPv4 + TCP/UDP is dropped.
pub struct TestFw {
    flows: ExpiringTable<FlowKey, ()>,
    mode: ParseMode,
    faults: u64,
    log: Option<AccessLog>,
}

impl TestFw {
    pub const CAPACITY: u32 = 1024;
    /// Flows expire 1 ms after their last packet.
    pub const TTL: u64 = 1_000_000;

    /// The flow key a packet selects, if it parses (LAN order for WAN packets).
    fn key(&self, p: &InputPacket) -> Option<FlowKey> {
        let view = PacketView::new(&p.data, self.mode);
        let ip = view.ipv4()?;
        let (sp, dp) = view.l4_ports()?;
        match p.port {
            LAN => Some((ip.src_u32(), ip.dst_u32(), sp, dp, ip.proto())),
            _ => Some((ip.dst_u32(), ip.src_u32(), dp, sp, ip.proto())),
        }
    }

    fn touch(&mut self, key: &FlowKey) {
        if let Some(log) = &mut self.log {
            log.touch(0, AccessLog::key_of(key));
        }
    }

    /// Whether `expire(now)` would free something.
    fn would_expire(&self, now: u64) -> bool {
        self.flows
            .chain()
            .oldest()
            .is_some_and(|(_, ts)| ts < now.saturating_sub(Self::TTL))
    }

    pub fn flows(&self) -> u32 {
        self.flows.len()
    }
}

impl GeneratedNf for TestFw {
    const NAME: &'static str = "testfw";
    const STATE: &'static [StateObjectInfo] = &[StateObjectInfo {
        name: "flows",
        kind: "table",
        capacity: TestFw::CAPACITY,
        sharded: true,
    }];
    const PORT_COUNT: u16 = 2;
    const LAN_PORT: u16 = LAN;
    const WAN_PORT: u16 = WAN;
    const RENAMED: &'static [RenamedField] = &[];

    fn with_shards(mode: ParseMode, shards: usize) -> Result<Self, StateError> {
        Ok(TestFw {
            flows: ExpiringTable::new(
                maestro_runtime::exec::shard_capacity(Self::CAPACITY, shards),
                Self::TTL,
            )?,
            mode,
            faults: 0,
            log: None,
        })
    }

    fn process(&mut self, p: &InputPacket) -> Observation {
        let now = p.time_ns;
        self.flows.expire(now);
        if p.port > WAN {
            self.faults += 1;
            return Observation::Drop;
        }
        let Some(key) = self.key(p) else {
            return Observation::Drop;
        };
        self.touch(&key);
        match (p.port, self.flows.get(&key)) {
            (LAN, Some(i)) => {
                self.flows.refresh(i, now);
            }
            (LAN, None) => {
                self.flows.add(key, (), now);
            }
            (_, Some(i)) => {
                self.flows.refresh(i, now);
            }
            (_, None) => return Observation::Drop,
        }
        let out = if p.port == LAN { WAN } else { LAN };
        Observation::Forward {
            port: out,
            bytes: p.data.clone(),
        }
    }

    fn process_read(
        &self,
        p: &InputPacket,
        log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite> {
        let now = p.time_ns;
        if self.would_expire(now) || p.port > WAN {
            return Err(NeedsWrite);
        }
        let Some(key) = self.key(p) else {
            return Ok(Observation::Drop);
        };
        match (p.port, self.flows.get(&key)) {
            (_, Some(i)) => log.push(Refresh {
                object: 0,
                index: i,
                now,
            })?,
            // A full table makes `add` a no-op: no write.
            (LAN, None) if !self.flows.is_full() => return Err(NeedsWrite),
            (LAN, None) => {}
            (_, None) => return Ok(Observation::Drop),
        }
        let out = if p.port == LAN { WAN } else { LAN };
        Ok(Observation::Forward {
            port: out,
            bytes: p.data.clone(),
        })
    }

    fn apply_refresh(&mut self, r: &Refresh) {
        self.flows.refresh(r.index, r.now);
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

/// A TCP (proto 6) or UDP (17) frame with a 20-byte IPv4 header and 8 payload bytes.
pub fn l4_frame(proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let l4_len = if proto == 6 { 20 } else { 8 };
    let total = 20 + l4_len + 8;
    let mut f = vec![0u8; 14 + total];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
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
    }
    f
}

pub fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    l4_frame(6, src, dst, sport, dport)
}

pub fn packet(port: u16, time_ns: u64, data: Vec<u8>) -> InputPacket {
    InputPacket {
        port,
        time_ns,
        data,
    }
}

/// splitmix64, for reproducible traces without a dependency.
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
        self.next() % n.max(1)
    }
}

/// The 5-tuple of flow `f` (distinct addresses and ports per flow).
pub fn flow(f: u32) -> ([u8; 4], [u8; 4], u16, u16) {
    let src = [10, 0, (f >> 8) as u8, f as u8];
    let dst = [192, 168, (f >> 4) as u8, (f * 7) as u8];
    (src, dst, 1024 + (f % 50_000) as u16, 80 + (f % 7) as u16)
}

/// A packet of flow `f`: LAN direction or the WAN reply.
pub fn flow_packet(f: u32, reply: bool, time_ns: u64) -> InputPacket {
    let (s, d, sp, dp) = flow(f);
    if reply {
        packet(WAN, time_ns, tcp_frame(d, s, dp, sp))
    } else {
        packet(LAN, time_ns, tcp_frame(s, d, sp, dp))
    }
}

/// Read-mostly traffic: `flows` flows opened first, then `n` packets of those flows in
/// both directions, well inside the TTL, plus a few new flows (writes).
pub fn read_mostly_trace(seed: u64, flows: u32, n: usize) -> Vec<InputPacket> {
    let mut rng = Rng(seed);
    let mut t = 1_000u64;
    let mut out: Vec<InputPacket> = (0..flows)
        .map(|f| {
            t += 100;
            flow_packet(f, false, t)
        })
        .collect();
    let mut next_new = flows;
    for _ in 0..n {
        t += 50 + rng.below(100);
        if rng.below(100) == 0 {
            out.push(flow_packet(next_new, false, t));
            next_new += 1;
        } else {
            let f = rng.below(u64::from(flows)) as u32;
            out.push(flow_packet(f, rng.below(2) == 1, t));
        }
    }
    out
}

/// Write-heavy traffic: new flows all the time, replies to recent and to expired flows,
/// time jumps past the TTL so that expiry frees entries, and a few unparsable frames.
pub fn write_heavy_trace(seed: u64, n: usize) -> Vec<InputPacket> {
    let mut rng = Rng(seed);
    let mut t = 1_000u64;
    let mut opened = 0u32;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        t += if rng.below(50) == 0 {
            TestFw::TTL / 2 + rng.below(TestFw::TTL)
        } else {
            1_000 + rng.below(20_000)
        };
        match rng.below(10) {
            0..=3 => {
                out.push(flow_packet(opened, false, t));
                opened += 1;
            }
            4..=7 if opened > 0 => {
                let back = rng.below(u64::from(opened.min(64))) as u32 + 1;
                out.push(flow_packet(opened - back, rng.below(3) != 0, t));
            }
            8 if opened > 0 => {
                let f = rng.below(u64::from(opened)) as u32;
                out.push(flow_packet(f, true, t));
            }
            _ => out.push(packet(
                (rng.below(2)) as u16,
                t,
                vec![0xff; 14 + rng.below(30) as usize],
            )),
        }
    }
    out
}
