"""The wire's RX hash stands in for the device's Toeplitz only when the wire hashes as the device does.

sn_rss_wire_compare decides from the wire's ethtool configuration (hash
function, key, rx-flow-hash fields per flow type); sn_rss_hash_wire then
takes a frame's wire hash only when its xdp_rss_hash_type covers exactly the
fields the device hashes for the frame's flow. The wire's hash here is
Microsoft's reference Toeplitz (tests/rss_ref.py), what a NIC configured
like the device would deliver.
"""

from __future__ import annotations

import errno
import ipaddress

import pytest
from rss_ref import MS_KEY, toeplitz
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from softena.datapath.datapath import rss_native
from softena.datapath.vectors import ffi, lib
from softena.device.rss import FLOW_TYPES, RXH_IP_DST, RXH_IP_SRC, RXH_L4_B_0_1, RXH_L4_B_2_3, RssConfig

L3 = RXH_IP_SRC | RXH_IP_DST
L4 = L3 | RXH_L4_B_0_1 | RXH_L4_B_2_3
# enum xdp_rss_hash_type (include/net/xdp.h)
XDP_RSS_L3_IPV4, XDP_RSS_L3_IPV6, XDP_RSS_L4, XDP_RSS_L4_TCP, XDP_RSS_L4_UDP = 1, 2, 8, 16, 32
L4_IPV4_TCP = XDP_RSS_L3_IPV4 | XDP_RSS_L4 | XDP_RSS_L4_TCP
L4_IPV6_UDP = XDP_RSS_L3_IPV6 | XDP_RSS_L4 | XDP_RSS_L4_UDP
ETH_RSS_HASH_TOP, ETH_RSS_HASH_XOR = 1, 2


def wire_like(rss: RssConfig, **changes):
    """A wire whose ethtool answers match RSS, but for CHANGES."""
    wire = ffi.new("struct sn_rss_wire *")
    wire.error = changes.get("error", 0)
    wire.hfunc = changes.get("hfunc", ETH_RSS_HASH_TOP)
    key = changes.get("key", rss.key)
    wire.key_size = len(key)
    ffi.memmove(wire.key, key[:40], min(40, len(key)))
    fields = {**rss.fields, **changes.get("fields", {})}
    for i, flow in enumerate(FLOW_TYPES):
        wire.fields[i] = fields[flow]
    return wire


def compare(rss: RssConfig, wire) -> tuple[int, int]:
    flows = ffi.new("uint32_t *")
    return lib.sn_rss_wire_compare(rss_native(rss, ffi), wire, flows), flows[0]


def steer(rss: RssConfig, flows: int, frame: bytes, wire_hash: int, wire_type: int) -> tuple[int, int]:
    """(1 reused / 0 own Toeplitz, the queue the indirection table gives)."""
    out = ffi.new("uint32_t *")
    reused = lib.sn_rss_hash_wire(rss_native(rss, ffi), flows, frame, len(frame), wire_hash, wire_type, out)
    assert reused >= 0
    return reused, rss.indir[out[0] % 128]


def own_queue(rss: RssConfig, frame: bytes) -> int:
    out = ffi.new("uint32_t *")
    assert lib.sn_rss_hash(rss_native(rss, ffi), frame, len(frame), out) == 0
    return rss.indir[out[0] % 128]


def reference_hash(src: str, dst: str, sport: int | None = None, dport: int | None = None) -> int:
    data = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    if sport is not None:
        data += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return toeplitz(MS_KEY, data)


def tcp4(src="198.18.0.2", dst="198.18.0.1", sport=40000, dport=5201, vlan=None) -> bytes:
    eth = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return bytes(eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport) / b"x")


def udp6(src="2001:2::2", dst="2001:2::1", sport=5353, dport=9) -> bytes:
    return bytes(Ether() / IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / b"x")


@pytest.fixture
def rss() -> RssConfig:
    cfg = RssConfig(8)
    assert cfg.key == MS_KEY
    return cfg


def test_a_wire_configured_like_the_device_has_its_hash_reused_for_every_default_flow(rss) -> None:
    why, flows = compare(rss, wire_like(rss))
    assert why == lib.SN_RSS_REUSE_OK
    assert flows == (1 << lib.SN_FLOW_MAX) - 1


@pytest.mark.parametrize("sport", [40000, 40001, 50123, 61000, 1024, 33333])
def test_reused_tcp4_hash_gives_the_queue_the_devices_own_toeplitz_gives(rss, sport: int) -> None:
    _, flows = compare(rss, wire_like(rss))
    frame = tcp4(sport=sport)
    wire_hash = reference_hash("198.18.0.2", "198.18.0.1", sport, 5201)
    reused, queue = steer(rss, flows, frame, wire_hash, L4_IPV4_TCP)
    assert reused == 1 and queue == own_queue(rss, frame)


def test_reused_hash_of_a_tagged_frame_and_of_udp6_gives_the_same_queue_too(rss) -> None:
    _, flows = compare(rss, wire_like(rss))
    tagged = tcp4(sport=44444, vlan=100)
    assert steer(rss, flows, tagged, reference_hash("198.18.0.2", "198.18.0.1", 44444, 5201),
                 L4_IPV4_TCP) == (1, own_queue(rss, tagged))
    frame = udp6()
    assert steer(rss, flows, frame, reference_hash("2001:2::2", "2001:2::1", 5353, 9),
                 L4_IPV6_UDP) == (1, own_queue(rss, frame))


def test_an_l3_only_flow_takes_only_an_l3_hash(rss) -> None:
    rss.fields["tcp4"] = L3
    _, flows = compare(rss, wire_like(rss))
    frame = tcp4(sport=40000)
    l3_hash = reference_hash("198.18.0.2", "198.18.0.1")
    assert steer(rss, flows, frame, l3_hash, XDP_RSS_L3_IPV4) == (1, own_queue(rss, frame))
    # An L4 hash covers ports the device does not hash: its own Toeplitz decides.
    assert steer(rss, flows, frame, 0xDEADBEEF, L4_IPV4_TCP)[0] == 0


@pytest.mark.parametrize("wire_type", [XDP_RSS_L3_IPV4, XDP_RSS_L3_IPV6 | XDP_RSS_L4 | XDP_RSS_L4_TCP,
                                       XDP_RSS_L3_IPV4 | XDP_RSS_L4 | XDP_RSS_L4_UDP, 0])
def test_a_hash_type_short_of_the_devices_fields_is_not_reused(rss, wire_type: int) -> None:
    _, flows = compare(rss, wire_like(rss))
    frame = tcp4()
    reused, queue = steer(rss, flows, frame, 0xDEADBEEF, wire_type)
    assert reused == 0 and queue == own_queue(rss, frame)


@pytest.mark.parametrize("changes, why", [
    ({"error": errno.EOPNOTSUPP}, "SN_RSS_REUSE_NO_CONFIG"),
    ({"hfunc": ETH_RSS_HASH_XOR}, "SN_RSS_REUSE_HFUNC"),
    ({"key": bytes(40)}, "SN_RSS_REUSE_KEY"),
    ({"key": MS_KEY + bytes(12)}, "SN_RSS_REUSE_KEY"),  # a 52-byte key is another key
    ({"fields": {f: L3 | RXH_L4_B_0_1 for f in FLOW_TYPES}}, "SN_RSS_REUSE_FIELDS"),
], ids=["no-config", "xor", "other-key", "longer-key", "other-fields"])
def test_a_mismatching_wire_never_has_its_hash_reused(rss, changes: dict, why: str) -> None:
    verdict, flows = compare(rss, wire_like(rss, **changes))
    assert verdict == getattr(lib, why) and flows == 0
    frame = tcp4()
    wire_hash = reference_hash("198.18.0.2", "198.18.0.1", 40000, 5201) ^ 0x5A5A5A5A
    assert steer(rss, flows, frame, wire_hash, L4_IPV4_TCP) == (0, own_queue(rss, frame))


def test_fields_that_differ_for_one_flow_keep_the_others_reusable(rss) -> None:
    why, flows = compare(rss, wire_like(rss, fields={"udp4": L3}))
    assert why == lib.SN_RSS_REUSE_OK
    assert flows == ((1 << lib.SN_FLOW_MAX) - 1) & ~(1 << lib.SN_FLOW_UDP4)
