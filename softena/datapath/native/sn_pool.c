// SPDX-License-Identifier: GPL-2.0
/*
 * Page pools: each queue owns a fixed share of the UMEM and lends frames to
 * its Rx fill ring and its Tx path. A frame comes back to its owner in
 * place when the owner frees it (recycle-cached), or through the owner's
 * recycle ring from any other queue (recycle-ring), as the kernel's
 * page_pool does; the rings hold a whole pool, so a return never fails.
 */
#include "sn_dev.h"

static inline uint64_t frame_base(struct sn_dev *dev, uint64_t addr)
{
	return addr - addr % dev->cfg.frame_size;
}

static inline uint32_t frame_owner(struct sn_dev *dev, uint64_t addr)
{
	return (uint32_t)(addr / dev->pool_span);
}

void sn_pool_refill(struct sn_queue *q)
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

uint64_t sn_pool_get(struct sn_queue *q)
{
	if (!q->nfree) {
		q->pp.alloc_empty++;
		sn_pool_refill(q);
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
