//! Every library NF replays every real capture in `../shared/pcaps/` in both parse modes
//! without a panic, with every record accounted for: one observation per packet, and
//! no refused records in these well-formed captures.

use maestro_interpreter::{InterpOptions, Interpreter};
use maestro_nfs::shared_pcaps;
use maestro_nfs::testkit::Nf;
use maestro_runtime::capture::{CaptureItem, CaptureReader, DeviceMap, PortAssigner};
use maestro_runtime::packet::ParseMode;
use maestro_runtime::{InputPacket, Observation};

#[test]
fn every_nf_replays_every_shared_capture() {
    let Some(pcaps) = shared_pcaps() else { return };
    assert!(!pcaps.is_empty(), "shared/pcaps holds captures");
    for name in maestro_nfs::ALL {
        let nf = Nf::load(name, &[]);
        let lan = nf.program.device_port("lan").unwrap_or(0);
        let wan = nf.program.device_port("wan").unwrap_or(1);
        for mode in [ParseMode::Strict, ParseMode::MaestroCompat] {
            for pcap in &pcaps {
                let mut interp = Interpreter::new(
                    &nf.program,
                    InterpOptions {
                        parse_mode: mode,
                        ..InterpOptions::default()
                    },
                )
                .expect("library NF starts");
                let reader = CaptureReader::open(pcap).expect("shared capture opens");
                let mut assigner = PortAssigner::new(DeviceMap::Auto, lan, wan);
                let (mut packets, mut observations, mut refused) = (0u64, 0u64, 0u64);
                let mut clock = 0u64;
                for item in reader {
                    let record = match item {
                        CaptureItem::Packet(r) => r,
                        CaptureItem::Refused(r) => {
                            refused += 1;
                            eprintln!("{}: refused {r}", pcap.display());
                            continue;
                        }
                    };
                    let port = assigner.assign(&record).expect("flow rule assigns a port");
                    clock = clock.max(record.time_ns);
                    packets += 1;
                    let obs = interp.process(&InputPacket {
                        port,
                        time_ns: clock,
                        data: record.data,
                    });
                    if let Observation::Forward { port: out, .. } = obs {
                        assert!(out < nf.program.port_count(), "{name}: real port");
                    }
                    observations += 1;
                }
                assert_eq!(refused, 0, "{name} {mode:?} {}", pcap.display());
                assert!(packets > 0, "{}", pcap.display());
                assert_eq!(packets, observations, "{name} {mode:?} {}", pcap.display());
            }
        }
    }
}

#[test]
fn the_firewall_passes_the_replies_of_a_real_browsing_session() {
    let Some(pcaps) = shared_pcaps() else { return };
    let Some(wiki) = pcaps.iter().find(|p| p.ends_with("zeek-wikipedia.pcap")) else {
        return;
    };
    let mut nf = Nf::load("fw", &[]);
    let mut assigner = PortAssigner::new(DeviceMap::Flow, 0, 1);
    let (mut replies, mut replies_passed, mut lan_passed, mut lan_tcp_udp) = (0, 0, 0, 0);
    let mut clock = 0;
    for item in CaptureReader::open(wiki).expect("opens") {
        let CaptureItem::Packet(record) = item else {
            panic!("no refused records expected");
        };
        let port = assigner.assign(&record).expect("assigned");
        clock = u64::max(clock, record.time_ns);
        let is_ipv4_l4 = {
            let view = maestro_runtime::packet::PacketView::new(&record.data, ParseMode::Strict);
            view.l4_ports().is_some()
        };
        let obs = nf.send(port, clock, record.data);
        match (port, is_ipv4_l4) {
            (0, true) => {
                lan_tcp_udp += 1;
                lan_passed += u32::from(matches!(obs, Observation::Forward { port: 1, .. }));
            }
            (1, true) => {
                replies += 1;
                replies_passed += u32::from(matches!(obs, Observation::Forward { port: 0, .. }));
            }
            _ => assert_eq!(obs, Observation::Drop, "non-IPv4 TCP/UDP is dropped"),
        }
    }
    assert!(lan_tcp_udp > 0 && replies > 0);
    assert_eq!(lan_passed, lan_tcp_udp, "every LAN TCP/UDP packet goes out");
    // With the flow rule every WAN packet answers a conversation the LAN side opened.
    assert_eq!(replies_passed, replies, "every reply passes");
}
