//! The classic NF library: the `.nf` sources in this folder, and a small kit for their
//! scenario tests (`tests/`).

use std::path::PathBuf;

/// Every NF of the library, in the order of `nf-semantics.md`.
pub const ALL: [&str; 9] = [
    "nop", "sbridge", "bridge", "pol", "fw", "nat", "lb", "cl", "psd",
];

/// The folder of the library NF `name` (e.g. `nf_dir("fw")` is `<repo>/nfs/fw`).
pub fn nf_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The real captures in `../shared/pcaps/` (beside the checkout), sorted; `None`, with a
/// message saying what is missing, when that folder is absent, so tests can skip.
pub fn shared_pcaps() -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipping: {} is absent (the shared reference captures sit beside the checkout)",
            dir.display()
        );
        return None;
    };
    let mut pcaps: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    pcaps.sort();
    Some(pcaps)
}

/// Builders and a driver for scenario tests: real frames (built with etherparse) fed to
/// the reference interpreter one at a time.
pub mod testkit {
    use std::net::Ipv4Addr;

    use etherparse::{PacketBuilder, SlicedPacket};
    use maestro_analyzer::NfProgram;
    use maestro_interpreter::{InterpOptions, Interpreter};
    use maestro_runtime::{InputPacket, Observation};

    /// A loaded library NF with its interpreter state.
    pub struct Nf {
        pub program: NfProgram,
        pub interp: Interpreter,
    }

    impl Nf {
        /// Loads `nfs/<name>` with `--set` overrides; panics with the diagnostic on error
        /// (this is test code: a library NF that does not load is a failed test).
        pub fn load(name: &str, overrides: &[(&str, &str)]) -> Nf {
            let overrides: Vec<(String, String)> = overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let program = match maestro_analyzer::load_nf(&super::nf_dir(name), &overrides) {
                Ok(p) => p,
                Err(e) => panic!("{name} does not load:\n{e}"),
            };
            let interp = match Interpreter::new(&program, InterpOptions::default()) {
                Ok(i) => i,
                Err(e) => panic!("{name} does not start:\n{e}"),
            };
            Nf { program, interp }
        }

        /// Feeds one frame arriving on `port` at `time_ns`.
        pub fn send(&mut self, port: u16, time_ns: u64, frame: Vec<u8>) -> Observation {
            self.interp.process(&InputPacket {
                port,
                time_ns,
                data: frame,
            })
        }
    }

    /// Addressing of one test packet.
    #[derive(Clone, Copy, Debug)]
    pub struct Flow {
        pub src_mac: [u8; 6],
        pub dst_mac: [u8; 6],
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub sport: u16,
        pub dport: u16,
    }

    impl Flow {
        /// A flow between two IPv4 endpoints with placeholder MACs.
        pub fn new(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Flow {
            Flow {
                src_mac: [0x02, 0xaa, 0, 0, 0, 1],
                dst_mac: [0x02, 0xbb, 0, 0, 0, 2],
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                sport,
                dport,
            }
        }

        /// The same conversation seen from the other side (addresses and ports swapped).
        pub fn reversed(&self) -> Flow {
            Flow {
                src_mac: self.dst_mac,
                dst_mac: self.src_mac,
                src: self.dst,
                dst: self.src,
                sport: self.dport,
                dport: self.sport,
            }
        }

        pub fn with_macs(mut self, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Flow {
            self.src_mac = src_mac;
            self.dst_mac = dst_mac;
            self
        }

        /// A UDP frame of this flow with `payload` zero bytes.
        pub fn udp(&self, payload: usize) -> Vec<u8> {
            build(
                PacketBuilder::ethernet2(self.src_mac, self.dst_mac)
                    .ipv4(self.src.octets(), self.dst.octets(), 64)
                    .udp(self.sport, self.dport),
                payload,
            )
        }

        /// A TCP SYN frame of this flow with `payload` zero bytes.
        pub fn tcp(&self, payload: usize) -> Vec<u8> {
            build(
                PacketBuilder::ethernet2(self.src_mac, self.dst_mac)
                    .ipv4(self.src.octets(), self.dst.octets(), 64)
                    .tcp(self.sport, self.dport, 1000, 65535)
                    .syn(),
                payload,
            )
        }

        /// An ICMP echo request between the flow's addresses.
        pub fn icmp(&self) -> Vec<u8> {
            build(
                PacketBuilder::ethernet2(self.src_mac, self.dst_mac)
                    .ipv4(self.src.octets(), self.dst.octets(), 64)
                    .icmpv4_echo_request(1, 1),
                8,
            )
        }
    }

    fn build<B: FinalBuilder>(builder: B, payload: usize) -> Vec<u8> {
        let payload = vec![0u8; payload];
        builder.finish(&payload)
    }

    /// The last step of an etherparse builder, whatever its transport.
    pub trait FinalBuilder {
        fn finish(self, payload: &[u8]) -> Vec<u8>;
    }

    macro_rules! final_builder {
        ($t:ty) => {
            impl FinalBuilder for etherparse::PacketBuilderStep<$t> {
                fn finish(self, payload: &[u8]) -> Vec<u8> {
                    let mut out = Vec::with_capacity(self.size(payload.len()));
                    // Writing into a Vec cannot fail for the sizes tests use.
                    self.write(&mut out, payload)
                        .expect("etherparse writes into a Vec");
                    out
                }
            }
        };
    }
    final_builder!(etherparse::UdpHeader);
    final_builder!(etherparse::TcpHeader);
    final_builder!(etherparse::Icmpv4Header);

    /// An ARP request frame (EtherType 0x0806).
    pub fn arp(src_mac: [u8; 6]) -> Vec<u8> {
        let mut f = Vec::with_capacity(42);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f
    }

    /// The frame with an 802.1Q tag (VLAN 7) inserted after the MAC addresses.
    pub fn vlan_tagged(frame: &[u8]) -> Vec<u8> {
        let mut f = frame[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        f.extend_from_slice(&frame[12..]);
        f
    }

    /// An IPv4 packet with protocol TCP whose 20-byte header is the whole packet: no L4.
    pub fn ipv4_without_l4(flow: &Flow) -> Vec<u8> {
        let mut f = flow.tcp(0);
        f.truncate(14 + 20);
        f[16..18].copy_from_slice(&20u16.to_be_bytes()); // total length
        fix_ipv4_checksum(&mut f);
        f
    }

    /// The flow's UDP frame with 4 bytes of IPv4 options (IHL 6) before the UDP header.
    pub fn ipv4_with_options(flow: &Flow) -> Vec<u8> {
        let plain = flow.udp(8);
        let mut f = plain[..34].to_vec();
        f.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        f.extend_from_slice(&plain[34..]);
        f[14] = 0x46;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        fix_ipv4_checksum(&mut f);
        f
    }

    fn fix_ipv4_checksum(f: &mut [u8]) {
        let ihl = usize::from(f[14] & 0x0f) * 4;
        f[24] = 0;
        f[25] = 0;
        let mut sum = 0u32;
        for chunk in f[14..14 + ihl].chunks(2) {
            sum += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    /// Headers of a frame that left the NF, for assertions.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Seen {
        pub src_mac: [u8; 6],
        pub dst_mac: [u8; 6],
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub sport: u16,
        pub dport: u16,
    }

    /// Parses an output frame (IPv4 TCP/UDP) and checks both of its checksums.
    pub fn seen(bytes: &[u8]) -> Seen {
        let sliced = SlicedPacket::from_ethernet(bytes).expect("output frame parses");
        let eth = match sliced.link {
            Some(etherparse::LinkSlice::Ethernet2(e)) => e,
            other => panic!("not Ethernet II: {other:?}"),
        };
        let ip = match &sliced.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => ip.clone(),
            other => panic!("not IPv4: {other:?}"),
        };
        let header = ip.header();
        let computed = header.to_header().calc_header_checksum();
        assert_eq!(header.header_checksum(), computed, "IPv4 header checksum");
        let (sport, dport) = match &sliced.transport {
            Some(etherparse::TransportSlice::Udp(udp)) => {
                let expected = udp
                    .to_header()
                    .calc_checksum_ipv4(&header.to_header(), udp.payload())
                    .expect("udp checksum computes");
                assert_eq!(udp.checksum(), expected, "UDP checksum");
                (udp.source_port(), udp.destination_port())
            }
            Some(etherparse::TransportSlice::Tcp(tcp)) => {
                let expected = tcp
                    .to_header()
                    .calc_checksum_ipv4(&header.to_header(), tcp.payload())
                    .expect("tcp checksum computes");
                assert_eq!(tcp.checksum(), expected, "TCP checksum");
                (tcp.source_port(), tcp.destination_port())
            }
            other => panic!("not TCP/UDP: {other:?}"),
        };
        Seen {
            src_mac: eth.source(),
            dst_mac: eth.destination(),
            src: header.source_addr(),
            dst: header.destination_addr(),
            sport,
            dport,
        }
    }

    /// Parses a MAC literal `aa:bb:cc:dd:ee:ff` (test constants only).
    pub fn mac(s: &str) -> [u8; 6] {
        let mut m = [0u8; 6];
        for (i, part) in s.split(':').enumerate() {
            m[i] = u8::from_str_radix(part, 16).expect("test MAC literal");
        }
        m
    }
}
