// SPDX-License-Identifier: GPL-2.0
/*
 * A VLAN-tagging peer for the tests: on the peer's egress (tc clsact),
 * frames the sender marked (SO_MARK) get a tag with bpf_skb_vlan_push().
 * The tag goes into the skb's hwaccel field, not the bytes, so the veth
 * hands the frame to the wire's XDP program stripped, and the
 * bpf_xdp_metadata_rx_vlan_tag kfunc reports it: what a NIC that strips
 * tags (rx-vlan-offload) does.
 *
 * VLAN_PROTO (network order is made here) and VLAN_TCI come from -D.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TAG_MARK	0x5e7a

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
	if (skb->mark == TAG_MARK)
		bpf_skb_vlan_push(skb, bpf_htons(VLAN_PROTO), VLAN_TCI);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
