// SPDX-License-Identifier: GPL-2.0
/*
 * softena lab wire steering: puts each frame the lab peer sends on the wire
 * queue, and so on the device's receive queue, that the device's RSS
 * chooses for it (see softena_steer.h). Two entry points, one per wire:
 *
 * - softena_lab_steer, a tcx egress program on the peer's veth end. veth
 *   delivers a frame to the peer's receive queue with the index of the
 *   transmit queue it was sent on. tcx runs before the transmit queue is
 *   picked, and the pick (skb_tx_hash) follows a recorded receive queue,
 *   queue_mapping = queue + 1, when neither an XPS map nor a socket's cached
 *   queue decides first: the lab peer's eth0 has no XPS map, and a socket
 *   caches the queue its first frame was given. (tc's own way, act_skbedit
 *   queue_mapping, is not built into every kernel.)
 * - softena_tap_steer, a tun steering program (TUNSETSTEERINGEBPF) on the
 *   tap wire: tun asks it for the queue of every frame its host side sends.
 *
 * With aRFS on (ethtool -K ntuple), a flow the host reads goes first to the
 * queue on its reader's CPU, from the recorder's flow table (softena_rfs.h),
 * as the datapath's rx_pick_queue() sends it.
 *
 * Both hash what the datapath's sn_rss_hash() hashes, the same way: the
 * Toeplitz hash of the flow type's fields (addresses, then the first four
 * bytes after the IP header), the indirection table, then modulo the queue
 * count. Frames they do not parse as the datapath would (tagged frames,
 * IPv6 extension headers, non-IP) are left alone (tcx) or go to queue 0
 * (tun); the datapath still hashes every frame and hands a misplaced one
 * to its queue, so steering only ever saves work, it never decides.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "softena_steer.h"

#define TCX_NEXT	(-1)	/* let the next program and the stack go on */

/* ethtool's RXH_* bits, as the datapath stores them (SN_RXH_*). */
#define RXH_IP_SRC	16
#define RXH_IP_DST	32
#define RXH_L4_B_0_1	64
#define RXH_L4_B_2_3	128

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct softena_steer);
} steer_map SEC(".maps");

/* aRFS: the queue on the CPU that reads SKB's flow, or -1 for RSS to pick. */
static __always_inline int arfs_queue(struct __sk_buff *skb, const struct softena_steer *st)
{
	__u8 ip[40], ports[4];
	__u32 at, hash, key, *entry;
	int v6, q;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		v6 = 0;
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		v6 = 1;
	else
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, v6 ? 40 : 20))
		return -1;
	at = softena_rfs_ports_at(ip, v6);
	if (at && bpf_skb_load_bytes(skb, ETH_HLEN + (at & 63), ports, 4))
		at = 0;
	hash = softena_rfs_hash(ip, v6, at ? ports : NULL, st->rfs.seed);
	key = hash & SOFTENA_RFS_MASK;
	entry = bpf_map_lookup_elem(&rfs_table, &key);
	if (!entry)
		return -1;
	q = softena_rfs_queue(&st->rfs, *entry, hash);
	return q < (int)st->num_queues ? q : -1;
}

/* Fold LEN bytes at input position *POS into the hash. */
static __always_inline __u32 mix(const struct softena_steer *st, const __u8 *b,
				 __u32 len, __u32 *pos)
{
	__u32 h = 0, i;

	for (i = 0; i < len; i++) {
		__u32 p = *pos + i;

		if (p >= SOFTENA_STEER_INPUT_MAX)
			break;
		h ^= st->lut[p][b[i]];
	}
	*pos += len;
	return h;
}

/* The IP header's addresses the flow type hashes: source then destination,
 * LEN bytes each (4 or 16, a constant at each call), at ADDRS. */
static __always_inline __u32 mix_addrs(const struct softena_steer *st, const __u8 *addrs,
				       __u32 len, __u32 fields, __u32 *pos)
{
	__u32 h = 0;

	if (fields & RXH_IP_SRC)
		h ^= mix(st, addrs, len, pos);
	if (fields & RXH_IP_DST)
		h ^= mix(st, addrs + len, len, pos);
	return h;
}

/* The device's RSS queue for SKB's frame, or -1 when it has none to give. */
static __always_inline int steer_queue(struct __sk_buff *skb)
{
	struct softena_steer *st;
	__u8 addrs[32], ports[4], vihl, proto;
	__u32 key = 0, hash = 0, pos = 0, l3 = ETH_HLEN, l4, fields, flow;

	st = bpf_map_lookup_elem(&steer_map, &key);
	if (!st || !st->num_queues)
		return -1;
	if (st->rfs.enabled) {
		int q = arfs_queue(skb, st);

		if (q >= 0)
			return q;
	}
	if (!st->enabled)
		return -1;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, l3, &vihl, 1) ||
		    bpf_skb_load_bytes(skb, l3 + 9, &proto, 1) ||
		    bpf_skb_load_bytes(skb, l3 + 12, addrs, 8))
			return -1;
		if (vihl >> 4 != 4 || (vihl & 0xf) < 5)
			return -1;
		l4 = l3 + (vihl & 0xf) * 4;
		flow = proto == IPPROTO_TCP ? 0 : proto == IPPROTO_UDP ? 1 : 2;
		fields = st->fields[flow];
		hash ^= mix_addrs(st, addrs, 4, fields, &pos);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, l3 + 6, &proto, 1) ||
		    bpf_skb_load_bytes(skb, l3 + 8, addrs, 32))
			return -1;
		/* Extension headers: the datapath walks them; leave those frames to it. */
		if (proto == 0 || proto == 43 || proto == 44 || proto == 60)
			return -1;
		l4 = l3 + 40;
		flow = proto == IPPROTO_TCP ? 3 : proto == IPPROTO_UDP ? 4 : 5;
		fields = st->fields[flow];
		hash ^= mix_addrs(st, addrs, 16, fields, &pos);
	} else {
		return -1;
	}
	if (fields & (RXH_L4_B_0_1 | RXH_L4_B_2_3)) {
		if (bpf_skb_load_bytes(skb, l4, ports, 4))
			return -1;
		if (fields & RXH_L4_B_0_1)
			hash ^= mix(st, ports, 2, &pos);
		if (fields & RXH_L4_B_2_3)
			hash ^= mix(st, ports + 2, 2, &pos);
	}
	if (!pos)
		return -1;	/* nothing hashed: the datapath keeps it where it lands */
	return (int)(st->indir[hash % SOFTENA_STEER_INDIR] % st->num_queues);
}

SEC("tc")
int softena_lab_steer(struct __sk_buff *skb)
{
	int q = steer_queue(skb);

	if (q >= 0)
		skb->queue_mapping = (__u32)q + 1;	/* a recorded receive queue: see the top */
	return TCX_NEXT;
}

SEC("socket")
int softena_tap_steer(struct __sk_buff *skb)
{
	int q = steer_queue(skb);

	return q >= 0 ? q : 0;
}

char LICENSE[] SEC("license") = "GPL";
