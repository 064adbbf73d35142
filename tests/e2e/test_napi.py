"""napi-set changes how each queue pair's worker polls: defer-hard-irqs, gro-flush-timeout, irq-suspend-timeout.

Each knob is shown by its effect under the same load in the same run, with
the knob and without, through the counters a worker keeps (napi-polls,
napi-sleeps) and what hardware GRO hands up (rx-hw-gro-wire-packets per
rx-hw-gro-packets).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import socket
import time

from conftest import run
from iperf import iperf3

from softena.control import ctlsock

KEYS = ("napi-polls", "napi-sleeps", "napi-wakeups", "rx-packets", "tx-packets", "rx-hw-gro-packets",
        "rx-hw-gro-wire-packets")


def napis(dev) -> list[dict]:
    """The device's NAPI instances, by queue."""
    reply = ctlsock.request(dev.name, "netdev", op="napi-get", attrs={}, dump=True)["reply"]
    return sorted(reply, key=lambda n: n["id"])


def napi_set(dev, **attrs) -> list[dict]:
    """napi-set on every NAPI of DEV; the replies."""
    return [ctlsock.request(dev.name, "netdev", op="napi-set", attrs={"id": n["id"], **attrs}, dump=False)
            for n in napis(dev)]


def counters(dev) -> dict[str, int]:
    """The live queues' counters, summed."""
    queues = dev.stats()["queues"]
    return {k: sum(q[k] for q in queues) for k in KEYS}


def measured(dev, load) -> dict[str, float]:
    """Run LOAD; the counters it moved, and what LOAD returned under "result"."""
    before = counters(dev)
    result = load()
    after = counters(dev)
    d = {k: after[k] - before[k] for k in KEYS}
    packets = max(1, d["rx-packets"] + d["tx-packets"])
    return {"sleeps/pkt": d["napi-sleeps"] / packets, "polls/pkt": d["napi-polls"] / packets,
            "segs/frame": d["rx-hw-gro-wire-packets"] / max(1, d["rx-hw-gro-packets"]), "result": result, **d}


def ping_from_peer(dev, count: int = 150, interval: str = "0.01") -> float:
    """Ping the host from the peer namespace at a light, paced rate; the average round trip in ms."""
    proc = run(["ip", "netns", "exec", dev.netns, "ping", "-q", "-c", str(count), "-i", interval, "-W", "1",
                dev.host_v4], timeout=count * 0.1 + 30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return float(re.search(r"= [\d.]+/([\d.]+)/", proc.stdout).group(1))


def test_defer_hard_irqs_keeps_polling_after_work_so_a_paced_ping_costs_fewer_sleeps(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    ping_from_peer(dev, count=20)  # neighbours resolved, caches warm
    without, with_ = [], []
    for _ in range(2):
        napi_set(dev, **{"defer-hard-irqs": 0, "gro-flush-timeout": 0})
        without.append(measured(dev, lambda: ping_from_peer(dev)))
        napi_set(dev, **{"defer-hard-irqs": 100, "gro-flush-timeout": 200000})
        with_.append(measured(dev, lambda: ping_from_peer(dev)))
    for off, on in zip(without, with_):
        # Without: the request and the host's reply each find the worker asleep.
        # With: the reply comes within the deferral and is polled up without a wake-up.
        assert on["sleeps/pkt"] < 0.75 * off["sleeps/pkt"], (off, on)
        assert on["polls/pkt"] > 2 * off["polls/pkt"], (off, on)
    rtt_off = sum(m["result"] for m in without) / len(without)
    rtt_on = sum(m["result"] for m in with_) / len(with_)
    # The interrupt stays masked through the deferral, as in the kernel: a frame
    # waits for the next deferred poll, at most one gro-flush-timeout (0.2 ms).
    assert rtt_on < 1.5 * rtt_off + 0.2 + 0.1, (rtt_off, rtt_on)


def test_with_busy_poll_the_deferral_polls_through_and_a_paced_ping_finds_the_worker_awake(softena_up) -> None:
    """prefer-busy-poll's application is the worker itself: it polls through the
    deferral rather than waiting for the timer, and sleeps much less."""
    dev = softena_up("sft0", "--queues", "1", "--busy-poll", "20")
    ping_from_peer(dev, count=20)
    napi_set(dev, **{"defer-hard-irqs": 0, "gro-flush-timeout": 0})
    off = measured(dev, lambda: ping_from_peer(dev))
    napi_set(dev, **{"defer-hard-irqs": 100, "gro-flush-timeout": 200000})  # 20 ms after the last work
    on = measured(dev, lambda: ping_from_peer(dev))
    # Pings 10 ms apart all fall within the deferral: next to no sleeps.
    assert on["sleeps/pkt"] < 0.2 * off["sleeps/pkt"], (off, on)
    assert on["result"] < 1.5 * off["result"] + 0.05, (off, on)


# ---- a lone segment that GRO may hold: it goes up by the timeout, traffic or not --------

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def packet_socket_in(netns: str, ifname: str) -> socket.socket:
    """An AF_PACKET socket on IFNAME inside NETNS (the socket keeps its namespace)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    other = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(other, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind((ifname, 0))
        finally:
            if _libc.setns(own, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(other)
    return s


@contextlib.contextmanager
def peer_to_host(dev):
    """The peer's MAC, a packet socket on the peer's eth0 to send from, and one on
    the host's interface to catch IPv4 frames with; both closed at the end."""
    peer_mac = json.loads(run(["ip", "-n", dev.netns, "-j", "link", "show", "eth0"], check=True).stdout)[0]["address"]
    sender = packet_socket_in(dev.netns, "eth0")
    receiver = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    try:
        receiver.bind((dev.name, 0))
        yield peer_mac, sender, receiver
    finally:
        sender.close()
        receiver.close()


def lone_segment(dev, src_mac: str, seq: int) -> bytes:
    """A full-sized TCP data segment, ACK only, no PSH, good checksums: what GRO holds for more."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    dst_mac = json.loads(run(["ip", "-j", "link", "show", dev.name], check=True).stdout)[0]["address"]
    frame = (Ether(src=src_mac, dst=dst_mac) / IP(src=dev.peer_v4, dst=dev.host_v4, flags="DF") /
             TCP(sport=40001, dport=40002, flags="A", seq=seq, ack=1, window=512) / (b"x" * 1400))
    return bytes(frame)


def one_way_ms(dev, sender: socket.socket, receiver: socket.socket, frame: bytes) -> float:
    """Send FRAME from the peer; ms until the host's interface sees it."""
    receiver.settimeout(2.0)
    start = time.monotonic()
    sender.send(frame)
    deadline = start + 2.0
    while time.monotonic() < deadline:
        data = receiver.recv(65536)
        if len(data) >= len(frame) and data[34:38] == frame[34:38] and data[38:42] == frame[38:42]:
            return (time.monotonic() - start) * 1000
    raise AssertionError("the segment never reached the host")


def test_a_held_segment_goes_up_when_gro_flush_timeout_runs_out_without_more_traffic(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    with peer_to_host(dev) as (peer_mac, sender, receiver):
        def trip(timeout_ns: int, seq: int) -> float:
            napi_set(dev, **{"gro-flush-timeout": timeout_ns})
            time.sleep(0.05)
            return one_way_ms(dev, sender, receiver, lone_segment(dev, peer_mac, seq))

        held = [trip(20_000_000, 1000 + i * 5000) for i in range(3)]
        prompt = [trip(0, 100000 + i * 5000) for i in range(3)]
        brief = [trip(1_000_000, 200000 + i * 5000) for i in range(3)]
    # Held for more of its flow, none comes: it goes up when the 20 ms are out, not never.
    assert all(15 <= t < 30 for t in held), held
    assert all(t < 5 for t in prompt), prompt
    assert all(t < 11 for t in brief), brief


def test_irq_suspend_timeout_keeps_the_worker_polling_while_polls_find_work(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    without, with_ = [], []
    for _ in range(2):
        napi_set(dev, **{"irq-suspend-timeout": 0})
        without.append(measured(dev, lambda: iperf3(dev.netns, dev.peer_v4, "-R", duration=2)))
        napi_set(dev, **{"irq-suspend-timeout": 1000000})
        with_.append(measured(dev, lambda: iperf3(dev.netns, dev.peer_v4, "-R", duration=2)))
    # While polls find work the worker polls again instead of sleeping: more
    # polls between two sleeps. (Fewer sleeps per packet follows when the
    # machine has a core to spare, which this 2-core one does not always.)
    per_sleep_off = sum(m["napi-polls"] for m in without) / sum(m["napi-sleeps"] for m in without)
    per_sleep_on = sum(m["napi-polls"] for m in with_) / sum(m["napi-sleeps"] for m in with_)
    assert per_sleep_on > 1.3 * per_sleep_off, (without, with_)


def settings(dev) -> list[tuple[int, int, int]]:
    return [(n["defer-hard-irqs"], n["gro-flush-timeout"], n["irq-suspend-timeout"]) for n in napis(dev)]


def test_napi_settings_stay_with_their_queue_across_channel_changes_and_reset(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    first, second = napis(dev)
    for nid, values in ((first["id"], (100, 200000, 0)), (second["id"], (7, 0, 3000000))):
        reply = ctlsock.request(dev.name, "netdev", op="napi-set", dump=False, attrs={
            "id": nid, "defer-hard-irqs": values[0], "gro-flush-timeout": values[1],
            "irq-suspend-timeout": values[2]})
        assert "error" not in reply, reply
    want = [(100, 200000, 0), (7, 0, 3000000)]
    assert settings(dev) == want
    run(["softena", "ethtool", "-L", dev.name, "combined", "1"], check=True)
    assert settings(dev) == want[:1]
    run(["softena", "ethtool", "-L", dev.name, "combined", "2"], check=True)
    assert settings(dev) == want
    old_pids = {n["pid"] for n in napis(dev)}
    run(["softena", "reset", dev.name], check=True)

    def rebuilt() -> bool:
        ns = napis(dev)
        return len(ns) == 2 and not old_pids & {n["pid"] for n in ns}

    deadline = time.monotonic() + 10
    while not rebuilt() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rebuilt()
    assert settings(dev) == want
    # The rebuilt workers poll by them, not only napi-get: both defer, so a
    # paced ping costs several polls a packet (without, one or two).
    m = measured(dev, lambda: ping_from_peer(dev, count=50))
    assert m["polls/pkt"] > 2.5, m


def test_out_of_range_values_are_refused_and_change_nothing(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    nid = napis(dev)[0]["id"]
    ok = ctlsock.request(dev.name, "netdev", op="napi-set", dump=False,
                         attrs={"id": nid, "defer-hard-irqs": 5, "gro-flush-timeout": 1000})
    assert "error" not in ok, ok
    before = settings(dev)
    # The last: beyond what the attribute (a 64-bit uint) can carry.
    for bad in ({"defer-hard-irqs": -1}, {"gro-flush-timeout": -5}, {"irq-suspend-timeout": -1},
                {"defer-hard-irqs": 2**31}, {"defer-hard-irqs": 9, "gro-flush-timeout": -1},
                {"defer-hard-irqs": 9, "gro-flush-timeout": 2**64}):
        reply = ctlsock.request(dev.name, "netdev", op="napi-set", dump=False, attrs={"id": nid, **bad})
        assert reply.get("error", {}).get("errno") == "ERANGE", (bad, reply)
        assert settings(dev) == before, bad


def frames_of_flow(receiver: socket.socket, ports: bytes, within: float) -> list[int]:
    """Lengths of the frames of the flow with PORTS (source and destination) the host sees in WITHIN s."""
    lengths = []
    deadline = time.monotonic() + within
    receiver.settimeout(0.01)
    while time.monotonic() < deadline:
        try:
            data = receiver.recv(65536)
        except TimeoutError:
            continue
        if data[34:38] == ports:
            lengths.append(len(data))
    return lengths


def test_gro_flush_timeout_merges_segments_that_come_in_separate_polls(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    results = {}
    with peer_to_host(dev) as (peer_mac, sender, receiver):
        for timeout_ns, base in ((0, 1000), (5_000_000, 900000)):
            napi_set(dev, **{"gro-flush-timeout": timeout_ns})
            train = [lone_segment(dev, peer_mac, base + i * 1400) for i in range(10)]
            before = counters(dev)
            for frame in train:  # 0.3 ms apart: each lands in a poll of its own
                sender.send(frame)
                time.sleep(0.0003)
            seen = frames_of_flow(receiver, train[0][34:38], 0.2)
            after = counters(dev)
            results[timeout_ns] = (seen, {k: after[k] - before[k] for k in KEYS})
    (seen_off, off), (seen_on, on) = results[0], results[5_000_000]
    # Without the timeout a session ends with its poll: on a loaded machine
    # two segments may still share a poll and merge, but most go up alone,
    # and every one missing from the frames seen is in a merge the counters show.
    assert len(seen_off) >= 6, results
    assert 10 - len(seen_off) == off["rx-hw-gro-wire-packets"] - off["rx-hw-gro-packets"], results
    # Held across polls, the ten segments go up as one or two frames.
    assert 1 <= len(seen_on) <= 2 and sum(seen_on) > 10 * 1400, results
    assert on["rx-hw-gro-wire-packets"] >= 5 * on["rx-hw-gro-packets"] > 0, results
