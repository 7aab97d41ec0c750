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

/// The runtime's core for a tuple on a port with its own key and table.
fn core_of(key: &[u8], reta: &[u16], p: (u32, u32, u16, u16)) -> u16 {
    let t = Toeplitz::new(key).unwrap();
    let reta = Reta::new(reta.to_vec()).unwrap();
    reta.queue(t.hash_unchecked(HashInput::ipv4(p.0.into(), p.1.into(), p.2, p.3, true).as_bytes()))
}

#[test]
fn any_shared_reta_is_proven_by_equal_index_bits() {
    use maestro_rss::z3check::ProofArgument;
    // A scrambled shared table over 12 cores (not round-robin, not a power of two).
    for nf in ["fw", "nat", "psd"] {
        let a = analysis(nf);
        let mut cfg = solve(
            &a,
            &SolveOptions {
                cores: 12,
                reta_size: 2048,
                ..SolveOptions::default()
            },
        )
        .unwrap();
        cfg.reta = (0..2048u32)
            .map(|b| (b.wrapping_mul(2654435761) >> 7) as u16 % 12)
            .collect();
        for p in z3check::prove(&a, &cfg).unwrap() {
            assert!(p.counterexample.is_none(), "{nf}: {p}");
            assert_eq!(p.argument, ProofArgument::SharedRetaIndex, "{nf}: {p}");
        }
    }
}

#[test]
fn a_reta_differing_between_co_located_ports_gets_a_counterexample() {
    use maestro_rss::z3check::ProofArgument;
    // The checker's mutant: the firewall's WAN port loads a table shifted by one bucket.
    let a = analysis("fw");
    let mut cfg = solve(&a, &SolveOptions::default()).unwrap();
    let mut shifted = cfg.reta.clone();
    shifted.rotate_left(1);
    cfg.ports[1].reta = Some(shifted.clone());
    let proofs = z3check::prove(&a, &cfg).unwrap();
    let mut failing = 0;
    for p in &proofs {
        if p.ports[0] == p.ports[1] {
            // One port, one table: still proven by the fast argument.
            assert!(p.counterexample.is_none(), "{p}");
            assert_eq!(p.argument, ProofArgument::SharedRetaIndex);
            continue;
        }
        assert_eq!(p.argument, ProofArgument::RetaLookup);
        let (p1, c1, p2, c2) = p.counterexample.expect("differing tables must fail");
        failing += 1;
        // A reply pair that the concrete NIC hash sends to different cores.
        assert_eq!((p1.0, p1.1, p1.2, p1.3), (p2.1, p2.0, p2.3, p2.2));
        assert_eq!(core_of(&cfg.ports[0].key, &cfg.reta, p1), c1);
        assert_eq!(core_of(&cfg.ports[1].key, &shifted, p2), c2);
        assert_ne!(c1, c2);
        assert!(p.to_string().starts_with("COUNTEREXAMPLE"), "{p}");
    }
    assert_eq!(failing, 1, "{proofs:?}");
    // The same tables loaded on both ports prove again.
    cfg.ports[0].reta = Some(shifted);
    for p in z3check::prove(&a, &cfg).unwrap() {
        assert!(p.counterexample.is_none(), "{p}");
        assert_eq!(p.argument, ProofArgument::SharedRetaIndex);
    }
}

#[test]
fn unequal_index_bits_can_still_be_proven_through_the_table() {
    use maestro_rss::z3check::ProofArgument;
    // Microsoft's key breaks the firewall's index bits, but a table whose every entry is
    // core 3 sends everything to one core: the lookup argument proves it, and a table
    // with two cores (split on the top index bit) gets a counterexample again.
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
    cfg.reta = vec![3; 512];
    let proofs = z3check::prove(&a, &cfg).unwrap();
    let cross = proofs.iter().find(|p| p.ports == [0, 1]).unwrap();
    assert!(cross.counterexample.is_none(), "{cross}");
    assert_eq!(cross.argument, ProofArgument::RetaLookup);
    cfg.reta = (0..512).map(|b| if b < 256 { 3 } else { 5 }).collect();
    let proofs = z3check::prove(&a, &cfg).unwrap();
    let cross = proofs.iter().find(|p| p.ports == [0, 1]).unwrap();
    let (p1, c1, p2, c2) = cross.counterexample.expect("two cores split by one bit");
    assert_eq!(core_of(&MICROSOFT_KEY, &cfg.reta, p1), c1);
    assert_eq!(core_of(&MICROSOFT_KEY, &cfg.reta, p2), c2);
    assert_ne!(c1, c2);
}
