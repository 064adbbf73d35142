// SPDX-License-Identifier: GPL-2.0
/*
 * Test entry points to the packet engines (sn_vectors.h): flat buffers in,
 * flat buffers out, so Python can check them against independent vectors.
 * Nothing here is linked into the runtime module.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "sn_hw_gro.h"
#include "sn_pkt.h"
#include "sn_ring.h"
#include "sn_vectors.h"
#include "softena_steer.h"

uint16_t sn_inet_csum(const uint8_t *data, size_t len)
{
	return ntohs(sn_csum_fold(sn_csum_partial(data, len, 0)));
}

int sn_rx_csum_check(const uint8_t *frame, size_t len)
{
	return sn_rx_csum(frame, len);
}

int sn_csum_use_simd(int on)
{
	return sn_csum_select(on);
}

uint16_t sn_inet_csum_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
	return ntohs(sn_csum_fold(sn_csum_copy(dst, src, len, 0)));
}

int sn_rx_csum_gathered(const uint8_t *frame, const uint32_t *frag_lens, uint32_t n,
			uint8_t *out)
{
	struct iovec frags[32];
	size_t off = 0;
	uint32_t i;

	if (n > sizeof(frags) / sizeof(frags[0]))
		return -EINVAL;
	for (i = 0; i < n; off += frag_lens[i], i++)
		frags[i] = (struct iovec){ (void *)(frame + off), frag_lens[i] };
	return sn_rx_csum_summed(out, off, sn_csum_gather(out, frags, n));
}

/* ---- the Tx offload engine into a flat buffer ---------------------------- */
struct flat_sink {
	uint8_t *out;
	size_t cap, used;
	uint32_t *lens;
	int max, n;
};

static uint8_t *flat_alloc(void *ctx, size_t need)
{
	struct flat_sink *s = ctx;

	if (s->n >= s->max || s->used + need > s->cap)
		return NULL;
	return s->out + s->used;
}

static void flat_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	struct flat_sink *s = ctx;

	(void)buf;
	s->lens[s->n++] = len;
	s->used += len;
}

int sn_tx_offload(const uint8_t *vnet_hdr, const uint8_t *frame, size_t len,
		  uint32_t mtu, uint8_t *out, size_t outlen,
		  uint32_t *seg_lens, int max_segs)
{
	struct flat_sink fs = { out, outlen, 0, seg_lens, max_segs, 0 };
	struct sn_tx_sink sink = { flat_alloc, flat_commit, &fs };
	struct virtio_net_hdr_v1 vh;
	struct sn_tx_result res;

	memcpy(&vh, vnet_hdr, sizeof(vh));
	return sn_tx_process(&vh, frame, len, mtu, 1, 1, &sink, &res);
}

/* The same engine with a multi-buffer wire's sink: a segment longer than
 * CHUNK is written as pieces, handed out last first from the far end of a
 * scratch area so that no two follow one another, then gathered into OUT
 * on commit, as the wire would send them. */
struct pieces_sink {
	struct flat_sink flat;
	uint8_t *scratch;
	uint32_t chunk;
	uint32_t npieces;	/* of the buffer in hand; 0 when it is whole */
};

static uint8_t *pieces_piece(void *ctx, uint32_t k)
{
	struct pieces_sink *s = ctx;

	return s->scratch + (size_t)(SN_MAX_FRAGS - 1 - k) * s->chunk;
}

static uint8_t *pieces_whole_alloc(void *ctx, size_t need)
{
	struct pieces_sink *s = ctx;

	s->npieces = 0;
	return flat_alloc(&s->flat, need);
}

static uint8_t *pieces_alloc(void *ctx, size_t need)
{
	struct pieces_sink *s = ctx;
	size_t n = (need + s->chunk - 1) / s->chunk;

	if (n > SN_MAX_FRAGS || !flat_alloc(&s->flat, need))
		return NULL;
	s->npieces = (uint32_t)n;
	return pieces_piece(s, 0);
}

static void pieces_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	struct pieces_sink *s = ctx;
	uint8_t *dst = s->flat.out + s->flat.used;
	uint32_t k;

	for (k = 0; k < s->npieces; k++)
		memcpy(dst + (size_t)k * s->chunk, k ? pieces_piece(s, k) : buf, sn_piece_len(len, s->chunk, k));
	flat_commit(&s->flat, dst, len);
}

int sn_tx_offload_pieces(const uint8_t *vnet_hdr, const uint8_t *frame, size_t len,
			 uint32_t mtu, uint32_t chunk, uint8_t *out, size_t outlen,
			 uint32_t *seg_lens, int max_segs)
{
	struct pieces_sink ps = { { out, outlen, 0, seg_lens, max_segs, 0 }, NULL, chunk, 0 };
	struct sn_tx_sink sink = { pieces_whole_alloc, pieces_commit, &ps, pieces_alloc, pieces_piece, chunk };
	struct virtio_net_hdr_v1 vh;
	struct sn_tx_result res;
	int rc;

	if (!chunk)
		return -EINVAL;
	ps.scratch = malloc((size_t)SN_MAX_FRAGS * chunk);
	if (!ps.scratch)
		return -ENOMEM;
	memcpy(&vh, vnet_hdr, sizeof(vh));
	rc = sn_tx_process(&vh, frame, len, mtu, 1, 1, &sink, &res);
	free(ps.scratch);
	return rc;
}

/* ---- hardware GRO over one batch ---------------------------------------- */

/* What a queue's Rx would write to its host tap, captured in place. */
struct gro_capture {
	const uint8_t *region;
	uint8_t *out;
	size_t cap, used;
	struct sn_gro_out *meta;
	uint32_t max, n;
	int overflow;
};

static struct sn_gro_out *capture_start(struct gro_capture *c, uint32_t len)
{
	struct sn_gro_out *m;

	if (c->n >= c->max || c->used + len > c->cap) {
		c->overflow = 1;
		return NULL;
	}
	m = &c->meta[c->n++];
	memset(m, 0, sizeof(*m));
	m->offset = (uint32_t)c->used;
	m->len = len;
	c->used += len;
	return m;
}

static void capture_vh(struct sn_gro_out *m, const struct virtio_net_hdr_v1 *vh)
{
	m->flags = vh->flags;
	m->gso_type = vh->gso_type;
	m->hdr_len = vh->hdr_len;
	m->gso_size = vh->gso_size;
	m->csum_start = vh->csum_start;
	m->csum_offset = vh->csum_offset;
}

static void capture_gro(void *ctx, const struct sn_hw_gro_frame *f)
{
	struct gro_capture *c = ctx;
	struct sn_gro_out *m = capture_start(c, f->len);
	uint8_t *dst;
	int i;

	if (!m)
		return;
	dst = c->out + m->offset;
	m->nsegs = f->nsegs;
	if (f->nsegs == 1) {	/* verified when it came in: up as sn_rx.c puts it */
		struct virtio_net_hdr_v1 vh = f->vh;

		memcpy(dst, c->region + f->addrs[0], f->len);
		sn_rx_csum_mark_verified(&vh, dst, f->len);
		capture_vh(m, &vh);
		return;
	}
	capture_vh(m, &f->vh);
	memcpy(dst, f->hdr, f->hlen);
	dst += f->hlen;
	for (i = 0; i < f->nsegs; i++) {
		memcpy(dst, c->region + f->addrs[i] + f->hlen, f->lens[i]);
		dst += f->lens[i];
	}
}

/* A frame the engine did not take: up alone with the Rx path's verdict. */
static void capture_plain(struct gro_capture *c, const struct sn_desc *d)
{
	struct virtio_net_hdr_v1 vh = { 0 };
	struct sn_gro_out *m = capture_start(c, d->len);

	if (!m)
		return;
	memcpy(c->out + m->offset, c->region + d->addr, d->len);
	if (sn_rx_csum(c->region + d->addr, d->len) > 0)
		sn_rx_csum_mark_verified(&vh, c->out + m->offset, d->len);
	capture_vh(m, &vh);
	m->nsegs = 1;
}

int sn_hw_gro_batch(const uint8_t *frames, const uint32_t *lens, uint32_t n,
		    uint8_t *out, size_t outlen, struct sn_gro_out *meta,
		    uint32_t max_out)
{
	struct gro_capture c = { .out = out, .cap = outlen, .meta = meta, .max = max_out };
	struct sn_hw_gro *g = malloc(sizeof(*g));
	uint8_t *region;
	size_t total = 0, off = 0;
	uint32_t i;

	for (i = 0; i < n; i++)
		total += lens[i];
	region = malloc(total ? total : 1);
	if (!g || !region) {
		free(g);
		free(region);
		return -ENOMEM;
	}
	memcpy(region, frames, total);
	c.region = region;
	sn_hw_gro_init(g, region, capture_gro, &c);
	for (i = 0; i < n; i++) {
		struct sn_desc d = { .addr = off, .len = lens[i] };

		if (!sn_hw_gro_receive(g, &d))
			capture_plain(&c, &d);
		off += lens[i];
	}
	sn_hw_gro_flush_all(g);
	free(g);
	free(region);
	return c.overflow ? -ENOBUFS : (int)c.n;
}

uint32_t sn_rss_steer_vector(const uint8_t *key, const uint8_t *data, size_t len)
{
	struct sn_rss_config rss = { 0 };
	struct softena_steer *st = malloc(sizeof(*st));
	uint32_t h;

	if (!st)
		return 0xffffffffu;
	memcpy(rss.key, key, SN_RSS_KEY_SIZE);
	sn_rss_steer_fill(&rss, 1, 1, st);
	h = sn_rss_steer_hash(st, data, len);
	free(st);
	return h;
}
