// SPDX-License-Identifier: GPL-2.0
/*
 * Rx, wire to host: the wire's RX metadata (arrival stamp, hash, stripped
 * VLAN tag), the MAC filter, RSS steering to the right queue (through the
 * handoff rings when it is another's), checksum validation, hardware GRO,
 * the write to the host's tap queue, and the latency from wire to host.
 */
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "sn_dev.h"
#include "sn_util.h"
#include "softena_meta.h"

/* aRFS: the queue on the CPU that reads FRAME's flow, or -1 for RSS to pick. */
static int rx_arfs_queue(const struct sn_dev *dev, const uint8_t *frame, uint32_t len)
{
	uint32_t hash, entry;
	int t;

	if (sn_rfs_frame_hash(frame, len, dev->rfs.seed, &hash))
		return -1;
	/* The recorder writes the slot from another CPU at any time: one load. */
	entry = __atomic_load_n(&dev->rfs_table[(hash & SOFTENA_RFS_MASK) * SOFTENA_RFS_SLOT_WORDS],
				__ATOMIC_RELAXED);
	t = softena_rfs_queue(&dev->rfs, entry, hash);
	return t < (int)dev->cfg.num_queues ? t : -1;
}

static uint32_t rx_pick_queue(struct sn_queue *q, const uint8_t *frame,
			      uint32_t len, const struct softena_rx_meta *meta)
{
	struct sn_dev *dev = q->dev;
	uint32_t hash, flows = __atomic_load_n(&dev->wire_rss_flows, __ATOMIC_RELAXED);
	int r;

	if (dev->rfs.enabled) {
		r = rx_arfs_queue(dev, frame, len);
		if (r >= 0) {
			q->st.rx_arfs_steered++;
			return (uint32_t)r;
		}
	}
	if (!dev->off.rxhash)
		return q->qid;
	if (meta && (meta->flags & SOFTENA_META_HASH) && flows)
		r = sn_rss_hash_wire(&dev->rss, flows, frame, len, meta->rx_hash,
				     meta->rx_hash_type, &hash);
	else
		r = sn_rss_hash(&dev->rss, frame, len, &hash);
	if (r < 0)
		return q->qid;
	q->st.rx_wire_hash_reused += r;
	return dev->rss.indir[hash % SN_RSS_INDIR_SIZE] % dev->cfg.num_queues;
}

/* Wire arrival to now (just after the tap write), into the histogram. */
static void rx_latency(struct sn_queue *q, uint64_t stamp_ns)
{
	uint64_t now, ns, us;
	int b = 0;

	if (!stamp_ns)
		return;
	now = sn_now_ns();
	ns = now > stamp_ns ? now - stamp_ns : 0;
	us = (ns + 999) / 1000;
	if (us > 1)	/* the bucket whose bound 2^b us is the first >= us */
		b = 64 - __builtin_clzll(us - 1);
	if (b >= SN_LATENCY_BUCKETS)
		b = SN_LATENCY_BUCKETS - 1;
	q->st.rx_latency_us[b]++;
	q->st.rx_latency_sum_ns += ns;
}

/* Count a checksum verdict: 1 good (the frame is marked for the host),
 * 0 nothing to check, -1 bad. */
static void rx_csum_count(struct sn_queue *q, int c)
{
	if (c > 0)
		q->st.rx_csum_unnecessary++;
	else if (c == 0)
		q->st.rx_csum_none++;
	else
		q->st.rx_csum_bad++;	/* delivered; the stack decides */
}

/* Validate a frame's checksums, mark a good one in its vnet header as the
 * host takes it, count the verdict. FRAME_SUM: as sn_rx_csum_check_mark(). */
static void rx_check_csum(struct sn_queue *q, struct virtio_net_hdr_v1 *vh,
			  uint8_t *data, uint32_t len, const uint32_t *frame_sum)
{
	rx_csum_count(q, q->dev->off.rx_csum ? sn_rx_csum_check_mark(vh, data, len, frame_sum) : 0);
}

/* Hand one frame to the host stack through our tap fd, then free it.
 * CSUM_OK: the checksums were validated already (by hardware GRO). */
static void rx_deliver(struct sn_queue *q, const struct sn_desc *d, int csum_ok)
{
	struct sn_dev *dev = q->dev;
	uint8_t *data = dev->region + d->addr;
	struct virtio_net_hdr_v1 local = { 0 }, *vh = &local;
	struct iovec iov[2];
	int niov = 0;

	if (d->flags & SN_DESC_VNET)
		vh = (void *)(data - SN_VNET_HDR_LEN);
	else
		iov[niov++] = (struct iovec){ vh, SN_VNET_HDR_LEN };
	vh->num_buffers = 0;

	if (csum_ok) {
		sn_rx_csum_mark_verified(vh, data, d->len);
		rx_csum_count(q, 1);
	} else if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		q->st.rx_csum_unnecessary++;
	} else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		/* the wire's own verdict (a tap wire's reader is told it),
		 * put as the host's tap takes it while Rx checksumming is on */
		if (q->dev->off.rx_csum && vh->gso_type == VIRTIO_NET_HDR_GSO_NONE)
			sn_rx_csum_mark_verified(vh, data, d->len);
		q->st.rx_csum_unnecessary++;
	} else {
		rx_check_csum(q, vh, data, d->len, NULL);
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
		rx_latency(q, d->stamp_ns);
	}
	sn_pool_put(q, d->addr);
}

/* What hardware GRO hands up: a frame it held alone, or a merged one. */
static void rx_gro_deliver(void *ctx, const struct sn_hw_gro_frame *f)
{
	struct sn_queue *q = ctx;
	struct sn_dev *dev = q->dev;
	struct iovec iov[2 + SN_HW_GRO_MAX_SEGS];
	int i;

	if (f->nsegs == 1) {
		rx_deliver(q, &(struct sn_desc){ .addr = f->addrs[0], .len = f->len,
					       .stamp_ns = f->stamp_ns }, 1);
		return;
	}
	iov[0] = (struct iovec){ (void *)&f->vh, SN_VNET_HDR_LEN };
	iov[1] = (struct iovec){ (void *)f->hdr, f->hlen };
	for (i = 0; i < f->nsegs; i++)
		iov[2 + i] = (struct iovec){ dev->region + f->addrs[i] + f->hlen, f->lens[i] };
	if (writev(q->host_fd, iov, 2 + f->nsegs) < 0) {
		q->st.rx_hw_drops++;
	} else {
		q->st.rx_packets++;
		q->st.rx_bytes += f->len;
		q->st.rx_csum_unnecessary++;
		q->st.rx_hw_gro_packets++;
		q->st.rx_hw_gro_bytes += f->len;
		q->st.rx_hw_gro_wire_packets += f->nsegs;
		q->st.rx_hw_gro_wire_bytes += f->len + (uint32_t)(f->nsegs - 1) * f->hlen;
		rx_latency(q, f->stamp_ns);
	}
	for (i = 0; i < f->nsegs; i++)
		sn_pool_put(q, f->addrs[i]);
}

void sn_rx_init(struct sn_queue *q)
{
	sn_hw_gro_init(&q->gro, q->dev->region, rx_gro_deliver, q);
}

/* End of a NAPI poll: coalesced frames go up, unless gro-flush-timeout
 * (HOLD_NS) lets an open session wait for more of its flow over the next
 * polls. Returns when the oldest held session falls due, 0 if none is held. */
uint64_t sn_rx_flush(struct sn_queue *q, uint64_t hold_ns)
{
	return sn_hw_gro_flush_due(&q->gro, sn_now_ns(), hold_ns);
}

/* A frame in N fragments: gathered into the scratch buffer (free during
 * Rx), so it is checked and written like any other, then freed. With Rx
 * checksum on, the gather sums what it copies, so checking the frame does
 * not read its payload again. */
static void rx_deliver_frags(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	struct sn_dev *dev = q->dev;
	struct virtio_net_hdr_v1 *vh = (void *)q->scratch;
	uint8_t *data = q->scratch + SN_VNET_HDR_LEN;
	struct iovec frags[SN_MAX_FRAGS];
	uint32_t i, len = 0;

	for (i = 0; i < n; i++) {
		frags[i] = (struct iovec){ dev->region + d[i].addr, d[i].len };
		len += d[i].len;
	}
	if (len > SN_MAX_FRAME) {
		q->st.rx_hw_drops++;
		sn_rx_drop(q, d, n);
		return;
	}
	memset(vh, 0, sizeof(*vh));
	if (dev->off.rx_csum) {
		uint32_t sum = sn_csum_gather(data, frags, n);

		rx_check_csum(q, vh, data, len, &sum);
	} else {
		size_t off = 0;

		for (i = 0; i < n; off += frags[i].iov_len, i++)
			memcpy(data + off, frags[i].iov_base, frags[i].iov_len);
		rx_csum_count(q, 0);
	}
	sn_rx_drop(q, d, n);	/* copied out: the pieces go back to the pool */
	if (write(q->host_fd, q->scratch, SN_VNET_HDR_LEN + len) < 0) {
		q->st.rx_hw_drops++;
	} else {
		q->st.rx_packets++;
		q->st.rx_bytes += len;
		rx_latency(q, d[0].stamp_ns);
	}
}

/* A frame for our host queue: into hardware GRO when it can merge, else up now. */
static void rx_receive(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	const struct sn_offloads *off = &q->dev->off;

	if (n > 1) {
		rx_deliver_frags(q, d, n);
		return;
	}
	/* A restored tag goes up in-band, and a tagged GSO frame is not
	 * something to hand tun's virtio_net_hdr_to_skb(): tagged frames go
	 * up one by one (GRO's same_flow() would keep tags apart anyway). */
	if (off->hw_gro && off->rx_csum && !(d->flags & (SN_DESC_VNET | SN_DESC_VLAN)) &&
	    sn_hw_gro_receive(&q->gro, d))
		return;
	rx_deliver(q, d, 0);
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

void sn_rx_drop(struct sn_queue *q, const struct sn_desc *d, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		sn_pool_put(q, d[i].addr);
}

/*
 * The wire's metadata of a frame taken off our wire queue: its arrival
 * stamp, counted per wire queue (it must never go back on one queue), and
 * travelling with the descriptor to whichever queue delivers it.
 */
static void rx_meta_stamp(struct sn_queue *q, struct sn_desc *d,
			  const struct softena_rx_meta *meta)
{
	if (meta->flags & SOFTENA_META_HASH)
		q->st.rx_wire_hash++;
	if (meta->flags & SOFTENA_META_TIMESTAMP)
		q->st.rx_hw_tstamp++;
	if (meta->xdp_timestamp < q->rx_xdp_ns)
		q->st.rx_xdp_tstamp_backwards++;
	else
		__atomic_store_n(&q->rx_xdp_ns, meta->xdp_timestamp, __ATOMIC_RELAXED);
	d->stamp_ns = meta->xdp_timestamp;
}

/*
 * The wire stripped the frame's VLAN tag into its descriptor (the kernel's
 * hwaccel tag, what bpf_xdp_metadata_rx_vlan_tag reports); the host port
 * has no such field, so the tag goes back in-band: the 12 MAC bytes move 4
 * bytes into the headroom and the tag fills the gap, as
 * __vlan_hwaccel_push_inside() does. Only buffers of the AF_XDP wire come
 * here (XDP_PACKET_HEADROOM before the data, never a vnet header).
 */
static void rx_restore_vlan(struct sn_queue *q, struct sn_desc *d,
			    const struct softena_rx_meta *meta)
{
	uint8_t *data = q->dev->region + d->addr;
	uint16_t tag[2] = { meta->vlan_proto, htons(meta->vlan_tci) };

	if ((d->flags & SN_DESC_VNET) || d->addr % q->dev->cfg.frame_size < 4 || d->len < 12)
		return;
	memmove(data - 4, data, 12);
	memcpy(data + 8, tag, 4);
	d->addr -= 4;
	d->len += 4;
	d->flags |= SN_DESC_VLAN;
	q->st.rx_vlan_tag_restored++;
}

/* Route one frame (N fragments; the headers are in the first) from our
 * wire queue, with the wire's META (NULL: none): deliver it here or steer
 * it to its RSS queue. */
void sn_rx_steer(struct sn_queue *q, struct sn_desc *d, uint32_t n,
		 const struct softena_rx_meta *meta, uint32_t *woken)
{
	struct sn_dev *dev = q->dev;
	uint32_t t;

	q->st.rx_wire_packets++;
	if (meta)
		rx_meta_stamp(q, d, meta);
	if (atomic_load_explicit(&q->faults, memory_order_relaxed) & SN_FAULT_CORRUPT_RX)
		dev->region[d->addr + d->len - 1] ^= 0x5a;	/* the last byte: payload, not headers */
	if (!rx_accept(&dev->rx_mode, dev->region + d->addr, d->len)) {
		q->st.rx_filtered++;
		sn_rx_drop(q, d, n);
		return;
	}
	if (meta && (meta->flags & SOFTENA_META_VLAN))
		rx_restore_vlan(q, d, meta);
	t = rx_pick_queue(q, dev->region + d->addr, d->len, meta);
	if (t == q->qid) {
		rx_receive(q, d, n);
		return;
	}
	if (sn_ring_push_bulk(RING(dev, handoff, q->qid, t), d, n)) {
		q->st.rx_hw_drop_overruns++;
		q->st.rx_hw_drops++;
		sn_rx_drop(q, d, n);
		return;
	}
	q->st.rx_steered_out++;
	*woken |= 1u << (t & 31);
}

int sn_rx_poll_handoff(struct sn_queue *q, int budget)
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
