/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Rx coalescing (the device's LRO, counted as hw-gro): consecutive TCP
 * segments of one flow within a NAPI batch leave as one GSO frame, so the
 * host stack pays its per-packet cost once per 64 KiB instead of per MSS.
 */
#ifndef SN_LRO_H
#define SN_LRO_H

#include <stdint.h>

#define SN_LRO_SESSIONS		8
#define SN_LRO_MAX_SEGS		45	/* 64 KiB at an MSS of 1448 */
#define SN_LRO_MAX_HDR		192

struct sn_queue;
struct sn_desc;

struct sn_lro_session {
	uint8_t active;
	uint8_t ipver;
	uint8_t psh;		/* the last segment asked for a push */
	uint16_t l3_off, l4_off, hlen;
	uint16_t mss;		/* payload of the first segment */
	uint16_t last_len;	/* payload of the last segment */
	uint16_t nsegs;
	uint32_t next_seq;
	uint32_t payload;	/* bytes of payload held */
	uint64_t age;		/* for eviction: oldest goes first */
	uint64_t addrs[SN_LRO_MAX_SEGS];
	uint16_t lens[SN_LRO_MAX_SEGS];
	uint8_t hdr[SN_LRO_MAX_HDR];	/* the first segment's headers */
};

struct sn_lro {
	struct sn_lro_session s[SN_LRO_SESSIONS];
	uint64_t clock;
	uint8_t open;		/* sessions active */
};

/* Offer a frame; returns 1 when LRO took it, 0 when the caller delivers. */
int sn_lro_receive(struct sn_queue *q, const struct sn_desc *d);
/* Deliver every held session: at the end of each NAPI poll. */
void sn_lro_flush_all(struct sn_queue *q);

#endif
