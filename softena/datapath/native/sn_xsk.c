// SPDX-License-Identifier: GPL-2.0
/*
 * The AF_XDP wire: the XDP program (libbpf), one socket per queue over the
 * shared UMEM (libxdp), and the ring work of both directions: Tx
 * descriptors (chained for jumbo frames, with an LLQ push), completions,
 * Rx descriptors with the RX metadata the XDP program put before each
 * frame, and the fill ring; and the wire driver's RSS, as ethtool reads it.
 *
 * Every ring is bound with XDP_USE_NEED_WAKEUP: a syscall goes to the
 * kernel only when the ring's flag asks for one (copy mode always sets the
 * Tx ring's, and never the fill ring's: only zero-copy drivers set it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Linux 6.17's uapi; Debian 12's headers predate it. */
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET	9
#endif

#include "sn_bpfobj.h"
#include "sn_dev.h"
#include "sn_util.h"
#include "softena_meta.h"

/* Device-bound: the only way to call the RX metadata kfuncs. */
static int xdp_bind_dev(struct bpf_object *obj, struct bpf_program *prog, void *arg)
{
	bpf_program__set_ifindex(prog, *(int *)arg);
	return bpf_program__set_flags(prog, bpf_program__flags(prog) | BPF_F_XDP_DEV_BOUND_ONLY);
}

int sn_xdp_load(const char *obj_path, int ifindex, int native,
		int *link_fd, int *xskmap_fd, int *missed_fd, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	struct bpf_object *obj;
	struct bpf_program *use;
	const char *want = native ? "softena_wire_rx" : "softena_wire_rx_generic";
	int fd, e;

	e = sn_bpf_load_one(obj_path, want, "XDP", native ? xdp_bind_dev : NULL, &ifindex,
			    &obj, &use, err, errlen);
	if (e)
		return e;
	opts.flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	/* A link, not a netlink attachment: the kernel detaches it when the
	 * last fd closes, so even a crashed softena leaves no program behind. */
	fd = bpf_link_create(bpf_program__fd(use), ifindex, BPF_XDP, &opts);
	if (fd < 0) {
		e = errno;
		sn_set_err(err, errlen, "cannot attach the XDP program: %s", e);
		bpf_object__close(obj);
		return -e;
	}
	*link_fd = fd;
	*xskmap_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "xsks_map")));
	*missed_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "rx_missed")));
	/* The link and the map fd keep program and map alive. */
	bpf_object__close(obj);
	return 0;
}

/* The rx_missed map summed over queues and CPUs: one batched lookup, since
 * every counter read (each scrape, each second of `top`) comes here. */
int64_t sn_xdp_missed(int missed_fd)
{
	int ncpu = libbpf_num_possible_cpus();
	uint32_t keys[SOFTENA_MAX_QUEUES], count = SOFTENA_MAX_QUEUES, out_batch, i;
	uint64_t *values, sum = 0;
	int e;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	values = malloc(sizeof(*values) * SOFTENA_MAX_QUEUES * (size_t)ncpu);
	if (!values)
		return -ENOMEM;
	/* An array answers whole in one call; ENOENT says the batch ended. */
	e = bpf_map_lookup_batch(missed_fd, NULL, &out_batch, keys, values, &count, &opts) ? -errno : 0;
	if (!e || e == -ENOENT) {
		for (i = 0; i < count * (uint32_t)ncpu; i++)
			sum += values[i];
		e = count == SOFTENA_MAX_QUEUES ? 0 : -EIO;
	}
	free(values);
	return e ? e : (int64_t)sum;
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
	unsigned int budget;

	if (qid >= dev->cfg.num_queues || dev->cfg.wire_kind != SN_WIRE_XSK) {
		sn_set_err(err, errlen, "invalid queue: %s", EINVAL);
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
			sn_set_err(err, errlen, "cannot register the UMEM: %s", -e);
			dev->umem = NULL;
			return e;
		}
	}
	/* The first socket takes the rings made with the UMEM. */
	e = xsk_socket__create_shared(&q->xsk, ifname, qid, dev->umem, &q->rx,
				      &q->tx, qid == 0 ? &dev->umem_fill : &q->fill,
				      qid == 0 ? &dev->umem_comp : &q->comp, &xcfg);
	if (e) {
		sn_set_err(err, errlen, "cannot create the AF_XDP socket: %s", -e);
		q->xsk = NULL;
		return e;
	}
	if (qid == 0) {
		q->fill = dev->umem_fill;
		q->comp = dev->umem_comp;
	}
	fd = xsk_socket__fd(q->xsk);
	/* A copy-mode socket sends 32 descriptors a sendto() unless told
	 * more; a kick posts a whole TSO frame (45 segments at MTU 1500), so
	 * let one call take the ring. Kernels before 6.17 refuse the option
	 * and keep 32: still correct, one call more per frame. */
	budget = dev->cfg.tx_ring_size;
	(void)setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget));
	if (bpf_map_update_elem(xskmap_fd, &key, &fd, BPF_ANY)) {
		e = errno;
		sn_set_err(err, errlen, "cannot insert the socket in the XSKMAP: %s", e);
		return -e;
	}
	q->wire_fd = fd;
	q->host_fd = host_fd;
	q->xskmap_fd = xskmap_fd;
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

struct xsk_tx_ctx {
	struct sn_queue *q;
	uint64_t frames[SN_MAX_FRAGS];	/* taken from the pool for this frame */
	uint32_t nframes;
};

/*
 * LLQ (ENA's low-latency queue): the first bytes of the frame travel with
 * its descriptor into the ring entry in device memory, and the device sends
 * them from there, the rest from host memory. Here the device's memory is a
 * per-queue ring and the push is the copy into it; AF_XDP itself can only
 * send from the UMEM, where the frame stays whole.
 */
static void llq_push(struct sn_queue *q, uint32_t slot, const uint8_t *frame, uint32_t len)
{
	uint8_t *entry = q->llq + (size_t)(slot & (q->dev->cfg.tx_ring_size - 1)) * SN_LLQ_ENTRY_SIZE;
	uint32_t n = len < q->dev->cfg.llq_header ? len : q->dev->cfg.llq_header;

	memcpy(entry, frame, n);
	q->st.tx_llq_push++;
	q->st.tx_llq_push_bytes += n;
}

/* Take the pool's frames for a wire frame of NEED bytes, all or none; how
 * many, or 0. */
static uint32_t xsk_tx_take(struct xsk_tx_ctx *c, size_t need)
{
	struct sn_queue *q = c->q;
	uint32_t fs = q->dev->cfg.frame_size;
	uint32_t chunks = (uint32_t)((need + fs - 1) / fs);

	if (chunks > 1 && (!q->dev->cfg.multi_buffer || need > SN_MAX_FRAME || chunks > SN_MAX_FRAGS))
		return 0;
	if (xsk_prod_nb_free(&q->tx, chunks) < chunks)
		return 0;
	for (c->nframes = 0; c->nframes < chunks; c->nframes++) {
		c->frames[c->nframes] = sn_pool_get(q);
		if (c->frames[c->nframes] == NO_FRAME) {
			while (c->nframes)
				sn_pool_put(q, c->frames[--c->nframes]);
			return 0;
		}
	}
	return chunks;
}

/* A wire frame goes straight into a UMEM frame; a jumbo one asked for
 * whole is built in the bounce buffer and leaves as several descriptors
 * (multi-buffer). */
static uint8_t *xsk_tx_alloc(void *ctx, size_t need)
{
	struct xsk_tx_ctx *c = ctx;
	uint32_t chunks = xsk_tx_take(c, need);

	if (!chunks)
		return NULL;
	return chunks > 1 ? c->q->bounce : c->q->dev->region + c->frames[0];
}

/* A jumbo TSO segment is written in place, a UMEM frame per piece: the
 * bounce buffer's second copy of every byte is gone. */
static uint8_t *xsk_tx_alloc_pieces(void *ctx, size_t need)
{
	struct xsk_tx_ctx *c = ctx;

	return xsk_tx_take(c, need) ? c->q->dev->region + c->frames[0] : NULL;
}

static uint8_t *xsk_tx_piece(void *ctx, uint32_t k)
{
	struct xsk_tx_ctx *c = ctx;

	return c->q->dev->region + c->frames[k];
}

static void xsk_tx_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	struct xsk_tx_ctx *c = ctx;
	struct sn_queue *q = c->q;
	uint32_t fs = q->dev->cfg.frame_size, chunks = c->nframes, idx = 0, k;

	xsk_ring_prod__reserve(&q->tx, chunks, &idx);
	for (k = 0; k < chunks; k++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + k);
		uint32_t part = sn_piece_len(len, fs, k);

		if (buf == q->bounce)
			memcpy(q->dev->region + c->frames[k], buf + (size_t)k * fs, part);
		d->addr = c->frames[k];
		d->len = part;
		d->options = k + 1 < chunks ? XDP_PKT_CONTD : 0;
	}
	if (q->dev->cfg.llq_header) {
		const struct xdp_desc *first = xsk_ring_prod__tx_desc(&q->tx, idx);

		llq_push(q, idx, q->dev->region + first->addr, first->len);
	}
	xsk_ring_prod__submit(&q->tx, chunks);
	if (!q->tx_outstanding)	/* the completion clock starts with the first in flight */
		q->tx_cmpl_stamp_ns = sn_now_ns();
	q->tx_outstanding += chunks;
}

static void xsk_kick(struct sn_queue *q)
{
	int tries = 64;

	if (!xsk_ring_prod__needs_wakeup(&q->tx))
		return;
	q->st.tx_xsk_need_wakeup_set++;
	/* Copy-mode sockets send a bounded batch per call. */
	while (tries-- > 0) {
		q->st.tx_xsk_wakeup_request++;
		if (sendto(q->wire_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			break;
		if (errno != EAGAIN && errno != EBUSY)
			break;
		if (!xsk_ring_prod__needs_wakeup(&q->tx))
			break;
	}
}

static void xsk_reap(struct sn_queue *q)
{
	uint32_t idx, n, i;

	if (atomic_load_explicit(&q->faults, memory_order_relaxed) & SN_FAULT_TX_CMPL_STALL)
		return;
	n = xsk_ring_cons__peek(&q->comp, q->dev->cfg.tx_ring_size, &idx);
	for (i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, idx + i);

		/* The device names a buffer it was never given: the ring is
		 * corrupt, and only a reset puts it right (INV_TX_REQ_ID). */
		if (addr >= q->dev->region_size) {
			q->st.tx_bad_req_id++;
			continue;
		}
		sn_pool_put(q, addr);
	}
	if (n) {
		xsk_ring_cons__release(&q->comp, n);
		q->tx_outstanding -= n;
		q->tx_completed += n;
		q->tx_cmpl_stamp_ns = sn_now_ns();
	}
}

/* Room on the Tx ring and in the pool for one worst-case host frame? */
static int xsk_tx_room(struct sn_queue *q)
{
	uint32_t need = q->dev->tx_need;

	if (xsk_prod_nb_free(&q->tx, need) >= need && sn_pool_can_give(q, need))
		return 1;
	xsk_reap(q);
	return xsk_prod_nb_free(&q->tx, need) >= need && sn_pool_can_give(q, need);
}

/* Run the Tx offload engine on one host frame, straight onto the ring. */
static int xsk_tx_frame(struct sn_queue *q, const struct virtio_net_hdr_v1 *vh,
			const uint8_t *frame, size_t len, struct sn_tx_result *res)
{
	struct xsk_tx_ctx ctx = { .q = q };
	struct sn_tx_sink sink = { xsk_tx_alloc, xsk_tx_commit, &ctx, xsk_tx_alloc_pieces,
				   xsk_tx_piece, q->dev->cfg.frame_size };

	return sn_tx_process(vh, frame, len, q->dev->cfg.wire_mtu, q->dev->off.tso,
			     q->dev->off.tx_csum, &sink, res);
}

/* The RX metadata the XDP program stored in front of the frame at ADDR, if
 * it is there: the headroom holds it and its magic is right. */
static const struct softena_rx_meta *xsk_rx_meta(struct sn_queue *q, uint64_t addr,
						 struct softena_rx_meta *m)
{
	if (addr % q->dev->cfg.frame_size < sizeof(*m))
		return NULL;
	/* data - 32 need not be 8-byte aligned: copy, do not cast. */
	memcpy(m, q->dev->region + addr - sizeof(*m), sizeof(*m));
	return m->magic == SOFTENA_META_MAGIC ? m : NULL;
}

/*
 * What the kernel dropped on this socket for want of room are the device's
 * Rx overruns: frames that found its Rx ring full (the worker fell behind)
 * or its fill ring empty. The socket counts them (XDP_STATISTICS); they go
 * into rx-hw-drop-overruns and rx-hw-drops as they appear. Read every 256th
 * poll, before the worker sleeps, and before the socket goes: not at every
 * empty poll, where a busy-polling worker would pay the syscall for nothing.
 * What a flood overran is counted by the time its worker goes idle.
 */
static void xsk_read_overruns(struct sn_queue *q)
{
	struct xdp_statistics xs;
	socklen_t len = sizeof(xs);
	uint64_t seen, d;

	if (!q->xsk || getsockopt(q->wire_fd, SOL_XDP, XDP_STATISTICS, &xs, &len))
		return;
	seen = xs.rx_ring_full + xs.rx_fill_ring_empty_descs;
	if (seen <= q->xsk_overruns_seen)
		return;
	d = seen - q->xsk_overruns_seen;
	q->xsk_overruns_seen = seen;
	q->st.rx_hw_drop_overruns += d;
	q->st.rx_hw_drops += d;
}

static int xsk_rx_poll(struct sn_queue *q, int budget, uint32_t *woken)
{
	struct sn_desc frags[SN_MAX_FRAGS];
	struct softena_rx_meta mbuf;
	const struct softena_rx_meta *meta = NULL;
	uint32_t idx, n, i, nf = 0, used = 0;
	int frames = 0;

	/* Room for a budget of frames even when some come in fragments. */
	n = xsk_ring_cons__peek(&q->rx, (uint32_t)budget * 4, &idx);
	for (i = 0; i < n && frames < budget; i++) {
		const struct xdp_desc *x = xsk_ring_cons__rx_desc(&q->rx, idx + i);
		int more = x->options & XDP_PKT_CONTD;

		if (x->addr >= q->dev->region_size ||
		    x->addr % q->dev->cfg.frame_size + x->len > q->dev->cfg.frame_size) {
			q->st.rx_bad_req_id++;	/* not a frame we lent: INV_RX_REQ_ID */
			if (nf)			/* and the frame it belonged to */
				q->st.rx_hw_drops++;
			sn_rx_drop(q, frags, nf);
			nf = 0;
			used = i + 1;
			continue;
		}

		q->fill_lent--;		/* the wire gave back a frame we lent */
		sn_pool_check_lent(q->dev, x->addr, "an Rx descriptor");
		if (nf == SN_MAX_FRAGS) {	/* more pieces than a frame can have */
			q->st.rx_hw_drops++;
			sn_rx_drop(q, frags, nf);
			nf = 0;
			used = i;
		}
		/* The metadata is in front of the first buffer only. */
		if (!nf)
			meta = xsk_rx_meta(q, x->addr, &mbuf);
		frags[nf++] = (struct sn_desc){ .addr = x->addr, .len = x->len,
						.flags = more ? SN_DESC_CONTD : 0 };
		if (more)
			continue;
		sn_rx_steer(q, frags, nf, meta, woken);
		nf = 0;
		used = i + 1;
		frames++;
	}
	/* A frame whose last fragment is not here yet stays in the ring,
	 * and its fragments lent to the wire until it comes whole. */
	q->fill_lent += nf;
	if (n > used)
		xsk_ring_cons__cancel(&q->rx, n - used);
	if (used)
		xsk_ring_cons__release(&q->rx, used);
	if (!(++q->xsk_rx_polls & 255))
		xsk_read_overruns(q);
	return frames;
}

/* The fill ring asks for a syscall when the driver ran out of buffers
 * (zero-copy drivers only): recvfrom() has it look at the ring again. */
static void xsk_fill_wakeup(struct sn_queue *q)
{
	if (!xsk_ring_prod__needs_wakeup(&q->fill))
		return;
	q->st.rx_xsk_need_wakeup_set++;
	q->st.rx_xsk_wakeup_request++;
	recvfrom(q->wire_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

/* Keep the fill ring full, from the pool, in batches of a cache refill. */
static void xsk_refill(struct sn_queue *q)
{
	uint64_t frames[SN_PP_CACHE_REFILL];
	uint32_t idx = 0, want, got, i;
	int short_of = 0;

	/* Kept full: every free slot gets a buffer, at every poll. */
	want = xsk_prod_nb_free(&q->fill, q->dev->cfg.rx_ring_size);
	if (!want) {
		xsk_fill_wakeup(q);
		return;
	}
	if (atomic_load_explicit(&q->faults, memory_order_relaxed) & SN_FAULT_RX_ALLOC) {
		q->st.rx_alloc_fail++;
		return;
	}
	while (want && !short_of) {
		for (got = 0; got < want && got < SN_PP_CACHE_REFILL; got++) {
			frames[got] = sn_pool_get(q);
			if (frames[got] == NO_FRAME) {
				short_of = 1;
				break;
			}
		}
		if (!got)
			break;
		xsk_ring_prod__reserve(&q->fill, got, &idx);	/* nb_free said there is room */
		for (i = 0; i < got; i++)
			*xsk_ring_prod__fill_addr(&q->fill, idx + i) = frames[i];
		xsk_ring_prod__submit(&q->fill, got);
		q->fill_lent += got;
		want -= got;
	}
	if (short_of)
		q->st.rx_alloc_fail++;
	atomic_store_explicit(&q->pool.starving, short_of, memory_order_relaxed);
	xsk_fill_wakeup(q);
}

/* Frames on the Rx ring, or our fill ring short of frames while others'
 * returns wait in our pool's ring. */
static int xsk_rx_pending(struct sn_queue *q)
{
	if (xsk_cons_nb_avail(&q->rx, 1))
		return 1;
	return sn_pool_returns_awaited(q);
}

/* The kernel has our frames on the fill ring and the ones it has not yet
 * completed from the Tx ring. */
static uint32_t xsk_held(struct sn_queue *q)
{
	return q->fill_lent + q->tx_outstanding;
}

/* ---- the wire driver's RSS, as ethtool -x and -n rx-flow-hash show it ---- */

static int ethtool_ioctl(int fd, const char *ifname, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr) ? -errno : 0;
}

static int read_rxfh(int fd, const char *ifname, struct sn_rss_wire *w)
{
	struct ethtool_rxfh head = { .cmd = ETHTOOL_GRSSH }, *full;
	size_t size;
	int e;

	/* First the sizes, then the table and key, as ethtool's get_rxfh. */
	e = ethtool_ioctl(fd, ifname, &head);
	if (e)
		return e;
	size = sizeof(*full) + head.indir_size * sizeof(uint32_t) + head.key_size;
	full = calloc(1, size);
	if (!full)
		return -ENOMEM;
	full->cmd = ETHTOOL_GRSSH;
	full->indir_size = head.indir_size;
	full->key_size = head.key_size;
	e = ethtool_ioctl(fd, ifname, full);
	if (!e) {
		w->hfunc = full->hfunc;
		w->key_size = full->key_size;
		memcpy(w->key, (uint8_t *)&full->rss_config[full->indir_size],
		       full->key_size < sizeof(w->key) ? full->key_size : sizeof(w->key));
	}
	free(full);
	return e;
}

int sn_wire_rss_read(const char *ifname, struct sn_rss_wire *w)
{
	/* In SN_FLOW_* order. */
	static const uint32_t flow_types[SN_FLOW_MAX] = {
		TCP_V4_FLOW, UDP_V4_FLOW, IPV4_FLOW, TCP_V6_FLOW, UDP_V6_FLOW, IPV6_FLOW,
	};
	int fd, e, f;

	memset(w, 0, sizeof(*w));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		w->error = errno;
		return w->error;
	}
	e = read_rxfh(fd, ifname, w);
	for (f = 0; !e && f < SN_FLOW_MAX; f++) {
		struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXFH, .flow_type = flow_types[f] };

		e = ethtool_ioctl(fd, ifname, &nfc);
		w->fields[f] = (uint32_t)nfc.data;
	}
	close(fd);
	w->error = -e;
	return w->error;
}

/*
 * Sockets about to go: take them out of the XSKMAP first, so that frames
 * arriving from now on are the wire program's to count (rx_missed), then
 * count what each still holds. A redirect that looked a socket up before
 * the delete lands in its ring before the NAPI poll running it ends, and a
 * poll is an RCU read-side section: MEMBARRIER_CMD_GLOBAL waits for every
 * one of them (synchronize_rcu()). Where the kernel refuses it (nohz_full),
 * wait until every producer has stood still for 2 ms (100 ms at most).
 * Then the frames between consumer and producer are the queue's, never
 * taken (a multi-buffer frame is one: its last descriptor lacks
 * XDP_PKT_CONTD).
 */
static void xsk_quiesce_rx(struct sn_dev *dev)
{
	uint32_t i, prod[SN_MAX_QUEUES] = { 0 };
	int still = 0, waited = 0, moved;

	for (i = 0; i < dev->cfg.num_queues; i++) {
		struct sn_queue *q = &dev->q[i];
		uint32_t key = q->qid;

		if (q->xsk && q->xskmap_fd >= 0)
			bpf_map_delete_elem(q->xskmap_fd, &key);
	}
	if (!syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		return;
	while (still < 4 && waited++ < 200) {
		usleep(500);
		for (i = 0, moved = 0; i < dev->cfg.num_queues; i++) {
			struct sn_queue *q = &dev->q[i];
			uint32_t p = q->xsk ? __atomic_load_n(q->rx.producer, __ATOMIC_ACQUIRE) : 0;

			moved |= p != prod[i];
			prod[i] = p;
		}
		still = moved ? 0 : still + 1;
	}
}

static void xsk_count_left(struct sn_queue *q)
{
	uint32_t idx, last = __atomic_load_n(q->rx.producer, __ATOMIC_ACQUIRE), left = 0;

	for (idx = *q->rx.consumer; idx != last; idx++)
		if (!(xsk_ring_cons__rx_desc(&q->rx, idx)->options & XDP_PKT_CONTD))
			left++;
	q->st.rx_wire_missed += left;
	q->st.rx_hw_drops += left;
	xsk_read_overruns(q);
}

static void xsk_destroy(struct sn_dev *dev)
{
	uint32_t i;

	xsk_quiesce_rx(dev);	/* the workers are stopped: the queues are ours to write */
	for (i = 0; i < dev->cfg.num_queues; i++)
		if (dev->q[i].xsk) {
			xsk_count_left(&dev->q[i]);
			xsk_socket__delete(dev->q[i].xsk);
			dev->q[i].xsk = NULL;
		}
	if (dev->umem)
		xsk_umem__delete(dev->umem);
	dev->umem = NULL;
}

const struct sn_wire_ops sn_xsk_wire = {
	.tx_room = xsk_tx_room,
	.tx_frame = xsk_tx_frame,
	.tx_kick = xsk_kick,
	.tx_reap = xsk_reap,
	.rx_poll = xsk_rx_poll,
	.rx_refill = xsk_refill,
	.rx_pending = xsk_rx_pending,
	.rx_idle = xsk_read_overruns,
	.held = xsk_held,
	.destroy = xsk_destroy,
};
