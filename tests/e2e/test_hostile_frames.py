"""Hostile frames from the wire: each class injected from the peer namespace
with scapy, then on the host: what came up and with which checksum verdict,
which counter moved, and that the device still passes traffic.

What a real NIC does, and what softena must: a frame it cannot parse goes up
without a checksum verdict (CHECKSUM_NONE, counted rx-csum-none) and the
kernel drops it; a frame whose checksum it checked and found bad goes up
counted rx-csum-bad, also without a verdict, and the kernel drops it; only a
frame whose checksums verify goes up trusted (CHECKSUM_UNNECESSARY on a NIC;
through tun, CHECKSUM_PARTIAL, below). Frames longer
than the wire's MTU never reach the device: the veth drops them, as a MAC
drops oversized frames. Per class:

  class              sent as                                      outcome
  trunc-eth          13 bytes (the kernel pads to 14)            csum-none
  trunc-ip4/ip6      IP header cut short                          csum-none
  trunc-tcp/udp      IP length ends inside the L4 header          csum-bad
  ihl-short          IHL 4                                        csum-none
  ihl-beyond         IHL 15, the packet ends first                csum-none
  totlen-long        total length past the frame                  csum-none
  totlen-short       total length under the IP header             csum-none
  bad-ip4-csum       IPv4 header checksum wrong                   csum-bad
  bad-l4-csum        TCP/UDP checksum wrong, v4 and v6            csum-bad
  udp-zero-csum      UDP over IPv4 without a checksum             csum-none
  oversized          1600 bytes on a 1500 MTU wire                dropped on the wire
  qinq               802.1Q in 802.1ad, good checksums            csum-unnecessary
  qinq-bad           the same, TCP checksum wrong                 csum-bad
  triple-tag         three tags: the device looks no deeper       csum-none
  v6-ext-chain       hop-by-hop, routing, destination options     csum-unnecessary
  v6-long-chain      eight destination options headers            csum-unnecessary
  v6-frag            a fragment header                            csum-none
  v6-ext-beyond      an extension header past the payload         csum-bad
  tcp-opt-len0/1     an option whose length is 0 or 1            csum-unnecessary (the stack
  tcp-opt-beyond     an option longer than the header               parses options, not the NIC)
  tcp-doff-beyond    data offset past the segment                 csum-bad
  tcp-doff-short     data offset 4 (under the header)             csum-bad
  garbage            random bytes: local ethertype, IPv4/v6       csum-none
                     ethertypes with a wrong version

Frames go one at a time and the device's verdict counters say what it made
of each. The host sees the verdict too: tun takes no DATA_VALID from its
writer, so a frame whose checksums verified goes up CHECKSUM_PARTIAL, which
the host trusts and does not check again (a packet socket on the host sees
TP_STATUS_CSUMNOTREADY), with the pseudo-header's sum in its checksum field;
every other frame goes up unchanged and unmarked, and the host checks it
itself. A merged frame goes up CHECKSUM_PARTIAL as well. So a good TCP
flow's segments go in one burst interleaved with hostile ones of the same
5-tuple (TCP or IPv4 header checksum spoiled): the frames the host trusts
and those whose checksums verify must carry exactly the good bytes, all of
them, and the hostile ones come up alone, counted bad, for the host to drop.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

from conftest import run, wait_for
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from softena.control import ctlsock

UNNECESSARY, NONE, BAD, WIRE_DROP = "csum-unnecessary", "csum-none", "csum-bad", "wire-drop"
# struct tpacket_auxdata's tp_status bits (linux/if_packet.h)
TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID = 1 << 3, 1 << 7
SOL_PACKET, PACKET_AUXDATA = 263, 8
ETH_P_ALL = 0x0003
HOSTILE_MAC = "02:66:00:00:{:02x}:{:02x}"  # class, index: how a frame is known again on the host
FLOW_MAC = "02:66:00:00:fe:00"
FLOW_SPORT, FLOW_DPORT, FLOW_SEQ, SEG = 40100, 40200, 5000, 1200
PEER_MTU = 1700  # room on the peer to send the oversized frames at all


@dataclass
class Hostile:
    name: str
    outcome: str
    frame: bytes
    src: str


# ---- an independent checksum check: scapy recomputes a checksum only by
# rebuilding the packet, which would rewrite the lying headers under test ----

def _sum16(data: bytes, start: int = 0) -> int:
    if len(data) % 2:
        data += b"\0"
    s = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def _l4_span(frame: bytes) -> tuple[int, int, int, bytes] | None:
    """(protocol, L4 offset, L4 end, pseudo-header) of a TCP/UDP frame, None if it has no L4 header to check."""
    off, etype = 14, struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
    for _ in range(2):
        if etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
    if etype == 0x0800 and len(frame) >= off + 20:
        ihl, tot = (frame[off] & 15) * 4, struct.unpack_from("!H", frame, off + 2)[0]
        if ihl < 20 or tot < ihl or off + tot > len(frame) or struct.unpack_from("!H", frame, off + 6)[0] & 0x3FFF:
            return None
        proto, l4, end, pseudo = frame[off + 9], off + ihl, off + tot, frame[off + 12:off + 20]
    elif etype == 0x86DD and len(frame) >= off + 40:
        l4, end, proto = off + 40, off + 40 + struct.unpack_from("!H", frame, off + 4)[0], frame[off + 6]
        pseudo = frame[off + 8:off + 40]
        while proto in (0, 43, 60) and l4 + 8 <= end:
            proto, l4 = frame[l4], l4 + (frame[l4 + 1] + 1) * 8
        if end > len(frame) or l4 > end or proto == 44:
            return None
    else:
        return None
    if proto not in (6, 17) or end - l4 < (20 if proto == 6 else 8):
        return None
    return proto, l4, end, pseudo + struct.pack("!HI", proto, end - l4)


def l4_checksum_ok(frame: bytes) -> bool | None:
    """True/False: the TCP/UDP checksum verifies or not; None: no L4 header to check.
    A zero UDP field over IPv4 means no checksum, which nothing can fail (RFC 768):
    the host's GRO, and its UDP without GRO, take it as CHECKSUM_UNNECESSARY."""
    span = _l4_span(frame)
    if span is None:
        return None
    proto, l4, end, pseudo = span
    ipv4 = len(pseudo) == 14  # two addresses of 4 bytes, then protocol and length
    if proto == 17 and ipv4 and frame[l4 + 6:l4 + 8] == b"\0\0":
        return True
    return _sum16(frame[l4:end], _sum16(pseudo)) == 0xFFFF


def completed(frame: bytes) -> bytes:
    """A CHECKSUM_PARTIAL frame with its TCP/UDP checksum completed, as a host that
    forwards it would: the sum from the L4 header on, the field holding the seed."""
    span = _l4_span(frame)
    assert span is not None, f"CHECKSUM_PARTIAL on a frame with no L4 checksum: {frame[:64].hex()}"
    proto, l4, end, _pseudo = span
    field = l4 + (16 if proto == 6 else 6)
    csum = ~_sum16(frame[l4:end]) & 0xFFFF or 0xFFFF  # skb_checksum_help(): 0 goes out as 0xffff
    return frame[:field] + struct.pack("!H", csum) + frame[field + 2:]


# ---- the hostile frames ----

def _tcp4(src: str, dst: str, ips: tuple[str, str], **tcp) -> Ether:
    return Ether(src=src, dst=dst) / IP(src=ips[0], dst=ips[1]) / TCP(sport=40001, dport=9, flags="A", **tcp)


def hostile_frames(host_mac: str, peer: tuple[str, str], peer6: tuple[str, str]) -> list[Hostile]:
    """Every class of the module's table, each frame from its own source MAC."""
    rng = random.Random(12)
    frames: list[Hostile] = []

    def add(name: str, outcome: str, build) -> None:
        src = HOSTILE_MAC.format(len({h.name for h in frames} | {name}), len([h for h in frames if h.name == name]))
        frames.append(Hostile(name, outcome, bytes(build(src)), src))

    good = lambda src: _tcp4(src, host_mac, peer) / Raw(b"h" * 64)  # noqa: E731
    add("trunc-eth", NONE, lambda s: bytes(good(s))[:13])
    add("trunc-ip4", NONE, lambda s: bytes(good(s))[:14 + 10])
    add("trunc-ip6", NONE, lambda s: bytes(Ether(src=s, dst=host_mac) / IPv6(src=peer6[0], dst=peer6[1]))[:14 + 20])
    add("trunc-tcp", BAD, lambda s: bytes(Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], proto=6)
                                          / Raw(b"\x9c\x41\x00\x09\x00\x00\x00\x01\x00\x00")))
    add("trunc-udp", BAD, lambda s: bytes(Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], proto=17)
                                          / Raw(b"\x9c\x41\x00\x09")))
    add("ihl-short", NONE, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], ihl=4)
        / TCP(flags="A") / Raw(b"h" * 64))
    add("ihl-beyond", NONE, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], ihl=15, len=40)
        / TCP(flags="A"))
    add("totlen-long", NONE, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], len=400)
        / TCP(flags="A") / Raw(b"h" * 64))
    add("totlen-short", NONE, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], len=10)
        / TCP(flags="A") / Raw(b"h" * 64))
    add("bad-ip4-csum", BAD, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1], chksum=0x1234)
        / TCP(flags="A") / Raw(b"h" * 64))
    add("bad-l4-csum", BAD, lambda s: _tcp4(s, host_mac, peer, chksum=0xDEAD) / Raw(b"h" * 64))
    add("bad-l4-csum", BAD, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1])
        / UDP(sport=40001, dport=9, chksum=0xBEEF) / Raw(b"u" * 64))
    add("bad-l4-csum", BAD, lambda s: Ether(src=s, dst=host_mac) / IPv6(src=peer6[0], dst=peer6[1])
        / TCP(sport=40001, dport=9, flags="A", chksum=0xDEAD) / Raw(b"h" * 64))
    add("bad-l4-csum", BAD, lambda s: Ether(src=s, dst=host_mac) / IPv6(src=peer6[0], dst=peer6[1])
        / UDP(sport=40001, dport=9, chksum=0xBEEF) / Raw(b"u" * 64))
    add("udp-zero-csum", NONE, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1])
        / UDP(sport=40001, dport=9, chksum=0) / Raw(b"u" * 64))
    add("oversized", WIRE_DROP, lambda s: _tcp4(s, host_mac, peer) / Raw(b"o" * (1600 - 54)))
    add("qinq", UNNECESSARY, lambda s: Ether(src=s, dst=host_mac) / Dot1AD(vlan=10) / Dot1Q(vlan=20)
        / IP(src=peer[0], dst=peer[1]) / TCP(sport=40001, dport=9, flags="A") / Raw(b"q" * 64))
    add("qinq-bad", BAD, lambda s: Ether(src=s, dst=host_mac) / Dot1AD(vlan=10) / Dot1Q(vlan=20)
        / IP(src=peer[0], dst=peer[1]) / TCP(sport=40001, dport=9, flags="A", chksum=0xDEAD) / Raw(b"q" * 64))
    add("triple-tag", NONE, lambda s: Ether(src=s, dst=host_mac) / Dot1AD(vlan=10) / Dot1Q(vlan=20)
        / Dot1Q(vlan=30) / IP(src=peer[0], dst=peer[1]) / TCP(flags="A") / Raw(b"t" * 64))
    v6 = lambda s, ext, **tcp: (Ether(src=s, dst=host_mac) / IPv6(src=peer6[0], dst=peer6[1]) / ext  # noqa: E731
                                / TCP(sport=40001, dport=9, flags="A", **tcp) / Raw(b"6" * 64))
    add("v6-ext-chain", UNNECESSARY, lambda s: v6(s, IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
                                                 / IPv6ExtHdrDestOpt()))
    add("v6-long-chain", UNNECESSARY, lambda s: v6(s, IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()
                                                  / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()
                                                  / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()))
    add("v6-frag", NONE, lambda s: v6(s, IPv6ExtHdrFragment(m=1)))
    # A destination options header claiming 255 * 8 more bytes than there are.
    add("v6-ext-beyond", BAD, lambda s: Ether(src=s, dst=host_mac) / IPv6(src=peer6[0], dst=peer6[1], nh=60)
        / Raw(b"\x06\xff" + b"\0" * 6 + bytes(20) + b"6" * 32))
    for name, opts in (("tcp-opt-len0", b"\x08\x00\x00\x00"), ("tcp-opt-len1", b"\x02\x01\x00\x00"),
                       ("tcp-opt-beyond", b"\x08\x28\x00\x00")):
        add(name, UNNECESSARY, lambda s, o=opts: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1])
            / TCP(sport=40001, dport=9, flags="A", dataofs=6) / Raw(o + b"p" * 64))
    add("tcp-doff-beyond", BAD, lambda s: Ether(src=s, dst=host_mac) / IP(src=peer[0], dst=peer[1])
        / TCP(sport=40001, dport=9, flags="A", dataofs=15))
    add("tcp-doff-short", BAD, lambda s: _tcp4(s, host_mac, peer, dataofs=4) / Raw(b"d" * 64))
    for etype, version in ((0x88B5, None), (0x0800, 0xF0), (0x86DD, 0x00)):
        for _ in range(3):
            def garbage(s, etype=etype, version=version):
                body = bytearray(rng.randbytes(rng.randrange(20, 600)))
                if version is not None:
                    body[0] = version | (body[0] & 15)
                return Ether(src=s, dst=host_mac, type=etype) / Raw(bytes(body))
            add("garbage", NONE, garbage)
    return frames


def flow_frames(host_mac: str, peer: tuple[str, str]) -> tuple[bytes, list[bytes], int]:
    """A good TCP flow's full segments, each followed by a hostile one of its
    5-tuple at the next sequence number; returns the good bytes, all frames in
    order and how many of them are hostile."""
    stream = bytes((i * 7 + 3) % 251 for i in range(6 * SEG))
    frames, hostile = [], 0
    for i in range(6):
        seq = FLOW_SEQ + i * SEG
        ip = IP(src=peer[0], dst=peer[1], flags="DF", id=100 + i)
        tcp = TCP(sport=FLOW_SPORT, dport=FLOW_DPORT, flags="A", seq=seq, ack=1)
        frames.append(bytes(Ether(src=FLOW_MAC, dst=host_mac) / ip / tcp / Raw(stream[i * SEG:(i + 1) * SEG])))
        if i == 5:
            break
        # Same flow, next sequence number, other bytes: the TCP checksum or
        # the IPv4 header's spoiled, so nothing may let these bytes through.
        spoiled = IP(src=peer[0], dst=peer[1], flags="DF", id=100 + i + 1, chksum=0x1111 if i % 2 else None)
        bad_tcp = TCP(sport=FLOW_SPORT, dport=FLOW_DPORT, flags="A", seq=seq + SEG, ack=1,
                      chksum=None if i % 2 else 0x2222)
        frames.append(bytes(Ether(src=FLOW_MAC, dst=host_mac) / spoiled / bad_tcp / Raw(b"\xee" * SEG)))
        hostile += 1
    return stream, frames, hostile


# ---- the host side: a packet socket that also reports each frame's verdict ----

def capture(sock: socket.socket, quiet: float = 1.0, limit: float = 10.0) -> list[tuple[bytes, int]]:
    """(frame, tp_status) of everything the host's interface received, until
    QUIET seconds pass without a frame (at most LIMIT)."""
    got, end = [], time.monotonic() + limit
    sock.settimeout(quiet)
    while time.monotonic() < end:
        try:
            data, anc, _flags, _addr = sock.recvmsg(70000, socket.CMSG_SPACE(32))
        except TimeoutError:
            break
        status = 0
        for level, kind, value in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status = struct.unpack_from("I", value)[0]
        got.append((data, status))
    return got


class PeerSender:
    """A scapy sender inside the peer namespace, kept running: each line it
    reads is a batch of frames (hex) it sends in order from eth0, one by one,
    so a frame the wire refuses (the veth drops an oversized one, ENOBUFS)
    is told apart and the rest still go. It answers each batch with the
    indexes refused, or "-"."""

    SCRIPT = """
import sys
from scapy.all import conf
sock = conf.L2socket(iface="eth0")
for line in sys.stdin:
    refused = []
    for i, frame in enumerate(line.split()):
        try:
            sock.send(bytes.fromhex(frame))
        except OSError:
            refused.append(str(i))
    print(" ".join(refused) or "-", flush=True)
"""

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", self.SCRIPT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, frames: list[bytes]) -> set[int]:
        """Send FRAMES; the indexes of those the wire refused."""
        self.proc.stdin.write(" ".join(f.hex() for f in frames) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        assert answer, "the peer's sender died"
        return set() if answer == ["-"] else {int(i) for i in answer}

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def mac_of(ifname: str) -> str:
    return json.loads(run(["ip", "-j", "link", "show", ifname], check=True).stdout)[0]["address"]


def src_mac(frame: bytes) -> str:
    return ":".join(f"{b:02x}" for b in frame[6:12])


def totals(dev) -> dict[str, int]:
    """The device's counters, read over its control socket (quicker than the CLI, per frame)."""
    return ctlsock.request(dev.name, "stats")["device"]


VERDICTS = ("rx-csum-unnecessary", "rx-csum-none", "rx-csum-bad")


@contextlib.contextmanager
def lab_ready(dev):
    """The peer set up to send hostile frames, a sender in its namespace and a
    packet socket on the host's interface that reports each frame's verdict."""
    # Bad checksums must leave the peer as scapy wrote them; oversized frames
    # must leave it at all.
    run(["ip", "netns", "exec", dev.netns, "ethtool", "-K", "eth0", "tx", "off"], check=True)
    run(["ip", "-n", dev.netns, "link", "set", "eth0", "mtu", str(PEER_MTU)], check=True)
    sender = PeerSender(dev.netns)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((dev.name, 0))
        yield sender, sock
    finally:
        sock.close()
        sender.close()


def check_no_bad_checksum_trusted(got: list[tuple[bytes, int]]) -> None:
    """Every frame the host took as checksum-verified is one a forwarding host
    would send on with a good checksum: a CHECKSUM_PARTIAL one (how the device
    hands up what it verified, merged or alone) holds the pseudo-header's sum
    in its field, so that completing it verifies."""
    for data, status in got:
        if status & TP_STATUS_CSUM_VALID:
            assert l4_checksum_ok(data) is not False, f"CHECKSUM_UNNECESSARY on a bad checksum: {data[:64].hex()}"
        if status & TP_STATUS_CSUMNOTREADY:
            assert l4_checksum_ok(completed(data)), f"CHECKSUM_PARTIAL with a wrong seed: {data[:64].hex()}"


def test_each_hostile_frame_gets_its_class_verdict_and_the_device_lives_on(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    host_mac = mac_of(dev.name)
    hostile = hostile_frames(host_mac, (dev.peer_v4, dev.host_v4), (dev.peer_v6, dev.status["lab"]["host"][1]))
    wrong = []
    with lab_ready(dev) as (sender, sock):
        for h in hostile:
            # One at a time: the verdict counters say what the device made of it.
            before = totals(dev)
            refused = sender.send([h.frame])
            if h.outcome == WIRE_DROP:
                # That it never reached the host is checked below by its own
                # source MAC: the device's counters would also count the
                # peer's own ND and MLD frames of the moment.
                if not refused:
                    wrong.append((h.name, h.outcome, "the wire took it"))
                continue
            assert not refused, f"{h.name}: the wire refused it"
            wait_for(lambda: sum(totals(dev)[k] - before[k] for k in VERDICTS) >= 1, within=3,
                     what=f"{h.name}'s verdict")
            after = totals(dev)
            delta = {k.removeprefix("rx-"): after[k] - before[k] for k in VERDICTS}
            ok = {
                BAD: delta[BAD] == 1 and delta[UNNECESSARY] == 0,
                NONE: delta[NONE] >= 1 and delta[BAD] == 0 and delta[UNNECESSARY] == 0,
                UNNECESSARY: delta[UNNECESSARY] >= 1 and delta[BAD] == 0,
            }[h.outcome]
            if not ok:
                wrong.append((h.name, h.outcome, delta))
        got = capture(sock)

    assert not wrong, f"frames with the wrong verdict: {wrong}"
    check_no_bad_checksum_trusted(got)
    # Each frame came up once, and only those whose checksums verified came
    # up trusted (CHECKSUM_PARTIAL: tun takes no DATA_VALID from its writer).
    # A trusted one carries the pseudo-header's sum in its checksum field;
    # completed, as a host forwarding it would, it is the frame the wire
    # brought. Every other one comes up unchanged. (The host's stack takes an
    # outer VLAN tag off into the packet's metadata, so tagged ones are not
    # compared byte for byte.)
    by_src: dict[str, list[tuple[bytes, int]]] = {}
    for data, status in got:
        by_src.setdefault(src_mac(data), []).append((data, status))
    for h in hostile:
        seen = by_src.get(h.src, [])
        assert len(seen) == (0 if h.outcome == WIRE_DROP else 1), f"{h.name}: up {len(seen)} times"
        tagged = h.frame[12:14] in (b"\x81\x00", b"\x88\xa8")
        for data, status in seen:
            trusted = bool(status & TP_STATUS_CSUMNOTREADY)
            assert trusted == (h.outcome == UNNECESSARY), f"{h.name}: trusted {trusted}, verdict {h.outcome}"
            if trusted:
                assert data != h.frame, f"{h.name}: trusted, its field still the full checksum"
                data = completed(data)
            assert tagged or data[:len(h.frame)] == h.frame, f"{h.name} changed on the way up"

    # The device lives and still passes traffic.
    os.kill(dev.pid, 0)
    wait_for(lambda: run(["ping", "-c", "1", "-W", "1", dev.peer_v4]).returncode == 0, within=5, what="ping")


def test_hostile_segments_never_ride_in_a_good_flow(softena_up) -> None:
    """A good flow's segments and hostile ones of its 5-tuple in one burst: the
    merged frames the host trusts (CHECKSUM_PARTIAL, no check of its own) and
    the frames whose checksums verify carry only the good bytes, all of them."""
    dev = softena_up("sft0", "--queues", "1")
    stream, flow, flow_hostile = flow_frames(mac_of(dev.name), (dev.peer_v4, dev.host_v4))
    with lab_ready(dev) as (sender, sock):
        before = totals(dev)
        assert not sender.send(flow)
        got = capture(sock)
    after = totals(dev)
    check_no_bad_checksum_trusted(got)

    valid: dict[int, bytes] = {}
    hostile_up = 0
    for data, status in got:
        if src_mac(data) != FLOW_MAC:
            continue
        pkt = Ether(data)
        payload = bytes(pkt[TCP].payload)[:pkt[IP].len - pkt[IP].ihl * 4 - pkt[TCP].dataofs * 4]
        ip_ok = _sum16(data[14:14 + pkt[IP].ihl * 4]) == 0xFFFF
        if status & TP_STATUS_CSUMNOTREADY or (ip_ok and l4_checksum_ok(data)):
            valid[pkt[TCP].seq - FLOW_SEQ] = payload
        else:
            hostile_up += 1
            assert payload == b"\xee" * len(payload), "a good segment came up with a bad checksum"
    rebuilt, at = b"", 0
    for off in sorted(valid):
        assert off == at, f"the good flow came up with a gap or overlap at {at}: {sorted(valid)}"
        rebuilt += valid[off]
        at += len(valid[off])
    assert rebuilt == stream, "the good flow's bytes came up changed"
    # The hostile ones go up as they are, for the host to drop: each counted bad.
    assert hostile_up == flow_hostile
    assert after["rx-csum-bad"] - before["rx-csum-bad"] == flow_hostile
