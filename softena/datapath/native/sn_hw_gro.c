// SPDX-License-Identifier: GPL-2.0
/*
 * Rx coalescing. The merge rules are the kernel's tcp_gro_receive(): same
 * flow, contiguous sequence numbers, same ACK and identical TCP options,
 * only ACK (and a final PSH) set, every segment but the last a full MSS.
 * Checksums are validated per segment before merging; the merged frame
 * goes up as CHECKSUM_PARTIAL, which the host trusts like a NIC's verdict.
 */
#include <string.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include "sn_dev.h"

#define TCP_FLAGS_OFF	13
#define TH_FIN		0x01
#define TH_SYN		0x02
#define TH_RST		0x04
#define TH_PSH		0x08
#define TH_ACK		0x10

/* The bytes that must match for two segments to share a session. */
static int same_flow(const struct sn_lro_session *s, const uint8_t *f)
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

static void flush(struct sn_queue *q, struct sn_lro_session *s)
{
	struct sn_dev *dev = q->dev;
	struct virtio_net_hdr_v1 vh = { 0 };
	struct iovec iov[2 + SN_LRO_MAX_SEGS];
	uint32_t l4_len, total;
	uint16_t c;
	int i;

	s->active = 0;
	q->lro.open--;
	if (s->nsegs == 1) {
		struct sn_desc d = { .addr = s->addrs[0], .len = s->hlen + s->lens[0] };

		sn_rx_deliver(q, &d, 1);	/* validated when it came in */
		return;
	}

	total = s->hlen + s->payload;
	l4_len = total - s->l4_off;
	if (s->ipver == 4) {
		struct iphdr *ip = (void *)(s->hdr + s->l3_off);

		ip->tot_len = htons((uint16_t)(total - s->l3_off));
		ip->check = 0;
		ip->check = sn_csum_fold(sn_csum_partial((void *)ip, sizeof(*ip), 0));
	} else {
		struct ipv6hdr *ip6 = (void *)(s->hdr + s->l3_off);

		ip6->payload_len = htons((uint16_t)(l4_len));
	}
	if (s->psh)
		s->hdr[s->l4_off + TCP_FLAGS_OFF] |= TH_PSH;
	/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum, as the
	 * host stack itself leaves it for a device to complete. */
	{
		struct sn_parsed p = { .l3_off = s->l3_off, .l4_off = s->l4_off,
				       .ipver = s->ipver, .l4_proto = IPPROTO_TCP };

		c = (uint16_t)~sn_csum_fold(sn_pseudo_sum(s->hdr, &p, l4_len));
		memcpy(s->hdr + s->l4_off + 16, &c, 2);
	}
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = s->ipver == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	vh.hdr_len = s->hlen;
	vh.gso_size = s->mss;
	vh.csum_start = s->l4_off;
	vh.csum_offset = 16;

	iov[0] = (struct iovec){ &vh, SN_VNET_HDR_LEN };
	iov[1] = (struct iovec){ s->hdr, s->hlen };
	for (i = 0; i < s->nsegs; i++)
		iov[2 + i] = (struct iovec){ dev->region + s->addrs[i] + s->hlen, s->lens[i] };
	if (writev(q->host_fd, iov, 2 + s->nsegs) < 0) {
		q->st.rx_hw_drops++;
	} else {
		q->st.rx_packets++;
		q->st.rx_bytes += total;
		q->st.rx_csum_unnecessary++;
		q->st.rx_hw_gro_packets++;
		q->st.rx_hw_gro_bytes += total;
		q->st.rx_hw_gro_wire_packets += s->nsegs;
		q->st.rx_hw_gro_wire_bytes += total + (uint32_t)(s->nsegs - 1) * s->hlen;
	}
	for (i = 0; i < s->nsegs; i++)
		sn_pool_put(q, s->addrs[i]);
}

void sn_lro_flush_all(struct sn_queue *q)
{
	int i;

	for (i = 0; q->lro.open && i < SN_LRO_SESSIONS; i++)
		if (q->lro.s[i].active)
			flush(q, &q->lro.s[i]);
}

static void start(struct sn_queue *q, const struct sn_desc *d,
		  const struct sn_parsed *p, uint16_t hlen, uint16_t plen,
		  uint32_t seq, uint8_t flags)
{
	struct sn_lro *l = &q->lro;
	struct sn_lro_session *s = NULL, *oldest = &l->s[0];
	int i;

	for (i = 0; i < SN_LRO_SESSIONS; i++) {
		if (!l->s[i].active) {
			s = &l->s[i];
			break;
		}
		if (l->s[i].age < oldest->age)
			oldest = &l->s[i];
	}
	if (!s) {
		flush(q, oldest);
		s = oldest;
	}
	s->active = 1;
	l->open++;
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
	s->age = ++l->clock;
	s->addrs[0] = d->addr;
	s->lens[0] = plen;
	memcpy(s->hdr, q->dev->region + d->addr, hlen);
}

int sn_lro_receive(struct sn_queue *q, const struct sn_desc *d)
{
	const uint8_t *f = q->dev->region + d->addr;
	struct sn_lro_session *s = NULL;
	const struct tcphdr *th;
	struct sn_parsed p;
	uint16_t hlen, plen;
	uint32_t seq;
	uint8_t flags;
	int i;

	if (sn_parse(f, d->len, &p) || p.l4_proto != IPPROTO_TCP || !p.l4_off)
		return 0;
	th = (const void *)(f + p.l4_off);
	hlen = (uint16_t)(p.l4_off + th->doff * 4);
	plen = (uint16_t)(p.l4_len - th->doff * 4);
	/* Frames shorter than their IP length claims, or with trailers. */
	if (hlen + plen != d->len || hlen > SN_LRO_MAX_HDR)
		return 0;
	flags = f[p.l4_off + TCP_FLAGS_OFF];
	seq = ntohl(th->seq);

	for (i = 0; q->lro.open && i < SN_LRO_SESSIONS; i++)
		if (q->lro.s[i].active && q->lro.s[i].ipver == p.ipver &&
		    q->lro.s[i].l3_off == p.l3_off && same_flow(&q->lro.s[i], f)) {
			s = &q->lro.s[i];
			break;
		}

	/* What can start or extend a session: a data segment, ACK (+PSH)
	 * only, no IPv4 options or IPv6 extension headers, a good checksum. */
	if (!plen || (flags & ~(TH_ACK | TH_PSH)) != 0 || !(flags & TH_ACK) ||
	    (p.ipver == 4 && p.l4_off - p.l3_off != sizeof(struct iphdr)) ||
	    (p.ipver == 6 && p.l4_off - p.l3_off != sizeof(struct ipv6hdr)) ||
	    sn_rx_csum(f, d->len) != 1) {
		if (s)
			flush(q, s);	/* keep the flow in order */
		return 0;
	}
	if (s) {
		const uint8_t *sh = s->hdr + s->l4_off;
		int fits = s->hlen == hlen && seq == s->next_seq &&
			   s->last_len == s->mss && plen <= s->mss &&
			   !s->psh && s->nsegs < SN_LRO_MAX_SEGS &&
			   s->hlen - s->l3_off + s->payload + plen <= 65535 &&
			   !memcmp(sh + 8, f + p.l4_off + 8, 4) &&	/* ack */
			   !memcmp(sh + 20, f + p.l4_off + 20, hlen - p.l4_off - 20);
		if (p.ipver == 4)	/* TOS and TTL, as GRO requires */
			fits = fits && s->hdr[s->l3_off + 1] == f[p.l3_off + 1] &&
			       s->hdr[s->l3_off + 8] == f[p.l3_off + 8];
		if (fits) {
			s->addrs[s->nsegs] = d->addr;
			s->lens[s->nsegs] = plen;
			s->nsegs++;
			s->payload += plen;
			s->last_len = plen;
			s->next_seq = seq + plen;
			s->psh = !!(flags & TH_PSH);
			/* The newest window is the one the sender acts on. */
			memcpy(s->hdr + s->l4_off + 14, f + p.l4_off + 14, 2);
			return 1;
		}
		flush(q, s);
	}
	start(q, d, &p, hlen, plen, seq, flags);
	return 1;
}
