//! The mutant catalog: every NIC edit really separates packets a constraint requires
//! to co-locate (checked with the runtime's NIC model), and the others apply where
//! they should.

use maestro_analyzer::sym::report::Analysis;
use maestro_equivalence::compare::Renamed;
use maestro_equivalence::mutants::{by_name, catalog, split_pair, MutantInput, MutantKind};
use maestro_rss::{solve, SolveOptions};
use maestro_runtime::exec::engine::RuntimeMutant;
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::Strategy;

fn analysis(name: &str) -> Analysis {
    let program = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(name), &[])
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    maestro_analyzer::analyze(&program).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The solver's configuration for `cores` cores, as the NIC model reads it.
fn nic(a: &Analysis, cores: usize) -> NicConfig {
    let rss = solve(
        a,
        &SolveOptions {
            cores,
            reta_size: 128,
            ..SolveOptions::default()
        },
    )
    .expect("rss");
    NicConfig::from_json(&serde_json::to_string(&rss).expect("json")).expect("nic")
}

fn nat_renamed() -> Vec<Renamed> {
    vec![Renamed {
        out_field: "l4.sport".into(),
        in_field: "l4.dport".into(),
        in_ports: vec![1],
    }]
}

#[test]
fn the_catalog_has_the_eight_mutants_of_the_spec() {
    let names: Vec<&str> = catalog().iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        vec![
            "ms-default-key",
            "key-ignores-field",
            "reta-differs",
            "unhashed-icmp-fragments",
            "locks-read-on-write",
            "locks-keep-aborted-decision",
            "per-core-allocators-without-renaming",
            "expiry-off-by-one"
        ]
    );
    assert!(catalog().iter().all(|m| !m.description.is_empty()));
    assert!(matches!(
        by_name("locks-read-on-write").map(|m| m.kind),
        Some(MutantKind::Runtime(RuntimeMutant::ReadLockOnWrite))
    ));
    assert!(matches!(
        by_name("locks-keep-aborted-decision").map(|m| m.kind),
        Some(MutantKind::Runtime(RuntimeMutant::KeepAbortedDecision))
    ));
    assert_eq!(
        by_name("locks-read-on-write").map(|m| m.strategy),
        Some(Strategy::Locks)
    );
    assert!(matches!(
        by_name("expiry-off-by-one").map(|m| m.kind),
        Some(MutantKind::Generator)
    ));
    assert!(matches!(
        by_name("per-core-allocators-without-renaming").map(|m| m.kind),
        Some(MutantKind::NoRename)
    ));
}

/// For each NIC mutant: the solved configuration co-locates every candidate pair, the
/// edited one separates a pair, and the NIC model confirms the two cores.
fn nic_mutants_split_pairs(
    name: &str,
    cores: usize,
    renamed: &[Renamed],
    expect_applicable: &[&str],
) {
    let a = analysis(name);
    let base = nic(&a, cores);
    let input = MutantInput {
        analysis: &a,
        renamed,
        cores,
        seed: 5,
    };
    assert_eq!(
        split_pair(&base, &input),
        None,
        "{name}: the solver's configuration co-locates"
    );
    for m in catalog() {
        let MutantKind::Nic(_) = m.kind else { continue };
        let skip = m.skip_reason(&base, &input);
        if !expect_applicable.contains(&m.name) {
            assert!(skip.is_some(), "{name}: {} should not apply", m.name);
            continue;
        }
        assert_eq!(skip, None, "{name}: {} applies", m.name);
        let cfg = m.nic(&base, &input).expect("edit");
        assert_ne!(cfg, base, "{} changes the configuration", m.name);
        let pair = split_pair(&cfg, &input)
            .unwrap_or_else(|| panic!("{name}: {} separates some pair", m.name));
        let model = NicModel::new(&cfg, cores).expect("model");
        let c1 = model.steer(pair.first.port, &pair.first.data).core;
        let c2 = model.steer(pair.second.port, &pair.second.data).core;
        assert_ne!(c1, c2, "{name}: {} on {}", m.name, pair.constraint);
        assert_eq!((c1, c2), pair.cores);
        // The correct configuration keeps this very pair together.
        let good = NicModel::new(&base, cores).expect("model");
        assert_eq!(
            good.steer(pair.first.port, &pair.first.data).core,
            good.steer(pair.second.port, &pair.second.data).core,
            "{name}: {}",
            m.name
        );
    }
}

#[test]
fn fw_nic_mutants_separate_a_constrained_pair() {
    nic_mutants_split_pairs(
        "fw",
        2,
        &[],
        &[
            "ms-default-key",
            "key-ignores-field",
            "reta-differs",
            "unhashed-icmp-fragments",
        ],
    );
    nic_mutants_split_pairs(
        "fw",
        4,
        &[],
        &[
            "ms-default-key",
            "key-ignores-field",
            "reta-differs",
            "unhashed-icmp-fragments",
        ],
    );
}

#[test]
fn nat_nic_mutants_separate_a_constrained_pair() {
    nic_mutants_split_pairs(
        "nat",
        2,
        &nat_renamed(),
        &[
            "ms-default-key",
            "key-ignores-field",
            "reta-differs",
            "unhashed-icmp-fragments",
        ],
    );
}

#[test]
fn single_port_nfs_get_the_key_and_class_mutants_only() {
    // The policer keys buckets on the destination of WAN packets, ICMP included.
    nic_mutants_split_pairs(
        "pol",
        2,
        &[],
        &["ms-default-key", "unhashed-icmp-fragments"],
    );
    nic_mutants_split_pairs(
        "psd",
        2,
        &[],
        &["ms-default-key", "unhashed-icmp-fragments"],
    );
}

#[test]
fn non_nic_mutants_apply_where_the_nf_has_what_they_break() {
    let nat = analysis("nat");
    let fw = analysis("fw");
    let nop = analysis("nop");
    let renamed = nat_renamed();
    let base = NicConfig::default_for(2).with_cores(2);
    let on = |a: &Analysis, r: &[Renamed], m: &str| {
        by_name(m).expect("mutant").skip_reason(
            &base,
            &MutantInput {
                analysis: a,
                renamed: r,
                cores: 2,
                seed: 0,
            },
        )
    };
    assert_eq!(
        on(&nat, &renamed, "per-core-allocators-without-renaming"),
        None
    );
    assert!(
        on(&fw, &[], "per-core-allocators-without-renaming").is_some_and(|r| r.contains("RENAMED"))
    );
    assert_eq!(on(&fw, &[], "expiry-off-by-one"), None);
    assert_eq!(on(&fw, &[], "locks-keep-aborted-decision"), None);
    assert_eq!(on(&fw, &[], "locks-read-on-write"), None);
    assert!(on(&nop, &[], "expiry-off-by-one").is_some());
    assert!(on(&nop, &[], "locks-read-on-write").is_some());
    assert!(
        on(&nop, &[], "ms-default-key").is_some(),
        "nop keeps no state: nothing to mis-steer"
    );
    // A non-NIC mutant leaves the NIC configuration alone.
    let m = by_name("locks-read-on-write").expect("mutant");
    assert_eq!(
        m.nic(
            &base,
            &MutantInput {
                analysis: &fw,
                renamed: &[],
                cores: 2,
                seed: 0
            }
        )
        .expect("nic"),
        base
    );
}
