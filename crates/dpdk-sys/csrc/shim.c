/*
 * tandem-dpdk-sys C shim: out-of-line copies of DPDK's `static inline` functions and
 * macros, so that Rust can call them. Each one is a direct call or field access, with
 * the same contract as the DPDK function it wraps.
 */
#include "shim.h"

#include <string.h>

int tandem_rte_errno(void) { return rte_errno; }
void tandem_rte_errno_set(int value) { rte_errno = value; }

unsigned int tandem_rte_lcore_id(void) { return rte_lcore_id(); }
uint64_t tandem_rte_rdtsc(void) { return rte_rdtsc(); }
uint64_t tandem_rte_get_tsc_cycles(void) { return rte_get_tsc_cycles(); }
void tandem_rte_pause(void) { rte_pause(); }
void tandem_rte_prefetch0(const void *p) { rte_prefetch0(p); }

uint16_t tandem_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                 struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t tandem_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                 struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint16_t tandem_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
                                   struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_prepare(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *tandem_rte_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int tandem_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                  unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void tandem_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void *tandem_rte_pktmbuf_mtod(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t tandem_rte_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t tandem_rte_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t tandem_rte_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t tandem_rte_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

char *tandem_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *tandem_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *tandem_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int tandem_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
int tandem_rte_pktmbuf_is_contiguous(const struct rte_mbuf *m) { return rte_pktmbuf_is_contiguous(m); }
int tandem_rte_pktmbuf_linearize(struct rte_mbuf *m) { return rte_pktmbuf_linearize(m); }

void tandem_rte_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t v) { rte_pktmbuf_refcnt_update(m, v); }
uint16_t tandem_rte_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
uint16_t tandem_rte_mbuf_port(const struct rte_mbuf *m) { return m->port; }
uint16_t tandem_rte_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint64_t tandem_rte_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
uint32_t tandem_rte_mbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }

/* The hash union's 8 bytes, for the application once the port's hash is read (DPDK
 * leaves them to the application on transmit; only the event adapters read them). */
_Static_assert(sizeof(((struct rte_mbuf *)0)->hash) == sizeof(uint64_t), "rte_mbuf.hash is 8 bytes");
void tandem_rte_mbuf_set_note(struct rte_mbuf *m, uint64_t v)
{
    memcpy(&m->hash, &v, sizeof v);
    /* The port's hash is gone: say so. */
    m->ol_flags &= ~RTE_MBUF_F_RX_RSS_HASH;
}
uint64_t tandem_rte_mbuf_note(const struct rte_mbuf *m)
{
    uint64_t v;
    memcpy(&v, &m->hash, sizeof v);
    return v;
}
uint32_t tandem_rte_mbuf_packet_type(const struct rte_mbuf *m) { return m->packet_type; }

void tandem_rte_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags_or,
                                    uint16_t l2_len, uint16_t l3_len, uint16_t l4_len)
{
	m->ol_flags |= ol_flags_or;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
}

unsigned int tandem_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                           unsigned int n, unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int tandem_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                           unsigned int n, unsigned int *available)
{
	return rte_ring_dequeue_burst(r, obj_table, n, available);
}

unsigned int tandem_rte_ring_sp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                              unsigned int n, unsigned int *free_space)
{
	return rte_ring_sp_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int tandem_rte_ring_mp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                              unsigned int n, unsigned int *free_space)
{
	return rte_ring_mp_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int tandem_rte_ring_sc_dequeue_burst(struct rte_ring *r, void **obj_table,
                                              unsigned int n, unsigned int *available)
{
	return rte_ring_sc_dequeue_burst(r, obj_table, n, available);
}

unsigned int tandem_rte_ring_mc_dequeue_burst(struct rte_ring *r, void **obj_table,
                                              unsigned int n, unsigned int *available)
{
	return rte_ring_mc_dequeue_burst(r, obj_table, n, available);
}

unsigned int tandem_rte_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
unsigned int tandem_rte_ring_free_count(const struct rte_ring *r) { return rte_ring_free_count(r); }
unsigned int tandem_rte_ring_get_capacity(const struct rte_ring *r) { return rte_ring_get_capacity(r); }
