/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RX metadata the wire program stores in front of each frame: shared between
 * the XDP program (bpf/) and the C datapath, which reads it at
 * (frame data - sizeof(struct softena_rx_meta)) in the UMEM frame's XDP
 * headroom (AF_XDP copies the metadata area with the frame).
 *
 * The kernel takes at most 32 bytes of metadata, in 4-byte steps
 * (xdp_metalen_invalid()): the layout below is exactly that, widest first.
 */
#ifndef SOFTENA_META_H
#define SOFTENA_META_H

#include <linux/types.h>

#define SOFTENA_MAX_QUEUES	64
#define SOFTENA_META_MAGIC	0x5e7aeda1U

/* Which fields the wire driver answered (flags). xdp_timestamp is always set. */
#define SOFTENA_META_HASH	(1U << 0)	/* bpf_xdp_metadata_rx_hash */
#define SOFTENA_META_TIMESTAMP	(1U << 1)	/* bpf_xdp_metadata_rx_timestamp, nonzero */
#define SOFTENA_META_VLAN	(1U << 2)	/* bpf_xdp_metadata_rx_vlan_tag: a tag was stripped */

struct softena_rx_meta {
	__u64 rx_timestamp;	/* the driver's (hardware) receive stamp */
	__u64 xdp_timestamp;	/* bpf_ktime_get_ns() as XDP ran: CLOCK_MONOTONIC */
	__u32 rx_hash;
	__u16 rx_hash_type;	/* enum xdp_rss_hash_type */
	__u16 flags;		/* SOFTENA_META_* */
	__u16 vlan_tci;		/* host order, as the kfunc gives it */
	__be16 vlan_proto;	/* ETH_P_8021Q or ETH_P_8021AD, network order */
	__u32 magic;		/* last: it sits right before the frame */
};

_Static_assert(sizeof(struct softena_rx_meta) == 32, "XDP metadata is at most 32 bytes");

#endif
