// SPDX-License-Identifier: GPL-2.0
/*
 * The queue pairs of a softena device: one host tap fd and one wire queue
 * (an AF_XDP socket, or a tap fd) each, a page pool of frames per queue over
 * one shared region (the UMEM), and the rings that carry frames and recycled
 * buffers between queues.
 *
 * Threading: queue q's state is touched only by worker q, inside
 * sn_napi_poll()/sn_napi_wait(). Other workers reach it only through the
 * SPSC rings and the sleeping/wake pair. Python reads the counters.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#include "sn_dev.h"


static void set_err(char *err, size_t len, const char *fmt, int e)
{
	if (err && len)
		snprintf(err, len, fmt, strerror(e));
}

static int pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static uint32_t roundup_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ---- page pool ---------------------------------------------------------- */

static inline uint64_t frame_base(struct sn_dev *dev, uint64_t addr)
{
	return addr - addr % dev->cfg.frame_size;
}

static inline uint32_t frame_owner(struct sn_dev *dev, uint64_t addr)
{
	return (uint32_t)(addr / dev->pool_span);
}

static void pool_refill_from_rings(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	struct sn_desc d;
	uint32_t a;

	for (a = 0; a < dev->cfg.num_queues; a++) {
		struct sn_ring *r = RING(dev, recycle, a, q->qid);

		if (a == q->qid)
			continue;
		while (sn_ring_pop(r, &d) == 0)
			q->free[q->nfree++] = d.addr;
	}
}

static uint64_t pool_get(struct sn_queue *q)
{
	if (!q->nfree) {
		q->pp.alloc_empty++;
		pool_refill_from_rings(q);
		if (!q->nfree)
			return NO_FRAME;
		q->pp.alloc_refill++;
	}
	q->pp.alloc_fast++;
	return q->free[--q->nfree];
}

/* Return a frame to its owner: in place if it is ours, else by its ring. */
void sn_pool_put(struct sn_queue *q, uint64_t addr)
{
	struct sn_dev *dev = q->dev;
	uint64_t base = frame_base(dev, addr);
	uint32_t owner = frame_owner(dev, base);
	struct sn_desc d = { .addr = base };

	if (owner == q->qid) {
		q->free[q->nfree++] = base;
		q->pp.recycle_cached++;
		return;
	}
	/* Rings hold a whole pool, so a push cannot fail; count it if it does. */
	if (sn_ring_push(RING(dev, recycle, q->qid, owner), &d))
		q->pp.recycle_ring_full++;
	else
		q->pp.recycle_ring++;
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


struct sn_dev *sn_dev_create(const struct sn_dev_config *cfg,
			     char *err, size_t errlen)
{
	struct sn_dev *dev;
	uint32_t nq = cfg->num_queues, i, a, rsize;

	if (nq == 0 || nq > SN_MAX_QUEUES || cfg->frame_size < 2048 ||
	    cfg->llq_header > SN_LLQ_ENTRY_SIZE - 32 ||
	    !pow2(cfg->rx_ring_size) || !pow2(cfg->tx_ring_size) ||
	    (cfg->wire_kind == SN_WIRE_XSK &&
	     cfg->frames_per_queue < cfg->rx_ring_size + cfg->tx_ring_size)) {
		set_err(err, errlen, "invalid datapath configuration: %s", EINVAL);
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		set_err(err, errlen, "cannot allocate device: %s", ENOMEM);
		return NULL;
	}
	dev->cfg = *cfg;
	dev->pool_span = (uint64_t)cfg->frames_per_queue * cfg->frame_size;
	dev->region_size = dev->pool_span * nq;
	dev->tx_need = tx_need_for(cfg->wire_mtu);
	if (cfg->wire_kind == SN_WIRE_XSK && cfg->tx_ring_size < 2 * dev->tx_need) {
		set_err(err, errlen, "Tx ring too small for two TSO frames: %s", EINVAL);
		free(dev);
		return NULL;
	}
	dev->off = (struct sn_offloads){ 1, 1, 1, 1, 1 };
	dev->rx_mode.promisc = 1;	/* until the host's filter arrives */
	dev->region = mmap(NULL, dev->region_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (dev->region == MAP_FAILED) {
		set_err(err, errlen, "cannot map the frame region: %s", errno);
		free(dev);
		return NULL;
	}
	dev->handoff = calloc((size_t)nq * nq, sizeof(struct sn_ring));
	dev->recycle = calloc((size_t)nq * nq, sizeof(struct sn_ring));
	if (!dev->handoff || !dev->recycle)
		goto nomem;
	rsize = roundup_pow2(cfg->frames_per_queue);
	for (a = 0; a < nq; a++)
		for (i = 0; i < nq; i++)
			if (sn_ring_init(RING(dev, handoff, a, i), cfg->rx_ring_size) ||
			    sn_ring_init(RING(dev, recycle, a, i), rsize))
				goto nomem;

	for (i = 0; i < nq; i++) {
		struct sn_queue *q = &dev->q[i];
		uint32_t f;

		q->dev = dev;
		q->qid = i;
		q->host_fd = q->wire_fd = -1;
		q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->free = calloc(cfg->frames_per_queue, sizeof(uint64_t));
		q->scratch = malloc(SN_VNET_HDR_LEN + SN_MAX_FRAME);
		q->bounce = malloc(SN_MAX_FRAME);
		if (cfg->llq_header)
			q->llq = calloc(cfg->tx_ring_size, SN_LLQ_ENTRY_SIZE);
		if (q->wake_fd < 0 || !q->free || !q->scratch || !q->bounce ||
		    (cfg->llq_header && !q->llq))
			goto nomem;
		for (f = cfg->frames_per_queue; f > 0; f--)
			q->free[q->nfree++] = i * dev->pool_span +
					      (uint64_t)(f - 1) * cfg->frame_size;
		q->pp.frames_total = cfg->frames_per_queue;
	}
	return dev;
nomem:
	set_err(err, errlen, "cannot allocate queue state: %s", ENOMEM);
	sn_dev_destroy(dev);
	return NULL;
}

void sn_dev_destroy(struct sn_dev *dev)
{
	uint32_t i, nq;

	if (!dev)
		return;
	nq = dev->cfg.num_queues;
	for (i = 0; i < nq; i++) {
		struct sn_queue *q = &dev->q[i];

		/* Tap fds belong to the Python ports; only the xsk is ours. */
		if (q->xsk)
			xsk_socket__delete(q->xsk);
		if (q->wake_fd > 0)
			close(q->wake_fd);
		free(q->free);
		free(q->scratch);
		free(q->bounce);
		free(q->llq);
	}
	if (dev->umem)
		xsk_umem__delete(dev->umem);
	for (i = 0; dev->handoff && dev->recycle && i < nq * nq; i++) {
		sn_ring_free(&dev->handoff[i]);
		sn_ring_free(&dev->recycle[i]);
	}
	free(dev->handoff);
	free(dev->recycle);
	munmap(dev->region, dev->region_size);
	free(dev);
}

void sn_dev_set_rss(struct sn_dev *dev, const struct sn_rss_config *rss)
{
	/* Workers read the table per frame; a torn update mid-batch only
	 * steers a few frames by the old table, as on a NIC. */
	memcpy(&dev->rss, rss, sizeof(*rss));
}

void sn_dev_set_offloads(struct sn_dev *dev, const struct sn_offloads *off)
{
	dev->off = *off;
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

struct sn_qstats *sn_queue_stats(struct sn_dev *dev, uint32_t qid)
{
	return qid < dev->cfg.num_queues ? &dev->q[qid].st : NULL;
}

struct sn_pp_stats *sn_queue_pp_stats(struct sn_dev *dev, uint32_t qid)
{
	struct sn_queue *q;

	if (qid >= dev->cfg.num_queues)
		return NULL;
	q = &dev->q[qid];
	q->pp.frames_free = q->nfree;
	return &q->pp;
}

/* ---- ports -------------------------------------------------------------- */

int sn_xdp_load(const char *obj_path, int ifindex, int native,
		int *link_fd, int *xskmap_fd, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	struct bpf_object *obj;
	struct bpf_program *prog, *use;
	const char *want = native ? "softena_wire_rx" : "softena_wire_rx_generic";
	int fd, e;

	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		e = errno;
		set_err(err, errlen, "cannot open the XDP object: %s", e);
		return -e;
	}
	use = bpf_object__find_program_by_name(obj, want);
	if (!use) {
		bpf_object__close(obj);
		set_err(err, errlen, "XDP object lacks its program: %s", ENOENT);
		return -ENOENT;
	}
	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, prog == use);
	if (native) {
		/* Device-bound: the only way to call the RX metadata kfuncs. */
		bpf_program__set_ifindex(use, ifindex);
		bpf_program__set_flags(use, bpf_program__flags(use) |
					    BPF_F_XDP_DEV_BOUND_ONLY);
	}
	e = bpf_object__load(obj);
	if (e) {
		set_err(err, errlen, "cannot load the XDP program: %s", -e);
		bpf_object__close(obj);
		return e;
	}
	opts.flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	/* A link, not a netlink attachment: the kernel detaches it when the
	 * last fd closes, so even a crashed softena leaves no program behind. */
	fd = bpf_link_create(bpf_program__fd(use), ifindex, BPF_XDP, &opts);
	if (fd < 0) {
		e = errno;
		set_err(err, errlen, "cannot attach the XDP program: %s", e);
		bpf_object__close(obj);
		return -e;
	}
	*link_fd = fd;
	*xskmap_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "xsks_map")));
	/* The link and the map fd keep program and map alive. */
	bpf_object__close(obj);
	return 0;
}

int sn_queue_attach_xsk(struct sn_dev *dev, uint32_t qid, int host_fd,
			const char *ifname, int xskmap_fd,
			char *err, size_t errlen)
{
	struct sn_queue *q = &dev->q[qid];
	struct xsk_socket_config xcfg = {
		.rx_size = dev->cfg.rx_ring_size,
		.tx_size = dev->cfg.tx_ring_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP |
			      (dev->cfg.multi_buffer ? XDP_USE_SG : 0),
	};
	int e, fd;
	uint32_t key = qid;

	if (qid >= dev->cfg.num_queues || dev->cfg.wire_kind != SN_WIRE_XSK) {
		set_err(err, errlen, "invalid queue: %s", EINVAL);
		return -EINVAL;
	}
	if (!dev->umem) {
		struct xsk_umem_config ucfg = {
			.fill_size = dev->cfg.rx_ring_size,
			.comp_size = dev->cfg.tx_ring_size,
			.frame_size = dev->cfg.frame_size,
			.frame_headroom = 0,
			.flags = 0,
		};

		e = xsk_umem__create(&dev->umem, dev->region, dev->region_size,
				     &dev->umem_fill, &dev->umem_comp, &ucfg);
		if (e) {
			set_err(err, errlen, "cannot register the UMEM: %s", -e);
			dev->umem = NULL;
			return e;
		}
	}
	/* The first socket takes the rings made with the UMEM. */
	e = xsk_socket__create_shared(&q->xsk, ifname, qid, dev->umem, &q->rx,
				      &q->tx, qid == 0 ? &dev->umem_fill : &q->fill,
				      qid == 0 ? &dev->umem_comp : &q->comp, &xcfg);
	if (e) {
		set_err(err, errlen, "cannot create the AF_XDP socket: %s", -e);
		q->xsk = NULL;
		return e;
	}
	if (qid == 0) {
		q->fill = dev->umem_fill;
		q->comp = dev->umem_comp;
	}
	fd = xsk_socket__fd(q->xsk);
	if (bpf_map_update_elem(xskmap_fd, &key, &fd, BPF_ANY)) {
		e = errno;
		set_err(err, errlen, "cannot insert the socket in the XSKMAP: %s", e);
		return -e;
	}
	q->wire_fd = fd;
	q->host_fd = host_fd;
	return 0;
}

int sn_queue_xsk_zerocopy(struct sn_dev *dev, uint32_t qid)
{
	struct xdp_options opts;
	socklen_t len = sizeof(opts);
	struct sn_queue *q = &dev->q[qid];

	if (!q->xsk || getsockopt(q->wire_fd, SOL_XDP, XDP_OPTIONS, &opts, &len))
		return -1;
	return !!(opts.flags & XDP_OPTIONS_ZEROCOPY);
}

int sn_queue_attach_tap(struct sn_dev *dev, uint32_t qid, int host_fd,
			int wire_fd, char *err, size_t errlen)
{
	if (qid >= dev->cfg.num_queues || dev->cfg.wire_kind != SN_WIRE_TAP) {
		set_err(err, errlen, "invalid queue: %s", EINVAL);
		return -EINVAL;
	}
	dev->q[qid].host_fd = host_fd;
	dev->q[qid].wire_fd = wire_fd;
	return 0;
}

/* ---- Tx: host to wire --------------------------------------------------- */

struct xsk_tx_ctx {
	struct sn_queue *q;
	uint64_t base;
};

/*
 * LLQ (ENA's low-latency queue): the first bytes of the frame travel with
 * its descriptor into the ring entry in device memory, and the device sends
 * them from there, the rest from host memory. Here the device is this same
 * thread and its "memory" a per-queue ring: the header goes to the entry and
 * from the entry back in front of the payload, which is what it costs.
 */
static void llq_push(struct sn_queue *q, uint32_t slot, uint8_t *frame, uint32_t len)
{
	uint8_t *entry = q->llq + (size_t)(slot & (q->dev->cfg.tx_ring_size - 1)) * SN_LLQ_ENTRY_SIZE;
	uint32_t n = len < q->dev->cfg.llq_header ? len : q->dev->cfg.llq_header;

	memcpy(entry, frame, n);
	memcpy(frame, entry, n);
	q->st.tx_llq_push++;
	q->st.tx_llq_push_bytes += n;
}

/* A wire frame goes straight into a UMEM frame; a jumbo one is built in
 * the bounce buffer and leaves as several descriptors (multi-buffer). */
static uint8_t *xsk_tx_alloc(void *ctx, size_t need)
{
	struct xsk_tx_ctx *c = ctx;
	struct sn_queue *q = c->q;
	uint32_t fs = q->dev->cfg.frame_size;
	uint32_t chunks = (uint32_t)((need + fs - 1) / fs);

	if (chunks > 1 && (!q->dev->cfg.multi_buffer || need > SN_MAX_FRAME))
		return NULL;
	if (xsk_prod_nb_free(&q->tx, chunks) < chunks || q->nfree < chunks)
		return NULL;
	if (chunks > 1)
		return q->bounce;
	c->base = pool_get(q);
	return c->base == NO_FRAME ? NULL : q->dev->region + c->base;
}

static void xsk_tx_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	struct xsk_tx_ctx *c = ctx;
	struct sn_queue *q = c->q;
	uint32_t fs = q->dev->cfg.frame_size, chunks = 1, idx, k;

	if (buf == q->bounce)
		chunks = (len + fs - 1) / fs;
	xsk_ring_prod__reserve(&q->tx, chunks, &idx);
	for (k = 0; k < chunks; k++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + k);
		uint32_t part = len - k * fs < fs ? len - k * fs : fs;

		if (buf == q->bounce) {
			c->base = pool_get(q);	/* alloc checked there are enough */
			memcpy(q->dev->region + c->base, buf + (size_t)k * fs, part);
		}
		d->addr = c->base;
		d->len = part;
		d->options = k + 1 < chunks ? XDP_PKT_CONTD : 0;
	}
	if (q->dev->cfg.llq_header)
		llq_push(q, idx, q->dev->region + xsk_ring_prod__tx_desc(&q->tx, idx)->addr,
			 xsk_ring_prod__tx_desc(&q->tx, idx)->len);
	xsk_ring_prod__submit(&q->tx, chunks);
	q->tx_outstanding += chunks;
}

static void xsk_tx_kick(struct sn_queue *q)
{
	int tries = 64;

	if (!xsk_ring_prod__needs_wakeup(&q->tx))
		return;
	/* Copy-mode sockets send a bounded batch per call. */
	while (tries-- > 0) {
		if (sendto(q->wire_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			break;
		if (errno != EAGAIN && errno != EBUSY)
			break;
		if (!xsk_ring_prod__needs_wakeup(&q->tx))
			break;
	}
}

static void xsk_reap_tx(struct sn_queue *q)
{
	uint32_t idx, n, i;

	n = xsk_ring_cons__peek(&q->comp, q->dev->cfg.tx_ring_size, &idx);
	for (i = 0; i < n; i++)
		sn_pool_put(q, *xsk_ring_cons__comp_addr(&q->comp, idx + i));
	if (n) {
		xsk_ring_cons__release(&q->comp, n);
		q->tx_outstanding -= n;
	}
}

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

static int tx_poll(struct sn_queue *q, int budget)
{
	struct sn_dev *dev = q->dev;
	struct xsk_tx_ctx ctx = { q, 0 };
	struct sn_tx_sink sink = { xsk_tx_alloc, xsk_tx_commit, &ctx };
	struct virtio_net_hdr_v1 *vh = (void *)q->scratch;
	int done = 0, posted = 0;

	while (done < budget) {
		struct sn_tx_result r;
		ssize_t n;
		int segs;

		if (dev->cfg.wire_kind == SN_WIRE_XSK &&
		    (xsk_prod_nb_free(&q->tx, dev->tx_need) < dev->tx_need ||
		     q->nfree < dev->tx_need)) {
			xsk_reap_tx(q);
			if (xsk_prod_nb_free(&q->tx, dev->tx_need) < dev->tx_need ||
			    q->nfree < dev->tx_need) {
				if (!q->tx_stopped)
					q->st.tx_stop++;
				q->tx_stopped = 1;
				break;
			}
		}
		if (q->tx_stopped) {
			q->tx_stopped = 0;
			q->st.tx_wake++;
		}
		n = read(q->host_fd, q->scratch, SN_VNET_HDR_LEN + SN_MAX_FRAME);
		if (n < 0)
			break;
		done++;
		if (n < SN_VNET_HDR_LEN + 14) {
			q->st.tx_hw_drop_errors++;
			continue;
		}
		if (dev->cfg.wire_kind == SN_WIRE_TAP) {
			/* A tap wire takes GSO frames and partial checksums as
			 * they are: the cheapest offload is none at all. */
			if (write(q->wire_fd, q->scratch, (size_t)n) != n) {
				q->st.tx_hw_drops++;
				continue;
			}
			r = (struct sn_tx_result){ .wire_frames = 1 };
			count_tx(q, vh, (uint32_t)(n - SN_VNET_HDR_LEN), &r);
			continue;
		}
		segs = sn_tx_process(vh, q->scratch + SN_VNET_HDR_LEN,
				     (size_t)n - SN_VNET_HDR_LEN, dev->cfg.wire_mtu,
				     dev->off.tso, dev->off.tx_csum, &sink, &r);
		if (segs <= 0) {
			if (segs == -ENOBUFS)
				q->st.tx_hw_drops++;
			else
				q->st.tx_hw_drop_errors++;
			continue;
		}
		posted += segs;
		count_tx(q, vh, (uint32_t)(n - SN_VNET_HDR_LEN), &r);
		if (posted >= 32) {
			xsk_tx_kick(q);
			posted = 0;
		}
	}
	if (dev->cfg.wire_kind == SN_WIRE_XSK) {
		if (posted)
			xsk_tx_kick(q);
		xsk_reap_tx(q);
	}
	return done;
}

/* ---- Rx: wire to host --------------------------------------------------- */

static uint32_t rx_pick_queue(struct sn_queue *q, const uint8_t *frame,
			      uint32_t len)
{
	struct sn_dev *dev = q->dev;
	uint32_t hash;

	if (!dev->off.rxhash || sn_rss_hash(&dev->rss, frame, len, &hash))
		return q->qid;
	return dev->rss.indir[hash % SN_RSS_INDIR_SIZE] % dev->cfg.num_queues;
}

/* Hand one frame to the host stack through our tap fd, then free it.
 * CSUM_OK: the checksums were validated already (by LRO). */
void sn_rx_deliver(struct sn_queue *q, const struct sn_desc *d, int csum_ok)
{
	struct sn_dev *dev = q->dev;
	uint8_t *data = dev->region + d->addr;
	struct virtio_net_hdr_v1 local = { 0 }, *vh = &local;
	struct iovec iov[2];
	int niov = 0, c;

	if (d->flags & SN_DESC_VNET)
		vh = (void *)(data - SN_VNET_HDR_LEN);
	else
		iov[niov++] = (struct iovec){ vh, SN_VNET_HDR_LEN };
	vh->num_buffers = 0;

	if (csum_ok) {
		vh->flags |= VIRTIO_NET_HDR_F_DATA_VALID;
		q->st.rx_csum_unnecessary++;
	} else if (vh->flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) {
		q->st.rx_csum_unnecessary++;
	} else if (!dev->off.rx_csum) {
		q->st.rx_csum_none++;
	} else {
		c = sn_rx_csum(data, d->len);
		if (c > 0) {
			vh->flags |= VIRTIO_NET_HDR_F_DATA_VALID;
			q->st.rx_csum_unnecessary++;
		} else if (c == 0) {
			q->st.rx_csum_none++;
		} else {
			q->st.rx_csum_bad++;	/* delivered; the stack decides */
		}
	}
	if (d->flags & SN_DESC_VNET)
		iov[niov++] = (struct iovec){ vh, SN_VNET_HDR_LEN + d->len };
	else
		iov[niov++] = (struct iovec){ data, d->len };
	if (writev(q->host_fd, iov, niov) < 0) {
		q->st.rx_hw_drops++;
	} else {
		q->st.rx_packets++;
		q->st.rx_bytes += d->len;
	}
	sn_pool_put(q, d->addr);
}

/* A frame for our host queue: into LRO when it can merge, else up now. */
/* A frame in N fragments: gathered into the scratch buffer (free during
 * Rx), so it is checked and written like any other, then freed. */
static void rx_deliver_frags(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	struct sn_dev *dev = q->dev;
	struct virtio_net_hdr_v1 *vh = (void *)q->scratch;
	uint8_t *data = q->scratch + SN_VNET_HDR_LEN;
	uint32_t i, len = 0;
	int c = 0;

	for (i = 0; i < n; i++) {
		if (len + d[i].len <= SN_MAX_FRAME)
			memcpy(data + len, dev->region + d[i].addr, d[i].len);
		len += d[i].len;
		sn_pool_put(q, d[i].addr);
	}
	if (len > SN_MAX_FRAME) {
		q->st.rx_hw_drops++;
		return;
	}
	memset(vh, 0, sizeof(*vh));
	if (dev->off.rx_csum)
		c = sn_rx_csum(data, len);
	if (c > 0) {
		vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
		q->st.rx_csum_unnecessary++;
	} else if (c == 0) {
		q->st.rx_csum_none++;
	} else {
		q->st.rx_csum_bad++;
	}
	if (write(q->host_fd, q->scratch, SN_VNET_HDR_LEN + len) < 0) {
		q->st.rx_hw_drops++;
	} else {
		q->st.rx_packets++;
		q->st.rx_bytes += len;
	}
}

static void rx_receive(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	const struct sn_offloads *off = &q->dev->off;

	if (n > 1) {
		rx_deliver_frags(q, d, n);
		return;
	}
	if (off->hw_gro && off->rx_csum && !(d->flags & SN_DESC_VNET) &&
	    sn_lro_receive(q, d))
		return;
	sn_rx_deliver(q, d, 0);
}

/* The MAC filter: our address, broadcast, joined groups; all in promisc. */
static int rx_accept(const struct sn_rx_mode *m, const uint8_t *f, uint32_t len)
{
	uint32_t i;

	if (m->promisc || len < 6)
		return 1;
	if (!(f[0] & 1))
		return !memcmp(f, m->mac, 6);
	if (m->allmulti || m->mc_count > SN_MC_FILTER_SIZE)
		return 1;
	if ((f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xff)
		return 1;	/* broadcast */
	for (i = 0; i < m->mc_count; i++)
		if (!memcmp(f, m->mc[i], 6))
			return 1;
	return 0;
}

static void rx_drop(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		sn_pool_put(q, d[i].addr);
}

/* Route one frame (N fragments; the headers are in the first) from our
 * wire queue: deliver it here or steer it to its RSS queue. */
static void rx_steer(struct sn_queue *q, const struct sn_desc *d, uint32_t n,
		     uint32_t *woken)
{
	struct sn_dev *dev = q->dev;
	uint32_t t;

	q->st.rx_wire_packets++;
	if (!rx_accept(&dev->rx_mode, dev->region + d->addr, d->len)) {
		q->st.rx_filtered++;
		rx_drop(q, d, n);
		return;
	}
	t = rx_pick_queue(q, dev->region + d->addr, d->len);
	if (t == q->qid) {
		rx_receive(q, d, n);
		return;
	}
	if (sn_ring_push_bulk(RING(dev, handoff, q->qid, t), d, n)) {
		q->st.rx_hw_drop_overruns++;
		q->st.rx_hw_drops++;
		rx_drop(q, d, n);
		return;
	}
	q->st.rx_steered_out++;
	*woken |= 1u << (t & 31);
}

static int rx_poll_xsk(struct sn_queue *q, int budget, uint32_t *woken)
{
	struct sn_desc frags[SN_MAX_FRAGS];
	uint32_t idx, n, i, nf = 0, used = 0;
	int frames = 0;

	/* Room for a budget of frames even when some come in fragments. */
	n = xsk_ring_cons__peek(&q->rx, (uint32_t)budget * 4, &idx);
	for (i = 0; i < n && frames < budget; i++) {
		const struct xdp_desc *x = xsk_ring_cons__rx_desc(&q->rx, idx + i);
		int more = x->options & XDP_PKT_CONTD;

		if (nf == SN_MAX_FRAGS) {	/* more pieces than a frame can have */
			q->st.rx_hw_drops++;
			rx_drop(q, frags, nf);
			nf = 0;
			used = i;
		}
		frags[nf++] = (struct sn_desc){ .addr = x->addr, .len = x->len,
						.flags = more ? SN_DESC_CONTD : 0 };
		if (more)
			continue;
		rx_steer(q, frags, nf, woken);
		nf = 0;
		used = i + 1;
		frames++;
	}
	/* A frame whose last fragment is not here yet stays in the ring. */
	if (n > used)
		xsk_ring_cons__cancel(&q->rx, n - used);
	if (used)
		xsk_ring_cons__release(&q->rx, used);
	return frames;
}

static int rx_poll_tap(struct sn_queue *q, int budget, uint32_t *woken)
{
	struct sn_dev *dev = q->dev;
	int done = 0;

	while (done < budget) {
		uint64_t base = pool_get(q);
		ssize_t n;

		if (base == NO_FRAME) {
			q->st.rx_alloc_fail++;
			break;
		}
		n = read(q->wire_fd, dev->region + base, dev->cfg.frame_size);
		if (n < SN_VNET_HDR_LEN + 14) {
			q->free[q->nfree++] = base;
			if (n < 0)
				break;
			q->st.rx_hw_drops++;
			continue;
		}
		done++;
		rx_steer(q, &(struct sn_desc){ .addr = base + SN_VNET_HDR_LEN,
					       .len = (uint32_t)(n - SN_VNET_HDR_LEN),
					       .flags = SN_DESC_VNET }, 1, woken);
	}
	return done;
}

static int rx_poll_handoff(struct sn_queue *q, int budget)
{
	struct sn_dev *dev = q->dev;
	struct sn_desc frags[SN_MAX_FRAGS];
	uint32_t a;
	int done = 0;

	for (a = 0; a < dev->cfg.num_queues; a++) {
		struct sn_ring *r = RING(dev, handoff, a, q->qid);

		if (a == q->qid)
			continue;
		/* Fragments of a frame were pushed as one: all are here. */
		while (done < budget && sn_ring_pop(r, &frags[0]) == 0) {
			uint32_t nf = 1;

			while ((frags[nf - 1].flags & SN_DESC_CONTD) && nf < SN_MAX_FRAGS &&
			       sn_ring_pop(r, &frags[nf]) == 0)
				nf++;
			q->st.rx_steered_in++;
			rx_receive(q, frags, nf);
			done++;
		}
	}
	return done;
}

static void xsk_refill(struct sn_queue *q)
{
	uint32_t idx, want, got, i;

	want = xsk_prod_nb_free(&q->fill, q->dev->cfg.rx_ring_size);
	if (!want)
		return;
	if (want > q->nfree)
		pool_refill_from_rings(q);
	if (want > q->nfree)
		want = q->nfree;
	if (!want) {
		q->st.rx_alloc_fail++;
		return;
	}
	got = xsk_ring_prod__reserve(&q->fill, want, &idx);
	for (i = 0; i < got; i++)
		*xsk_ring_prod__fill_addr(&q->fill, idx + i) = pool_get(q);
	xsk_ring_prod__submit(&q->fill, got);
	if (xsk_ring_prod__needs_wakeup(&q->fill))
		recvfrom(q->wire_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

int sn_napi_poll(struct sn_dev *dev, uint32_t qid, int budget)
{
	struct sn_queue *q = &dev->q[qid];
	uint32_t woken = 0, t;
	int work;

	q->st.napi_polls++;
	pool_refill_from_rings(q);
	work = tx_poll(q, budget);
	if (dev->cfg.wire_kind == SN_WIRE_XSK)
		work += rx_poll_xsk(q, budget, &woken);
	else
		work += rx_poll_tap(q, budget, &woken);
	for (t = 0; woken && t < dev->cfg.num_queues; t++)
		if (woken & (1u << (t & 31)))
			wake(&dev->q[t]);
	work += rx_poll_handoff(q, budget);

	/* Frames we freed for other pools: wake an owner that sleeps only
	 * when it runs short, or two idle workers would wake each other. */
	for (t = 0; t < dev->cfg.num_queues; t++)
		if (t != qid &&
		    __atomic_load_n(&dev->q[t].nfree, __ATOMIC_RELAXED) <
		    dev->cfg.rx_ring_size / 2 &&
		    sn_ring_count(RING(dev, recycle, qid, t)))
			wake(&dev->q[t]);
	sn_lro_flush_all(q);
	if (dev->cfg.wire_kind == SN_WIRE_XSK)
		xsk_refill(q);
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
	if (q->xsk && xsk_cons_nb_avail(&q->rx, 1))
		return 1;
	if (q->xsk && q->nfree < q->dev->cfg.rx_ring_size / 2) {
		for (a = 0; a < dev->cfg.num_queues; a++)
			if (a != q->qid && sn_ring_count(RING(dev, recycle, a, q->qid)))
				return 1;
	}
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Sleep until there is work. RX_USECS/TX_USECS are the interrupt
 * moderation of the device: once woken by the wire (Rx) or the host (Tx),
 * wait that long before polling so that one poll takes a larger batch.
 */
int sn_napi_wait(struct sn_dev *dev, uint32_t qid, int busy_poll_us,
		 int timeout_ms, int rx_usecs, int tx_usecs)
{
	struct sn_queue *q = &dev->q[qid];
	struct pollfd pfd[3];
	uint64_t drain;
	int nfd = 0, r;

	pfd[nfd++] = (struct pollfd){ .fd = q->wake_fd, .events = POLLIN };
	pfd[nfd++] = (struct pollfd){ .fd = q->wire_fd, .events = POLLIN };
	if (!q->tx_stopped)
		pfd[nfd++] = (struct pollfd){ .fd = q->host_fd, .events = POLLIN };
	if (q->tx_stopped || q->tx_outstanding)
		timeout_ms = 1;	/* completions are due: look again soon */

	if (busy_poll_us > 0) {
		uint64_t end = now_us() + (uint64_t)busy_poll_us;

		q->st.napi_busy_polls++;
		do {
			if (pending(q) || poll(pfd, nfd, 0) > 0)
				return 1;
		} while (now_us() < end);
	}

	atomic_store(&q->sleeping, 1);
	/* Pairs with wake(): a producer that missed the flag left work we see. */
	if (pending(q)) {
		atomic_store(&q->sleeping, 0);
		return 1;
	}
	q->st.napi_sleeps++;
	r = poll(pfd, nfd, timeout_ms);
	atomic_store(&q->sleeping, 0);
	if (pfd[0].revents & POLLIN)
		(void)!read(q->wake_fd, &drain, sizeof(drain));
	if (r > 0) {
		int defer = 0;

		q->st.napi_wakeups++;
		if (pfd[1].revents & POLLIN)
			defer = rx_usecs;
		if (nfd > 2 && (pfd[2].revents & POLLIN) && tx_usecs > defer)
			defer = tx_usecs;
		if (defer > 0) {
			struct timespec ts = { 0, (long)defer * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	return r > 0;
}
