//! The workload properties the bench lab relies on, measured from the generated frames:
//! Zipf skew, size mixes, churn, keep-alives, reply delay, bit rates, reproducibility.
//! Fixed seeds and tolerances several standard deviations wide: deterministic, not flaky.

mod common;

use maestro_runtime::capture::{CaptureFormat, CaptureWriter};
use maestro_runtime::InputPacket;
use maestro_trafficgen::{
    rank_fit, FlowSpec, SizeMix, TraceConfig, TraceError, TraceGen, TraceStats, IMIX_V4_1,
};

fn gen(config: &TraceConfig) -> Vec<InputPacket> {
    TraceGen::new(config.clone()).unwrap().collect()
}

fn gen_stats(config: &TraceConfig) -> TraceStats {
    let mut g = TraceGen::new(config.clone()).unwrap().with_stats();
    let mut buf = Vec::new();
    while g.next_into(&mut buf).is_some() {}
    g.stats().unwrap()
}

fn flows(count: u32) -> FlowSpec {
    FlowSpec {
        count,
        ..FlowSpec::default()
    }
}

/// Zipf probabilities of ranks 1..=n.
fn zipf(n: u32, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|r| f64::from(r).powf(-s)).collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|x| x / sum).collect()
}

#[test]
fn zipf_rank_frequency_slope_matches_the_exponent() {
    for (s, n) in [(0.8, 20_000u32), (1.26, 40_000), (1.6, 40_000)] {
        let config = TraceConfig {
            flows: flows(n),
            packets: 400_000,
            zipf_s: s,
            seed: 21,
            ..TraceConfig::default()
        };
        let pkts = gen(&config);
        let st = common::check(&config, &pkts).unwrap();
        let sorted = st.sorted_counts();
        let (slope, ranks) = common::slope(&sorted, 100);
        assert!(ranks >= 30, "s={s}: only {ranks} ranks to fit");
        assert!(
            (slope + s).abs() < 0.06,
            "s={s}: rank-frequency slope {slope} over {ranks} ranks"
        );
        // The generator's own report measures the same thing.
        let gs = gen_stats(&config);
        let fit = gs.rank_fit().unwrap();
        assert_eq!((fit.ranks, fit.slope), (ranks, slope));
        assert_eq!(rank_fit(&sorted[..1000]), Some(fit));
    }
}

#[test]
fn zipf_is_exact_over_all_flows() {
    // Heaviest flows against their exact expected counts (within 5 standard deviations),
    // and every flow of the tail shows up: no truncation to a few heavy flows.
    let (n, s, packets) = (1_000u32, 1.26, 500_000u64);
    let config = TraceConfig {
        flows: flows(n),
        packets,
        zipf_s: s,
        seed: 5,
        ..TraceConfig::default()
    };
    let st = common::check(&config, &gen(&config)).unwrap();
    assert_eq!(st.flows.len(), n as usize, "every flow, the tail included");
    let p = zipf(n, s);
    for (r, &c) in st.sorted_counts().iter().take(5).enumerate() {
        let want = p[r] * packets as f64;
        let sd = (want * (1.0 - p[r])).sqrt();
        assert!(
            (c as f64 - want).abs() < 5.0 * sd,
            "rank {}: {c} packets, expected {want:.0} ± {sd:.0}",
            r + 1
        );
    }
    // Total share of the 10 heaviest flows.
    let top10: f64 = p[..10].iter().sum();
    let got: u64 = st.sorted_counts()[..10].iter().sum();
    assert!((got as f64 / packets as f64 - top10).abs() < 0.005);
}

#[test]
fn heavy_flows_are_not_the_first_addresses() {
    // Ranks are a random permutation: popularity is uncorrelated with address order.
    let n = 1_000u32;
    let config = TraceConfig {
        flows: flows(n),
        packets: 200_000,
        zipf_s: 1.26,
        seed: 8,
        ..TraceConfig::default()
    };
    let st = common::check(&config, &gen(&config)).unwrap();
    let mut by_addr: Vec<_> = st
        .counts
        .iter()
        .map(|(t, &c)| (u32::from(t.0), c))
        .collect();
    by_addr.sort_unstable();
    let mut by_count: Vec<(u64, usize)> = by_addr
        .iter()
        .enumerate()
        .map(|(i, &(_, c))| (c, i))
        .collect();
    by_count.sort_unstable();
    // Spearman correlation between address rank and popularity rank (ties broken
    // arbitrarily): about N(0, 1/sqrt(n)) when independent.
    let nn = f64::from(n);
    let d2: f64 = by_count
        .iter()
        .enumerate()
        .map(|(pop_rank, &(_, addr_rank))| (pop_rank as f64 - addr_rank as f64).powi(2))
        .sum();
    let rho = 1.0 - 6.0 * d2 / (nn * (nn * nn - 1.0));
    assert!(rho.abs() < 0.15, "rank correlation {rho}");
}

#[test]
fn uniform_is_flat() {
    let config = TraceConfig {
        flows: flows(1_000),
        packets: 300_000,
        seed: 2,
        ..TraceConfig::default()
    };
    let s = gen_stats(&config);
    let fit = s.rank_fit().unwrap();
    assert!(fit.slope.abs() < 0.1, "{fit:?}");
    assert_eq!(s.flows, 1_000);
    // Expected 300 per flow; the heaviest of 1,000 is within about 3.3 sd (58).
    assert!(s.top_flows[0] < 400, "{:?}", &s.top_flows[..3]);
}

#[test]
fn imix_shares_and_mean() {
    let config = TraceConfig {
        sizes: SizeMix::Imix,
        packets: 480_000,
        flows: flows(500),
        seed: 3,
        ..TraceConfig::default()
    };
    let pkts = gen(&config);
    let st = common::check(&config, &pkts).unwrap();
    let total: u64 = IMIX_V4_1.iter().map(|&(_, w)| w).sum();
    for &(size, w) in &IMIX_V4_1 {
        let share = st.sizes[&size] as f64 / pkts.len() as f64;
        let want = w as f64 / total as f64;
        // sd of a share over 480k packets is below 0.0008.
        assert!((share - want).abs() < 0.004, "{size} B: {share} vs {want}");
    }
    let s = gen_stats(&config);
    assert!(
        (s.mean_frame_size() - 353.83).abs() < 2.0,
        "{}",
        s.mean_frame_size()
    );
    assert!((config.mean_frame_size() - 353.8333).abs() < 1e-3);
}

#[test]
fn weighted_mix_and_sizes_from_a_capture() {
    let config = TraceConfig {
        sizes: "64:1,128:2,1500:1".parse().unwrap(),
        packets: 40_000,
        flows: FlowSpec {
            count: 100,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        ..TraceConfig::default()
    };
    let pkts = gen(&config);
    let st = common::check(&config, &pkts).unwrap();
    assert_eq!(
        st.sizes.keys().copied().collect::<Vec<_>>(),
        [64, 128, 1500]
    );
    let share = st.sizes[&128] as f64 / 40_000.0;
    assert!((share - 0.5).abs() < 0.015, "{share}");

    // Sizes measured from a capture reproduce its histogram exactly.
    let path = std::env::temp_dir().join(format!("maestro-tg-sizes-{}.pcap", std::process::id()));
    maestro_trafficgen::write_pcap(&config, &path, CaptureFormat::Pcap).unwrap();
    let mix = SizeMix::from_capture(&path, None).unwrap();
    assert_eq!(
        mix,
        SizeMix::Weighted(st.sizes.iter().map(|(&s, &n)| (s, n)).collect())
    );
    let first = SizeMix::from_capture(&path, Some(10)).unwrap();
    std::fs::remove_file(&path).unwrap();
    let SizeMix::Weighted(w) = first else {
        panic!("weighted")
    };
    assert_eq!(w.iter().map(|&(_, n)| n).sum::<u64>(), 10);
}

#[test]
fn size_mix_parsing() {
    assert_eq!("imix".parse::<SizeMix>().unwrap(), SizeMix::Imix);
    assert_eq!("IMIX_v4_1".parse::<SizeMix>().unwrap(), SizeMix::Imix);
    assert_eq!(
        "128".parse::<SizeMix>().unwrap(),
        SizeMix::Weighted(vec![(128, 1)])
    );
    assert_eq!(
        " 64:7, 570:4 ,1518:1".parse::<SizeMix>().unwrap(),
        SizeMix::Weighted(vec![(64, 7), (570, 4), (1518, 1)])
    );
    for (bad, hint) in [
        ("", "not a frame size"),
        ("63", "outside 64..=1518"),
        ("64:x", "whole-number weight"),
        ("64:0", "positive weight"),
        ("big", "not a frame size"),
    ] {
        let e = bad.parse::<SizeMix>().unwrap_err().to_string();
        assert!(e.contains(hint) && e.contains("imix"), "{bad}: {e}");
    }
    assert_eq!(
        SizeMix::Weighted(vec![(64, 7), (1518, 1)]).to_string(),
        "64:7,1518:1"
    );
}

/// Maestro's churn setting: 64 B frames at 100 Gbit/s, a 1 ms expiry, as many flows as a
/// 100 us epoch has packets.
fn maestro_churn(fpm: u64, packets: u64) -> TraceConfig {
    TraceConfig {
        flows: flows(14_204),
        packets,
        rate_bps: Some(100_000_000_000),
        expiry_ns: Some(1_000_000),
        churn_fpm: fpm,
        seed: 4,
        ..TraceConfig::default()
    }
}

/// New flows first seen in the second half of the trace, per minute of trace time.
fn observed_churn(st: &common::Stats, pkts: &[InputPacket]) -> f64 {
    let start = pkts[0].time_ns;
    let end = pkts[pkts.len() - 1].time_ns;
    let mid = start + (end - start) / 2;
    let late = st.first_seen.values().filter(|&&t| t >= mid).count();
    late as f64 * 60e9 / (end - mid) as f64
}

#[test]
fn churn_rate_matches_request() {
    for (fpm, packets) in [(88_462_000u64, 600_000u64), (25_000_000, 600_000)] {
        let config = maestro_churn(fpm, packets);
        let pkts = gen(&config);
        let st = common::check(&config, &pkts).unwrap();
        let got = observed_churn(&st, &pkts);
        assert!(
            (got / fpm as f64 - 1.0).abs() < 0.02,
            "{fpm} fpm requested, {got:.0} observed"
        );
        // Keep-alives: no active flow is silent past the expiry, so an NF with that expiry
        // sees exactly the churn and nothing else.
        assert_eq!(st.gaps_over_expiry, 0, "max gap {} ns", st.max_gap);
        assert!(st.max_gap <= 750_000, "max gap {} ns", st.max_gap);

        let s = gen_stats(&config);
        assert_eq!(s.gaps_over_expiry, 0);
        assert_eq!(s.new_flows, s.replacements, "every new flow sends");
        // Initial flows replaced before their first packet never show up.
        assert!(s.flows <= 14_204 + s.new_flows && s.flows > 14_000 + s.new_flows);
        assert_eq!(s.flows, st.flows.len() as u64);
        // Replacements happen at exact times: floor(duration * fpm / minute), give or
        // take the one falling after the last packet.
        let exact = s.duration_ns() as f64 * fpm as f64 / 60e9;
        assert!((s.replacements as f64 - exact).abs() <= 1.0, "{s:?}");
        assert!((s.churn_fpm() / fpm as f64 - 1.0).abs() < 0.001);
        assert!((s.nf_churn_fpm() / fpm as f64 - 1.0).abs() < 0.001);
    }
}

#[test]
fn low_churn_over_a_long_trace() {
    // 600k fpm = 10k/s with 1,000 flows at 2 Mpps; 1 s of trace holds ~10,000 new flows.
    let config = TraceConfig {
        flows: flows(1_000),
        packets: 2_000_000,
        rate_pps: 2_000_000,
        expiry_ns: Some(10_000_000),
        churn_fpm: 600_000,
        zipf_s: 1.26,
        reply_ratio: 0.3,
        seed: 12,
        ..TraceConfig::default()
    };
    let s = gen_stats(&config);
    assert!((s.churn_fpm() / 600_000.0 - 1.0).abs() < 0.001, "{s}");
    assert_eq!(s.gaps_over_expiry, 0);
    assert!(s.max_gap_ns <= 7_500_000, "{}", s.max_gap_ns);
    // Churn keeps the ranks: the popularity distribution stays Zipf (flows live ~0.1 s,
    // so the fit runs over fewer, younger flows; a looser tolerance).
    assert!(s.keepalives > 0);
}

#[test]
fn no_churn_means_no_new_flows() {
    let config = TraceConfig {
        flows: flows(2_000),
        packets: 200_000,
        rate_pps: 10_000_000,
        expiry_ns: Some(2_000_000),
        ..TraceConfig::default()
    };
    let pkts = gen(&config);
    let st = common::check(&config, &pkts).unwrap();
    assert_eq!(st.flows.len(), 2_000);
    assert_eq!(observed_churn(&st, &pkts), 0.0);
    assert_eq!(st.gaps_over_expiry, 0);
}

#[test]
fn keepalives_are_what_keeps_flows_from_expiring() {
    // 5,000 uniform flows at 1 Mpps with a 40 ms expiry: 8 packets per flow per expiry,
    // the least validation accepts. By chance alone, a flow is silent past 40 ms with
    // probability e^-8 per gap, so without keep-alives some flows would expire.
    let base = TraceConfig {
        flows: flows(5_000),
        packets: 1_000_000,
        rate_pps: 1_000_000,
        seed: 6,
        ..TraceConfig::default()
    };
    let with = TraceConfig {
        expiry_ns: Some(40_000_000),
        ..base.clone()
    };
    let s = gen_stats(&with);
    assert_eq!(s.gaps_over_expiry, 0);
    assert!(s.max_gap_ns <= 30_000_000, "max gap {}", s.max_gap_ns);
    assert!(s.keepalives > 0);
    let st = common::check(&with, &gen(&with)).unwrap();
    assert_eq!(st.gaps_over_expiry, 0);

    // The same trace without keep-alives, its gaps judged against the same expiry
    // (the checker reads the expiry from the config it is given).
    let without = gen(&base);
    let judge = TraceConfig {
        expiry_ns: Some(40_000_000),
        ..base.clone()
    };
    let st = common::check(&judge, &without).unwrap();
    assert!(st.gaps_over_expiry > 50, "{}", st.gaps_over_expiry);
}

#[test]
fn reply_delay_is_respected() {
    let config = TraceConfig {
        flows: FlowSpec {
            count: 200,
            udp_share: 0.5,
            ..FlowSpec::default()
        },
        packets: 100_000,
        reply_ratio: 0.5,
        reply_delay_ns: 500_000, // 500 packets at 1 Mpps
        ..TraceConfig::default()
    };
    let st = common::check(&config, &gen(&config)).unwrap();
    assert!(st.min_reply_delay.unwrap() >= 500_000);
    // Most packets come long after the delay: the reply share stays near the ratio.
    let share = st.replies as f64 / st.repeat_packets as f64;
    assert!((share - 0.5).abs() < 0.03, "{share}");
}

#[test]
fn bit_rate_sets_the_timestamps() {
    let config = TraceConfig {
        sizes: SizeMix::Imix,
        rate_bps: Some(40_000_000_000),
        packets: 100_000,
        flows: flows(100),
        ..TraceConfig::default()
    };
    common::check(&config, &gen(&config)).unwrap();
    let s = gen_stats(&config);
    let bits = (s.frame_bytes + 24 * s.packets) as f64 * 8.0;
    let gbps = bits / s.duration_ns() as f64;
    assert!((gbps / 40.0 - 1.0).abs() < 1e-6, "{gbps}");
}

#[test]
fn every_feature_reproduces_byte_for_byte() {
    let config = TraceConfig {
        flows: FlowSpec {
            count: 3_000,
            udp_share: 0.6,
            src_prefix: "10.0.0.0/16".parse().unwrap(),
            dst_prefix: "0.0.0.0/0".parse().unwrap(),
        },
        packets: 300_000,
        zipf_s: 1.26,
        sizes: SizeMix::Imix,
        rate_bps: Some(100_000_000_000),
        reply_ratio: 0.4,
        reply_delay_ns: 10_000,
        expiry_ns: Some(5_000_000),
        churn_fpm: 10_000_000,
        seed: 77,
        ..TraceConfig::default()
    };
    let capture = |c: &TraceConfig| {
        let mut w = CaptureWriter::to_vec(CaptureFormat::PcapNg, c.port_count().unwrap());
        TraceGen::new(c.clone())
            .unwrap()
            .write_capture(&mut w)
            .unwrap();
        w.finish().unwrap().unwrap()
    };
    let a = capture(&config);
    assert_eq!(a, capture(&config));
    assert_ne!(
        a,
        capture(&TraceConfig {
            seed: 78,
            ..config.clone()
        })
    );
    let st = common::check(&config, &gen(&config)).unwrap();
    assert_eq!(st.gaps_over_expiry, 0);
    assert!(st.flows.len() > 3_000);
    assert!(st
        .flows
        .iter()
        .all(|t| t.0.octets()[..2] == [10, 0] && t.1.octets()[0] != 0));
}

#[test]
fn packet_knobs_do_not_change_flows_or_ranks() {
    // Same seed, different sizes, replies and rate: the same flows, in the same order of
    // popularity (the ranks have their own random stream).
    let a = TraceConfig {
        flows: flows(300),
        packets: 300_000,
        zipf_s: 1.5,
        seed: 9,
        ..TraceConfig::default()
    };
    let b = TraceConfig {
        sizes: SizeMix::Imix,
        reply_ratio: 0.5,
        rate_pps: 7_000_000,
        ..a.clone()
    };
    let heaviest = |c: &TraceConfig| {
        let st = common::check(c, &gen(c)).unwrap();
        let mut v: Vec<_> = st.counts.into_iter().collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        let top: Vec<_> = v.iter().take(3).map(|x| x.0).collect();
        (st.flows, top)
    };
    assert_eq!(heaviest(&a), heaviest(&b));
}

#[test]
fn new_validation_errors() {
    let err = |c: TraceConfig| c.validate().unwrap_err();
    let d = TraceConfig::default();
    for s in [-0.1, 2.01, f64::NAN] {
        assert!(matches!(
            err(TraceConfig {
                zipf_s: s,
                ..d.clone()
            }),
            TraceError::ZipfExponent { .. }
        ));
    }
    assert!(matches!(
        err(TraceConfig {
            rate_bps: Some(0),
            ..d.clone()
        }),
        TraceError::ZeroBitRate
    ));
    assert!(matches!(
        err(TraceConfig {
            churn_fpm: 1000,
            ..d.clone()
        }),
        TraceError::ChurnNeedsExpiry
    ));
    assert!(matches!(
        err(TraceConfig {
            expiry_ns: Some(0),
            ..d.clone()
        }),
        TraceError::ZeroExpiry
    ));
    // 40,000 flows at 1 Mpps need 320 ms of expiry.
    let e = err(TraceConfig {
        expiry_ns: Some(1_000_000),
        ..d.clone()
    });
    assert!(matches!(e, TraceError::ExpiryTooShort { .. }), "{e}");
    assert!(e.to_string().contains("320000"), "{e}");
    TraceConfig {
        expiry_ns: Some(320_000_000),
        ..d.clone()
    }
    .validate()
    .unwrap();
    let e = err(TraceConfig {
        expiry_ns: Some(1_000_000_000),
        churn_fpm: 16_000_000,
        ..d.clone()
    });
    assert!(matches!(e, TraceError::ChurnTooHigh { .. }), "{e}");
    assert!(matches!(
        err(TraceConfig {
            sizes: SizeMix::Weighted(vec![(64, 0)]),
            ..d.clone()
        }),
        TraceError::BadSizeMix(_)
    ));
    assert!(matches!(
        err(TraceConfig {
            sizes: SizeMix::Weighted(vec![(2000, 1)]),
            ..d.clone()
        }),
        TraceError::FrameSize { size: 2000 }
    ));
    // With a size mix, frame_size is unused and not checked.
    TraceConfig {
        sizes: SizeMix::Imix,
        frame_size: 0,
        ..d.clone()
    }
    .validate()
    .unwrap();
    // Bit-rate time overflow.
    assert!(matches!(
        err(TraceConfig {
            rate_bps: Some(1),
            packets: u64::MAX / 1000,
            ..d.clone()
        }),
        TraceError::TimeOverflow { .. }
    ));
}

#[test]
fn config_serde_defaults_keep_old_files_working() {
    // What the first cut serialized: no new fields.
    let old = r#"{"flows":{"count":10},"packets":5,"reply_ratio":0.5}"#;
    let c: TraceConfig = serde_json_like(old);
    assert_eq!(c.zipf_s, 0.0);
    assert_eq!(c.sizes, SizeMix::Fixed);
    assert_eq!((c.churn_fpm, c.expiry_ns, c.rate_bps), (0, None, None));
    let new = r#"{"sizes":{"weighted":[[64,7],[1518,1]]},"zipf_s":1.26,"expiry_ns":1000000}"#;
    let c: TraceConfig = serde_json_like(new);
    assert_eq!(c.sizes, SizeMix::Weighted(vec![(64, 7), (1518, 1)]));
    let c: TraceConfig = serde_json_like(r#"{"sizes":"imix"}"#);
    assert_eq!(c.sizes, SizeMix::Imix);
}

fn serde_json_like(text: &str) -> TraceConfig {
    serde_json::from_str(text).unwrap()
}

#[test]
fn stats_display_names_every_figure() {
    let config = TraceConfig {
        flows: flows(1_000),
        packets: 200_000,
        rate_pps: 10_000_000,
        zipf_s: 1.26,
        expiry_ns: Some(1_000_000),
        churn_fpm: 1_000_000,
        sizes: SizeMix::Imix,
        ..TraceConfig::default()
    };
    let text = gen_stats(&config).to_string();
    for word in [
        "packets", "time", "bytes", "sizes", "flows", "heaviest", "skew", "churn", "expiry",
        "64 B", "1518 B", "slope",
    ] {
        assert!(text.contains(word), "{word} missing from\n{text}");
    }
}
