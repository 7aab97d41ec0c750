//! The two engines cross-checked on every shared-nothing NF of the library: both find a
//! configuration, Z3 proves both, each engine's keys satisfy the other engine's own
//! statement of the constraints (and the concrete-hash random check), and both report an
//! infeasible constraint set with the conflicting constraints in words.

use maestro_analyzer::sym::report::Analysis;
use maestro_rss::{check_random, solve, verify_keys, z3check, Engine, SolveError, SolveOptions};

fn analysis(nf: &str) -> Analysis {
    let prog = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(nf), &[]).expect("library NF loads");
    maestro_analyzer::analyze(&prog).expect("library NF analyses")
}

const SHARED_NOTHING: [&str; 7] = ["nop", "sbridge", "pol", "fw", "nat", "cl", "psd"];

#[test]
fn both_engines_solve_every_nf_and_accept_each_others_keys() {
    for nf in SHARED_NOTHING {
        let a = analysis(nf);
        assert_eq!(a.verdict.strategy, "shared-nothing", "{nf}");
        for (reta_size, key_bytes, hash_bits, samples) in [
            (512, 52, None, 32),
            (128, 40, None, 32),
            (2048, 52, None, 32),
            // Maestro's over-constraint: fewer samples, the best score is out of reach.
            (512, 52, Some(32), 2),
        ] {
            let mut cfgs = Vec::new();
            for engine in [Engine::Gf2, Engine::Z3] {
                let opts = SolveOptions {
                    reta_size,
                    key_bytes,
                    hash_bits,
                    samples,
                    engine,
                    seed: 11,
                    ..SolveOptions::default()
                };
                let cfg = solve(&a, &opts).unwrap_or_else(|e| panic!("{nf} {engine:?}: {e}"));
                assert_eq!(cfg.engine, engine);
                assert_eq!(cfg.freedom.is_some(), engine == Engine::Gf2);
                for p in &cfg.ports {
                    assert_eq!(p.key.len(), key_bytes, "{nf} {engine:?}");
                    assert!(p.rank > 0, "{nf} {engine:?} port {} constant", p.port);
                }
                let proofs = z3check::prove(&a, &cfg).unwrap();
                assert_eq!(proofs.len(), a.constraints.pairs.len());
                for p in proofs {
                    assert!(p.counterexample.is_none(), "{nf} {engine:?}: {p}");
                    assert_eq!(p.argument, z3check::ProofArgument::SharedRetaIndex);
                }
                check_random(&a, &cfg, 200, 5).unwrap_or_else(|e| panic!("{nf} {engine:?}: {e}"));
                cfgs.push(cfg);
            }
            // Each engine's keys against the other engine's constraints (and its own).
            for cfg in &cfgs {
                for judge in [Engine::Gf2, Engine::Z3] {
                    verify_keys(&a, cfg, judge).unwrap_or_else(|e| {
                        panic!("{nf}: {:?} keys rejected by {judge:?}: {e}", cfg.engine)
                    });
                }
            }
            // The engines are independent: different keys under constraints (without any,
            // both keep every random bit of the same seeded stream), same field choices.
            if !a.constraints.pairs.is_empty() {
                assert_ne!(cfgs[0].ports[0].key, cfgs[1].ports[0].key, "{nf}");
            }
            for (g, z) in cfgs[0].ports.iter().zip(&cfgs[1].ports) {
                assert_eq!(g.fields, z.fields, "{nf}");
                assert_eq!(g.rss_types, z.rss_types, "{nf}");
            }
        }
    }
}

#[test]
fn keys_breaking_a_constraint_are_rejected_by_both_checks() {
    // The solved firewall keys with the WAN key replaced by the LAN key: the LAN/WAN
    // constraint (lan.src == wan.dst ...) then fails, and each engine's check says so.
    let a = analysis("fw");
    let mut cfg = solve(&a, &SolveOptions::default()).unwrap();
    cfg.ports[1].key = cfg.ports[0].key.clone();
    for judge in [Engine::Gf2, Engine::Z3] {
        let e = verify_keys(&a, &cfg, judge).unwrap_err();
        assert!(
            e.contains("lan(pkt.ip.src) == wan(pkt.ip.dst)"),
            "{judge:?}: {e}"
        );
    }
    assert!(check_random(&a, &cfg, 300, 1).is_err());
}

/// The firewall with both ports restricted to hashing their source address: a LAN
/// packet's source is its WAN reply's destination, which the WAN key must ignore, so the
/// LAN key must ignore its source too and has nothing left to spread on (and vice versa).
fn infeasible_fw() -> Analysis {
    let mut a = analysis("fw");
    for f in &mut a.constraints.fields {
        f.all_classes_fields = vec!["pkt.ip.src".into()];
    }
    a
}

#[test]
fn infeasible_constraints_are_explained_by_both_engines() {
    let a = infeasible_fw();
    for engine in [Engine::Gf2, Engine::Z3] {
        let opts = SolveOptions {
            engine,
            ..SolveOptions::default()
        };
        let e = solve(&a, &opts).unwrap_err();
        assert!(matches!(e, SolveError::Infeasible(_)), "{engine:?}: {e}");
        let e = e.to_string();
        assert!(
            e.contains("would send every packet to one core"),
            "{engine:?}: {e}"
        );
        assert!(e.contains("may use only [pkt.ip.src]"), "{engine:?}: {e}");
        // The conflicting constraint, in words.
        assert!(
            e.contains("lan(pkt.ip.src) == wan(pkt.ip.dst)"),
            "{engine:?}: {e}"
        );
        // Same-port constraints play no part and are not blamed.
        assert!(
            !e.contains("a lan packet and a lan packet"),
            "{engine:?}: {e}"
        );
        assert!(e.contains("locks strategy"), "{engine:?}: {e}");
    }
}

#[test]
fn the_same_restriction_on_one_port_only_is_feasible() {
    // Only the WAN side restricted to its source: the LAN side then hashes its
    // destination (lan.dst == wan.src), which both engines find.
    let mut a = analysis("fw");
    for f in &mut a.constraints.fields {
        if f.port == 1 {
            f.all_classes_fields = vec!["pkt.ip.src".into()];
        }
    }
    for engine in [Engine::Gf2, Engine::Z3] {
        let opts = SolveOptions {
            engine,
            ..SolveOptions::default()
        };
        let cfg = solve(&a, &opts).unwrap_or_else(|e| panic!("{engine:?}: {e}"));
        assert!(cfg.ports.iter().all(|p| p.rank > 0));
        for judge in [Engine::Gf2, Engine::Z3] {
            verify_keys(&a, &cfg, judge).unwrap();
        }
    }
}
