// SPDX-License-Identifier: GPL-2.0
/*
 * A softena device: its queue pairs, one host tap fd and one wire queue
 * (an AF_XDP socket, or a tap fd: struct sn_wire_ops) each, a page pool per
 * queue over one shared region (the UMEM), the rings that carry frames and
 * recycled buffers between queues; the NAPI loop that polls a queue pair
 * and sleeps until it has work; and the teardown that takes every frame
 * back before the region goes.
 *
 * Threading: queue q's state is touched only by worker q, inside
 * sn_napi_run() (its poll and wait). Other workers reach it only through the
 * SPSC rings and the sleeping/wake pair. Python reads the counters.
 */
#define _GNU_SOURCE	/* ppoll */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "sn_dev.h"
#include "sn_util.h"

/*
 * Pin glibc's mmap threshold at its default, 128 KiB. Left dynamic, the
 * first free of an mmapped chunk raises it (up to 32 MiB), and from then on
 * every rebuild's rings and buffers, and libbpf's transient BTF copies, come
 * from a thread's arena heap, which only gives memory back from its top: a
 * soak of resets and -L/-G grew the process by ~150 KiB per rebuild. Pinned,
 * big buffers are mapped and unmapped, as the kernel vmallocs its rings.
 */
__attribute__((constructor)) static void pin_mmap_threshold(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

/*
 * Free chunks inside an arena's heap stay resident until the heap's top is
 * free, which threads that come and go with every rebuild rarely leave it:
 * malloc_trim() hands back every whole free page of every arena. Called once
 * per rebuild, never on the packet path.
 */
void sn_heap_trim(void)
{
	malloc_trim(0);
}

static void wake(struct sn_queue *q)
{
	uint64_t one = 1;

	if (atomic_load(&q->sleeping) && atomic_exchange(&q->sleeping, 0))
		(void)!write(q->wake_fd, &one, sizeof(one));
}

void sn_queue_kick(struct sn_dev *dev, uint32_t qid)
{
	uint64_t one = 1;

	if (qid < dev->cfg.num_queues)
		(void)!write(dev->q[qid].wake_fd, &one, sizeof(one));
}

/* ---- device ------------------------------------------------------------- */

static uint32_t tx_need_for(uint32_t mtu)
{
	/* Worst case per host frame: 64 KiB at the smallest MSS this wire
	 * allows (IPv6 and 60 bytes of TCP header), within the TSO limit. */
	uint32_t min_mss = mtu > 128 ? mtu - 100 : 28, need = 65536 / min_mss + 2;

	return need > SN_TSO_MAX_SEGS + 2 ? SN_TSO_MAX_SEGS + 2 : need;
}

uint32_t sn_tx_ring_min(uint32_t mtu)
{
	/* Room for two worst-case host frames: one in flight, one being taken. */
	return 2 * tx_need_for(mtu);
}


struct sn_dev *sn_dev_create(const struct sn_dev_config *cfg,
			     char *err, size_t errlen)
{
	struct sn_dev *dev;
	uint32_t nq = cfg->num_queues, i, a, rsize;

	if (nq == 0 || nq > SN_MAX_QUEUES || cfg->frame_size < 2048 ||
	    cfg->llq_header > SN_LLQ_ENTRY_SIZE - 32 ||
	    !sn_is_pow2(cfg->rx_ring_size) || !sn_is_pow2(cfg->tx_ring_size) ||
	    (cfg->wire_kind != SN_WIRE_XSK && cfg->wire_kind != SN_WIRE_TAP) ||
	    (cfg->wire_kind == SN_WIRE_XSK &&
	     cfg->frames_per_queue < cfg->rx_ring_size + cfg->tx_ring_size)) {
		sn_set_err(err, errlen, "invalid datapath configuration: %s", EINVAL);
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		sn_set_err(err, errlen, "cannot allocate device: %s", ENOMEM);
		return NULL;
	}
	dev->cfg = *cfg;
	dev->wire = cfg->wire_kind == SN_WIRE_XSK ? &sn_xsk_wire : &sn_tap_wire;
	dev->region_size = (uint64_t)cfg->frames_per_queue * cfg->frame_size * nq;
	dev->tx_need = tx_need_for(cfg->wire_mtu);
	if (cfg->wire_kind == SN_WIRE_XSK && cfg->tx_ring_size < sn_tx_ring_min(cfg->wire_mtu)) {
		sn_set_err(err, errlen, "Tx ring too small for two TSO frames: %s", EINVAL);
		free(dev);
		return NULL;
	}
	dev->off = (struct sn_offloads){ 1, 1, 1, 1, 1 };
	dev->poll = (struct sn_poll_config){ .budget = 64, .sleep_timeout_ms = 1000 };
	dev->rx_mode.promisc = 1;	/* until the host's filter arrives */
	dev->wire_rss.error = ENODATA;	/* until the wire's RSS is read */
	dev->region = mmap(NULL, dev->region_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (dev->region == MAP_FAILED) {
		sn_set_err(err, errlen, "cannot map the frame region: %s", errno);
		free(dev);
		return NULL;
	}
	dev->handoff = calloc((size_t)nq * nq, sizeof(struct sn_ring));
	dev->recycle = calloc((size_t)nq * nq, sizeof(struct sn_ring));
	dev->returns = calloc((size_t)nq * nq, sizeof(struct sn_pp_returns));
	if (!dev->handoff || !dev->recycle || !dev->returns || sn_frames_init(dev))
		goto nomem;
	/* A pool's ring holds what its Rx ring does, as drivers size the
	 * kernel's ptr_ring (pool_size) by their ring. */
	rsize = cfg->rx_ring_size;
	for (a = 0; a < nq; a++)
		for (i = 0; i < nq; i++)
			if (sn_ring_init(RING(dev, handoff, a, i), cfg->rx_ring_size) ||
			    sn_ring_init(RING(dev, recycle, a, i), rsize))
				goto nomem;

	for (i = 0; i < nq; i++) {
		struct sn_queue *q = &dev->q[i];

		q->dev = dev;
		q->qid = i;
		q->host_fd = q->wire_fd = q->xskmap_fd = -1;
		q->rx_spare = NO_FRAME;
		q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->wake_fd < 0)
			goto nomem;
		sn_rx_init(q);
		q->scratch = malloc(SN_VNET_HDR_LEN + SN_MAX_FRAME);
		q->bounce = malloc(SN_MAX_FRAME);
		if (cfg->llq_header)
			q->llq = calloc(cfg->tx_ring_size, SN_LLQ_ENTRY_SIZE);
		if (!q->scratch || !q->bounce || (cfg->llq_header && !q->llq))
			goto nomem;
	}
	return dev;
nomem:
	sn_set_err(err, errlen, "cannot allocate queue state: %s", ENOMEM);
	sn_dev_destroy(dev);
	return NULL;
}

void sn_dev_destroy(struct sn_dev *dev)
{
	uint32_t i, nq;

	if (!dev)
		return;
	nq = dev->cfg.num_queues;
	dev->wire->destroy(dev);
	for (i = 0; i < nq; i++) {
		struct sn_queue *q = &dev->q[i];

		if (q->wake_fd > 0)
			close(q->wake_fd);
		free(q->scratch);
		free(q->bounce);
		free(q->llq);
	}
	for (i = 0; dev->handoff && dev->recycle && i < nq * nq; i++) {
		sn_ring_free(&dev->handoff[i]);
		sn_ring_free(&dev->recycle[i]);
	}
	free(dev->handoff);
	free(dev->recycle);
	free(dev->returns);
	sn_frames_fini(dev);
	if (dev->rfs_table)
		munmap((void *)dev->rfs_table, SOFTENA_RFS_MAP_SIZE);
	munmap(dev->region, dev->region_size);
	free(dev);
}

void sn_dev_set_rss(struct sn_dev *dev, const struct sn_rss_config *rss)
{
	/* Workers read the table per frame; a torn update mid-batch only
	 * steers a few frames by the old table, as on a NIC. */
	memcpy(&dev->rss, rss, sizeof(*rss));
	sn_dev_set_wire_rss(dev, &dev->wire_rss);
}

int sn_dev_set_wire_rss(struct sn_dev *dev, const struct sn_rss_wire *wire)
{
	uint32_t flows;
	int why;

	if (wire != &dev->wire_rss)
		dev->wire_rss = *wire;
	why = sn_rss_wire_compare(&dev->rss, &dev->wire_rss, &flows);
	/* One store, read per frame by the workers with one load. */
	__atomic_store_n(&dev->wire_rss_flows, flows, __ATOMIC_RELAXED);
	return why;
}

void sn_dev_set_offloads(struct sn_dev *dev, const struct sn_offloads *off)
{
	dev->off = *off;
}

int sn_dev_set_arfs(struct sn_dev *dev, int table_fd, const struct sn_arfs_config *cfg)
{
	struct softena_rfs_steer st;

	if (!dev->rfs_table && table_fd >= 0) {
		/* The map stays mapped after its fd closes: the datapath reads
		 * the recorder's writes in place, a load per frame, no syscall. */
		void *t = mmap(NULL, SOFTENA_RFS_MAP_SIZE, PROT_READ, MAP_SHARED,
			       table_fd, 0);

		if (t == MAP_FAILED)
			return -errno;
		dev->rfs_table = t;
	}
	sn_rfs_steer_fill(cfg, &st);
	st.enabled = st.enabled && dev->rfs_table;
	/* As with RSS: a frame or two may meet a half-written table. */
	memcpy(&dev->rfs, &st, sizeof(st));
	return 0;
}

void sn_dev_set_rx_mode(struct sn_dev *dev, const struct sn_rx_mode *mode)
{
	/* As with RSS: a frame or two may meet a half-written filter. */
	memcpy(&dev->rx_mode, mode, sizeof(*mode));
}

void sn_dev_set_mtu(struct sn_dev *dev, uint32_t mtu)
{
	dev->cfg.wire_mtu = mtu;
	dev->tx_need = tx_need_for(mtu);
}

void sn_queue_set_faults(struct sn_dev *dev, uint32_t qid, uint32_t faults)
{
	if (qid < dev->cfg.num_queues)
		atomic_store(&dev->q[qid].faults, faults);
}

/* Each field is one store, read by the worker with one load: a poll may see
 * the new defer count with the old timeout, never a torn value. */
void sn_queue_set_napi(struct sn_dev *dev, uint32_t qid, const struct sn_napi_config *napi)
{
	struct sn_napi_config *c;

	if (qid >= dev->cfg.num_queues)
		return;
	c = &dev->q[qid].napi;
	__atomic_store_n(&c->defer_hard_irqs, napi->defer_hard_irqs, __ATOMIC_RELAXED);
	__atomic_store_n(&c->gro_flush_timeout_ns, napi->gro_flush_timeout_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&c->irq_suspend_timeout_ns, napi->irq_suspend_timeout_ns, __ATOMIC_RELAXED);
}

struct sn_qstats *sn_queue_stats(struct sn_dev *dev, uint32_t qid)
{
	return qid < dev->cfg.num_queues ? &dev->q[qid].st : NULL;
}


/* Read from another thread while the worker runs: each value is one load,
 * and a moment's disagreement between them is what a gauge may show. */
int sn_queue_gauges(struct sn_dev *dev, uint32_t qid, struct sn_qgauges *g)
{
	struct sn_queue *q;

	if (qid >= dev->cfg.num_queues)
		return -1;
	q = &dev->q[qid];
	g->tx_inflight = q->tx_outstanding;
	g->tx_cmpl_stamp_ns = q->tx_cmpl_stamp_ns;
	/* Descriptors are completed in ring order: the oldest in flight sits
	 * at the slot after the last completed. */
	g->tx_oldest_slot = q->tx_completed & (dev->cfg.tx_ring_size - 1);
	g->rx_xdp_tstamp_ns = __atomic_load_n(&q->rx_xdp_ns, __ATOMIC_RELAXED);
	return 0;
}

int sn_queue_pp_read(struct sn_dev *dev, uint32_t qid, struct sn_pp_stats *st,
		     struct sn_pp_gauges *g)
{
	if (qid >= dev->cfg.num_queues)
		return -1;
	sn_pool_read(&dev->q[qid], st, g);
	g->lent = dev->wire->held(&dev->q[qid]);
	return 0;
}

uint32_t sn_dev_frames_free(struct sn_dev *dev)
{
	return sn_frames_free(dev);
}

/* ---- Tx: host to wire --------------------------------------------------- */

static void count_tx(struct sn_queue *q, const struct virtio_net_hdr_v1 *vh,
		     uint32_t len, const struct sn_tx_result *r)
{
	q->st.tx_packets++;
	q->st.tx_bytes += len;
	if (r->gso) {
		q->st.tx_hw_gso_packets++;
		q->st.tx_hw_gso_bytes += len;
		q->st.tx_hw_gso_wire_packets += r->wire_frames;
		q->st.tx_hw_gso_wire_bytes += r->wire_bytes;
		q->st.tx_needs_csum += r->wire_frames;
	} else if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		q->st.tx_needs_csum++;
	} else {
		q->st.tx_csum_none++;
	}
}

/*
 * Host to wire: frames from our host tap queue, through the wire's Tx. The
 * budget counts wire frames, not host frames: one 64 KiB GSO frame becomes
 * some 45 wire frames, and a poll that took 64 of those would keep the Rx
 * half of the queue pair (the ACKs that clock the stream) waiting for
 * milliseconds. Returns the wire frames posted, at most about BUDGET.
 */
static int tx_poll(struct sn_queue *q, int budget)
{
	const struct sn_wire_ops *wire = q->dev->wire;
	struct virtio_net_hdr_v1 *vh = (void *)q->scratch;
	int done = 0, posted = 0;

	while (done < budget) {
		struct sn_tx_result r;
		uint32_t len;
		ssize_t n;
		int segs;

		if (!wire->tx_room(q)) {
			if (!q->tx_stopped)
				q->st.tx_stop++;
			q->tx_stopped = 1;
			break;
		}
		if (q->tx_stopped) {
			q->tx_stopped = 0;
			q->st.tx_wake++;
		}
		n = read(q->host_fd, q->scratch, SN_VNET_HDR_LEN + SN_MAX_FRAME);
		if (n < 0)
			break;
		if (n < SN_VNET_HDR_LEN + 14) {
			done++;
			q->st.tx_hw_drops++;
			q->st.tx_hw_drop_errors++;
			continue;
		}
		len = (uint32_t)(n - SN_VNET_HDR_LEN);
		segs = wire->tx_frame(q, vh, q->scratch + SN_VNET_HDR_LEN, len, &r);
		done += segs > 0 ? segs : 1;
		if (segs <= 0) {
			/* Errors are the drops of malformed frames: a part of all drops. */
			q->st.tx_hw_drops++;
			if (segs != -ENOBUFS)
				q->st.tx_hw_drop_errors++;
			continue;
		}
		posted += segs;
		count_tx(q, vh, len, &r);
		if (posted >= 32) {
			wire->tx_kick(q);
			posted = 0;
		}
	}
	if (posted)
		wire->tx_kick(q);
	wire->tx_reap(q);
	return done;
}

static int napi_poll(struct sn_dev *dev, uint32_t qid, int budget)
{
	struct sn_queue *q = &dev->q[qid];
	uint32_t woken = 0, t;
	int work;

	q->st.napi_polls++;
	q->gro.now_ns = sn_now_ns();	/* what the GRO sessions this poll opens are stamped with */
	work = tx_poll(q, budget);
	work += dev->wire->rx_poll(q, budget, &woken);
	for (t = 0; woken && t < dev->cfg.num_queues; t++)
		if (woken & (1u << (t & 31)))
			wake(&dev->q[t]);
	work += sn_rx_poll_handoff(q, budget);

	/* Frames we returned to other pools: wake an owner only when it went
	 * short of them, or two idle workers would wake each other. */
	for (t = 0; t < dev->cfg.num_queues; t++)
		if (t != qid && atomic_load_explicit(&dev->q[t].pool.starving, memory_order_relaxed) &&
		    sn_ring_count(RING(dev, recycle, qid, t)))
			wake(&dev->q[t]);
	q->gro_due_ns = sn_rx_flush(q, __atomic_load_n(&q->napi.gro_flush_timeout_ns, __ATOMIC_RELAXED));
	dev->wire->rx_refill(q);
	q->last_work = work;
	return work;
}

/* Is there work that needs no syscall to find? */
static int pending(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	uint32_t a;

	for (a = 0; a < dev->cfg.num_queues; a++)
		if (a != q->qid && sn_ring_count(RING(dev, handoff, a, q->qid)))
			return 1;
	return dev->wire->rx_pending(q);
}

static void nap_ns(uint64_t ns)
{
	struct timespec ts = sn_ns_to_timespec(ns);

	nanosleep(&ts, NULL);
}

/*
 * Spin on the fds (and the handoff rings) until there is work or UNTIL_NS;
 * 1 when there is work. The host stack and the wire's softirqs share these
 * CPUs: yield between looks, or the work we wait for never comes.
 */
static int busy_wait(struct sn_queue *q, struct pollfd *pfd, int nfd, uint64_t until_ns)
{
	uint64_t drain;

	do {
		if (pending(q))
			return 1;
		if (poll(pfd, (nfds_t)nfd, 0) > 0) {
			if (pfd[0].revents & POLLIN)	/* a kick: its work is in pending() now */
				(void)!read(q->wake_fd, &drain, sizeof(drain));
			return 1;
		}
		sched_yield();
	} while (sn_now_ns() < until_ns);
	return 0;
}

/*
 * The wait of a deferred poll: the wire's interrupt stays masked for
 * WINDOW_NS, but the host's transmit is a doorbell, not an interrupt (a
 * NIC's driver posts Tx at once, whatever its NAPI's state), and a kick
 * from another worker or the control plane is not the wire's either: the
 * host's tap and the wake eventfd end the wait at once.
 */
static void defer_nap(struct sn_queue *q, const struct pollfd *pfd, int nfd, uint64_t window_ns)
{
	struct timespec ts = sn_ns_to_timespec(window_ns);
	struct pollfd doorbells[3];
	uint64_t drain;
	int i, n = 0;

	for (i = 0; i < nfd; i++)
		if (pfd[i].fd != q->wire_fd)
			doorbells[n++] = (struct pollfd){ .fd = pfd[i].fd, .events = POLLIN };
	if (ppoll(doorbells, (nfds_t)n, &ts, NULL) > 0 && (doorbells[0].revents & POLLIN))
		(void)!read(q->wake_fd, &drain, sizeof(drain));	/* [0] is the wake fd */
}

/*
 * Does the worker owe another poll before it re-arms its interrupt (sleeps
 * in poll() on its fds)? The settings of napi-set, with the meanings
 * Documentation/networking/napi.rst and napi_complete_done() give them:
 *
 * - irq-suspend-timeout: while polls keep finding work the interrupt stays
 *   suspended: poll again at once, for up to the timeout since the first of
 *   them; then sleep, as the kernel's timer would end the suspension. The
 *   first empty poll ends it too, and the deferral below takes over.
 * - defer-hard-irqs N: a poll with work leaves the interrupt masked for up to
 *   N consecutive empty polls, each gro-flush-timeout after the previous
 *   (the kernel re-arms its timer for each): up to N times that timeout of
 *   polling after the last work. Without a timeout the polls come at once.
 *   The wait between them does not watch the wire: its interrupt is masked
 *   (defer_nap()). With BUSY, the worker is the busy-polling application
 *   that prefer-busy-poll serves: it polls through the wait instead.
 */
static int napi_repoll(struct sn_queue *q, uint64_t now, int busy,
		       struct pollfd *pfd, int nfd)
{
	uint32_t defer = __atomic_load_n(&q->napi.defer_hard_irqs, __ATOMIC_RELAXED);
	uint64_t window = __atomic_load_n(&q->napi.gro_flush_timeout_ns, __ATOMIC_RELAXED);
	uint64_t suspend = __atomic_load_n(&q->napi.irq_suspend_timeout_ns, __ATOMIC_RELAXED);

	if (q->last_work > 0) {
		q->defer_left = defer;
		if (suspend) {
			if (!q->suspend_since_ns)
				q->suspend_since_ns = now;
			if (now - q->suspend_since_ns < suspend)
				return 1;
			return 0;
		}
	} else {
		q->suspend_since_ns = 0;
		if (q->defer_left > defer)
			q->defer_left = defer;	/* napi-set lowered it meanwhile */
	}
	if (!q->defer_left)
		return 0;
	q->defer_left--;
	if (window) {
		if (busy)
			busy_wait(q, pfd, nfd, now + window);
		else
			defer_nap(q, pfd, nfd, window);
	}
	return 1;
}

/*
 * Sleep until there is work, unless napi-set's settings owe a poll first
 * (napi_repoll). RX_USECS/TX_USECS are the interrupt moderation of the
 * device: once woken by the wire (Rx) or the host (Tx), wait that long
 * before polling so that one poll takes a larger batch. A GRO session held
 * by gro-flush-timeout cuts the sleep short: it goes up when it falls due,
 * whether more traffic comes or not.
 */
static int napi_wait(struct sn_dev *dev, uint32_t qid, int busy_poll_us,
		     int timeout_ms, int rx_usecs, int tx_usecs)
{
	struct sn_queue *q = &dev->q[qid];
	struct pollfd pfd[3];
	struct timespec ts;
	uint64_t drain, now = sn_now_ns(), sleep_ns;
	int nfd = 0, r;

	pfd[nfd++] = (struct pollfd){ .fd = q->wake_fd, .events = POLLIN };
	pfd[nfd++] = (struct pollfd){ .fd = q->wire_fd, .events = POLLIN };
	if (!q->tx_stopped)
		pfd[nfd++] = (struct pollfd){ .fd = q->host_fd, .events = POLLIN };
	if (napi_repoll(q, now, busy_poll_us > 0, pfd, nfd))
		return 1;
	q->defer_left = 0;
	q->suspend_since_ns = 0;

	if (q->tx_stopped || q->tx_outstanding)
		timeout_ms = 1;	/* completions are due: look again soon */
	sleep_ns = (uint64_t)timeout_ms * 1000000;
	if (q->gro_due_ns) {
		if (q->gro_due_ns <= now)
			return 1;
		if (q->gro_due_ns - now < sleep_ns)
			sleep_ns = q->gro_due_ns - now;
	}
	ts = sn_ns_to_timespec(sleep_ns);

	if (busy_poll_us > 0) {
		q->st.napi_busy_polls++;
		if (busy_wait(q, pfd, nfd, now + (uint64_t)busy_poll_us * 1000))
			return 1;
	}

	atomic_store(&q->sleeping, 1);
	/* Pairs with wake(): a producer that missed the flag left work we see. */
	if (pending(q)) {
		atomic_store(&q->sleeping, 0);
		return 1;
	}
	if (dev->wire->rx_idle)
		dev->wire->rx_idle(q);
	q->st.napi_sleeps++;
	r = ppoll(pfd, nfd, &ts, NULL);
	atomic_store(&q->sleeping, 0);
	if (pfd[0].revents & POLLIN)
		(void)!read(q->wake_fd, &drain, sizeof(drain));
	if (r == 0 && !q->tx_outstanding)
		sn_pool_trim(q);	/* a whole timeout without work */
	if (r > 0) {
		int defer = 0;

		q->st.napi_wakeups++;
		if (pfd[1].revents & POLLIN)
			defer = rx_usecs;
		if (nfd > 2 && (pfd[2].revents & POLLIN) && tx_usecs > defer)
			defer = tx_usecs;
		if (defer > 0)
			nap_ns((uint64_t)defer * 1000);
	}
	return r > 0;
}

#define POLL_FIELD(dev, f) __atomic_load_n(&(dev)->poll.f, __ATOMIC_RELAXED)

void sn_dev_set_poll(struct sn_dev *dev, const struct sn_poll_config *cfg)
{
	__atomic_store_n(&dev->poll.budget, cfg->budget ? cfg->budget : 64, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->poll.busy_poll_us, cfg->busy_poll_us, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->poll.sleep_timeout_ms, cfg->sleep_timeout_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->poll.rx_usecs, cfg->rx_usecs, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->poll.tx_usecs, cfg->tx_usecs, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->poll.adaptive_rx, cfg->adaptive_rx, __ATOMIC_RELAXED);
}

/*
 * The worker's loop, in C so that a worker never takes the GIL between
 * batches (two workers taking turns at it cost a futex wake-up a batch).
 * A poll that used its whole budget is followed at once by another, as
 * NAPI reschedules itself; otherwise the worker waits for work.
 */
int sn_napi_run(struct sn_dev *dev, uint32_t qid)
{
	struct sn_queue *q;

	if (qid >= dev->cfg.num_queues)
		return -1;
	q = &dev->q[qid];
	while (!atomic_load_explicit(&q->stop, memory_order_relaxed)) {
		int budget = (int)POLL_FIELD(dev, budget);
		int work = napi_poll(dev, qid, budget ? budget : 64);
		int rx_usecs = (int)POLL_FIELD(dev, rx_usecs);

		if (work >= budget)
			continue;
		if (POLL_FIELD(dev, adaptive_rx) && work < budget / 4)
			rx_usecs = 0;	/* light load: latency first, as DIM decides */
		napi_wait(dev, qid, (int)POLL_FIELD(dev, busy_poll_us),
			  (int)POLL_FIELD(dev, sleep_timeout_ms), rx_usecs,
			  (int)POLL_FIELD(dev, tx_usecs));
	}
	return 0;
}

void sn_queue_stop(struct sn_dev *dev, uint32_t qid)
{
	if (qid >= dev->cfg.num_queues)
		return;
	atomic_store(&dev->q[qid].stop, 1);
	sn_queue_kick(dev, qid);
}

/* ---- teardown: every frame back before the region goes ------------------- */

void sn_dev_detach(struct sn_dev *dev)
{
	uint32_t i;

	for (i = 0; i < dev->cfg.num_queues; i++)
		sn_pool_detach(&dev->q[i]);
}

/* Frames still on the Rx side (the wire's Rx ring, the handoff rings, held
 * GRO sessions) go up to the host as they would have; how many moved. */
static int drain_rx(struct sn_dev *dev)
{
	uint32_t i, woken = 0;
	int moved = 0;

	for (i = 0; i < dev->cfg.num_queues; i++)
		moved += dev->wire->rx_poll(&dev->q[i], 256, &woken);
	for (i = 0; i < dev->cfg.num_queues; i++) {
		moved += sn_rx_poll_handoff(&dev->q[i], 1 << 20);
		sn_rx_flush(&dev->q[i], 0);
	}
	return moved;
}

/*
 * With the workers stopped and the pools detached: Tx frames posted to the
 * wire are given TIMEOUT_MS to complete, so what the device counted as sent
 * is sent; Rx frames go up; then the wire is closed, and what it held of
 * ours (fill ring, Tx not completed) is ours again. The pools give all back
 * to the free list. Returns the frames lost: lent out, yet neither with the
 * wire nor anywhere the device could find them.
 */
int sn_dev_drain(struct sn_dev *dev, int timeout_ms)
{
	uint64_t deadline = sn_now_ns() + (uint64_t)timeout_ms * 1000000;
	uint32_t i, held = 0;
	int busy;

	do {
		busy = drain_rx(dev) > 0;
		for (i = 0; i < dev->cfg.num_queues; i++) {
			struct sn_queue *q = &dev->q[i];

			if (!q->tx_outstanding)
				continue;
			dev->wire->tx_kick(q);
			dev->wire->tx_reap(q);
			busy |= q->tx_outstanding > 0;
		}
		if (busy)
			nap_ns(100000);
	} while (busy && sn_now_ns() < deadline);

	for (i = 0; i < dev->cfg.num_queues; i++)
		held += dev->wire->held(&dev->q[i]);
	dev->wire->destroy(dev);
	return (int)sn_pool_reclaim(dev, held);
}
