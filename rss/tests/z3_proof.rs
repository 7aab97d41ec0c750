//! Z3 proofs over the concrete keys and RETA: every solved configuration co-locates all
//! constrained packet pairs; Microsoft's default key does not for the firewall, and Z3
//! finds a pair that shows it (checked again with the runtime's hash).

use maestro_analyzer::sym::report::Analysis;
use maestro_rss::{solve, z3check, SolveOptions};
use maestro_runtime::rss::{HashInput, Reta, Toeplitz, MICROSOFT_KEY};

fn analysis(nf: &str) -> Analysis {
    let prog = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[]).expect("library NF loads");
    maestro_analyzer::analyze(&prog).expect("library NF analyses")
}

#[test]
fn solved_configurations_are_proven() {
    for nf in ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"] {
        let a = analysis(nf);
        for (reta_size, key_bytes, hash_bits) in
            [(512, 52, None), (128, 40, None), (512, 52, Some(32))]
        {
            let opts = SolveOptions {
                reta_size,
                key_bytes,
                hash_bits,
                seed: 3,
                ..SolveOptions::default()
            };
            let cfg = solve(&a, &opts).unwrap();
            for p in z3check::prove(&a, &cfg).unwrap() {
                assert!(
                    p.counterexample.is_none(),
                    "{nf}: {} fails: {:?}",
                    p.constraint,
                    p.counterexample
                );
            }
        }
    }
}

#[test]
fn microsoft_key_fails_the_firewall() {
    let a = analysis("fw");
    let mut cfg = solve(
        &a,
        &SolveOptions {
            key_bytes: 40,
            ..SolveOptions::default()
        },
    )
    .unwrap();
    for p in &mut cfg.ports {
        p.key = MICROSOFT_KEY.to_vec();
    }
    let proofs = z3check::prove(&a, &cfg).unwrap();
    let failing: Vec<_> = proofs
        .iter()
        .filter_map(|p| p.counterexample.map(|c| (p, c)))
        .collect();
    // Same-port constraints hold trivially (same key, same fields); the LAN/WAN one fails.
    assert_eq!(failing.len(), 1, "{proofs:?}");
    let (proof, (p1, c1, p2, c2)) = failing[0];
    assert!(
        proof
            .constraint
            .contains("lan(pkt.ip.src) == wan(pkt.ip.dst)"),
        "{}",
        proof.constraint
    );
    // The pair really is a reply of the first packet...
    assert_eq!((p1.0, p1.1, p1.2, p1.3), (p2.1, p2.0, p2.3, p2.2));
    // ...and the concrete NIC hash sends them to different cores.
    let t = Toeplitz::new(&MICROSOFT_KEY).unwrap();
    let reta = Reta::new(cfg.reta.clone()).unwrap();
    let q = |p: (u32, u32, u16, u16)| {
        reta.queue(
            t.hash_unchecked(HashInput::ipv4(p.0.into(), p.1.into(), p.2, p.3, true).as_bytes()),
        )
    };
    assert_eq!(q(p1), c1);
    assert_eq!(q(p2), c2);
    assert_ne!(c1, c2);
}
