//! Generated sequential code equals the reference interpreter, packet by packet, on every
//! library NF: synthetic traces (with default and with tiny capacities and timeouts, so
//! tables fill and entries expire), odd and random frames, and every shared capture.
//! Fault counts must match too.

use maestro_nfs::shared_pcaps;
use std::path::PathBuf;

use maestro_generated_tests::{make, VARIANTS};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::capture::{CaptureItem, CaptureReader, DeviceMap, PortAssigner};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::InputPacket;
use maestro_trafficgen::{FlowSpec, TraceConfig, TraceGen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MODES: [ParseMode; 2] = [ParseMode::Strict, ParseMode::MaestroCompat];

fn program(nf: &str, sets: &[(&str, &str)]) -> maestro_analyzer::NfProgram {
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
fn sides(p: &maestro_analyzer::NfProgram) -> (u16, u16) {
    (
        p.device_port("lan").unwrap_or(0),
        p.device_port("wan").unwrap_or(1),
    )
}

/// Replays packets through both and asserts equal observations and fault counts.
fn assert_equivalent(
    nf: &str,
    variant: &str,
    mode: ParseMode,
    what: &str,
    packets: &[InputPacket],
) {
    let sets = VARIANTS
        .iter()
        .find(|(n, v, _)| *n == nf && *v == variant)
        .map(|(_, _, s)| *s)
        .expect("known variant");
    let prog = program(nf, sets);
    let mut interp =
        Interpreter::new(&prog, InterpOptions { parse_mode: mode }).expect("interpreter starts");
    let mut gen = make(nf, variant, mode).expect("generated NF starts");
    for (i, p) in packets.iter().enumerate() {
        let want = interp.process(p);
        let got = gen.process(p);
        assert_eq!(
            got,
            want,
            "{nf} ({variant}, {mode:?}) on {what}: packet {i} ({} bytes, port {}, t={}) differs",
            p.data.len(),
            p.port,
            p.time_ns
        );
    }
    assert_eq!(
        gen.fault_count(),
        interp.fault_count(),
        "{nf} ({variant}, {mode:?}) on {what}: fault counts differ"
    );
}

fn synthetic(
    lan: u16,
    wan: u16,
    seed: u64,
    flows: u32,
    packets: u64,
    zipf: f64,
) -> Vec<InputPacket> {
    let config = TraceConfig {
        packets,
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

/// Odd frames: truncated, bytes flipped, random lengths, unusual and out-of-range input
/// ports, time jumps (and repeated timestamps).
fn odd_frames(base: &[InputPacket], seed: u64, n: usize) -> Vec<InputPacket> {
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

#[test]
fn every_generated_variant_matches_the_interpreter_on_synthetic_traces() {
    for (nf, variant, sets) in VARIANTS {
        let (lan, wan) = sides(&program(nf, sets));
        let small = *variant == "small";
        let flows = if small { 12 } else { 300 };
        let trace = synthetic(lan, wan, 11, flows, 6_000, if small { 0.0 } else { 1.26 });
        for mode in MODES {
            assert_equivalent(nf, variant, mode, "a synthetic trace", &trace);
        }
    }
}

#[test]
fn every_generated_variant_matches_the_interpreter_on_odd_frames() {
    for (nf, variant, sets) in VARIANTS {
        let (lan, wan) = sides(&program(nf, sets));
        let base = synthetic(lan, wan, 3, 8, 200, 0.0);
        let odd = odd_frames(&base, 5, 4_000);
        for mode in MODES {
            assert_equivalent(nf, variant, mode, "odd frames", &odd);
        }
    }
}

#[test]
fn every_generated_variant_matches_the_interpreter_on_the_shared_captures() {
    let Some(pcaps) = shared_pcaps() else { return };
    for (nf, variant, sets) in VARIANTS {
        let (lan, wan) = sides(&program(nf, sets));
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
                // The NF's clock never goes back (as `maestro run` replays).
                clock = clock.max(record.time_ns);
                packets.push(InputPacket {
                    port,
                    time_ns: clock,
                    data: record.data,
                });
            }
            for mode in MODES {
                assert_equivalent(nf, variant, mode, &pcap.display().to_string(), &packets);
            }
        }
    }
}
