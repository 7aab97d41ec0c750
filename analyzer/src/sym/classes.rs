//! Packet classes: what the NIC can tell apart when it hashes packets for RSS.
//!
//! A NIC picks the hash input by packet type: TCP/UDP over non-fragmented IPv4 hashes
//! addresses and ports, other IPv4 packets (other protocols, fragments) addresses only,
//! and frames that are not IP get no hash at all unless a type for them is enabled
//! (`../../shared/spec/rss.md`). Every path of an NF is checked against each class, so
//! the verdict can say which classes reach which state.

use super::term::Term;
use crate::lang::ast::BinOp;
use crate::lang::ir::PktField;
use crate::lang::types::Type;
use serde::{Deserialize, Serialize};

/// The packet classes, as the NIC sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketClass {
    /// EtherType neither IPv4 nor IPv6 (ARP, VLAN-tagged frames, ...).
    NonIp,
    /// IPv4, protocol TCP or UDP, not a fragment (MF clear, offset 0).
    Ipv4TcpUdp,
    /// IPv4, another protocol (ICMP, ...), not a fragment.
    Ipv4Other,
    /// IPv4 fragment (MF set or non-zero offset), any protocol. Our parser does not
    /// recognise fragments: `parse l4` succeeds on a TCP/UDP fragment and reads its first
    /// payload bytes as ports.
    Ipv4Fragment,
    /// EtherType 0x86DD. No NF in our language parses IPv6: such frames take the
    /// parse-failure branches.
    Ipv6,
}

pub const ETHERTYPE_IPV4: u64 = 0x0800;
pub const ETHERTYPE_IPV6: u64 = 0x86DD;

/// The packet fields the NIC's RSS can hash (IPv4 addresses, TCP/UDP ports).
pub const RSS_FIELDS: [PktField; 4] = [
    PktField::IpSrc,
    PktField::IpDst,
    PktField::L4Sport,
    PktField::L4Dport,
];

impl PacketClass {
    pub const ALL: [PacketClass; 5] = [
        PacketClass::NonIp,
        PacketClass::Ipv4TcpUdp,
        PacketClass::Ipv4Other,
        PacketClass::Ipv4Fragment,
        PacketClass::Ipv6,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PacketClass::NonIp => "non-ip",
            PacketClass::Ipv4TcpUdp => "ipv4-tcp-udp",
            PacketClass::Ipv4Other => "ipv4-other",
            PacketClass::Ipv4Fragment => "ipv4-fragment",
            PacketClass::Ipv6 => "ipv6",
        }
    }

    /// The fields the NIC hashes for this class when its RSS type is enabled.
    pub fn rss_fields(self) -> &'static [PktField] {
        match self {
            PacketClass::Ipv4TcpUdp => &RSS_FIELDS,
            PacketClass::Ipv4Other | PacketClass::Ipv4Fragment => &RSS_FIELDS[..2],
            PacketClass::NonIp | PacketClass::Ipv6 => &[],
        }
    }

    /// The DPDK RSS hash type that covers the class, if any.
    pub fn rss_type(self) -> Option<&'static str> {
        match self {
            PacketClass::Ipv4TcpUdp => Some("NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP"),
            PacketClass::Ipv4Other => Some("NONFRAG_IPV4_OTHER"),
            PacketClass::Ipv4Fragment => Some("FRAG_IPV4"),
            PacketClass::Ipv6 | PacketClass::NonIp => None,
        }
    }

    /// The class as a condition on the packet's fields.
    pub fn formula(self, field: &mut dyn FnMut(PktField) -> Term) -> Term {
        let c16 = |v: u64| Term::constant(Type::U16, v);
        let c8 = |v: u64| Term::constant(Type::U8, v);
        let ety = field(PktField::EthType);
        let is_v4 = Term::eq(ety.clone(), c16(ETHERTYPE_IPV4));
        let is_v6 = Term::eq(ety, c16(ETHERTYPE_IPV6));
        let proto = field(PktField::IpProto);
        let tcp_udp = Term::or(Term::eq(proto.clone(), c8(6)), Term::eq(proto, c8(17)));
        let frag = field(PktField::IpFrag);
        // MF flag (0x2000) or a non-zero offset (low 13 bits).
        let fragment = Term::binary(
            BinOp::Ne,
            Term::binary(BinOp::BitAnd, frag, c16(0x3FFF)),
            c16(0),
        );
        match self {
            PacketClass::NonIp => Term::and(Term::negate(is_v4), Term::negate(is_v6)),
            PacketClass::Ipv6 => is_v6,
            PacketClass::Ipv4Fragment => Term::and(is_v4, fragment),
            PacketClass::Ipv4TcpUdp => Term::and(Term::and(is_v4, Term::negate(fragment)), tcp_udp),
            PacketClass::Ipv4Other => Term::and(
                Term::and(is_v4, Term::negate(fragment)),
                Term::negate(tcp_udp),
            ),
        }
    }
}
