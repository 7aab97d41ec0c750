//! Generates the implementation of every library NF (with default config and
//! with small capacities and timeouts, so that tables fill and entries expire in short
//! traces) into `OUT_DIR`, plus a registry the tests and benchmarks use.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One generated variant: NF, variant name, `--set` overrides.
type Variant = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The generated variants; the registry emitted below carries the list to the tests.
const VARIANTS: &[Variant] = &[
    ("nop", "default", &[]),
    ("sbridge", "default", &[]),
    ("bridge", "default", &[]),
    (
        "bridge",
        "small",
        &[("capacity", "4"), ("expiration_time", "2ms")],
    ),
    ("pol", "default", &[]),
    (
        "pol",
        "small",
        &[("capacity", "4"), ("rate", "1000000"), ("burst", "3000")],
    ),
    ("fw", "default", &[]),
    (
        "fw",
        "small",
        &[("max_flows", "4"), ("expiration_time", "2ms")],
    ),
    ("nat", "default", &[]),
    (
        "nat",
        "small",
        &[
            ("max_flows", "4"),
            ("expiration_time", "2ms"),
            ("start_port", "1000"),
            ("refresh_on_wan", "true"),
        ],
    ),
    ("lb", "default", &[]),
    (
        "lb",
        "small",
        &[
            ("flow_capacity", "4"),
            ("backend_capacity", "3"),
            ("cht_height", "7"),
            ("flow_expiration", "2ms"),
            ("backend_expiration", "1ms"),
        ],
    ),
    ("cl", "default", &[]),
    (
        "cl",
        "small",
        &[
            ("max_flows", "4"),
            ("capacity", "8"),
            ("max_clients", "2"),
            ("expire_flow", "2ms"),
            ("expire_client", "3ms"),
        ],
    ),
    ("psd", "default", &[]),
    (
        "psd",
        "small",
        &[
            ("capacity", "4"),
            ("max_ports", "2"),
            ("expiration_time", "2ms"),
        ],
    ),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let nfs = manifest.join("../../nfs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", nfs.display());
    println!("cargo:rerun-if-changed=../src");

    // `include!` cannot take inner doc comments: turn them into plain comments.
    let support: String = maestro_generator::SUPPORT_SOURCE
        .lines()
        .map(|l| {
            l.strip_prefix("//!")
                .map_or(l.to_string(), |r| format!("//{r}"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(out.join("support.rs"), support).expect("write support.rs");

    let mut modules = String::new();
    let mut registry = String::from(
        "/// A generated variant: (NF, variant, `--set` overrides).\npub type Variant = (&'static str, &'static str, &'static [(&'static str, &'static str)]);\n\n/// Every generated variant.\npub const VARIANTS: &[Variant] = &[\n",
    );
    let mut make = String::from(
        "/// A fresh (sequential) generated NF of a variant.\npub fn make(nf: &str, variant: &str, mode: maestro_runtime::packet::ParseMode) -> Option<Box<dyn DynNf>> {\n    match (nf, variant) {\n",
    );
    let mut visit = String::from(
        "/// Calls `v.visit::<N>` for every variant, with its concrete generated type.\npub fn visit_all<V: Visitor>(v: &mut V) {\n",
    );
    for (nf, variant, sets) in VARIANTS {
        let overrides: Vec<(String, String)> = sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let program = maestro_analyzer::load_nf(&nfs.join(nf), &overrides)
            .unwrap_or_else(|e| panic!("{nf} ({variant}) does not load: {e}"));
        let src = maestro_generator::generate_seq(&program)
            .unwrap_or_else(|e| panic!("{nf} ({variant}): {e}"));
        let module = format!("{nf}_{variant}");
        std::fs::write(out.join(format!("{module}.rs")), src).expect("write module");
        let _ = writeln!(
            modules,
            "#[doc = \"`{nf}` ({variant})\"]\npub mod {module} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{module}.rs\"));\n}}"
        );
        let _ = writeln!(registry, "    ({nf:?}, {variant:?}, &{sets:?}),");
        let _ = writeln!(
            make,
            "        ({nf:?}, {variant:?}) => Some(Box::new(<{module}::Nf as GeneratedNf>::with_shards(mode, 1).ok()?)),"
        );
        let _ = writeln!(
            visit,
            "    v.visit::<{module}::Nf>({nf:?}, {variant:?}, &{sets:?});"
        );
    }
    registry.push_str("];\n");
    make.push_str("        _ => None,\n    }\n}\n");
    visit.push_str("}\n");
    std::fs::write(out.join("modules.rs"), modules).expect("write modules.rs");
    std::fs::write(
        out.join("registry.rs"),
        format!("{registry}\n{make}\n{visit}"),
    )
    .expect("write registry.rs");
}
