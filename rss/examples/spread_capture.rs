//! Spread on real captures (column (c) of issue 5): per-core imbalance (max/mean) of the
//! packets and of the distinct IPv4 5-tuples of each capture in `../shared/pcaps/` worth
//! measuring, 16 cores, 512-entry RETA, 52-byte keys; our keys against Maestro-style
//! keys (all 32 hash bits constrained), each with the round-robin table and with the
//! table `--balance` computes for the same capture. Ports come from `--device-map auto`
//! (classic pcap: the side that opened a conversation is LAN). Median over 5 key seeds.
//! `ideal` is the median max/mean of the same number of flows thrown uniformly at random
//! onto 16 cores (1000 seeded draws): what a perfect hash would get on so few flows.
//! Usage: `cargo run --release -p maestro-rss --example spread_capture > results/rss-spread-capture.csv`.

use maestro_rss::{balance, solve, spread, SolveOptions};
use maestro_runtime::capture::DeviceMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The captures with more than a handful of IPv4 flows (the others hold 2-8 packets).
const CAPTURES: [&str; 2] = [
    "zeek-wikipedia.pcap",
    "castan-dpdk-nat-hashring-castan.pcap",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median max/mean of `flows` balls thrown uniformly into `cores` bins.
fn ideal(flows: usize, cores: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    median(
        (0..1000)
            .map(|_| {
                let mut bins = vec![0usize; cores];
                for _ in 0..flows {
                    bins[rng.gen_range(0..cores)] += 1;
                }
                spread::imbalance(&bins)
            })
            .collect(),
    )
}

fn main() {
    let Some(pcaps) = maestro_nfs::shared_pcaps() else {
        std::process::exit(1);
    };
    println!("nf,keys,balance,capture,cores,packets,flows,packet_imbalance,flow_imbalance,ideal_flow_imbalance,packet_bound,seeds");
    for name in CAPTURES {
        let Some(path) = pcaps.iter().find(|p| p.ends_with(name)) else {
            eprintln!("{name}: not in ../shared/pcaps");
            continue;
        };
        for nf in ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"] {
            let analysis = match maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[])
                .map_err(|e| e.to_string())
                .and_then(|p| maestro_analyzer::analyze(&p).map_err(|e| e.to_string()))
            {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("{nf}: {e}");
                    continue;
                }
            };
            let (lan, wan) = balance::lan_wan(&analysis);
            let sample =
                match balance::read_capture(path, DeviceMap::Auto, lan, wan, analysis.nf.ports) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{nf}: {e}");
                        continue;
                    }
                };
            let flows = balance::ipv4_flows(&sample).len();
            for (label, hash_bits) in [("ours", None), ("maestro-style", Some(32))] {
                for balanced in [false, true] {
                    let mut pk = Vec::new();
                    let mut fl = Vec::new();
                    let mut bound = Vec::new();
                    for seed in 0..5 {
                        let opts = SolveOptions {
                            hash_bits,
                            seed,
                            ..SolveOptions::default()
                        };
                        let Ok(mut cfg) = solve(&analysis, &opts) else {
                            continue;
                        };
                        let loads = balance::bucket_loads(&cfg, &sample);
                        let mean = loads.iter().sum::<u64>() as f64 / cfg.cores as f64;
                        bound.push(
                            (loads.iter().copied().max().unwrap_or(0) as f64 / mean).max(1.0),
                        );
                        if balanced && balance::balance(&mut cfg, &sample).is_err() {
                            continue;
                        }
                        let (p, f) = spread::capture_imbalance(&cfg, &sample);
                        pk.push(p);
                        fl.push(f);
                    }
                    println!(
                        "{nf},{label},{},{name},16,{},{flows},{:.3},{:.3},{:.3},{:.3},{}",
                        if balanced { "yes" } else { "no" },
                        sample.packets.len(),
                        median(pk.clone()),
                        median(fl),
                        ideal(flows, 16),
                        median(bound),
                        pk.len()
                    );
                }
            }
        }
    }
}
