"""Hardware GRO: which TCP segments one NAPI batch merges, checked against scapy.

The rules are tcp_gro_receive()'s (with inet_gro_receive()/ipv6_gro_receive()
for the network headers). Segments are built by scapy, and merged frames are
taken apart by scapy again: the payload must be the segments' payloads in
order, the headers the first segment's with the lengths of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from scapy.layers.inet import IP, TCP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from softena.datapath.vectors import ffi, lib

NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4
MSS = 1448
MAX_SEGS = 45  # SN_HW_GRO_MAX_SEGS: 64 KiB at an MSS of 1448
TIMESTAMPS = ("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))
ADDRS = {4: ("198.18.0.2", "198.18.0.1"), 6: ("2001:2::2", "2001:2::1")}
L2 = {"src": "02:00:00:00:00:02", "dst": "02:00:00:00:00:01"}


@dataclass
class Delivered:
    """One frame the queue would write to the host tap, with its vnet header."""

    data: bytes
    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int
    nsegs: int


def gro(frames: list[Packet]) -> list[Delivered]:
    """Run FRAMES through hardware GRO as one NAPI batch; what goes up, in order."""
    raw = [bytes(f) for f in frames]
    blob = b"".join(raw)
    lens = ffi.new("uint32_t[]", [len(r) for r in raw])
    out = ffi.new("uint8_t[]", len(blob) + 1)
    meta = ffi.new("struct sn_gro_out[]", len(raw) + 1)
    n = lib.sn_hw_gro_batch(blob, lens, len(raw), out, len(blob) + 1, meta, len(raw) + 1)
    assert n >= 0
    return [Delivered(bytes(ffi.buffer(out + m.offset, m.len)), m.flags, m.gso_type, m.hdr_len, m.gso_size,
                      m.csum_start, m.csum_offset, m.nsegs) for m in meta[0:n]]


def payload(i: int, size: int) -> bytes:
    """Segment I's payload: bytes no other segment has in the same place."""
    return bytes((i * 7 + k) % 251 for k in range(size))


def segment(ver: int = 4, seq: int = 1, size: int = MSS, i: int = 0, sport: int = 40000, flags: str = "A",
            ack: int = 5000, options=TIMESTAMPS, ip: dict | None = None, ext: Packet | None = None,
            **tcp) -> Packet:
    """One TCP data segment from the peer, as the wire would carry it (built, then parsed,
    so every field holds the value on the wire)."""
    src, dst = ADDRS[ver]
    if ver == 4:
        l3 = IP(**{"src": src, "dst": dst, "id": 100 + i, "flags": "DF", "ttl": 64, **(ip or {})})
    else:
        l3 = IPv6(**{"src": src, "dst": dst, "hlim": 64, **(ip or {})})
        if ext is not None:
            l3 = l3 / ext
    l4 = TCP(**{"sport": sport, "dport": 5201, "seq": seq, "ack": ack, "flags": flags, "window": 500,
                "options": list(options), **tcp})
    return Ether(bytes(Ether(**L2) / l3 / l4 / Raw(payload(i, size))))


def flow(ver: int = 4, n: int = 4, size: int = MSS, seq: int = 1, first: int = 0, **kw) -> list[Packet]:
    """N consecutive full segments of one flow, from segment number FIRST."""
    return [segment(ver, seq + (first + i) * size, size, first + i, **kw) for i in range(n)]


def shape(out: list[Delivered]) -> list[int]:
    """How many wire segments each delivered frame carries."""
    return [d.nsegs for d in out]


def fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete_partial(frame: bytes, start: int, offset: int) -> bytes:
    """Finish a CHECKSUM_PARTIAL frame the way the host's resegmentation or a NIC would."""
    data = frame[start:] + b"\0" * (len(frame[start:]) % 2)
    total = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    csum = ~fold(total) & 0xFFFF
    at = start + offset
    return frame[:at] + csum.to_bytes(2, "big") + frame[at + 2:]


def assert_merged(d: Delivered, segs: list[Packet]) -> None:
    """D is SEGS as one GSO frame: their payloads, the first's headers, the whole's lengths."""
    first, last = segs[0], segs[-1]
    ver = 4 if IP in first else 6
    l4_off = 14 + (20 if ver == 4 else 40)
    hlen = l4_off + first[TCP].dataofs * 4
    assert (d.nsegs, d.flags, d.gso_type) == (len(segs), NEEDS_CSUM, GSO_TCPV4 if ver == 4 else GSO_TCPV6)
    assert (d.hdr_len, d.gso_size, d.csum_start, d.csum_offset) == (hlen, len(first[Raw].load), l4_off, 16)

    got = Ether(complete_partial(d.data, d.csum_start, d.csum_offset))
    assert got[Raw].load == b"".join(s[Raw].load for s in segs)
    if ver == 4:
        assert got[IP].len == len(d.data) - 14
        for name in ("version", "ihl", "tos", "id", "flags", "frag", "ttl", "proto", "src", "dst"):
            assert getattr(got[IP], name) == getattr(first[IP], name), name
        header = got[IP].copy()
        del header.chksum
        assert IP(bytes(header)).chksum == got[IP].chksum
    else:
        assert got[IPv6].plen == len(d.data) - 14 - 40
        for name in ("tc", "fl", "nh", "hlim", "src", "dst"):
            assert getattr(got[IPv6], name) == getattr(first[IPv6], name), name
    want_flags = "PA" if "P" in str(last[TCP].flags) else "A"
    assert str(got[TCP].flags) == want_flags
    for name in ("sport", "dport", "seq", "ack", "dataofs", "options", "urgptr"):
        assert getattr(got[TCP], name) == getattr(first[TCP], name), name
    assert got[TCP].window == last[TCP].window
    rebuilt = got.copy()
    del rebuilt[TCP].chksum
    assert Ether(bytes(rebuilt))[TCP].chksum == got[TCP].chksum


def assert_alone(d: Delivered, seg: Packet, valid: bool = True) -> None:
    """D is SEG alone, no GSO, with the Rx checksum verdict: a verified one goes up
    CHECKSUM_PARTIAL (tun ignores DATA_VALID from its writer), its checksum field the
    pseudo-header's sum, so that completing it gives SEG back; a bad one as it came."""
    assert (d.nsegs, d.gso_type, d.gso_size) == (1, GSO_NONE, 0)
    if not valid:
        assert (d.data, d.flags) == (bytes(seg), 0)
        return
    l4_off = len(seg) - len(seg[TCP])  # past IP options and IPv6 extension headers
    assert (d.flags, d.csum_start, d.csum_offset) == (NEEDS_CSUM, l4_off, 16)
    assert d.data != bytes(seg), "the checksum field still holds the full checksum"
    assert complete_partial(d.data, d.csum_start, d.csum_offset) == bytes(seg)


# ---- what merges -------------------------------------------------------------


@pytest.mark.parametrize("ver", [4, 6])
def test_in_order_full_segments_of_one_flow_leave_as_one_gso_frame(ver: int) -> None:
    segs = flow(ver, 4)
    out = gro(segs)
    assert shape(out) == [4]
    assert_merged(out[0], segs)


@pytest.mark.parametrize("ver", [4, 6])
def test_a_short_final_segment_is_merged_and_ends_the_frame(ver: int) -> None:
    segs = flow(ver, 3) + [segment(ver, 1 + 3 * MSS, 500, 3)]
    out = gro(segs)
    assert shape(out) == [4]
    assert_merged(out[0], segs)


def test_a_final_psh_segment_is_merged_and_the_frame_carries_psh() -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS, MSS, 2, flags="PA")]
    out = gro(segs)
    assert shape(out) == [3]
    assert_merged(out[0], segs)


def test_a_segment_after_psh_starts_a_new_frame() -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS, MSS, 2, flags="PA")] + flow(4, 2, first=3)
    out = gro(segs)
    assert shape(out) == [3, 2]
    assert_merged(out[0], segs[:3])
    assert_merged(out[1], segs[3:])


def test_a_lone_segment_goes_up_as_it_came_with_its_checksum_validated() -> None:
    seg = segment(6)
    out = gro([seg])
    assert shape(out) == [1]
    assert_alone(out[0], seg)


def test_ipv4_with_df_and_a_fixed_id_merges_as_inet_gro_allows() -> None:
    segs = flow(4, 3, ip={"id": 7})
    out = gro(segs)
    assert shape(out) == [3]
    assert_merged(out[0], segs)


def test_the_merged_frame_carries_the_newest_window() -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS, MSS, 2, window=900)]
    out = gro(segs)
    assert shape(out) == [3]
    assert_merged(out[0], segs)


# ---- what does not merge -----------------------------------------------------


@pytest.mark.parametrize("flags", ["SA", "FA", "RA", "UA"], ids=["syn", "fin", "rst", "urg"])
def test_a_segment_with_syn_fin_rst_or_urg_flushes_its_flow_and_goes_up_alone(flags: str) -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS, MSS, 2, flags=flags, urgptr=10 if "U" in flags else 0)]
    segs += flow(4, 2, first=3)
    out = gro(segs)
    assert shape(out) == [2, 1, 2]
    assert_merged(out[0], segs[:2])
    assert_alone(out[1], segs[2])
    assert_merged(out[2], segs[3:])


def test_a_different_timestamp_option_starts_a_new_frame() -> None:
    later = (("NOP", None), ("NOP", None), ("Timestamp", (1001, 2000)))
    segs = flow(4, 2) + flow(4, 2, first=2, options=later)
    out = gro(segs)
    assert shape(out) == [2, 2]
    assert_merged(out[0], segs[:2])
    assert_merged(out[1], segs[2:])


def test_a_different_ack_number_starts_a_new_frame() -> None:
    segs = flow(6, 2) + flow(6, 2, first=2, ack=6000)
    out = gro(segs)
    assert shape(out) == [2, 2]
    assert_merged(out[0], segs[:2])
    assert_merged(out[1], segs[2:])


def test_ipv4_options_are_refused_each_segment_goes_up_alone() -> None:
    segs = flow(4, 3, ip={"options": [IPOption_NOP()] * 4})
    out = gro(segs)
    assert shape(out) == [1, 1, 1]
    for d, s in zip(out, segs):
        assert_alone(d, s)


def test_ipv6_extension_headers_are_refused_each_segment_goes_up_alone() -> None:
    segs = flow(6, 3, ext=IPv6ExtHdrDestOpt())
    out = gro(segs)
    assert shape(out) == [1, 1, 1]
    for d, s in zip(out, segs):
        assert_alone(d, s)


def test_a_gap_in_sequence_numbers_ends_the_frame_before_it() -> None:
    segs = flow(4, 2) + flow(4, 2, first=3)  # segment 2 lost
    out = gro(segs)
    assert shape(out) == [2, 2]
    assert_merged(out[0], segs[:2])
    assert_merged(out[1], segs[2:])


def test_a_duplicate_segment_is_not_merged_into_the_frame_it_repeats() -> None:
    segs = flow(4, 2) + flow(4, 2, first=1)  # segment 1 again, then 2
    out = gro(segs)
    assert shape(out) == [2, 2]
    assert_merged(out[0], segs[:2])
    assert_merged(out[1], segs[2:])


def test_an_overlapping_segment_is_not_merged() -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS - 100, MSS, 2)]
    out = gro(segs)
    assert shape(out) == [2, 1]
    assert_merged(out[0], segs[:2])
    assert_alone(out[1], segs[2])


@pytest.mark.parametrize("other", [{"sport": 40001}, {"ip": {"src": "198.18.0.3"}}], ids=["port", "address"])
def test_interleaved_flows_each_merge_on_their_own(other: dict) -> None:
    a, b = flow(4, 3), flow(4, 3, seq=90000, **other)
    out = gro([s for pair in zip(a, b) for s in pair])
    assert shape(out) == [3, 3]
    assert_merged(out[0], a)
    assert_merged(out[1], b)


def test_a_bad_tcp_checksum_goes_up_alone_as_it_came() -> None:
    segs = flow(4, 2) + [segment(4, 1 + 2 * MSS, MSS, 2, chksum=0x1234)] + flow(4, 1, first=3)
    out = gro(segs)
    assert shape(out) == [2, 1, 1]
    assert_merged(out[0], segs[:2])
    assert_alone(out[1], segs[2], valid=False)
    assert_alone(out[2], segs[3])


def test_a_short_segment_ends_the_frame_the_next_starts_another() -> None:
    segs = [segment(4, 1, MSS, 0), segment(4, 1 + MSS, 500, 1), segment(4, 1 + MSS + 500, MSS, 2)]
    out = gro(segs)
    assert shape(out) == [2, 1]
    assert_merged(out[0], segs[:2])
    assert_alone(out[1], segs[2])


def test_a_segment_larger_than_the_first_is_not_merged() -> None:
    segs = [segment(4, 1, 1000, 0), segment(4, 1001, 1200, 1)]
    out = gro(segs)
    assert shape(out) == [1, 1]


@pytest.mark.parametrize("ver", [4, 6])
def test_more_segments_than_one_frame_holds_split_into_frames(ver: int) -> None:
    segs = flow(ver, MAX_SEGS + 5)
    out = gro(segs)
    assert shape(out) == [MAX_SEGS, 5]
    assert_merged(out[0], segs[:MAX_SEGS])
    assert_merged(out[1], segs[MAX_SEGS:])


def test_a_frame_stops_short_of_64_kib_of_ip() -> None:
    jumbo = 8948
    segs = flow(4, 10, size=jumbo)
    out = gro(segs)
    assert shape(out) == [7, 3]  # an eighth would pass 65535 bytes of IP
    assert all(len(d.data) - 14 <= 65535 for d in out)
    assert_merged(out[0], segs[:7])


@pytest.mark.parametrize("change", [{"ttl": 63}, {"tos": 4}], ids=["ttl", "tos"])
def test_ipv4_ttl_or_tos_changes_start_a_new_frame(change: dict) -> None:
    segs = flow(4, 2) + flow(4, 2, first=2, ip=change)
    assert shape(gro(segs)) == [2, 2]


@pytest.mark.parametrize("change", [{"hlim": 63}, {"tc": 4}], ids=["hop-limit", "traffic-class"])
def test_ipv6_hop_limit_or_traffic_class_changes_start_a_new_frame(change: dict) -> None:
    segs = flow(6, 2) + flow(6, 2, first=2, ip=change)
    assert shape(gro(segs)) == [2, 2]


def test_ipv4_ids_that_do_not_count_segments_without_df_are_not_merged() -> None:
    segs = flow(4, 3, ip={"flags": 0, "id": 7})
    assert shape(gro(segs)) == [1, 1, 1]
