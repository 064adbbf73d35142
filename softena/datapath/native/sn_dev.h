/* SPDX-License-Identifier: GPL-2.0 */
/* Internal state of a device and its queues, shared by sn_dev.c and sn_lro.c. */
#ifndef SN_DEV_H
#define SN_DEV_H

#include <stdatomic.h>
#include <xdp/xsk.h>

#include "sn_lro.h"
#include "sn_pkt.h"
#include "sn_ring.h"

#define NO_FRAME	UINT64_MAX

/* Newer than the uapi headers of older distributions (Linux 6.3). */
#ifndef BPF_F_XDP_DEV_BOUND_ONLY
#define BPF_F_XDP_DEV_BOUND_ONLY	(1U << 6)
#endif
#ifndef XDP_USE_SG
#define XDP_USE_SG			(1 << 4)	/* Linux 6.6 */
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD			(1 << 0)
#endif

struct sn_queue {
	struct sn_dev *dev;
	uint32_t qid;
	int host_fd;
	int wire_fd;		/* tap wire fd, or the xsk's fd */
	int wake_fd;		/* eventfd: another worker or Python wants us */
	_Atomic int sleeping;

	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, comp;
	struct xsk_ring_prod tx, fill;
	uint32_t tx_outstanding;	/* posted, not yet completed */
	_Atomic uint32_t faults;	/* SN_FAULT_*, set from Python */
	uint8_t tx_stopped;

	uint64_t *free;		/* page pool: a stack of frame bases */
	uint32_t nfree;
	uint8_t *scratch;	/* one host frame with its vnet header */
	uint8_t *bounce;	/* a wire frame too big for one UMEM frame */
	uint8_t *llq;		/* LLQ: the Tx ring in device memory, one entry a slot */

	struct sn_lro lro;

	struct sn_qstats st;
	struct sn_pp_stats pp;
};

struct sn_dev {
	struct sn_dev_config cfg;
	uint8_t *region;	/* the UMEM: num_queues * frames_per_queue frames */
	size_t region_size;
	uint64_t pool_span;	/* bytes of region owned by one queue */
	struct xsk_umem *umem;
	struct xsk_ring_prod umem_fill;
	struct xsk_ring_cons umem_comp;
	uint32_t tx_need;	/* free Tx slots to have before taking a frame */

	struct sn_rss_config rss;
	struct sn_offloads off;
	struct sn_rx_mode rx_mode;

	struct sn_queue q[SN_MAX_QUEUES];
	/* handoff[a][b]: Rx frames worker a steered to worker b.
	 * recycle[a][b]: frames of b's pool that worker a is done with. */
	struct sn_ring *handoff;
	struct sn_ring *recycle;
};

#define RING(dev, kind, a, b) (&(dev)->kind[(a) * (dev)->cfg.num_queues + (b)])

/* sn_dev.c */
void sn_set_err(char *err, size_t len, const char *fmt, int e);
uint64_t sn_now_ns(void);

/* sn_pool.c: the page pools */
uint64_t sn_pool_get(struct sn_queue *q);
void sn_pool_put(struct sn_queue *q, uint64_t addr);
void sn_pool_refill(struct sn_queue *q);

/* sn_xsk.c: the AF_XDP wire */
int sn_xsk_tx_room(struct sn_queue *q);
int sn_xsk_tx_frame(struct sn_queue *q, const struct virtio_net_hdr_v1 *vh,
		    const uint8_t *frame, size_t len, struct sn_tx_result *res);
void sn_xsk_kick(struct sn_queue *q);
void sn_xsk_reap(struct sn_queue *q);
int sn_xsk_rx_poll(struct sn_queue *q, int budget, uint32_t *woken);
void sn_xsk_refill(struct sn_queue *q);

/* sn_rx.c: wire to host */
void sn_rx_steer(struct sn_queue *q, const struct sn_desc *d, uint32_t n, uint32_t *woken);
void sn_rx_drop(struct sn_queue *q, const struct sn_desc *d, uint32_t n);
void sn_rx_deliver(struct sn_queue *q, const struct sn_desc *d, int csum_ok);
int sn_rx_poll_tap(struct sn_queue *q, int budget, uint32_t *woken);
int sn_rx_poll_handoff(struct sn_queue *q, int budget);

#endif
