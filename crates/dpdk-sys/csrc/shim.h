/*
 * tandem-dpdk-sys: the DPDK headers bindgen reads, and the C shim's declarations.
 *
 * DPDK's fast path is made of `static inline` functions and macros, which have no
 * symbol in the shared libraries. shim.c compiles one out-of-line wrapper for each one
 * Tandem uses; they are named `tandem_<the DPDK name>`.
 */
#ifndef TANDEM_DPDK_SHIM_H
#define TANDEM_DPDK_SHIM_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_flow.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pdump.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_telemetry.h>
#include <rte_version.h>

/*
 * Constants defined with function-like macros (RTE_BIT64, RTE_GENMASK...) are out of
 * bindgen's reach; these copies are evaluated by clang and come out as Rust consts.
 */
static const uint64_t TANDEM_RTE_ETH_RSS_IPV4 = RTE_ETH_RSS_IPV4;
static const uint64_t TANDEM_RTE_ETH_RSS_FRAG_IPV4 = RTE_ETH_RSS_FRAG_IPV4;
static const uint64_t TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_TCP = RTE_ETH_RSS_NONFRAG_IPV4_TCP;
static const uint64_t TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_UDP = RTE_ETH_RSS_NONFRAG_IPV4_UDP;
static const uint64_t TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_OTHER = RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
static const uint64_t TANDEM_RTE_ETH_RSS_IPV6 = RTE_ETH_RSS_IPV6;
static const uint64_t TANDEM_RTE_ETH_RSS_NONFRAG_IPV6_TCP = RTE_ETH_RSS_NONFRAG_IPV6_TCP;
static const uint64_t TANDEM_RTE_ETH_RSS_L2_PAYLOAD = RTE_ETH_RSS_L2_PAYLOAD;
static const uint64_t TANDEM_RTE_ETH_RSS_L3_SRC_ONLY = RTE_ETH_RSS_L3_SRC_ONLY;
static const uint64_t TANDEM_RTE_ETH_RSS_L3_DST_ONLY = RTE_ETH_RSS_L3_DST_ONLY;
static const uint64_t TANDEM_RTE_ETH_RSS_L4_SRC_ONLY = RTE_ETH_RSS_L4_SRC_ONLY;
static const uint64_t TANDEM_RTE_ETH_RSS_L4_DST_ONLY = RTE_ETH_RSS_L4_DST_ONLY;
static const uint64_t TANDEM_RTE_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t TANDEM_RTE_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t TANDEM_RTE_ETH_RSS_UDP = RTE_ETH_RSS_UDP;

static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_VLAN_INSERT = RTE_ETH_TX_OFFLOAD_VLAN_INSERT;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_TCP_TSO = RTE_ETH_TX_OFFLOAD_TCP_TSO;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
static const uint64_t TANDEM_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

static const uint64_t TANDEM_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
static const uint64_t TANDEM_RTE_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
static const uint64_t TANDEM_RTE_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
static const uint64_t TANDEM_RTE_ETH_RX_OFFLOAD_SCATTER = RTE_ETH_RX_OFFLOAD_SCATTER;

static const uint32_t TANDEM_RTE_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM;
static const uint32_t TANDEM_RTE_MBUF_DEFAULT_BUF_SIZE = RTE_MBUF_DEFAULT_BUF_SIZE;
static const uint32_t TANDEM_RTE_MAX_ETHPORTS = RTE_MAX_ETHPORTS;
static const uint32_t TANDEM_RTE_ETH_RETA_GROUP_SIZE = RTE_ETH_RETA_GROUP_SIZE;
static const uint32_t TANDEM_RTE_MAX_LCORE = RTE_MAX_LCORE;
static const uint32_t TANDEM_RTE_MAX_QUEUES_PER_PORT = RTE_MAX_QUEUES_PER_PORT;
static const uint32_t TANDEM_RTE_ETH_NAME_MAX_LEN = RTE_ETH_NAME_MAX_LEN;
static const uint32_t TANDEM_LCORE_ID_ANY = LCORE_ID_ANY;

/* rte_errno is a thread-local (RTE_PER_LCORE) variable. */
int tandem_rte_errno(void);
void tandem_rte_errno_set(int value);

/* Lcores and time. */
unsigned int tandem_rte_lcore_id(void);
uint64_t tandem_rte_rdtsc(void);
uint64_t tandem_rte_get_tsc_cycles(void);
void tandem_rte_pause(void);
void tandem_rte_prefetch0(const void *p);

/* Ethdev fast path. */
uint16_t tandem_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                 struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t tandem_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                 struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
uint16_t tandem_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
                                   struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* Mbufs. */
struct rte_mbuf *tandem_rte_pktmbuf_alloc(struct rte_mempool *mp);
int tandem_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                  unsigned int count);
void tandem_rte_pktmbuf_free(struct rte_mbuf *m);
void *tandem_rte_pktmbuf_mtod(const struct rte_mbuf *m);
uint16_t tandem_rte_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t tandem_rte_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t tandem_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t tandem_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
char *tandem_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *tandem_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *tandem_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int tandem_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int tandem_rte_pktmbuf_is_contiguous(const struct rte_mbuf *m);
int tandem_rte_pktmbuf_linearize(struct rte_mbuf *m);
void tandem_rte_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t v);
uint16_t tandem_rte_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t tandem_rte_mbuf_port(const struct rte_mbuf *m);
uint16_t tandem_rte_mbuf_nb_segs(const struct rte_mbuf *m);
uint64_t tandem_rte_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t tandem_rte_mbuf_rss_hash(const struct rte_mbuf *m);
void tandem_rte_mbuf_set_note(struct rte_mbuf *m, uint64_t v);
uint64_t tandem_rte_mbuf_note(const struct rte_mbuf *m);
uint32_t tandem_rte_mbuf_packet_type(const struct rte_mbuf *m);
void tandem_rte_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags_or,
                                    uint16_t l2_len, uint16_t l3_len, uint16_t l4_len);

/* Rings. */
unsigned int tandem_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                           unsigned int n, unsigned int *free_space);
unsigned int tandem_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                           unsigned int n, unsigned int *available);
unsigned int tandem_rte_ring_sp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                              unsigned int n, unsigned int *free_space);
unsigned int tandem_rte_ring_mp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                              unsigned int n, unsigned int *free_space);
unsigned int tandem_rte_ring_sc_dequeue_burst(struct rte_ring *r, void **obj_table,
                                              unsigned int n, unsigned int *available);
unsigned int tandem_rte_ring_mc_dequeue_burst(struct rte_ring *r, void **obj_table,
                                              unsigned int n, unsigned int *available);
unsigned int tandem_rte_ring_count(const struct rte_ring *r);
unsigned int tandem_rte_ring_free_count(const struct rte_ring *r);
unsigned int tandem_rte_ring_get_capacity(const struct rte_ring *r);

#endif /* TANDEM_DPDK_SHIM_H */
