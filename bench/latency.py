"""Latency cases: ICMP echo (ping) and TCP 1-byte request/response round trips.

Baseline (a): sb-a -> sb-b over the plain veth.  softena: host -> its lab
peer, in the default mode (`--host-napi auto`: affine), with aRFS on
(`ethtool -K ntuple on`: each flow on the queue of the CPU that reads it),
with `--busy-poll USECS` (auto: inline), with busy-poll plus napi-set
defer-hard-irqs/gro-flush-timeout on each of the device's NAPIs, and in the
default mode with `--peer-napi threaded`, `--peer-napi inline`,
`--peer-napi coalesced` (the peer moderated always, not only under a
stream as the default's adaptive peer is), `--host-napi threaded` and
`--host-napi inline` (no ceiling: what they cost or save).
"Added" is softena's median minus the baseline's median, per test.

ping: `ping -i 0.001 -c N`, each reply's time= parsed (iputils prints
microseconds).  TCP: bench/c/rr.c, one connection with TCP_NODELAY, one byte
each way, each round trip timed with CLOCK_MONOTONIC.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass

import cost
from common import BenchError, Server, in_ns, log, percentile, pinned, run
from topology import ADDR_B, DEV, DEV_NS, NS_A, NS_B, Lab

PING_TIME = re.compile(r"time=([0-9.]+) ms")


@dataclass(frozen=True)
class Mode:
    name: str
    busy_poll: int = 0
    napi: bool = False
    peer_napi: str = "auto"  # softena up --peer-napi: how the lab peer receives (auto: adaptive)
    host_napi: str = "auto"  # softena up --host-napi: where the host receives (auto: affine, inline if busy)
    arfs: bool = False  # ethtool -K ntuple on: flows go to their reader's CPU
    ceiling_us: float | None = None  # issue 10 item 4: the most this mode may add to (a)'s p50


def modes(busy_usecs: int, smoke: bool) -> list[Mode]:
    default = Mode("default", ceiling_us=60.0)
    if smoke:
        return [default]
    return [default, Mode("default + aRFS", arfs=True, ceiling_us=60.0),
            Mode(f"busy-poll {busy_usecs}", busy_poll=busy_usecs),
            Mode(f"busy-poll {busy_usecs} + napi-set", busy_poll=busy_usecs, napi=True, ceiling_us=20.0),
            # No ceiling: the price of the NAPI threads' wake-ups, beside the throughput
            # they buy, and the lab peer without its interrupt moderation, or with it always.
            Mode("default, peer threaded", peer_napi="threaded"),
            Mode("default, peer inline", peer_napi="inline"),
            Mode("default, peer coalesced", peer_napi="coalesced"),
            Mode("default, host threaded", host_napi="threaded"),
            Mode("default, host inline", host_napi="inline")]


def warm_neighbours(addr: str) -> None:
    """A few echoes from the host to ADDR, so that no measured round trip resolves a neighbour."""
    run(["ping", "-c", "3", "-i", "0.2", "-q", addr], timeout=10, check=False)


def ping_stats(ns: str | None, addr: str, count: int, cpu: int | None = None) -> dict:
    """RTTs of COUNT echoes 1 ms apart: p50/p99/mean in microseconds."""
    proc = run(in_ns(ns, pinned(cpu, ["ping", "-n", "-i", "0.001", "-c", str(count), "-W", "1", addr])),
               timeout=count * 0.002 + 15, check=False)
    rtts = sorted(float(m.group(1)) * 1000.0 for m in PING_TIME.finditer(proc.stdout))
    if len(rtts) < count // 2:
        raise BenchError(f"ping {addr}: only {len(rtts)} of {count} replies ({proc.stderr.strip()[-200:]})")
    return {"n": len(rtts), "sent": count, "p50_us": percentile(rtts, 0.5), "p99_us": percentile(rtts, 0.99),
            "mean_us": statistics.fmean(rtts)}


def rr_stats(rr: str, client_ns: str | None, server_ns: str, addr: str, count: int, maxsec: int,
             client_cpu: int | None = None, server_cpu: int | None = None) -> dict:
    """COUNT TCP 1-byte round trips (at most MAXSEC s) from CLIENT_NS to a server at ADDR in SERVER_NS,
    each end pinned to its CPU when one is given."""
    port = "5299"
    with Server(in_ns(server_ns, pinned(server_cpu, [rr, "server", addr, port, str(maxsec + 15)])),
                ready="listening", name="rr server"):
        proc = run(in_ns(client_ns, pinned(client_cpu, [rr, "client", addr, port, str(count), str(maxsec)])),
                   timeout=maxsec + 20)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(lab: Lab, busy_usecs: int, ping_count: int, rr_count: int, rr_secs: int, smoke: bool) -> list[dict]:
    """Rows: veth baseline, then each softena mode; each with ping and tcp_rr stats and device CPU."""
    rr = lab.helpers["rr"]
    rows = []
    lab.softena_down()
    lab.set_veth(1500, False)
    log("latency: veth (a)")
    rows.append({"path": "veth@1500", "mode": "-", "ping": ping_stats(NS_A, ADDR_B, ping_count),
                 "tcp_rr": rr_stats(rr, NS_A, NS_B, ADDR_B, rr_count, rr_secs)})
    for mode in modes(busy_usecs, smoke):
        log(f"latency: softena-xdp@1500, {mode.name}")
        dev = lab.softena_up("lab", 1500, busy_poll=mode.busy_poll, peer_napi=mode.peer_napi,
                             host_napi=mode.host_napi)
        row: dict = {"path": "softena-xdp@1500", "mode": mode.name, "ceiling_us": mode.ceiling_us}
        if mode.arfs:
            lab.set_arfs(True)
        if mode.napi:
            row["napi_set"] = lab.napi_tune(defer_hard_irqs=100, gro_flush_timeout=200000)
        warm_neighbours(dev.peer)
        a = cost.snapshot(dev.pid, DEV)
        row["ping"] = ping_stats(None, dev.peer, ping_count)
        # The device's own Rx latency histogram (XDP arrival to tap write), here nearly all ping replies.
        row["device_rx_latency"] = lab.softena_stats().get("rx-latency", {}).get("device")
        row["tcp_rr"] = rr_stats(rr, None, DEV_NS, dev.peer, rr_count, rr_secs)
        row["cpu"] = cost.used(a, cost.snapshot(dev.pid, DEV)).as_dict()
        lab.check_path()
        lab.softena_down()
        rows.append(row)
    return rows


def comparisons(rows: list[dict]) -> list[dict]:
    """Report rows: each softena mode's added p50 per test, with its ceiling."""
    base = rows[0]
    out = []
    for r in rows[1:]:
        for test in ("ping", "tcp_rr"):
            added = r[test]["p50_us"] - base[test]["p50_us"]
            out.append({"section": "latency", "item": "4", "case": f"{r['path']} {r['mode']}",
                        "test": f"{test} p50 added", "value": added, "unit": "us",
                        "baseline": "veth@1500", "baseline_value": base[test]["p50_us"], "ratio": None,
                        "floor": r.get("ceiling_us"), "kind": "value<="})
    return out
