//! Delta debugging and counterexample captures.

use std::cell::Cell;

use maestro_equivalence::adversarial::{frame, Tuple, UDP};
use maestro_equivalence::minimize::{
    ddmin, first_cuts, minimize, write_counterexample, MinimizeOptions,
};
use maestro_runtime::capture::{CaptureItem, CaptureReader};
use maestro_runtime::InputPacket;

/// Packet `i` of a synthetic trace: its own client and flow, one of 7 servers, on port
/// `i % 2`.
fn packet(i: usize) -> InputPacket {
    let t = Tuple {
        src: 0x0a00_0001 + i as u32,
        dst: 0xc633_6401 + (i as u32 % 7),
        sport: 1000 + i as u16,
        dport: 53,
        proto: UDP,
    };
    InputPacket {
        port: (i % 2) as u16,
        time_ns: 1_000_000 + i as u64,
        data: frame(&t, (i % 2) as u16),
    }
}

fn index_of(p: &InputPacket) -> usize {
    (p.time_ns - 1_000_000) as usize
}

#[test]
fn ddmin_finds_a_two_packet_culprit_in_a_thousand_packets() {
    let trace: Vec<InputPacket> = (0..1000).map(packet).collect();
    let calls = Cell::new(0usize);
    // Fails iff packets 137 and 802 are both present (in order).
    let fails = |ps: &[InputPacket]| {
        calls.set(calls.get() + 1);
        let idx: Vec<usize> = ps.iter().map(index_of).collect();
        idx.contains(&137) && idx.contains(&802)
    };
    let m = ddmin(&trace, fails, MinimizeOptions::default());
    let kept: Vec<usize> = m.items.iter().map(index_of).collect();
    assert_eq!(kept, vec![137, 802]);
    assert_eq!(m.kept, vec![137, 802]);
    assert!(m.one_minimal);
    assert_eq!(m.calls, calls.get(), "every predicate call is counted");
    // ddmin's worst case is O(n^2) = 10^6 calls; for k = 2 culprits it needs about
    // 2 k log2(n) ~ 40 rounds of a few tests each. Measured: well under 150.
    assert!(m.calls <= 150, "ddmin made {} predicate calls", m.calls);
    eprintln!(
        "ddmin: 2 culprits in 1000 packets with {} predicate calls",
        m.calls
    );
}

#[test]
fn ddmin_respects_its_budget_and_returns_a_failing_trace() {
    let trace: Vec<InputPacket> = (0..1000).map(packet).collect();
    let fails = |ps: &[InputPacket]| {
        let idx: Vec<usize> = ps.iter().map(index_of).collect();
        [3, 500, 997].iter().all(|k| idx.contains(k))
    };
    let m = ddmin(&trace, fails, MinimizeOptions { max_calls: 8 });
    assert!(m.calls <= 8);
    assert!(
        !m.one_minimal,
        "an 8-call budget cannot reach a 1-minimal trace here"
    );
    let idx: Vec<usize> = m.items.iter().map(index_of).collect();
    assert!(
        [3, 500, 997].iter().all(|k| idx.contains(k)),
        "the result still fails"
    );
    // Halves, then quarters: dropping the quarter 250..500 (no culprit) succeeds.
    assert_eq!(m.items.len(), 750, "some progress within the budget");
}

#[test]
fn ddmin_keeps_order_and_finds_a_single_culprit() {
    let trace: Vec<InputPacket> = (0..257).map(packet).collect();
    let m = ddmin(
        &trace,
        |ps| ps.iter().any(|p| index_of(p) == 256),
        MinimizeOptions::default(),
    );
    assert_eq!(m.items.len(), 1);
    assert_eq!(index_of(&m.items[0]), 256);
    assert!(
        m.calls <= 2 * 9 + 2,
        "binary search depth for one culprit: {}",
        m.calls
    );
}

#[test]
fn first_cuts_keep_the_flow_up_to_the_divergence() {
    let trace: Vec<InputPacket> = (0..100).map(packet).collect();
    let cuts = first_cuts(&trace, 50);
    // Packet 50's conversation is its own (unique source port): just itself.
    assert_eq!(cuts[0], vec![50]);
    // Shared address: every packet to the same server (i % 7 == 50 % 7) up to 50.
    assert!(cuts[1].iter().all(|&i| i <= 50 && i % 7 == 50 % 7));
    assert_eq!(
        *cuts.last().expect("the prefix cut"),
        (0..=50).collect::<Vec<_>>()
    );
}

#[test]
fn minimize_uses_the_cheap_cut_first() {
    let trace: Vec<InputPacket> = (0..1000).map(packet).collect();
    let calls = Cell::new(0usize);
    // Diverges iff packet 700 and an earlier packet to the same server (693) are there.
    let fails = |ps: &[InputPacket]| {
        calls.set(calls.get() + 1);
        let idx: Vec<usize> = ps.iter().map(index_of).collect();
        idx.contains(&693) && idx.contains(&700)
    };
    let m = minimize(&trace, Some(700), fails, MinimizeOptions::default());
    assert_eq!(m.kept, vec![693, 700]);
    assert_eq!(m.items.len(), 2);
    // Cut 1 (own conversation) fails the predicate, cut 2 (same server, 101 packets)
    // passes it; ddmin then works on 101 packets instead of 1000.
    assert!(m.calls < 60, "{} calls", m.calls);
}

#[test]
fn counterexamples_are_pcapng_with_ports_as_interfaces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cex.pcapng");
    let packets: Vec<InputPacket> = (0..5).map(packet).collect();
    write_counterexample(&path, &packets, 2).expect("written");
    let mut reader = CaptureReader::open(&path).expect("readable");
    let mut got = Vec::new();
    while let Some(item) = reader.next_item() {
        match item {
            CaptureItem::Packet(r) => got.push(r),
            CaptureItem::Refused(r) => panic!("refused: {r}"),
        }
    }
    assert_eq!(got.len(), 5);
    for (r, p) in got.iter().zip(&packets) {
        assert_eq!(r.interface, Some(u32::from(p.port)));
        assert_eq!(r.time_ns, p.time_ns);
        assert_eq!(r.data, p.data);
    }
    // A packet on a port beyond the NF's count still gets an interface.
    let mut far = packet(0);
    far.port = 3;
    write_counterexample(&path, &[far], 2).expect("written");
    let mut reader = CaptureReader::open(&path).expect("readable");
    match reader.next_item() {
        Some(CaptureItem::Packet(r)) => assert_eq!(r.interface, Some(3)),
        other => panic!("{other:?}"),
    }
}
