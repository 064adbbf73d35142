"""sn_tx_offload: TCP segmentation, checksum completion and rejected frames, with both summing
loops (each segment's payload is summed as it is copied)."""

from __future__ import annotations

import errno
import itertools
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, PadN
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw

from softena.datapath.datapath import TSO_MAX_SEGS
from softena.datapath.vectors import ffi, lib

NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 0, 1, 3, 4, 5, 0x80
MAX_SEGS = 768
pytestmark = pytest.mark.usefixtures("csum_loop")

MTU = 1500
PAYLOAD = bytes(itertools.islice(itertools.cycle(range(251)), 20000))
TIMESTAMPS = [("NOP", None), ("NOP", None), ("Timestamp", (123456789, 987654321))]
V4 = {"src": "192.0.2.1", "dst": "198.51.100.7"}
V6 = {"src": "2001:db8::1", "dst": "2001:db8:ffff::2:7"}


def vnet_hdr(flags: int = 0, gso_type: int = GSO_NONE, hdr_len: int = 0, gso_size: int = 0,
             csum_start: int = 0, csum_offset: int = 0) -> bytes:
    """A little-endian struct virtio_net_hdr_v1."""
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def tx_offload(vh: bytes, frame: bytes, mtu: int = MTU, outlen: int | None = None,
               max_segs: int = MAX_SEGS) -> tuple[int, list[bytes]]:
    """Run the Tx offload engine; return its result and the wire frames it wrote."""
    if outlen is None:
        outlen = len(frame) + max_segs * 160
    out = ffi.new("uint8_t[]", max(outlen, 1))
    lens = ffi.new("uint32_t[]", max(max_segs, 1))
    rc = lib.sn_tx_offload(vh, frame, len(frame), mtu, out, outlen, lens, max_segs)
    segs, off = [], 0
    for i in range(max(rc, 0)):
        segs.append(bytes(ffi.buffer(out + off, lens[i])))
        off += lens[i]
    return rc, segs


def fold(total: int) -> int:
    """Fold a sum of 16-bit words to 16 bits with end-around carries."""
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def seed_partial_csum(frame: bytearray, l3_off: int, l4_off: int, field: int) -> None:
    """Store the folded, uncomplemented pseudo-header sum as the kernel does for CHECKSUM_PARTIAL."""
    proto = 6 if field == 16 else 17
    if frame[l3_off] >> 4 == 4:
        addrs = frame[l3_off + 12:l3_off + 20]
    else:
        addrs = frame[l3_off + 8:l3_off + 40]
    words = bytes(addrs) + struct.pack("!HI", proto, len(frame) - l4_off)
    total = fold(sum(struct.unpack(f"!{len(words) // 2}H", words)))
    frame[l4_off + field:l4_off + field + 2] = struct.pack("!H", total)


def layers(ver: int, vlan: bool, **l3: object) -> Packet:
    """Ethernet (optionally VLAN-tagged) plus an IPv4 or IPv6 header."""
    l2 = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan:
        l2 = l2 / Dot1Q(vlan=7, prio=3)
    if ver == 4:
        return l2 / IP(id=l3.pop("ip_id", 0x1234), flags="DF", ttl=61, tos=0x10, **V4)
    return l2 / IPv6(hlim=61, tc=0x10, fl=0xBEEF, **V6)


def tcp_frame(ver: int, vlan: bool = False, options: bool = False, payload: bytes = PAYLOAD,
              flags: str = "FPAC", seq: int = 1_000_000, ip_id: int = 0x1234) -> Packet:
    """A GSO-sized TCP frame as the host stack hands it over."""
    tcp = TCP(sport=40000, dport=5201, seq=seq, ack=0xABCDEF01, flags=flags, window=501,
              options=TIMESTAMPS if options else [])
    return Ether(bytes(layers(ver, vlan, ip_id=ip_id) / tcp / Raw(payload)))


def offsets(pkt: Packet) -> tuple[int, int, int]:
    """(L3 offset, L4 offset, end of TCP header) of a parsed frame."""
    l3 = 18 if Dot1Q in pkt else 14
    l4 = len(pkt) - len(pkt[TCP]) if TCP in pkt else len(pkt) - len(pkt[UDP])
    hlen = l4 + pkt[TCP].dataofs * 4 if TCP in pkt else l4 + 8
    return l3, l4, hlen


def gso_vnet(pkt: Packet, gso_size: int, gso_type: int | None = None) -> tuple[bytes, bytes]:
    """The vnet header and frame bytes of a TSO frame with its pseudo-header seeded."""
    l3, l4, hlen = offsets(pkt)
    frame = bytearray(bytes(pkt))
    seed_partial_csum(frame, l3, l4, 16)
    if gso_type is None:
        gso_type = GSO_TCPV4 if IP in pkt else GSO_TCPV6
    return vnet_hdr(NEEDS_CSUM, gso_type, hlen, gso_size, l4, 16), bytes(frame)


def mss_for(pkt: Packet, mtu: int = MTU) -> int:
    """The MSS the host would pick for this connection at the given MTU."""
    l3, _, hlen = offsets(pkt)
    return mtu - (hlen - l3)


def segment(pkt: Packet, gso_size: int | None = None, mtu: int = MTU) -> list[Packet]:
    """Segment a TCP frame and parse the wire frames; fail unless it succeeded."""
    vh, frame = gso_vnet(pkt, gso_size or mss_for(pkt, mtu))
    rc, segs = tx_offload(vh, frame, mtu)
    assert rc > 0, f"sn_tx_offload returned {rc}"
    assert rc == len(segs)
    return [Ether(s) for s in segs]


GSO_CASES = [
    pytest.param((ver, vlan, options), id=f"ipv{ver}{'-vlan' if vlan else ''}{'-ts' if options else ''}")
    for ver, vlan, options in itertools.product((4, 6), (False, True), (False, True))
]


@pytest.fixture(scope="module", params=GSO_CASES)
def tso(request: pytest.FixtureRequest) -> tuple[Packet, list[Packet]]:
    """A 20000-byte TCP frame with PSH|FIN|CWR and its segments at MTU 1500."""
    ver, vlan, options = request.param
    pkt = tcp_frame(ver, vlan, options)
    return pkt, segment(pkt)


def test_tso_segments_reassemble_to_the_original_payload(tso: tuple[Packet, list[Packet]]) -> None:
    """Concatenating the segments' payloads gives back the GSO frame's payload."""
    _, segs = tso
    assert b"".join(bytes(s[TCP].payload) for s in segs) == PAYLOAD


def test_tso_segments_carry_ip_and_tcp_checksums_scapy_agrees_with(
    tso: tuple[Packet, list[Packet]]
) -> None:
    """Every segment's checksums equal what scapy computes for the same segment."""
    _, segs = tso
    for seg in segs:
        fresh = seg.copy()
        if IP in fresh:
            del fresh[IP].chksum
        del fresh[TCP].chksum
        rebuilt = Ether(bytes(fresh))
        if IP in seg:
            assert seg[IP].chksum == rebuilt[IP].chksum
        assert seg[TCP].chksum == rebuilt[TCP].chksum


def test_tso_segments_fill_the_mtu_and_never_exceed_it(tso: tuple[Packet, list[Packet]]) -> None:
    """All but the last segment carry a full MSS; none is longer than the MTU at L3."""
    pkt, segs = tso
    mss = mss_for(pkt)
    l3, _, _ = offsets(pkt)
    assert len(segs) == -(-len(PAYLOAD) // mss)
    for seg in segs:
        assert len(seg) - l3 <= MTU
    assert [len(s[TCP].payload) for s in segs[:-1]] == [mss] * (len(segs) - 1)
    assert len(segs[-1][TCP].payload) == len(PAYLOAD) - mss * (len(segs) - 1)


def test_tso_segments_have_consecutive_sequence_numbers(tso: tuple[Packet, list[Packet]]) -> None:
    """Each segment starts where the previous one's payload ended."""
    pkt, segs = tso
    expected = pkt[TCP].seq
    for seg in segs:
        assert seg[TCP].seq == expected
        expected = (expected + len(seg[TCP].payload)) % 2**32


def test_tso_puts_fin_and_psh_on_the_last_segment_only(tso: tuple[Packet, list[Packet]]) -> None:
    """FIN and PSH end the burst; the earlier segments carry neither."""
    _, segs = tso
    for seg in segs[:-1]:
        assert not seg[TCP].flags.F and not seg[TCP].flags.P
    assert segs[-1][TCP].flags.F and segs[-1][TCP].flags.P


def test_tso_puts_cwr_on_the_first_segment_only(tso: tuple[Packet, list[Packet]]) -> None:
    """CWR is signalled once, on the first segment."""
    _, segs = tso
    assert segs[0][TCP].flags.C
    assert not any(seg[TCP].flags.C for seg in segs[1:])


def test_tso_keeps_ack_on_every_segment(tso: tuple[Packet, list[Packet]]) -> None:
    """Flags other than FIN, PSH and CWR are copied to all segments."""
    _, segs = tso
    assert all(seg[TCP].flags.A and not seg[TCP].flags.S for seg in segs)


def test_tso_sets_each_segment_ip_length(tso: tuple[Packet, list[Packet]]) -> None:
    """IPv4 total length and IPv6 payload length describe each segment, not the GSO frame."""
    pkt, segs = tso
    l3, _, _ = offsets(pkt)
    for seg in segs:
        if IP in seg:
            assert seg[IP].len == len(seg) - l3
        else:
            assert seg[IPv6].plen == len(seg) - l3 - 40


@pytest.mark.parametrize("options", [False, True], ids=["plain", "ts"])
@pytest.mark.parametrize("vlan", [False, True], ids=["untagged", "vlan"])
def test_tso_increments_the_ipv4_id_per_segment(vlan: bool, options: bool) -> None:
    """Segment n carries the GSO frame's IP ID plus n."""
    pkt = tcp_frame(4, vlan, options)
    segs = segment(pkt)
    assert [s[IP].id for s in segs] == [(pkt[IP].id + i) & 0xFFFF for i in range(len(segs))]


def test_tso_copies_every_other_header_field(tso: tuple[Packet, list[Packet]]) -> None:
    """Addresses, ports, ack, window, options, TTL, TOS, DF and the VLAN tag stay as given."""
    pkt, segs = tso

    def invariant(p: Packet) -> tuple[object, ...]:
        fields: tuple[object, ...] = (p[Ether].src, p[Ether].dst, p[TCP].sport, p[TCP].dport,
                                      p[TCP].ack, p[TCP].window, p[TCP].dataofs, p[TCP].options,
                                      p[TCP].urgptr)
        if Dot1Q in p:
            fields += (p[Dot1Q].vlan, p[Dot1Q].prio)
        if IP in p:
            return fields + (p[IP].src, p[IP].dst, p[IP].ttl, p[IP].tos, p[IP].flags, p[IP].frag)
        return fields + (p[IPv6].src, p[IPv6].dst, p[IPv6].hlim, p[IPv6].tc, p[IPv6].fl)

    assert all(invariant(seg) == invariant(pkt) for seg in segs)


@pytest.mark.parametrize("ver", [4, 6])
def test_tso_sequence_numbers_wrap_around_modulo_2_32(ver: int) -> None:
    """A burst that crosses 2**32 continues at 0."""
    pkt = tcp_frame(ver, seq=2**32 - 3000, payload=PAYLOAD[:6000])
    segs = segment(pkt)
    mss = mss_for(pkt)
    assert [s[TCP].seq for s in segs] == [(2**32 - 3000 + i * mss) % 2**32 for i in range(len(segs))]
    assert b"".join(bytes(s[TCP].payload) for s in segs) == PAYLOAD[:6000]


def test_tso_ipv4_id_wraps_around_at_16_bits() -> None:
    """IDs continue from 0xffff to 0x0000."""
    segs = segment(tcp_frame(4, ip_id=0xFFFE, payload=PAYLOAD[:5000]))
    assert [s[IP].id for s in segs] == [0xFFFE, 0xFFFF, 0x0000, 0x0001]


@pytest.mark.parametrize(
    "ver,gso_size,mtu",
    [(4, 9000, 1500), (6, 1440, 1280), (4, 1460, 576), (6, 8940, 9000)],
    ids=["v4-jumbo-mss-on-1500", "v6-1500-mss-on-1280", "v4-1500-mss-on-576", "v6-jumbo-mss-on-9000"],
)
def test_tso_reduces_an_mss_that_would_exceed_the_wire_mtu(ver: int, gso_size: int, mtu: int) -> None:
    """Segments are cut to fill the wire MTU exactly when gso_size is too big for it."""
    pkt = tcp_frame(ver, options=True)
    assert gso_size > mss_for(pkt, mtu)
    segs = segment(pkt, gso_size=gso_size, mtu=mtu)
    l3, _, _ = offsets(pkt)
    assert all(len(s) - l3 == mtu for s in segs[:-1])
    assert len(segs[-1]) - l3 <= mtu
    assert b"".join(bytes(s[TCP].payload) for s in segs) == PAYLOAD


@pytest.mark.parametrize("ver", [4, 6])
def test_tso_honours_a_gso_size_below_what_the_mtu_allows(ver: int) -> None:
    """A small MSS (536) is used as given, not raised to the MTU."""
    segs = segment(tcp_frame(ver), gso_size=536)
    assert [len(s[TCP].payload) for s in segs] == [536] * 37 + [len(PAYLOAD) - 536 * 37]


@pytest.mark.parametrize(
    "size,count",
    [(1448 * 3, 3), (1449, 2), (1448, 1), (1, 1)],
    ids=["exact-multiple", "one-over", "one-mss", "one-byte"],
)
def test_tso_makes_as_many_segments_as_mss_chunks(size: int, count: int) -> None:
    """The segment count is the payload divided by the MSS, rounded up."""
    segs = segment(tcp_frame(4, payload=PAYLOAD[:size]), gso_size=1448)
    assert len(segs) == count
    assert b"".join(bytes(s[TCP].payload) for s in segs) == PAYLOAD[:size]


def test_tso_of_a_single_segment_keeps_fin_psh_and_cwr_together() -> None:
    """When the burst is one segment, it is both the first and the last."""
    (seg,) = segment(tcp_frame(6, payload=b"tail"), gso_size=1440)
    assert seg[TCP].flags.F and seg[TCP].flags.P and seg[TCP].flags.C


@pytest.mark.parametrize("ver", [4, 6])
def test_tso_ignores_the_ecn_bit_of_gso_type(ver: int) -> None:
    """VIRTIO_NET_HDR_GSO_ECN does not change the segments."""
    pkt = tcp_frame(ver, payload=PAYLOAD[:4000])
    plain_vh, frame = gso_vnet(pkt, 1000)
    ecn_vh, _ = gso_vnet(pkt, 1000, (GSO_TCPV4 if ver == 4 else GSO_TCPV6) | GSO_ECN)
    assert tx_offload(ecn_vh, frame) == tx_offload(plain_vh, frame)


@pytest.mark.parametrize("ver,payload", [(4, 65535 - 40), (6, 65535 - 20)], ids=["ipv4", "ipv6"])
def test_tso_segments_the_largest_gso_frame(ver: int, payload: int) -> None:
    """A frame with a 64 KiB IP length is segmented whole."""
    data = bytes(itertools.islice(itertools.cycle(range(253)), payload))
    segs = segment(tcp_frame(ver, payload=data))
    assert b"".join(bytes(s[TCP].payload) for s in segs) == data


def tx_offload_pieces(vh: bytes, frame: bytes, mtu: int, chunk: int) -> tuple[int, list[bytes]]:
    """The engine through a sink of CHUNK-byte pieces (multi-buffer AF_XDP), gathered back."""
    outlen, max_segs = len(frame) + MAX_SEGS * 160, MAX_SEGS
    out = ffi.new("uint8_t[]", outlen)
    lens = ffi.new("uint32_t[]", max_segs)
    rc = lib.sn_tx_offload_pieces(vh, frame, len(frame), mtu, chunk, out, outlen, lens, max_segs)
    segs, off = [], 0
    for i in range(max(rc, 0)):
        segs.append(bytes(ffi.buffer(out + off, lens[i])))
        off += lens[i]
    return rc, segs


@pytest.mark.parametrize("mtu,chunk", [(9000, 4096), (9000, 2048), (4000, 3000), (9000, 1000), (1500, 4096)],
                         ids=["9000-in-4k", "9000-in-2k", "4000-in-3000", "9000-in-1000", "1500-whole"])
def test_tso_written_in_pieces_sends_the_same_bytes(tso: tuple[Packet, list[Packet]], mtu: int, chunk: int) -> None:
    """A segment written straight into a multi-buffer wire's frames, piece by piece (the payload
    summed across their boundaries), is byte for byte what the contiguous path sends."""
    pkt, _ = tso
    vh, frame = gso_vnet(pkt, mss_for(pkt, mtu))
    rc, whole = tx_offload(vh, frame, mtu)
    rc_pieces, pieces = tx_offload_pieces(vh, frame, mtu, chunk)
    assert rc > 1 and rc_pieces == rc
    assert pieces == whole
    if mtu > chunk:
        assert max(len(s) for s in whole) > chunk  # the pieces were used, not the whole buffer


def test_tso_segments_up_to_the_device_limit_at_the_smallest_wire_mtu() -> None:
    """At the minimum MTU (128) a frame of exactly tso_max_segs segments still goes out whole."""
    data = bytes(itertools.islice(itertools.cycle(range(253)), 76 * TSO_MAX_SEGS))
    segs = segment(tcp_frame(4, options=True, payload=data), mtu=128)
    assert len(segs) == TSO_MAX_SEGS
    assert b"".join(bytes(s[TCP].payload) for s in segs) == data


def test_tso_refuses_a_frame_needing_more_than_tso_max_segs() -> None:
    """The host is told gso_max_segs; a frame past it is malformed, not cut short."""
    data = bytes(76 * TSO_MAX_SEGS + 1)
    pkt = tcp_frame(4, options=True, payload=data)
    l4 = len(pkt) - len(pkt[TCP])
    rc, _ = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_TCPV4, l4 + 32, 76, l4, 16), bytes(pkt), mtu=128)
    assert rc == -errno.EINVAL


def test_tso_skips_ipv6_extension_headers() -> None:
    """A hop-by-hop header is copied to every segment and counted in its payload length."""
    pkt = Ether(bytes(layers(6, False) / IPv6ExtHdrHopByHop() / TCP(seq=5, flags="PA")
                      / Raw(PAYLOAD[:5000])))
    l4 = len(pkt) - len(pkt[TCP])
    frame = bytearray(bytes(pkt))
    seed_partial_csum(frame, 14, l4, 16)
    rc, raw = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_TCPV6, l4 + 20, 1400, l4, 16), bytes(frame))
    assert rc == 4
    for seg in map(Ether, raw):
        assert IPv6ExtHdrHopByHop in seg
        assert seg[IPv6].plen == len(seg) - 14 - 40
        fresh = seg.copy()
        del fresh[TCP].chksum
        assert Ether(bytes(fresh))[TCP].chksum == seg[TCP].chksum
    assert b"".join(bytes(Ether(s)[TCP].payload) for s in raw) == PAYLOAD[:5000]


L4_BUILDERS = {
    "tcp": lambda: TCP(sport=40000, dport=80, seq=12345, ack=678, flags="PA"),
    "udp": lambda: UDP(sport=5353, dport=53),
}


@pytest.mark.parametrize("payload_len", [0, 1, 100, 1001, 1400])
@pytest.mark.parametrize("vlan", [False, True], ids=["untagged", "vlan"])
@pytest.mark.parametrize("ver", [4, 6])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_checksum_completion_produces_the_checksum_scapy_computes(
    proto: str, ver: int, vlan: bool, payload_len: int
) -> None:
    """With NEEDS_CSUM the seeded field becomes the full checksum; the frame is otherwise unchanged."""
    expected = bytes(layers(ver, vlan) / L4_BUILDERS[proto]() / Raw(PAYLOAD[:payload_len]))
    pkt = Ether(expected)
    l3, l4, _ = offsets(pkt)
    field = 16 if proto == "tcp" else 6
    frame = bytearray(expected)
    seed_partial_csum(frame, l3, l4, field)
    assert bytes(frame) != expected
    rc, segs = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_NONE, 0, 0, l4, field), bytes(frame))
    assert rc == 1
    assert segs == [expected]


@pytest.mark.parametrize("ver", [4, 6])
def test_udp_checksum_completion_sends_a_zero_sum_as_all_ones(ver: int) -> None:
    """A UDP checksum that computes to 0 goes out as 0xffff, as scapy writes it."""
    probe = Ether(bytes(layers(ver, False) / UDP(sport=1, dport=2) / Raw(b"\x00\x00pad!")))
    fix = probe[UDP].chksum
    expected = bytes(layers(ver, False) / UDP(sport=1, dport=2) / Raw(struct.pack("!H", fix) + b"pad!"))
    assert Ether(expected)[UDP].chksum == 0xFFFF
    l3, l4, _ = offsets(Ether(expected))
    frame = bytearray(expected)
    seed_partial_csum(frame, l3, l4, 6)
    rc, segs = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_NONE, 0, 0, l4, 6), bytes(frame))
    assert (rc, segs) == (1, [expected])


def test_frame_without_offload_request_passes_through_unchanged() -> None:
    """No NEEDS_CSUM and no GSO: even a wrong checksum is left alone."""
    frame = bytearray(bytes(layers(4, True) / TCP() / Raw(b"as is")))
    frame[-10] ^= 0xFF
    assert tx_offload(vnet_hdr(), bytes(frame)) == (1, [bytes(frame)])


@pytest.mark.parametrize("mtu", [1500, 1280, 9000])
def test_non_gso_frame_may_be_mtu_plus_ethernet_and_two_vlan_tags(mtu: int) -> None:
    """mtu + 14 + 8 bytes go out; one more byte is -EMSGSIZE."""
    frame = bytes(layers(4, False) / UDP() / Raw(bytes(mtu + 8 - 20 - 8)))
    assert len(frame) == mtu + 22
    assert tx_offload(vnet_hdr(), frame, mtu)[0] == 1
    assert tx_offload(vnet_hdr(), frame + b"\x00", mtu)[0] == -errno.EMSGSIZE


def test_oversized_frame_with_a_checksum_request_is_emsgsize() -> None:
    """A 20000-byte frame without GSO cannot go on a 1500 wire."""
    pkt = tcp_frame(4)
    _, l4, _ = offsets(pkt)
    rc, _ = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_NONE, 0, 0, l4, 16), bytes(pkt))
    assert rc == -errno.EMSGSIZE


@pytest.mark.parametrize("ver", [4, 6])
def test_gso_frame_with_gso_size_zero_is_einval(ver: int) -> None:
    """An MSS of 0 cannot be segmented."""
    vh, frame = gso_vnet(tcp_frame(ver), 0)
    assert tx_offload(vh, frame)[0] == -errno.EINVAL


@pytest.mark.parametrize("ver", [4, 6])
@pytest.mark.parametrize("where", ["ip-header", "tcp-header", "payload"])
def test_truncated_gso_frame_is_einval(ver: int, where: str) -> None:
    """A GSO frame cut short of what its IP header says is rejected."""
    pkt = tcp_frame(ver, payload=PAYLOAD[:3000])
    l3, l4, _ = offsets(pkt)
    vh, frame = gso_vnet(pkt, 1000)
    cut = {"ip-header": l3 + 10, "tcp-header": l4 + 10, "payload": len(frame) - 1}[where]
    assert tx_offload(vh, frame[:cut])[0] == -errno.EINVAL


@pytest.mark.parametrize("length", [0, 1, 13])
def test_frame_shorter_than_an_ethernet_header_is_einval(length: int) -> None:
    """Less than 14 bytes is not a frame."""
    assert tx_offload(vnet_hdr(), bytes(length))[0] == -errno.EINVAL


def test_gso_frame_with_headers_only_is_einval() -> None:
    """A TSO request with no payload has nothing to segment."""
    vh, frame = gso_vnet(tcp_frame(4, payload=b"x"), 1448)
    assert tx_offload(vh, frame[:-1])[0] == -errno.EINVAL


@pytest.mark.parametrize("gso_type", [GSO_TCPV4, GSO_TCPV6])
def test_tcp_gso_of_a_non_tcp_frame_is_einval(gso_type: int) -> None:
    """TSO is refused for UDP datagrams and non-IP frames."""
    udp = bytes(layers(4, False) / UDP() / Raw(PAYLOAD[:3000]))
    arp = bytes(Ether() / ARP()) + PAYLOAD[:3000]
    for frame in (udp, arp):
        assert tx_offload(vnet_hdr(0, gso_type, 42, 1000, 34, 6), frame)[0] == -errno.EINVAL


@pytest.mark.parametrize("gso_type", [GSO_UDP, GSO_UDP_L4, 0x42])
def test_unsupported_gso_types_are_einval(gso_type: int) -> None:
    """Only TCPv4 and TCPv6 segmentation is offered."""
    frame = bytes(layers(4, False) / UDP() / Raw(PAYLOAD[:3000]))
    assert tx_offload(vnet_hdr(0, gso_type, 42, 1000), frame)[0] == -errno.EINVAL


@pytest.mark.parametrize(
    "start,offset",
    [(100, 16), (40, 60), (98, 1)],
    ids=["start-past-end", "field-past-end", "field-straddles-end"],
)
def test_checksum_request_outside_the_frame_is_einval(start: int, offset: int) -> None:
    """csum_start and csum_offset must point inside the frame."""
    frame = bytes(layers(4, False) / UDP() / Raw(bytes(100 - 42)))
    assert len(frame) == 100
    assert tx_offload(vnet_hdr(NEEDS_CSUM, GSO_NONE, 0, 0, start, offset), frame)[0] == -errno.EINVAL


def test_tso_without_room_for_one_segment_is_enobufs() -> None:
    """No output space at all is -ENOBUFS, not a silent success."""
    vh, frame = gso_vnet(tcp_frame(4, payload=PAYLOAD[:3000]), 1000)
    assert tx_offload(vh, frame, outlen=100)[0] == -errno.ENOBUFS


@pytest.mark.parametrize("room", [0, 1])
def test_tso_refuses_headers_that_fill_the_wire_mtu(room: int) -> None:
    """IPv6 with a hop-by-hop header and 40 bytes of TCP options fill an MTU of their own size:
    no room for an MSS is -EMSGSIZE, not a wrapped MSS and segments past the MTU (found by
    fuzz/); one byte of room still goes out, a byte a segment."""
    hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 28)])
    pkt = Ether(bytes(layers(6, False) / hbh / TCP(flags="A", options=[("NOP", None)] * 40) / Raw(PAYLOAD[:100])))
    l4 = len(pkt) - len(pkt[TCP])
    mtu = l4 + 60 - 14 + room
    assert mtu > 128
    rc, segs = tx_offload(vnet_hdr(NEEDS_CSUM, GSO_TCPV6, l4 + 60, 100, l4, 16), bytes(pkt), mtu=mtu)
    if room:
        assert rc == 100 and all(len(s) - 14 <= mtu for s in segs)
    else:
        assert rc == -errno.EMSGSIZE


def test_tx_csum_request_past_the_frame_takes_no_buffer() -> None:
    """A refused checksum request is refused before the sink is asked: the flat sink has room for
    nothing, so a buffer asked first would turn -EINVAL into -ENOBUFS (fuzz/: pool frames leaked)."""
    frame = bytes(Ether() / IP(**V4) / UDP() / Raw(b"u" * 100))
    assert tx_offload(vnet_hdr(NEEDS_CSUM, GSO_NONE, 0, 0, 34, len(frame)), frame, outlen=0)[0] == -errno.EINVAL
