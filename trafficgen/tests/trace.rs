//! Properties of generated traces.

mod common;

use maestro_runtime::InputPacket;
use maestro_trafficgen::{Cidr, FlowSpec, SizeMix, TraceConfig, TraceGen};
use proptest::prelude::*;

fn small(seed: u64) -> TraceConfig {
    TraceConfig {
        seed,
        packets: 5_000,
        flows: FlowSpec {
            count: 300,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        reply_ratio: 0.3,
        ..TraceConfig::default()
    }
}

fn gen(config: &TraceConfig) -> Vec<InputPacket> {
    TraceGen::new(config.clone()).unwrap().collect()
}

#[test]
fn same_seed_same_bytes() {
    let a = gen(&small(7));
    let b = gen(&small(7));
    assert_eq!(a, b);
}

#[test]
fn different_seed_different_trace() {
    let a = gen(&small(7));
    let b = gen(&small(8));
    assert_ne!(a, b);
    // Not just a shuffle of the same flows: the flow tables differ.
    let fa = common::check(&small(7), &a).unwrap().flows;
    let fb = common::check(&small(8), &b).unwrap().flows;
    assert!(fa.intersection(&fb).count() < 5);
}

#[test]
fn default_config_is_valid_and_well_formed() {
    let config = TraceConfig {
        packets: 20_000,
        ..TraceConfig::default()
    };
    assert_eq!(config.frame_len(), 60);
    let pkts = gen(&config);
    let st = common::check(&config, &pkts).unwrap();
    assert_eq!(st.udp_flows, st.flows.len(), "default is all UDP");
    assert_eq!(st.replies, 0, "default reply ratio is 0");
    assert!(pkts.iter().all(|p| p.port == 0 && p.data.len() == 60));
    assert_eq!(pkts[1].time_ns - pkts[0].time_ns, 1_000);
}

#[test]
fn all_flows_show_up_when_packets_dwarf_flows() {
    let config = TraceConfig {
        packets: 40_000,
        flows: FlowSpec {
            count: 1_000,
            udp_share: 0.25,
            ..FlowSpec::default()
        },
        reply_ratio: 0.5,
        ..TraceConfig::default()
    };
    let pkts = gen(&config);
    let st = common::check(&config, &pkts).unwrap();
    // Expected unseen flows: 1000 * e^-40, i.e. none; and flows are distinct tuples.
    assert_eq!(st.flows.len(), 1_000);
    assert_eq!(
        st.udp_flows, 250,
        "exactly round(count * udp_share) UDP flows"
    );
    let share = st.replies as f64 / st.repeat_packets as f64;
    assert!((share - 0.5).abs() < 0.02, "reply share {share}");
}

#[test]
fn frame_sizes_and_protocols() {
    for size in [64u16, 65, 100, 577, 1517, 1518] {
        for udp_share in [0.0, 1.0] {
            let config = TraceConfig {
                frame_size: size,
                packets: 200,
                flows: FlowSpec {
                    count: 50,
                    udp_share,
                    ..FlowSpec::default()
                },
                reply_ratio: 0.5,
                ..TraceConfig::default()
            };
            let pkts = gen(&config);
            let st = common::check(&config, &pkts).unwrap();
            assert!(pkts.iter().all(|p| p.data.len() == usize::from(size) - 4));
            let want_udp = if udp_share == 1.0 { st.flows.len() } else { 0 };
            assert_eq!(st.udp_flows, want_udp);
        }
    }
}

#[test]
fn exact_rate_without_drift() {
    let config = TraceConfig {
        packets: 10_000,
        rate_pps: 3, // 333_333_333.33.. ns apart
        start_ns: 42,
        flows: FlowSpec {
            count: 10,
            ..FlowSpec::default()
        },
        ..TraceConfig::default()
    };
    let pkts = gen(&config);
    assert_eq!(pkts[3].time_ns, 42 + 1_000_000_000);
    assert_eq!(pkts[9_999].time_ns, 42 + 3_333_000_000_000);
    common::check(&config, &pkts).unwrap();
}

#[test]
fn flow_table_does_not_depend_on_packet_knobs() {
    let a = small(3);
    let b = TraceConfig {
        reply_ratio: 0.0,
        packets: 20_000,
        ..small(3)
    };
    let fa = common::check(&a, &gen(&a)).unwrap().flows;
    let fb = common::check(&b, &gen(&b)).unwrap().flows;
    assert_eq!(fa, fb);
}

#[test]
fn next_into_matches_next_and_counts_down() {
    let config = small(11);
    let mut g = TraceGen::new(config.clone()).unwrap();
    assert_eq!(g.remaining(), 5_000);
    assert_eq!(g.size_hint(), (5_000, Some(5_000)));
    let mut buf = Vec::new();
    for p in gen(&config) {
        let (port, time) = g.next_into(&mut buf).unwrap();
        assert_eq!((port, time, &buf[..]), (p.port, p.time_ns, &p.data[..]));
    }
    assert_eq!(g.remaining(), 0);
    assert!(g.next().is_none());
    assert!(g.next_into(&mut buf).is_none());
}

#[test]
fn empty_trace() {
    let config = TraceConfig {
        packets: 0,
        ..small(1)
    };
    assert_eq!(TraceGen::new(config).unwrap().count(), 0);
}

#[test]
fn tiny_prefixes() {
    // A /31 on each side: both addresses usable (RFC 3021); flows differ by ports.
    let config = TraceConfig {
        packets: 2_000,
        flows: FlowSpec {
            count: 100,
            src_prefix: "192.168.1.0/31".parse().unwrap(),
            dst_prefix: "192.168.1.0/31".parse().unwrap(),
            udp_share: 0.5,
        },
        reply_ratio: 0.5,
        ..TraceConfig::default()
    };
    let st = common::check(&config, &gen(&config)).unwrap();
    assert_eq!(st.flows.len(), 100);
    // A /30 uses only its two middle addresses.
    let config = TraceConfig {
        flows: FlowSpec {
            src_prefix: "10.0.0.4/30".parse().unwrap(),
            dst_prefix: "198.51.100.7/32".parse().unwrap(),
            ..config.flows
        },
        ..config
    };
    let st = common::check(&config, &gen(&config)).unwrap();
    assert!(st.flows.iter().all(|t| [5, 6].contains(&t.0.octets()[3])));
}

/// Prefixes valid for the generator (not inside an excluded block).
fn prefix() -> impl Strategy<Value = Cidr> {
    (any::<[u8; 4]>(), 0u8..=32)
        .prop_map(|(a, len)| {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            Cidr::new((u32::from_be_bytes(a) & m).into(), len).unwrap()
        })
        .prop_filter("usable prefix", |c| {
            let first = TraceConfig {
                flows: FlowSpec {
                    src_prefix: *c,
                    ..FlowSpec::default()
                },
                ..TraceConfig::default()
            };
            first.validate().is_ok()
        })
}

/// The first cut's knobs.
fn base_config() -> impl Strategy<Value = TraceConfig> {
    (
        (1u32..150, 0.0f64..=1.0, prefix(), prefix()),
        any::<u64>(),
        0u64..400,
        64u16..=1518,
        prop_oneof![1u64..10, 1u64..5_000_000_000],
        0u64..1 << 62,
        prop_oneof![Just(0.0), 0.0f64..=1.0, Just(1.0)],
        (0u16..4, 0u16..4),
    )
        .prop_map(
            |(
                (count, udp_share, src, dst),
                seed,
                packets,
                frame_size,
                rate_pps,
                start_ns,
                reply_ratio,
                (lan, wan),
            )| TraceConfig {
                flows: FlowSpec {
                    count,
                    udp_share,
                    src_prefix: src,
                    dst_prefix: dst,
                },
                seed,
                packets,
                frame_size,
                rate_pps,
                start_ns,
                reply_ratio,
                lan_port: lan,
                wan_port: wan,
                ..TraceConfig::default()
            },
        )
}

fn size_mix() -> impl Strategy<Value = SizeMix> {
    prop_oneof![
        Just(SizeMix::Fixed),
        Just(SizeMix::Imix),
        prop::collection::vec((64u16..=1518, 0u64..5), 1..6).prop_map(SizeMix::Weighted),
    ]
}

/// Every knob, churn and keep-alives included; the expiry and churn are scaled to what
/// the rate allows, so most draws are valid.
fn config() -> impl Strategy<Value = TraceConfig> {
    (
        base_config(),
        prop_oneof![Just(0.0), 0.0f64..=2.0],
        size_mix(),
        prop_oneof![Just(None), (1_000_000u64..200_000_000_000).prop_map(Some)],
        prop_oneof![Just(0u64), 0u64..20_000_000_000],
        prop_oneof![Just(None), (1.0f64..4.0).prop_map(Some)],
        prop_oneof![Just(0.0), 0.0f64..1.0],
    )
        .prop_filter_map(
            "valid config",
            |(base, zipf_s, sizes, rate_bps, reply_delay_ns, expiry_factor, churn_share)| {
                let mut c = TraceConfig {
                    zipf_s,
                    sizes,
                    rate_bps,
                    reply_delay_ns,
                    ..base
                };
                if let Some(factor) = expiry_factor {
                    // The shortest valid expiry, times 1..4.
                    let need = 8.0 * f64::from(c.flows.count) / c.min_rate_pps() * 1e9;
                    c.expiry_ns = Some((need * factor).ceil().max(1.0) as u64);
                    let max_fpm = c.min_rate_pps() * 60.0 / 4.0;
                    c.churn_fpm = (max_fpm * churn_share) as u64;
                }
                c.validate().is_ok().then_some(c)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_trace_keeps_its_promises(config in config()) {
        let pkts = gen(&config);
        let st = common::check(&config, &pkts);
        prop_assert!(st.is_ok(), "{}", st.unwrap_err());
        let st = st.unwrap();
        if config.reply_ratio == 0.0 {
            prop_assert_eq!(st.replies, 0);
        }
        if config.reply_ratio == 1.0 && config.reply_delay_ns == 0 && config.expiry_ns.is_none() {
            prop_assert_eq!(st.replies, st.repeat_packets);
        }
        if config.expiry_ns.is_some() {
            // Keep-alives: no active flow is ever silent past the expiry.
            prop_assert_eq!(st.gaps_over_expiry, 0, "max gap {}", st.max_gap);
        }
        if config.churn_fpm == 0 {
            prop_assert!(st.flows.len() <= config.flows.count as usize);
        }
        // The generator's own statistics agree with the frames.
        let gs = TraceGen::new(config.clone()).unwrap().with_stats();
        let mut gs = gs;
        let mut buf = Vec::new();
        while gs.next_into(&mut buf).is_some() {}
        let s = gs.stats().unwrap();
        prop_assert_eq!(s.packets, pkts.len() as u64);
        prop_assert_eq!(s.replies, st.replies);
        prop_assert_eq!(s.flows, st.flows.len() as u64);
        prop_assert_eq!(s.max_gap_ns, st.max_gap);
        prop_assert_eq!(s.gaps_over_expiry, st.gaps_over_expiry);
        prop_assert_eq!(s.sizes, st.sizes.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        let mut top = st.sorted_counts();
        top.truncate(maestro_trafficgen::TOP_FLOWS);
        prop_assert_eq!(s.top_flows, top);
        // Determinism.
        prop_assert_eq!(&gen(&config), &pkts);
    }
}
