/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Accelerated RFS for the host: the flow table shared by the recorder
 * (softena_rfs.bpf.c), the wire's steering programs (softena_steer.bpf.c)
 * and the C datapath (sn_rx.c), and the one flow hash all three compute.
 *
 * The kernel's RFS records, at each recvmsg(), the CPU that reads a flow
 * (sock_rps_record_flow() into rps_sock_flow_table), and aRFS asks the NIC
 * to put that flow's frames on the queue whose interrupt runs on that CPU
 * (ndo_rx_flow_steer). A tap has no ndo_rx_flow_steer, so the recorder is a
 * BPF program where the host copies a received skb to user space: it
 * writes the reader's CPU into the table under the flow's hash, and the
 * device reads it where RSS would pick the queue. The table is the
 * kernel's layout: one u32 per slot, the hash's high bits (to tell flows
 * apart) above the CPU.
 *
 * The hash is computed from the frame as the wire carries it (source, then
 * destination) and from the skb the host reads (the same frame), so the
 * two ends agree without either knowing the other's state. It is
 * MurmurHash3's 32-bit mixing over the flow's words, seeded per device.
 */
#ifndef SOFTENA_RFS_H
#define SOFTENA_RFS_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define SOFTENA_RFS_ENTRIES	4096	/* flow table slots: a power of two */
#define SOFTENA_RFS_MASK	(SOFTENA_RFS_ENTRIES - 1)
/* An array map lays its elements out 8 bytes apart (the kernel rounds the
 * value size up to 8): slot i's word is word 2i of the mapped table. */
#define SOFTENA_RFS_SLOT_WORDS	2
#define SOFTENA_RFS_MAP_SIZE	(SOFTENA_RFS_ENTRIES * SOFTENA_RFS_SLOT_WORDS * 4)
#define SOFTENA_RFS_CPUS	256	/* CPUs the device can steer to */
#define SOFTENA_RFS_QUEUES	64	/* SN_MAX_QUEUES */

#define SOFTENA_RFS_IPPROTO_TCP	6
#define SOFTENA_RFS_IPPROTO_UDP	17

/* The recorder's settings (its rfs_conf map); 0 ifindex: record nothing. */
struct softena_rfs_conf {
	__u32 ifindex;		/* the host interface whose frames are the device's */
	__u32 seed;
};

/* Where a flow table hit leads (in the steering map, and the datapath's
 * copy): the queues on CPU c are order[base[c] - 1 ...], count[c] of them;
 * base 0: none of ours on that CPU, and RSS decides. */
struct softena_rfs_steer {
	__u32 enabled;		/* ethtool -K ntuple on, and more than one queue */
	__u32 seed;
	__u8 base[SOFTENA_RFS_CPUS];
	__u8 count[SOFTENA_RFS_CPUS];
	__u8 order[SOFTENA_RFS_QUEUES];	/* the queues, by CPU */
};

static __always_inline __u32 softena_rfs_rotl(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 softena_rfs_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = softena_rfs_rotl(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = softena_rfs_rotl(h, 13);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 softena_rfs_word(const __u8 *p)
{
	__u32 w;

	__builtin_memcpy(&w, p, 4);	/* raw bytes: both ends load them alike */
	return w;
}

/*
 * Where the ports are for the IP header at IP (IPv4: its first 20 bytes;
 * IPv6: its 40): their offset from IP, or 0 when the flow has none to give
 * (neither TCP nor UDP, an IPv4 fragment, an IPv6 extension header first).
 */
static __always_inline __u32 softena_rfs_ports_at(const __u8 *ip, int v6)
{
	if (v6)
		return ip[6] == SOFTENA_RFS_IPPROTO_TCP || ip[6] == SOFTENA_RFS_IPPROTO_UDP ? 40 : 0;
	if (ip[9] != SOFTENA_RFS_IPPROTO_TCP && ip[9] != SOFTENA_RFS_IPPROTO_UDP)
		return 0;
	if ((ip[6] & 0x3f) || ip[7])	/* MF or an offset: not the whole datagram */
		return 0;
	return (__u32)(ip[0] & 0xf) * 4;
}

/* The flow's hash: addresses, protocol, ports (PORTS: the four bytes at
 * softena_rfs_ports_at(), or NULL when it gave 0). */
static __always_inline __u32 softena_rfs_hash(const __u8 *ip, int v6, const __u8 *ports, __u32 seed)
{
	__u32 h = seed, i;

	if (v6) {
		for (i = 0; i < 8; i++)
			h = softena_rfs_mix(h, softena_rfs_word(ip + 8 + 4 * i));
		h = softena_rfs_mix(h, ip[6]);
	} else {
		h = softena_rfs_mix(h, softena_rfs_word(ip + 12));
		h = softena_rfs_mix(h, softena_rfs_word(ip + 16));
		h = softena_rfs_mix(h, ip[9]);
	}
	h = softena_rfs_mix(h, ports ? softena_rfs_word(ports) : 0);
	h ^= h >> 16;	/* MurmurHash3's finalizer */
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

#ifdef __bpf__
/* The flow table, in both BPF objects that use it: the recorder's, and the
 * steering programs', which take the recorder's by fd at load
 * (bpf_map__reuse_fd() wants the same type, sizes and flags). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SOFTENA_RFS_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);	/* the datapath reads it in place */
	__type(key, __u32);
	__type(value, __u32);
} rfs_table SEC(".maps");

#endif

/* The table's word for HASH read on CPU: as the kernel's rps_sock_flow_table. */
static __always_inline __u32 softena_rfs_entry(__u32 hash, __u32 cpu)
{
	return (hash & ~(__u32)SOFTENA_RFS_MASK) | (cpu + 1);
}

/* The queue the flow table's ENTRY gives HASH, or -1 (no entry, another
 * flow's, or a CPU with no queue of ours). */
static __always_inline int softena_rfs_queue(const struct softena_rfs_steer *st, __u32 entry,
					     __u32 hash)
{
	__u32 cpu, base, count;

	if (!entry || ((entry ^ hash) & ~(__u32)SOFTENA_RFS_MASK))
		return -1;
	cpu = (entry & SOFTENA_RFS_MASK) - 1;
	if (cpu >= SOFTENA_RFS_CPUS)
		return -1;
	base = st->base[cpu];
	count = st->count[cpu];
	if (!base || !count)
		return -1;
	/* Several queues on one CPU: that CPU's flows spread over them. */
	return st->order[(base - 1 + (hash >> 16) % count) & (SOFTENA_RFS_QUEUES - 1)];
}

#endif
