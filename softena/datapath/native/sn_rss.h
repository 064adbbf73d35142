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

/* The wire driver's RSS as ethtool reports it: ETHTOOL_GRSSH (hash
 * function, key) and ETHTOOL_GRXFH (hashed fields of each flow type). */
#define SN_RSS_HFUNC_TOEPLITZ	1	/* ETH_RSS_HASH_TOP */
struct sn_rss_wire {
	int32_t error;			/* 0: read; else the errno the wire answered */
	uint32_t hfunc;			/* ETH_RSS_HASH_* bit of the function in use */
	uint32_t key_size;		/* the wire's key length (only 40 can match) */
	uint8_t key[40];
	uint32_t fields[6];		/* SN_RXH_* bits per SN_FLOW_*; 0 unknown */
};

/* Whether the wire's hash can stand in for the device's, and if not, why. */
#define SN_RSS_REUSE_OK		0
#define SN_RSS_REUSE_NO_CONFIG	1	/* the wire reports no RSS configuration */
#define SN_RSS_REUSE_HFUNC	2	/* its hash function is not Toeplitz */
#define SN_RSS_REUSE_KEY	3	/* its key is not the device's */
#define SN_RSS_REUSE_FIELDS	4	/* no flow type hashes the device's fields */

/* The kernel's enum xdp_rss_hash_type bits (include/net/xdp.h), what the
 * bpf_xdp_metadata_rx_hash kfunc says the hash covers. */
#define SN_XDP_RSS_L3_IPV4	1	/* XDP_RSS_L3_IPV4 */
#define SN_XDP_RSS_L3_IPV6	2	/* XDP_RSS_L3_IPV6 */
#define SN_XDP_RSS_L3_DYNHDR	4	/* XDP_RSS_L3_DYNHDR: options/extension headers */
#define SN_XDP_RSS_L4		8	/* XDP_RSS_L4: ports included */
#define SN_XDP_RSS_L4_TCP	16	/* XDP_RSS_L4_TCP */
#define SN_XDP_RSS_L4_UDP	32	/* XDP_RSS_L4_UDP */

/* Compare the wire's RSS with the device's: SN_RSS_REUSE_*, and in *FLOWS
 * the SN_FLOW_* bits whose wire hash equals the device's Toeplitz. */
int sn_rss_wire_compare(const struct sn_rss_config *rss,
			const struct sn_rss_wire *wire, uint32_t *flows);
/* The RSS hash of a frame: the wire's (WIRE_HASH of WIRE_TYPE, an enum
 * xdp_rss_hash_type) when FLOWS lets it stand in and the type covers the
 * fields the device hashes for the frame's flow: returns 1; else the
 * device's own Toeplitz: returns 0; -1 when the frame has nothing to hash. */
int sn_rss_hash_wire(const struct sn_rss_config *rss, uint32_t flows,
		     const uint8_t *frame, size_t len, uint32_t wire_hash,
		     uint32_t wire_type, uint32_t *hash);
/* The aRFS flow hash of an untagged IP frame with SEED, as the host's
 * recorder computes it of the same frame (bpf/softena_rfs.h): 0 and *HASH
 * set, or -1 when the frame is not one it records (not IP, tagged, short). */
int sn_rfs_frame_hash(const uint8_t *frame, size_t len, uint32_t seed, uint32_t *hash);
/* CDEF-END */

/* sn_rss.c: the Toeplitz hash, and the hash of a frame by the config. */
struct softena_steer;
/* The lab wire steering program's copy of the config (bpf/softena_steer.h),
 * its Toeplitz in table form; ENABLED: steer at all. */
void sn_rss_steer_fill(const struct sn_rss_config *rss, uint32_t num_queues,
		       int enabled, struct softena_steer *st);
/* The program's hash of N input bytes, computed as it computes it. */
uint32_t sn_rss_steer_hash(const struct softena_steer *st, const uint8_t *in,
			   size_t n);
uint32_t sn_toeplitz(const uint8_t *key, size_t keylen,
		     const uint8_t *data, size_t len);
/* 0 and *HASH set, or -1 when the frame has nothing to hash. */
int sn_rss_hash(const struct sn_rss_config *rss, const uint8_t *frame,
		size_t len, uint32_t *hash);

#endif
