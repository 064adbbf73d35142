// SPDX-License-Identifier: GPL-2.0
/*
 * softena's RFS recorder: which CPU reads each flow the device delivers to
 * the host, into the flow table of softena_rfs.h.
 *
 * A BTF tracepoint program at skb:skb_copy_datagram_iovec, which
 * skb_copy_datagram_iter() fires where every socket's recvmsg() copies a
 * received skb to user space (TCP, UDP, ping and raw sockets alike), in
 * the reading task's context: the CPU it runs on is the CPU that consumes
 * the flow. The kernel's own RFS records at inet_recvmsg() by the socket's
 * saved rxhash, which unconnected sockets (a ping, a UDP server) never
 * get; the skb always has its headers. A tracepoint, not fentry: it needs
 * no ftrace trampoline, which a locked-down kernel may refuse.
 *
 * UDP reads a small datagram (a linear skb) without that copy, so for UDP
 * the recorder also takes skb-less reads (sock:sock_recv_length) of a
 * connected socket, whose tuple is the flow's, as the kernel's RFS records
 * connected sockets only. An unconnected UDP socket's linear reads are not
 * seen: RSS places those flows.
 *
 * Only skbs that came in through the device's host interface (skb_iif)
 * count: tun's own read of what the host sends carries none. (UDP does not
 * keep the socket in its queued skbs, so the reader cannot be told by it: a
 * packet socket that reads a flow with recvmsg() counts as its reader too;
 * tcpdump reads its ring without a copy and does not.)
 *
 * A slot is written only when it changes, so a busy flow's reads do not
 * bounce its cache line between CPUs.
 *
 * The kernel structures are declared here with the fields read alone;
 * preserve_access_index has libbpf relocate them against the running
 * kernel's BTF (CO-RE), so no vmlinux.h is needed to build.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "softena_rfs.h"

#define AF_INET		2
#define AF_INET6	10
#define TCP_ESTABLISHED	1	/* a connected UDP socket's state too */

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct sk_buff {
	int skb_iif;
	__be16 protocol;
	__u16 network_header;
	unsigned char *head;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct softena_rfs_conf);
} rfs_conf SEC(".maps");

/* Note HASH as read on this CPU, in the device's table. */
static __always_inline void record(__u32 hash)
{
	__u32 key = hash & SOFTENA_RFS_MASK, entry, *slot;

	slot = bpf_map_lookup_elem(&rfs_table, &key);
	if (!slot)
		return;
	entry = softena_rfs_entry(hash, bpf_get_smp_processor_id());
	if (*slot != entry)
		*slot = entry;
}

SEC("tp_btf/skb_copy_datagram_iovec")
int softena_rfs_record(__u64 *ctx)
{
	const struct sk_buff *skb = (const struct sk_buff *)ctx[0];
	const struct softena_rfs_conf *conf;
	__u8 ip[40], ports[4];
	__u32 key = 0, at;
	unsigned char *l3;
	int v6;

	conf = bpf_map_lookup_elem(&rfs_conf, &key);
	if (!conf || !conf->ifindex || skb->skb_iif != (int)conf->ifindex)
		return 0;
	if (skb->protocol == bpf_htons(ETH_P_IP))
		v6 = 0;
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		v6 = 1;
	else
		return 0;
	l3 = skb->head + skb->network_header;
	if (bpf_probe_read_kernel(ip, v6 ? 40 : 20, l3))
		return 0;
	at = softena_rfs_ports_at(ip, v6);
	if (at && bpf_probe_read_kernel(ports, 4, l3 + (at & 63)))
		return 0;
	record(softena_rfs_hash(ip, v6, at ? ports : NULL, conf->seed));
	return 0;
}

/* A connected UDP socket read N bytes: its flow, from the socket's tuple as
 * the frames carry it (the peer's address and port are their source). */
SEC("tp_btf/sock_recv_length")
int softena_rfs_record_udp(__u64 *ctx)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	const struct softena_rfs_conf *conf;
	__u8 ip[40] = {}, ports[4];
	__u32 key = 0, i;
	__u16 num;
	int v6;

	if ((int)ctx[1] <= 0 || sk->sk_protocol != SOFTENA_RFS_IPPROTO_UDP ||
	    sk->__sk_common.skc_state != TCP_ESTABLISHED)
		return 0;
	conf = bpf_map_lookup_elem(&rfs_conf, &key);
	if (!conf || !conf->ifindex)
		return 0;
	v6 = sk->__sk_common.skc_family == AF_INET6;
	if (v6) {
		const __u8 *d = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8;
		__u32 w0, w1, w2;

		__builtin_memcpy(&w0, d, 4);
		__builtin_memcpy(&w1, d + 4, 4);
		__builtin_memcpy(&w2, d + 8, 4);
		v6 = !(w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff));	/* v4-mapped: IPv4 frames */
	}
	if (v6) {
		for (i = 0; i < 16; i++) {
			ip[8 + i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8[i];
			ip[24 + i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8[i];
		}
		ip[6] = SOFTENA_RFS_IPPROTO_UDP;
	} else {
		__be32 src = sk->__sk_common.skc_daddr, dst = sk->__sk_common.skc_rcv_saddr;

		__builtin_memcpy(ip + 12, &src, 4);
		__builtin_memcpy(ip + 16, &dst, 4);
		ip[0] = 0x45;
		ip[9] = SOFTENA_RFS_IPPROTO_UDP;
	}
	__builtin_memcpy(ports, &sk->__sk_common.skc_dport, 2);
	num = bpf_htons(sk->__sk_common.skc_num);
	__builtin_memcpy(ports + 2, &num, 2);
	record(softena_rfs_hash(ip, v6, ports, conf->seed));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
