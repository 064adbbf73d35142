/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Rx coalescing, the device's hardware GRO (ethtool's rx-gro-hw, counted as
 * rx-hw-gro): consecutive TCP segments of one flow within a NAPI batch (or,
 * under gro-flush-timeout, within that time) leave as one GSO frame, so the host stack pays its per-packet cost once per
 * 64 KiB instead of per MSS.
 *
 * The engine knows frames only as descriptors into a region; what it hands
 * up goes to a deliver callback, so it runs the same over the UMEM in a queue
 * and over a plain buffer in the test vectors.
 */
#ifndef SN_HW_GRO_H
#define SN_HW_GRO_H

#include <stdint.h>
#include <linux/virtio_net.h>

#include "sn_ring.h"

#define SN_HW_GRO_SESSIONS	8
#define SN_HW_GRO_MAX_SEGS	45	/* 64 KiB at an MSS of 1448 */
#define SN_HW_GRO_MAX_HDR	192

/*
 * What the engine hands up. One segment: the frame as it came, its
 * checksums validated (vh says DATA_VALID). Several: a GSO frame whose
 * headers are HDR (the first segment's, rewritten for the whole) followed by
 * the payload of each segment, at region + addrs[i] + hlen.
 */
struct sn_hw_gro_frame {
	struct virtio_net_hdr_v1 vh;
	const uint8_t *hdr;
	uint16_t hlen;
	uint16_t nsegs;
	uint32_t len;			/* bytes of the frame handed up */
	const uint64_t *addrs;		/* each segment's frame in the region */
	const uint16_t *lens;		/* each segment's payload bytes */
	uint64_t stamp_ns;		/* the first segment's wire arrival; 0 unknown */
};

typedef void sn_hw_gro_deliver_fn(void *ctx, const struct sn_hw_gro_frame *f);

struct sn_hw_gro_session {
	uint8_t active;
	uint8_t ipver;
	uint8_t psh;		/* the last segment asked for a push */
	uint8_t fixed_id;	/* IPv4 DF flow whose ID does not move */
	uint16_t l3_off, l4_off, hlen;
	uint16_t mss;		/* payload of the first segment */
	uint16_t last_len;	/* payload of the last segment */
	uint16_t nsegs;
	uint16_t ip_id;		/* IPv4 ID of the first segment */
	uint32_t next_seq;
	uint32_t payload;	/* bytes of payload held */
	uint64_t age;		/* for eviction: oldest goes first */
	uint64_t opened_ns;	/* the caller's clock when the session began */
	uint64_t stamp_ns;	/* the first segment's wire arrival (sn_desc) */
	uint64_t addrs[SN_HW_GRO_MAX_SEGS];
	uint16_t lens[SN_HW_GRO_MAX_SEGS];
	uint8_t hdr[SN_HW_GRO_MAX_HDR];	/* the first segment's headers */
};

struct sn_hw_gro {
	uint8_t *region;	/* where descriptors point */
	sn_hw_gro_deliver_fn *deliver;
	void *ctx;
	struct sn_hw_gro_session s[SN_HW_GRO_SESSIONS];
	uint64_t clock;
	uint64_t now_ns;	/* set by the caller: what new sessions are stamped with */
	uint8_t open;		/* sessions active */
};

void sn_hw_gro_init(struct sn_hw_gro *g, uint8_t *region,
		    sn_hw_gro_deliver_fn *deliver, void *ctx);
/* Offer a frame; returns 1 when the engine took it, 0 when the caller
 * delivers it (any session of its flow was delivered first). */
int sn_hw_gro_receive(struct sn_hw_gro *g, const struct sn_desc *d);
/* Deliver every held session: at the end of each NAPI poll. */
void sn_hw_gro_flush_all(struct sn_hw_gro *g);
/* At the end of a NAPI poll under gro-flush-timeout: deliver the sessions
 * that can take no more (a push, a short segment, the segment or byte
 * limit) and those opened HOLD_NS or more before NOW; keep the others for
 * the polls to come. Returns when the oldest kept one falls due, 0 if none.
 * HOLD_NS 0 delivers everything, as sn_hw_gro_flush_all(). */
uint64_t sn_hw_gro_flush_due(struct sn_hw_gro *g, uint64_t now, uint64_t hold_ns);

#endif
