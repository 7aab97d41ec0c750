//! How evenly a configuration spreads flows over cores: `max / mean` packets per core,
//! judged on uniform flows and on flows whose addresses sit in two /16 or two /24 prefixes
//! (what a real site looks like; uniform traffic hides keys that ignore low address bits).

use maestro_runtime::rss::{HashInput, Reta, Toeplitz};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::balance::{CaptureSample, CapturedPacket, Hashers};
use crate::RssConfig;

/// A flow as seen on one port: `(src, dst, sport, dport)`.
pub type Flow = (u32, u32, u16, u16);

/// Traffic models for [`flows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Addresses and ports uniform over their whole ranges.
    Uniform,
    /// Sources uniform in 10.1.0.0/16, destinations uniform in 192.168.0.0/16, ports
    /// uniform.
    TwoPrefixes,
    /// Sources uniform in 10.1.1.0/24, destinations uniform in 192.168.1.0/24, ports
    /// uniform: only 8 address bits vary on each side, so a key that hashes one address
    /// alone has 256 values to spread.
    TwoSlash24,
}

impl Traffic {
    pub fn name(self) -> &'static str {
        match self {
            Traffic::Uniform => "uniform",
            Traffic::TwoPrefixes => "two-/16",
            Traffic::TwoSlash24 => "two-/24",
        }
    }
}

/// `n` flows of the model, seeded.
pub fn flows(model: Traffic, n: usize, seed: u64) -> Vec<Flow> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| match model {
            Traffic::Uniform => (rng.gen(), rng.gen(), rng.gen(), rng.gen()),
            Traffic::TwoPrefixes => (
                0x0a01_0000 | u32::from(rng.gen::<u16>()),
                0xc0a8_0000 | u32::from(rng.gen::<u16>()),
                rng.gen(),
                rng.gen(),
            ),
            Traffic::TwoSlash24 => (
                0x0a01_0100 | u32::from(rng.gen::<u8>()),
                0xc0a8_0100 | u32::from(rng.gen::<u8>()),
                rng.gen(),
                rng.gen(),
            ),
        })
        .collect()
}

/// Flows per core when `flows` arrive on port index `port` (IPv4 TCP/UDP hash).
pub fn per_core(cfg: &RssConfig, port: usize, flows: &[Flow]) -> Vec<usize> {
    let mut counts = vec![0usize; cfg.cores];
    let (Some(p), Ok(reta)) = (cfg.ports.get(port), Reta::new(cfg.reta_of(port).to_vec())) else {
        return counts;
    };
    let Ok(t) = Toeplitz::new(&p.key) else {
        return counts;
    };
    for &(s, d, sp, dp) in flows {
        let h = t.hash_unchecked(HashInput::ipv4(s.into(), d.into(), sp, dp, true).as_bytes());
        if let Some(c) = counts.get_mut(reta.queue(h) as usize) {
            *c += 1;
        }
    }
    counts
}

/// `max / mean` of per-core counts (1.0 is perfect).
pub fn imbalance(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    if total == 0 || counts.is_empty() {
        return 1.0;
    }
    let mean = total as f64 / counts.len() as f64;
    *counts.iter().max().unwrap_or(&0) as f64 / mean
}

/// The ports [`worst_imbalance`] judges: the constrained ones, or all when none is.
fn judged_ports(cfg: &RssConfig) -> Vec<usize> {
    let constrained: Vec<usize> = (0..cfg.ports.len())
        .filter(|&i| cfg.ports[i].constrained)
        .collect();
    if constrained.is_empty() {
        (0..cfg.ports.len()).collect()
    } else {
        constrained
    }
}

/// The worst imbalance over the NF's constrained ports (all ports when none is).
pub fn worst_imbalance(cfg: &RssConfig, model: Traffic, n: usize, seed: u64) -> f64 {
    let fl = flows(model, n, seed);
    judged_ports(cfg)
        .into_iter()
        .map(|i| imbalance(&per_core(cfg, i, &fl)))
        .fold(1.0, f64::max)
}

/// `n` flows of the model (seeded) as one TCP/UDP packet each on every judged port: a
/// sample for [`crate::balance::balance`], so a RETA can be tuned to a traffic model the
/// way `--balance` tunes it to a capture.
pub fn flow_sample(cfg: &RssConfig, model: Traffic, n: usize, seed: u64) -> CaptureSample {
    let fl = flows(model, n, seed);
    let packets: Vec<CapturedPacket> = judged_ports(cfg)
        .into_iter()
        .flat_map(|port| {
            fl.iter()
                .map(move |&(src, dst, sport, dport)| CapturedPacket {
                    record: 0,
                    port: port as u16,
                    class: maestro_analyzer::PacketClass::Ipv4TcpUdp,
                    src,
                    dst,
                    proto: 6,
                    sport,
                    dport,
                })
        })
        .collect();
    CaptureSample {
        capture: format!("{} flows ({n}, seed {seed})", model.name()),
        records: packets.len() as u64,
        packets,
        refused: 0,
        refused_examples: Vec::new(),
    }
}

/// Packets per core for captured packets (each on its own port, hashed as the NIC would:
/// [`crate::balance::nic_input`]); pass [`crate::balance::ipv4_flows`] to count flows.
pub fn capture_per_core(cfg: &RssConfig, packets: &[CapturedPacket]) -> Vec<usize> {
    let mut counts = vec![0usize; cfg.cores];
    let h = Hashers::new(cfg);
    for p in packets {
        let pi = usize::from(p.port);
        let reta = cfg.reta_of(pi);
        let Some(b) = h.bucket(cfg, p, reta.len().max(1)) else {
            continue;
        };
        if let Some(c) = reta.get(b).and_then(|&q| counts.get_mut(usize::from(q))) {
            *c += 1;
        }
    }
    counts
}

/// `max / mean` packets and flows per core on a capture: `(packets, flows)`.
pub fn capture_imbalance(cfg: &RssConfig, sample: &CaptureSample) -> (f64, f64) {
    (
        imbalance(&capture_per_core(cfg, &sample.packets)),
        imbalance(&capture_per_core(cfg, &crate::balance::ipv4_flows(sample))),
    )
}
