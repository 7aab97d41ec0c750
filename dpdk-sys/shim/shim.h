/*
 * maestro's C shim over DPDK's `static inline` fast path. Each function is a plain,
 * exported wrapper around one inline DPDK function (or a per-lcore variable, or a
 * function-like macro constant) that Rust cannot call directly. Compiled by build.rs
 * with the flags `pkg-config --cflags libdpdk` reports (same -march as DPDK itself).
 */
#ifndef MAESTRO_DPDK_SHIM_H
#define MAESTRO_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* rte_eth_rx_burst / rte_eth_tx_burst: they index rte_eth_fp_ops[] inline. */
uint16_t maestro_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
                          uint16_t n);
uint16_t maestro_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
                          uint16_t n);

/* mbuf allocation and release. */
struct rte_mbuf *maestro_pktmbuf_alloc(struct rte_mempool *mp);
int maestro_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                               unsigned count);
void maestro_pktmbuf_free(struct rte_mbuf *m);

/* rte_pktmbuf_mtod: the first data byte of the first segment. */
void *maestro_pktmbuf_mtod(struct rte_mbuf *m);
/* rte_pktmbuf_read: `len` bytes at `off` of a (possibly segmented) packet, either in
 * place or copied into `buf`; NULL if the packet is shorter. */
const void *maestro_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len,
                                 void *buf);

/* Per-lcore state. */
unsigned maestro_lcore_id(void);
int maestro_errno(void);
uint64_t maestro_rdtsc(void);

/* RTE_ETH_RSS_* hash-type bits (RTE_BIT64(n) macros, which bindgen cannot evaluate). */
extern const uint64_t maestro_rss_ipv4;
extern const uint64_t maestro_rss_frag_ipv4;
extern const uint64_t maestro_rss_nonfrag_ipv4_tcp;
extern const uint64_t maestro_rss_nonfrag_ipv4_udp;
extern const uint64_t maestro_rss_nonfrag_ipv4_other;
extern const uint64_t maestro_rss_ipv6;
extern const uint64_t maestro_rss_frag_ipv6;
extern const uint64_t maestro_rss_nonfrag_ipv6_tcp;
extern const uint64_t maestro_rss_nonfrag_ipv6_udp;
extern const uint64_t maestro_rss_nonfrag_ipv6_other;
/* RTE_ETH_RX_OFFLOAD_* bits the backend uses. */
extern const uint64_t maestro_rx_offload_timestamp;
extern const uint64_t maestro_rx_offload_rss_hash;
/* RTE_MBUF_F_RX_RSS_HASH: mbuf.hash.rss holds the NIC's hash. */
extern const uint64_t maestro_mbuf_f_rx_rss_hash;

#endif
