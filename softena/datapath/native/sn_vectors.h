/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test entry points to the packet engines, built as their own cffi module
 * (softena.datapath._vectors) from the pure packet sources only: no queue,
 * no socket, no libxdp. Tests run them against independent vectors.
 *
 * The CDEF block, with sn_rss.h's, is what cffi is given.
 */
#ifndef SN_VECTORS_H
#define SN_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "sn_rss.h"

/* CDEF-BEGIN */
uint32_t sn_toeplitz(const uint8_t *key, size_t keylen,
		     const uint8_t *data, size_t len);
int sn_rss_hash(const struct sn_rss_config *rss, const uint8_t *frame,
		size_t len, uint32_t *hash);
/* The lab steering program's table-driven Toeplitz of DATA under KEY (40
 * bytes), or 0xffffffff when out of memory. */
uint32_t sn_rss_steer_vector(const uint8_t *key, const uint8_t *data, size_t len);

/* The Internet checksum of DATA, in host order. */
uint16_t sn_inet_csum(const uint8_t *data, size_t len);
/* Rx checksum check: 1 good, 0 nothing to check, -1 bad. */
int sn_rx_csum_check(const uint8_t *frame, size_t len);
/* Sum with the AVX2 loop (ON, if the CPU has it) or the portable one;
 * returns whether the AVX2 loop is in use. */
int sn_csum_use_simd(int on);
/* Copy LEN bytes and return their Internet checksum, in one pass. */
uint16_t sn_inet_csum_copy(uint8_t *dst, const uint8_t *src, size_t len);
/* The Rx check of a frame in N pieces (FRAG_LENS, at most 32), as jumbo Rx
 * does it: gathered into OUT while summed, then checked from that sum. */
int sn_rx_csum_gathered(const uint8_t *frame, const uint32_t *frag_lens, uint32_t n,
			uint8_t *out);

/* The Tx offload engine into a flat buffer: the wire frames' count (their
 * lengths in SEG_LENS, bytes one after another in OUT), or -errno. */
int sn_tx_offload(const uint8_t *vnet_hdr, const uint8_t *frame, size_t len,
		  uint32_t mtu, uint8_t *out, size_t outlen,
		  uint32_t *seg_lens, int max_segs);
/* The same through a sink that offers pieces of CHUNK bytes (a multi-buffer
 * AF_XDP wire's UMEM frames): what it sends, gathered into OUT. */
int sn_tx_offload_pieces(const uint8_t *vnet_hdr, const uint8_t *frame, size_t len,
			 uint32_t mtu, uint32_t chunk, uint8_t *out, size_t outlen,
			 uint32_t *seg_lens, int max_segs);

/* One frame hardware GRO handed to the host: its bytes at OUT + offset,
 * and the fields of its virtio-net header. */
struct sn_gro_out {
	uint32_t offset;
	uint32_t len;
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t nsegs;			/* wire frames it carries */
};

/* Run N frames (their bytes one after another in FRAMES) through hardware
 * GRO as one NAPI batch of one queue with Rx checksum and GRO on, and
 * collect what the queue would write to the host, in order. Returns the
 * number of frames handed up, or -ENOBUFS when OUT or META is too small. */
int sn_hw_gro_batch(const uint8_t *frames, const uint32_t *lens, uint32_t n,
		    uint8_t *out, size_t outlen, struct sn_gro_out *meta,
		    uint32_t max_out);
/* CDEF-END */

#endif
