//! Traces and NF loading shared by the equivalence tests.
#![allow(dead_code)]

use std::path::PathBuf;

use maestro_nfs::shared_pcaps;
use maestro_runtime::capture::{CaptureItem, CaptureReader, DeviceMap, PortAssigner};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const MODES: [ParseMode; 2] = [ParseMode::Strict, ParseMode::MaestroCompat];

/// The overrides of a generated variant.
pub fn variant_sets(nf: &str, variant: &str) -> &'static [(&'static str, &'static str)] {
    maestro_generated_tests::VARIANTS
        .iter()
        .find(|(n, v, _)| *n == nf && *v == variant)
        .map(|(_, _, s)| *s)
        .expect("known variant")
}

pub fn program(nf: &str, sets: &[(&str, &str)]) -> maestro_analyzer::NfProgram {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../nfs")
        .join(nf);
    let overrides: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    maestro_analyzer::load_nf(&dir, &overrides).expect("library NF loads")
}

/// (LAN, WAN) ports of an NF, as traces and captures assign them.
pub fn sides(p: &maestro_analyzer::NfProgram) -> (u16, u16) {
    (
        p.device_port("lan").unwrap_or(0),
        p.device_port("wan").unwrap_or(1),
    )
}

pub fn synthetic(
    lan: u16,
    wan: u16,
    seed: u64,
    flows: u32,
    packets: u64,
    zipf: f64,
    rate_pps: u64,
) -> Vec<InputPacket> {
    let config = TraceConfig {
        packets,
        rate_pps,
        reply_ratio: 0.5,
        seed,
        lan_port: lan,
        wan_port: wan,
        zipf_s: zipf,
        flows: FlowSpec {
            count: flows,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        ..TraceConfig::default()
    };
    TraceGen::new(config).expect("valid trace config").collect()
}

/// The synthetic trace the tests use for a variant: for the `small` variants few flows,
/// no skew and 5,000 packets/s, so that tables fill and a flow's packets are often more
/// than the 1-3 ms timeouts apart (entries expire); 300 Zipf flows at 1 Mpps otherwise.
pub fn variant_trace(nf: &str, variant: &str, seed: u64, packets: u64) -> Vec<InputPacket> {
    let (lan, wan) = sides(&program(nf, variant_sets(nf, variant)));
    let small = variant == "small";
    let flows = if small { 12 } else { 300 };
    synthetic(
        lan,
        wan,
        seed,
        flows,
        packets,
        if small { 0.0 } else { 1.26 },
        if small { 5_000 } else { 1_000_000 },
    )
}

/// Odd frames: truncated, bytes flipped, random lengths, unusual and out-of-range input
/// ports, time jumps (and repeated timestamps).
pub fn odd_frames(base: &[InputPacket], seed: u64, n: usize) -> Vec<InputPacket> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0u64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut data = if base.is_empty() || rng.gen_bool(0.15) {
            let len = rng.gen_range(0..80);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            base[rng.gen_range(0..base.len())].data.clone()
        };
        match rng.gen_range(0..6) {
            0 if !data.is_empty() => {
                let cut = rng.gen_range(0..data.len());
                data.truncate(cut);
            }
            1 | 2 if !data.is_empty() => {
                for _ in 0..rng.gen_range(1..4) {
                    let j = rng.gen_range(0..data.len());
                    data[j] = rng.gen();
                }
            }
            3 if data.len() > 14 => data[14] = rng.gen_range(0x40..0x50), // odd IHL
            _ => {}
        }
        t += match rng.gen_range(0..10) {
            0 => 0,
            1 => rng.gen_range(1_000_000..200_000_000_000),
            _ => rng.gen_range(0..5_000),
        };
        let port = if i % 17 == 0 {
            rng.gen_range(0..4)
        } else {
            rng.gen_range(0..2)
        };
        out.push(InputPacket {
            port,
            time_ns: t,
            data,
        });
    }
    out
}

/// The odd-frame trace of a variant.
pub fn variant_odd(nf: &str, variant: &str) -> Vec<InputPacket> {
    let (lan, wan) = sides(&program(nf, variant_sets(nf, variant)));
    let base = synthetic(lan, wan, 3, 8, 200, 0.0, 1_000_000);
    odd_frames(&base, 5, 4_000)
}

/// Every shared capture as (name, packets) with the NF's ports, clock never going
/// back (as `maestro run` replays); empty when `../shared/pcaps` is absent.
pub fn captures(lan: u16, wan: u16) -> Vec<(String, Vec<InputPacket>)> {
    let Some(pcaps) = shared_pcaps() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pcap in &pcaps {
        let reader = CaptureReader::open(pcap).expect("shared capture opens");
        let mut assigner = PortAssigner::new(DeviceMap::Auto, lan, wan);
        let mut clock = 0u64;
        let mut packets = Vec::new();
        for item in reader {
            let CaptureItem::Packet(record) = item else {
                continue;
            };
            let Ok(port) = assigner.assign(&record) else {
                continue;
            };
            clock = clock.max(record.time_ns);
            packets.push(InputPacket {
                port,
                time_ns: clock,
                data: record.data,
            });
        }
        out.push((pcap.display().to_string(), packets));
    }
    out
}
