/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Single-producer single-consumer ring between two queue workers, the shape
 * of the kernel's ptr_ring used one way: each ordered pair of queues has its
 * own ring, so no ring ever has two writers and no lock is needed.
 */
#ifndef SN_RING_H
#define SN_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* A frame in flight between queues: where it is and what is known of it. */
struct sn_desc {
	uint64_t addr;		/* frame data, as an offset in the region */
	uint32_t len;
	uint16_t flags;		/* SN_DESC_* */
	uint16_t pad;
	uint64_t stamp_ns;	/* wire arrival (XDP's stamp, CLOCK_MONOTONIC); 0 unknown */
};

#define SN_DESC_VNET	1	/* a vnet header precedes the data */
#define SN_DESC_CONTD	2	/* more fragments of this frame follow */
#define SN_DESC_VLAN	4	/* the wire's stripped VLAN tag is back in the frame */

/* Fragments one frame may have: 64 KiB in 4 KiB chunks, plus one. */
#define SN_MAX_FRAGS	18

struct sn_ring {
	_Alignas(64) _Atomic uint32_t head;	/* producer writes */
	_Alignas(64) _Atomic uint32_t tail;	/* consumer writes */
	_Alignas(64) uint32_t mask;
	struct sn_desc *slots;
};

static inline int sn_ring_init(struct sn_ring *r, uint32_t size)
{
	r->slots = calloc(size, sizeof(*r->slots));
	if (!r->slots)
		return -1;
	r->mask = size - 1;
	atomic_store(&r->head, 0);
	atomic_store(&r->tail, 0);
	return 0;
}

static inline void sn_ring_free(struct sn_ring *r)
{
	free(r->slots);
	r->slots = NULL;
}

static inline uint32_t sn_ring_count(struct sn_ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) -
	       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

static inline int sn_ring_push(struct sn_ring *r, const struct sn_desc *d)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail > r->mask)
		return -1;
	r->slots[head & r->mask] = *d;
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return 0;
}

/* Push N descriptors as one: the consumer sees all of them or none. */
static inline int sn_ring_push_bulk(struct sn_ring *r, const struct sn_desc *d, uint32_t n)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t i;

	if (r->mask + 1 - (head - tail) < n)
		return -1;
	for (i = 0; i < n; i++)
		r->slots[(head + i) & r->mask] = d[i];
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return 0;
}

static inline int sn_ring_pop(struct sn_ring *r, struct sn_desc *d)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	if (head == tail)
		return -1;
	*d = r->slots[tail & r->mask];
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 0;
}

#endif
