//! Errors name the construct and the line; nothing panics.

use maestro_analyzer::{analyze, analyze_with, load_nf, AnalysisError, AnalyzeOptions, StmtKind};
use std::path::PathBuf;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn solver_timeout_names_the_branch() {
    let prog = load_nf(&path("tests/fixtures/hard"), &[]).expect("loads");
    let opts = AnalyzeOptions {
        solver_timeout_ms: 200,
        ..AnalyzeOptions::default()
    };
    match analyze_with(&prog, &opts) {
        Err(e @ AnalysisError::Solver { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("hard.nf:15:"), "{msg}");
            assert!(msg.contains("the if condition"), "{msg}");
            assert!(msg.contains("200 ms"), "{msg}");
        }
        other => panic!("expected a solver error, got {other:?}"),
    }
}

#[test]
fn too_many_paths_stops_with_a_location() {
    let prog = load_nf(&path("../nfs/fw"), &[]).expect("loads");
    let opts = AnalyzeOptions {
        max_paths: 3,
        ..AnalyzeOptions::default()
    };
    match analyze_with(&prog, &opts) {
        Err(e @ AnalysisError::TooManyPaths { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("fw.nf:"), "{msg}");
            assert!(msg.contains("limit of 3 paths"), "{msg}");
        }
        other => panic!("expected too many paths, got {other:?}"),
    }
}

#[test]
fn a_hand_built_program_without_final_action_is_an_error() {
    let mut prog = load_nf(&path("../nfs/fw"), &[]).expect("loads");
    // Drop the final `forward(wan)`: LAN paths now fall off the end of `process`.
    let last = prog.process.pop().expect("a statement");
    assert!(matches!(last.kind, StmtKind::Action(_)));
    match analyze(&prog) {
        Err(e @ AnalysisError::Unsupported { .. }) => {
            assert!(e.to_string().contains("without an action"), "{e}");
        }
        other => panic!("expected an unsupported construct, got {other:?}"),
    }
}

#[test]
fn a_call_on_an_undeclared_object_is_an_error() {
    let mut prog = load_nf(&path("../nfs/psd"), &[]).expect("loads");
    prog.states.truncate(1); // `ports` disappears; its calls remain
    match analyze(&prog) {
        Err(e @ AnalysisError::Unsupported { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("psd.nf:30:"), "{msg}");
            assert!(msg.contains("not declared"), "{msg}");
        }
        other => panic!("expected an unsupported construct, got {other:?}"),
    }
}

#[test]
fn every_fixture_analyses_or_fails_cleanly() {
    for name in [
        "fw_mac",
        "fw_mac_ip",
        "pol_mixed",
        "counters",
        "global_counter",
    ] {
        let prog = load_nf(&path(&format!("tests/fixtures/{name}")), &[]).expect("loads");
        analyze(&prog).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
