// SPDX-License-Identifier: GPL-2.0
/*
 * Rx coalescing, hardware GRO. The merge rules are the kernel's
 * tcp_gro_receive() with inet_gro_receive()/ipv6_gro_receive(): same flow,
 * contiguous sequence numbers, same ACK and identical TCP options, only ACK
 * (and a final PSH) set, every segment but the last a full MSS; IPv4 TOS,
 * TTL and DF equal and the ID incrementing (or fixed, with DF); IPv6 traffic
 * class and hop limit equal. Checksums are validated per segment before
 * merging; the merged frame goes up as CHECKSUM_PARTIAL, which the host
 * trusts like a NIC's verdict.
 */
#include <string.h>
#include <arpa/inet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include "sn_hw_gro.h"
#include "sn_pkt.h"

#define TCP_FLAGS_OFF	13
#define TH_PSH		0x08
#define TH_ACK		0x10
#define IP_DF_BIT	0x40	/* in the first byte of frag_off */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void sn_hw_gro_init(struct sn_hw_gro *g, uint8_t *region,
		    sn_hw_gro_deliver_fn *deliver, void *ctx)
{
	memset(g, 0, sizeof(*g));
	g->region = region;
	g->deliver = deliver;
	g->ctx = ctx;
}

/* The bytes that must match for two segments to share a session. */
static int same_flow(const struct sn_hw_gro_session *s, const uint8_t *f)
{
	uint16_t l4 = s->l4_off;

	if (memcmp(s->hdr, f, s->l3_off))	/* MACs and VLAN tags */
		return 0;
	if (s->ipver == 4) {
		if (memcmp(s->hdr + s->l3_off + 12, f + s->l3_off + 12, 8))
			return 0;
	} else if (memcmp(s->hdr + s->l3_off + 8, f + s->l3_off + 8, 32)) {
		return 0;
	}
	return !memcmp(s->hdr + l4, f + l4, 4);	/* ports */
}

static void flush(struct sn_hw_gro *g, struct sn_hw_gro_session *s)
{
	struct sn_hw_gro_frame out = {
		.hdr = s->hdr, .hlen = s->hlen, .nsegs = s->nsegs,
		.len = s->hlen + s->payload, .addrs = s->addrs, .lens = s->lens,
		.stamp_ns = s->stamp_ns,
	};
	struct sn_parsed p = { .l3_off = s->l3_off, .l4_off = s->l4_off,
			       .ipver = s->ipver, .l4_proto = IPPROTO_TCP };
	uint32_t l4_len = out.len - s->l4_off;

	s->active = 0;
	g->open--;
	if (s->nsegs == 1) {
		out.vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;	/* validated when it came in */
		g->deliver(g->ctx, &out);
		return;
	}
	if (s->ipver == 4) {
		struct iphdr *ip = (void *)(s->hdr + s->l3_off);

		ip->tot_len = htons((uint16_t)(out.len - s->l3_off));
		ip->check = 0;
		ip->check = sn_csum_fold(sn_csum_partial((void *)ip, sizeof(*ip), 0));
	} else {
		struct ipv6hdr *ip6 = (void *)(s->hdr + s->l3_off);

		ip6->payload_len = htons((uint16_t)l4_len);
	}
	if (s->psh)
		s->hdr[s->l4_off + TCP_FLAGS_OFF] |= TH_PSH;
	sn_csum_seed_partial(&out.vh, s->hdr, &p, l4_len);
	out.vh.gso_type = s->ipver == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	out.vh.hdr_len = s->hlen;
	out.vh.gso_size = s->mss;
	g->deliver(g->ctx, &out);
}

void sn_hw_gro_flush_all(struct sn_hw_gro *g)
{
	int i;

	for (i = 0; g->open && i < SN_HW_GRO_SESSIONS; i++)
		if (g->s[i].active)
			flush(g, &g->s[i]);
}

/* Can the session take another segment? Not after a push or a short
 * segment, nor at the segment limit or within an MSS of 64 KiB. */
static int complete(const struct sn_hw_gro_session *s)
{
	return s->psh || s->last_len != s->mss || s->nsegs >= SN_HW_GRO_MAX_SEGS ||
	       s->hlen - s->l3_off + s->payload + s->mss > 65535;
}

uint64_t sn_hw_gro_flush_due(struct sn_hw_gro *g, uint64_t now, uint64_t hold_ns)
{
	uint64_t due = 0;
	int i;

	if (!hold_ns) {
		sn_hw_gro_flush_all(g);
		return 0;
	}
	for (i = 0; g->open && i < SN_HW_GRO_SESSIONS; i++) {
		struct sn_hw_gro_session *s = &g->s[i];

		if (!s->active)
			continue;
		if (complete(s) || now - s->opened_ns >= hold_ns)
			flush(g, s);
		else if (!due || s->opened_ns + hold_ns < due)
			due = s->opened_ns + hold_ns;
	}
	return due;
}

static void start(struct sn_hw_gro *g, const struct sn_desc *d,
		  const struct sn_parsed *p, uint16_t hlen, uint16_t plen,
		  uint32_t seq, uint8_t flags)
{
	struct sn_hw_gro_session *s = NULL, *oldest = &g->s[0];
	const uint8_t *f = g->region + d->addr;
	int i;

	for (i = 0; i < SN_HW_GRO_SESSIONS; i++) {
		if (!g->s[i].active) {
			s = &g->s[i];
			break;
		}
		if (g->s[i].age < oldest->age)
			oldest = &g->s[i];
	}
	if (!s) {
		flush(g, oldest);
		s = oldest;
	}
	s->active = 1;
	g->open++;
	s->ipver = p->ipver;
	s->l3_off = p->l3_off;
	s->l4_off = p->l4_off;
	s->hlen = hlen;
	s->mss = plen;
	s->last_len = plen;
	s->nsegs = 1;
	s->payload = plen;
	s->next_seq = seq + plen;
	s->psh = !!(flags & TH_PSH);
	s->fixed_id = 0;
	s->ip_id = p->ipver == 4 ? rd16(f + p->l3_off + 4) : 0;
	s->age = ++g->clock;
	s->opened_ns = g->now_ns;
	s->stamp_ns = d->stamp_ns;
	s->addrs[0] = d->addr;
	s->lens[0] = plen;
	memcpy(s->hdr, f, hlen);
}

/* Do the network headers allow the merge? Sets *FIXED_ID for IPv4. */
static int ip_fits(const struct sn_hw_gro_session *s, const uint8_t *f, uint8_t *fixed_id)
{
	const uint8_t *a = s->hdr + s->l3_off, *b = f + s->l3_off;
	uint16_t id_step;
	int df;

	if (s->ipver == 6)	/* traffic class and hop limit */
		return !((a[0] ^ b[0]) & 0x0f) && !((a[1] ^ b[1]) & 0xf0) && a[7] == b[7];
	df = b[6] & IP_DF_BIT;
	if (a[1] != b[1] || a[8] != b[8] || (a[6] & IP_DF_BIT) != df)
		return 0;	/* TOS, TTL, DF */
	/* The ID counts segments, or with DF it may stay fixed: the second
	 * segment decides which, as inet_gro_flush() does. */
	id_step = (uint16_t)(rd16(b + 4) - s->ip_id);
	*fixed_id = s->fixed_id || (s->nsegs == 1 && df && id_step == 0);
	return id_step == (*fixed_id ? 0 : s->nsegs);
}

int sn_hw_gro_receive(struct sn_hw_gro *g, const struct sn_desc *d)
{
	const uint8_t *f = g->region + d->addr;
	struct sn_hw_gro_session *s = NULL;
	const struct tcphdr *th;
	struct sn_parsed p;
	uint16_t hlen, plen;
	uint32_t seq;
	uint8_t flags, fixed_id = 0;
	int i;

	if (sn_parse(f, d->len, &p) || p.l4_proto != IPPROTO_TCP || !p.l4_off)
		return 0;
	th = (const void *)(f + p.l4_off);
	hlen = (uint16_t)(p.l4_off + th->doff * 4);
	plen = (uint16_t)(p.l4_len - th->doff * 4);
	/* Frames shorter than their IP length claims, or with trailers. */
	if (hlen + plen != d->len || hlen > SN_HW_GRO_MAX_HDR)
		return 0;
	flags = f[p.l4_off + TCP_FLAGS_OFF];
	seq = ntohl(th->seq);

	for (i = 0; g->open && i < SN_HW_GRO_SESSIONS; i++)
		if (g->s[i].active && g->s[i].ipver == p.ipver &&
		    g->s[i].l3_off == p.l3_off && same_flow(&g->s[i], f)) {
			s = &g->s[i];
			break;
		}

	/* What can start or extend a session: a data segment, ACK (+PSH)
	 * only, no IPv4 options or IPv6 extension headers, a good checksum. */
	if (!plen || (flags & ~(TH_ACK | TH_PSH)) != 0 || !(flags & TH_ACK) ||
	    (p.ipver == 4 && p.l4_off - p.l3_off != sizeof(struct iphdr)) ||
	    (p.ipver == 6 && p.l4_off - p.l3_off != sizeof(struct ipv6hdr)) ||
	    sn_rx_csum(f, d->len) != 1) {
		if (s)
			flush(g, s);	/* keep the flow in order */
		return 0;
	}
	if (s) {
		const uint8_t *sh = s->hdr + s->l4_off;
		int fits = s->hlen == hlen && seq == s->next_seq &&
			   s->last_len == s->mss && plen <= s->mss &&
			   !s->psh && s->nsegs < SN_HW_GRO_MAX_SEGS &&
			   s->hlen - s->l3_off + s->payload + plen <= 65535 &&
			   !memcmp(sh + 8, f + p.l4_off + 8, 4) &&	/* ack */
			   !memcmp(sh + 20, f + p.l4_off + 20, hlen - p.l4_off - 20) &&
			   ip_fits(s, f, &fixed_id);

		if (fits) {
			s->addrs[s->nsegs] = d->addr;
			s->lens[s->nsegs] = plen;
			s->nsegs++;
			s->payload += plen;
			s->last_len = plen;
			s->next_seq = seq + plen;
			s->psh = !!(flags & TH_PSH);
			s->fixed_id = fixed_id;
			/* The newest window is the one the sender acts on. */
			memcpy(s->hdr + s->l4_off + 14, f + p.l4_off + 14, 2);
			return 1;
		}
		flush(g, s);
	}
	start(g, d, &p, hlen, plen, seq, flags);
	return 1;
}
