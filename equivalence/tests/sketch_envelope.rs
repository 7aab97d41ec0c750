//! A replicated count-min sketch under `sn`, through the generated cl binary: each core's
//! copy sees only its own clients, so its collisions differ from the sequential sketch's.
//! The checker must report that as the `capacity` envelope naming the sketch (the
//! sketch's width is its capacity), not as an unexplained `output` divergence.

use std::path::PathBuf;

use maestro_build::Builder;
use maestro_equivalence::adversarial::{frame, Tuple, UDP};
use maestro_equivalence::report::{DivergenceClass, SourceKind, SourceReport, VerifyReport};
use maestro_equivalence::verify::{Source, Verifier, VerifyOptions};
use maestro_runtime::exec::Strategy;
use maestro_runtime::InputPacket;

/// `clients` (source addresses) each open `flows` UDP flows to one server from WAN.
fn many_clients(clients: u32, flows: u16) -> Vec<InputPacket> {
    let mut out = Vec::new();
    for f in 0..flows {
        for c in 0..clients {
            let t = Tuple {
                src: 0x0a00_0000 + c,
                dst: 0xc633_6401,
                sport: 1000 + f,
                dport: 80,
                proto: UDP,
            };
            out.push(InputPacket {
                port: 0,
                time_ns: 1_000 * out.len() as u64,
                data: frame(&t, 0),
            });
        }
    }
    out
}

#[test]
fn per_core_sketch_collisions_are_the_capacity_envelope() {
    let mut opts = VerifyOptions::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nfs/cl"));
    // A 4-cell-wide sketch with limit 2: 64 clients crowd every cell of the sequential
    // sketch, half as many crowd each core's copy. The flow table (65,536) never fills.
    opts.overrides = vec![
        ("capacity".into(), "4".into()),
        ("max_clients".into(), "2".into()),
    ];
    opts.seeds = 1;
    opts.work_dir =
        std::env::temp_dir().join(format!("maestro-verify-sketch-{}", std::process::id()));
    let builder = Builder::new(Some(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("maestro-cache"),
    ))
    .with_progress(false);
    let verifier = Verifier::prepare(opts, &builder, Box::new(|_| {})).expect("cl builds");
    let packets = many_clients(64, 4);
    let source = Source {
        report: SourceReport {
            name: "many-clients".into(),
            kind: SourceKind::Synthetic,
            purpose: "sketch collisions".into(),
            packets: packets.len() as u64,
            refused: 0,
            refused_reasons: Vec::new(),
        },
        packets,
    };
    let mut report = VerifyReport::new("cl", false);
    verifier
        .check_source(&source, &[Strategy::Sn], &mut report)
        .expect("checks");
    let text = report.render_text(5);
    let sn: Vec<_> = report
        .strategies
        .iter()
        .filter(|r| r.strategy == Strategy::Sn)
        .collect();
    assert_eq!(sn.len(), 2, "threads and one seed:\n{text}");
    for run in sn {
        let capacity = run
            .counts
            .iter()
            .find(|c| c.class == DivergenceClass::Capacity)
            .unwrap_or_else(|| {
                panic!("the split sketches must admit what the shared one refuses:\n{text}")
            });
        assert!(capacity.count > 0);
        assert!(
            capacity.first.detail.contains("sketch clients"),
            "the envelope names the sketch:\n{text}"
        );
        assert_eq!(run.failures, 0, "no unexplained divergence:\n{text}");
        assert!(run.counts.iter().all(|c| c.class.is_envelope()), "{text}");
    }
    // The generated seq is still bit-for-bit the interpreter.
    let seq = report
        .strategies
        .iter()
        .find(|r| r.strategy == Strategy::Seq)
        .expect("a seq run");
    assert!(seq.counts.is_empty(), "{text}");
}
