//! The NIC model: what a real NIC's RSS does with each received frame, so that the
//! executors steer packets to cores exactly as hardware would (`shared/spec/rss.md`).
//!
//! A port hashes a packet only if one of its enabled DPDK hash types (`rss_types`)
//! covers the packet's class; the hash input is the class's fields in network order
//! (IPv4 `src | dst [| sport | dport]`, IPv6 likewise with 16-byte addresses), the hash
//! is Toeplitz under the port's key, and the core is `reta[hash & (len - 1)]`. Packets
//! no enabled type covers (ICMP with only TCP/UDP types, fragments without `FRAG_*`,
//! non-IP frames) get hash 0 and land on `reta[0]`, which is what makes such packets
//! dangerous for a shared-nothing NF that keys state on them.
//!
//! Modelled parser (that of a NIC without VLAN stripping):
//! - Ethernet II only: a VLAN-tagged frame (EtherType 0x8100/0x88a8 at offset 12) is not
//!   parsed further and therefore not hashed, as on a NIC whose VLAN stripping is off.
//! - IPv4 needs IHL >= 5 and the whole header (options included) in the frame; it is a
//!   fragment iff MF is set or the fragment offset is non-zero. Ports are read after the
//!   options (14 + 4·IHL), as hardware does (unlike the NFs' maestro-compat parser).
//! - IPv6 needs the 40-byte header; a Fragment header (next header 44) makes it a
//!   fragment; other extension headers are not walked (the packet counts as "other").
//! - A TCP/UDP non-fragment whose ports are cut off is hashed on its addresses only, and
//!   only by `IPV4`/`IPV6` (the port-less types of its family).

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::engine::ExecError;
use crate::rss::{hex, parse_hex, HashInput, Reta, Toeplitz, MICROSOFT_KEY};

/// The RSS configuration of every port and the shared redirection table. Reads the JSON
/// printed by `maestro rss <nf> --format json` (fields it does not know are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicConfig {
    pub ports: Vec<PortRss>,
    /// The RETA of every port without its own: `reta[hash & (len - 1)]` is the core.
    pub reta: Vec<u16>,
}

/// One port's RSS settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRss {
    pub port: u16,
    /// The Toeplitz key (40 or 52 bytes); a hex string in JSON.
    #[serde(serialize_with = "ser_key", deserialize_with = "de_key")]
    pub key: Vec<u8>,
    /// DPDK hash type names (`NONFRAG_IPV4_TCP`, `NONFRAG_IPV4_UDP`,
    /// `NONFRAG_IPV4_OTHER`, `FRAG_IPV4`, `IPV4`, and the `IPV6` counterparts). `RTE_ETH_RSS_`
    /// or `ETH_RSS_` prefixes are accepted.
    pub rss_types: Vec<String>,
    /// A RETA for this port only (else the shared [`NicConfig::reta`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reta: Option<Vec<u16>>,
}

fn ser_key<S: Serializer>(key: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(key))
}

fn de_key<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    parse_hex(&text).map_err(serde::de::Error::custom)
}

/// The JSON shape before key decoding, so that a bad key is reported with its port.
#[derive(Deserialize)]
struct RawConfig {
    ports: Vec<RawPort>,
    reta: Vec<u16>,
}

#[derive(Deserialize)]
struct RawPort {
    port: u16,
    key: String,
    rss_types: Vec<String>,
    #[serde(default)]
    reta: Option<Vec<u16>>,
}

/// Hash-type bits (our own numbering, not DPDK's bit positions).
mod types {
    pub const NONFRAG_IPV4_TCP: u16 = 1 << 0;
    pub const NONFRAG_IPV4_UDP: u16 = 1 << 1;
    pub const NONFRAG_IPV4_OTHER: u16 = 1 << 2;
    pub const FRAG_IPV4: u16 = 1 << 3;
    pub const IPV4: u16 = 1 << 4;
    pub const NONFRAG_IPV6_TCP: u16 = 1 << 5;
    pub const NONFRAG_IPV6_UDP: u16 = 1 << 6;
    pub const NONFRAG_IPV6_OTHER: u16 = 1 << 7;
    pub const FRAG_IPV6: u16 = 1 << 8;
    pub const IPV6: u16 = 1 << 9;
}

/// The DPDK names this model understands, with their bits.
const TYPE_NAMES: &[(&str, u16)] = &[
    ("NONFRAG_IPV4_TCP", types::NONFRAG_IPV4_TCP),
    ("NONFRAG_IPV4_UDP", types::NONFRAG_IPV4_UDP),
    ("NONFRAG_IPV4_OTHER", types::NONFRAG_IPV4_OTHER),
    ("FRAG_IPV4", types::FRAG_IPV4),
    ("IPV4", types::IPV4),
    ("NONFRAG_IPV6_TCP", types::NONFRAG_IPV6_TCP),
    ("NONFRAG_IPV6_UDP", types::NONFRAG_IPV6_UDP),
    ("NONFRAG_IPV6_OTHER", types::NONFRAG_IPV6_OTHER),
    ("FRAG_IPV6", types::FRAG_IPV6),
    ("IPV6", types::IPV6),
];

fn type_bits(port: u16, names: &[String]) -> Result<u16, ExecError> {
    let mut bits = 0;
    for name in names {
        let bare = name
            .trim()
            .trim_start_matches("RTE_ETH_RSS_")
            .trim_start_matches("ETH_RSS_")
            .to_ascii_uppercase();
        match TYPE_NAMES.iter().find(|(n, _)| *n == bare) {
            Some((_, b)) => bits |= b,
            None => {
                return Err(ExecError::UnknownRssType {
                    port,
                    name: name.clone(),
                    known: TYPE_NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    Ok(bits)
}

impl NicConfig {
    /// Parses and checks a configuration (the JSON of `maestro rss <nf> --format json`).
    pub fn from_json(text: &str) -> Result<NicConfig, ExecError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|source| ExecError::NicJson { source })?;
        let mut ports = Vec::with_capacity(raw.ports.len());
        for p in raw.ports {
            let key = parse_hex(&p.key).map_err(|source| ExecError::BadKey {
                port: p.port,
                source,
            })?;
            ports.push(PortRss {
                port: p.port,
                key,
                rss_types: p.rss_types,
                reta: p.reta,
            });
        }
        let cfg = NicConfig {
            ports,
            reta: raw.reta,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<NicConfig, ExecError> {
        let text = fs::read_to_string(path).map_err(|source| ExecError::NicRead {
            path: path.display().to_string(),
            source,
        })?;
        NicConfig::from_json(&text).map_err(|e| ExecError::NicFile {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// What an unconfigured DPDK app gets: Microsoft's key, TCP/UDP 4-tuple plus
    /// address-only IPv4 hashing on ports `0..ports`, and a 128-entry RETA on a single
    /// queue. Call [`NicConfig::with_cores`] to spread it; this key does not co-locate
    /// the two directions of a flow (the firewall mutant of the checker uses that).
    pub fn default_for(ports: u16) -> NicConfig {
        NicConfig {
            ports: (0..ports)
                .map(|port| PortRss {
                    port,
                    key: MICROSOFT_KEY.to_vec(),
                    rss_types: ["NONFRAG_IPV4_TCP", "NONFRAG_IPV4_UDP", "IPV4"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    reta: None,
                })
                .collect(),
            reta: vec![0; 128],
        }
    }

    /// The same keys and hash types with every RETA (shared and per-port) rebuilt
    /// round-robin, `reta[b] = b % cores`, keeping its size: the `equal N` of ethtool.
    /// `cores == 0` is taken as 1.
    pub fn with_cores(&self, cores: usize) -> NicConfig {
        let cores = cores.max(1);
        let rr = |len: usize| (0..len).map(|b| (b % cores) as u16).collect::<Vec<u16>>();
        NicConfig {
            ports: self
                .ports
                .iter()
                .map(|p| PortRss {
                    reta: p.reta.as_ref().map(|r| rr(r.len())),
                    ..p.clone()
                })
                .collect(),
            reta: rr(self.reta.len()),
        }
    }

    /// Checks what does not depend on the core count: key lengths, hash type names,
    /// RETA sizes, duplicate ports.
    pub fn validate(&self) -> Result<(), ExecError> {
        Reta::check_size(self.reta.len()).map_err(|_| ExecError::BadRetaSize {
            which: "the shared RETA".to_string(),
            size: self.reta.len(),
        })?;
        for (i, p) in self.ports.iter().enumerate() {
            if self.ports[..i].iter().any(|q| q.port == p.port) {
                return Err(ExecError::DuplicatePort { port: p.port });
            }
            if p.key.len() != 40 && p.key.len() != 52 {
                return Err(ExecError::KeyLength {
                    port: p.port,
                    len: p.key.len(),
                });
            }
            type_bits(p.port, &p.rss_types)?;
            if let Some(r) = &p.reta {
                Reta::check_size(r.len()).map_err(|_| ExecError::BadRetaSize {
                    which: format!("port {}'s RETA", p.port),
                    size: r.len(),
                })?;
            }
        }
        Ok(())
    }
}

/// The packet class the NIC's parser recognized and hashed; `NotHashed` when no enabled
/// hash type of the port covers the packet (hash 0, core `reta[0]`). A TCP/UDP class
/// hashed through `IPV4`/`IPV6` alone (its port type off) used the addresses only. IPv6 fragments are
/// `Ipv6Other` (hashed by `FRAG_IPV6` or `IPV6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashClass {
    Ipv4Tcp,
    Ipv4Udp,
    Ipv4Frag,
    Ipv4Other,
    Ipv6Tcp,
    Ipv6Udp,
    Ipv6Other,
    NotHashed,
}

/// Where the NIC sends one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Steer {
    pub hash: u32,
    pub class: HashClass,
    pub core: u16,
}

/// One configured port, ready for packet time.
#[derive(Clone, Debug)]
struct PortModel {
    toeplitz: Toeplitz,
    types: u16,
    reta: Reta,
}

/// The NIC of a run: per-port Toeplitz tables, hash types and RETAs, checked against the
/// core count once.
#[derive(Clone, Debug)]
pub struct NicModel {
    /// Indexed by port number; `None` for ports the configuration does not list (not
    /// hashed: everything they receive goes to `reta[0]` of the shared RETA).
    ports: Vec<Option<PortModel>>,
    reta: Reta,
    cores: usize,
}

fn reta_for(entries: &[u16], which: impl Fn() -> String, cores: usize) -> Result<Reta, ExecError> {
    let reta = Reta::new(entries.to_vec()).map_err(|_| ExecError::BadRetaSize {
        which: which(),
        size: entries.len(),
    })?;
    if let Some((bucket, &queue)) = entries
        .iter()
        .enumerate()
        .find(|(_, &q)| usize::from(q) >= cores)
    {
        return Err(ExecError::RetaEntry {
            which: which(),
            bucket,
            queue,
            cores,
        });
    }
    Ok(reta)
}

impl NicModel {
    /// Builds the model for `cores` cores; every RETA entry must name one of them.
    pub fn new(cfg: &NicConfig, cores: usize) -> Result<NicModel, ExecError> {
        if cores == 0 {
            return Err(ExecError::NoCores);
        }
        cfg.validate()?;
        let reta = reta_for(&cfg.reta, || "the shared RETA".to_string(), cores)?;
        let mut ports: Vec<Option<PortModel>> = Vec::new();
        for p in &cfg.ports {
            let toeplitz = Toeplitz::new(&p.key).map_err(|source| ExecError::BadKey {
                port: p.port,
                source,
            })?;
            let types = type_bits(p.port, &p.rss_types)?;
            let reta = match &p.reta {
                Some(r) => reta_for(r, || format!("port {}'s RETA", p.port), cores)?,
                None => reta.clone(),
            };
            let idx = usize::from(p.port);
            if ports.len() <= idx {
                ports.resize(idx + 1, None);
            }
            ports[idx] = Some(PortModel {
                toeplitz,
                types,
                reta,
            });
        }
        Ok(NicModel { ports, reta, cores })
    }

    /// The number of cores (receive queues per port).
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Steers one frame received on `port`. Never fails: whatever cannot be hashed gets
    /// hash 0 and the core `reta[0]`.
    pub fn steer(&self, port: u16, frame: &[u8]) -> Steer {
        let Some(Some(pm)) = self.ports.get(usize::from(port)) else {
            return Steer {
                hash: 0,
                class: HashClass::NotHashed,
                core: self.reta.queue(0),
            };
        };
        // Fast path, most traffic: an IPv4 TCP/UDP non-fragment without options whose
        // port type is enabled hashes `src | dst | sport | dport`, which lie in the
        // frame in that order (bytes 26..38). Exactly what `classify` picks for it.
        if let Some(head) = frame.get(..38) {
            let (ipv4, ihl5) = (head[12] == 0x08 && head[13] == 0x00, head[14] & 0x0f == 5);
            let unfragmented = head[20] & 0x3f == 0 && head[21] == 0;
            if ipv4 && ihl5 && unfragmented {
                let class = match head[23] {
                    6 if pm.types & types::NONFRAG_IPV4_TCP != 0 => Some(HashClass::Ipv4Tcp),
                    17 if pm.types & types::NONFRAG_IPV4_UDP != 0 => Some(HashClass::Ipv4Udp),
                    _ => None,
                };
                if let Some(class) = class {
                    let hash = pm.toeplitz.hash_unchecked(&head[26..38]);
                    return Steer {
                        hash,
                        class,
                        core: pm.reta.queue(hash),
                    };
                }
            }
        }
        Self::steer_classified(pm, frame)
    }

    /// [`NicModel::steer`] of a configured port through the general classifier.
    fn steer_classified(pm: &PortModel, frame: &[u8]) -> Steer {
        let (hash, class) = match classify(pm.types, frame) {
            (class, Some(input)) => (pm.toeplitz.hash_unchecked(input.as_bytes()), class),
            (_, None) => (0, HashClass::NotHashed),
        };
        Steer {
            hash,
            class,
            core: pm.reta.queue(hash),
        }
    }
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// The packet's class and, when an enabled type covers it, the hash input.
fn classify(enabled: u16, frame: &[u8]) -> (HashClass, Option<HashInput>) {
    use self::types as t;
    const NONE: (HashClass, Option<HashInput>) = (HashClass::NotHashed, None);
    let Some(ethertype) = be16(frame, 12) else {
        return NONE;
    };
    match ethertype {
        0x0800 => {
            let Some(&vihl) = frame.get(14) else {
                return NONE;
            };
            let hlen = usize::from(vihl & 0x0f) * 4;
            if hlen < 20 || frame.len() < 14 + hlen {
                return NONE;
            }
            let ip = &frame[14..];
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            let fragment = frag & 0x2000 != 0 || frag & 0x1fff != 0;
            let addrs = HashInput::ipv4(src, dst, 0, 0, false);
            if fragment {
                let on = enabled & (t::FRAG_IPV4 | t::IPV4) != 0;
                return (HashClass::Ipv4Frag, on.then_some(addrs));
            }
            let (class, ported) = match ip[9] {
                6 => (HashClass::Ipv4Tcp, t::NONFRAG_IPV4_TCP),
                17 => (HashClass::Ipv4Udp, t::NONFRAG_IPV4_UDP),
                _ => {
                    let on = enabled & (t::NONFRAG_IPV4_OTHER | t::IPV4) != 0;
                    return (HashClass::Ipv4Other, on.then_some(addrs));
                }
            };
            let ports = be16(ip, hlen).zip(be16(ip, hlen + 2));
            match ports {
                Some((sp, dp)) if enabled & ported != 0 => {
                    (class, Some(HashInput::ipv4(src, dst, sp, dp, true)))
                }
                _ => (class, (enabled & t::IPV4 != 0).then_some(addrs)),
            }
        }
        0x86dd => {
            let Some(ip) = frame.get(14..54) else {
                return NONE;
            };
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            let (src, dst) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            let addrs = HashInput::ipv6(src, dst, 0, 0, false);
            let (class, ported) = match ip[6] {
                44 => {
                    let on = enabled & (t::FRAG_IPV6 | t::IPV6) != 0;
                    return (HashClass::Ipv6Other, on.then_some(addrs));
                }
                6 => (HashClass::Ipv6Tcp, t::NONFRAG_IPV6_TCP),
                17 => (HashClass::Ipv6Udp, t::NONFRAG_IPV6_UDP),
                _ => {
                    let on = enabled & (t::NONFRAG_IPV6_OTHER | t::IPV6) != 0;
                    return (HashClass::Ipv6Other, on.then_some(addrs));
                }
            };
            let ports = be16(frame, 54).zip(be16(frame, 56));
            match ports {
                Some((sp, dp)) if enabled & ported != 0 => {
                    (class, Some(HashInput::ipv6(src, dst, sp, dp, true)))
                }
                _ => (class, (enabled & t::IPV6 != 0).then_some(addrs)),
            }
        }
        _ => NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path of `steer` must agree with the classifier on every frame: IPv4
    /// TCP/UDP frames with every byte it looks at varied, under every port type set.
    #[test]
    fn the_fast_path_steers_as_the_classifier() {
        let mut frame = vec![0u8; 60];
        frame[12] = 0x08;
        frame[14] = 0x45;
        frame[23] = 6;
        for (i, b) in frame.iter_mut().enumerate().skip(26) {
            *b = (i * 37) as u8;
        }
        let variants: &[(usize, &[u8])] = &[
            (12, &[0x08, 0x86, 0x81]),
            (13, &[0x00, 0xdd, 0x01]),
            (14, &[0x45, 0x46, 0x44, 0x55, 0x65]),
            (20, &[0x00, 0x40, 0x20, 0x01, 0x80, 0x1f]),
            (21, &[0x00, 0x01]),
            (23, &[6, 17, 1, 58]),
        ];
        let type_sets: &[&[&str]] = &[
            &["NONFRAG_IPV4_TCP", "NONFRAG_IPV4_UDP", "IPV4"],
            &["NONFRAG_IPV4_UDP"],
            &["NONFRAG_IPV4_TCP"],
            &["IPV4", "FRAG_IPV4"],
            &[],
        ];
        let mut checked = 0;
        for types in type_sets {
            let mut cfg = NicConfig::default_for(1).with_cores(4);
            cfg.ports[0].rss_types = types.iter().map(|t| t.to_string()).collect();
            let nic = NicModel::new(&cfg, 4).unwrap();
            let Some(Some(pm)) = nic.ports.first() else {
                panic!("port 0 is configured")
            };
            // Every combination of the varied bytes, at every length around the ports.
            let mut combos = vec![frame.clone()];
            for &(at, values) in variants {
                combos = combos
                    .iter()
                    .flat_map(|f| {
                        values.iter().map(move |&v| {
                            let mut g = f.clone();
                            g[at] = v;
                            g
                        })
                    })
                    .collect();
            }
            for f in &combos {
                for len in [33, 37, 38, 39, 60] {
                    let f = &f[..len];
                    assert_eq!(
                        nic.steer(0, f),
                        NicModel::steer_classified(pm, f),
                        "types {types:?}, frame {f:02x?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
