// SPDX-License-Identifier: GPL-2.0
/*
 * Page pools: each queue owns a fixed share of the UMEM and lends frames to
 * its Rx fill ring and its Tx path. A frame comes back to its owner in
 * place when the owner frees it (recycle-cached), or through the owner's
 * recycle ring from any other queue (recycle-ring), as the kernel's
 * page_pool does; the rings hold a whole pool, so a return never fails.
 *
 * This file alone writes a pool's free stack and its counters, all from the
 * owner's worker, except recycle-ring-full, which a returning queue counts
 * on the owner's pool.
 */
#include <stdlib.h>

#include "sn_dev.h"

static inline uint64_t frame_base(struct sn_dev *dev, uint64_t addr)
{
	return addr - addr % dev->cfg.frame_size;
}

static inline uint32_t frame_owner(struct sn_dev *dev, uint64_t addr)
{
	return (uint32_t)(addr / dev->pool_span);
}

/* Give Q every frame of its share of the region. */
int sn_pool_init(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	struct sn_pool *p = &q->pool;
	uint32_t f;

	p->size = dev->cfg.frames_per_queue;
	p->free = calloc(p->size, sizeof(uint64_t));
	if (!p->free)
		return -1;
	/* Lowest address on top: the first frames lent are the first mapped. */
	for (f = p->size; f > 0; f--)
		p->free[p->nfree++] = q->qid * dev->pool_span +
				      (uint64_t)(f - 1) * dev->cfg.frame_size;
	return 0;
}

void sn_pool_fini(struct sn_queue *q)
{
	free(q->pool.free);
	q->pool.free = NULL;
	q->pool.nfree = 0;
}

/* Take back what other queues returned; the number of frames it took. */
uint32_t sn_pool_refill(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	struct sn_pool *p = &q->pool;
	struct sn_desc d;
	uint32_t a, n = 0;

	for (a = 0; a < dev->cfg.num_queues; a++) {
		struct sn_ring *r = RING(dev, recycle, a, q->qid);

		if (a == q->qid)
			continue;
		while (sn_ring_pop(r, &d) == 0) {
			p->free[p->nfree++] = d.addr;
			n++;
		}
	}
	/* Counted by the owner as it takes them: one writer per counter. */
	p->st.recycle_ring += n;
	return n;
}

/* Frames wait in our recycle rings? */
int sn_pool_recycles_waiting(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	uint32_t a;

	for (a = 0; a < dev->cfg.num_queues; a++)
		if (a != q->qid && sn_ring_count(RING(dev, recycle, a, q->qid)))
			return 1;
	return 0;
}

/* A frame from the pool: from its stack (alloc-fast), or after taking in
 * the recycle rings (alloc-refill); NO_FRAME when both are empty. */
uint64_t sn_pool_get(struct sn_queue *q)
{
	struct sn_pool *p = &q->pool;

	if (p->nfree) {
		p->st.alloc_fast++;
		return p->free[--p->nfree];
	}
	if (!sn_pool_refill(q)) {
		p->st.alloc_empty++;
		return NO_FRAME;
	}
	p->st.alloc_refill++;
	return p->free[--p->nfree];
}

/* Return a frame to its owner: in place if it is ours, else by its ring. */
void sn_pool_put(struct sn_queue *q, uint64_t addr)
{
	struct sn_dev *dev = q->dev;
	uint64_t base = frame_base(dev, addr);
	uint32_t owner = frame_owner(dev, base);
	struct sn_desc d = { .addr = base };

	if (owner == q->qid) {
		q->pool.free[q->pool.nfree++] = base;
		q->pool.st.recycle_cached++;
		return;
	}
	/* Rings hold a whole pool, so a push cannot fail; count it if it does
	 * (the frame is lost to its pool, as a page released to the system). */
	if (sn_ring_push(RING(dev, recycle, q->qid, owner), &d))
		__atomic_fetch_add(&dev->q[owner].pool.st.recycle_ring_full, 1,
				   __ATOMIC_RELAXED);
}
