//! Writes the spread figures: worst per-core imbalance (max/mean) over each NF's
//! constrained ports, 16 cores, 100,000 flows, uniform, two-/16 and two-/24 traffic, our keys
//! (RETA bits constrained) against Maestro-style keys (all 32 hash bits constrained), and
//! ours with the RETA balanced (`--balance`) on other flows of the same model.
//! Usage: `cargo run --release -p maestro-rss --example spread > results/rss-spread.csv`.

use maestro_rss::{balance, solve, spread, SolveOptions};

fn main() {
    println!("nf,keys,reta_size,key_bytes,cores,flows,traffic,imbalance,seeds");
    for nf in ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"] {
        let prog = match maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[]) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{nf}: {e}");
                continue;
            }
        };
        let analysis = match maestro_analyzer::analyze(&prog) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{nf}: {e}");
                continue;
            }
        };
        for (label, hash_bits, balanced) in [
            ("ours", None, false),
            ("maestro-style", Some(32), false),
            ("ours-balanced", None, true),
        ] {
            for model in [
                spread::Traffic::Uniform,
                spread::Traffic::TwoPrefixes,
                spread::Traffic::TwoSlash24,
            ] {
                // Median over 5 key seeds, so one lucky key does not make the figure.
                let mut v: Vec<f64> = (0..5)
                    .filter_map(|seed| {
                        let opts = SolveOptions {
                            hash_bits,
                            seed,
                            ..SolveOptions::default()
                        };
                        let mut cfg = solve(&analysis, &opts).ok()?;
                        if balanced {
                            // Tuned on one sample, judged on another.
                            let train = spread::flow_sample(&cfg, model, 100_000, 5000 + seed);
                            balance::balance(&mut cfg, &train).ok()?;
                        }
                        Some(spread::worst_imbalance(&cfg, model, 100_000, 1000 + seed))
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                let med = v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
                println!(
                    "{nf},{label},512,52,16,100000,{},{med:.3},{}",
                    model.name(),
                    v.len()
                );
            }
        }
    }
}
