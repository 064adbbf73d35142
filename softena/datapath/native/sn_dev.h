/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal state of a device and its queues, shared by the files of the
 * datapath, and the interfaces between them:
 *
 *   sn_dev.c   the device (create, destroy, config) and its NAPI loop
 *   sn_xsk.c   the AF_XDP wire     } both behind struct sn_wire_ops
 *   sn_tap.c   the tap wire        }
 *   sn_rx.c    wire to host: filter, RSS steering, checksum verdict, delivery
 *   sn_pool.c  the page pools: the only writer of a queue's free list
 *   sn_hw_gro.c, sn_pkt.c,  packet engines, which know no queue
 *   sn_rss.c, sn_csum.c
 *
 * Calls go down that list, never back up.
 */
#ifndef SN_DEV_H
#define SN_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <xdp/xsk.h>

#include "sn_hw_gro.h"
#include "sn_pkt.h"
#include "sn_ring.h"
#include "softena_rfs.h"

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

struct sn_queue;
struct sn_dev;

/*
 * What a wire does for the NAPI loop. Tx: is there room for a worst-case
 * host frame; put one frame on the wire (wire frames, or -ENOBUFS when it
 * could not take it, another -errno when the frame is malformed); push what
 * was posted; take back completed buffers. Rx: pass up to BUDGET frames to
 * sn_rx_steer(); give the wire buffers to receive into; are frames waiting
 * (without a syscall); the worker is about to sleep (optional: counters the
 * wire reads by syscall, read then rather than at every poll). Held: frames
 * the wire has of ours, which come back when it is destroyed. Destroy: free
 * what the wire made for the device.
 */
struct sn_wire_ops {
	int (*tx_room)(struct sn_queue *q);
	int (*tx_frame)(struct sn_queue *q, const struct virtio_net_hdr_v1 *vh,
			const uint8_t *frame, size_t len, struct sn_tx_result *res);
	void (*tx_kick)(struct sn_queue *q);
	void (*tx_reap)(struct sn_queue *q);
	int (*rx_poll)(struct sn_queue *q, int budget, uint32_t *woken);
	void (*rx_refill)(struct sn_queue *q);
	int (*rx_pending)(struct sn_queue *q);
	void (*rx_idle)(struct sn_queue *q);	/* may be NULL */
	uint32_t (*held)(struct sn_queue *q);	/* frames lent to the wire now */
	void (*destroy)(struct sn_dev *dev);
};

extern const struct sn_wire_ops sn_xsk_wire;	/* sn_xsk.c */
extern const struct sn_wire_ops sn_tap_wire;	/* sn_tap.c */

#define SN_PP_CACHE_SIZE	128	/* the kernel's PP_ALLOC_CACHE_SIZE */
#define SN_PP_CACHE_REFILL	64	/* PP_ALLOC_CACHE_REFILL: a refill, a slow-path bulk */

/* Where a frame is (sn_pool.c). */
#define SN_FRAME_FREE		0	/* in the region's free list */
#define SN_FRAME_POOL		1	/* in its pool's cache or ring */
#define SN_FRAME_LENT		2	/* out: fill ring, Rx, handoff, GRO, Tx */

/* The region's frames no pool holds, and every frame's state and pool. */
struct sn_frames {
	pthread_mutex_t lock;
	uint64_t *stack;
	uint32_t count;
	uint32_t total;
	uint8_t *state;		/* SN_FRAME_* */
	uint8_t *owner;		/* the pool (queue id) holding it */
	int debug;		/* SOFTENA_DEBUG_PAGE_POOL: check every hand-off */
};

/* A queue's page pool; only sn_pool.c writes it. */
struct sn_pool {
	uint64_t cache[SN_PP_CACHE_SIZE];
	uint32_t count;		/* frames in the cache */
	uint32_t detached;
	uint64_t detach_time;	/* CLOCK_BOOTTIME seconds, 0 while attached */
	uint64_t hold;		/* frames taken from the free list, ever */
	uint64_t released;	/* of which the owner gave back */
	_Atomic int starving;	/* the owner's fill ring went short: wake it on returns */
	struct sn_pp_stats st;
};

/* What worker A did with frames of pool B (dev->returns[A][B]): written by A alone. */
struct sn_pp_returns {
	uint64_t recycle_ring;
	uint64_t recycle_ring_full;
	uint64_t released;	/* ring full: given back to the free list */
};

struct sn_queue {
	struct sn_dev *dev;
	uint32_t qid;
	int host_fd;
	int wire_fd;		/* tap wire fd, or the xsk's fd */
	int xskmap_fd;		/* the wire program's XSKMAP holding it, or -1 */
	int wake_fd;		/* eventfd: another worker or Python wants us */
	_Atomic int sleeping;
	_Atomic int stop;	/* sn_queue_stop(): the worker's loop ends */

	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, comp;
	struct xsk_ring_prod tx, fill;
	uint32_t tx_outstanding;	/* posted, not yet completed */
	uint32_t tx_completed;		/* descriptors completed, ever: the oldest slot */
	uint64_t tx_cmpl_stamp_ns;	/* CLOCK_MONOTONIC of the last completion progress */
	_Atomic uint32_t faults;	/* SN_FAULT_*, set from Python */
	uint8_t tx_stopped;
	uint64_t rx_xdp_ns;		/* the last XDP arrival stamp taken off the wire */

	struct sn_pool pool;
	uint32_t fill_lent;	/* frames on the wire's fill ring or its Rx ring,
				 * or set aside by its kernel side */
	uint64_t xsk_overruns_seen;	/* the socket's Rx ring full + fill ring empty, counted so far */
	uint32_t xsk_rx_polls;
	uint64_t rx_spare;	/* tap wire: the frame the next read goes into */
	uint8_t *scratch;	/* one host frame with its vnet header */
	uint8_t *bounce;	/* a wire frame too big for one UMEM frame */
	uint8_t *llq;		/* LLQ: the Tx ring in device memory, one entry a slot */

	struct sn_hw_gro gro;

	/* NAPI: the settings napi-set gave (written by Python, read with
	 * relaxed loads), and where the worker stands in them. */
	struct sn_napi_config napi;
	int last_work;			/* what the last poll did */
	uint32_t defer_left;		/* empty polls still owed before sleeping */
	uint64_t suspend_since_ns;	/* first of the polls finding work without a sleep; 0 none */
	uint64_t gro_due_ns;		/* when the oldest held GRO session must go up; 0 none */

	struct sn_qstats st;
};

struct sn_dev {
	struct sn_dev_config cfg;
	const struct sn_wire_ops *wire;
	uint8_t *region;	/* the UMEM: num_queues * frames_per_queue frames */
	size_t region_size;
	struct xsk_umem *umem;
	struct xsk_ring_prod umem_fill;
	struct xsk_ring_cons umem_comp;
	uint32_t tx_need;	/* free Tx slots to have before taking a frame */

	struct sn_poll_config poll;
	struct sn_rss_config rss;
	struct sn_rss_wire wire_rss;
	uint32_t wire_rss_flows;	/* SN_FLOW_* bits whose wire hash RSS may use */
	struct sn_offloads off;
	/* aRFS: the host's flow table (mapped read-only; NULL: none) and
	 * where its CPUs' flows go (enabled 0: RSS alone). */
	const uint32_t *rfs_table;
	struct softena_rfs_steer rfs;
	struct sn_rx_mode rx_mode;

	struct sn_queue q[SN_MAX_QUEUES];
	/* handoff[a][b]: Rx frames worker a steered to worker b.
	 * recycle[a][b]: frames of b's pool that worker a is done with. */
	struct sn_ring *handoff;
	struct sn_ring *recycle;
	struct sn_pp_returns *returns;
	struct sn_frames frames;
};

#define RING(dev, kind, a, b) (&(dev)->kind[(a) * (dev)->cfg.num_queues + (b)])

/* sn_pool.c: the page pools */
int sn_frames_init(struct sn_dev *dev);
void sn_frames_fini(struct sn_dev *dev);
uint32_t sn_frames_free(struct sn_dev *dev);
uint64_t sn_pool_get(struct sn_queue *q);
void sn_pool_put(struct sn_queue *q, uint64_t addr);
int sn_pool_can_give(struct sn_queue *q, uint32_t n);
int sn_pool_returns_awaited(struct sn_queue *q);
void sn_pool_check_lent(struct sn_dev *dev, uint64_t addr, const char *where);
void sn_pool_trim(struct sn_queue *q);
void sn_pool_detach(struct sn_queue *q);
uint32_t sn_pool_reclaim(struct sn_dev *dev, uint32_t wire_held);
void sn_pool_read(struct sn_queue *q, struct sn_pp_stats *st, struct sn_pp_gauges *g);

/* sn_rx.c: wire to host */
void sn_rx_init(struct sn_queue *q);
struct softena_rx_meta;
void sn_rx_steer(struct sn_queue *q, struct sn_desc *d, uint32_t n,
		 const struct softena_rx_meta *meta, uint32_t *woken);
void sn_rx_drop(struct sn_queue *q, const struct sn_desc *d, uint32_t n);
int sn_rx_poll_handoff(struct sn_queue *q, int budget);
uint64_t sn_rx_flush(struct sn_queue *q, uint64_t hold_ns);

#endif
