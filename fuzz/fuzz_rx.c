// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the Rx path's packet engines: frames from the wire
 * through sn_parse(), sn_rx_csum() and hardware GRO (sn_hw_gro.c), as
 * sn_rx.c drives them, and through the jumbo path's gather-and-sum, with
 * every frame handed up checked against the harness's own parser and
 * checksums (ref.h).
 *
 * Input: records, one after another.
 *   0xff T       end of a NAPI poll under gro-flush-timeout, T us later
 *   OP LL DATA   a frame of LL (big-endian) bytes, then (OP >> 1 & 7) clones
 *                of it as the next segments of its flow (sequence and IPv4
 *                ID advanced); OP & 1: the harness fixes their checksums;
 *                OP & 0x10: then 3 more bytes OFF OFF XOR spoil the last one
 * The checksum fixing and the clones let the fuzzer reach merging, which
 * random bytes almost never would.
 *
 * Invariants (abort on any):
 *  - every frame handed up as verified has checksums that verify, and
 *    marked for the host (sn_rx_csum_mark_verified()), completing its
 *    CHECKSUM_PARTIAL gives it back byte for byte;
 *  - a frame whose checksums verify is not called bad;
 *  - a frame gathered from pieces (sn_csum_gather(), cut at odd and even
 *    places) is copied exactly and gets sn_rx_csum()'s verdict from its sum;
 *  - a merged frame holds only checksum-good segments of one flow (same
 *    addresses, ports, ACK), in sequence, each but the last a full gso_size;
 *    its lengths, IP header and CHECKSUM_PARTIAL seed are right;
 *  - every frame offered goes up exactly once;
 *  - nothing reads outside a frame (frames sit between poisoned gaps).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/asan_interface.h>

#include "sn_hw_gro.h"
#include "sn_pkt.h"
#include "ref.h"

#define MAX_FRAMES	96
#define GAP		64	/* poisoned bytes around every frame */
#define HOLD_NS		50000	/* gro-flush-timeout of the 0xff records */

struct rx_run {
	uint8_t *region;
	uint32_t nframes;
	uint64_t addr[MAX_FRAMES];
	uint32_t len[MAX_FRAMES];
	uint8_t seen[MAX_FRAMES];
};

static int frame_of(const struct rx_run *run, uint64_t addr)
{
	uint32_t i;

	for (i = 0; i < run->nframes; i++)
		if (run->addr[i] == addr)
			return (int)i;
	CHECK(0, "handed up a frame that was never offered (addr %llu)",
	      (unsigned long long)addr);
	return -1;
}

static void mark_seen(struct rx_run *run, uint64_t addr)
{
	int i = frame_of(run, addr);

	CHECK(!run->seen[i], "frame %d handed up twice", i);
	run->seen[i] = 1;
}

/* A frame going up alone: DATA_VALID only on checksums that verify. */
static void check_single(const uint8_t *f, size_t len, int data_valid)
{
	struct virtio_net_hdr_v1 vh = { 0 };
	struct ref_frame r;
	uint8_t *buf;
	size_t field;
	uint32_t c;

	if (!data_valid)
		return;
	CHECK(ref_csum_ok(f, len), "DATA_VALID on a frame whose checksums do not verify");
	/* Up as sn_rx.c marks it for the host: CHECKSUM_PARTIAL at its L4
	 * checksum, which completed gives back the frame the wire brought. */
	buf = malloc(len);
	CHECK(buf, "out of memory");
	memcpy(buf, f, len);
	CHECK(!sn_rx_csum_mark_verified(&vh, buf, len), "a verified frame could not be marked");
	ref_parse(f, len, &r);
	field = r.l4 + (r.proto == 6 ? 16 : 6);
	CHECK(vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && vh.csum_start == r.l4 &&
	      vh.csum_start + vh.csum_offset == field,
	      "marked flags %u at %u+%u, the L4 checksum is at %zu",
	      vh.flags, vh.csum_start, vh.csum_offset, field);
	/* Completed as skb_checksum_help() does: a sum of 0 goes out as
	 * 0xffff, its other form, which is what UDP puts there; a TCP
	 * checksum of 0 then comes back as 0xffff, the same sum. */
	c = ~ref_sum(buf + r.l4, r.end - r.l4, 0) & 0xffff;
	if (!c)
		c = 0xffff;
	if (c == 0xffff && !f[field] && !f[field + 1])
		c = 0;
	buf[field] = (uint8_t)(c >> 8);
	buf[field + 1] = (uint8_t)c;
	CHECK(!memcmp(buf, f, len), "completing the marked frame does not give it back");
	free(buf);
}

/* Jumbo Rx's way to a verdict: the frame gathered from three pieces while
 * summed, then checked from that sum; it must agree with sn_rx_csum(). */
static void check_gathered(const uint8_t *f, size_t len, int verdict)
{
	size_t a = len / 3, b = len - len / 5;
	struct iovec pieces[3] = {
		{ (void *)f, a }, { (void *)(f + a), b - a }, { (void *)(f + b), len - b },
	};
	uint8_t *buf = malloc(len + 1);
	uint32_t sum;

	CHECK(buf, "out of memory");
	sum = sn_csum_gather(buf, pieces, 3);
	CHECK(!memcmp(buf, f, len), "the gather changed the frame's bytes");
	CHECK(sn_rx_csum_summed(buf, len, sum) == verdict,
	      "gathered: verdict %d, sn_rx_csum() says %d",
	      sn_rx_csum_summed(buf, len, sum), verdict);
	free(buf);
}

/* A merged frame: rebuild it as the host would read it, then check it
 * whole and segment by segment against the frames it came from. */
static void check_merged(struct rx_run *run, const struct sn_hw_gro_frame *m)
{
	uint8_t *buf = malloc(m->len);
	struct ref_frame r, o;
	uint32_t total = m->hlen, seq, i, c;
	size_t n;

	CHECK(buf, "out of memory");
	for (i = 0; i < m->nsegs; i++)
		total += m->lens[i];
	CHECK(total == m->len, "merged length %u, its parts %u", m->len, total);
	memcpy(buf, m->hdr, m->hlen);
	for (n = m->hlen, i = 0; i < m->nsegs; i++) {
		memcpy(buf + n, run->region + m->addrs[i] + m->hlen, m->lens[i]);
		n += m->lens[i];
	}

	ref_parse(buf, m->len, &r);
	CHECK(r.ok && r.proto == 6, "merged frame is not a TCP frame");
	CHECK(r.end == m->len, "merged IP length ends at %zu, frame at %u", r.end, m->len);
	CHECK(ref_ip_ok(buf, &r), "merged IPv4 header checksum wrong");
	CHECK(r.l4 + r.l4_hlen == m->hlen, "merged headers %zu, hdr_len %u",
	      r.l4 + r.l4_hlen, m->hlen);
	CHECK(m->vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM, "merged flags %#x", m->vh.flags);
	CHECK(m->vh.gso_type == (r.ipver == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6),
	      "gso_type %u for IPv%d", m->vh.gso_type, r.ipver);
	CHECK(m->vh.hdr_len == m->hlen && m->vh.csum_start == r.l4 && m->vh.csum_offset == 16,
	      "vnet header hdr_len %u csum_start %u csum_offset %u",
	      m->vh.hdr_len, m->vh.csum_start, m->vh.csum_offset);
	CHECK(m->vh.gso_size == m->lens[0], "gso_size %u, first segment %u",
	      m->vh.gso_size, m->lens[0]);

	/* Complete CHECKSUM_PARTIAL as the host would: the seeded field plus
	 * the sum of the L4 bytes must give a checksum that verifies. */
	c = ~ref_sum(buf + r.l4, r.end - r.l4, 0) & 0xffff;
	buf[r.l4 + 16] = (uint8_t)(c >> 8);
	buf[r.l4 + 17] = (uint8_t)c;
	CHECK(ref_csum_ok(buf, m->len), "merged CHECKSUM_PARTIAL seed wrong");

	seq = ref_be32(buf + r.l4 + 4);
	for (i = 0; i < m->nsegs; i++) {
		const uint8_t *f = run->region + m->addrs[i];
		int k = frame_of(run, m->addrs[i]);

		mark_seen(run, m->addrs[i]);
		ref_parse(f, run->len[k], &o);
		CHECK(ref_csum_ok(f, run->len[k]), "segment %u (frame %d) merged with a bad checksum", i, k);
		CHECK(o.ipver == r.ipver && o.l3 == r.l3 && o.proto == 6, "segment %u of another kind", i);
		CHECK(!memcmp(f, buf, r.l3), "segment %u: other MACs or tags", i);
		CHECK(!memcmp(f + o.l3 + (r.ipver == 4 ? 12 : 8), buf + r.l3 + (r.ipver == 4 ? 12 : 8),
			      r.ipver == 4 ? 8 : 32), "segment %u: other addresses", i);
		CHECK(!memcmp(f + o.l4, buf + r.l4, 4), "segment %u: other ports", i);
		CHECK(!memcmp(f + o.l4 + 8, buf + r.l4 + 8, 4), "segment %u: other ACK", i);
		CHECK(o.l4 + o.l4_hlen == m->hlen, "segment %u: headers of another length", i);
		CHECK(o.end == run->len[k] && o.end - m->hlen == m->lens[i],
		      "segment %u: payload %u, frame says %zu", i, m->lens[i], o.end - m->hlen);
		CHECK(ref_be32(f + o.l4 + 4) == seq, "segment %u out of sequence", i);
		CHECK(m->lens[i] <= m->vh.gso_size, "segment %u longer than gso_size", i);
		CHECK(i + 1 == m->nsegs || m->lens[i] == m->vh.gso_size, "short segment %u inside", i);
		seq += m->lens[i];
	}
	free(buf);
}

static void deliver(void *ctx, const struct sn_hw_gro_frame *m)
{
	struct rx_run *run = ctx;

	CHECK(m->nsegs >= 1 && m->nsegs <= SN_HW_GRO_MAX_SEGS, "nsegs %u", m->nsegs);
	if (m->nsegs == 1) {
		int k = frame_of(run, m->addrs[0]);

		CHECK(m->len == run->len[k], "held frame %d went up as %u bytes of %u",
		      k, m->len, run->len[k]);
		mark_seen(run, m->addrs[0]);
		/* sn_rx.c hands it up as DATA_VALID, validated on the way in. */
		check_single(run->region + m->addrs[0], m->len, 1);
		return;
	}
	check_merged(run, m);
}

/* The next segment of a frame's flow: sequence and IPv4 ID moved on. */
static void advance(uint8_t *f, size_t len, uint32_t k)
{
	struct ref_frame r;
	uint32_t seq;
	unsigned id;

	ref_parse(f, len, &r);
	if (!r.ok || r.proto != 6)
		return;
	seq = ref_be32(f + r.l4 + 4) + k * (uint32_t)(r.end - r.l4 - r.l4_hlen);
	f[r.l4 + 4] = (uint8_t)(seq >> 24);
	f[r.l4 + 5] = (uint8_t)(seq >> 16);
	f[r.l4 + 6] = (uint8_t)(seq >> 8);
	f[r.l4 + 7] = (uint8_t)seq;
	if (r.ipver == 4) {
		id = (ref_be16(f + r.l3 + 4) + k) & 0xffff;
		f[r.l3 + 4] = (uint8_t)(id >> 8);
		f[r.l3 + 5] = (uint8_t)id;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Frames are laid out first, then offered in order: one NAPI batch
	 * cut into polls by the 0xff records. */
	uint8_t *frames = malloc(size * 8 + 1), *region;
	uint32_t cuts[MAX_FRAMES + 1] = { 0 }, ncuts = 0, flush_us[MAX_FRAMES + 1] = { 0 };
	struct rx_run run = { 0 };
	struct sn_hw_gro *g;
	size_t pos = 0, used = 0, regsize;
	uint64_t now = 1;
	uint32_t i, c = 0;

	if (!frames)
		return 0;
	while (pos < size && run.nframes < MAX_FRAMES) {
		uint8_t op = data[pos++];
		size_t len, k, clones;
		uint8_t *base;

		if (op == 0xff) {
			if (pos < size && ncuts < MAX_FRAMES) {
				cuts[ncuts] = run.nframes;
				flush_us[ncuts++] = data[pos] + 1u;
			}
			pos++;
			continue;
		}
		if (pos + 2 > size)
			break;
		len = ref_be16(data + pos);
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		clones = op >> 1 & 7;
		base = frames + used;
		memcpy(base, data + pos, len);
		pos += len;
		for (k = 0; k <= clones && run.nframes < MAX_FRAMES; k++) {
			uint8_t *f = frames + used;

			if (k) {
				memcpy(f, base, len);
				advance(f, len, (uint32_t)k);
			}
			if (op & 1)
				ref_fix(f, len);
			run.len[run.nframes++] = (uint32_t)len;
			used += len;
			if (used + len > size * 8)
				break;
		}
		if (op & 0x10 && pos + 3 <= size) {
			size_t off = ref_be16(data + pos);

			if (len)
				frames[used - len + off % len] ^= data[pos + 2];
			pos += 3;
		}
	}

	/* The region: each frame 64-aligned, as in UMEM, between poisoned
	 * gaps: the unwritten tail of a UMEM frame the engine must never read. */
	regsize = 64;
	for (i = 0; i < run.nframes; i++)
		regsize += (run.len[i] + GAP + 63) & ~(size_t)63;
	region = malloc(regsize);
	g = malloc(sizeof(*g));
	if (!region || !g) {
		free(frames);
		free(region);
		free(g);
		return 0;
	}
	ASAN_POISON_MEMORY_REGION(region, regsize);
	for (pos = 0, used = 64, i = 0; i < run.nframes; i++) {
		run.addr[i] = used;
		ASAN_UNPOISON_MEMORY_REGION(region + used, run.len[i]);
		memcpy(region + used, frames + pos, run.len[i]);
		pos += run.len[i];
		used += (run.len[i] + GAP + 63) & ~(size_t)63;
	}
	run.region = region;

	sn_hw_gro_init(g, region, deliver, &run);
	for (i = 0; i <= run.nframes; i++) {
		const uint8_t *f;
		struct sn_desc d;
		int verdict;

		while (c < ncuts && cuts[c] == i) {
			now += flush_us[c++] * 1000ull;
			g->now_ns = now;
			sn_hw_gro_flush_due(g, now, HOLD_NS);
		}
		if (i == run.nframes)
			break;
		f = region + run.addr[i];
		verdict = sn_rx_csum(f, run.len[i]);
		CHECK(verdict == 1 || !ref_csum_ok(f, run.len[i]),
		      "frame %u: checksums verify, sn_rx_csum() says %d", i, verdict);
		check_gathered(f, run.len[i], verdict);
		d = (struct sn_desc){ .addr = run.addr[i], .len = run.len[i], .stamp_ns = now };
		if (!sn_hw_gro_receive(g, &d)) {
			/* Up alone with the Rx path's own verdict (rx_check_csum). */
			mark_seen(&run, d.addr);
			check_single(f, run.len[i], verdict > 0);
		}
	}
	sn_hw_gro_flush_all(g);
	CHECK(!g->open, "sessions left open after a flush");
	for (i = 0; i < run.nframes; i++)
		CHECK(run.seen[i], "frame %u never handed up", i);

	ASAN_UNPOISON_MEMORY_REGION(region, regsize);
	free(region);
	free(g);
	free(frames);
	return 0;
}
