//! Programs that must load, and what the checked program says about them.

use maestro_analyzer::{
    load_nf, parse_and_check, ConfigValue, IntTy, LoadError, StateKind, StmtKind, Type, Value,
};
use std::path::PathBuf;

/// The example of `docs/nf-language.md`.
const FW: &str = include_str!("../../docs/examples/fw.nf");

fn pairs(o: &[(&str, &str)]) -> Vec<(String, String)> {
    o.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_spec_firewall_checks() {
    let p = parse_and_check("fw.nf", FW, &[], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.name, "fw");
    assert_eq!(p.port_count, 2);
    assert_eq!(p.devices.len(), 2);
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.records[0].fields.len(), 5);
    assert_eq!(
        p.config("expiration_time").map(|c| &c.value),
        Some(&ConfigValue::Value(Value::Int(IntTy::U64, 100_000_000_000)))
    );
    let (_, flows) = p.state("flows").unwrap();
    assert_eq!(
        flows.kind,
        StateKind::Table {
            key: Type::Record(maestro_analyzer::RecordId(0)),
            value: Some(Type::Device),
            capacity: 65536,
            ttl: 100_000_000_000,
        }
    );
    // Two `key`s, two `i`s and `out`: one slot each.
    assert_eq!(p.locals.len(), 5);
    assert!(matches!(p.process[1].kind, StmtKind::Parse { .. }));
    assert!(p
        .config_summary()
        .contains("state flows: table<FlowId, device>"));
}

#[test]
fn overrides_change_config_devices_and_state_params() {
    let o = pairs(&[
        ("max_flows", "8"),
        ("wan", "3"),
        ("expiration_time", "250ms"),
    ]);
    let p = parse_and_check("fw.nf", FW, &o, None).unwrap();
    assert_eq!(p.port_count, 4);
    assert_eq!(p.device("wan").map(|d| d.port), Some(3));
    assert!(p.config("max_flows").unwrap().overridden);
    match &p.states[0].kind {
        StateKind::Table { capacity, ttl, .. } => {
            assert_eq!((*capacity, *ttl), (8, 250_000_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn overrides_that_break_a_state_are_source_errors() {
    let err = parse_and_check("fw.nf", FW, &pairs(&[("max_flows", "0")]), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected `capacity` of `flows` to be > 0, found 0"),
        "{err}"
    );
}

#[test]
fn constant_state_parameters_are_evaluated() {
    let src = r#"
nf pol "policer-like";
device lan = 1;
device wan = 0;
config rate: u64 = 1_000_000_000;
config burst: u64 = 10_000_000_000;
config shift: u32 = 4;
state buckets: table<ip4, u64>(capacity: 1 << shift, ttl: mul_div(burst, 1_000_000_000, rate) + 1us);
state v: vector<i64>(capacity: max(shift, 3) * 2);
process {
    if in == lan { forward(wan); } else if in == wan { forward(lan); } else { drop; }
}
"#;
    let p = parse_and_check("pol.nf", src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.states[0].kind,
        StateKind::Table {
            key: Type::Ip4,
            value: Some(Type::U64),
            capacity: 16,
            ttl: 10_000_001_000,
        }
    );
    assert!(matches!(
        p.states[1].kind,
        StateKind::Vector { capacity: 8, .. }
    ));
}

#[test]
fn literals_take_their_type_from_context() {
    let src = r#"
nf lit "literal typing";
device a = 0;
device b = 1;
config c: i64 = -5;
process {
    let x: u8 = 200;
    let y = 3 + x;                 // u8
    let z: i64 = -1 - c;
    let w = 0x0a000001 as ip4;
    parse ipv4 else { drop; }
    if pkt.ip.dst & 255.255.255.0 == w & 255.255.255.0 && y > 2 && z < 0 {
        forward(b);
    }
    if min(1, pkt.len) == 1 { flood; }
    forward(1 as device);
}
"#;
    let p = parse_and_check("lit.nf", src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    let tys: Vec<Type> = p.locals.iter().map(|l| l.ty).collect();
    assert_eq!(tys, vec![Type::U8, Type::U8, Type::I64, Type::Ip4]);
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("maestro-analyzer-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SBRIDGE: &str = r#"
nf sbridge "static bridge";
device p0 = 0;
device p1 = 1;
config rules: file = "rules.txt";
record StaticKey { mac: mac, port: device }
record Out { port: i64, ok: bool }
state table: map<StaticKey, Out>(capacity: 4, init: rules);
process {
    if let out = table.get(StaticKey { mac: pkt.eth.dst, port: in }) {
        if out.port == -1 { flood; }
        forward(out.port as device);
    }
    flood;
}
"#;

#[test]
fn load_nf_reads_a_folder_and_its_init_file() {
    let dir = temp_dir("sbridge").join("sbridge");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sbridge.nf"), SBRIDGE).unwrap();
    std::fs::write(
        dir.join("rules.txt"),
        "# mac in out ok\n02:00:00:00:00:0a 0 1 true\n\n  ff:ff:ff:ff:ff:ff\t1  -1 false # flood\n",
    )
    .unwrap();
    let p = load_nf(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    let StateKind::Map {
        init: Some(init), ..
    } = &p.states[0].kind
    else {
        panic!("no init")
    };
    assert_eq!(init.entries.len(), 2);
    let (k, v) = &init.entries[1];
    assert_eq!(
        *k,
        Value::Record(vec![Value::Mac([0xff; 6]), Value::Device(1)].into())
    );
    assert_eq!(
        *v,
        Value::Record(vec![Value::Int(IntTy::I64, (-1i64) as u64), Value::Bool(false)].into())
    );

    // The file itself, and another init file through --set.
    std::fs::write(dir.join("other.txt"), "02:00:00:00:00:0b 1 0 true\n").unwrap();
    let p = load_nf(&dir.join("sbridge.nf"), &pairs(&[("rules", "other.txt")])).unwrap();
    let StateKind::Map {
        init: Some(init), ..
    } = &p.states[0].kind
    else {
        panic!("no init")
    };
    assert_eq!(init.entries.len(), 1);
}

#[test]
fn init_file_errors_name_file_line_and_column() {
    let dir = temp_dir("badinit");
    std::fs::write(dir.join("x.nf"), SBRIDGE).unwrap();
    let cases = [
        (
            "02:00:00:00:00:0a 0 1 true\n02:00:00:00:00:0b 0 yes true\n",
            2,
            21,
            "field `value.port`: expected a value of type i64 such as `-2`, found `yes`",
        ),
        (
            "02:00:00:00:00:0a 0 1\n",
            1,
            22,
            "expected 4 fields (key.mac key.port value.port value.ok), found 3",
        ),
        (
            "02:00:00:00:00:0a 0 1 true\n# again\n02:00:00:00:00:0a 0 2 true\n",
            3,
            1,
            "duplicate key: the same key is on line 1",
        ),
        (
            "02:00:00:00:00:0a 70000 1 true\n",
            1,
            19,
            "port 70000 out of range",
        ),
        (
            "1 0 1 true\n2 0 1 true\n3 0 1 true\n4 0 1 true\n5 0 1 true\n",
            1,
            1,
            "expected a value of type mac",
        ),
    ];
    for (text, line, col, msg) in cases {
        std::fs::write(dir.join("rules.txt"), text).unwrap();
        let err = load_nf(&dir, &[]).unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(d.file.ends_with("rules.txt"), "{err}");
        assert!(d.message.contains(msg), "{err}");
        assert_eq!((d.line, d.col), (line, col), "{err}");
    }
    let many: String = (0..5)
        .map(|i| format!("02:00:00:00:00:0{i} 0 1 true\n"))
        .collect();
    std::fs::write(dir.join("rules.txt"), many).unwrap();
    let err = load_nf(&dir, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("rules.txt:5:1: error: too many entries: map `table` has capacity 4"),
        "{err}"
    );

    std::fs::remove_file(dir.join("rules.txt")).unwrap();
    let err = load_nf(&dir, &[]).unwrap_err();
    assert!(
        err.to_string().contains("cannot read the init file"),
        "{err}"
    );
}

#[test]
fn load_nf_errors() {
    let dir = temp_dir("empty");
    let err = load_nf(&dir, &[]).unwrap_err();
    assert!(matches!(err, LoadError::NoSource { .. }), "{err}");
    assert!(err.to_string().contains("no `.nf` file"), "{err}");
    std::fs::write(dir.join("a.nf"), "").unwrap();
    std::fs::write(dir.join("b.nf"), "").unwrap();
    let err = load_nf(&dir, &[]).unwrap_err();
    assert!(err.to_string().contains("several .nf files"), "{err}");
    let err = load_nf(&dir.join("missing.nf"), &[]).unwrap_err();
    assert!(matches!(err, LoadError::NoSource { .. }), "{err}");
}

#[test]
fn every_state_kind_and_method_checks() {
    let src = r#"
nf all "every state kind";
device a = 0;
device b = 1;
record K { x: u32, y: mac }
state t: table<K, u64>(capacity: 4, ttl: 1s);
state k: table<ip4>(capacity: 4, ttl: 1s);
state m: map<u16, bool>(capacity: 4);
state v: vector<K>(capacity: 4);
state d: dchain(capacity: 4, ttl: 1s);
state c: cht(height: 7, backends: k);
state s: sketch<K>(width: 16, ttl: 1s, threshold: 3);
state p: sets<u16>(sets: 4, per_set: 2);
process {
    let n = t.expire() + d.expire();
    s.expire();
    let key = K { x: n, y: pkt.eth.src };
    if let i = t.add(key, 5) { t.set_value(i, t.value(i) + 1); }
    if let i = t.get(key) { t.refresh(i); }
    if t.contains(key) && t.has_index(0) && !t.full() && t.size() > 0 && t.key(0) == key {
        t.remove(key);
    }
    if let i = k.add(10.0.0.1) { k.refresh(i); }
    if let x = m.get(7) { if x { drop; } }
    if m.put(7, true) && m.contains(7) && m.erase(7) && m.size() == 0 { drop; }
    v.set(1, v.get(2));
    if let i = d.allocate() {
        if d.is_allocated(i) && d.refresh(i) { d.free(i); }
    }
    if let backend = c.find(hash(key) as u64) { forward(backend as device); }
    s.touch(key);
    s.refresh(key);
    if s.over(key) { drop; }
    p.clear(0);
    if p.insert(0, 80) && p.contains(0, 80) && p.count(0) == 1 { flood; }
    drop;
}
"#;
    let p = parse_and_check("all.nf", src, &[], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.states.len(), 8);
    assert!(matches!(
        p.states[5].kind,
        StateKind::Cht {
            height: 7,
            backend_count: 4,
            ..
        }
    ));
}
