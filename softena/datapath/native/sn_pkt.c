// SPDX-License-Identifier: GPL-2.0
/*
 * Packet parsing, the checksums of TCP/UDP/IP headers (the arithmetic is
 * sn_csum.c's) and TCP segmentation.
 *
 * Written by hand: these run once per frame on the hot path, inside the
 * batch call, where no library routine fits (the kernel's own helpers are not
 * available to user space).
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <netinet/in.h>

#include "sn_pkt.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int sn_parse(const uint8_t *f, size_t len, struct sn_parsed *p)
{
	size_t off = ETH_HLEN;
	uint16_t proto;
	int tags = 0;

	memset(p, 0, sizeof(*p));
	if (len < ETH_HLEN)
		return -EINVAL;
	proto = rd16(f + 12);
	while ((proto == ETH_P_8021Q || proto == ETH_P_8021AD) && tags++ < 2) {
		if (len < off + 4)
			return -EINVAL;
		proto = rd16(f + off + 2);
		off += 4;
	}

	if (proto == ETH_P_IP) {
		const struct iphdr *ip = (const void *)(f + off);
		size_t ihl, tot;

		if (len < off + sizeof(*ip))
			return -EINVAL;
		ihl = (size_t)ip->ihl * 4;
		tot = ntohs(ip->tot_len);
		if (ip->version != 4 || ihl < sizeof(*ip) || tot < ihl ||
		    len < off + tot)
			return -EINVAL;
		p->ipver = 4;
		p->l3_off = (uint16_t)off;
		p->l4_proto = ip->protocol;
		p->is_fragment = (ntohs(ip->frag_off) & 0x3fff) != 0;
		p->l4_off = (uint16_t)(off + ihl);
		p->l4_len = (uint16_t)(tot - ihl);
	} else if (proto == ETH_P_IPV6) {
		const struct ipv6hdr *ip6 = (const void *)(f + off);
		size_t l4 = off + sizeof(*ip6), end;
		uint8_t nh;

		if (len < l4)
			return -EINVAL;
		end = l4 + ntohs(ip6->payload_len);
		if (ip6->version != 6 || len < end)
			return -EINVAL;
		p->ipver = 6;
		p->l3_off = (uint16_t)off;
		nh = ip6->nexthdr;
		/* Walk the extension headers a host stack emits. */
		for (;;) {
			if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
			    nh == IPPROTO_DSTOPTS) {
				if (end < l4 + 8)
					return -EINVAL;
				nh = f[l4];
				l4 += ((size_t)f[l4 + 1] + 1) * 8;
			} else if (nh == IPPROTO_FRAGMENT) {
				if (end < l4 + 8)
					return -EINVAL;
				p->is_fragment = 1;
				nh = f[l4];
				l4 += 8;
			} else {
				break;
			}
		}
		if (l4 > end)
			return -EINVAL;
		p->l4_proto = nh;
		p->l4_off = (uint16_t)l4;
		p->l4_len = (uint16_t)(end - l4);
	} else {
		return 0;
	}

	if (p->is_fragment ||
	    (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP)) {
		p->l4_off = 0;
		return 0;
	}
	if (p->l4_proto == IPPROTO_TCP) {
		const struct tcphdr *th = (const void *)(f + p->l4_off);

		/* A data offset under 5 words puts the payload inside the
		 * header: GRO compared options over a negative length and TSO
		 * cut segments in the header (found by fuzz/). */
		if (p->l4_len < sizeof(*th) || th->doff < 5 ||
		    p->l4_len < th->doff * 4u)
			return -EINVAL;
	} else if (p->l4_len < sizeof(struct udphdr)) {
		return -EINVAL;
	}
	return 0;
}

uint32_t sn_pseudo_base(const uint8_t *frame, const struct sn_parsed *p)
{
	uint16_t proto = htons(p->l4_proto);

	if (p->ipver == 4)	/* saddr, daddr */
		return sn_csum_add(sn_csum_partial(frame + p->l3_off + 12, 8, 0), proto);
	return sn_csum_add(sn_csum_partial(frame + p->l3_off + 8, 32, 0), proto);
}

/* A 16- or 32-bit field as the checksum reads it: memory order, at an even
 * offset from the start of what is summed. */
static inline uint32_t csum_word16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t csum_word32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * What every segment of a GSO frame has in common, summed once: each
 * segment's checksums are these sums with its own fields added, as the
 * kernel's csum_replace*() helpers update a checksum for changed fields
 * (RFC 1624) instead of summing the header again.
 */
struct tso_sums {
	uint32_t ip;		/* the IPv4 header without tot_len, id and check */
	uint32_t tcp;		/* the TCP header without seq, its flags word and check */
	uint32_t pseudo;	/* sn_pseudo_base(): addresses and protocol */
};

/* TCP's 16-bit word at offset 12: data offset, reserved bits and flags. */
#define TCP_FLAGS_WORD	12

static void tso_sums_init(struct tso_sums *t, const uint8_t *f, const struct sn_parsed *p,
			  size_t l4_hlen)
{
	const uint8_t *ip = f + p->l3_off, *th = f + p->l4_off;
	uint32_t sum;

	t->ip = 0;
	if (p->ipver == 4) {
		sum = sn_csum_partial(ip, (size_t)(ip[0] & 0xf) * 4, 0);
		sum = sn_csum_sub(sum, csum_word16(ip + 2));	/* tot_len */
		sum = sn_csum_sub(sum, csum_word16(ip + 4));	/* id */
		t->ip = sn_csum_sub(sum, csum_word16(ip + 10));	/* check */
	}
	sum = sn_csum_partial(th, l4_hlen, 0);
	sum = sn_csum_sub(sum, csum_word32(th + 4));		/* seq */
	sum = sn_csum_sub(sum, csum_word16(th + TCP_FLAGS_WORD));
	t->tcp = sn_csum_sub(sum, csum_word16(th + 16));	/* check */
	t->pseudo = sn_pseudo_base(f, p);
}

/* Fill in the checksums of segment OUT, whose headers are final: the IPv4
 * header's, and the TCP one from the shared sums, the segment's own fields,
 * its pseudo-header length L4_LEN and DATA_SUM, the payload's sum taken as
 * the payload was copied in. */
static void tso_fill_csums(uint8_t *out, const struct sn_parsed *p, const struct tso_sums *t,
			   uint32_t l4_len, uint32_t data_sum)
{
	uint8_t *th = out + p->l4_off;
	uint32_t sum;
	uint16_t c;

	if (p->ipver == 4) {
		uint8_t *ip = out + p->l3_off;

		sum = sn_csum_add(t->ip, csum_word16(ip + 2));
		c = sn_csum_fold(sn_csum_add(sum, csum_word16(ip + 4)));
		memcpy(ip + 10, &c, 2);
	}
	sum = sn_csum_add(t->tcp, csum_word32(th + 4));
	sum = sn_csum_add(sum, csum_word16(th + TCP_FLAGS_WORD));
	sum = sn_csum_add(sum, sn_pseudo_len(t->pseudo, p, l4_len));
	c = sn_csum_fold(sn_csum_add(sum, data_sum));
	memcpy(th + 16, &c, 2);
}

/* A buffer for a segment of NEED bytes whose headers take HLEN: in pieces
 * when the sink offers them and the segment would not fit one (*PIECES
 * set), else contiguous. An odd HLEN would start the payload's pieces at
 * odd offsets of its sum; no Ethernet/IP/TCP header adds up to one, but
 * such a frame takes the contiguous buffer rather than a wrong sum. */
static uint8_t *seg_alloc(const struct sn_tx_sink *sink, size_t need, size_t hlen, int *pieces)
{
	*pieces = sink->alloc_pieces && need > sink->chunk && hlen < sink->chunk && !(hlen & 1) &&
		  !(sink->chunk & 1);
	return *pieces ? sink->alloc_pieces(sink->ctx, need) : sink->alloc(sink->ctx, need);
}

/* Copy a segment's LEN payload bytes from SRC to offset AT of OUT (pieces
 * after the first come from the sink); return their partial sum. */
static uint32_t seg_copy_payload(const struct sn_tx_sink *sink, uint8_t *out, size_t at,
				 const uint8_t *src, size_t len, int pieces)
{
	uint32_t sum = 0, k = 0;
	size_t room, n;

	if (!pieces)
		return sn_csum_copy(out + at, src, len, 0);
	for (room = sink->chunk - at; len; room = sink->chunk) {
		n = len < room ? len : room;
		/* Every piece but the last is even, so the sums just add. */
		sum = sn_csum_copy(out + at, src, n, sum);
		src += n;
		len -= n;
		if (len) {
			out = sink->piece(sink->ctx, ++k);
			at = 0;
		}
	}
	return sum;
}

/* Segment a TCP GSO frame into MSS-sized wire frames with full checksums. */
static int tso_segment(const struct virtio_net_hdr_v1 *vh, const uint8_t *f,
		       size_t len, uint32_t mtu, const struct sn_tx_sink *sink,
		       struct sn_tx_result *res)
{
	struct sn_parsed p;
	struct tso_sums sums;
	const struct tcphdr *th;
	size_t hlen, payload, off;
	uint32_t seq, mss = vh->gso_size;
	uint16_t ip_id = 0;
	int nseg = 0;

	if (sn_parse(f, len, &p) || !p.l4_off || p.l4_proto != IPPROTO_TCP)
		return -EINVAL;
	th = (const void *)(f + p.l4_off);
	hlen = p.l4_off + th->doff * 4u;
	if (mss == 0 || hlen >= len)
		return -EINVAL;
	/* Headers that fill the wire's MTU leave no room for an MSS: the
	 * clamp below wrapped to a huge one, and each segment went out past
	 * the MTU, or divided by zero (found by fuzz/fuzz_tx.c). */
	if (hlen - p.l3_off >= mtu)
		return -EMSGSIZE;
	/* The host picks the MSS from ena0's MTU; never exceed the wire's. */
	if (mss + (hlen - p.l3_off) > mtu)
		mss = mtu - (uint32_t)(hlen - p.l3_off);
	payload = len - hlen;
	if ((payload + mss - 1) / mss > SN_TSO_MAX_SEGS)
		return -EINVAL;
	seq = ntohl(th->seq);
	if (p.ipver == 4)
		ip_id = rd16(f + p.l3_off + 4);
	tso_sums_init(&sums, f, &p, hlen - p.l4_off);

	for (off = 0; off < payload; off += mss, nseg++) {
		size_t seg = payload - off < mss ? payload - off : mss;
		uint32_t l4_len = (uint32_t)(hlen - p.l4_off + seg);
		int pieces;
		uint8_t *out = seg_alloc(sink, hlen + seg, hlen, &pieces);
		struct tcphdr *oth;
		uint32_t data_sum;

		if (!out)
			return nseg ? nseg : -ENOBUFS;
		memcpy(out, f, hlen);	/* the headers stay in the first piece */
		data_sum = seg_copy_payload(sink, out, hlen, f + hlen + off, seg, pieces);
		if (p.ipver == 4) {
			struct iphdr *ip = (void *)(out + p.l3_off);

			ip->tot_len = htons((uint16_t)(hlen - p.l3_off + seg));
			ip->id = htons((uint16_t)(ip_id + nseg));
		} else {
			struct ipv6hdr *ip6 = (void *)(out + p.l3_off);

			ip6->payload_len = htons((uint16_t)(hlen - p.l3_off -
							   sizeof(*ip6) + seg));
		}
		oth = (void *)(out + p.l4_off);
		oth->seq = htonl(seq + (uint32_t)off);
		if (off + seg < payload)	/* FIN and PSH end the burst */
			oth->fin = oth->psh = 0;
		if (off)			/* CWR marks the first only */
			oth->cwr = 0;
		tso_fill_csums(out, &p, &sums, l4_len, data_sum);
		sink->commit(sink->ctx, out, (uint32_t)(hlen + seg));
		res->wire_bytes += (uint32_t)(hlen + seg);
	}
	res->gso = 1;
	res->csum = 1;
	return nseg;
}

int sn_tx_process(const struct virtio_net_hdr_v1 *vh, const uint8_t *frame,
		  size_t len, uint32_t mtu, int tso, int tx_csum,
		  const struct sn_tx_sink *sink, struct sn_tx_result *res)
{
	uint8_t gso = vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint8_t *out;
	int n;

	memset(res, 0, sizeof(*res));
	if (len < ETH_HLEN)
		return -EINVAL;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6) {
		if (!tso)
			return -EINVAL;	/* the host was not offered TSO */
		n = tso_segment(vh, frame, len, mtu, sink, res);
		if (n > 0)
			res->wire_frames = (uint32_t)n;
		return n;
	}
	if (gso != VIRTIO_NET_HDR_GSO_NONE)
		return -EINVAL;
	if (len > (size_t)mtu + ETH_HLEN + 8)	/* room for two VLAN tags */
		return -EMSGSIZE;

	/* Refuse a bad checksum request before taking a buffer: the sink's
	 * buffer holds pool frames that only a commit gives back (found by
	 * fuzz/fuzz_tx.c: they leaked on every such frame). */
	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (!tx_csum || (size_t)vh->csum_start + vh->csum_offset + 2 > len ||
	     vh->csum_start >= len))
		return -EINVAL;
	out = sink->alloc(sink->ctx, len);
	if (!out)
		return -ENOBUFS;
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		size_t start = vh->csum_start, field = start + vh->csum_offset;
		uint16_t c;

		/* The stack seeded the field with the pseudo-header sum; the
		 * rest is summed as it is copied. */
		memcpy(out, frame, start);
		c = sn_csum_fold(sn_csum_copy(out + start, frame + start, len - start, 0));
		if (c == 0 && field - start == 6)	/* UDP: 0 means none */
			c = 0xffff;
		memcpy(out + field, &c, 2);
		res->csum = 1;
	} else {
		memcpy(out, frame, len);
	}
	sink->commit(sink->ctx, out, (uint32_t)len);
	res->wire_frames = 1;
	res->wire_bytes = (uint32_t)len;
	return 1;
}

void sn_csum_seed_partial(struct virtio_net_hdr_v1 *vh, uint8_t *frame,
			  const struct sn_parsed *p, uint32_t l4_len)
{
	uint16_t field = p->l4_proto == IPPROTO_TCP ? 16 : 6;
	uint16_t c = (uint16_t)~sn_csum_fold(sn_pseudo_sum(frame, p, l4_len));

	memcpy(frame + p->l4_off + field, &c, 2);
	vh->flags = (uint8_t)((vh->flags & ~VIRTIO_NET_HDR_F_DATA_VALID) | VIRTIO_NET_HDR_F_NEEDS_CSUM);
	vh->csum_start = p->l4_off;
	vh->csum_offset = field;
}

/* The Rx checksum check of a frame parsed into P; FRAME_SUM, when given,
 * is the partial sum of the whole frame, taken as it was gathered: the L4
 * sum is then what is left after taking out the headers', with no second
 * pass over the payload. */
static int rx_csum(const uint8_t *frame, size_t len, const uint32_t *frame_sum,
		   struct sn_parsed *p)
{
	const uint8_t *ip;
	uint32_t sum;

	if (sn_parse(frame, len, p) || !p->ipver)
		return p->ipver ? -1 : 0;
	ip = frame + p->l3_off;
	if (p->ipver == 4 &&
	    sn_csum_fold(sn_csum_partial(ip, (size_t)(ip[0] & 0xf) * 4, 0)))
		return -1;
	if (!p->l4_off)
		return 0;
	if (p->l4_proto == IPPROTO_UDP && p->ipver == 4 &&
	    !frame[p->l4_off + 6] && !frame[p->l4_off + 7])
		return 0;	/* UDP over IPv4 without a checksum */
	/* Headers end at an even offset; a frame padded past its IP length
	 * (or an odd one) is summed over its L4 bytes alone. */
	if (frame_sum && p->l4_off + (size_t)p->l4_len == len && !(p->l4_off & 1))
		sum = sn_csum_sub(*frame_sum, sn_csum_partial(frame, p->l4_off, 0));
	else
		sum = sn_csum_partial(frame + p->l4_off, p->l4_len, 0);
	if (sn_csum_fold(sn_csum_add(sum, sn_pseudo_sum(frame, p, p->l4_len))))
		return -1;
	return 1;
}

int sn_rx_csum(const uint8_t *frame, size_t len)
{
	struct sn_parsed p;

	return rx_csum(frame, len, NULL, &p);
}

int sn_rx_csum_summed(const uint8_t *frame, size_t len, uint32_t frame_sum)
{
	struct sn_parsed p;

	return rx_csum(frame, len, &frame_sum, &p);
}

int sn_rx_csum_check_mark(struct virtio_net_hdr_v1 *vh, uint8_t *frame, size_t len,
			  const uint32_t *frame_sum)
{
	struct sn_parsed p;
	int c = rx_csum(frame, len, frame_sum, &p);

	if (c > 0)	/* from the parse that checked it */
		sn_csum_seed_partial(vh, frame, &p, p.l4_len);
	return c;
}

int sn_rx_csum_mark_verified(struct virtio_net_hdr_v1 *vh, uint8_t *frame, size_t len)
{
	struct sn_parsed p;

	if (sn_parse(frame, len, &p) || !p.l4_off)	/* not TCP/UDP, or a fragment */
		return -1;
	sn_csum_seed_partial(vh, frame, &p, p.l4_len);
	return 0;
}
