//! Bad programs: each must be rejected with a precise message at the exact position.

use maestro_analyzer::{parse_and_check, LoadError};

/// Lines 1-8; a process body given to [`body`] starts on line 9.
const PRELUDE: &str = "nf t \"test\";
device lan = 0;
device wan = 1;
config limit: u32 = 10;
record Pair { a: u16, b: ip4 }
state flows: table<Pair, device>(capacity: limit, ttl: 1s);
state v: vector<u32>(capacity: 4);
process {
";

fn body(lines: &str) -> String {
    format!("{PRELUDE}{lines}\n}}\n")
}

/// Checks that `src` fails and that its first error is at `line:col` and mentions `msg`.
#[track_caller]
fn rejects(src: &str, line: u32, col: u32, msg: &str) {
    let err = match parse_and_check("t.nf", src, &[], None) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e,
    };
    let d = err
        .diagnostics()
        .first()
        .unwrap_or_else(|| panic!("no positioned diagnostic: {err}"));
    assert!(
        d.message.contains(msg),
        "expected a message containing {msg:?}, got:\n{err}"
    );
    assert_eq!(
        (d.line, d.col),
        (line, col),
        "wrong position for {msg:?}:\n{err}"
    );
    // The rendered form: `file:line:col: error: ...`, the source line and a caret.
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("t.nf:{line}:{col}: error: ")),
        "{text}"
    );
    assert!(text.contains('^'), "{text}");
}

#[test]
fn unknown_name() {
    rejects(&body("    forward(lann);"), 9, 13, "unknown name `lann`");
}

#[test]
fn type_mismatch() {
    rejects(
        &body("    let x: u16 = limit;\n    drop;"),
        9,
        18,
        "mismatched types: expected u16 for `x`, found u32",
    );
    rejects(
        &body("    let x = limit + pkt.len;\n    drop;"),
        9,
        13,
        "`+` expects two operands of the same integer type, found u32 and u16",
    );
    rejects(
        &body("    forward(1);"),
        9,
        13,
        "expected a `device` for `forward`",
    );
    rejects(
        &body("    if pkt.eth.src == 1 { drop; }\n    drop;"),
        9,
        8,
        "found mac and u64",
    );
    rejects(
        &body("    let x: u8 = 300;\n    drop;"),
        9,
        17,
        "integer literal 300 does not fit in u8",
    );
    rejects(
        &body("    let x = -1;\n    drop;"),
        9,
        13,
        "expected an i64 after unary `-`",
    );
    rejects(
        &body("    let m = pkt.eth.src as u32;\n    drop;"),
        9,
        13,
        "cannot cast mac to u32",
    );
}

#[test]
fn header_used_before_parse() {
    rejects(
        &body("    let s = pkt.ip.src;\n    drop;"),
        9,
        13,
        "`pkt.ip.src` is used before its header is parsed on this path",
    );
    rejects(
        &body("    parse ipv4 else { drop; }\n    let p = pkt.l4.sport;\n    drop;"),
        10,
        13,
        "expected `parse l4 else { ... }`",
    );
    // A parse inside a branch does not cover the code after the branch.
    rejects(
        &body(
            "    if in == lan {\n        parse l4 else { drop; }\n    }\n    let p = pkt.l4.dport;\n    drop;",
        ),
        12,
        13,
        "`pkt.l4.dport` is used before its header is parsed",
    );
    // Nor does the failure branch of the parse itself.
    rejects(
        &body("    parse ipv4 else { forward(pkt.ip.ttl as device); }\n    drop;"),
        9,
        31,
        "`pkt.ip.ttl` is used before",
    );
}

#[test]
fn paths_must_end_in_actions() {
    rejects(
        &body("    if in == lan { drop; }"),
        10,
        1,
        "expected every path of `process` to end in an action",
    );
    rejects(
        &body("    parse ipv4 else { }\n    drop;"),
        9,
        23,
        "expected the `else` block of `parse ipv4` to end in an action",
    );
    rejects(
        &body("    drop;\n    drop;"),
        10,
        5,
        "unreachable statement",
    );
}

#[test]
fn loops_and_functions_are_rejected_with_an_explanation() {
    rejects(
        &body("    while true { drop; }"),
        9,
        5,
        "Loops are not allowed (found `while`): every path must be finite and enumerable",
    );
    rejects(
        &body("    for x in flows { drop; }"),
        9,
        5,
        "Loops are not allowed (found `for`)",
    );
    rejects(&body("    loop { drop; }"), 9, 5, "Loops are not allowed");
    rejects(
        &body("    if in == lan { break; }\n    drop;"),
        9,
        20,
        "Loops are not allowed, so neither is `break`",
    );
    rejects(
        &body("    return;"),
        9,
        5,
        "Functions are not allowed, so neither is `return`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nfn helper() { }\nprocess { drop; }\n",
        3,
        1,
        "Functions are not allowed (found `fn`): write the code inline",
    );
    rejects(
        &body("    let x = double(limit);\n    drop;"),
        9,
        13,
        "unknown function `double`",
    );
}

#[test]
fn locals_are_immutable_unless_mut() {
    rejects(
        &body("    let x = 1;\n    x = 2;\n    drop;"),
        10,
        5,
        "cannot assign to immutable local `x`: declare it with `let mut x`",
    );
    rejects(
        &body("    limit = 2;\n    drop;"),
        9,
        5,
        "cannot assign to `limit`, which is a config",
    );
    rejects(
        &body("    parse ipv4 else { drop; }\n    pkt.ip.proto = 6;\n    drop;"),
        10,
        5,
        "`pkt.ip.proto` is read-only",
    );
    rejects(
        &body("    let flows = 1;\n    drop;"),
        9,
        9,
        "`flows` is a state object",
    );
    // `if let` binds only in its first block.
    rejects(
        &body("    if let i = flows.get(Pair { a: 1, b: 1.2.3.4 }) { drop; }\n    forward(flows.value(i));"),
        10,
        25,
        "unknown name `i`",
    );
}

#[test]
fn records_need_every_field_once() {
    rejects(
        &body("    let p = Pair { a: 1 };\n    drop;"),
        9,
        13,
        "expected every field of `Pair` exactly once, found one missing: b",
    );
    rejects(
        &body("    let p = Pair { a: 1, a: 2, b: 1.2.3.4 };\n    drop;"),
        9,
        26,
        "field `a` of `Pair` given twice",
    );
    rejects(
        &body("    let p = Pair { a: 1, b: 1.2.3.4, c: 3 };\n    drop;"),
        9,
        38,
        "record `Pair` has no field `c`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nrecord A { b: B }\nrecord B { a: A }\nprocess { drop; }\n",
        4,
        8,
        "recursive record `B`: it contains `A`, which contains it again",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nrecord A { b: u8, me: A }\nprocess { drop; }\n",
        3,
        8,
        "recursive record `A`",
    );
}

#[test]
fn if_let_needs_an_opt_call() {
    rejects(
        &body("    if let i = flows.contains(Pair { a: 1, b: 1.2.3.4 }) { drop; }\n    drop;"),
        9,
        16,
        "expected a call that may have no result after `if let` (get, add, allocate, find), found `contains`",
    );
    rejects(
        &body("    if let i = limit { drop; }\n    drop;"),
        9,
        16,
        "expected a state call that may have no result after `if let`",
    );
    rejects(
        &body("    let i = flows.get(Pair { a: 1, b: 1.2.3.4 });\n    drop;"),
        9,
        13,
        "`get` may have no result, so it is only usable in `if let`",
    );
}

#[test]
fn state_methods_and_params() {
    rejects(
        &body("    flows.frob();\n    drop;"),
        9,
        11,
        "unknown method `frob` for `flows` (a table)",
    );
    rejects(
        &body("    flows.refresh(1, 2);\n    drop;"),
        9,
        5,
        "expected 1 argument for `flows.refresh`, found 2",
    );
    rejects(
        &body("    v.set(0, 1 == 1);\n    drop;"),
        9,
        14,
        "expected u32 for argument 2 of `v.set`, found bool",
    );
    rejects(
        &body("    let x = v.set(0, 1);\n    drop;"),
        9,
        13,
        "`set` has no result",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate v: vector<u32>(capacity: 0);\nprocess { drop; }\n",
        3,
        32,
        "expected `capacity` of `v` to be > 0, found 0",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate v: vector<u32>(capacity: 4, ttl: 1s);\nprocess { drop; }\n",
        3,
        35,
        "unknown parameter `ttl` for a `vector`: expected capacity",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate d: dchain(capacity: 4);\nprocess { drop; }\n",
        3,
        7,
        "missing parameter `ttl` for dchain `d`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate d: dchain(capacity: 4, ttl: now);\nprocess { drop; }\n",
        3,
        35,
        "expected a constant, found `now`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate m: map<u8, u8>(capacity: 4);\nstate c: cht(height: 7, backends: m);\nprocess { drop; }\n",
        4,
        35,
        "expected the name of a `table` declared in this NF for `backends`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate b: table<ip4>(capacity: 4, ttl: 1s);\nstate c: cht(height: 8, backends: b);\nprocess { drop; }\n",
        4,
        22,
        "expected a prime number > 1 for `height` of `c`, found 8",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate s: stack<u8>(capacity: 4);\nprocess { drop; }\n",
        3,
        10,
        "unknown state kind `stack`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate t: table<u8>(capacity: 4, ttl: 1s);\nprocess {\n    t.set_value(0, 1);\n    drop;\n}\n",
        5,
        7,
        "`t` has no values (it is declared `table<K>`)",
    );
}

#[test]
fn duplicate_and_missing_items() {
    rejects(
        "nf t \"x\";\ndevice lan = 0;\nconfig lan: u32 = 1;\nprocess { drop; }\n",
        3,
        8,
        "duplicate name `lan`: already defined as a device at 2:8",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nrecord R { x: u8, x: u16 }\nprocess { drop; }\n",
        3,
        19,
        "duplicate field `x` in record `R`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nprocess { drop; }\nprocess { drop; }\n",
        4,
        1,
        "expected exactly one `process` block, found a second one",
    );
    rejects(
        "device a = 0;\nprocess { drop; }\n",
        1,
        1,
        "expected an `nf NAME \"description\";` item, found none",
    );
    rejects(
        "nf t \"x\";\ndevice now = 0;\nprocess { drop; }\n",
        2,
        8,
        "found the reserved name `now`",
    );
}

#[test]
fn syntax_errors() {
    rejects(&body("    drop"), 10, 1, "expected `;`, found `}`");
    rejects(
        &body("    if 1 < 2 < 3 { drop; }\n    drop;"),
        9,
        14,
        "comparison operators cannot be chained",
    );
    rejects(
        &body("    let x = 10.0.1;\n    drop;"),
        9,
        13,
        "expected an IPv4 address",
    );
    rejects(
        &body("    let x = 5 @ 3;\n    drop;"),
        9,
        15,
        "unexpected character `@`",
    );
    rejects(
        &body("    let x = 5h;\n    drop;"),
        9,
        14,
        "expected a duration unit",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nconfig c: u32 = true;\nprocess { drop; }\n",
        3,
        17,
        "expected a literal of type u32 such as `65536`",
    );
    rejects(
        "nf t \"x\";\ndevice a = 0;\nstate v: vector<u128>(capacity: 4);\nprocess { drop; }\n",
        3,
        17,
        "unknown type `u128`",
    );
    rejects(
        "nf t \"x\";\n/* never closed\n",
        2,
        1,
        "unterminated `/*` comment",
    );
}

#[test]
fn several_errors_are_reported() {
    let src = body("    let a: u8 = limit;\n    forward(lann);");
    let err = parse_and_check("t.nf", &src, &[], None).unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), 2, "{err}");
    assert_eq!((d[0].line, d[1].line), (9, 10));
    assert!(err.to_string().ends_with("2 errors"), "{err}");
}

fn set(src: &str, k: &str, v: &str) -> LoadError {
    parse_and_check("t.nf", src, &[(k.into(), v.into())], None).unwrap_err()
}

#[test]
fn bad_overrides_name_the_parameter_type_and_an_example() {
    let src = body("    drop;");
    let e = set(&src, "limit", "lots");
    assert!(matches!(e, LoadError::Override { .. }));
    assert_eq!(
        e.to_string(),
        "--set limit=lots: config `limit`: expected a value of type u32 such as `65536`, found `lots`"
    );
    let e = set(&src, "limit", "5000000000");
    assert!(e.to_string().contains("does not fit in u32"), "{e}");
    let e = set(&src, "wan", "65535");
    assert!(
        e.to_string()
            .contains("device `wan`: port 65535 out of range"),
        "{e}"
    );
    let e = set(&src, "limt", "3");
    assert_eq!(
        e.to_string(),
        "--set limt=3: no config parameter or device named `limt`; known names: lan, limit, wan"
    );
    let e = set(&src, "flows", "3");
    assert!(e.to_string().contains("`flows` is a state object"), "{e}");
}
