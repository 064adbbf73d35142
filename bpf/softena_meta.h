/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RX metadata the wire program stores in front of each frame: shared between
 * the XDP program (bpf/) and the C datapath, which reads it at
 * (frame data - sizeof(struct softena_rx_meta)).
 */
#ifndef SOFTENA_META_H
#define SOFTENA_META_H

#include <linux/types.h>

#define SOFTENA_MAX_QUEUES	64
#define SOFTENA_META_MAGIC	0x5e7aeda0U

#define SOFTENA_META_HASH	(1U << 0)
#define SOFTENA_META_TIMESTAMP	(1U << 1)

struct softena_rx_meta {
	__u64 rx_timestamp;
	__u32 rx_hash;
	__u32 rx_hash_type;
	__u32 flags;
	__u32 magic;		/* last: it sits right before the frame */
};

#endif
