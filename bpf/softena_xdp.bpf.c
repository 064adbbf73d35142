// SPDX-License-Identifier: GPL-2.0
/*
 * softena wire program: every frame that reaches the wire interface goes to
 * the AF_XDP socket of its receive queue, with RX metadata in front of it.
 *
 * The program is "xdp.frags" so it can be attached at jumbo MTUs; libxdp's
 * built-in socket program is not, and fails above about 3.5 KB of MTU.
 *
 * Metadata: the wire driver's own RX hash, timestamp and stripped VLAN tag,
 * read through the XDP metadata kfuncs when the program is loaded
 * device-bound and the driver implements them. Drivers that do not answer
 * leave the valid bits clear; softena then computes what it needs itself.
 * The program also stamps the frame's arrival with bpf_ktime_get_ns(), as
 * the kernel's selftests (xdp_metadata) do: veth's rx_timestamp is the skb's
 * hwtstamp, 0 for every frame software sent, so without this stamp a
 * software wire would give no time at all.
 *
 * A frame whose queue has no socket (a reset or reconfiguration is
 * rebuilding it, the interface is down) is dropped and counted in rx_missed,
 * as a NIC's hardware counts what arrives while its rings are gone: passed
 * to the wire interface's own stack, it would be lost without any count.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "softena_meta.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, SOFTENA_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* Frames that found no socket, by wire queue; softena sums them into its
 * rx-hw-drops and rx-wire-missed (softena/control/device.py). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOFTENA_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u64);
} rx_missed SEC(".maps");

/* The kernel's enum; libbpf matches kfunc prototypes by kind and size. */
enum xdp_rss_hash_type {
	XDP_RSS_TYPE_NONE = 0,
};

/* The kfuncs are weak: the object still loads on a kernel without them. */
extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash,
				    enum xdp_rss_hash_type *rss_type) __ksym __weak;
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx,
					 __u64 *timestamp) __ksym __weak;
/* Linux 6.8 */
extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx,
					__be16 *vlan_proto, __u16 *vlan_tci) __ksym __weak;

static __always_inline int wire_rx(struct xdp_md *ctx, const int with_kfuncs)
{
	struct softena_rx_meta *meta;
	__u32 qid = ctx->rx_queue_index;
	__u64 *missed;
	void *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)) == 0) {
		meta = (void *)(long)ctx->data_meta;
		data = (void *)(long)ctx->data;
		if ((void *)(meta + 1) <= data) {
			__u32 type = 0;

			meta->magic = SOFTENA_META_MAGIC;
			meta->flags = 0;
			meta->rx_hash = 0;
			meta->rx_hash_type = 0;
			meta->rx_timestamp = 0;
			meta->vlan_tci = 0;
			meta->vlan_proto = 0;
			meta->xdp_timestamp = bpf_ktime_get_ns();
			if (with_kfuncs && bpf_xdp_metadata_rx_hash &&
			    !bpf_xdp_metadata_rx_hash(ctx, &meta->rx_hash,
						      (enum xdp_rss_hash_type *)&type)) {
				meta->rx_hash_type = (__u16)type;
				meta->flags |= SOFTENA_META_HASH;
			}
			/* A zero stamp is no stamp: veth's answer for software frames. */
			if (with_kfuncs && bpf_xdp_metadata_rx_timestamp &&
			    !bpf_xdp_metadata_rx_timestamp(ctx, &meta->rx_timestamp) &&
			    meta->rx_timestamp)
				meta->flags |= SOFTENA_META_TIMESTAMP;
			if (with_kfuncs && bpf_xdp_metadata_rx_vlan_tag &&
			    !bpf_xdp_metadata_rx_vlan_tag(ctx, &meta->vlan_proto,
							  &meta->vlan_tci))
				meta->flags |= SOFTENA_META_VLAN;
		}
	}
	if (bpf_redirect_map(&xsks_map, qid, 0) == XDP_REDIRECT)
		return XDP_REDIRECT;
	missed = bpf_map_lookup_elem(&rx_missed, &qid);
	if (missed)
		*missed += 1;	/* per-CPU: no other writer */
	return XDP_DROP;
}

/* Native mode, loaded device-bound so the metadata kfuncs resolve. */
SEC("xdp.frags")
int softena_wire_rx(struct xdp_md *ctx)
{
	return wire_rx(ctx, 1);
}

/* Generic mode: device-bound programs cannot attach there, so no kfuncs. */
SEC("xdp.frags")
int softena_wire_rx_generic(struct xdp_md *ctx)
{
	return wire_rx(ctx, 0);
}

char LICENSE[] SEC("license") = "GPL";
