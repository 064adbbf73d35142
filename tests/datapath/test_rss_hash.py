"""sn_rss_hash on scapy-built frames against Microsoft's RSS verification table."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from rss_ref import IPV4_VECTORS, IPV6_VECTORS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from softena.datapath.datapath import rss_native
from softena.datapath.vectors import ffi, lib
from softena.device.rss import (
    RXH_IP_DST,
    RXH_IP_SRC,
    RXH_L4_B_0_1,
    RXH_L4_B_2_3,
    RssConfig,
)

ALL_VECTORS = [pytest.param(4, *v, id=f"v4-{v[2]}->{v[0]}") for v in IPV4_VECTORS] + [
    pytest.param(6, *v, id=f"v6-{v[2]}->{v[0]}") for v in IPV6_VECTORS
]

PAYLOAD = Raw(b"softena rss test payload")

ENCAPS: dict[str, Callable[[], Packet]] = {
    "untagged": lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02"),
    "vlan": lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=100),
    "qinq": lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / Dot1AD(vlan=10) / Dot1Q(vlan=100),
}


def rss_struct(rss: RssConfig):
    """RSS as the C side takes it: key, table, and fields in SN_FLOW_* order."""
    return rss_native(rss, ffi)


def rss_hash(frame: bytes, rss: RssConfig | None = None) -> int | None:
    """Run sn_rss_hash; None when it declines to hash the frame."""
    cfg = rss_struct(rss or RssConfig(4))
    out = ffi.new("uint32_t *")
    if lib.sn_rss_hash(cfg, frame, len(frame), out) != 0:
        return None
    return out[0]


def toeplitz(data: bytes) -> int:
    """The C Toeplitz hash with the default (Microsoft) key."""
    key = RssConfig(1).key
    return lib.sn_toeplitz(key, len(key), data, len(data))


def l3(ver: int, src: str, dst: str) -> Packet:
    """An IPv4 or IPv6 header from src to dst."""
    return IP(src=src, dst=dst) if ver == 4 else IPv6(src=src, dst=dst)


@pytest.mark.parametrize("encap", ENCAPS)
@pytest.mark.parametrize("ver,dst,dport,src,sport,hash_ip,hash_tcp", ALL_VECTORS)
def test_rss_hash_of_tcp_frames_matches_the_table_tcp_column(
    encap: str, ver: int, dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """TCP frames hash on the 4-tuple, whatever VLAN tags precede the IP header."""
    frame = ENCAPS[encap]() / l3(ver, src, dst) / TCP(sport=sport, dport=dport) / PAYLOAD
    assert rss_hash(bytes(frame)) == hash_tcp


@pytest.mark.parametrize("ver,dst,dport,src,sport,hash_ip,hash_tcp", ALL_VECTORS)
def test_rss_hash_of_udp_frames_uses_the_same_four_tuple_as_tcp(
    ver: int, dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """UDP frames hash on addresses and ports by default, giving the TCP column's value."""
    frame = ENCAPS["untagged"]() / l3(ver, src, dst) / UDP(sport=sport, dport=dport) / PAYLOAD
    assert rss_hash(bytes(frame)) == hash_tcp


@pytest.mark.parametrize("encap", ENCAPS)
@pytest.mark.parametrize("ver,dst,dport,src,sport,hash_ip,hash_tcp", ALL_VECTORS)
def test_rss_hash_of_non_tcp_udp_frames_matches_the_table_address_column(
    encap: str, ver: int, dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """ICMP frames fall back to the IP flow type and hash the two addresses."""
    l4 = ICMP() if ver == 4 else ICMPv6EchoRequest()
    frame = ENCAPS[encap]() / l3(ver, src, dst) / l4 / PAYLOAD
    assert rss_hash(bytes(frame)) == hash_ip


@pytest.mark.parametrize("ver,dst,dport,src,sport,hash_ip,hash_tcp", ALL_VECTORS[:1] + ALL_VECTORS[-1:])
@pytest.mark.parametrize("offset,more", [(0, True), (185, False)], ids=["first", "last"])
def test_rss_hash_of_fragments_uses_only_the_addresses(
    offset: int, more: bool, ver: int, dst: str, dport: int, src: str, sport: int,
    hash_ip: int, hash_tcp: int
) -> None:
    """A fragment hashes as plain IP, even the first one that carries the TCP header."""
    tcp = TCP(sport=sport, dport=dport) / PAYLOAD
    if ver == 4:
        ip = IP(src=src, dst=dst, flags="MF" if more else 0, frag=offset, proto=6)
    else:
        ip = IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(m=int(more), offset=offset, nh=6)
    assert rss_hash(bytes(ENCAPS["untagged"]() / ip / Raw(bytes(tcp)))) == hash_ip


def test_rss_hash_skips_ipv4_options_to_find_the_ports() -> None:
    """IPv4 options lengthen the header; the ports are read after them."""
    dst, dport, src, sport, _, hash_tcp = IPV4_VECTORS[2]
    ip = IP(src=src, dst=dst, options=[b"\x01\x01\x01\x00", b"\x94\x04\x00\x00"])
    frame = ENCAPS["untagged"]() / ip / TCP(sport=sport, dport=dport) / PAYLOAD
    assert Ether(bytes(frame))[IP].ihl > 5
    assert rss_hash(bytes(frame)) == hash_tcp


def test_rss_hash_skips_ipv6_extension_headers_to_find_the_ports() -> None:
    """A hop-by-hop header between IPv6 and TCP does not hide the ports."""
    dst, dport, src, sport, _, hash_tcp = IPV6_VECTORS[1]
    frame = (ENCAPS["vlan"]() / IPv6(src=src, dst=dst) / IPv6ExtHdrHopByHop()
             / TCP(sport=sport, dport=dport) / PAYLOAD)
    assert rss_hash(bytes(frame)) == hash_tcp


def test_rss_hash_ignores_ethernet_padding() -> None:
    """Padding a short frame to the Ethernet minimum does not change its hash."""
    dst, dport, src, sport, _, hash_tcp = IPV4_VECTORS[3]
    frame = bytes(ENCAPS["untagged"]() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport))
    assert rss_hash(frame + bytes(60 - len(frame))) == hash_tcp


def test_rss_hash_uses_only_the_addresses_when_tcp4_is_set_to_two_tuple() -> None:
    """`ethtool -N rx-flow-hash tcp4 sd` drops the ports from the TCP hash."""
    dst, dport, src, sport, hash_ip, _ = IPV4_VECTORS[0]
    rss = RssConfig(4)
    rss.fields["tcp4"] = RXH_IP_SRC | RXH_IP_DST
    frame = ENCAPS["untagged"]() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport)
    assert rss_hash(bytes(frame), rss) == hash_ip


def test_rss_hash_configuration_of_one_flow_type_leaves_the_others_alone() -> None:
    """Changing udp6 does not change how tcp6 frames hash."""
    dst, dport, src, sport, _, hash_tcp = IPV6_VECTORS[0]
    rss = RssConfig(4)
    rss.fields["udp6"] = RXH_IP_SRC
    frame = ENCAPS["untagged"]() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport)
    assert rss_hash(bytes(frame), rss) == hash_tcp


@pytest.mark.parametrize(
    "fields,parts",
    [
        (RXH_IP_SRC, ("src",)),
        (RXH_IP_DST, ("dst",)),
        (RXH_IP_DST | RXH_L4_B_2_3, ("dst", "dport")),
        (RXH_L4_B_0_1 | RXH_L4_B_2_3, ("sport", "dport")),
        (RXH_IP_SRC | RXH_L4_B_0_1, ("src", "sport")),
    ],
    ids=["s", "d", "dn", "fn", "sf"],
)
def test_rss_hash_input_holds_exactly_the_selected_fields_in_specification_order(
    fields: int, parts: tuple[str, ...]
) -> None:
    """Each RXH bit adds its field; the input keeps source, destination, ports order."""
    dst, dport, src, sport, _, _ = IPV4_VECTORS[4]
    values = {
        "src": socket.inet_aton(src),
        "dst": socket.inet_aton(dst),
        "sport": sport.to_bytes(2, "big"),
        "dport": dport.to_bytes(2, "big"),
    }
    rss = RssConfig(4)
    rss.fields["udp4"] = fields
    frame = ENCAPS["untagged"]() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport)
    assert rss_hash(bytes(frame), rss) == toeplitz(b"".join(values[p] for p in parts))


def test_rss_hash_declines_a_flow_type_with_no_fields_selected() -> None:
    """With nothing to hash the frame is not hashed at all."""
    dst, dport, src, sport, _, _ = IPV4_VECTORS[0]
    rss = RssConfig(4)
    rss.fields["tcp4"] = 0
    frame = ENCAPS["untagged"]() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport)
    assert rss_hash(bytes(frame), rss) is None


def test_rss_hash_declines_non_ip_frames() -> None:
    """An ARP request has no IP addresses to hash."""
    frame = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2")
    assert rss_hash(bytes(frame)) is None


@pytest.mark.parametrize("cut", [13, 14 + 10, 14 + 20 + 10], ids=["ethernet", "ip-header", "ip-payload"])
def test_rss_hash_declines_truncated_frames(cut: int) -> None:
    """A frame shorter than its headers say is not hashed."""
    dst, dport, src, sport, _, _ = IPV4_VECTORS[0]
    frame = bytes(ENCAPS["untagged"]() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport) / PAYLOAD)
    assert rss_hash(frame[:cut]) is None
