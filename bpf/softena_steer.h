/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lab wire's RSS engine: what the steering program (softena_steer.bpf.c)
 * needs to put each frame on the receive queue the device's RSS would choose,
 * shared between that program and the C datapath, which fills it.
 *
 * A NIC hashes a frame before it picks a queue; a veth has no such stage:
 * a frame arrives on the queue its sender transmitted on. The steering
 * program gives the veth that stage, fed the device's key, indirection
 * table and hash fields, so RSS happens in front of the queues, as in
 * hardware, instead of as a cross-queue handoff behind them.
 */
#ifndef SOFTENA_STEER_H
#define SOFTENA_STEER_H

#include <linux/types.h>

#include "softena_rfs.h"

#define SOFTENA_STEER_INPUT_MAX	36	/* IPv6 addresses and ports: the longest Toeplitz input */
#define SOFTENA_STEER_INDIR	128	/* SN_RSS_INDIR_SIZE */
#define SOFTENA_STEER_FLOWS	6	/* SN_FLOW_*: tcp4 udp4 ip4 tcp6 udp6 ip6 */

struct softena_steer {
	__u32 enabled;		/* rx hashing on and more than one queue */
	__u32 num_queues;
	__u32 fields[SOFTENA_STEER_FLOWS];	/* SN_RXH_* bits per flow type */
	__u32 indir[SOFTENA_STEER_INDIR];	/* queue of each hash % 128 */
	/* Toeplitz is linear in its input: the hash of a tuple is the XOR,
	 * over its bytes, of lut[position][byte], precomputed from the key. */
	__u32 lut[SOFTENA_STEER_INPUT_MAX][256];
	struct softena_rfs_steer rfs;	/* aRFS: a flow the host reads goes to its reader's CPU */
};

#endif
