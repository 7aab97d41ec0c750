use maestro_equivalence::adversarial::{self, AdversarialContext, Steering};
use maestro_runtime::packet::ParseMode;
#[test]
fn all() {
    for name in maestro_nfs::ALL {
        let program = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(name), &[]).unwrap();
        let analysis = maestro_analyzer::analyze(&program).unwrap();
        let rss = maestro_rss::solve(&analysis, &maestro_rss::SolveOptions { cores: 4, ..Default::default() });
        let steering = rss.as_ref().ok().map(Steering::from_rss);
        let t0 = std::time::Instant::now();
        let ctx = AdversarialContext { program: &program, analysis: &analysis, steering: steering.as_ref(), cores: 4, seed: 1, parse_mode: ParseMode::Strict };
        let traces = adversarial::generate(&ctx).unwrap();
        let summary: Vec<String> = traces.iter().map(|t| format!("{}={}", t.name, t.packets.len())).collect();
        eprintln!("{name} ({:?}, rss {}): {:?} {}", t0.elapsed(), rss.is_ok(), analysis.verdict.strategy, summary.join(" "));
    }
}
