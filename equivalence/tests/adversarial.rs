//! Generated traffic does what its label says, checked against the reference
//! interpreter, the Toeplitz hash and etherparse.

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use maestro_analyzer::sym::report::Analysis;
use maestro_analyzer::NfProgram;
use maestro_equivalence::adversarial::{
    self, co_location_pairs, expiry_boundaries, odd_frame, odd_packets, reta_collisions,
    table_full, AdversarialContext, AdversarialTrace, OddKind, Steering, Tuple, BASE_TIME, TCP,
    UDP,
};
use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_rss::{solve, SolveOptions};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::rss::Toeplitz;
use maestro_runtime::{InputPacket, Observation};

struct Nf {
    program: NfProgram,
    analysis: Analysis,
    steering: Steering,
}

fn load(name: &str, overrides: &[(&str, &str)]) -> Nf {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let program = maestro_analyzer::load_nf(&maestro_nfs::nf_dir(name), &overrides)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let analysis = maestro_analyzer::analyze(&program).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rss = solve(
        &analysis,
        &SolveOptions {
            cores: 2,
            reta_size: 128,
            ..SolveOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    Nf {
        program,
        analysis,
        steering: Steering::from_rss(&rss),
    }
}

fn ctx(nf: &Nf) -> AdversarialContext<'_> {
    AdversarialContext {
        program: &nf.program,
        analysis: &nf.analysis,
        steering: Some(&nf.steering),
        cores: 2,
        seed: 7,
        parse_mode: ParseMode::Strict,
    }
}

fn run(program: &NfProgram, packets: &[InputPacket]) -> Vec<Observation> {
    let mut i = Interpreter::new(program, InterpOptions::default()).expect("interpreter");
    i.run(packets)
}

fn named<'a>(traces: &'a [AdversarialTrace], name: &str) -> &'a AdversarialTrace {
    traces.iter().find(|t| t.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = traces.iter().map(|t| t.name.as_str()).collect();
        panic!("no trace {name} among {names:?}")
    })
}

fn forwarded_from(packets: &[InputPacket], obs: &[Observation], port: u16) -> usize {
    packets
        .iter()
        .zip(obs)
        .filter(|(p, o)| p.port == port && matches!(o, Observation::Forward { .. }))
        .count()
}

#[test]
fn fw_co_location_pairs_reach_the_wan_hit() {
    let nf = load("fw", &[]);
    let traces = co_location_pairs(&ctx(&nf)).expect("traces");
    let t = named(&traces, "co-location:lan-wan");
    assert!(t.purpose.contains("flows"), "{}", t.purpose);
    let obs = run(&nf.program, &t.packets);
    // 8 flows: replies after the request, twice each; plus 4 WAN-opened flows (dropped).
    assert_eq!(
        forwarded_from(&t.packets, &obs, 1),
        16,
        "every reply to a LAN flow passes"
    );
    let wan_total = t.packets.iter().filter(|p| p.port == 1).count();
    assert_eq!(wan_total, 20);
    // The same-port constraint trace exists too.
    named(&traces, "co-location:lan-lan");
    // Fragments of a LAN flow open it for regular replies.
    let c = named(&traces, "odd-classes:lan-wan");
    let obs = run(&nf.program, &c.packets);
    assert!(
        forwarded_from(&c.packets, &obs, 1) >= 8,
        "replies to fragment-opened flows pass"
    );
}

#[test]
fn nat_co_location_replies_use_the_sequential_external_port() {
    let nf = load("nat", &[]);
    let traces = co_location_pairs(&ctx(&nf)).expect("traces");
    let t = named(&traces, "co-location:lan-wan");
    let obs = run(&nf.program, &t.packets);
    let wan_hits = forwarded_from(&t.packets, &obs, 1);
    assert_eq!(
        wan_hits, 16,
        "both rounds of replies to the 8 LAN flows are translated back"
    );
    // A WAN hit goes back to the LAN port, addressed to the original client.
    let (p, o) = t
        .packets
        .iter()
        .zip(&obs)
        .find(|(p, o)| p.port == 1 && matches!(o, Observation::Forward { .. }))
        .expect("a hit");
    match o {
        Observation::Forward { port, bytes } => {
            assert_eq!(*port, 0);
            let out = Tuple::of_frame(bytes, ParseMode::Strict).expect("ipv4");
            let reply = Tuple::of_frame(&p.data, ParseMode::Strict).expect("ipv4");
            assert_eq!(
                reply.dst, 0xc000_0201,
                "the reply was addressed to external_ip 192.0.2.1"
            );
            assert_ne!(out.dst, reply.dst, "and is translated back to the client");
        }
        _ => unreachable!(),
    }
}

#[test]
fn pol_same_port_pairs_share_the_destination() {
    let nf = load("pol", &[]);
    let traces = co_location_pairs(&ctx(&nf)).expect("traces");
    let t = named(&traces, "co-location:wan-wan");
    let mut dsts = std::collections::BTreeMap::<u32, std::collections::BTreeSet<u32>>::new();
    for p in &t.packets {
        let tu = Tuple::of_frame(&p.data, ParseMode::Strict).expect("ipv4");
        dsts.entry(tu.dst).or_default().insert(tu.src);
    }
    assert!(dsts.len() <= 8, "8 keys");
    assert!(
        dsts.values().all(|srcs| srcs.len() >= 3),
        "each destination is reached from several sources"
    );
}

/// The RETA index of a TCP/UDP tuple under a key.
fn bucket(key: &[u8], reta: usize, t: &Tuple) -> usize {
    let mut input = Vec::new();
    input.extend_from_slice(&t.src.to_be_bytes());
    input.extend_from_slice(&t.dst.to_be_bytes());
    input.extend_from_slice(&t.sport.to_be_bytes());
    input.extend_from_slice(&t.dport.to_be_bytes());
    (Toeplitz::new(key)
        .expect("key")
        .hash_bytes(&input)
        .expect("hash") as usize)
        & (reta - 1)
}

fn check_collisions(
    name: &str,
    overrides: &[(&str, &str)],
    object: &str,
    device: &str,
    share: usize,
    cap: usize,
) {
    let nf = load(name, overrides);
    let traces = reta_collisions(&ctx(&nf)).expect("traces");
    let t = named(&traces, &format!("reta-collision:{object}:{device}"));
    let port = nf.program.device_port(device).expect("device");
    let ps = nf.steering.port(port).expect("steering");
    // The flows, then (for a single-port NF) the same flows again to read them back.
    let all: Vec<Tuple> = t
        .packets
        .iter()
        .filter(|p| p.port == port)
        .map(|p| Tuple::of_frame(&p.data, ParseMode::Strict).expect("ipv4"))
        .collect();
    let distinct: std::collections::BTreeSet<Tuple> = all.iter().copied().collect();
    let flows = &all[..distinct.len()];
    assert_eq!(
        flows
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        distinct,
        "the distinct flows come first"
    );
    assert!(
        flows.len() > share && flows.len() <= cap,
        "{} flows, share {share}, capacity {cap}",
        flows.len()
    );
    let b0 = bucket(&ps.key, ps.reta.len(), &flows[0]);
    for f in flows {
        assert_eq!(
            bucket(&ps.key, ps.reta.len(), f),
            b0,
            "{f:?} leaves bucket {b0}"
        );
    }
}

#[test]
fn fw_bucket_collisions_land_in_one_bucket_and_overflow_one_core() {
    // 64 flows, 32 per core on 2 cores: 36 flows in one bucket overflow a core only.
    check_collisions("fw", &[("max_flows", "64")], "flows", "lan", 32, 64);
    let nf = load("fw", &[("max_flows", "64")]);
    let traces = reta_collisions(&ctx(&nf)).expect("traces");
    let t = named(&traces, "reta-collision:flows:lan");
    // Sequentially the table does not fill: every reply passes.
    let obs = run(&nf.program, &t.packets);
    let replies = t.packets.iter().filter(|p| p.port == 1).count();
    assert_eq!(forwarded_from(&t.packets, &obs, 1), replies);
}

#[test]
fn nat_and_pol_bucket_collisions_land_in_one_bucket() {
    check_collisions("nat", &[("max_flows", "64")], "flows", "lan", 32, 64);
    // The policer hashes the destination only: the flows differ in it nonetheless.
    check_collisions("pol", &[("capacity", "256")], "buckets", "wan", 128, 256);
}

#[test]
fn bucket_kernel_vectors_keep_the_reta_index() {
    let nf = load("fw", &[]);
    let ps = nf.steering.port(0).expect("lan");
    let fields = maestro_rss::Field::ALL;
    let kernel = adversarial::bucket_kernel(&ps.key, ps.reta.len(), &fields);
    // 96 input bits onto 7 RETA bits: at least 89 independent kernel vectors.
    assert!(kernel.len() >= 89, "{}", kernel.len());
    let base = Tuple {
        src: 0x0a00_0102,
        dst: 0xc633_6405,
        sport: 4321,
        dport: 80,
        proto: UDP,
    };
    let b = bucket(&ps.key, ps.reta.len(), &base);
    for v in kernel.iter().take(40) {
        let t = Tuple::from_hash_bits(base.hash_bits() ^ v, UDP);
        assert_eq!(bucket(&ps.key, ps.reta.len(), &t), b);
    }
}

fn expiry_outcomes(name: &str) -> Vec<(String, Observation)> {
    let nf = load(name, &[]);
    let traces = expiry_boundaries(&ctx(&nf)).expect("traces");
    ["before", "at", "after"]
        .iter()
        .map(|label| {
            let t = named(&traces, &format!("expiry:flows:{label}"));
            assert_eq!(t.packets.len(), 2);
            let ttl = 100_000_000_000u64;
            let off = t.packets[1].time_ns as i128 - (t.packets[0].time_ns as i128 + ttl as i128);
            let want = match *label {
                "before" => -1,
                "at" => 0,
                _ => 1,
            };
            assert_eq!(off, want, "{label}: probe at t0 + ttl {want:+}");
            let obs = run(&nf.program, &t.packets);
            (label.to_string(), obs[1].clone())
        })
        .collect()
}

#[test]
fn expiry_probes_straddle_the_threshold() {
    for nf in ["fw", "nat"] {
        let out = expiry_outcomes(nf);
        assert!(
            matches!(out[0].1, Observation::Forward { .. }),
            "{nf}: hit one ns before"
        );
        assert!(
            matches!(out[1].1, Observation::Forward { .. }),
            "{nf}: hit exactly at last + ttl"
        );
        assert_eq!(out[2].1, Observation::Drop, "{nf}: miss one ns after");
    }
}

#[test]
fn expiry_chain_refreshes_at_the_deadline() {
    let nf = load("fw", &[]);
    let traces = expiry_boundaries(&ctx(&nf)).expect("traces");
    let t = named(&traces, "expiry:flows:chain");
    let obs = run(&nf.program, &t.packets);
    assert!(
        matches!(obs[2], Observation::Forward { .. }),
        "refreshed at the deadline, alive at the next one"
    );
    assert_eq!(obs[3], Observation::Drop, "one ns past the next deadline");
}

#[test]
fn odd_packets_parse_as_intended() {
    let t = Tuple {
        src: 0x0a00_0001,
        dst: 0xc633_6401,
        sport: 1234,
        dport: 80,
        proto: TCP,
    };
    for kind in OddKind::ALL {
        let f = odd_frame(kind, &t, 0);
        let sliced = SlicedPacket::from_ethernet(&f);
        match kind {
            OddKind::Arp => {
                let s = sliced.expect("parses");
                match s.link {
                    Some(LinkSlice::Ethernet2(e)) => assert_eq!(e.ether_type().0, 0x0806),
                    other => panic!("{other:?}"),
                }
            }
            OddKind::Ipv6Tcp => assert!(matches!(
                sliced.expect("parses").transport,
                Some(TransportSlice::Tcp(_))
            )),
            OddKind::Ipv6Udp => {
                let s = sliced.expect("parses");
                assert!(matches!(s.net, Some(NetSlice::Ipv6(_))));
                assert!(matches!(s.transport, Some(TransportSlice::Udp(_))));
            }
            OddKind::Vlan => {
                let s = sliced.expect("parses");
                assert!(s.vlan.is_some(), "tagged");
                assert!(matches!(
                    s.transport,
                    Some(TransportSlice::Tcp(_)) | Some(TransportSlice::Udp(_))
                ));
            }
            OddKind::Ipv4Options => match sliced.expect("parses").net {
                Some(NetSlice::Ipv4(ip)) => assert_eq!(ip.header().ihl(), 6),
                other => panic!("{other:?}"),
            },
            OddKind::FirstFragment | OddKind::LaterFragment => match sliced.expect("parses").net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header();
                    assert!(h.is_fragmenting_payload(), "{kind:?} is a fragment");
                    let later = kind == OddKind::LaterFragment;
                    assert_eq!(h.more_fragments(), !later);
                    assert_eq!(h.fragments_offset().value() > 0, later);
                    assert_eq!(h.protocol().0, TCP, "keeps the tuple's protocol");
                    let computed = h.to_header().calc_header_checksum();
                    assert_eq!(h.header_checksum(), computed);
                }
                other => panic!("{other:?}"),
            },
            OddKind::Icmp => assert!(matches!(
                sliced.expect("parses").transport,
                Some(TransportSlice::Icmpv4(_))
            )),
            OddKind::TruncatedIpv4 | OddKind::TruncatedTcp => assert!(
                sliced.is_err() || sliced.is_ok_and(|s| s.transport.is_none()),
                "{kind:?} has no complete L4"
            ),
            OddKind::BadTotalLength => assert!(sliced.is_err(), "total length beyond the frame"),
        }
    }
    // The NF's own parser agrees on what has L4.
    let has_l4 = |f: &[u8]| {
        maestro_runtime::packet::layout(f, ParseMode::Strict)
            .l4
            .is_some()
    };
    assert!(
        has_l4(&odd_frame(OddKind::LaterFragment, &t, 0)),
        "the NF reads ports in later fragments"
    );
    assert!(has_l4(&odd_frame(OddKind::Ipv4Options, &t, 0)));
    assert!(!has_l4(&odd_frame(OddKind::TruncatedTcp, &t, 0)));
    assert!(!has_l4(&odd_frame(OddKind::TruncatedIpv4, &t, 0)));
    assert!(!has_l4(&odd_frame(OddKind::BadTotalLength, &t, 0)));
    assert!(!has_l4(&odd_frame(OddKind::Vlan, &t, 0)));
}

#[test]
fn odd_packet_trace_covers_every_kind_from_every_port() {
    let nf = load("fw", &[]);
    let traces = odd_packets(&ctx(&nf));
    let t = &traces[0];
    assert_eq!(t.packets.len(), 2 * (2 * OddKind::ALL.len() + 1));
    assert!(t.packets.windows(2).all(|w| w[0].time_ns < w[1].time_ns));
    assert_eq!(t.packets[0].time_ns, BASE_TIME);
    let obs = run(&nf.program, &t.packets);
    // fw: every LAN packet with L4 passes, nothing from the WAN does.
    assert!(t
        .packets
        .iter()
        .zip(&obs)
        .filter(|(p, _)| p.port == 1)
        .all(|(_, o)| *o == Observation::Drop));
}

/// The observations of the packets from `port`.
fn from_port<'a>(t: &AdversarialTrace, obs: &'a [Observation], port: u16) -> Vec<&'a Observation> {
    t.packets
        .iter()
        .zip(obs)
        .filter(|(p, _)| p.port == port)
        .map(|(_, o)| o)
        .collect()
}

fn forwards(o: &Observation) -> bool {
    matches!(o, Observation::Forward { .. })
}

#[test]
fn table_full_fills_the_table() {
    let nf = load("fw", &[("max_flows", "16")]);
    let traces = table_full(&ctx(&nf)).expect("traces");
    let t = named(&traces, "table-full:flows");
    let obs = run(&nf.program, &t.packets);
    let lan = from_port(t, &obs, 0);
    let wan = from_port(t, &obs, 1);
    // 16 + 4 flows, then a fresh flow at each of the 3 probe times.
    assert_eq!(lan.len(), 23);
    assert!(
        lan.iter().all(|o| forwards(o)),
        "fw forwards even when full"
    );
    // Replies: flows 1..16 (the first is the sentinel, not read back), 4 over the
    // capacity, then the probes' replies.
    assert_eq!(wan.len(), 22);
    assert!(
        wan[..15].iter().all(|o| forwards(o)),
        "replies to the stored flows pass"
    );
    assert!(
        wan[15..19].iter().all(|o| **o == Observation::Drop),
        "replies to flows that found the table full are dropped"
    );
    assert_eq!(
        *wan[19],
        Observation::Drop,
        "full one ns before the deadline"
    );
    assert_eq!(
        *wan[20],
        Observation::Drop,
        "still full exactly at the deadline"
    );
    assert!(
        forwards(wan[21]),
        "the sentinel's slot is free one ns after"
    );
    // The probes sit at the sentinel's deadline.
    let fw_ttl = match nf.program.states[0].kind {
        maestro_analyzer::StateKind::Table { ttl, .. } => ttl,
        _ => panic!("fw's flows are a table"),
    };
    let lan_times: Vec<u64> = t
        .packets
        .iter()
        .filter(|p| p.port == 0)
        .map(|p| p.time_ns)
        .collect();
    assert_eq!(lan_times[21], lan_times[0] + fw_ttl);
    // Every core gets its share (8 of 16) under the solved steering, the sentinel on core 0.
    let nic = maestro_runtime::exec::nic::NicModel::new(&nf.steering.nic_config(), 2).expect("nic");
    let cores: Vec<u16> = t
        .packets
        .iter()
        .filter(|p| p.port == 0)
        .take(16)
        .map(|p| nic.steer(0, &p.data).core)
        .collect();
    assert_eq!(cores[0], 0);
    assert_eq!(cores.iter().filter(|&&c| c == 0).count(), 8, "{cores:?}");
    assert_eq!(
        nic.steer(
            0,
            &t.packets
                .iter()
                .filter(|p| p.port == 0)
                .nth(21)
                .expect("probe")
                .data
        )
        .core,
        0,
        "probes on the sentinel's core"
    );

    let nf = load("nat", &[("max_flows", "16")]);
    let traces = table_full(&ctx(&nf)).expect("traces");
    let t = named(&traces, "table-full:flows");
    let obs = run(&nf.program, &t.packets);
    let lan = from_port(t, &obs, 0);
    assert_eq!(lan.len(), 23);
    assert!(lan[..16].iter().all(|o| forwards(o)));
    assert!(
        lan[16..22].iter().all(|o| **o == Observation::Drop),
        "nat drops new flows when full, up to the sentinel's deadline"
    );
    assert!(
        forwards(lan[22]),
        "a flow after the deadline gets the freed port"
    );
    let wan_hits = forwarded_from(&t.packets, &obs, 1);
    assert_eq!(
        wan_hits, 16,
        "15 stored flows and the last probe are translated back"
    );

    // A policer's table: full exactly where the first bucket expires.
    let nf = load("pol", &[("capacity", "16")]);
    let traces = table_full(&ctx(&nf)).expect("traces");
    let t = named(&traces, "table-full:buckets");
    let obs = run(&nf.program, &t.packets);
    let n = obs.len();
    assert!(
        obs[n - 6..n - 2].iter().all(|o| *o == Observation::Drop),
        "{:?}",
        &obs[n - 6..]
    );
    assert!(obs[n - 2..].iter().all(forwards), "{:?}", &obs[n - 6..]);
}

#[test]
fn generation_is_deterministic_and_uses_generated_time() {
    let nf = load("nat", &[("max_flows", "64")]);
    let a = adversarial::generate(&ctx(&nf)).expect("traces");
    let b = adversarial::generate(&ctx(&nf)).expect("traces");
    assert_eq!(a, b);
    assert!(a.len() >= 8, "{}", a.len());
    for t in &a {
        assert!(!t.packets.is_empty(), "{}", t.name);
        assert!(
            t.packets.iter().all(|p| p.time_ns >= BASE_TIME),
            "{}",
            t.name
        );
        assert!(
            t.packets.windows(2).all(|w| w[0].time_ns <= w[1].time_ns),
            "{} is in time order",
            t.name
        );
    }
    let mut other = ctx(&nf);
    other.seed = 8;
    assert_ne!(
        adversarial::generate(&other).expect("traces"),
        a,
        "the seed matters"
    );
}

#[test]
fn random_traces_shrink_to_request_and_reply() {
    let nf = load("fw", &[]);
    let params = adversarial::random::Params::for_program(&nf.program, ParseMode::Strict);
    let program = nf.program.clone();
    // "Diverges" stands for: some WAN packet is forwarded (needs a request first).
    let found = adversarial::random::shrink(&params, 256, 3, |packets| {
        let obs = run(&program, packets);
        forwarded_from(packets, &obs, 1) > 0
    });
    let (spec, packets) = found.expect("some random trace has a WAN hit");
    assert_eq!(
        packets.len(),
        2,
        "shrunk to a request and its reply: {spec:?}"
    );
    assert_eq!(packets[0].port, 0);
    assert_eq!(packets[1].port, 1);
    // Nothing forwards from the WAN without a request: no failing trace is found.
    let none = adversarial::random::shrink(&params, 64, 3, |packets| {
        packets.iter().all(|p| p.port == 1) && !packets.is_empty() && {
            let obs = run(&program, packets);
            forwarded_from(packets, &obs, 1) > 0
        }
    });
    assert!(none.is_none());
}

#[test]
fn bridge_table_full_learns_distinct_macs() {
    let nf = load("bridge", &[("capacity", "16")]);
    let traces = table_full(&ctx(&nf)).expect("traces");
    let t = named(&traces, "table-full:macs");
    let obs = run(&nf.program, &t.packets);
    let lookups = from_port(t, &obs, 1);
    // Stations 1..20 (the first is the sentinel), then one probe per deadline offset.
    assert_eq!(lookups.len(), 22);
    assert!(
        lookups[..15]
            .iter()
            .all(|o| matches!(o, Observation::Forward { port: 0, .. })),
        "the learned stations are forwarded to their port"
    );
    assert!(
        lookups[15..21]
            .iter()
            .all(|o| matches!(o, Observation::Flood { .. })),
        "stations the full table could not learn are flooded, up to the sentinel's deadline"
    );
    assert!(
        matches!(lookups[21], Observation::Forward { port: 0, .. }),
        "one ns after it, a new station is learned"
    );
    assert!(
        reta_collisions(&ctx(&nf)).expect("traces").is_empty(),
        "MAC keys are not RSS-hashable"
    );
}

/// The observation of the last packet of a trace on the reference interpreter.
fn last_outcome(program: &NfProgram, t: &AdversarialTrace) -> Observation {
    run(program, &t.packets)
        .pop()
        .unwrap_or_else(|| panic!("{} is empty", t.name))
}

/// What the last two packets of a trace (a limit's probes: the first value again, then
/// a new one) get from the reference interpreter, as (forwarded, forwarded).
fn limit_probes(program: &NfProgram, traces: &[AdversarialTrace], name: &str) -> (bool, bool) {
    let obs = run(program, &named(traces, name).packets);
    let n = obs.len();
    (forwards(&obs[n - 2]), forwards(&obs[n - 1]))
}

#[test]
fn psd_limit_traces_reach_the_port_limit_with_the_default_config() {
    let nf = load("psd", &[]);
    let traces = adversarial::limits(&ctx(&nf)).expect("traces");
    // Two deadlines (first and last packet), each probed -1/0/+1 ns and after a refresh.
    assert_eq!(traces.len(), 8);
    let max_ports = 64;
    for t in &traces {
        let obs = run(&nf.program, &t.packets);
        // 63 stored ports, 8 new ones: the first takes the last slot, the rest are a scan.
        let burst = &obs[max_ports - 1..max_ports - 1 + adversarial::LIMIT_BURST];
        assert!(
            obs[..max_ports - 1].iter().all(forwards),
            "{}: ports below the limit pass",
            t.name
        );
        assert!(forwards(&burst[0]), "{}", t.name);
        assert!(
            burst[1..].iter().all(|o| *o == Observation::Drop),
            "{}: ports beyond the limit are a scan",
            t.name
        );
    }
    let probes = |label: &str| limit_probes(&nf.program, &traces, &format!("limit:ports:{label}"));
    // The source lives until the last packet's time + ttl: a stored port passes, a new
    // one is a scan, exactly at the deadline too; one ns later the source starts over.
    assert_eq!(probes("last:before"), (true, false));
    assert_eq!(
        probes("last:at"),
        (true, false),
        "alive exactly at the deadline"
    );
    assert_eq!(
        probes("last:after"),
        (true, true),
        "expired: the source starts over"
    );
    assert_eq!(
        probes("last:refreshed"),
        (true, false),
        "a stored port refreshed the source"
    );
    assert_eq!(
        probes("first:after"),
        (true, false),
        "later packets refreshed the source"
    );
    // The refresh is a stored port between the fill and the deadline.
    let t = named(&traces, "limit:ports:last:refreshed");
    let n = t.packets.len();
    assert_eq!(t.packets[n - 3].data, t.packets[0].data);
    assert!(t.packets[n - 3].time_ns < t.packets[n - 1].time_ns);
    // The burst's ports race: they reach both cores under the locks steering.
    let nic = maestro_runtime::exec::nic::NicModel::new(&adversarial::locks_nic(&nf.program, 2), 2)
        .expect("nic");
    let t = named(&traces, "limit:ports:last:at");
    let cores: std::collections::BTreeSet<u16> = t.packets
        [max_ports - 1..max_ports - 1 + adversarial::LIMIT_BURST]
        .iter()
        .map(|p| nic.steer(p.port, &p.data).core)
        .collect();
    assert_eq!(cores.len(), 2, "{cores:?}");
}

#[test]
fn bridge_expiry_probes_address_the_learned_mac() {
    let nf = load("bridge", &[]);
    let traces = expiry_boundaries(&ctx(&nf)).expect("traces");
    let names: Vec<&str> = traces.iter().map(|t| t.name.as_str()).collect();
    let t = named(&traces, "expiry:macs:at:p1-eth.dst");
    assert_eq!(t.packets.len(), 2, "{names:?}");
    assert_eq!(
        t.packets[1].data[0..6],
        t.packets[0].data[6..12],
        "to the learned MAC"
    );
    let probe = |label: &str| {
        last_outcome(
            &nf.program,
            named(&traces, &format!("expiry:macs:{label}:p1-eth.dst")),
        )
    };
    assert!(matches!(
        probe("before"),
        Observation::Forward { port: 0, .. }
    ));
    assert!(
        matches!(probe("at"), Observation::Forward { port: 0, .. }),
        "alive exactly at the deadline"
    );
    assert!(
        matches!(probe("after"), Observation::Flood { .. }),
        "expired: flooded"
    );
}

#[test]
fn lb_expiry_probes_need_a_live_backend() {
    let nf = load("lb", &[]);
    let traces = expiry_boundaries(&ctx(&nf)).expect("traces");
    let probe = |label: &str| {
        last_outcome(
            &nf.program,
            named(&traces, &format!("expiry:backends:{label}:wan-index")),
        )
    };
    assert!(matches!(
        probe("before"),
        Observation::Forward { port: 0, .. }
    ));
    assert!(
        matches!(probe("at"), Observation::Forward { port: 0, .. }),
        "the backend is alive exactly at its deadline"
    );
    assert_eq!(probe("after"), Observation::Drop, "no live backend");
    // Flows are pinned only behind a backend: the flows traces put one in place first,
    // and again before the probe.
    let t = named(&traces, "expiry:flows:at");
    let obs = run(&nf.program, &t.packets);
    assert!(t.packets.iter().any(|p| p.port == 0), "a heartbeat first");
    assert!(
        matches!(obs.last(), Some(Observation::Forward { .. })),
        "{obs:?}"
    );
}

#[test]
fn cl_limit_traces_bring_a_client_over_its_threshold() {
    let nf = load("cl", &[]);
    let traces = adversarial::limits(&ctx(&nf)).expect("traces");
    assert_eq!(traces.len(), 8, "flows and clients share one ttl");
    let t = named(&traces, "limit:clients:first:at");
    let obs = run(&nf.program, &t.packets);
    // The client's flows pass up to its threshold (64) and the end of the burst is over it.
    let fill = &obs[..obs.len() - 2];
    let passed = fill.iter().filter(|o| forwards(o)).count();
    assert!(
        (64..63 + adversarial::LIMIT_BURST).contains(&passed),
        "{passed} of {} passed",
        fill.len()
    );
    assert_eq!(fill.last(), Some(&Observation::Drop));
    // The first flow is alive up to its own deadline; after it, it is a new flow of a
    // client still over its threshold. A refresh before the deadline keeps it alive.
    let probes =
        |label: &str| limit_probes(&nf.program, &traces, &format!("limit:clients:{label}"));
    assert_eq!(probes("first:before"), (true, false));
    assert_eq!(
        probes("first:at"),
        (true, false),
        "alive exactly at the deadline"
    );
    assert_eq!(
        probes("first:after"),
        (false, false),
        "expired, and over the threshold"
    );
    assert_eq!(probes("first:refreshed"), (true, false));
}
