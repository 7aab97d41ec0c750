//! Raw bindings to DPDK 22.11 as Debian ships it (`libdpdk-dev`): what bindgen makes of
//! EAL, ethdev, mbuf, mempool and lcore (an allowlist of the calls maestro uses), plus the
//! C shim's exported wrappers for DPDK's `static inline` fast path (`maestro_rx_burst`,
//! `maestro_tx_burst`, `maestro_pktmbuf_alloc`, `maestro_pktmbuf_free`,
//! `maestro_lcore_id`, `maestro_errno`, ...) and the `RTE_ETH_RSS_*` bits as
//! `maestro_rss_*` constants (function-like macros bindgen cannot evaluate).
//!
//! Everything here is `unsafe` and unchecked; `maestro-dpdk` is the safe API.
//! Per-packet helpers that only read mbuf fields (the data pointer, the length) are plain
//! Rust over [`rte_mbuf`] in the safe crate, so they inline.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// The DPDK version this crate was built against (`pkg-config --modversion libdpdk`).
pub const DPDK_VERSION: &str = env!("DPDK_SYS_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim's constants are DPDK's own bits (22.11's `rte_ethdev.h`), and reading
    /// them proves the shim and the DPDK libraries link.
    #[test]
    fn shim_constants_are_dpdk_bits() {
        // SAFETY: immutable C constants.
        unsafe {
            assert_eq!(maestro_rss_ipv4, 1 << 2);
            assert_eq!(maestro_rss_frag_ipv4, 1 << 3);
            assert_eq!(maestro_rss_nonfrag_ipv4_tcp, 1 << 4);
            assert_eq!(maestro_rss_nonfrag_ipv4_udp, 1 << 5);
            assert_eq!(maestro_rss_nonfrag_ipv4_other, 1 << 7);
            assert_eq!(maestro_rss_ipv6, 1 << 8);
            assert_eq!(maestro_rss_frag_ipv6, 1 << 9);
            assert_eq!(maestro_rss_nonfrag_ipv6_tcp, 1 << 10);
            assert_eq!(maestro_rss_nonfrag_ipv6_udp, 1 << 11);
            assert_eq!(maestro_rss_nonfrag_ipv6_other, 1 << 13);
            assert_eq!(maestro_mbuf_f_rx_rss_hash, 1 << 1);
        }
    }

    /// Outside an EAL thread the lcore id is LCORE_ID_ANY, and the shim says so.
    #[test]
    fn lcore_id_outside_eal_is_any() {
        // SAFETY: reads a thread-local.
        assert_eq!(unsafe { maestro_lcore_id() }, u32::MAX);
    }

    #[test]
    fn version_is_22_11_or_later() {
        let mut parts = DPDK_VERSION.split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        assert!((major, minor) >= (22, 11), "{DPDK_VERSION}");
    }
}
