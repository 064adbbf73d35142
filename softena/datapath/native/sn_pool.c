// SPDX-License-Identifier: GPL-2.0
/*
 * Page pools over the UMEM, shaped as the kernel's page_pool
 * (net/core/page_pool.c):
 *
 *   free list   the region's frames no pool holds: the pools' page
 *               allocator. A pool takes frames from it in bulk when its
 *               cache and ring are both dry (the slow path), and gives
 *               them back when its ring overflows, when it goes idle, and
 *               when it is destroyed. One lock, taken once per bulk.
 *   cache       frames only the owning worker takes and returns, without a
 *               lock: alloc-fast, recycle-cached (recycle-cache-full when
 *               it holds PP_ALLOC_CACHE_SIZE and the frame goes to the ring).
 *   ring        frames other workers are done with. The kernel's ptr_ring
 *               has a producer lock; here each returning worker has its own
 *               SPSC ring to the pool (sn_ring.h), which needs none. The
 *               owner refills its empty cache from them (alloc-refill), and
 *               a full one sends the frame back to the free list
 *               (recycle-ring-full).
 *
 * A pool's inflight is the kernel's hold_cnt - release_cnt: frames taken
 * from the free list and not given back, its cache and ring included.
 *
 * Every frame carries a state (free, in its pool, lent out) and the pool
 * that holds it. With SOFTENA_DEBUG_PAGE_POOL=1 in the environment every
 * hand-off checks the state it finds, so a frame returned twice, or one
 * the wire hands back that was never lent, stops the process with the
 * frame named, as the kernel's DEBUG_NET_WARN_ON would complain.
 *
 * Writers: a pool's cache and counters, its owner's worker; a ring's
 * producer half and its sn_pp_returns, the returning worker; the free list,
 * anyone under its lock. Detach and drain run with the workers stopped.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sn_dev.h"
#include "sn_util.h"

static const char *const frame_state_name[] = { "free", "in its pool", "lent out" };

static inline uint32_t frame_index(struct sn_dev *dev, uint64_t addr)
{
	return (uint32_t)(addr / dev->cfg.frame_size);
}

static inline uint64_t frame_base(struct sn_dev *dev, uint64_t addr)
{
	return addr - addr % dev->cfg.frame_size;
}

static void __attribute__((noreturn))
frame_bug(struct sn_dev *dev, uint64_t addr, uint8_t was, uint8_t want, const char *where)
{
	uint32_t f = frame_index(dev, addr);

	fprintf(stderr, "softena: page_pool: frame %u (0x%llx) of pool %u is %s, expected %s, in %s\n",
		f, (unsigned long long)addr, dev->frames.owner[f],
		was < 3 ? frame_state_name[was] : "corrupt", frame_state_name[want], where);
	fflush(stderr);
	abort();
}

/* Move a frame from state FROM to TO; in debug mode, prove it was in FROM. */
static inline void frame_move(struct sn_dev *dev, uint64_t addr, uint8_t from, uint8_t to,
			      const char *where)
{
	uint8_t *state = &dev->frames.state[frame_index(dev, addr)];
	uint8_t was;

	if (!dev->frames.debug) {
		__atomic_store_n(state, to, __ATOMIC_RELAXED);
		return;
	}
	was = __atomic_exchange_n(state, to, __ATOMIC_ACQ_REL);
	if (was != from)
		frame_bug(dev, addr, was, from, where);
}

void sn_pool_check_lent(struct sn_dev *dev, uint64_t addr, const char *where)
{
	uint8_t was;

	if (!dev->frames.debug || addr >= dev->region_size)
		return;
	was = __atomic_load_n(&dev->frames.state[frame_index(dev, addr)], __ATOMIC_ACQUIRE);
	if (was != SN_FRAME_LENT)
		frame_bug(dev, addr, was, SN_FRAME_LENT, where);
}

/* ---- the free list: the region's page allocator ------------------------- */

int sn_frames_init(struct sn_dev *dev)
{
	struct sn_frames *fl = &dev->frames;
	const char *debug = getenv("SOFTENA_DEBUG_PAGE_POOL");
	uint32_t f;

	fl->total = (uint32_t)(dev->region_size / dev->cfg.frame_size);
	fl->stack = calloc(fl->total, sizeof(uint64_t));
	fl->state = calloc(fl->total, 1);
	fl->owner = calloc(fl->total, 1);
	if (!fl->stack || !fl->state || !fl->owner)
		return -1;
	pthread_mutex_init(&fl->lock, NULL);
	fl->debug = debug && *debug && *debug != '0';
	/* Lowest address on top: the first frames lent are the first mapped. */
	for (f = fl->total; f > 0; f--)
		fl->stack[fl->count++] = (uint64_t)(f - 1) * dev->cfg.frame_size;
	return 0;
}

void sn_frames_fini(struct sn_dev *dev)
{
	struct sn_frames *fl = &dev->frames;

	if (fl->stack)
		pthread_mutex_destroy(&fl->lock);
	free(fl->stack);
	free(fl->state);
	free(fl->owner);
	fl->stack = NULL;
	fl->state = fl->owner = NULL;
}

/* The slow path: up to WANT frames from the free list into Q's cache. */
static uint32_t free_list_take(struct sn_queue *q, uint32_t want)
{
	struct sn_dev *dev = q->dev;
	struct sn_frames *fl = &dev->frames;
	struct sn_pool *p = &q->pool;
	uint32_t n, i;

	pthread_mutex_lock(&fl->lock);
	n = want < fl->count ? want : fl->count;
	for (i = 0; i < n; i++) {
		uint64_t addr = fl->stack[--fl->count];

		fl->owner[frame_index(dev, addr)] = (uint8_t)q->qid;
		frame_move(dev, addr, SN_FRAME_FREE, SN_FRAME_POOL, "the slow path");
		p->cache[p->count++] = addr;
	}
	pthread_mutex_unlock(&fl->lock);
	__atomic_store_n(&p->hold, p->hold + n, __ATOMIC_RELAXED);
	return n;
}

/* Give N frames of state FROM back to the free list. */
static void free_list_put(struct sn_dev *dev, const uint64_t *addrs, uint32_t n, uint8_t from)
{
	struct sn_frames *fl = &dev->frames;
	uint32_t i;

	pthread_mutex_lock(&fl->lock);
	for (i = 0; i < n; i++) {
		frame_move(dev, addrs[i], from, SN_FRAME_FREE, "a release");
		fl->stack[fl->count++] = addrs[i];
	}
	pthread_mutex_unlock(&fl->lock);
}

uint32_t sn_frames_free(struct sn_dev *dev)
{
	return __atomic_load_n(&dev->frames.count, __ATOMIC_RELAXED);
}

/* ---- a pool ---------------------------------------------------------------- */

static inline struct sn_pp_returns *returns(struct sn_dev *dev, uint32_t from, uint32_t owner)
{
	return &dev->returns[from * dev->cfg.num_queues + owner];
}

/* Refill the empty cache from the ring: how many frames it took. */
static uint32_t pool_refill(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	struct sn_pool *p = &q->pool;
	struct sn_desc d;
	uint32_t a;

	for (a = 0; a < dev->cfg.num_queues && p->count < SN_PP_CACHE_REFILL; a++) {
		struct sn_ring *r = RING(dev, recycle, a, q->qid);

		while (p->count < SN_PP_CACHE_REFILL && sn_ring_pop(r, &d) == 0)
			p->cache[p->count++] = d.addr;
	}
	return p->count;
}

/* Did Q's wire go short of frames, while others' returns wait in the ring?
 * Then the owner has work to do without the wire waking it. */
int sn_pool_returns_awaited(struct sn_queue *q)
{
	struct sn_dev *dev = q->dev;
	uint32_t a;

	if (!atomic_load_explicit(&q->pool.starving, memory_order_relaxed))
		return 0;
	for (a = 0; a < dev->cfg.num_queues; a++)
		if (sn_ring_count(RING(dev, recycle, a, q->qid)))
			return 1;
	return 0;
}

/* Could N allocations succeed now? The cache alone answers on the hot
 * path (the Tx room check, once a host frame); only a short cache looks at
 * the ring and at the free list, whose count other workers' locks write. */
int sn_pool_can_give(struct sn_queue *q, uint32_t n)
{
	struct sn_dev *dev = q->dev;
	uint32_t a, have = q->pool.count;

	if (have >= n)
		return 1;
	for (a = 0; a < dev->cfg.num_queues && have < n; a++)
		have += sn_ring_count(RING(dev, recycle, a, q->qid));
	return have + sn_frames_free(dev) >= n;
}

/*
 * A frame from Q's pool, counted as page_pool_alloc_netmems() counts: from
 * the cache (alloc-fast); else the cache refilled from the ring
 * (alloc-refill); else the ring was empty (alloc-empty) and the slow path
 * took a bulk from the free list (alloc-slow). NO_FRAME when even the free
 * list is empty, or the pool is detached.
 */
uint64_t sn_pool_get(struct sn_queue *q)
{
	struct sn_pool *p = &q->pool;
	uint64_t addr;

	if (p->detached)
		return NO_FRAME;
	if (p->count) {
		p->st.alloc_fast++;
	} else if (pool_refill(q)) {
		p->st.alloc_refill++;
	} else {
		p->st.alloc_empty++;
		if (!free_list_take(q, SN_PP_CACHE_REFILL))
			return NO_FRAME;
		p->st.alloc_slow++;
	}
	addr = p->cache[--p->count];
	frame_move(q->dev, addr, SN_FRAME_POOL, SN_FRAME_LENT, "an allocation");
	return addr;
}

/*
 * Q is done with the frame at ADDR: back to the pool that holds it. The
 * owner's worker recycles into the cache (direct recycling, as in the
 * pool's own NAPI context); anyone else, or a full cache, into the ring;
 * a full ring gives the frame back to the free list.
 */
void sn_pool_put(struct sn_queue *q, uint64_t addr)
{
	struct sn_dev *dev = q->dev;
	uint64_t base = frame_base(dev, addr);
	uint32_t owner = dev->frames.owner[frame_index(dev, base)];
	struct sn_pool *p = &q->pool;
	struct sn_pp_returns *ret = returns(dev, q->qid, owner);
	struct sn_desc d = { .addr = base };

	if (owner == q->qid && !p->detached) {
		if (p->count < SN_PP_CACHE_SIZE) {
			frame_move(dev, base, SN_FRAME_LENT, SN_FRAME_POOL, "a recycle");
			p->cache[p->count++] = base;
			p->st.recycle_cached++;
			return;
		}
		p->st.recycle_cache_full++;
	}
	/* In the pool before the owner can see it in the ring. */
	frame_move(dev, base, SN_FRAME_LENT, SN_FRAME_POOL, "a recycle");
	if (sn_ring_push(RING(dev, recycle, q->qid, owner), &d) == 0) {
		ret->recycle_ring++;
		return;
	}
	ret->recycle_ring_full++;
	ret->released++;
	free_list_put(dev, &base, 1, SN_FRAME_POOL);
}

/* Everything in Q's cache and ring goes back to the free list. */
static void pool_release_all(struct sn_queue *q)
{
	struct sn_pool *p = &q->pool;

	do {
		if (p->count)
			free_list_put(q->dev, p->cache, p->count, SN_FRAME_POOL);
		__atomic_store_n(&p->released, p->released + p->count, __ATOMIC_RELAXED);
		p->count = 0;
	} while (pool_refill(q));
}

/*
 * An idle pool gives back what it cached: a worker that slept a whole
 * timeout without work trims its pool to the frames lent out (its fill
 * ring), so an idle device holds the same frames however busy it was. The
 * kernel's pools keep their cache; here the region is finite and shared.
 */
void sn_pool_trim(struct sn_queue *q)
{
	if (!q->pool.detached)
		pool_release_all(q);
}

/* ---- lifecycle: detach, drain, destroy ------------------------------------ */

/* Queues stop allocating; the time of it, as the kernel's detach_time. */
void sn_pool_detach(struct sn_queue *q)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	q->pool.detach_time = (uint64_t)ts.tv_sec;
	q->pool.detached = 1;
}

/*
 * After the wire gave back what it held (its sockets closed): frames still
 * lent out are the ones the wire had, WIRE_HELD of them by the queues'
 * count; any beyond were lost by the device. All go back to the free list
 * with the pools' caches and rings. Returns the frames lost.
 */
uint32_t sn_pool_reclaim(struct sn_dev *dev, uint32_t wire_held)
{
	struct sn_frames *fl = &dev->frames;
	uint32_t f, i, lent = 0;

	for (f = 0; f < fl->total; f++) {
		uint64_t addr = (uint64_t)f * dev->cfg.frame_size;

		if (fl->state[f] != SN_FRAME_LENT)
			continue;
		lent++;
		dev->q[fl->owner[f]].pool.released++;
		free_list_put(dev, &addr, 1, SN_FRAME_LENT);
	}
	for (i = 0; i < dev->cfg.num_queues; i++)
		pool_release_all(&dev->q[i]);
	if (lent > wire_held && fl->debug)
		fprintf(stderr, "softena: page_pool: %u frames lent out were lost\n", lent - wire_held);
	return lent > wire_held ? lent - wire_held : 0;
}

/* The pool's counters and gauges, the returning workers' share summed in. */
void sn_pool_read(struct sn_queue *q, struct sn_pp_stats *st, struct sn_pp_gauges *g)
{
	struct sn_dev *dev = q->dev;
	struct sn_pool *p = &q->pool;
	uint64_t released = __atomic_load_n(&p->released, __ATOMIC_RELAXED);
	uint32_t a;

	*st = p->st;
	g->ring = 0;
	for (a = 0; a < dev->cfg.num_queues; a++) {
		const struct sn_pp_returns *ret = returns(dev, a, q->qid);

		st->recycle_ring += ret->recycle_ring;
		st->recycle_ring_full += ret->recycle_ring_full;
		released += __atomic_load_n(&ret->released, __ATOMIC_RELAXED);
		g->ring += sn_ring_count(RING(dev, recycle, a, q->qid));
	}
	g->inflight = __atomic_load_n(&p->hold, __ATOMIC_RELAXED) - released;
	g->cached = __atomic_load_n(&p->count, __ATOMIC_RELAXED);
	g->detach_time = p->detach_time;
}
