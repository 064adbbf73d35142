"""Placement: where the application runs against the CPU of the worker that carries its flow.

A 1-queue device has one worker, on the first CPU the device may use (W); O is
the other CPU. Every end on the host is pinned with taskset, and the same
pinning is applied to the veth baseline, so each "added" compares like with
like. Informative rows, no floors: the unpinned cases elsewhere mix these
placements, as the scheduler falls.

  round trips   tcp_rr (client, server) and ping at each placement: what the
                device itself adds, apart from the machine's cross-CPU wake-ups
  throughput    one iperf3 stream each way on both wires with the host's end
                on W and on O: a receiver gains from sharing the worker's CPU
                (woken there, by the worker's own tap write), a sender loses
  aRFS          the default device (a queue per CPU, `--host-napi affine`)
                with `ethtool -K ntuple` off and on, and the host receiving
                inline (`--host-napi inline`, aRFS off): round trips with
                the host's end on each CPU and unpinned, and single streams
                with the host's iperf3 unpinned
"""

from __future__ import annotations

import os
import statistics
from contextlib import contextmanager
from typing import Iterator

from common import iperf3, log
from latency import ping_stats, rr_stats, warm_neighbours
from topology import ADDR_B, DEV_NS, NS_A, NS_B, Device, Lab

# Each cross-CPU wake-up costs what this machine charges for waking an idle CPU, on veth
# as on softena. ping has one end: the peer's kernel answers where the request arrives.
RR_PLACEMENTS = (("client and server on W", "w", "w"), ("client and server on O", "o", "o"),
                 ("client on W, server on O", "w", "o"), ("client on O, server on W", "o", "w"))
PING_PLACEMENTS = (("ping on W", "w"), ("ping on O", "o"))
WIRES = (("AF_XDP wire", "lab"), ("tap wire", "tap"))
# aRFS (ethtool -K ntuple) and where the host receives (--host-napi): the columns of the aRFS table.
ARFS_CONFIGS = (("off", "inline"), ("off", "affine"), ("on", "affine"))


def worker_and_other() -> dict[str, int] | None:
    """{"w": the CPU of a 1-queue device's worker, "o": another}, or None on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return {"w": cpus[0], "o": cpus[1]} if len(cpus) >= 2 else None


@contextmanager
def one_queue(lab: Lab, wire: str) -> Iterator[Device]:
    """A 1-queue device on WIRE at MTU 1500 (default mode), down again afterwards."""
    queues, lab.queues = lab.queues, 1
    try:
        dev = lab.softena_up(wire, 1500)
        yield dev
        lab.check_path()
        lab.softena_down()
    finally:
        lab.queues = queues


def round_trips(lab: Lab, ping_count: int, rr_count: int, rr_secs: int) -> list[dict]:
    """tcp_rr and ping p50 with every end pinned, on veth and on a 1-queue softena-xdp@1500."""
    where = worker_and_other()
    if where is None:
        return []
    rr = lab.helpers["rr"]
    lab.softena_down()
    lab.set_veth(1500, False)
    log("placement: round trips, veth (a)")
    veth = {name: rr_stats(rr, NS_A, NS_B, ADDR_B, rr_count, rr_secs, where[c], where[s])
            for name, c, s in RR_PLACEMENTS}
    veth |= {name: ping_stats(NS_A, ADDR_B, ping_count, where[c]) for name, c in PING_PLACEMENTS}
    log("placement: round trips, softena-xdp@1500 with 1 queue")
    with one_queue(lab, "lab") as dev:
        dev_rr = {name: rr_stats(rr, None, DEV_NS, dev.peer, rr_count, rr_secs, where[c], where[s])
                  for name, c, s in RR_PLACEMENTS}
        warm_neighbours(dev.peer)
        dev_rr |= {name: ping_stats(None, dev.peer, ping_count, where[c]) for name, c in PING_PLACEMENTS}
    tests = (("tcp_rr", [p[0] for p in RR_PLACEMENTS]), ("ping", [p[0] for p in PING_PLACEMENTS]))
    return [{"placement": name, "test": test, "worker_cpu": where["w"], "veth": veth[name], "softena": dev_rr[name]}
            for test, names in tests for name in names]


def throughput(lab: Lab, seconds: int, port: int) -> list[dict]:
    """One stream each way on each wire (1 queue, MTU 1500), the host's iperf3 on W, then on O."""
    where = worker_and_other()
    if where is None:
        return []
    rows = []
    for label, wire in WIRES:
        log(f"placement: throughput, {label} with 1 queue")
        with one_queue(lab, wire) as dev:
            for rx in (False, True):
                gbps = {at: iperf3(None, DEV_NS, dev.peer, port, seconds, reverse=rx, client_cpu=where[at])
                        for at in ("w", "o")}
                rows.append({"wire": label, "test": "1 stream rx" if rx else "1 stream tx",
                             "worker_cpu": where["w"], "on_w": gbps["w"], "on_o": gbps["o"]})
    return rows


def arfs(lab: Lab, ping_count: int, rr_count: int, rr_secs: int, seconds: int, port: int,
         rounds: int = 3) -> list[dict]:
    """The same cases with aRFS off and on, on the default device at MTU 1500 (softena-xdp@1500)."""
    where = worker_and_other()
    if where is None:
        return []
    rr = lab.helpers["rr"]
    cpus = (("unpinned", None), (f"on CPU {where['w']}", where["w"]), (f"on CPU {where['o']}", where["o"]))
    results: dict[str, dict] = {}
    for on, host_napi in ARFS_CONFIGS:
        log(f"placement: aRFS {on}, host-napi {host_napi}, softena-xdp@1500")
        dev = lab.softena_up("lab", 1500, host_napi=host_napi)
        lab.set_arfs(on == "on")
        key = (on, host_napi)
        warm_neighbours(dev.peer)
        for label, cpu in cpus:
            results.setdefault(f"ping, {label}", {"unit": "us p50"})[key] = \
                ping_stats(None, dev.peer, ping_count, cpu)["p50_us"]
            results.setdefault(f"tcp_rr, client {label}", {"unit": "us p50"})[key] = \
                rr_stats(rr, None, DEV_NS, dev.peer, rr_count, rr_secs, cpu)["p50_us"]
        for rx in (True, False):
            runs = [iperf3(None, DEV_NS, dev.peer, port, seconds, reverse=rx) for _ in range(rounds)]
            results.setdefault(f"1 stream {'rx' if rx else 'tx'}, unpinned, median of {rounds}",
                               {"unit": "Gbit/s"})[key] = statistics.median(runs)
        lab.check_path()
        lab.softena_down()
    return [{"case": case, "unit": r["unit"], "values": [r[c] for c in ARFS_CONFIGS]} for case, r in results.items()]
