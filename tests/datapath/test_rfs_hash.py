"""The aRFS flow hash (bpf/softena_rfs.h) of frames, against an independent model.

The datapath hashes each wire frame with sn_rfs_frame_hash(); the host's
recorder hashes the skb it reads with the same inline code, so the two meet
in the flow table. Here the C is held to a Python model of what the hash
covers: source and destination address, protocol, and the ports only for a
whole TCP or UDP datagram whose transport header follows the IP header, all
as the raw bytes lie in the frame, mixed with MurmurHash3's 32-bit rounds
from the device's seed. Frames the recorder never sees (tagged, not IP,
short) have no hash.
"""

from __future__ import annotations

import sys

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from softena.datapath.vectors import ffi, lib

M = 0xFFFFFFFF
SEED = 0x5EED1234


def rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M


def mix(h: int, k: int) -> int:
    k = rotl((k * 0xCC9E2D51) & M, 15) * 0x1B873593 & M
    return (rotl(h ^ k, 13) * 5 + 0xE6546B64) & M


def fmix(h: int) -> int:
    h ^= h >> 16
    h = h * 0x85EBCA6B & M
    h ^= h >> 13
    h = h * 0xC2B2AE35 & M
    return h ^ (h >> 16)


def word(b: bytes) -> int:
    return int.from_bytes(b, sys.byteorder)  # the C loads raw bytes as a host-order u32


def model(frame: bytes, seed: int = SEED) -> int:
    """The hash the recorder and the datapath compute, written from softena_rfs.h's comment."""
    ip = frame[14:]
    v6 = frame[12:14] == b"\x86\xdd"
    if v6:
        proto, addrs = ip[6], [ip[8 + 4 * i:12 + 4 * i] for i in range(8)]
        ports_at = 40 if proto in (6, 17) else 0
    else:
        proto, addrs = ip[9], [ip[12:16], ip[16:20]]
        whole = not (ip[6] & 0x3F or ip[7])
        ports_at = (ip[0] & 0xF) * 4 if proto in (6, 17) and whole else 0
    h = seed
    for a in addrs:
        h = mix(h, word(a))
    h = mix(h, proto)
    h = mix(h, word(ip[ports_at:ports_at + 4]) if ports_at else 0)
    return fmix(h)


def c_hash(frame: bytes, seed: int = SEED) -> int | None:
    out = ffi.new("uint32_t *")
    return out[0] if lib.sn_rfs_frame_hash(frame, len(frame), seed, out) == 0 else None


ETH = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
V4 = IP(src="198.18.0.2", dst="198.18.0.1")
V6 = IPv6(src="2001:2::2", dst="2001:2::1")

FRAMES = {
    "tcp4": ETH / V4 / TCP(sport=40000, dport=5201) / Raw(b"x" * 20),
    "udp4": ETH / V4 / UDP(sport=5302, dport=5301) / Raw(b"x" * 20),
    "icmp4": ETH / V4 / ICMP(id=7, seq=1),
    "tcp4 with IP options": ETH / IP(src="198.18.0.2", dst="198.18.0.1", options=b"\x01\x01\x01\x00") /
    TCP(sport=40000, dport=5201),
    "udp4 first fragment": ETH / IP(src="198.18.0.2", dst="198.18.0.1", flags="MF") / UDP(sport=1, dport=2),
    "udp4 later fragment": ETH / IP(src="198.18.0.2", dst="198.18.0.1", frag=100, proto=17) / Raw(b"y" * 16),
    "tcp6": ETH / V6 / TCP(sport=40000, dport=5201),
    "udp6": ETH / V6 / UDP(sport=5302, dport=5301) / Raw(b"x" * 8),
    "udp6 behind hop-by-hop": ETH / V6 / IPv6ExtHdrHopByHop() / UDP(sport=5302, dport=5301),
}


@pytest.mark.parametrize("name", FRAMES)
def test_the_datapath_hashes_a_frame_as_the_model_says(name: str) -> None:
    frame = bytes(FRAMES[name])
    assert c_hash(frame) == model(frame)
    assert c_hash(frame, SEED + 1) == model(frame, SEED + 1)


def test_a_flow_is_its_addresses_protocol_and_ports_and_nothing_else() -> None:
    base = c_hash(bytes(ETH / V4 / TCP(sport=40000, dport=5201) / Raw(b"a" * 20)))
    assert c_hash(bytes(ETH / V4 / TCP(sport=40000, dport=5201, seq=99, flags="PA") / Raw(b"b" * 90))) == base
    assert c_hash(bytes(ETH / IP(src="198.18.0.2", dst="198.18.0.1", ttl=3, id=9) / TCP(sport=40000, dport=5201))) \
        == base
    for other in (TCP(sport=40001, dport=5201), TCP(sport=40000, dport=5202), UDP(sport=40000, dport=5201)):
        assert c_hash(bytes(ETH / V4 / other)) != base, other.summary()
    assert c_hash(bytes(ETH / IP(src="198.18.0.3", dst="198.18.0.1") / TCP(sport=40000, dport=5201))) != base


def test_fragments_of_a_datagram_share_the_hash_of_its_addresses_alone() -> None:
    first = c_hash(bytes(FRAMES["udp4 first fragment"]))
    later = c_hash(bytes(FRAMES["udp4 later fragment"]))
    assert first == later


@pytest.mark.parametrize("frame", [
    ETH / Dot1Q(vlan=5) / V4 / UDP(sport=1, dport=2),  # reaches the host on a VLAN device
    ETH / ARP(),
    bytes(ETH)[:12] + b"\x08\x00" + b"\x45" * 10,  # IPv4, with no room for its header
], ids=["tagged", "arp", "short"])
def test_frames_the_recorder_never_sees_have_no_hash(frame) -> None:
    assert c_hash(bytes(frame)) is None
