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

int sn_rss_hash(const struct sn_rss_config *rss, const uint8_t *frame,
		size_t len, uint32_t *hash)
{
	struct sn_parsed p;
	uint8_t in[36];
	size_t n = 0, alen;
	uint32_t fields;
	int flow;

	if (sn_parse(frame, len, &p) || !p.ipver)
		return -1;
	if (p.ipver == 4)
		flow = p.l4_proto == IPPROTO_TCP && p.l4_off ? SN_FLOW_TCP4 :
		       p.l4_proto == IPPROTO_UDP && p.l4_off ? SN_FLOW_UDP4 :
		       SN_FLOW_IP4;
	else
		flow = p.l4_proto == IPPROTO_TCP && p.l4_off ? SN_FLOW_TCP6 :
		       p.l4_proto == IPPROTO_UDP && p.l4_off ? SN_FLOW_UDP6 :
		       SN_FLOW_IP6;
	fields = rss->fields[flow];
	alen = p.ipver == 4 ? 4 : 16;
	/* Input order of the specification: source, destination, ports. */
	if (fields & SN_RXH_IP_SRC) {
		memcpy(in + n, frame + p.l3_off + (p.ipver == 4 ? 12 : 8), alen);
		n += alen;
	}
	if (fields & SN_RXH_IP_DST) {
		memcpy(in + n, frame + p.l3_off + (p.ipver == 4 ? 16 : 24), alen);
		n += alen;
	}
	if (p.l4_off && (fields & SN_RXH_L4_B_0_1)) {
		memcpy(in + n, frame + p.l4_off, 2);
		n += 2;
	}
	if (p.l4_off && (fields & SN_RXH_L4_B_2_3)) {
		memcpy(in + n, frame + p.l4_off + 2, 2);
		n += 2;
	}
	if (!n)
		return -1;
	*hash = sn_toeplitz(rss->key, SN_RSS_KEY_SIZE, in, n);
	return 0;
}
