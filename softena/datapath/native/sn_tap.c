// SPDX-License-Identifier: GPL-2.0
/*
 * The tap wire: one tap fd per queue, with vnet headers on both sides, so
 * GSO frames and partial checksums cross it as they are: the cheapest
 * offload is none at all. Its fds belong to the Python ports.
 */
#include <errno.h>
#include <unistd.h>
#include <sys/uio.h>

#include "sn_dev.h"
#include "sn_util.h"

int sn_queue_attach_tap(struct sn_dev *dev, uint32_t qid, int host_fd,
			int wire_fd, char *err, size_t errlen)
{
	if (qid >= dev->cfg.num_queues || dev->cfg.wire_kind != SN_WIRE_TAP) {
		sn_set_err(err, errlen, "invalid queue: %s", EINVAL);
		return -EINVAL;
	}
	dev->q[qid].host_fd = host_fd;
	dev->q[qid].wire_fd = wire_fd;
	return 0;
}

/* A write that blocks nothing: the tap queue takes the frame or drops it. */
static int tap_tx_room(struct sn_queue *q)
{
	(void)q;
	return 1;
}

static int tap_tx_frame(struct sn_queue *q, const struct virtio_net_hdr_v1 *vh,
			const uint8_t *frame, size_t len, struct sn_tx_result *res)
{
	struct iovec iov[2] = {
		{ (void *)vh, SN_VNET_HDR_LEN },
		{ (void *)frame, len },
	};

	if (writev(q->wire_fd, iov, 2) != (ssize_t)(SN_VNET_HDR_LEN + len))
		return -ENOBUFS;
	*res = (struct sn_tx_result){ .wire_frames = 1, .wire_bytes = (uint32_t)len };
	return 1;
}

/* Writes leave as they are made and need no reaping; reads take their
 * buffers as they go and need no refill. */
static void tap_nothing(struct sn_queue *q)
{
	(void)q;
}

static int tap_rx_poll(struct sn_queue *q, int budget, uint32_t *woken)
{
	struct sn_dev *dev = q->dev;
	int done = 0;

	while (done < budget) {
		uint64_t base;
		ssize_t n;

		/* A read that finds nothing keeps its frame for the next poll. */
		if (q->rx_spare == NO_FRAME)
			q->rx_spare = sn_pool_get(q);
		base = q->rx_spare;
		if (base == NO_FRAME) {
			q->st.rx_alloc_fail++;
			atomic_store_explicit(&q->pool.starving, 1, memory_order_relaxed);
			break;
		}
		atomic_store_explicit(&q->pool.starving, 0, memory_order_relaxed);
		n = read(q->wire_fd, dev->region + base, dev->cfg.frame_size);
		if (n < 0)
			break;
		if (n < SN_VNET_HDR_LEN + 14) {
			q->st.rx_hw_drops++;
			continue;
		}
		q->rx_spare = NO_FRAME;
		done++;
		sn_rx_steer(q, &(struct sn_desc){ .addr = base + SN_VNET_HDR_LEN,
					       .len = (uint32_t)(n - SN_VNET_HDR_LEN),
					       .flags = SN_DESC_VNET }, 1, NULL, woken);
	}
	return done;
}

/* Reads take their buffer as they go; readiness is poll()'s to tell,
 * unless the pool went short and returns wait in its ring. */
static int tap_rx_pending(struct sn_queue *q)
{
	return sn_pool_returns_awaited(q);
}

/* The wire holds no frame of ours: a read copies into the spare. */
static uint32_t tap_held(struct sn_queue *q)
{
	(void)q;
	return 0;
}

/* The spare frames go back to their pools; the fds are the ports'. */
static void tap_destroy(struct sn_dev *dev)
{
	uint32_t i;

	for (i = 0; i < dev->cfg.num_queues; i++)
		if (dev->q[i].rx_spare != NO_FRAME) {
			sn_pool_put(&dev->q[i], dev->q[i].rx_spare);
			dev->q[i].rx_spare = NO_FRAME;
		}
}

const struct sn_wire_ops sn_tap_wire = {
	.tx_room = tap_tx_room,
	.tx_frame = tap_tx_frame,
	.tx_kick = tap_nothing,
	.tx_reap = tap_nothing,
	.rx_poll = tap_rx_poll,
	.rx_refill = tap_nothing,
	.rx_pending = tap_rx_pending,
	.held = tap_held,
	.destroy = tap_destroy,
};
