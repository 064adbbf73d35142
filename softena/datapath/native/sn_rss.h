/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RSS configuration as the device takes it: key, indirection table, and the
 * hashed fields per flow type. Shared by the runtime interface (softena_dp.h)
 * and the test vectors (sn_vectors.h); its CDEF block feeds both cffi modules.
 */
#ifndef SN_RSS_H
#define SN_RSS_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
#define SN_RSS_KEY_SIZE		40
#define SN_RSS_INDIR_SIZE	128

/* RSS hash field bits, as ethtool's RXH_* (ethtool -N rx-flow-hash). */
#define SN_RXH_L2DA		2
#define SN_RXH_VLAN		4
#define SN_RXH_L3_PROTO		8
#define SN_RXH_IP_SRC		16
#define SN_RXH_IP_DST		32
#define SN_RXH_L4_B_0_1		64
#define SN_RXH_L4_B_2_3		128

/* Flow types for sn_rss_config.fields[], as ethtool's flow types. */
#define SN_FLOW_TCP4		0
#define SN_FLOW_UDP4		1
#define SN_FLOW_IP4		2
#define SN_FLOW_TCP6		3
#define SN_FLOW_UDP6		4
#define SN_FLOW_IP6		5
#define SN_FLOW_MAX		6

struct sn_rss_config {
	uint8_t key[40];
	uint32_t indir[128];
	uint32_t fields[6];		/* SN_RXH_* bits per SN_FLOW_* */
};
/* CDEF-END */

/* sn_rss.c: the Toeplitz hash, and the hash of a frame by the config. */
uint32_t sn_toeplitz(const uint8_t *key, size_t keylen,
		     const uint8_t *data, size_t len);
/* 0 and *HASH set, or -1 when the frame has nothing to hash. */
int sn_rss_hash(const struct sn_rss_config *rss, const uint8_t *frame,
		size_t len, uint32_t *hash);

#endif
