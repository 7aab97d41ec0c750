/* See shim.h. */
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "shim.h"

uint16_t maestro_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
                          uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t maestro_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
                          uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *maestro_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int maestro_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                               unsigned count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void maestro_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void *maestro_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

const void *maestro_pktmbuf_read(const struct rte_mbuf *m, uint32_t off, uint32_t len,
                                 void *buf)
{
	return rte_pktmbuf_read(m, off, len, buf);
}

unsigned maestro_lcore_id(void)
{
	return rte_lcore_id();
}

int maestro_errno(void)
{
	return rte_errno;
}

uint64_t maestro_rdtsc(void)
{
	return rte_rdtsc();
}

const uint64_t maestro_rss_ipv4 = RTE_ETH_RSS_IPV4;
const uint64_t maestro_rss_frag_ipv4 = RTE_ETH_RSS_FRAG_IPV4;
const uint64_t maestro_rss_nonfrag_ipv4_tcp = RTE_ETH_RSS_NONFRAG_IPV4_TCP;
const uint64_t maestro_rss_nonfrag_ipv4_udp = RTE_ETH_RSS_NONFRAG_IPV4_UDP;
const uint64_t maestro_rss_nonfrag_ipv4_other = RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
const uint64_t maestro_rss_ipv6 = RTE_ETH_RSS_IPV6;
const uint64_t maestro_rss_frag_ipv6 = RTE_ETH_RSS_FRAG_IPV6;
const uint64_t maestro_rss_nonfrag_ipv6_tcp = RTE_ETH_RSS_NONFRAG_IPV6_TCP;
const uint64_t maestro_rss_nonfrag_ipv6_udp = RTE_ETH_RSS_NONFRAG_IPV6_UDP;
const uint64_t maestro_rss_nonfrag_ipv6_other = RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
const uint64_t maestro_rx_offload_timestamp = RTE_ETH_RX_OFFLOAD_TIMESTAMP;
const uint64_t maestro_rx_offload_rss_hash = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t maestro_mbuf_f_rx_rss_hash = RTE_MBUF_F_RX_RSS_HASH;
