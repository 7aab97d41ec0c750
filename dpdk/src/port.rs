//! Ethernet ports: configuration from maestro's NIC model (RSS key, hash types, RETA),
//! queues claimed by one thread each, and receive/transmit bursts of [`Mbuf`]s.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;
use maestro_runtime::exec::NicConfig;
use maestro_runtime::rss::MICROSOFT_KEY;

use crate::eal::Eal;
use crate::error::{strerror, DpdkError};
use crate::mbuf::{Mbuf, Mempool};

/// Largest burst the queue wrappers move at once.
pub const MAX_BURST: usize = 512;

/// What a device offers, from `rte_eth_dev_info_get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub port: u16,
    /// The device name (`net_pcap0`, `0000:03:00.0`).
    pub name: String,
    /// The PMD (`net_pcap`, `net_i40e`, `mlx5_pci`).
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// RETA entries (0: no RSS).
    pub reta_size: u16,
    /// RSS key bytes the device takes (0: unspecified; 40 is assumed).
    pub hash_key_size: u8,
    /// `RTE_ETH_RSS_*` bits the device can hash on.
    pub rss_types: u64,
    pub rx_offloads: u64,
    pub socket: i32,
}

impl PortInfo {
    /// Whether the device can spread packets over queues itself.
    pub fn has_rss(&self) -> bool {
        self.reta_size > 0 && self.rss_types != 0
    }
}

/// Reads a port's capabilities.
pub fn port_info(eal: &Eal, port: u16) -> Result<PortInfo, DpdkError> {
    if port >= eal.port_count() {
        return Err(DpdkError::NoSuchPort {
            port,
            available: eal.port_count(),
        });
    }
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: a valid port id and an out-parameter of the right type.
    let rc = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
    check(port, "rte_eth_dev_info_get", rc, "the port is not usable")?;
    let mut name = [0 as std::ffi::c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: the buffer has RTE_ETH_NAME_MAX_LEN bytes, as DPDK requires.
    let rc = unsafe { sys::rte_eth_dev_get_name_by_port(port, name.as_mut_ptr()) };
    let name = if rc == 0 {
        // SAFETY: DPDK wrote a NUL-terminated name into the buffer.
        unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("port{port}")
    };
    let driver = if info.driver_name.is_null() {
        "unknown".to_string()
    } else {
        // SAFETY: a static NUL-terminated string of the PMD.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: a valid port id.
    let socket = unsafe { sys::rte_eth_dev_socket_id(port) };
    Ok(PortInfo {
        port,
        name,
        driver,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        reta_size: info.reta_size,
        hash_key_size: info.hash_key_size,
        rss_types: info.flow_type_rss_offloads,
        rx_offloads: info.rx_offload_capa,
        socket,
    })
}

/// `Err(PortCall)` for a negative DPDK return code.
fn check(port: u16, call: &'static str, rc: i32, fix: &'static str) -> Result<(), DpdkError> {
    if rc < 0 {
        Err(DpdkError::PortCall {
            port,
            call,
            code: rc,
            reason: strerror(rc),
            fix,
        })
    } else {
        Ok(())
    }
}

/// One port's RSS: what maestro's NIC model ([`NicConfig`]) says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssConfig {
    /// Toeplitz key, 40 or 52 bytes.
    pub key: Vec<u8>,
    /// DPDK hash type names (`NONFRAG_IPV4_TCP`, ...; `RTE_ETH_RSS_` prefixes allowed).
    pub hash_types: Vec<String>,
    /// Queue per bucket: `reta[hash & (len - 1)]`.
    pub reta: Vec<u16>,
}

/// The DPDK bit of a hash type name, as maestro's NIC model spells them.
pub fn rss_type_bit(name: &str) -> Option<u64> {
    let bare = name
        .trim()
        .trim_start_matches("RTE_ETH_RSS_")
        .trim_start_matches("ETH_RSS_")
        .to_ascii_uppercase();
    // SAFETY: immutable constants of the shim.
    unsafe {
        Some(match bare.as_str() {
            "IPV4" => sys::maestro_rss_ipv4,
            "FRAG_IPV4" => sys::maestro_rss_frag_ipv4,
            "NONFRAG_IPV4_TCP" => sys::maestro_rss_nonfrag_ipv4_tcp,
            "NONFRAG_IPV4_UDP" => sys::maestro_rss_nonfrag_ipv4_udp,
            "NONFRAG_IPV4_OTHER" => sys::maestro_rss_nonfrag_ipv4_other,
            "IPV6" => sys::maestro_rss_ipv6,
            "FRAG_IPV6" => sys::maestro_rss_frag_ipv6,
            "NONFRAG_IPV6_TCP" => sys::maestro_rss_nonfrag_ipv6_tcp,
            "NONFRAG_IPV6_UDP" => sys::maestro_rss_nonfrag_ipv6_udp,
            "NONFRAG_IPV6_OTHER" => sys::maestro_rss_nonfrag_ipv6_other,
            _ => return None,
        })
    }
}

/// Names of the model's hash types set in `bits`, for messages.
fn type_names(bits: u64) -> String {
    const NAMES: [&str; 10] = [
        "IPV4",
        "FRAG_IPV4",
        "NONFRAG_IPV4_TCP",
        "NONFRAG_IPV4_UDP",
        "NONFRAG_IPV4_OTHER",
        "IPV6",
        "FRAG_IPV6",
        "NONFRAG_IPV6_TCP",
        "NONFRAG_IPV6_UDP",
        "NONFRAG_IPV6_OTHER",
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| rss_type_bit(n).is_some_and(|b| bits & b != 0))
        .collect();
    if names.is_empty() {
        "none of maestro's hash types".into()
    } else {
        names.join(", ")
    }
}

impl RssConfig {
    /// Port `port`'s settings in a NIC configuration (`maestro rss --format json`): its
    /// key and hash types, its own RETA or the shared one. A port the configuration does
    /// not list is not hashed by the model (everything to `reta[0]`): it gets a RETA
    /// whose every entry is `reta[0]`, which steers every packet there whatever it hashes.
    pub fn from_nic(cfg: &NicConfig, port: u16) -> RssConfig {
        match cfg.ports.iter().find(|p| p.port == port) {
            Some(p) => RssConfig {
                key: p.key.clone(),
                hash_types: p.rss_types.clone(),
                reta: p.reta.clone().unwrap_or_else(|| cfg.reta.clone()),
            },
            None => RssConfig {
                key: MICROSOFT_KEY.to_vec(),
                hash_types: vec!["IPV4".into()],
                reta: vec![cfg.reta.first().copied().unwrap_or(0); cfg.reta.len().max(2)],
            },
        }
    }

    /// The `RTE_ETH_RSS_*` bits of the hash types; unknown names are refused with the
    /// known ones.
    pub fn hash_bits(&self, port: u16) -> Result<u64, DpdkError> {
        let mut bits = 0;
        for name in &self.hash_types {
            bits |= rss_type_bit(name).ok_or_else(|| {
                DpdkError::Nic(maestro_runtime::exec::ExecError::UnknownRssType {
                    port,
                    name: name.clone(),
                    known: type_names(u64::MAX),
                })
            })?;
        }
        Ok(bits)
    }
}

/// The RETA for a device table of `device` entries, equal in effect to `ours`:
/// `device[h & (D-1)] == ours[h & (L-1)]` for every hash `h`. A smaller table is
/// repeated; a larger one is cut only if it repeats with the device's period.
pub fn fit_reta(ours: &[u16], device: usize) -> Option<Vec<u16>> {
    let len = ours.len();
    if len == 0 || device == 0 || !len.is_power_of_two() || !device.is_power_of_two() {
        return None;
    }
    if device >= len {
        return Some((0..device).map(|i| ours[i % len]).collect());
    }
    let periodic = ours.iter().enumerate().all(|(i, &q)| q == ours[i % device]);
    periodic.then(|| ours[..device].to_vec())
}

/// The key for a device that takes `device` bytes: maestro's 40- and 52-byte keys agree
/// on every input of at most 36 bytes (all of these hash types), so cutting 52 to 40 or
/// padding 40 with zeros hashes identically.
fn fit_key(key: &[u8], device: u8) -> Vec<u8> {
    let want = if device == 0 { 40 } else { usize::from(device) };
    let mut k = key.to_vec();
    k.resize(want, 0);
    k
}

/// How to set a port up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// The NIC's RSS; `None`: no RSS (one queue, or queues fed from outside, such as a
    /// pcap vdev with one `rx_pcap` per queue).
    pub rss: Option<RssConfig>,
    /// Receive every destination MAC (what an NF that is not an endpoint needs).
    pub promiscuous: bool,
}

impl PortConfig {
    /// `queues` receive and transmit queues (one per core), 1024 descriptors each, no
    /// RSS, promiscuous.
    pub fn new(queues: u16) -> PortConfig {
        PortConfig {
            rx_queues: queues,
            tx_queues: queues,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            rss: None,
            promiscuous: true,
        }
    }

    pub fn with_rss(mut self, rss: RssConfig) -> PortConfig {
        self.rss = Some(rss);
        self
    }
}

/// Device counters (`rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// What a port's RSS becomes on its device: the key it takes, the RETA of its size
/// (`None`: one queue on a device without RSS, nothing to spread) and the hash bits.
struct RssPlan {
    key: Vec<u8>,
    reta: Option<Vec<u16>>,
    bits: u64,
}

/// Where a PMD stamps receive times, and in what unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RxTimestamp {
    offset: usize,
    flag: u64,
    ns_per_unit: u64,
}

impl RxTimestamp {
    /// The timestamp field for PMDs that stamp every packet unasked in a unit we know:
    /// net_pcap writes the capture's time in microseconds (`tv_sec * 10^6 + tv_usec`,
    /// DPDK 22.11). NICs stamp only with the timestamp offload on, in device clock
    /// ticks, so they are left to the TSC clock.
    fn of_driver(driver: &str) -> Option<RxTimestamp> {
        let ns_per_unit = match driver {
            "net_pcap" => 1000,
            _ => return None,
        };
        let (mut offset, mut flag) = (0i32, 0u64);
        // Finds the field net_pcap registered at probe time (or registers it).
        // SAFETY: out-parameters.
        let rc = unsafe { sys::rte_mbuf_dyn_rx_timestamp_register(&mut offset, &mut flag) };
        (rc == 0 && offset >= 0).then_some(RxTimestamp {
            offset: offset as usize,
            flag,
            ns_per_unit,
        })
    }
}

/// A configured, started port. Stopped and closed on drop (which is when a pcap vdev
/// finishes its output files).
#[derive(Debug)]
pub struct Port<'e> {
    info: PortInfo,
    rx_queues: u16,
    tx_queues: u16,
    pool: Arc<Mempool<'e>>,
    /// The RSS key must outlive the port: ethdev keeps the pointer until start.
    _key: Vec<u8>,
    reta: Option<Vec<u16>>,
    /// The mbuf timestamp field, its flag (`rte_mbuf_dyn_rx_timestamp_register`) and
    /// nanoseconds per unit, for PMDs whose unit is known.
    timestamp: Option<RxTimestamp>,
    rx_claimed: Box<[AtomicBool]>,
    tx_claimed: Box<[AtomicBool]>,
}

impl<'e> Port<'e> {
    /// Configures port `port` (queues, descriptors, RSS key/types/RETA mapped onto what
    /// the device takes), starts it and checks the RETA read back from the device.
    pub fn configure(
        eal: &'e Eal,
        port: u16,
        cfg: &PortConfig,
        pool: &Arc<Mempool<'e>>,
    ) -> Result<Port<'e>, DpdkError> {
        let info = port_info(eal, port)?;
        let too_many = |what, wanted, max| DpdkError::TooManyQueues {
            port,
            driver: info.driver.clone(),
            what,
            wanted,
            max,
        };
        if cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues {
            return Err(too_many("receive", cfg.rx_queues, info.max_rx_queues));
        }
        if cfg.tx_queues == 0 || cfg.tx_queues > info.max_tx_queues {
            return Err(too_many("transmit", cfg.tx_queues, info.max_tx_queues));
        }
        let mut conf = sys::rte_eth_conf::default();
        let mut key = Vec::new();
        let mut reta = None;
        let mut hash_bits = 0;
        if let Some(rss) = &cfg.rss {
            let plan = Self::plan_rss(&info, cfg.rx_queues, rss)?;
            key = plan.key;
            reta = plan.reta;
            hash_bits = plan.bits;
            if reta.is_some() {
                conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
                conf.rx_adv_conf.rss_conf.rss_hf = hash_bits;
                // SAFETY: a shim constant.
                let rss_hash = unsafe { sys::maestro_rx_offload_rss_hash };
                if info.rx_offloads & rss_hash != 0 {
                    conf.rxmode.offloads |= rss_hash;
                }
            }
        }
        // SAFETY: a valid port and configuration; `key` lives in the returned Port.
        let rc = unsafe { sys::rte_eth_dev_configure(port, cfg.rx_queues, cfg.tx_queues, &conf) };
        check(
            port,
            "rte_eth_dev_configure",
            rc,
            "check the queue counts and RSS settings against the device",
        )?;
        let (mut rxd, mut txd) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: a configured port; out-parameters.
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut rxd, &mut txd) };
        check(
            port,
            "rte_eth_dev_adjust_nb_rx_tx_desc",
            rc,
            "use 512..4096 descriptors",
        )?;
        let socket = if info.socket < 0 {
            0
        } else {
            info.socket as u32
        };
        for q in 0..cfg.rx_queues {
            // SAFETY: a configured port; NULL takes the device's default rxconf; the
            // pool outlives the port (the port holds an Arc of it).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(port, q, rxd, socket, std::ptr::null(), pool.as_ptr())
            };
            check(
                port,
                "rte_eth_rx_queue_setup",
                rc,
                "give the mempool more mbufs than all receive descriptors",
            )?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: as above.
            let rc = unsafe { sys::rte_eth_tx_queue_setup(port, q, txd, socket, std::ptr::null()) };
            check(
                port,
                "rte_eth_tx_queue_setup",
                rc,
                "use fewer transmit descriptors",
            )?;
        }
        // SAFETY: a configured port with its queues set up.
        let rc = unsafe { sys::rte_eth_dev_start(port) };
        check(
            port,
            "rte_eth_dev_start",
            rc,
            "see EAL's log for the driver's reason",
        )?;
        let mut p = Port {
            info,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            pool: Arc::clone(pool),
            _key: Vec::new(),
            reta: None,
            timestamp: None,
            rx_claimed: (0..cfg.rx_queues).map(|_| AtomicBool::new(false)).collect(),
            tx_claimed: (0..cfg.tx_queues).map(|_| AtomicBool::new(false)).collect(),
        };
        if cfg.promiscuous {
            // Not every PMD has a promiscuous mode (pcap, ring): not an error.
            // SAFETY: a started port.
            let _ = unsafe { sys::rte_eth_promiscuous_enable(port) };
        }
        if let Some(r) = reta {
            p.load_rss(&mut key, hash_bits, &r)?;
            p.reta = Some(r);
        }
        p._key = key;
        p.timestamp = RxTimestamp::of_driver(&p.info.driver);
        Ok(p)
    }

    /// Checks an RSS configuration against the device: the key it takes, the hash types
    /// it has, a RETA of its size whose entries are queues of the port.
    fn plan_rss(info: &PortInfo, queues: u16, rss: &RssConfig) -> Result<RssPlan, DpdkError> {
        let port = info.port;
        let driver = info.driver.clone();
        if rss.key.len() != 40 && rss.key.len() != 52 {
            return Err(DpdkError::KeyLength {
                port,
                driver,
                len: rss.key.len(),
                device: info.hash_key_size,
            });
        }
        let bits = rss.hash_bits(port)?;
        if let Some((bucket, &queue)) = rss.reta.iter().enumerate().find(|(_, &q)| q >= queues) {
            return Err(DpdkError::RetaQueue {
                port,
                driver,
                bucket,
                queue,
                queues,
            });
        }
        if !info.has_rss() {
            if queues == 1 {
                return Ok(RssPlan {
                    key: fit_key(&rss.key, info.hash_key_size),
                    reta: None,
                    bits,
                });
            }
            return Err(DpdkError::NoRss {
                port,
                driver,
                reta_size: info.reta_size,
                offloads: info.rss_types,
                queues,
            });
        }
        let missing = bits & !info.rss_types;
        if missing != 0 {
            return Err(DpdkError::RssTypesUnsupported {
                port,
                driver,
                missing: type_names(missing),
                supported: type_names(info.rss_types),
            });
        }
        let reta = fit_reta(&rss.reta, usize::from(info.reta_size)).ok_or_else(|| {
            DpdkError::RetaSize {
                port,
                driver: driver.clone(),
                ours: rss.reta.len(),
                device: info.reta_size,
            }
        })?;
        Ok(RssPlan {
            key: fit_key(&rss.key, info.hash_key_size),
            reta: Some(reta),
            bits,
        })
    }

    /// Writes the key and hash types (again: some PMDs read them only here) and the
    /// RETA, then reads the RETA back.
    fn load_rss(&mut self, key: &mut [u8], bits: u64, reta: &[u16]) -> Result<(), DpdkError> {
        let port = self.info.port;
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: key.len() as u8,
            rss_hf: bits,
        };
        // SAFETY: a started port; the key outlives the call.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_update(port, &mut conf) };
        if rc != -libc::ENOTSUP {
            check(
                port,
                "rte_eth_dev_rss_hash_update",
                rc,
                "solve the RSS configuration for this NIC's key size and hash types",
            )?;
        }
        let size = reta.len();
        let mut entries = vec![sys::rte_eth_rss_reta_entry64::default(); size.div_ceil(64)];
        for (i, &q) in reta.iter().enumerate() {
            entries[i / 64].mask |= 1 << (i % 64);
            entries[i / 64].reta[i % 64] = q;
        }
        let size16 = u16::try_from(size).unwrap_or(u16::MAX);
        // SAFETY: `entries` covers `size` buckets.
        let rc = unsafe { sys::rte_eth_dev_rss_reta_update(port, entries.as_mut_ptr(), size16) };
        check(
            port,
            "rte_eth_dev_rss_reta_update",
            rc,
            "check the device's RETA size",
        )?;
        if let Some(read) = self.query_reta()? {
            if let Some(bucket) = (0..size).find(|&i| read.get(i) != Some(&reta[i])) {
                return Err(DpdkError::RetaReadBack {
                    port,
                    driver: self.info.driver.clone(),
                    bucket,
                    wrote: reta[bucket],
                    read: read.get(bucket).copied().unwrap_or(u16::MAX),
                });
            }
        }
        Ok(())
    }

    /// The device's RETA, or `None` when the PMD cannot report it.
    fn query_reta(&self) -> Result<Option<Vec<u16>>, DpdkError> {
        let size = usize::from(self.info.reta_size);
        if size == 0 {
            return Ok(None);
        }
        let mut entries = vec![sys::rte_eth_rss_reta_entry64::default(); size.div_ceil(64)];
        for i in 0..size {
            entries[i / 64].mask |= 1 << (i % 64);
        }
        // SAFETY: `entries` covers the device's RETA.
        let rc = unsafe {
            sys::rte_eth_dev_rss_reta_query(
                self.info.port,
                entries.as_mut_ptr(),
                self.info.reta_size,
            )
        };
        if rc == -libc::ENOTSUP {
            return Ok(None);
        }
        check(
            self.info.port,
            "rte_eth_dev_rss_reta_query",
            rc,
            "the PMD cannot report its RETA",
        )?;
        Ok(Some(
            (0..size).map(|i| entries[i / 64].reta[i % 64]).collect(),
        ))
    }

    /// The RETA in the device now (read back), `None` without RSS or when the PMD
    /// cannot report it.
    pub fn device_reta(&self) -> Result<Option<Vec<u16>>, DpdkError> {
        if self.reta.is_none() {
            return Ok(None);
        }
        self.query_reta()
    }

    /// The RETA this port was given (fitted to the device's size), if RSS is on.
    pub fn reta(&self) -> Option<&[u16]> {
        self.reta.as_deref()
    }

    pub fn id(&self) -> u16 {
        self.info.port
    }

    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }

    pub fn tx_queues(&self) -> u16 {
        self.tx_queues
    }

    pub fn pool(&self) -> &Mempool<'e> {
        &self.pool
    }

    /// Where the PMD puts receive timestamps in an mbuf, the flag it sets then, and
    /// their unit; `None` when the PMD gives none in a known unit.
    pub(crate) fn timestamp_field(&self) -> Option<RxTimestamp> {
        self.timestamp
    }

    /// Device counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: a valid port; out-parameter.
        let rc = unsafe { sys::rte_eth_stats_get(self.info.port, &mut s) };
        check(
            self.info.port,
            "rte_eth_stats_get",
            rc,
            "the PMD keeps no counters",
        )?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Claims receive queue `queue` for the calling thread (`None` if it does not
    /// exist or is claimed): DPDK queues are not thread-safe, so each has one user.
    pub fn rx_queue(&self, queue: u16) -> Option<RxQueue<'_, 'e>> {
        let slot = self.rx_claimed.get(usize::from(queue))?;
        (!slot.swap(true, Ordering::AcqRel)).then_some(RxQueue { port: self, queue })
    }

    /// Claims transmit queue `queue` (see [`Port::rx_queue`]).
    pub fn tx_queue(&self, queue: u16) -> Option<TxQueue<'_, 'e>> {
        let slot = self.tx_claimed.get(usize::from(queue))?;
        (!slot.swap(true, Ordering::AcqRel)).then_some(TxQueue { port: self, queue })
    }

    /// Stops and closes the port, reporting failures (drop does the same silently).
    pub fn close(self) -> Result<(), DpdkError> {
        let port = self.info.port;
        // SAFETY: no queue handle exists (they borrow the port, which we own).
        let rc = unsafe { sys::rte_eth_dev_stop(port) };
        let rc2 = unsafe { sys::rte_eth_dev_close(port) };
        std::mem::forget(self);
        check(port, "rte_eth_dev_stop", rc, "see EAL's log")?;
        check(port, "rte_eth_dev_close", rc2, "see EAL's log")
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // SAFETY: no queue handle exists (they borrow the port).
        unsafe {
            sys::rte_eth_dev_stop(self.info.port);
            sys::rte_eth_dev_close(self.info.port);
        }
    }
}

/// A receive queue used by one thread.
#[derive(Debug)]
pub struct RxQueue<'p, 'e> {
    port: &'p Port<'e>,
    queue: u16,
}

// SAFETY: the queue may move to the thread that polls it; it is not Sync, so one
// thread at a time uses it.
unsafe impl Send for RxQueue<'_, '_> {}

impl<'p, 'e> RxQueue<'p, 'e> {
    pub fn port(&self) -> &'p Port<'e> {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` (at most [`MAX_BURST`]) packets, appended to `out`;
    /// returns how many.
    #[inline]
    pub fn rx(&mut self, out: &mut Vec<Mbuf<'p>>, max: usize) -> usize {
        let max = max.min(MAX_BURST);
        out.reserve(max);
        let len = out.len();
        // SAFETY: the spare capacity holds `max` pointers; `Mbuf` is a transparent
        // wrapper of a non-null mbuf pointer, and the PMD writes only the `n` it
        // returns, each a valid mbuf we now own, from this port's pool.
        unsafe {
            let dst = out.as_mut_ptr().add(len).cast::<*mut sys::rte_mbuf>();
            let n = sys::maestro_rx_burst(self.port.info.port, self.queue, dst, max as u16);
            out.set_len(len + usize::from(n));
            usize::from(n)
        }
    }

    /// The receive timestamp of an mbuf from this queue in nanoseconds, when the PMD
    /// stamped it in a known unit.
    #[inline]
    pub fn timestamp(&self, m: &Mbuf<'_>) -> Option<u64> {
        let ts = self.port.timestamp_field()?;
        m.dyn_timestamp(ts.offset, ts.flag)
            .map(|t| t.saturating_mul(ts.ns_per_unit))
    }
}

impl Drop for RxQueue<'_, '_> {
    fn drop(&mut self) {
        self.port.rx_claimed[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

/// A transmit queue used by one thread.
#[derive(Debug)]
pub struct TxQueue<'p, 'e> {
    port: &'p Port<'e>,
    queue: u16,
}

// SAFETY: as for RxQueue.
unsafe impl Send for TxQueue<'_, '_> {}

impl<'p, 'e> TxQueue<'p, 'e> {
    pub fn port(&self) -> &'p Port<'e> {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Hands the front of `pkts` (at most [`MAX_BURST`]) to the NIC; what it took is
    /// removed from `pkts`, the rest stays (the caller retries or drops it). Returns
    /// how many were sent.
    #[inline]
    pub fn tx(&mut self, pkts: &mut Vec<Mbuf<'_>>) -> usize {
        let n = pkts.len().min(MAX_BURST);
        if n == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is a transparent mbuf pointer; the PMD takes ownership of the
        // first `sent`, which we then remove from the vector without dropping them.
        unsafe {
            let base = pkts.as_mut_ptr();
            let sent = usize::from(sys::maestro_tx_burst(
                self.port.info.port,
                self.queue,
                base.cast::<*mut sys::rte_mbuf>(),
                n as u16,
            ));
            let rest = pkts.len() - sent;
            std::ptr::copy(base.add(sent), base, rest);
            pkts.set_len(rest);
            sent
        }
    }
}

impl Drop for TxQueue<'_, '_> {
    fn drop(&mut self) {
        self.port.tx_claimed[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

/// `NonNull` is what an `Mbuf` holds; kept here so the transparent layout the bursts
/// rely on is checked at compile time.
const _: () =
    assert!(std::mem::size_of::<Mbuf<'static>>() == std::mem::size_of::<NonNull<sys::rte_mbuf>>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reta_fits_devices_exactly() {
        let ours: Vec<u16> = (0..128).map(|i| (i % 3) as u16).collect();
        // Larger device: repeated; every hash lands where the model says.
        let dev = fit_reta(&ours, 512).unwrap_or_default();
        assert_eq!(dev.len(), 512);
        for h in 0u32..100_000 {
            let h = h.wrapping_mul(2_654_435_761);
            assert_eq!(dev[(h & 511) as usize], ours[(h & 127) as usize]);
        }
        // Smaller device: only a periodic table fits.
        assert_eq!(fit_reta(&ours, 64), None);
        let periodic: Vec<u16> = (0..512).map(|i| (i % 4) as u16).collect();
        assert_eq!(fit_reta(&periodic, 128), Some(periodic[..128].to_vec()));
        assert_eq!(fit_reta(&ours, 0), None);
        assert_eq!(fit_reta(&[0, 1, 2], 128), None);
    }

    #[test]
    fn keys_fit_the_device() {
        let key: Vec<u8> = (0..52).collect();
        assert_eq!(fit_key(&key, 40), key[..40].to_vec());
        assert_eq!(fit_key(&key, 52), key);
        assert_eq!(fit_key(&key[..40], 52)[40..], [0u8; 12]);
        assert_eq!(fit_key(&key, 0).len(), 40);
    }

    #[test]
    fn rss_from_the_nic_model() {
        let mut cfg = NicConfig::default_for(2).with_cores(4);
        cfg.ports.remove(1);
        let p0 = RssConfig::from_nic(&cfg, 0);
        assert_eq!(p0.key, MICROSOFT_KEY.to_vec());
        assert_eq!(p0.reta, cfg.reta);
        assert_eq!(
            p0.hash_bits(0).unwrap_or(0),
            (1 << 4) | (1 << 5) | (1 << 2),
            "NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP | IPV4"
        );
        // An unlisted port: every bucket is the shared RETA's first queue.
        let p1 = RssConfig::from_nic(&cfg, 1);
        assert!(p1.reta.iter().all(|&q| q == cfg.reta[0]));
        let bad = RssConfig {
            hash_types: vec!["NONFRAG_IPV4_SCTP".into()],
            ..p0
        };
        let e = bad
            .hash_bits(0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("NONFRAG_IPV4_SCTP") && e.contains("NONFRAG_IPV4_TCP"),
            "{e}"
        );
    }
}
