"""sn_inet_csum against RFC 1071 and scapy, and sn_rx_csum_check on built frames, each with
both summing loops (AVX2 and portable)."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw

from softena.datapath.vectors import ffi, lib

pytestmark = pytest.mark.usefixtures("csum_loop")

V4 = {"src": "192.0.2.1", "dst": "198.51.100.7"}
V6 = {"src": "2001:db8::1", "dst": "2001:db8:ffff::2:7"}


def inet_csum(data: bytes) -> int:
    """Call the C checksum on Python bytes."""
    return lib.sn_inet_csum(data, len(data))


def rfc1071(data: bytes) -> int:
    """Reference: complement of the one's-complement sum of big-endian 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(pkt: Packet, proto: int, l4_len: int) -> bytes:
    """The IPv4 or IPv6 pseudo-header that prefixes a TCP/UDP checksum."""
    if IP in pkt:
        ip = pkt[IP]
        return bytes(ip)[12:20] + struct.pack("!BBH", 0, proto, l4_len)
    return bytes(pkt[IPv6])[8:40] + struct.pack("!IxxxB", l4_len, proto)


def test_inet_csum_of_the_rfc1071_example_is_0x220d() -> None:
    """RFC 1071 section 3: the words sum to 0xddf2, whose complement is 0x220d."""
    assert inet_csum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_inet_csum_of_nothing_is_all_ones() -> None:
    """An empty sum is zero, so its complement is 0xffff."""
    assert inet_csum(b"") == 0xFFFF


@pytest.mark.parametrize(
    "data,expected",
    [(b"\x01", 0xFEFF), (b"\xab\xcd\xef", 0x6531), (bytes.fromhex("0001f203f4f5f6f7ff"), 0x230C)],
    ids=["0x0100", "0xabcd+0xef00", "rfc1071+0xff00"],
)
def test_inet_csum_pads_an_odd_last_byte_with_a_zero_low_byte(data: bytes, expected: int) -> None:
    """The trailing odd byte counts as the high byte of a final word (0xabcd + 0xef00 = 0x9ace)."""
    assert inet_csum(data) == expected


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6, 7, 9, 15, 17, 63, 1499, 1500, 9001])
def test_inet_csum_matches_the_rfc1071_definition_for_every_length(length: int) -> None:
    """Odd and even lengths, short and long, agree with a plain word-by-word sum."""
    rng = random.Random(length)
    for _ in range(10):
        data = rng.randbytes(length)
        assert inet_csum(data) == rfc1071(data)


@pytest.mark.parametrize("length,expected", [(20, 0x0000), (65534, 0x0000), (65535, 0x00FF)])
def test_inet_csum_folds_end_around_carries_of_all_ones_data(length: int, expected: int) -> None:
    """0xffff words sum to 0xffff again after end-around carries; a last 0xff adds 0xff00."""
    assert inet_csum(b"\xff" * length) == expected


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_inet_csum_does_not_depend_on_buffer_alignment(offset: int) -> None:
    """The same bytes at an unaligned address give the same checksum."""
    data = random.Random(offset).randbytes(257)
    buf = ffi.new("uint8_t[]", offset + len(data))
    ffi.memmove(buf + offset, data, len(data))
    assert lib.sn_inet_csum(buf + offset, len(data)) == rfc1071(data)


@pytest.mark.parametrize("length", [2, 20, 1480])
def test_inet_csum_of_data_followed_by_its_checksum_is_zero(length: int) -> None:
    """Storing the checksum with struct.pack('!H') makes the whole verify to 0."""
    data = random.Random(length).randbytes(length)
    assert inet_csum(data + struct.pack("!H", inet_csum(data))) == 0


@pytest.mark.parametrize(
    "options",
    [[], [b"\x01\x01\x01\x00"], [b"\x94\x04\x00\x00", b"\x07\x07\x04" + bytes(4) + b"\x00"]],
    ids=["plain", "nop", "router-alert-and-record-route"],
)
def test_inet_csum_of_an_ipv4_header_matches_scapy(options: list[bytes]) -> None:
    """The IPv4 header checksum equals the one scapy puts in a built packet."""
    pkt = IP(bytes(IP(id=0x1C46, ttl=64, options=options, **V4) / UDP()))
    header = bytearray(bytes(pkt)[: pkt.ihl * 4])
    header[10:12] = b"\x00\x00"
    assert inet_csum(bytes(header)) == pkt.chksum


L4_CASES: dict[str, Callable[[], Packet]] = {
    "tcp4": lambda: IP(**V4) / TCP(sport=40000, dport=80, seq=0xDEADBEEF, flags="PA"),
    "udp4": lambda: IP(**V4) / UDP(sport=5353, dport=53),
    "tcp6": lambda: IPv6(**V6) / TCP(sport=40000, dport=443, seq=7, flags="S", options=[("MSS", 1440)]),
    "udp6": lambda: IPv6(**V6) / UDP(sport=546, dport=547),
}


@pytest.mark.parametrize("payload_len", [0, 1, 10, 333, 1400])
@pytest.mark.parametrize("case", L4_CASES)
def test_inet_csum_over_pseudo_header_and_segment_matches_scapy(case: str, payload_len: int) -> None:
    """TCP and UDP checksums over pseudo-header plus segment agree with scapy's."""
    built = L4_CASES[case]() / Raw(random.Random(payload_len).randbytes(payload_len))
    pkt = built.__class__(bytes(built))
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    field = 16 if TCP in pkt else 6
    segment = bytearray(bytes(l4))
    segment[field:field + 2] = b"\x00\x00"
    expected = l4.chksum
    assert inet_csum(pseudo_header(pkt, 6 if TCP in pkt else 17, len(segment)) + bytes(segment)) == expected


def rx_check(frame: bytes | Packet) -> int:
    """Run sn_rx_csum_check on a frame."""
    raw = bytes(frame)
    return lib.sn_rx_csum_check(raw, len(raw))


def eth(vlan: bool = False) -> Packet:
    """An Ethernet header, optionally with one 802.1Q tag."""
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return frame / Dot1Q(vlan=42) if vlan else frame


GOOD_FRAMES: dict[str, Callable[[bool], Packet]] = {
    "tcp4": lambda v: eth(v) / L4_CASES["tcp4"]() / Raw(b"x" * 101),
    "udp4": lambda v: eth(v) / L4_CASES["udp4"]() / Raw(b"y" * 100),
    "tcp6": lambda v: eth(v) / L4_CASES["tcp6"]() / Raw(b"z" * 99),
    "udp6": lambda v: eth(v) / L4_CASES["udp6"]() / Raw(b"w" * 1),
    "tcp4-options": lambda v: eth(v) / IP(options=[b"\x94\x04\x00\x00"], **V4) / TCP() / Raw(b"o" * 9),
}


@pytest.mark.parametrize("vlan", [False, True], ids=["untagged", "vlan"])
@pytest.mark.parametrize("case", GOOD_FRAMES)
def test_rx_csum_check_accepts_frames_with_correct_checksums(case: str, vlan: bool) -> None:
    """Frames as scapy builds them, tagged or not, verify as good."""
    assert rx_check(GOOD_FRAMES[case](vlan)) == 1


@pytest.mark.parametrize("case", GOOD_FRAMES)
def test_rx_csum_check_rejects_a_frame_with_one_flipped_payload_byte(case: str) -> None:
    """Corrupting the last payload byte makes the L4 checksum bad."""
    frame = bytearray(bytes(GOOD_FRAMES[case](False)))
    frame[-1] ^= 0x5A
    assert rx_check(bytes(frame)) == -1


@pytest.mark.parametrize("case", ["tcp4", "udp4", "tcp6", "udp6"])
def test_rx_csum_check_rejects_a_frame_whose_pseudo_header_address_changed(case: str) -> None:
    """The pseudo-header is covered: a rewritten source address with a fixed IP header is bad."""
    pkt = Ether(bytes(GOOD_FRAMES[case](False)))
    if IP in pkt:
        pkt[IP].src = "192.0.2.99"
        del pkt[IP].chksum
    else:
        pkt[IPv6].src = "2001:db8::99"
    assert rx_check(pkt) == -1


def test_rx_csum_check_rejects_a_bad_ipv4_header_checksum() -> None:
    """A wrong IPv4 header checksum is bad even when the TCP checksum is right."""
    pkt = Ether(bytes(GOOD_FRAMES["tcp4"](False)))
    pkt[IP].chksum ^= 0x0100
    assert rx_check(pkt) == -1


def test_rx_csum_check_rejects_a_bad_ipv4_header_checksum_without_l4() -> None:
    """The IPv4 header is checked even for protocols with nothing else to verify."""
    pkt = Ether(bytes(eth() / IP(**V4) / ICMP()))
    pkt[IP].chksum ^= 0x0001
    assert rx_check(pkt) == -1


def test_rx_csum_check_accepts_a_udp_checksum_that_computes_to_zero_sent_as_all_ones() -> None:
    """A UDP checksum of 0 goes on the wire as 0xffff and still verifies."""
    base = IP(**V4) / UDP(sport=1, dport=2) / Raw(b"\x00\x00" + b"payload!")
    fix = IP(bytes(base))[UDP].chksum
    pkt = Ether(bytes(eth() / IP(**V4) / UDP(sport=1, dport=2) / Raw(struct.pack("!H", fix) + b"payload!")))
    assert pkt[UDP].chksum == 0xFFFF
    assert rx_check(pkt) == 1


@pytest.mark.parametrize(
    "frame",
    [
        eth() / IP(**V4) / ICMP() / Raw(b"ping"),
        eth(True) / IPv6(**V6) / ICMPv6EchoRequest(data=b"ping6"),
        eth() / ARP(psrc="192.0.2.1", pdst="192.0.2.2"),
        eth() / IP(flags="MF", **V4) / UDP() / Raw(b"first fragment"),
        eth() / IP(frag=100, proto=6, **V4) / Raw(b"later fragment"),
    ],
    ids=["icmp", "icmpv6", "arp", "ipv4-first-fragment", "ipv4-later-fragment"],
)
def test_rx_csum_check_has_nothing_to_verify_without_a_whole_tcp_or_udp_datagram(frame: Packet) -> None:
    """ICMP, non-IP and fragments have no L4 checksum the device can check."""
    assert rx_check(frame) == 0


def test_rx_csum_check_has_nothing_to_verify_for_ipv4_udp_with_checksum_zero() -> None:
    """UDP over IPv4 may omit its checksum by sending 0."""
    assert rx_check(eth() / IP(**V4) / UDP(chksum=0) / Raw(b"no checksum")) == 0


def test_rx_csum_check_ignores_ethernet_padding_after_the_ip_datagram() -> None:
    """Bytes padding a short frame to 60 are outside every checksum."""
    frame = bytes(eth() / IP(**V4) / TCP(flags="A"))
    assert rx_check(frame + b"\xa5" * (60 - len(frame))) == 1


@pytest.mark.parametrize("doff", [0, 4])
def test_rx_csum_check_calls_a_tcp_data_offset_under_five_words_bad(doff: int) -> None:
    """A header that claims to end inside its own 20 bytes is malformed, whatever its checksum
    (fuzz/: hardware GRO compared its options over a negative length)."""
    assert rx_check(eth() / IP(**V4) / TCP(flags="A", dataofs=doff) / Raw(b"d" * 64)) == -1


def inet_csum_copy(data: bytes, src_off: int = 0, dst_off: int = 0) -> tuple[int, bytes]:
    """The fused copy-and-checksum from SRC_OFF into DST_OFF of fresh buffers: checksum, copy."""
    src = ffi.new("uint8_t[]", src_off + len(data) + 1)
    dst = ffi.new("uint8_t[]", dst_off + len(data) + 64)
    ffi.memmove(src + src_off, data, len(data))
    csum = lib.sn_inet_csum_copy(dst + dst_off, src + src_off, len(data))
    assert bytes(ffi.buffer(dst, dst_off)) == bytes(dst_off), "wrote before its destination"
    assert bytes(ffi.buffer(dst + dst_off + len(data), 64)) == bytes(64), "wrote past its destination"
    return csum, bytes(ffi.buffer(dst + dst_off, len(data)))


@pytest.mark.parametrize("length", [0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 1448, 8948, 9001, 65535])
@pytest.mark.parametrize("src_off,dst_off", [(0, 0), (1, 0), (0, 3), (5, 2)])
def test_inet_csum_copy_copies_every_byte_and_sums_them_like_rfc1071(
        length: int, src_off: int, dst_off: int) -> None:
    """The one-pass copy and sum (TSO's segments, jumbo Rx's gather) gives the bytes exactly, no
    byte more, and the same checksum as a plain sum, at any length and alignment of either end."""
    data = random.Random(length * 7 + src_off).randbytes(length)
    csum, copied = inet_csum_copy(data, src_off, dst_off)
    assert copied == data
    assert csum == rfc1071(data)


def test_inet_csum_copy_folds_the_carries_of_a_64k_run_of_all_ones() -> None:
    """The widest lanes' worst case: 65535 bytes of 0xff, as the plain sum gives it."""
    assert inet_csum_copy(b"\xff" * 65535)[0] == 0x00FF


def rx_check_gathered(frame: bytes, frag_lens: list[int]) -> int:
    """sn_rx_csum_gathered: FRAME in pieces of FRAG_LENS, gathered and checked from their sum."""
    assert sum(frag_lens) == len(frame)
    out = ffi.new("uint8_t[]", len(frame))
    verdict = lib.sn_rx_csum_gathered(frame, frag_lens, len(frag_lens), out)
    assert bytes(ffi.buffer(out, len(frame))) == frame, "the gather lost or moved bytes"
    return verdict


def random_splits(length: int, seed: int) -> list[list[int]]:
    """Ways to cut LENGTH bytes into pieces: whole, 4 KiB pages, and random cuts at odd and
    even offsets (the Rx path must count each piece at its place)."""
    rng = random.Random(seed)
    splits = [[length], [4096] * (length // 4096) + ([length % 4096] if length % 4096 else [])]
    for _ in range(6):
        cuts = sorted(rng.sample(range(1, length), min(rng.randint(1, 8), length - 1)))
        splits.append([b - a for a, b in zip([0, *cuts], [*cuts, length])])
    return splits


JUMBO_FRAMES: dict[str, Callable[[], Packet]] = {
    "tcp4-9000": lambda: eth() / L4_CASES["tcp4"]() / Raw(random.Random(4).randbytes(8960)),
    "udp6-9000": lambda: eth(True) / L4_CASES["udp6"]() / Raw(random.Random(6).randbytes(8948)),
    "tcp6-odd": lambda: eth() / L4_CASES["tcp6"]() / Raw(random.Random(7).randbytes(5001)),
    "udp4-short": lambda: eth() / L4_CASES["udp4"]() / Raw(b"q" * 3),
}


@pytest.mark.parametrize("case", JUMBO_FRAMES)
def test_rx_csum_of_a_gathered_frame_gives_the_whole_frames_verdict(case: str) -> None:
    """Jumbo Rx sums the pieces as it gathers them and checks from that sum: good frames verify
    in every split, and one flipped payload byte (in any piece) is bad in every split."""
    frame = bytes(JUMBO_FRAMES[case]())
    assert rx_check(frame) == 1
    bad = bytearray(frame)
    bad[len(frame) * 2 // 3] ^= 0x01
    for split in random_splits(len(frame), len(frame)):
        assert rx_check_gathered(frame, split) == 1, split
        assert rx_check_gathered(bytes(bad), split) == -1, split


@pytest.mark.parametrize(
    "frame,verdict",
    [
        (bytes(eth() / IP(**V4) / TCP(flags="A")) + b"\xa5" * 6, 1),
        (bytes(eth() / IP(**V4) / UDP(chksum=0) / Raw(b"none" * 600)), 0),
        (bytes(eth() / IP(**V4) / ICMP() / Raw(b"p" * 3000)), 0),
        (bytes(eth() / IP(**V4) / TCP(flags="A", dataofs=4) / Raw(b"d" * 3000)), -1),
    ],
    ids=["ethernet-padding", "udp4-no-checksum", "icmp", "tcp-doff-4"],
)
def test_rx_csum_of_a_gathered_frame_agrees_where_the_sum_cannot_be_used(frame: bytes, verdict: int) -> None:
    """Padding past the IP length, no checksum, nothing to check, malformed: the same verdicts."""
    assert rx_check(frame) == verdict
    for split in random_splits(len(frame), 3):
        assert rx_check_gathered(frame, split) == verdict, split
