// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the Tx offload engine (sn_tx_process() in
 * sn_pkt.c): a host frame and its virtio-net header, every field fuzzed,
 * through checksum offload and TSO, each wire frame checked against the
 * harness's own parser and checksums (ref.h).
 *
 * Input: VH[12] MTU[2] CTL[1] FRAME...
 *   VH   struct virtio_net_hdr_v1 as the tap hands it over
 *   MTU  the wire's L3 MTU, folded into the device's 128..9216
 *   CTL  bit 0 TSO on, bit 1 Tx checksum on, bit 2 the harness makes the
 *        frame's IP lengths and checksums right first (as a host stack
 *        would), bit 3 the sink runs dry after CTL >> 4 frames; without
 *        bit 3, bit 4 makes the sink offer pieces (a multi-buffer wire's
 *        frames) of 64 << (CTL >> 5) bytes
 *
 * Invariants (abort on any):
 *  - every buffer asked of the sink is committed, within its size;
 *  - the count returned is the count committed;
 *  - a wire frame fits the MTU (plus L2 and two tags);
 *  - a TSO segment parses, carries IP lengths that match it, checksums that
 *    verify, the original addresses and ports and the next sequence number,
 *    and the segments' payloads are the frame's, in order;
 *  - a plain frame leaves unchanged but for the checksum it was asked to
 *    fill, and that checksum verifies;
 *  - nothing is read or written outside a buffer (ASan: each wire frame is
 *    a heap block of exactly the size asked for, and each piece one of
 *    exactly its part of it);
 *  - a frame written in pieces is checked, gathered, as any other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sn_pkt.h"
#include "ref.h"

#define MIN_MTU		128
#define MAX_MTU		9216
#define MAX_OUT		(SN_TSO_MAX_SEGS + 1)

#define MAX_PIECES	(SN_MAX_FRAME / 64 + 1)

struct tx_sink {
	uint8_t *buf[MAX_OUT];
	size_t need[MAX_OUT];
	uint32_t len[MAX_OUT];
	int asked, committed;
	int budget;		/* frames the sink gives; -1 no limit */
	uint32_t chunk;		/* of the pieces offered; 0 none */
	uint8_t *piece[MAX_PIECES];	/* of the buffer in hand, when in pieces */
	uint32_t npieces;
};

static uint8_t *sink_alloc(void *ctx, size_t need)
{
	struct tx_sink *s = ctx;

	CHECK(s->asked == s->committed, "a second buffer asked before the first was committed");
	if (s->asked >= MAX_OUT || s->budget == 0)
		return NULL;
	if (s->budget > 0)
		s->budget--;
	s->buf[s->asked] = malloc(need ? need : 1);
	if (!s->buf[s->asked])
		return NULL;
	s->need[s->asked] = need;
	return s->buf[s->asked++];
}

/* The buffer for NEED bytes in pieces of s->chunk, each its own heap block
 * of exactly its part; the whole one (s->buf) is where commit gathers them. */
static uint8_t *sink_alloc_pieces(void *ctx, size_t need)
{
	struct tx_sink *s = ctx;
	uint32_t k, n = (uint32_t)((need + s->chunk - 1) / s->chunk);

	CHECK(need > s->chunk, "pieces asked for %zu bytes, which fit one %u-byte piece", need, s->chunk);
	CHECK(n <= MAX_PIECES, "%u pieces", n);
	if (!sink_alloc(ctx, need))
		return NULL;
	for (k = 0; k < n; k++) {
		s->piece[k] = malloc(sn_piece_len(need, s->chunk, k));
		CHECK(s->piece[k], "out of memory");
	}
	s->npieces = n;
	return s->piece[0];
}

static uint8_t *sink_piece(void *ctx, uint32_t k)
{
	struct tx_sink *s = ctx;

	CHECK(k < s->npieces, "piece %u of %u", k, s->npieces);
	return s->piece[k];
}

static void sink_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	struct tx_sink *s = ctx;
	uint32_t k;

	CHECK(s->committed + 1 == s->asked &&
	      buf == (s->npieces ? s->piece[0] : s->buf[s->committed]),
	      "committed a buffer that was not the one asked for");
	CHECK(len <= s->need[s->committed], "committed %u bytes of a %zu-byte buffer",
	      len, s->need[s->committed]);
	for (k = 0; k < s->npieces; k++) {	/* gathered, as the wire sends them */
		memcpy(s->buf[s->committed] + (size_t)k * s->chunk, s->piece[k], sn_piece_len(len, s->chunk, k));
		free(s->piece[k]);
	}
	s->npieces = 0;
	s->len[s->committed++] = len;
}

/* What a host stack would hand over: IP lengths that match the frame, and
 * checksums right (the L4 one is done again by the engine when asked). */
static void host_fix(uint8_t *f, size_t len)
{
	size_t off = 14;
	unsigned type;
	int tags = 0;

	if (len < 14)
		return;
	type = ref_be16(f + 12);
	while ((type == 0x8100 || type == 0x88a8) && tags++ < 2 && len >= off + 4) {
		type = ref_be16(f + off + 2);
		off += 4;
	}
	if (type == 0x0800 && len >= off + 20 && len - off <= 0xffff) {
		f[off + 2] = (uint8_t)((len - off) >> 8);
		f[off + 3] = (uint8_t)(len - off);
	} else if (type == 0x86dd && len >= off + 40 && len - off - 40 <= 0xffff) {
		f[off + 4] = (uint8_t)((len - off - 40) >> 8);
		f[off + 5] = (uint8_t)(len - off - 40);
	}
	ref_fix(f, len);
}

static void check_tso(const uint8_t *in, size_t len, uint32_t mtu, const struct tx_sink *s, int sink_dry)
{
	struct ref_frame r, o;
	size_t hlen, off;
	uint32_t seq;
	int i;

	ref_parse(in, len, &r);
	CHECK(r.ok && r.proto == 6, "segmented a frame that is not TCP");
	hlen = r.l4 + r.l4_hlen;
	seq = ref_be32(in + r.l4 + 4);
	for (off = hlen, i = 0; i < s->committed; i++) {
		const uint8_t *f = s->buf[i];
		uint32_t n = s->len[i];

		CHECK(n <= mtu + r.l3, "segment %d: %u bytes past an MTU of %u", i, n, mtu);
		ref_parse(f, n, &o);
		CHECK(o.ok && o.proto == 6 && o.ipver == r.ipver && o.l3 == r.l3,
		      "segment %d does not parse as the frame's TCP", i);
		CHECK(o.end == n, "segment %d: IP length ends at %zu of %u", i, o.end, n);
		CHECK(ref_ip_ok(f, &o), "segment %d: IPv4 header checksum wrong", i);
		CHECK(ref_csum_ok(f, n), "segment %d: TCP checksum wrong", i);
		CHECK(o.l4 + o.l4_hlen == hlen, "segment %d: headers of %zu, frame %zu",
		      i, o.l4 + o.l4_hlen, hlen);
		CHECK(!memcmp(f, in, r.l3), "segment %d: L2 header changed", i);
		CHECK(!memcmp(f + o.l3 + (r.ipver == 4 ? 12 : 8), in + r.l3 + (r.ipver == 4 ? 12 : 8),
			      r.ipver == 4 ? 8 : 32), "segment %d: addresses changed", i);
		CHECK(!memcmp(f + o.l4, in + r.l4, 4), "segment %d: ports changed", i);
		CHECK(ref_be32(f + o.l4 + 4) == seq + (uint32_t)(off - hlen),
		      "segment %d: sequence number wrong", i);
		CHECK(n > hlen && off + (n - hlen) <= len &&
		      !memcmp(f + hlen, in + off, n - hlen), "segment %d: payload not the frame's", i);
		off += n - hlen;
	}
	CHECK(sink_dry || off == len, "segments carry %zu payload bytes of %zu", off - hlen, len - hlen);
}

static void check_plain(const struct virtio_net_hdr_v1 *vh, const uint8_t *in, size_t len,
			uint32_t mtu, const struct tx_sink *s)
{
	const uint8_t *f = s->buf[0];
	size_t field = (size_t)vh->csum_start + vh->csum_offset;
	unsigned want;

	CHECK(s->len[0] == len, "plain frame of %zu left as %u bytes", len, s->len[0]);
	CHECK(len <= mtu + 14 + 8, "plain frame of %zu past an MTU of %u", len, mtu);
	if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		CHECK(!memcmp(f, in, len), "plain frame changed without a checksum asked");
		return;
	}
	CHECK(field + 2 <= len, "checksum written at %zu of a %zu-byte frame", field, len);
	CHECK(!memcmp(f, in, field) && !memcmp(f + field + 2, in + field + 2, len - field - 2),
	      "plain frame changed outside its checksum field");
	/* virtio: the sum from csum_start to the end, the field's seed (the
	 * pseudo-header sum) included, folded and stored at the field. */
	want = ~ref_sum(in + vh->csum_start, len - vh->csum_start, 0) & 0xffff;
	if (want == 0 && vh->csum_offset == 6)
		want = 0xffff;	/* UDP: 0 would mean none */
	CHECK(ref_be16(f + field) == want, "filled checksum %#x, the data's %#x",
	      ref_be16(f + field), want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr_v1 vh;
	struct sn_tx_result res;
	struct tx_sink s = { .budget = -1 };
	uint8_t *frame, gso;
	uint32_t mtu;
	size_t len;
	int n, i, tso, csum;

	if (size < sizeof(vh) + 3)
		return 0;
	memcpy(&vh, data, sizeof(vh));
	mtu = MIN_MTU + ref_be16(data + sizeof(vh)) % (MAX_MTU - MIN_MTU + 1);
	tso = data[sizeof(vh) + 2] & 1;
	csum = data[sizeof(vh) + 2] >> 1 & 1;
	if (data[sizeof(vh) + 2] & 8)
		s.budget = data[sizeof(vh) + 2] >> 4;
	else if (data[sizeof(vh) + 2] & 16)
		s.chunk = 64u << (data[sizeof(vh) + 2] >> 5);
	len = size - sizeof(vh) - 3;
	/* A heap block of exactly the frame: a read past it is caught. */
	frame = malloc(len ? len : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + sizeof(vh) + 3, len);
	if (data[sizeof(vh) + 2] & 4)
		host_fix(frame, len);

	n = sn_tx_process(&vh, frame, len, mtu, tso, csum,
			  &(struct sn_tx_sink){ sink_alloc, sink_commit, &s,
						s.chunk ? sink_alloc_pieces : NULL, sink_piece, s.chunk },
			  &res);
	CHECK(s.asked == s.committed, "%d buffers asked of the sink, %d committed (returned %d)",
	      s.asked, s.committed, n);
	CHECK(n > 0 ? n == s.committed : s.committed == 0,
	      "returned %d with %d frames committed", n, s.committed);
	gso = vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (n > 0) {
		CHECK(res.wire_frames == (uint32_t)n, "wire_frames %u, returned %d", res.wire_frames, n);
		if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6)
			check_tso(frame, len, mtu, &s, s.budget == 0);
		else
			check_plain(&vh, frame, len, mtu, &s);
	}
	for (i = 0; i < s.asked; i++)
		free(s.buf[i]);
	free(frame);
	return 0;
}
