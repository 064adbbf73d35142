"""Load (issue 12, item 5): 32 TCP streams and UDP floods above what the device
carries, both ways, for a few seconds each. The device process lives through
it with the same threads, every datagram lost is counted dropped somewhere on
its way, and the latency is back to its idle value within a second of the
load stopping.

Figures are printed (pytest -s shows them) for README's Reliability section.
"""

from __future__ import annotations

import json
import os
import statistics

from conftest import run, snmp
from iperf import iperf3

SECONDS = 3


def thread_names(pid: int) -> set[str]:
    """Names of the device process's threads: the workers, the watchdog, the monitors."""
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.add(f.read().strip())
        except FileNotFoundError:  # ended while we looked: a control request's thread
            continue
    return names


def ping_rtts(peer: str, count: int, interval: float = 0.01) -> list[float]:
    """COUNT echoes INTERVAL apart; the round trips in microseconds, in the order sent."""
    out = run(["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", peer], timeout=count + 10).stdout
    return [float(w[5:]) * 1000 for line in out.splitlines() for w in line.split() if w.startswith("time=")]


def udp_errors(netns: str | None) -> int:
    """Datagrams the UDP layer of NETNS dropped: receive buffer full and other input errors."""
    return snmp(netns, "Udp")["InErrors"]  # RcvbufErrors and InCsumErrors are among them


def link_drops(ifname: str, netns: str | None = None) -> dict[str, int]:
    """rx/tx dropped of a link, as `ip -s link` counts them."""
    s = json.loads(run(["ip", *(["-n", netns] if netns else []), "-s", "-j", "link", "show", "dev", ifname],
                       check=True).stdout)[0]["stats64"]
    return {"rx": s["rx"]["dropped"], "tx": s["tx"]["dropped"]}


def qdisc_drops(ifname: str, netns: str | None = None) -> int:
    qdiscs = json.loads(run(["tc", *(["-n", netns] if netns else []), "-s", "-j", "qdisc", "show", "dev", ifname],
                            check=True).stdout)
    return sum(q.get("drops", 0) for q in qdiscs if q.get("root", True) or q.get("parent") == "ffff:")


def drop_counters(dev) -> dict[str, int]:
    """Every counter a datagram lost between the two UDP sockets can land in."""
    st = dev.stats()["device"]
    wire = f"{dev.name}-wire"
    host, peer, hwire = link_drops(dev.name), link_drops("eth0", dev.netns), link_drops(wire)
    return {
        "device rx-hw-drops": st["rx-hw-drops"], "device tx-hw-drops": st["tx-hw-drops"],
        "host tap rx dropped": host["rx"], "host tap tx dropped": host["tx"],
        "host tap qdisc drops": qdisc_drops(dev.name),
        "wire rx dropped": hwire["rx"], "wire tx dropped": hwire["tx"],
        "peer rx dropped": peer["rx"], "peer tx dropped": peer["tx"],
        "peer qdisc drops": qdisc_drops("eth0", dev.netns),
        "host udp InErrors": udp_errors(None), "peer udp InErrors": udp_errors(dev.netns),
    }


def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_32_streams_and_udp_floods_are_carried_or_counted_and_latency_recovers(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    threads = thread_names(dev.pid)
    idle = statistics.median(ping_rtts(dev.peer_v4, 50))
    figures: dict[str, object] = {"idle ping p50 us": round(idle)}

    for direction in ((), ("-R",)):
        result = iperf3(dev.netns, dev.peer_v4, "-P", "32", *direction, duration=SECONDS)
        label = "rx" if direction else "tx"
        figures[f"tcp 32 streams {label} Gbit/s"] = round(result["end"]["sum_received"]["bits_per_second"] / 1e9, 2)
        assert len(result["end"]["streams"]) == 32
        assert os.path.exists(f"/proc/{dev.pid}") and thread_names(dev.pid) == threads

    for size, streams in (("1400", "4"), ("64", "4")):
        for direction in ((), ("-R",)):
            label = f"udp {size} B {'rx' if direction else 'tx'}"
            before = drop_counters(dev)
            # -b 0: as fast as the senders go, far above what the device carries on 2 cores.
            result = iperf3(dev.netns, dev.peer_v4, "-u", "-b", "0", "-l", size, "-P", streams, *direction,
                            duration=SECONDS)
            # Right after the load: the second of echoes is also the time the
            # queues get to drain before the drop counters are read.
            after_rtts = ping_rtts(dev.peer_v4, 100)
            drops = moved(before, drop_counters(dev))
            end = result["end"]["sum"]
            lost, sent = end["lost_packets"], end["packets"]
            figures[label] = {"sent": sent, "lost": lost, "drops": drops,
                              "ping p50 us in the next second": round(statistics.median(after_rtts))}
            assert os.path.exists(f"/proc/{dev.pid}") and thread_names(dev.pid) == threads, label
            assert sent > 0
            # Every datagram the receiver missed was counted dropped by someone on
            # the way: the sum over all of them (other traffic's drops too) covers it.
            assert sum(drops.values()) >= lost, (label, lost, drops)
            check_latency_recovers(idle, after_rtts, label)

    print(json.dumps(figures, indent=1))


def check_latency_recovers(idle: float, rtts: list[float], label: str) -> None:
    """Within a second of the load stopping, the round trip is back at its idle value.

    A queue left backlogged (a full 1024-frame ring ahead of each echo is some
    milliseconds at these rates) or a worker stuck in a slow path would put
    every echo of that second far above idle; twice idle plus 100 us allows
    for the scheduling noise of a shared 2-core machine and nothing more.
    """
    assert len(rtts) >= 90, f"{label}: {len(rtts)} of 100 echoes answered after the load"
    limit = 2 * idle + 100
    p50 = statistics.median(rtts)
    assert p50 <= limit, f"{label}: ping p50 {p50:.0f} us in the second after the load; idle {idle:.0f} us"



def test_frames_the_kernel_drops_on_a_full_socket_ring_are_the_devices_overruns(softena_up) -> None:
    """A UDP flood into a small Rx ring: what the AF_XDP socket could not take
    (XDP_STATISTICS: Rx ring full, fill ring empty) is rx-hw-drop-overruns,
    frame for frame with what the wire's veth counts as dropped on redirect."""
    dev = softena_up("sft0", "--queues", "1")
    run(["softena", "ethtool", "-G", "sft0", "rx", "256"], check=True)

    def counted() -> tuple[int, int, int]:
        st = dev.stats()["device"]
        return st["rx-hw-drop-overruns"], st["rx-hw-drops"], link_drops(f"{dev.name}-wire")["rx"]

    before = counted()
    iperf3(dev.netns, dev.peer_v4, "-u", "-b", "0", "-l", "1400", "-P", "2", "-R", duration=2)
    after = counted()
    overruns, drops, wire = (a - b for a, b in zip(after, before))
    assert overruns > 0, "a flood into a 256-frame ring overran nothing"
    assert drops >= overruns
    assert overruns == wire, (overruns, wire)
