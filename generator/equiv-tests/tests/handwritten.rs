//! The hand-written firewall the benchmarks compare generated code with has fw's
//! semantics: the interpreter's observations and faults on synthetic traces (default
//! and tiny tables), odd frames and the shared captures.

mod common;

use maestro_generated_tests::handwritten_fw::Firewall;
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_runtime::InputPacket;

fn check(sets: &[(&str, &str)], capacity: u32, ttl: u64, what: &str, packets: &[InputPacket]) {
    let prog = common::program("fw", sets);
    let mut interp = Interpreter::new(&prog, InterpOptions::default()).expect("starts");
    let mut fw = Firewall::new(capacity, ttl).expect("starts");
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(fw.process(p), interp.process(p), "{what}: packet {i}");
    }
    assert_eq!(fw.fault_count(), interp.fault_count(), "{what}: faults");
}

#[test]
fn the_handwritten_firewall_is_fw() {
    let trace = common::variant_trace("fw", "default", 11, 20_000);
    check(&[], 65536, 100_000_000_000, "a synthetic trace", &trace);
    let small = common::variant_trace("fw", "small", 11, 6_000);
    let sets = [("max_flows", "4"), ("expiration_time", "2ms")];
    check(&sets, 4, 2_000_000, "a small table", &small);
    check(
        &sets,
        4,
        2_000_000,
        "odd frames",
        &common::variant_odd("fw", "small"),
    );
    for (name, packets) in common::captures(0, 1) {
        check(&[], 65536, 100_000_000_000, &name, &packets);
    }
}
