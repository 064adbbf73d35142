// softena trace: count what the kernel drops on a device's interfaces.
//
// Compiled by bcc at run time. Struct offsets come in as -D defines read
// from the running kernel's BTF (softena/trace/btf.py), not from the
// headers bcc compiles against, which may be another kernel's. Raw
// tracepoints give the net_device itself, so an interface is known by
// (network namespace inode, ifindex): ifindexes repeat across namespaces.

struct where {
	u32 netns;
	u32 ifindex;
};

// What happened: EV_* and its code (drop reason, XDP action, -errno).
struct drop_key {
	struct where where;
	u32 event;
	u32 code;
};

#define EV_KFREE_SKB 0
#define EV_XDP_EXCEPTION 1
#define EV_XDP_REDIRECT_ERR 2
#define EV_XDP_DEVMAP_XMIT 3

BPF_HASH(wanted, struct where, u8, 64);
BPF_HASH(drops, struct drop_key, u64, 4096);

static __always_inline int dev_where(const void *dev, struct where *w)
{
	const void *net = NULL;

	if (!dev)
		return -1;
	bpf_probe_read_kernel(&w->ifindex, sizeof(w->ifindex), (const char *)dev + NETDEV_IFINDEX);
	bpf_probe_read_kernel(&net, sizeof(net), (const char *)dev + NETDEV_NET);
	if (!net)
		return -1;
	bpf_probe_read_kernel(&w->netns, sizeof(w->netns), (const char *)net + NET_INUM);
	return wanted.lookup(w) ? 0 : -1;
}

static __always_inline void count(const void *dev, u32 event, u32 code, u64 n)
{
	struct drop_key key = {};

	if (dev_where(dev, &key.where))
		return;
	key.event = event;
	key.code = code;
	u64 zero = 0;
	u64 *value = drops.lookup_or_try_init(&key, &zero);
	if (value)
		__sync_fetch_and_add(value, n);
}

// kfree_skb(skb, location, reason[, rx_sk]): at drop time skb->dev is the
// device the frame came in on (or is leaving by); an skb without one is
// not any interface's and is left out.
int on_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	const void *skb = (const void *)ctx->args[0];
	const void *dev = NULL;

	bpf_probe_read_kernel(&dev, sizeof(dev), (const char *)skb + SKB_DEV);
	count(dev, EV_KFREE_SKB, (u32)ctx->args[2], 1);
	return 0;
}

// xdp_exception(dev, prog, act)
int on_xdp_exception(struct bpf_raw_tracepoint_args *ctx)
{
	count((const void *)ctx->args[0], EV_XDP_EXCEPTION, (u32)ctx->args[2], 1);
	return 0;
}

// xdp_redirect_err / xdp_redirect_map_err(dev, prog, target, err, map_type, map_id, index)
int on_xdp_redirect_err(struct bpf_raw_tracepoint_args *ctx)
{
	count((const void *)ctx->args[0], EV_XDP_REDIRECT_ERR, -(int)ctx->args[3], 1);
	return 0;
}

// xdp_devmap_xmit(from_dev, to_dev, sent, drops, err): frames the target
// refused, counted on the target if it is ours, else on the sender.
int on_xdp_devmap_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	int dropped = (int)ctx->args[3];
	struct where w = {};
	const void *dev = (const void *)ctx->args[1];

	if (dropped <= 0)
		return 0;
	if (dev_where(dev, &w))
		dev = (const void *)ctx->args[0];
	count(dev, EV_XDP_DEVMAP_XMIT, -(int)ctx->args[4], dropped);
	return 0;
}
