"""Write the fuzz harnesses' seed corpora (fuzz/corpus/rx, fuzz/corpus/tx) with scapy.

Run once by hand (python3 fuzz/seed.py); the seeds are committed with what the
fuzzer grew from them. Each seed is a meaningful frame or flow in the input
format of its harness (see the comments at the top of fuzz_rx.c and
fuzz_tx.c): TCP and UDP over IPv4 and IPv6, VLAN and QinQ tags, IPv6
extension header chains, TCP options honest and lying, GSO frames.
"""

from __future__ import annotations

import hashlib
import pathlib
import struct
import sys

from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

HERE = pathlib.Path(__file__).resolve().parent
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
V4 = {"src": "198.18.0.2", "dst": "198.18.0.1"}
V6 = {"src": "2001:2::2", "dst": "2001:2::1"}
TS = [("MSS", 1448), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (1, 2))]

# fuzz_rx.c record opcodes: bit 0 fix checksums, bits 1-3 clones, bit 4 spoil.
FIX = 0x01
FLUSH = 0xff


def clones(n: int) -> int:
    return (n & 7) << 1


def rx_record(frame: bytes, op: int = FIX, spoil: tuple[int, int] | None = None) -> bytes:
    """One fuzz_rx.c record: OP, the frame's length, the frame, the spoiling bytes."""
    rec = bytes([op | (0x10 if spoil else 0)]) + struct.pack(">H", len(frame)) + frame
    if spoil:
        rec += struct.pack(">HB", *spoil)
    return rec


def l2(tags: int = 0) -> Packet:
    eth = Ether(**MAC)
    if tags >= 2:
        return eth / Dot1AD(vlan=100) / Dot1Q(vlan=200)
    if tags == 1:
        return eth / Dot1Q(vlan=100)
    return eth


def tcp4(payload: int = 1448, flags: str = "A", options=None, tags: int = 0, **ip) -> bytes:
    pkt = l2(tags) / IP(**V4, flags="DF", id=7, **ip) / TCP(sport=40000, dport=5201, seq=1000, ack=1,
                                                          flags=flags, options=options or [])
    return bytes(pkt / Raw(b"\xa5" * payload))


def tcp6(payload: int = 1428, flags: str = "A", ext=None, tags: int = 0) -> bytes:
    ip6 = IPv6(**V6)
    if ext is not None:
        ip6 = ip6 / ext
    pkt = l2(tags) / ip6 / TCP(sport=40000, dport=5201, seq=1000, ack=1, flags=flags)
    return bytes(pkt / Raw(b"\x5a" * payload))


def udp4(payload: int = 100, tags: int = 0) -> bytes:
    return bytes(l2(tags) / IP(**V4) / UDP(sport=40000, dport=9) / Raw(b"u" * payload))


def udp6(payload: int = 100) -> bytes:
    return bytes(l2() / IPv6(**V6) / UDP(sport=40000, dport=9) / Raw(b"u" * payload))


def lying_options(kind_len: bytes) -> bytes:
    """A TCP segment whose option area holds KIND_LEN raw, padded to words."""
    opts = kind_len + b"\x00" * (-len(kind_len) % 4)
    tcp = TCP(sport=40000, dport=5201, seq=1000, ack=1, flags="A", dataofs=5 + len(opts) // 4)
    return bytes(l2() / IP(**V4) / tcp / Raw(opts + b"p" * 64))


def rx_seeds() -> dict[str, bytes]:
    """Single frames of each class, and flows the engine can merge."""
    seeds = {
        "tcp4": rx_record(tcp4()),
        "tcp6": rx_record(tcp6()),
        "udp4": rx_record(udp4()),
        "udp6": rx_record(udp6()),
        "udp4-nocsum": rx_record(bytes(l2() / IP(**V4) / UDP(sport=1, dport=9, chksum=0) / Raw(b"z" * 20)), 0),
        "tcp4-vlan": rx_record(tcp4(tags=1)),
        "tcp4-qinq": rx_record(tcp4(tags=2)),
        "tcp4-3tags": rx_record(bytes(Ether(**MAC) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3)
                                      / IP(**V4) / TCP() / Raw(b"x" * 40))),
        "tcp4-ipopts": rx_record(bytes(l2() / IP(**V4, options=[IPOption_RR()]) / TCP(flags="A") / Raw(b"o" * 200))),
        "tcp4-frag": rx_record(bytes(l2() / IP(**V4, flags="MF", frag=0) / TCP() / Raw(b"f" * 64))),
        "tcp4-tsopts": rx_record(tcp4(options=TS, payload=1428)),
        "tcp6-hbh": rx_record(tcp6(ext=IPv6ExtHdrHopByHop())),
        "tcp6-chain": rx_record(tcp6(ext=IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
                                     / IPv6ExtHdrDestOpt())),
        "tcp6-frag": rx_record(tcp6(ext=IPv6ExtHdrFragment(m=1))),
        "opt-len0": rx_record(lying_options(b"\x08\x00")),
        "opt-len1": rx_record(lying_options(b"\x02\x01")),
        "opt-beyond": rx_record(lying_options(b"\x08\x28\x00\x00")),
        "tcp4-badcsum": rx_record(tcp4(), 0),
        "ip4-short-ihl": rx_record(bytes(l2()) + bytes([0x44]) + bytes(tcp4())[15:], 0),
        "ip4-totlen-long": rx_record(tcp4(payload=10)[:-5], 0),
        "truncated-eth": rx_record(tcp4()[:10], 0),
        "truncated-tcp": rx_record(tcp4()[:14 + 20 + 10], 0),
    }
    # Flows: eight full segments of one flow, then the engine's limits.
    seeds["flow4"] = rx_record(tcp4(), FIX | clones(7))
    seeds["flow6"] = rx_record(tcp6(), FIX | clones(7))
    seeds["flow4-ts"] = rx_record(tcp4(options=TS, payload=1436), FIX | clones(5))
    seeds["flow4-psh"] = rx_record(tcp4(), FIX | clones(3)) + rx_record(tcp4(flags="PA"), FIX)
    seeds["flow4-vlan"] = rx_record(tcp4(tags=1), FIX | clones(3))
    # A hostile segment of the flow, its checksum spoiled, among good ones.
    seeds["flow4-spoiled"] = rx_record(tcp4(), FIX | clones(4), spoil=(14 + 20 + 16, 0x55))
    seeds["flow4-payload-spoiled"] = rx_record(tcp4(), FIX | clones(4), spoil=(200, 0x01))
    # Two flows interleaved, and polls cut by gro-flush-timeout.
    other = tcp4()
    other = other[:14 + 20] + struct.pack(">H", 40001) + other[14 + 22:]
    seeds["flows-interleaved"] = b"".join(rx_record(f, FIX | clones(1)) for f in (tcp4(), other, tcp4(), other))
    seeds["flow4-timeout"] = (rx_record(tcp4(), FIX | clones(2)) + bytes([FLUSH, 10])
                              + rx_record(tcp4(), FIX | clones(2)) + bytes([FLUSH, 200]))
    seeds["many-flows"] = b"".join(
        rx_record(tcp4()[:14 + 20] + struct.pack(">H", 41000 + i) + tcp4()[14 + 22:], FIX | clones(1))
        for i in range(10))
    seeds["garbage"] = rx_record(hashlib.sha256(b"softena").digest() * 8, 0)
    return seeds


def vnet(flags: int = 0, gso: int = 0, hdr_len: int = 0, gso_size: int = 0, start: int = 0, off: int = 0) -> bytes:
    """struct virtio_net_hdr_v1, little-endian as the tap hands it over."""
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, start, off, 0)


NEEDS_CSUM = 1
GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_ECN = 1, 3, 4, 0x80
TSO, CSUM, HOSTFIX = 1, 2, 4


def pieces(chunk: int) -> int:
    """fuzz_tx.c control bits: the sink offers pieces of CHUNK (64 << 0..7) bytes."""
    return 16 | (chunk.bit_length() - 7) << 5


def tx_record(vh: bytes, frame: bytes, mtu: int = 1500, ctl: int = TSO | CSUM | HOSTFIX) -> bytes:
    """One fuzz_tx.c input: vnet header, MTU (as the harness folds it), control, frame."""
    return vh + struct.pack(">HB", mtu - 128, ctl) + frame


def tx_seeds() -> dict[str, bytes]:
    seeds = {}
    for name, frame, gso, l4 in (
        ("tso4", tcp4(payload=8 * 1448), GSO_TCPV4, 34),
        ("tso4-ts", tcp4(payload=6000, options=TS), GSO_TCPV4, 34),
        ("tso4-vlan", tcp4(payload=5000, tags=1), GSO_TCPV4, 38),
        ("tso4-qinq-ecn", tcp4(payload=5000, tags=2, flags="PA"), GSO_TCPV4 | GSO_ECN, 42),
        ("tso6", tcp6(payload=8 * 1428), GSO_TCPV6, 54),
        ("tso6-hbh", tcp6(payload=4000, ext=IPv6ExtHdrHopByHop()), GSO_TCPV6, 62),
        ("tso4-big", tcp4(payload=40000), GSO_TCPV4, 34),
    ):
        seeds[name] = tx_record(vnet(NEEDS_CSUM, gso, l4 + 20, 1448, l4, 16), frame)
    seeds["tso4-mtu-small"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), tcp4(payload=3000), mtu=128)
    seeds["tso4-mss-zero"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 54, 0, 34, 16), tcp4(payload=3000))
    seeds["gso-udp"] = tx_record(vnet(NEEDS_CSUM, GSO_UDP, 42, 1400, 34, 6), udp4(payload=3000))
    seeds["csum-tcp4"] = tx_record(vnet(NEEDS_CSUM, 0, 0, 0, 34, 16), tcp4(payload=500))
    seeds["csum-udp4"] = tx_record(vnet(NEEDS_CSUM, 0, 0, 0, 34, 6), udp4(payload=500))
    seeds["csum-udp6"] = tx_record(vnet(NEEDS_CSUM, 0, 0, 0, 54, 6), udp6(payload=500))
    seeds["csum-vlan"] = tx_record(vnet(NEEDS_CSUM, 0, 0, 0, 38, 6), udp4(payload=500, tags=1))
    seeds["csum-start-beyond"] = tx_record(vnet(NEEDS_CSUM, 0, 0, 0, 4000, 6), udp4(payload=100))
    seeds["plain"] = tx_record(vnet(), tcp4(payload=1000), ctl=0)
    seeds["plain-oversized"] = tx_record(vnet(), tcp4(payload=3000), ctl=0)
    seeds["tso-off"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), tcp4(payload=3000), ctl=CSUM)
    seeds["sink-dry"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), tcp4(payload=8000),
                                  ctl=TSO | CSUM | HOSTFIX | 8 | (3 << 4))
    # A multi-buffer wire: segments written straight into its frames.
    seeds["tso4-jumbo-pieces"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 54, 8948, 34, 16), tcp4(payload=40000),
                                           mtu=9000, ctl=TSO | CSUM | HOSTFIX | pieces(4096))
    seeds["tso6-jumbo-pieces"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV6, 74, 8928, 54, 16), tcp6(payload=30000),
                                           mtu=9000, ctl=TSO | CSUM | HOSTFIX | pieces(1024))
    seeds["tso4-vlan-pieces-small"] = tx_record(vnet(NEEDS_CSUM, GSO_TCPV4, 58, 1448, 38, 16),
                                                tcp4(payload=5000, tags=1, options=TS),
                                                ctl=TSO | CSUM | HOSTFIX | pieces(128))
    return seeds


def write(kind: str, seeds: dict[str, bytes]) -> None:
    out = HERE / "corpus" / kind
    out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (out / f"seed-{name}").write_bytes(data)
    print(f"{out}: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    write("rx", rx_seeds())
    write("tx", tx_seeds())
