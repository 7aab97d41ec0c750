//! Scenario tests for every library NF: the conformance scenarios of `nf-semantics.md` §6
//! plus our own, each run through the reference interpreter on real frames.

use std::net::Ipv4Addr;

use maestro_nfs::testkit::*;
use maestro_runtime::Observation;

const S: u64 = 1_000_000_000;

fn forwarded(obs: &Observation) -> (u16, Vec<u8>) {
    match obs {
        Observation::Forward { port, bytes } => (*port, bytes.clone()),
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn assert_drop(obs: &Observation, what: &str) {
    assert_eq!(obs, &Observation::Drop, "{what}");
}

fn assert_flood(obs: &Observation, what: &str) {
    assert!(matches!(obs, Observation::Flood { .. }), "{what}: {obs:?}");
}

#[test]
fn every_library_nf_loads() {
    for name in maestro_nfs::ALL {
        let nf = Nf::load(name, &[]);
        assert!(
            nf.program.port_count() >= 2,
            "{name} has at least two ports"
        );
    }
}

mod parsing {
    //! §6 "All parsing NFs": what each NF does with frames it cannot parse.
    use super::*;

    const TCP_UDP_NFS: [&str; 5] = ["fw", "nat", "lb", "cl", "psd"];

    fn flow() -> Flow {
        Flow::new([10, 0, 0, 1], 1234, [8, 8, 8, 8], 53)
    }

    /// The port on which each NF's unrestricted side receives (where a parsed TCP/UDP
    /// packet would be forwarded rather than dropped for policy reasons).
    fn open_port(nf: &Nf) -> u16 {
        match nf.program.name() {
            "lb" => nf.program.device_port("wan").unwrap_or(1),
            _ => nf.program.device_port("lan").unwrap_or(0),
        }
    }

    #[test]
    fn arp_is_dropped_by_ip_nfs_and_passed_by_bridges_and_nop() {
        for name in ["pol", "fw", "nat", "lb", "cl", "psd"] {
            let mut nf = Nf::load(name, &[]);
            let port = open_port(&nf);
            assert_drop(&nf.send(port, 0, arp([2, 0, 0, 0, 0, 9])), name);
        }
        let mut nop = Nf::load("nop", &[]);
        assert_eq!(forwarded(&nop.send(0, 0, arp([2, 0, 0, 0, 0, 9]))).0, 1);
        let mut bridge = Nf::load("bridge", &[]);
        assert_flood(&bridge.send(0, 0, arp([2, 0, 0, 0, 0, 9])), "bridge");
        let mut sbridge = Nf::load("sbridge", &[]);
        // ff:ff:ff:ff:ff:ff from port 0 has the rule -1 (flood) in rules.txt.
        assert_flood(&sbridge.send(0, 0, arp([2, 0, 0, 0, 0, 9])), "sbridge");
    }

    #[test]
    fn vlan_tagged_ipv4_is_not_ipv4() {
        for name in ["pol", "fw", "nat", "lb", "cl", "psd"] {
            let mut nf = Nf::load(name, &[]);
            let port = open_port(&nf);
            let frame = vlan_tagged(&flow().udp(10));
            assert_drop(&nf.send(port, 0, frame), name);
        }
    }

    #[test]
    fn icmp_is_dropped_by_tcp_udp_nfs_and_policed_by_pol() {
        for name in TCP_UDP_NFS {
            let mut nf = Nf::load(name, &[]);
            let port = open_port(&nf);
            assert_drop(&nf.send(port, 0, flow().icmp()), name);
        }
        let mut pol = Nf::load("pol", &[]);
        // LAN (port 1) traffic is not policed: any IPv4, ICMP included, goes to WAN.
        assert_eq!(forwarded(&pol.send(1, 0, flow().icmp())).0, 0);
        // WAN ICMP is policed like any IPv4 packet: a fresh bucket lets it through.
        assert_eq!(forwarded(&pol.send(0, 0, flow().icmp())).0, 1);
    }

    #[test]
    fn ipv4_without_l4_is_dropped_by_tcp_udp_nfs() {
        for name in TCP_UDP_NFS {
            let mut nf = Nf::load(name, &[]);
            let port = open_port(&nf);
            assert_drop(&nf.send(port, 0, ipv4_without_l4(&flow())), name);
        }
        // The policer only needs IPv4.
        let mut pol = Nf::load("pol", &[]);
        assert_eq!(forwarded(&pol.send(1, 0, ipv4_without_l4(&flow()))).0, 0);
    }

    #[test]
    fn truncated_frames_never_panic_and_are_dropped_by_parsing_nfs() {
        let full = flow().udp(0);
        for name in maestro_nfs::ALL {
            let mut nf = Nf::load(name, &[]);
            for len in [0usize, 1, 13, 14, 20, 33, 34, 37] {
                let obs = nf.send(0, 0, full[..len.min(full.len())].to_vec());
                if TCP_UDP_NFS.contains(&name) || name == "pol" {
                    assert_drop(&obs, &format!("{name} with a {len}-byte frame"));
                }
            }
        }
    }

    #[test]
    fn ip_options_move_l4_in_strict_mode_only() {
        use maestro_interpreter::{InterpOptions, Interpreter};
        use maestro_runtime::packet::ParseMode;
        use maestro_runtime::InputPacket;

        let f = flow();
        for (mode, reply_accepted) in [(ParseMode::Strict, true), (ParseMode::MaestroCompat, false)]
        {
            let nf = Nf::load("fw", &[]);
            let mut interp = Interpreter::new(
                &nf.program,
                InterpOptions {
                    parse_mode: mode,
                    ..InterpOptions::default()
                },
            )
            .expect("fw starts");
            let out = interp.process(&InputPacket {
                port: 0,
                time_ns: 0,
                data: ipv4_with_options(&f),
            });
            assert_eq!(
                forwarded(&out).0,
                1,
                "{mode:?}: LAN packet with options goes out"
            );
            // Strict mode keyed the flow on the real ports; Maestro mode on option bytes.
            let reply = interp.process(&InputPacket {
                port: 1,
                time_ns: 1,
                data: f.reversed().udp(8),
            });
            assert_eq!(
                matches!(reply, Observation::Forward { port: 0, .. }),
                reply_accepted,
                "{mode:?}: reply {reply:?}"
            );
        }
    }
}

mod nop {
    use super::*;

    #[test]
    fn wan_goes_to_lan_and_everything_else_to_wan_untouched() {
        let mut nf = Nf::load("nop", &[]);
        let frame = Flow::new([1, 2, 3, 4], 1, [5, 6, 7, 8], 2).udp(3);
        assert_eq!(
            nf.send(0, 0, frame.clone()),
            Observation::Forward {
                port: 1,
                bytes: frame.clone()
            }
        );
        assert_eq!(
            nf.send(1, 0, frame.clone()),
            Observation::Forward {
                port: 0,
                bytes: frame
            }
        );
        // Not even an Ethernet header is needed.
        assert_eq!(forwarded(&nf.send(0, 0, vec![1, 2, 3])).1, &[1, 2, 3]);
    }
}

mod sbridge {
    use super::*;

    fn to(dst: &str) -> Vec<u8> {
        Flow::new([1, 1, 1, 1], 1, [2, 2, 2, 2], 2)
            .with_macs(mac("02:00:00:00:00:99"), mac(dst))
            .udp(0)
    }

    #[test]
    fn follows_the_shipped_rules() {
        let mut nf = Nf::load("sbridge", &[]);
        assert_eq!(forwarded(&nf.send(0, 0, to("02:00:00:00:00:0a"))).0, 1);
        assert_flood(
            &nf.send(1, 0, to("02:00:00:00:00:0a")),
            "no rule from port 1",
        );
        assert_eq!(forwarded(&nf.send(1, 0, to("02:00:00:00:00:0b"))).0, 0);
        assert_drop(&nf.send(0, 0, to("02:00:00:00:00:0c")), "rule -2 filters");
        assert_flood(&nf.send(0, 0, to("ff:ff:ff:ff:ff:ff")), "rule -1 floods");
        assert_flood(
            &nf.send(0, 0, to("02:00:00:00:00:77")),
            "unknown MAC floods",
        );
    }

    fn with_rules(rules: &str) -> Result<Nf, String> {
        let dir = std::env::temp_dir().join(format!(
            "maestro-sbridge-{}-{}",
            std::process::id(),
            rules.len()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rules.txt");
        std::fs::write(&path, rules).expect("write rules");
        let overrides = vec![("rules".to_string(), path.display().to_string())];
        let program = maestro_analyzer::load_nf(&maestro_nfs::nf_dir("sbridge"), &overrides)
            .map_err(|e| e.to_string())?;
        let interp = maestro_interpreter::Interpreter::new(&program, Default::default())
            .map_err(|e| e.to_string())?;
        Ok(Nf { program, interp })
    }

    #[test]
    fn a_rule_to_the_input_port_drops_and_a_missing_port_is_a_fault() {
        let mut nf =
            with_rules("02:00:00:00:00:0a 0 0\n02:00:00:00:00:0b 0 7\n").expect("rules load");
        assert_drop(&nf.send(0, 0, to("02:00:00:00:00:0a")), "out == in");
        assert_drop(
            &nf.send(0, 0, to("02:00:00:00:00:0b")),
            "port 7 does not exist",
        );
        assert!(
            nf.interp.fault_count() >= 1,
            "forward to port 7 is an NF fault"
        );
    }

    #[test]
    fn a_bad_rules_file_is_rejected_with_its_line_and_column() {
        let err = match with_rules("02:00:00:00:00:0a 0 1\n02:00:00:zz:00:0b 0 1\n") {
            Ok(_) => panic!("a bad MAC must be rejected (Q16)"),
            Err(e) => e,
        };
        assert!(
            err.contains("rules.txt:2:1"),
            "error names file:line:col: {err}"
        );
    }
}

mod bridge {
    use super::*;

    const A: &str = "02:00:00:00:00:0a";
    const B: &str = "02:00:00:00:00:0b";

    fn frame(src: &str, dst: &str) -> Vec<u8> {
        Flow::new([1, 1, 1, 1], 1, [2, 2, 2, 2], 2)
            .with_macs(mac(src), mac(dst))
            .udp(0)
    }

    #[test]
    fn learns_forwards_filters_and_forgets() {
        let mut nf = Nf::load("bridge", &[("expiration_time", "10s")]);
        assert_flood(&nf.send(0, 0, frame(A, B)), "unknown destination floods");
        // A was learned on port 0.
        assert_eq!(forwarded(&nf.send(1, S, frame(B, A))).0, 0);
        assert_drop(&nf.send(0, 2 * S, frame(B, A)), "same segment is filtered");
        // B was learned on port 1 at 1 s and refreshed at 2 s (from port 0: the port is
        // not updated, Q7).
        assert_eq!(forwarded(&nf.send(0, 3 * S, frame(A, B))).0, 1);
        // A was last seen at 3 s: still known at 13 s, gone at 13 s + 1 ns.
        assert_eq!(forwarded(&nf.send(1, 13 * S, frame(B, A))).0, 0);
        assert_flood(&nf.send(1, 23 * S + 1, frame(B, A)), "A expired");
    }

    #[test]
    fn a_full_table_learns_nothing_more() {
        let mut nf = Nf::load("bridge", &[("capacity", "1")]);
        assert_flood(&nf.send(0, 0, frame(A, B)), "A learned");
        assert_eq!(forwarded(&nf.send(1, 1, frame(B, A))).0, 0, "A is known");
        assert_flood(&nf.send(0, 2, frame(A, B)), "B was never learned");
    }
}

mod pol {
    use super::*;

    fn from_wan(len: usize) -> Vec<u8> {
        // 14 + 20 + 8 bytes of headers: a frame of `len` bytes.
        Flow::new([7, 7, 7, 7], 1, [10, 0, 0, 1], 2).udp(len - 42)
    }

    fn policer() -> Nf {
        // 1000 B/s, 3000 B burst: the bucket refills from empty in 3 s (ttl 3 s).
        Nf::load("pol", &[("rate", "1000"), ("burst", "3000")])
    }

    #[test]
    fn burst_then_drop_then_refill() {
        let mut nf = policer();
        assert_eq!(
            forwarded(&nf.send(0, 0, from_wan(1000))).0,
            1,
            "new: 2000 left"
        );
        assert_eq!(forwarded(&nf.send(0, 0, from_wan(1000))).0, 1, "1000 left");
        assert_drop(
            &nf.send(0, 0, from_wan(1000)),
            "a packet equal to the bucket drops",
        );
        // One second refills 1000 bytes.
        assert_eq!(forwarded(&nf.send(0, S, from_wan(1000))).0, 1);
        assert_drop(
            &nf.send(0, S, from_wan(1000)),
            "1000 left: a 1000-byte packet drops",
        );
    }

    #[test]
    fn a_new_flow_larger_than_the_burst_creates_no_state() {
        let mut nf = policer();
        assert_drop(&nf.send(0, 0, from_wan(3001)), "size > burst");
        // No state was created: the next packet starts a full bucket (3000 - 2000).
        assert_eq!(forwarded(&nf.send(0, 0, from_wan(2000))).0, 1);
        assert_eq!(forwarded(&nf.send(0, 0, from_wan(999))).0, 1);
    }

    #[test]
    fn a_new_flow_of_exactly_the_burst_passes() {
        let mut nf = policer();
        assert_eq!(forwarded(&nf.send(0, 0, from_wan(3000))).0, 1);
        assert_drop(&nf.send(0, 0, from_wan(60)), "bucket is empty");
    }

    #[test]
    fn idle_longer_than_the_refill_time_refills_to_full() {
        let mut nf = policer();
        assert_eq!(forwarded(&nf.send(0, 0, from_wan(3000))).0, 1);
        // Idle for exactly 3 s (= burst/rate): the entry survives and refills to full.
        assert_eq!(forwarded(&nf.send(0, 3 * S, from_wan(2999))).0, 1);
        assert_drop(&nf.send(0, 3 * S, from_wan(60)), "1 byte left");
        // Idle past expiry: forgotten, then recreated with a full bucket.
        assert_eq!(forwarded(&nf.send(0, 6 * S + 1, from_wan(2999))).0, 1);
    }

    #[test]
    fn lan_traffic_is_not_policed() {
        let mut nf = policer();
        for i in 0..10 {
            assert_eq!(forwarded(&nf.send(1, i, from_wan(1500))).0, 0);
        }
    }
}

mod fw {
    use super::*;

    fn client() -> Flow {
        Flow::new([10, 0, 0, 5], 40000, [93, 184, 216, 34], 443)
    }

    #[test]
    fn wan_traffic_passes_only_as_a_reply() {
        let mut nf = Nf::load("fw", &[]);
        let c = client();
        assert_drop(&nf.send(1, 0, c.reversed().tcp(0)), "WAN before LAN");
        let (port, bytes) = forwarded(&nf.send(0, 1, c.tcp(0)));
        assert_eq!(port, 1);
        let out = seen(&bytes);
        assert_eq!(out.src_mac, mac("02:00:00:00:00:01"), "our WAN MAC");
        assert_eq!(out.dst_mac, mac("01:23:45:67:89:01"), "WAN next hop");
        assert_eq!((out.src, out.sport), (c.src, c.sport), "no translation");
        let (port, bytes) = forwarded(&nf.send(1, 2, c.reversed().tcp(0)));
        assert_eq!(port, 0, "reply goes back to the LAN port");
        let out = seen(&bytes);
        assert_eq!(out.src_mac, mac("02:00:00:00:00:00"));
        assert_eq!(out.dst_mac, mac("01:23:45:67:89:00"));
        // A different protocol is a different flow.
        assert_drop(
            &nf.send(1, 3, c.reversed().udp(0)),
            "UDP reply to a TCP flow",
        );
    }

    #[test]
    fn replies_are_dropped_again_after_expiry() {
        let mut nf = Nf::load("fw", &[("expiration_time", "10s")]);
        let c = client();
        forwarded(&nf.send(0, S, c.udp(0)));
        // The entry survives while now - ts <= T, and the reply refreshes it.
        assert_eq!(forwarded(&nf.send(1, 11 * S, c.reversed().udp(0))).0, 0);
        assert_eq!(forwarded(&nf.send(1, 21 * S, c.reversed().udp(0))).0, 0);
        assert_drop(&nf.send(1, 31 * S + 1, c.reversed().udp(0)), "expired");
    }

    #[test]
    fn a_full_table_still_forwards_outbound_but_drops_its_replies() {
        let mut nf = Nf::load("fw", &[("max_flows", "1")]);
        let a = client();
        let b = Flow::new([10, 0, 0, 6], 40001, [1, 1, 1, 1], 80);
        assert_eq!(forwarded(&nf.send(0, 0, a.udp(0))).0, 1);
        assert_eq!(forwarded(&nf.send(0, 1, b.udp(0))).0, 1);
        assert_drop(&nf.send(1, 2, b.reversed().udp(0)), "b was not recorded");
        assert_eq!(forwarded(&nf.send(1, 3, a.reversed().udp(0))).0, 0);
    }

    #[test]
    fn a_reply_returns_to_the_lan_port_that_opened_the_flow() {
        let mut nf = Nf::load("fw", &[("wan", "2")]);
        let c = client();
        assert_eq!(
            forwarded(&nf.send(1, 0, c.udp(0))).0,
            2,
            "port 1 is a LAN port too"
        );
        assert_eq!(forwarded(&nf.send(2, 1, c.reversed().udp(0))).0, 1);
    }
}

mod nat {
    use super::*;

    const EXT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn client(n: u8) -> Flow {
        Flow::new([10, 0, 0, n], 5000 + u16::from(n), [8, 8, 4, 4], 53)
    }

    /// The server's reply to external port `ext`.
    fn reply(c: &Flow, ext: u16) -> Vec<u8> {
        let mut r = c.reversed();
        r.dst = EXT;
        r.dport = ext;
        r.udp(4)
    }

    fn ext_port(obs: &Observation) -> u16 {
        let (port, bytes) = forwarded(obs);
        assert_eq!(port, 1);
        let out = seen(&bytes);
        assert_eq!(out.src, EXT);
        out.sport
    }

    #[test]
    fn translates_both_ways_with_valid_checksums() {
        let mut nf = Nf::load("nat", &[("start_port", "1000")]);
        let c = client(1);
        assert_eq!(
            ext_port(&nf.send(0, 0, c.udp(4))),
            1000,
            "first flow gets index 0"
        );
        let (port, bytes) = forwarded(&nf.send(1, 1, reply(&c, 1000)));
        assert_eq!(port, 0);
        let back = seen(&bytes);
        assert_eq!((back.dst, back.dport), (c.src, c.sport));
        assert_eq!((back.src, back.sport), (c.dst, c.dport));
        assert_eq!(back.dst_mac, mac("01:23:45:67:89:00"));
        // The same flow keeps its port; TCP checksums are fixed too.
        assert_eq!(ext_port(&nf.send(0, 2, c.udp(4))), 1000);
        assert_eq!(ext_port(&nf.send(0, 3, client(2).tcp(20))), 1001);
    }

    #[test]
    fn anti_spoofing_drops_replies_from_anyone_but_the_server() {
        let mut nf = Nf::load("nat", &[("start_port", "1000")]);
        let c = client(1);
        ext_port(&nf.send(0, 0, c.udp(4)));
        let mut wrong_ip = c.reversed();
        wrong_ip.src = Ipv4Addr::new(6, 6, 6, 6);
        wrong_ip.dst = EXT;
        wrong_ip.dport = 1000;
        assert_drop(&nf.send(1, 1, wrong_ip.udp(4)), "wrong server IP");
        let mut wrong_port = c.reversed();
        wrong_port.sport = 54;
        wrong_port.dst = EXT;
        wrong_port.dport = 1000;
        assert_drop(&nf.send(1, 2, wrong_port.udp(4)), "wrong server port");
        let mut tcp = c.reversed();
        tcp.dst = EXT;
        tcp.dport = 1000;
        assert_drop(&nf.send(1, 3, tcp.tcp(0)), "wrong protocol");
        assert_drop(&nf.send(1, 4, reply(&c, 1001)), "unallocated port");
        assert_drop(
            &nf.send(1, 5, reply(&c, 999)),
            "below start_port: out of range",
        );
        assert_eq!(forwarded(&nf.send(1, 6, reply(&c, 1000))).0, 0);
    }

    #[test]
    fn expiry_frees_ports_and_the_last_freed_is_reused_first() {
        let mut nf = Nf::load(
            "nat",
            &[
                ("expiration_time", "10s"),
                ("max_flows", "4"),
                ("start_port", "100"),
            ],
        );
        assert_eq!(ext_port(&nf.send(0, 0, client(1).udp(0))), 100);
        assert_eq!(ext_port(&nf.send(0, S, client(2).udp(0))), 101);
        assert_eq!(ext_port(&nf.send(0, 2 * S, client(3).udp(0))), 102);
        // At 11.5 s the flows of 0 s and 1 s expire, oldest first: index 0 then 1 is
        // freed, so 1 is on top of the free stack.
        let t = 11 * S + S / 2;
        assert_eq!(ext_port(&nf.send(0, t, client(4).udp(0))), 101);
        assert_eq!(ext_port(&nf.send(0, t, client(5).udp(0))), 100);
        assert_eq!(ext_port(&nf.send(0, t, client(6).udp(0))), 103);
        assert_drop(
            &nf.send(0, t, client(7).udp(0)),
            "table full drops new flows",
        );
        // client(3) is still mapped on 102.
        assert_eq!(ext_port(&nf.send(0, t, client(3).udp(0))), 102);
    }

    #[test]
    fn wan_traffic_alone_does_not_keep_a_flow_alive_unless_configured() {
        for (refresh, alive) in [("false", false), ("true", true)] {
            let mut nf = Nf::load(
                "nat",
                &[
                    ("expiration_time", "10s"),
                    ("start_port", "100"),
                    ("refresh_on_wan", refresh),
                ],
            );
            let c = client(1);
            ext_port(&nf.send(0, 0, c.udp(0)));
            assert_eq!(forwarded(&nf.send(1, 5 * S, reply(&c, 100))).0, 0);
            assert_eq!(forwarded(&nf.send(1, 9 * S, reply(&c, 100))).0, 0);
            let late = nf.send(1, 10 * S + S / 2, reply(&c, 100));
            assert_eq!(
                matches!(late, Observation::Forward { port: 0, .. }),
                alive,
                "refresh_on_wan={refresh}: {late:?}"
            );
        }
    }
}

mod lb {
    use super::*;
    use maestro_runtime::hash::StructHasher;

    const H: u32 = 97;

    fn heartbeat(ip: [u8; 4], mac_last: u8) -> Vec<u8> {
        Flow::new(ip, 9, [10, 0, 0, 1], 9)
            .with_macs([2, 0xbe, 0, 0, 0, mac_last], [2, 0, 0, 0, 0, 0])
            .udp(0)
    }

    fn client(n: u16) -> Flow {
        Flow::new(
            [100, 64, (n >> 8) as u8, n as u8],
            10000 + n,
            [198, 51, 100, 1],
            80,
        )
    }

    fn backend_ip(obs: &Observation) -> Ipv4Addr {
        let (port, bytes) = forwarded(obs);
        assert_eq!(port, 0, "client traffic goes to the backend side");
        seen(&bytes).dst
    }

    /// The backend the CHT prefers for a flow when backends 0..live are all alive, from
    /// §2.6 written independently of the runtime: the backend whose permutation reaches
    /// the row first, ties to the lower index.
    fn preferred(flow: &Flow, live: u32) -> u32 {
        let mut h = StructHasher::new();
        h.word(u32::from_le_bytes(flow.src.octets()));
        h.word(u32::from_le_bytes(flow.dst.octets()));
        h.word(u32::from(flow.sport.swap_bytes()));
        h.word(u32::from(flow.dport.swap_bytes()));
        h.word(17);
        let row = h.finish() % H;
        (0..live)
            .min_by_key(|&i| {
                let offset = (31 * i) % H;
                let shift = (i % (H - 1)) + 1;
                let position = (0..H)
                    .find(|&j| (offset + shift * j) % H == row)
                    .expect("a permutation reaches every row");
                (position, i)
            })
            .expect("at least one backend")
    }

    #[test]
    fn no_backend_means_drop_and_heartbeats_are_consumed() {
        let mut nf = Nf::load("lb", &[]);
        assert_drop(&nf.send(1, 0, client(1).udp(0)), "no backend yet");
        assert_drop(
            &nf.send(0, 1, heartbeat([10, 1, 0, 1], 1)),
            "heartbeat consumed",
        );
        let (port, bytes) = forwarded(&nf.send(1, 2, client(1).udp(0)));
        assert_eq!(port, 0);
        let out = seen(&bytes);
        assert_eq!(out.dst, Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(out.dst_mac, [2, 0xbe, 0, 0, 0, 1], "MAC from the heartbeat");
        assert_eq!(
            out.src_mac,
            mac("02:00:00:00:00:00"),
            "our backend-side MAC"
        );
        assert_eq!(out.src, client(1).src, "client address untouched");
    }

    #[test]
    fn backend_choice_follows_the_cht_and_flows_stick() {
        let mut nf = Nf::load("lb", &[]);
        nf.send(0, 0, heartbeat([10, 1, 0, 0], 0)); // index 0
        nf.send(0, 0, heartbeat([10, 1, 0, 1], 1)); // index 1
        for n in 0..40 {
            let c = client(n);
            let expected = preferred(&c, 2);
            let got = backend_ip(&nf.send(1, 1, c.udp(0)));
            assert_eq!(got, Ipv4Addr::new(10, 1, 0, expected as u8), "flow {n}");
        }
        // A third backend does not move pinned flows.
        nf.send(0, 2, heartbeat([10, 1, 0, 2], 2));
        for n in 0..40 {
            let c = client(n);
            let got = backend_ip(&nf.send(1, 3, c.udp(0)));
            assert_eq!(got, Ipv4Addr::new(10, 1, 0, preferred(&c, 2) as u8));
        }
    }

    #[test]
    fn a_dead_backends_flows_are_re_resolved() {
        let mut nf = Nf::load("lb", &[("backend_expiration", "10s")]);
        nf.send(0, 0, heartbeat([10, 1, 0, 0], 0));
        nf.send(0, 0, heartbeat([10, 1, 0, 1], 1));
        let c = (0..100)
            .map(client)
            .find(|c| preferred(c, 2) == 0)
            .expect("some flow prefers backend 0");
        assert_eq!(
            backend_ip(&nf.send(1, S, c.udp(0))),
            Ipv4Addr::new(10, 1, 0, 0)
        );
        // Only backend 1 keeps sending heartbeats; backend 0 expires after 10 s.
        nf.send(0, 8 * S, heartbeat([10, 1, 0, 1], 1));
        assert_eq!(
            backend_ip(&nf.send(1, 10 * S + 1, c.udp(0))),
            Ipv4Addr::new(10, 1, 0, 1),
            "re-resolved to the live backend"
        );
    }

    #[test]
    fn backend_side_traffic_is_never_forwarded() {
        let mut nf = Nf::load("lb", &[]);
        nf.send(0, 0, heartbeat([10, 1, 0, 0], 0));
        for n in 0..10 {
            assert_drop(&nf.send(0, n, client(n as u16).udp(0)), "backend side");
        }
    }
}

mod cl {
    use super::*;

    fn flow(n: u16) -> Flow {
        Flow::new([7, 7, 7, 7], 1000 + n, [10, 0, 0, 1], 80)
    }

    #[test]
    fn theta_two_lets_four_flows_through_and_refuses_the_fifth_once() {
        let mut nf = Nf::load("cl", &[("max_clients", "2")]);
        for n in 1..=4 {
            assert_eq!(forwarded(&nf.send(0, 0, flow(n).udp(0))).0, 1, "flow {n}");
        }
        assert_drop(&nf.send(0, 0, flow(5).udp(0)), "flow 5's first packet");
        assert_eq!(
            forwarded(&nf.send(0, 1, flow(5).udp(0))).0,
            1,
            "Q9: then it passes"
        );
        assert_drop(&nf.send(0, 1, flow(6).udp(0)), "still over the limit");
        // Another client is counted separately (barring sketch collisions, which a
        // 1024-wide sketch does not have for two clients here).
        let other = Flow::new([7, 7, 7, 8], 1, [10, 0, 0, 1], 80);
        assert_eq!(forwarded(&nf.send(0, 1, other.udp(0))).0, 1);
        // LAN traffic is never limited.
        assert_eq!(forwarded(&nf.send(1, 1, flow(7).udp(0))).0, 0);
    }

    #[test]
    fn client_expiry_resets_the_count() {
        let mut nf = Nf::load(
            "cl",
            &[
                ("max_clients", "2"),
                ("expire_client", "10s"),
                ("expire_flow", "10s"),
            ],
        );
        for n in 1..=4 {
            forwarded(&nf.send(0, 0, flow(n).udp(0)));
        }
        assert_drop(&nf.send(0, 0, flow(5).udp(0)), "over the limit");
        for n in 10..=13 {
            assert_eq!(forwarded(&nf.send(0, 10 * S + 1, flow(n).udp(0))).0, 1);
        }
    }
}

mod psd {
    use super::*;

    fn to_port(port: u16) -> Vec<u8> {
        Flow::new([6, 6, 6, 6], 5555, [10, 0, 0, 1], port).tcp(0)
    }

    #[test]
    fn four_ports_pass_the_fifth_is_a_scan_and_seen_ports_still_pass() {
        let mut nf = Nf::load("psd", &[("max_ports", "4")]);
        for p in 1..=4 {
            assert_eq!(forwarded(&nf.send(0, 0, to_port(p))).0, 1, "port {p}");
        }
        assert_drop(&nf.send(0, 0, to_port(5)), "port 5: scan");
        assert_eq!(
            forwarded(&nf.send(0, 0, to_port(1))).0,
            1,
            "port 1 still passes"
        );
        // Another source has its own budget.
        let other = Flow::new([6, 6, 6, 7], 5555, [10, 0, 0, 1], 5).tcp(0);
        assert_eq!(forwarded(&nf.send(0, 0, other)).0, 1);
        // LAN traffic is not inspected.
        assert_eq!(forwarded(&nf.send(1, 0, to_port(9))).0, 0);
    }

    #[test]
    fn an_idle_source_is_forgotten_with_its_ports() {
        let mut nf = Nf::load("psd", &[("max_ports", "4"), ("expiration_time", "10s")]);
        for p in 1..=4 {
            forwarded(&nf.send(0, 0, to_port(p)));
        }
        // Dropped packets still refresh the source (at 5 s).
        assert_drop(&nf.send(0, 5 * S, to_port(5)), "scan");
        assert_drop(&nf.send(0, 15 * S, to_port(6)), "alive: last seen at 5 s");
        for p in 10..=13 {
            assert_eq!(
                forwarded(&nf.send(0, 25 * S + 1, to_port(p))).0,
                1,
                "port {p}"
            );
        }
        assert_drop(&nf.send(0, 25 * S + 1, to_port(14)), "a fresh budget of 4");
    }
}

mod fuzz {
    //! Random bytes as packets, through every library NF: never a panic, always exactly
    //! one observation, never a port the NF does not have.
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            // Mostly-valid IPv4 TCP/UDP frames with random bytes patched in, so the
            // NFs get past their parsers and into their state.
            (
                any::<[u8; 4]>(),
                any::<u16>(),
                any::<bool>(),
                proptest::collection::vec((0usize..60, any::<u8>()), 0..4)
            )
                .prop_map(|(ip, port, udp, patches)| {
                    let f = Flow::new(ip, port, [10, 0, 0, 1], port.rotate_left(3));
                    let mut bytes = if udp { f.udp(4) } else { f.tcp(0) };
                    for (at, b) in patches {
                        if at < bytes.len() {
                            bytes[at] = b;
                        }
                    }
                    bytes
                }),
        ]
    }

    /// Small capacities, so that random traffic also fills tables.
    fn small(name: &str) -> Vec<(&'static str, &'static str)> {
        match name {
            "bridge" | "pol" => vec![("capacity", "4")],
            "fw" | "nat" => vec![("max_flows", "4")],
            "lb" => vec![("flow_capacity", "4"), ("backend_capacity", "2")],
            "cl" => vec![("max_flows", "4"), ("capacity", "8"), ("max_clients", "1")],
            "psd" => vec![("capacity", "4"), ("max_ports", "2")],
            _ => vec![],
        }
    }

    thread_local! {
        static PROGRAMS: Vec<maestro_analyzer::NfProgram> = maestro_nfs::ALL
            .iter()
            .map(|name| Nf::load(name, &small(name)).program)
            .collect();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn random_frames_through_every_nf(
            packets in proptest::collection::vec((0u16..2, frame()), 1..24)
        ) {
            let programs = PROGRAMS.with(|p| p.clone());
            for program in &programs {
                let mut interp = maestro_interpreter::Interpreter::new(program, Default::default())
                    .expect("NF starts");
                let ports = program.port_count();
                for (i, (port, data)) in packets.iter().enumerate() {
                    let obs = interp.process(&maestro_runtime::InputPacket {
                        port: *port,
                        time_ns: i as u64 * 1_000_000,
                        data: data.clone(),
                    });
                    if let Observation::Forward { port: out, .. } = obs {
                        prop_assert!(out < ports, "{} forwarded to port {}", program.name(), out);
                        prop_assert!(out != *port, "{} sent a packet back out of its input port", program.name());
                    }
                }
            }
        }
    }
}
