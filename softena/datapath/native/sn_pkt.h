/* SPDX-License-Identifier: GPL-2.0 */
/* Packet parsing and the offload engines shared by the Tx and Rx paths. */
#ifndef SN_PKT_H
#define SN_PKT_H

#include <stdint.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <linux/virtio_net.h>

#include "sn_csum.h"

#include "softena_dp.h"

/* The vnet header every tap fd of softena uses (TUNSETVNETHDRSZ). */
#define SN_VNET_HDR_LEN		((int)sizeof(struct virtio_net_hdr_v1))
/* Largest frame a tap hands over with GSO: 64 KiB of IP plus L2. */
#define SN_MAX_FRAME		(65536 + 64)

struct sn_parsed {
	uint16_t l3_off;	/* 0 when not IP */
	uint16_t l4_off;	/* 0 when no TCP/UDP header to look at */
	uint16_t l4_len;	/* L4 header + payload, from the IP header */
	uint8_t ipver;		/* 4, 6 or 0 */
	uint8_t l4_proto;	/* IPPROTO_TCP, IPPROTO_UDP or other */
	uint8_t is_fragment;
};

int sn_parse(const uint8_t *f, size_t len, struct sn_parsed *p);

/* The partial sum of the TCP/UDP pseudo-header's addresses and protocol:
 * the part every segment of a frame shares. */
uint32_t sn_pseudo_base(const uint8_t *frame, const struct sn_parsed *p);

/* The whole pseudo-header's partial sum: BASE (sn_pseudo_base()) and an L4
 * length, a 16-bit field in IPv4's pseudo-header and a 32-bit one in
 * IPv6's (RFC 8200 8.1), both in network byte order like the bytes BASE
 * summed. */
static inline uint32_t sn_pseudo_len(uint32_t base, const struct sn_parsed *p,
				     uint32_t l4_len)
{
	return sn_csum_add(base, p->ipver == 6 ? htonl(l4_len) : htons((uint16_t)l4_len));
}

/* The partial sum of the TCP/UDP pseudo-header for an L4 length. */
static inline uint32_t sn_pseudo_sum(const uint8_t *frame, const struct sn_parsed *p,
				     uint32_t l4_len)
{
	return sn_pseudo_len(sn_pseudo_base(frame, p), p, l4_len);
}

/*
 * Tx offload engine: turn one frame from the host (with its vnet header)
 * into wire frames. Each output frame is asked of alloc(), filled, then
 * reported with its length through commit(). Returns the number of wire
 * frames, or a negative errno (-EINVAL malformed, -EMSGSIZE too big for the
 * wire and not GSO, -ENOBUFS no buffer).
 */
struct sn_tx_sink {
	uint8_t *(*alloc)(void *ctx, size_t need);
	void (*commit)(void *ctx, uint8_t *buf, uint32_t len);
	void *ctx;
	/*
	 * Optional, for a wire whose buffers are smaller than its frames
	 * (multi-buffer AF_XDP): alloc_pieces() takes buffers for NEED bytes
	 * as pieces of CHUNK bytes each (the last shorter) and returns the
	 * first; piece(ctx, k) is the k-th. A TSO segment is then written
	 * where it will be sent, not built whole in a bounce buffer and
	 * copied again. commit() is given the first piece. Unset (NULL), every
	 * buffer alloc() returns is contiguous.
	 */
	uint8_t *(*alloc_pieces)(void *ctx, size_t need);
	uint8_t *(*piece)(void *ctx, uint32_t k);
	uint32_t chunk;
};

/* The bytes of piece K when LEN bytes lie in pieces of CHUNK (the last
 * shorter; 0 past the end): what a wire sends from each of its buffers. */
static inline uint32_t sn_piece_len(size_t len, uint32_t chunk, uint32_t k)
{
	size_t at = (size_t)k * chunk;

	return at >= len ? 0 : (uint32_t)(len - at < chunk ? len - at : chunk);
}

struct sn_tx_result {
	uint32_t wire_frames;
	uint32_t wire_bytes;
	uint8_t gso;		/* the frame was segmented */
	uint8_t csum;		/* checksums were computed */
};

int sn_tx_process(const struct virtio_net_hdr_v1 *vh, const uint8_t *frame,
		  size_t len, uint32_t mtu, int tso, int tx_csum,
		  const struct sn_tx_sink *sink, struct sn_tx_result *res);

/* Rx checksum check: 1 good, 0 nothing to check, -1 bad. */
int sn_rx_csum(const uint8_t *frame, size_t len);
/* The same check for a frame whose bytes' partial sum FRAME_SUM is known
 * (sn_csum_gather() took it as it copied the frame together). */
int sn_rx_csum_summed(const uint8_t *frame, size_t len, uint32_t frame_sum);
/* The check (FRAME_SUM as for sn_rx_csum_summed(), or NULL), and a frame
 * that passed marked for the host as sn_rx_csum_mark_verified() does, from
 * the one parse: the per-frame Rx path. */
int sn_rx_csum_check_mark(struct virtio_net_hdr_v1 *vh, uint8_t *frame, size_t len,
			  const uint32_t *frame_sum);

/* CHECKSUM_PARTIAL for the TCP/UDP header P found: the checksum field
 * holds the pseudo-header's sum over L4_LEN bytes, as the host stack
 * itself leaves it for a device to complete, and VH says where it is. */
void sn_csum_seed_partial(struct virtio_net_hdr_v1 *vh, uint8_t *frame,
			  const struct sn_parsed *p, uint32_t l4_len);

/*
 * Hand the host a frame whose TCP/UDP checksum was verified so that it
 * trusts it. tun ignores VIRTIO_NET_HDR_F_DATA_VALID from its writer (the
 * virtio header defines it only towards a driver) and would verify every
 * checksum again; what it does take is NEEDS_CSUM, an skb in
 * CHECKSUM_PARTIAL, whose checksum the stack counts as verified
 * (skb_csum_unnecessary()), as it does for a veth peer's own frames. The
 * checksum field then holds the pseudo-header's sum, as in every
 * CHECKSUM_PARTIAL frame, so a host that forwards the frame completes the
 * very checksum the wire brought. Sets VH, rewrites the field; returns 0,
 * or -1 with nothing changed when FRAME has no TCP/UDP checksum.
 */
int sn_rx_csum_mark_verified(struct virtio_net_hdr_v1 *vh, uint8_t *frame, size_t len);

#endif
