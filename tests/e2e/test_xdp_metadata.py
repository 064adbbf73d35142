"""XDP RX metadata made real: the wire's arrival stamps, its hash, its stripped VLAN tags, and AF_XDP wakeups.

The wire is the lab's veth in native XDP mode. veth answers the three
metadata kfuncs: its hash for every frame, a hardware timestamp of 0 for
software-sent frames (so the program's own bpf_ktime_get_ns() stamp is what
times the frames), and the skb's hwaccel VLAN tag. A tagging peer is a tc
BPF program on the peer's egress (this kernel has neither 8021q nor act_vlan).
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import run, wait_for
from iperf import iperf3, iperf3_running
from rss_ref import spreading_port_base

from softena.control import ctlsock
from softena.datapath import latency

TAG_MARK = 0x5E7A
BPF_DIR = Path(__file__).resolve().parents[1] / "bpf"
ETH_P_ALL, ETH_P_8021Q, ETH_P_8021AD = 0x0003, 0x8100, 0x88A8
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata


def stats(dev: str) -> dict:
    return ctlsock.request(dev, "stats", timeout=5)


def totals(dev: str) -> dict:
    return stats(dev)["device"]


def moved(before: dict, after: dict, key: str) -> int:
    return after.get(key, 0) - before.get(key, 0)


def at_rest(dev: str) -> bool:
    """No frame delivered for a while: the counters of the stream are final."""
    first = totals(dev)["rx-packets"]
    time.sleep(0.3)
    return totals(dev)["rx-packets"] == first


def stamps(dev: str) -> tuple[dict[int, int], int]:
    """Each wire queue's last XDP arrival stamp, and CLOCK_MONOTONIC read right after."""
    gauges = stats(dev)["queue-gauges"]
    now = time.monotonic_ns()
    return {g["queue-id"]: g["rx-xdp-tstamp-ns"] for g in gauges}, now


def test_arrival_stamps_rise_per_wire_queue_and_every_delivered_frame_is_timed(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    before = stats("sft0")
    # Four UDP streams from the peer, 20 Mbit/s each, on client ports that
    # RSS spreads over both queues: both carry frames all the time (four
    # ephemeral ports all land on one queue in one run of eight).
    base = spreading_port_base(dev.peer_v4, dev.host_v4, 5201, 2)
    with iperf3_running(dev.netns, dev.peer_v4, "-u", "-b", "20M", "-P", "4", "-R", "--cport", str(base),
                        duration=4) as result:
        time.sleep(1.5)
        first, at_first = stamps("sft0")
        time.sleep(0.5)
        second, at_second = stamps("sft0")
    assert result["end"]["sum"]["packets"] > 1000
    for qid in (0, 1):
        assert second[qid] > first[qid] > 0, (qid, first, second)
        # The program's bpf_ktime_get_ns() is CLOCK_MONOTONIC: a stamp of a frame just taken.
        assert 0 <= at_first - first[qid] < 20_000_000, (qid, at_first - first[qid])
        assert 0 <= at_second - second[qid] < 20_000_000, (qid, at_second - second[qid])

    wait_for(lambda: at_rest("sft0"), within=5, what="Rx at rest")
    after = stats("sft0")
    dev_before, dev_after = before["device"], after["device"]
    assert dev_after["rx-xdp-tstamp-backwards"] == 0
    assert moved(dev_before, dev_after, "rx-hw-tstamp") == 0  # veth: hwtstamp 0 for software frames
    # One latency sample per frame handed to the host, on the queue that handed it.
    for q0, q1 in zip(before["queues"], after["queues"]):
        assert latency.count(q1) - latency.count(q0) == moved(q0, q1, "rx-packets"), q1["queue-id"]
    delivered = moved(dev_before, dev_after, "rx-packets")
    assert delivered > 1000
    assert latency.count(dev_after) - latency.count(dev_before) == delivered
    summary = after["rx-latency"]["device"]
    assert 0 < summary["p50"] <= summary["p90"] <= summary["p99"], summary
    print(f"latency over {summary['frames']} frames: {summary}")


def test_retired_queues_keep_their_latency_samples_in_the_device_histogram(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    base = spreading_port_base(dev.peer_v4, dev.host_v4, 5201, 2)  # both queues get streams
    iperf3(dev.netns, dev.peer_v4, "-P", "4", "-R", "--cport", str(base), duration=2)
    wait_for(lambda: at_rest("sft0"), within=5, what="Rx at rest")
    before = stats("sft0")
    assert all(latency.count(q) > 0 for q in before["queues"])
    run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
    after = stats("sft0")
    # The queue that went left its buckets in the base: the device histogram never goes back.
    assert latency.count(after["device"]) >= latency.count(before["device"])
    assert latency.count(after["base"]) >= latency.count(before["queues"][1])
    for key in (*latency.KEYS, latency.SUM_KEY):
        assert after["device"][key] >= before["device"][key], key


def test_status_tells_what_the_wire_offers_and_that_veth_hash_is_carried_but_never_reused(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    wire = dev.status["wire-ifname"]
    assert set(dev.status["wire-rx-metadata"]) == {"hash", "timestamp", "vlan-tag"}
    assert dev.status["wire-rx-metadata-used"] == dev.status["wire-rx-metadata"]
    # veth has no RSS configuration to read: ethtool -x fails, so the hash is never trusted.
    assert run(["ethtool", "-x", wire]).returncode != 0
    assert dev.status["wire-rss"] == {"error": "EOPNOTSUPP: Operation not supported"}
    assert dev.status["wire-hash"].startswith("not reused: the wire reports no RSS configuration")
    before = totals("sft0")
    base = spreading_port_base(dev.peer_v4, dev.host_v4, 5201, 2)  # both queues get streams
    iperf3(dev.netns, dev.peer_v4, "-P", "4", "-R", "--cport", str(base), duration=2)
    # The streams' last frames may still be between the two counters: read at rest.
    wait_for(lambda: at_rest("sft0"), within=10, what="the counters at rest")
    after = totals("sft0")
    wire_frames = moved(before, after, "rx-wire-packets")
    assert wire_frames > 1000
    assert moved(before, after, "rx-wire-hash") == wire_frames  # veth answers the hash kfunc for every frame
    assert after["rx-wire-hash-reused"] == 0
    # softena's own Toeplitz spread them, in front of the queues (the wire's steering stage).
    assert all(q["rx-packets"] > 100 for q in stats("sft0")["queues"])


def tc_vlan_program(tmp: Path, proto: int, vid: int) -> Path:
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is needed to build the tagging peer's tc program")
    machine = run(["gcc", "-dumpmachine"], check=True).stdout.strip()
    obj = tmp / "vlan_push.bpf.o"
    run([clang, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{machine}", f"-DVLAN_PROTO={proto:#x}",
         f"-DVLAN_TCI={vid}", "-c", str(BPF_DIR / "vlan_push.bpf.c"), "-o", str(obj)], check=True)
    return obj


def send_marked(netns: str, dst: str, port: int, count: int) -> None:
    """COUNT UDP datagrams from the peer to DST:PORT, marked for the tagging program."""
    script = ("import socket, sys, time\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, {TAG_MARK})\n"
              f"for i in range({count}):\n"
              f"    s.sendto(b'softena vlan %d' % i, ({dst!r}, {port}))\n"
              "    time.sleep(0.002)\n")
    run(["ip", "netns", "exec", netns, sys.executable, "-c", script], check=True)


def catch_tagged(sock: socket.socket, port: int, want: int, within: float) -> list[tuple[int, int]]:
    """(TPID, TCI) of the UDP frames to PORT the host stack received on the tap, from PACKET_AUXDATA."""
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + within
    while len(seen) < want and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, anc, _, _ = sock.recvmsg(2048, socket.CMSG_SPACE(AUXDATA.size))
        except TimeoutError:
            break
        # Untagged by the stack (skb_vlan_untag): the tag is in the auxdata, the bytes are plain IPv4.
        if len(data) < 42 or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        ihl = (data[14] & 0x0F) * 4
        if int.from_bytes(data[14 + ihl + 2:14 + ihl + 4], "big") != port:
            continue
        for level, kind, value in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _, _, _, _, tci, tpid = AUXDATA.unpack(value[:AUXDATA.size])
                if status & TP_STATUS_VLAN_VALID:
                    seen.append((tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q, tci))
                else:
                    seen.append((0, 0))
    return seen


@pytest.mark.parametrize("proto", [ETH_P_8021Q, ETH_P_8021AD], ids=["802.1Q", "802.1ad"])
def test_a_tag_the_wire_stripped_reaches_the_host_in_the_frame(softena_up, tmp_path: Path, proto: int) -> None:
    dev = softena_up("sft0", "--queues", "2")
    vid, port, count = 1234, 9999, 40
    obj = tc_vlan_program(tmp_path, proto, vid)
    peer = ["ip", "netns", "exec", dev.netns]
    run([*peer, "tc", "qdisc", "add", "dev", "eth0", "clsact"], check=True)
    run([*peer, "tc", "filter", "add", "dev", "eth0", "egress", "bpf", "direct-action", "obj", str(obj),
         "sec", "tc"], check=True)
    # The peer must know the host's MAC without ARP: the tagged frames are not ARP's.
    run([*peer, "ping", "-c", "1", "-W", "2", dev.host_v4], check=True)
    before = totals("sft0")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind(("sft0", ETH_P_ALL))
        send_marked(dev.netns, dev.host_v4, port, count)
        seen = catch_tagged(sock, port, count, within=5)
    assert seen == [(proto, vid)] * count, seen[:5]
    after = totals("sft0")
    assert moved(before, after, "rx-vlan-tag-restored") == count
    # Unmarked traffic stays untagged and keeps working.
    assert run([*peer, "ping", "-c", "3", "-i", "0.1", "-W", "2", dev.host_v4]).returncode == 0


def kernel_takes_tx_skb_budget() -> bool:
    """Does this kernel take XDP_MAX_TX_SKB_BUDGET (Linux 6.17) on a socket with a Tx ring?"""
    af_xdp, sol_xdp, xdp_tx_ring, xdp_max_tx_skb_budget = 44, 283, 3, 9
    with socket.socket(af_xdp, socket.SOCK_RAW, 0) as sock:
        sock.setsockopt(sol_xdp, xdp_tx_ring, struct.pack("I", 64))
        try:
            sock.setsockopt(sol_xdp, xdp_max_tx_skb_budget, struct.pack("I", 64))
        except OSError:
            return False
    return True


def test_af_xdp_wakeups_are_counted_per_ring_and_shown_under_enas_names(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    dev_status = json.loads(run(["softena", "status", "--json"], check=True).stdout)[0]
    before = totals("sft0")
    iperf3(dev_status["lab"]["netns"], dev_status["lab"]["peer"][0], "-P", "2", duration=2)
    after = totals("sft0")
    # Copy mode: the kernel keeps the Tx ring's need_wakeup set, and each kick is a sendto().
    kicks = moved(before, after, "tx-xsk-need-wakeup-set")
    calls = moved(before, after, "tx-xsk-wakeup-request")
    assert kicks > 100
    assert calls >= kicks
    if kernel_takes_tx_skb_budget():
        # One call sends a kick's whole TSO frame (45 segments), not 32 of them:
        # two calls a kick before the socket asked for the ring as its budget.
        assert calls <= kicks * 1.05, (calls, kicks)
    # Only zero-copy drivers set the fill ring's flag: none on veth, and no recvfrom() with it.
    assert after["rx-xsk-need-wakeup-set"] == after["rx-xsk-wakeup-request"]
    shown = json.loads(run(["softena", "ethtool", "--json", "-S", "sft0"], check=True).stdout)
    for qid in (0, 1):
        for name in ("tx_xsk_need_wakeup_set", "tx_xsk_wakeup_request", "rx_xsk_need_wakeup_set",
                     "rx_xsk_wakeup_request"):
            assert f"queue_{qid}_{name}" in shown
    assert sum(shown[f"queue_{q}_tx_xsk_wakeup_request"] for q in (0, 1)) >= after["tx-xsk-wakeup-request"]


def test_metrics_publish_the_latency_histogram_per_queue(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    metrics = dev.status.get("metrics")
    if not metrics:
        pytest.skip("device serves no metrics endpoint")
    run(["ip", "netns", "exec", dev.netns, "ping", "-c", "20", "-i", "0.01", dev.host_v4], check=True)
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert 'softena_rx_latency_seconds_bucket{device="sft0",le="+Inf",queue="0"}' in text
    count = [line for line in text.splitlines() if line.startswith("softena_device_rx_latency_seconds_count")]
    assert count and float(count[0].split()[-1]) >= 20
