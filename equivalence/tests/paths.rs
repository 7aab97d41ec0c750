use maestro_equivalence::paths::*;
use maestro_nfs::{nf_dir, ALL};

#[test]
fn scratch() {
    let only = std::env::var("ONLY").ok();
    for name in ALL {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t0 = std::time::Instant::now();
        let prog = maestro_analyzer::load_nf(&nf_dir(name), &[]).unwrap();
        let a = maestro_analyzer::analyze(&prog).unwrap();
        let r = path_traffic(&prog, &a, 7).unwrap();
        eprintln!(
            "{} [{:?}] q={} replays={} random={}",
            r.summary(),
            t0.elapsed(),
            r.solver_queries,
            r.replays,
            r.random_runs
        );
        for t in &r.traffic {
            eprintln!("   path {}: {} pkts: {}", t.path, t.packets.len(), t.note);
        }
        for u in &r.uncovered {
            eprintln!("   UNCOVERED {}: {:?} {}", u.path.id, u.kind, u.reason);
        }
        let c = traffic_coverage(&prog, &a, &r).unwrap();
        eprintln!("   {} unmatched={}", c.summary(), c.unmatched);
    }
}
