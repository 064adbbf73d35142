/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The harnesses' own view of a frame: a parser and checksums written apart
 * from the datapath's (byte by byte, big-endian sums, no shared helper), so
 * an invariant checked with them does not inherit the datapath's mistakes.
 * Slow and plain on purpose.
 */
#ifndef FUZZ_REF_H
#define FUZZ_REF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken invariant: say which, then abort so libFuzzer keeps the input. */
#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "invariant broken at %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

struct ref_frame {
	size_t l3, l4, end;	/* offsets; END is where IP says the packet ends */
	int ipver;		/* 4, 6, 0 not IP */
	int proto;		/* L4 protocol, after extension headers */
	int fragment;
	int ok;			/* a TCP or UDP header a stack would accept */
	size_t l4_hlen;		/* TCP: doff * 4; UDP: 8 */
};

static inline unsigned ref_be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static inline uint32_t ref_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 1071 over 16-bit big-endian words, folded at every step. */
static inline uint32_t ref_sum(const uint8_t *p, size_t n, uint32_t s)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += ref_be16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static inline void ref_parse(const uint8_t *f, size_t len, struct ref_frame *r)
{
	size_t off = 14;
	unsigned type;
	int tags = 0;

	*r = (struct ref_frame){ 0 };
	if (len < 14)
		return;
	type = ref_be16(f + 12);
	while ((type == 0x8100 || type == 0x88a8) && tags < 2) {
		if (len < off + 4)
			return;
		type = ref_be16(f + off + 2);
		off += 4;
		tags++;
	}
	if (type == 0x0800) {
		size_t ihl, tot;

		if (len < off + 20 || f[off] >> 4 != 4)
			return;
		ihl = (size_t)(f[off] & 15) * 4;
		tot = ref_be16(f + off + 2);
		if (ihl < 20 || tot < ihl || off + tot > len)
			return;
		r->ipver = 4;
		r->l3 = off;
		r->l4 = off + ihl;
		r->end = off + tot;
		r->proto = f[off + 9];
		r->fragment = (ref_be16(f + off + 6) & 0x3fff) != 0;
	} else if (type == 0x86dd) {
		size_t l4 = off + 40, end;
		int nh;

		if (len < l4 || f[off] >> 4 != 6)
			return;
		end = l4 + ref_be16(f + off + 4);
		if (end > len)
			return;
		/* The next-header byte first, then the skip. */
		nh = f[off + 6];
		while (nh == 0 || nh == 43 || nh == 60 || nh == 44) {
			int next;

			if (l4 + 8 > end)
				return;
			next = f[l4];
			if (nh == 44) {
				r->fragment = 1;
				l4 += 8;
			} else {
				l4 += ((size_t)f[l4 + 1] + 1) * 8;
			}
			nh = next;
		}
		if (l4 > end)
			return;
		r->ipver = 6;
		r->l3 = off;
		r->l4 = l4;
		r->end = end;
		r->proto = nh;
	} else {
		return;
	}
	if (r->fragment)
		return;
	if (r->proto == 6) {
		size_t doff;

		if (r->l4 + 20 > r->end)
			return;
		doff = (size_t)(f[r->l4 + 12] >> 4) * 4;
		if (doff < 20 || r->l4 + doff > r->end)
			return;
		r->l4_hlen = doff;
		r->ok = 1;
	} else if (r->proto == 17) {
		if (r->l4 + 8 > r->end)
			return;
		r->l4_hlen = 8;
		r->ok = 1;
	}
}

/* The pseudo-header sum of a parsed frame for L4LEN bytes of L4. */
static inline uint32_t ref_pseudo(const uint8_t *f, const struct ref_frame *r, size_t l4len)
{
	uint32_t s;

	if (r->ipver == 4)
		s = ref_sum(f + r->l3 + 12, 8, 0);
	else
		s = ref_sum(f + r->l3 + 8, 32, 0);
	s = ref_sum((const uint8_t[]){ 0, (uint8_t)r->proto }, 2, s);
	s = ref_sum((const uint8_t[]){ (uint8_t)(l4len >> 24), (uint8_t)(l4len >> 16),
				       (uint8_t)(l4len >> 8), (uint8_t)l4len }, 4, s);
	return s;
}

/* Is the IPv4 header checksum right (always, for IPv6)? */
static inline int ref_ip_ok(const uint8_t *f, const struct ref_frame *r)
{
	return r->ipver != 4 || ref_sum(f + r->l3, r->l4 - r->l3, 0) == 0xffff;
}

/* Would a stack that checks everything accept this frame's checksums:
 * an IP header, a TCP or UDP header, and checksums that verify? */
static inline int ref_csum_ok(const uint8_t *f, size_t len)
{
	struct ref_frame r;
	size_t n;

	ref_parse(f, len, &r);
	if (!r.ok || !ref_ip_ok(f, &r))
		return 0;
	n = r.end - r.l4;
	if (r.proto == 17 && r.ipver == 4 && !f[r.l4 + 6] && !f[r.l4 + 7])
		return 0;	/* no checksum: nothing was verified */
	return ref_sum(f + r.l4, n, ref_pseudo(f, &r, n)) == 0xffff;
}

/* Make a frame's checksums right (IPv4 header, TCP or UDP), if it parses. */
static inline void ref_fix(uint8_t *f, size_t len)
{
	struct ref_frame r;
	size_t n, field;
	uint32_t c;

	ref_parse(f, len, &r);
	if (r.ipver == 4) {
		f[r.l3 + 10] = f[r.l3 + 11] = 0;
		c = ~ref_sum(f + r.l3, r.l4 - r.l3, 0) & 0xffff;
		f[r.l3 + 10] = (uint8_t)(c >> 8);
		f[r.l3 + 11] = (uint8_t)c;
	}
	if (!r.ok)
		return;
	n = r.end - r.l4;
	field = r.l4 + (r.proto == 6 ? 16 : 6);
	f[field] = f[field + 1] = 0;
	c = ~ref_sum(f + r.l4, n, ref_pseudo(f, &r, n)) & 0xffff;
	if (r.proto == 17 && c == 0)
		c = 0xffff;
	f[field] = (uint8_t)(c >> 8);
	f[field + 1] = (uint8_t)c;
}

#endif
