//! Config parsing and validation.

use std::net::Ipv4Addr;

use maestro_trafficgen::{Cidr, FlowSpec, TraceConfig, TraceError, TraceGen};
use proptest::prelude::*;
use serde::de::value::{Error as DeError, StrDeserializer};
use serde::Deserialize;

fn err(config: TraceConfig) -> TraceError {
    let e = config.validate().unwrap_err();
    // TraceGen::new reports the same problem.
    assert_eq!(
        TraceGen::new(config).err().unwrap().to_string(),
        e.to_string()
    );
    e
}

fn with_flows(f: impl FnOnce(&mut FlowSpec)) -> TraceConfig {
    let mut c = TraceConfig::default();
    f(&mut c.flows);
    c
}

#[test]
fn defaults() {
    let c = TraceConfig::default();
    assert_eq!(c.flows.count, 40_000);
    assert_eq!(c.flows.udp_share, 1.0);
    assert_eq!(c.flows.src_prefix.to_string(), "10.0.0.0/8");
    assert_eq!(c.flows.dst_prefix.to_string(), "0.0.0.0/0");
    assert_eq!((c.frame_size, c.frame_len()), (64, 60));
    assert_eq!(c.rate_pps, 1_000_000);
    assert_eq!(c.reply_ratio, 0.0);
    assert_eq!((c.lan_port, c.wan_port), (0, 1));
    c.validate().unwrap();
}

#[test]
fn validation_errors() {
    let e = err(with_flows(|f| f.count = 0));
    assert!(matches!(e, TraceError::ZeroFlows));
    assert!(e.to_string().contains("flows.count"));

    let e = err(with_flows(|f| f.count = maestro_trafficgen::MAX_FLOWS + 1));
    assert!(matches!(e, TraceError::TooManyFlows { .. }));

    for size in [0u16, 63, 1519, u16::MAX] {
        let e = err(TraceConfig {
            frame_size: size,
            ..TraceConfig::default()
        });
        assert!(matches!(e, TraceError::FrameSize { size: s } if s == size));
        assert!(e.to_string().contains("FCS"), "{e}");
    }

    for bad in [-0.1, 1.000001, f64::NAN, f64::INFINITY] {
        let e = err(with_flows(|f| f.udp_share = bad));
        assert!(
            matches!(
                e,
                TraceError::Ratio {
                    what: "flows.udp_share",
                    ..
                }
            ),
            "{e}"
        );
        let e = err(TraceConfig {
            reply_ratio: bad,
            ..TraceConfig::default()
        });
        assert!(
            matches!(
                e,
                TraceError::Ratio {
                    what: "reply_ratio",
                    ..
                }
            ),
            "{e}"
        );
    }

    for p in [
        "224.0.0.0/4",
        "255.255.255.255/32",
        "127.0.0.0/8",
        "0.0.0.0/8",
        "0.0.0.1/32",
    ] {
        let e = err(with_flows(|f| f.dst_prefix = p.parse().unwrap()));
        assert!(
            matches!(
                e,
                TraceError::NoUsableAddress {
                    what: "flows.dst_prefix",
                    ..
                }
            ),
            "{e}"
        );
    }
    let e = err(with_flows(|f| {
        f.src_prefix = "192.0.2.1/32".parse().unwrap();
        f.dst_prefix = f.src_prefix;
    }));
    assert!(matches!(e, TraceError::SameSingleAddress { .. }));

    let e = err(TraceConfig {
        rate_pps: 0,
        ..TraceConfig::default()
    });
    assert!(matches!(e, TraceError::ZeroRate));

    let e = err(TraceConfig {
        lan_port: 3,
        wan_port: 3,
        ..TraceConfig::default()
    });
    assert!(matches!(e, TraceError::SamePorts { port: 3 }));

    let e = err(TraceConfig {
        packets: u64::MAX,
        rate_pps: 1,
        ..TraceConfig::default()
    });
    assert!(matches!(e, TraceError::TimeOverflow { .. }));
    // The last timestamp exactly at u64::MAX is fine.
    TraceConfig {
        packets: 2,
        start_ns: u64::MAX - 1_000_000_000,
        rate_pps: 1,
        ..TraceConfig::default()
    }
    .validate()
    .unwrap();
}

#[test]
fn cidr_parsing() {
    let c: Cidr = "192.168.0.0/16".parse().unwrap();
    assert_eq!(
        (c.network(), c.prefix_len()),
        (Ipv4Addr::new(192, 168, 0, 0), 16)
    );
    assert!(c.contains(Ipv4Addr::new(192, 168, 255, 1)));
    assert!(!c.contains(Ipv4Addr::new(192, 169, 0, 0)));
    assert_eq!(
        " 1.2.3.4/32 ".parse::<Cidr>().unwrap().to_string(),
        "1.2.3.4/32"
    );
    assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix_len(), 0);

    for (text, hint) in [
        ("10.0.0.0", "missing"),
        ("10.0.0/8", "dotted-quad"),
        ("10.0.0.256/8", "dotted-quad"),
        ("010.0.0.0/8", "dotted-quad"),
        ("10.0.0.0/33", "0..=32"),
        ("10.0.0.0/-1", "0..=32"),
        ("10.0.0.0/", "0..=32"),
        ("10.1.0.0/8", "did you mean 10.0.0.0/8"),
        ("", "missing"),
    ] {
        let e = text.parse::<Cidr>().unwrap_err();
        assert!(matches!(e, TraceError::BadCidr { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains(hint) && msg.contains("a.b.c.d/p"),
            "{text}: {msg}"
        );
    }
    assert!(Cidr::new(Ipv4Addr::new(10, 0, 0, 0), 33).is_err());
}

#[test]
fn cidr_serde_is_the_string_form() {
    let c = Cidr::deserialize(StrDeserializer::<DeError>::new("172.16.0.0/12")).unwrap();
    assert_eq!(c, "172.16.0.0/12".parse().unwrap());
    let e = Cidr::deserialize(StrDeserializer::<DeError>::new("172.16.0.1/12")).unwrap_err();
    assert!(e.to_string().contains("host bits"), "{e}");
    assert_eq!(String::from(c), "172.16.0.0/12");
}

proptest! {
    #[test]
    fn cidr_display_parse_round_trip(a in any::<u32>(), len in 0u8..=32) {
        let net = a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let c = Cidr::new(net.into(), len).unwrap();
        prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
        prop_assert!(c.contains(net.into()));
        if net != a {
            prop_assert!(Cidr::new(a.into(), len).is_err());
        }
    }
}
