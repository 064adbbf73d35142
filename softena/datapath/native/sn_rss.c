// SPDX-License-Identifier: GPL-2.0
/*
 * Receive-side scaling: the Toeplitz hash over the configured fields of each
 * flow type, as Microsoft's RSS specification defines it and as NICs compute
 * it. Hand-written because it runs per frame inside the batch call.
 */
#include <string.h>
#include <netinet/in.h>

#include "sn_pkt.h"
#include "sn_rss.h"
#include "softena_rfs.h"
#include "softena_steer.h"

uint32_t sn_toeplitz(const uint8_t *key, size_t keylen,
		     const uint8_t *data, size_t len)
{
	uint64_t window;
	uint32_t hash = 0;
	size_t i, next = 8;
	int b;

	/* window holds the 64 key bits starting at the current input bit. */
	window = 0;
	for (i = 0; i < 8; i++)
		window = window << 8 | (i < keylen ? key[i] : 0);
	for (i = 0; i < len; i++) {
		for (b = 7; b >= 0; b--) {
			if (data[i] & (1u << b))
				hash ^= (uint32_t)(window >> 32);
			window <<= 1;
		}
		window |= next < keylen ? key[next] : 0;
		next++;
	}
	return hash;
}

/* The 32 key bits from bit OFF on (big-endian bit order), zeros past the key. */
static uint32_t key_window(const uint8_t *key, size_t keylen, size_t off)
{
	uint32_t w = 0;
	size_t i;

	for (i = 0; i < 32; i++) {
		size_t bit = off + i;
		int set = bit / 8 < keylen && (key[bit / 8] >> (7 - bit % 8)) & 1;

		w = w << 1 | (uint32_t)set;
	}
	return w;
}

void sn_rss_steer_fill(const struct sn_rss_config *rss, uint32_t num_queues,
		       int enabled, struct softena_steer *st)
{
	uint32_t win[SOFTENA_STEER_INPUT_MAX * 8], pos, v;
	int b;

	for (pos = 0; pos < SOFTENA_STEER_INPUT_MAX * 8; pos++)
		win[pos] = key_window(rss->key, SN_RSS_KEY_SIZE, pos);
	memset(st, 0, sizeof(*st));
	st->enabled = (uint32_t)!!enabled;
	st->num_queues = num_queues;
	memcpy(st->fields, rss->fields, sizeof(st->fields));
	memcpy(st->indir, rss->indir, sizeof(st->indir));
	/* Input bit 8*pos + (7-b) contributes the key window at that offset;
	 * a byte contributes the XOR of its set bits' windows. */
	for (pos = 0; pos < SOFTENA_STEER_INPUT_MAX; pos++)
		for (v = 0; v < 256; v++)
			for (b = 7; b >= 0; b--)
				if (v & (1u << b))
					st->lut[pos][v] ^= win[8 * pos + 7 - (uint32_t)b];
}

uint32_t sn_rss_steer_hash(const struct softena_steer *st, const uint8_t *in,
			   size_t n)
{
	uint32_t h = 0;
	size_t i;

	for (i = 0; i < n && i < SOFTENA_STEER_INPUT_MAX; i++)
		h ^= st->lut[i][in[i]];
	return h;
}

/* The flow type of a parsed IP frame, as ethtool's flow types. */
static int flow_of(const struct sn_parsed *p)
{
	int tcp = p->l4_proto == IPPROTO_TCP && p->l4_off;
	int udp = p->l4_proto == IPPROTO_UDP && p->l4_off;

	if (p->ipver == 4)
		return tcp ? SN_FLOW_TCP4 : udp ? SN_FLOW_UDP4 : SN_FLOW_IP4;
	return tcp ? SN_FLOW_TCP6 : udp ? SN_FLOW_UDP6 : SN_FLOW_IP6;
}

static uint32_t toeplitz_fields(const struct sn_rss_config *rss, const uint8_t *frame,
				const struct sn_parsed *p, uint32_t fields, size_t *n)
{
	uint8_t in[36];
	size_t alen = p->ipver == 4 ? 4 : 16;

	*n = 0;
	/* Input order of the specification: source, destination, ports. */
	if (fields & SN_RXH_IP_SRC) {
		memcpy(in + *n, frame + p->l3_off + (p->ipver == 4 ? 12 : 8), alen);
		*n += alen;
	}
	if (fields & SN_RXH_IP_DST) {
		memcpy(in + *n, frame + p->l3_off + (p->ipver == 4 ? 16 : 24), alen);
		*n += alen;
	}
	if (p->l4_off && (fields & SN_RXH_L4_B_0_1)) {
		memcpy(in + *n, frame + p->l4_off, 2);
		*n += 2;
	}
	if (p->l4_off && (fields & SN_RXH_L4_B_2_3)) {
		memcpy(in + *n, frame + p->l4_off + 2, 2);
		*n += 2;
	}
	return *n ? sn_toeplitz(rss->key, SN_RSS_KEY_SIZE, in, *n) : 0;
}

int sn_rss_hash(const struct sn_rss_config *rss, const uint8_t *frame,
		size_t len, uint32_t *hash)
{
	struct sn_parsed p;
	size_t n;

	if (sn_parse(frame, len, &p) || !p.ipver)
		return -1;
	*hash = toeplitz_fields(rss, frame, &p, rss->fields[flow_of(&p)], &n);
	return n ? 0 : -1;
}

#define RXH_L3	(SN_RXH_IP_SRC | SN_RXH_IP_DST)
#define RXH_L4	(SN_RXH_L4_B_0_1 | SN_RXH_L4_B_2_3)

int sn_rss_wire_compare(const struct sn_rss_config *rss,
			const struct sn_rss_wire *wire, uint32_t *flows)
{
	int f;

	*flows = 0;
	if (wire->error)
		return SN_RSS_REUSE_NO_CONFIG;
	if (wire->hfunc != SN_RSS_HFUNC_TOEPLITZ)
		return SN_RSS_REUSE_HFUNC;
	if (wire->key_size != SN_RSS_KEY_SIZE || memcmp(wire->key, rss->key, SN_RSS_KEY_SIZE))
		return SN_RSS_REUSE_KEY;
	/* A hash type can only say "addresses" or "addresses and ports":
	 * s,d and s,d,f,n are the field sets a wire hash can stand for. */
	for (f = 0; f < SN_FLOW_MAX; f++)
		if (wire->fields[f] == rss->fields[f] &&
		    (rss->fields[f] == RXH_L3 || rss->fields[f] == (RXH_L3 | RXH_L4)))
			*flows |= 1u << f;
	return *flows ? SN_RSS_REUSE_OK : SN_RSS_REUSE_FIELDS;
}

/* Does a hash of TYPE cover exactly the fields the device hashes for P's flow? */
static int type_covers(const struct sn_parsed *p, uint32_t fields, uint32_t type)
{
	uint32_t l3 = p->ipver == 4 ? SN_XDP_RSS_L3_IPV4 : SN_XDP_RSS_L3_IPV6;

	if (!(type & l3))
		return 0;
	if (fields == RXH_L3)
		return !(type & SN_XDP_RSS_L4);
	if (!(type & SN_XDP_RSS_L4))
		return 0;
	return p->l4_proto == IPPROTO_TCP ? !!(type & SN_XDP_RSS_L4_TCP) :
	       p->l4_proto == IPPROTO_UDP ? !!(type & SN_XDP_RSS_L4_UDP) : 0;
}

int sn_rss_hash_wire(const struct sn_rss_config *rss, uint32_t flows,
		     const uint8_t *frame, size_t len, uint32_t wire_hash,
		     uint32_t wire_type, uint32_t *hash)
{
	struct sn_parsed p;
	uint32_t fields;
	size_t n;
	int flow;

	if (sn_parse(frame, len, &p) || !p.ipver)
		return -1;
	flow = flow_of(&p);
	fields = rss->fields[flow];
	if ((flows & (1u << flow)) && type_covers(&p, fields, wire_type)) {
		*hash = wire_hash;
		return 1;
	}
	*hash = toeplitz_fields(rss, frame, &p, fields, &n);
	return n ? 0 : -1;
}

int sn_rfs_frame_hash(const uint8_t *frame, size_t len, uint32_t seed, uint32_t *hash)
{
	const uint8_t *ip = frame + 14;
	uint32_t at;
	int v6;

	if (len < 14 + 20)
		return -1;
	if (frame[12] == 0x08 && frame[13] == 0x00)
		v6 = 0;
	else if (frame[12] == 0x86 && frame[13] == 0xdd && len >= 14 + 40)
		v6 = 1;
	else
		return -1;	/* tagged frames reach the host on a VLAN device: not recorded */
	at = softena_rfs_ports_at(ip, v6);
	if (at && len < 14 + at + 4)
		at = 0;		/* no room for ports: the recorder would not read them either */
	*hash = softena_rfs_hash(ip, v6, at ? ip + at : NULL, seed);
	return 0;
}
