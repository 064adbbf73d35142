"""Throughput cases: iperf3 TCP through softena, the veth baselines and the user-mode peers.

A path is one way for bytes to go (a softena device with its wire and MTU,
a veth with or without XDP_PASS, a namespace behind pasta or slirp4netns).
Directions are named from the host's side, as for a NIC: `tx` carries data
from the host (or, for the veth baselines, from sb-a) to the peer namespace,
`rx` from the peer namespace to the host.

Each softena measurement is paired with its veth baseline measured right
before or after it (the order alternates between rounds).  softena stays up
for its block of tests, idle while its baseline runs: an idle device sleeps.
The user-mode peers run in a block of their own, with softena down.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import cost
from common import BenchError, free_port, iperf3, log
from topology import ADDR_B, DEV, DEV_NS, NS_A, NS_B, USERNET, Lab


@dataclass(frozen=True)
class Test:
    """One iperf3 shape: streams, the direction of the data, and how many iperf3 pairs carry them."""

    name: str
    streams: int
    rx: bool  # data from the peer namespace to the host (iperf3 -R for a client on the host)
    processes: int = 1  # iperf3 pairs at once, each with STREAMS streams (common.iperf3)


@dataclass(frozen=True)
class Path:
    name: str
    kind: str  # "softena", "veth" or "usernet"
    mtu: int
    wire: str = "lab"
    xdp: bool = False
    threaded: bool = False  # softena: --peer-napi threaded; veth: both ends in NAPI threads
    peer_inline: bool = False  # softena: --peer-napi inline (the lab peer unmoderated, frame by frame)
    coalesced: bool = False  # veth: both ends moderated as softena's lab peer is under a stream
    host_threaded: bool = False  # softena: --host-napi threaded (the host's end in the tap's NAPI threads)
    busy_poll: int = 0  # softena: --busy-poll USECS (workers poll before they sleep)
    tool: str = ""
    description: str = ""


@dataclass(frozen=True)
class Comparison:
    """A row of the report: PATH x TEST judged against BASELINES (the best of them) with a floor."""

    path: str
    test: str
    baselines: tuple[str, ...]
    floor: float | None
    issue_item: str = ""


@dataclass
class Sample:
    path: str
    test: str
    round: int
    gbps: float | None
    error: str | None = None
    cpu: cost.CpuUse | None = None
    stolen_pct: float | None = None  # of all CPUs' time, by the hypervisor, during the run


@dataclass
class Plan:
    """What to measure: blocks of (softena path, its baseline) and the user-mode peers."""

    tests: dict[str, Test]
    paths: dict[str, Path]
    blocks: list[tuple[str, str | None, list[str]]]  # (softena path, paired baseline or None, test names)
    peer_runs: list[tuple[str, list[str]]]  # (usernet path, test names)
    comparisons: list[Comparison]
    idle_after: str | None = None  # softena path whose block ends with the idle measurement


def make_plan(parallel: int, smoke: bool, usernet_tools: Sequence[str], busy_poll: int = 50) -> Plan:
    """The full matrix of issue 10, or the smoke's minimal subset; BUSY_POLL is the
    --busy-poll of the tap wire's informative busy row."""
    t = {x.name: x for x in (Test("1 stream tx", 1, False), Test("1 stream rx", 1, True),
                             Test(f"{parallel} streams tx", parallel, False),
                             Test(f"{parallel} streams rx", parallel, True),
                             Test(f"{parallel} processes tx", 1, False, parallel),
                             Test(f"{parallel} processes rx", 1, True, parallel))}
    one = ["1 stream tx", "1 stream rx"]
    multi = [f"{parallel} streams tx", f"{parallel} streams rx"]
    # Not a floor: the -P tests' streams in as many iperf3 processes, so that the
    # receiver reads on every CPU, as iperf3 3.16+ and multi-threaded servers do.
    procs = [f"{parallel} processes tx", f"{parallel} processes rx"]
    p = [Path("veth@1500", "veth", 1500, description="(a) kernel veth between two namespaces"),
         Path("veth+xdp@1500", "veth", 1500, xdp=True, description="(b) the same veth, XDP_PASS on both ends"),
         Path("veth@9000", "veth", 9000, description="(a) at MTU 9000"),
         Path("veth+xdp+threads@1500", "veth", 1500, xdp=True, threaded=True,
              description="(b) with both ends receiving in NAPI threads, with GRO"),
         Path("veth+xdp+coalesced@1500", "veth", 1500, xdp=True, coalesced=True,
              description="(b) with both ends' NAPI moderated as softena's lab peer is under a stream"),
         Path("softena-xdp@1500", "softena", 1500, description="softena up (lab veth wire, AF_XDP)"),
         Path("softena-xdp+inline@1500", "softena", 1500, peer_inline=True,
              description="softena up --peer-napi inline (the lab peer takes each frame alone, as veth does)"),
         Path("softena-xdp+threads@1500", "softena", 1500, threaded=True, host_threaded=True,
              description="softena up --peer-napi threaded --host-napi threaded (both ends receive in "
                          "NAPI threads)"),
         Path("softena-xdp+hostthreads@1500", "softena", 1500, host_threaded=True,
              description="softena up --host-napi threaded (the host receives in the tap's NAPI threads)"),
         Path("softena-xdp@9000", "softena", 9000, description="softena up --mtu 9000 (multi-buffer AF_XDP)"),
         Path("softena-tap@1500", "softena", 1500, wire="tap", description="softena up --wire tap"),
         Path("softena-tap@9000", "softena", 9000, wire="tap", description="softena up --wire tap --mtu 9000"),
         Path("softena-tap+busy@1500", "softena", 1500, wire="tap", busy_poll=busy_poll,
              description=f"softena up --wire tap --busy-poll {busy_poll} (workers poll before they sleep)")]
    for tool in usernet_tools:
        for mtu in (1500, 65520):
            p.append(Path(f"{tool}@{mtu}", "usernet", mtu, tool=tool,
                          description=f"{tool} at MTU {mtu}, namespace to a server on host loopback"))
    paths = {x.name: x for x in p}
    peers1500 = tuple(f"{tool}@1500" for tool in usernet_tools)
    peers_best = tuple(f"{tool}@65520" for tool in usernet_tools)
    cmp: list[Comparison] = []
    blocks: list[tuple[str, str | None, list[str]]]  # (softena path, its baseline or None, tests)
    if smoke:
        blocks = [("softena-xdp@1500", "veth+xdp@1500", ["1 stream tx"]),
                  ("softena-tap@1500", "veth@1500", ["1 stream tx"])]
        peer_runs = [(name, ["1 stream tx"]) for name in peers1500]
        cmp += [Comparison("softena-xdp@1500", "1 stream tx", ("veth+xdp@1500",), 1.0, "1"),
                Comparison("softena-tap@1500", "1 stream tx", ("veth@1500",), 0.9, "2")]
        if peers1500:
            cmp += [Comparison("softena-xdp@1500", "1 stream tx", peers1500, 1.0, "3"),
                    Comparison("softena-tap@1500", "1 stream tx", peers1500, 2.0, "3")]
        return Plan(t, paths, blocks, peer_runs, cmp, idle_after="softena-xdp@1500")
    blocks = [("softena-xdp@1500", "veth+xdp@1500", one + multi + procs),
              ("softena-xdp@9000", "veth@9000", one),
              ("softena-tap@1500", "veth@1500", one + multi + procs),
              ("softena-tap@9000", None, one),
              # Not a floor: what the lab peer's receive model is worth, with
              # the same model given to the baseline.
              ("softena-xdp+threads@1500", "veth+xdp+threads@1500", one),
              ("softena-xdp+hostthreads@1500", "veth+xdp@1500", one),
              # Not a floor: the lab peer without interrupt moderation (the
              # default before 2026-12-02), and (b) given the lab peer's moderation.
              ("softena-xdp+inline@1500", "veth+xdp+coalesced@1500", one),
              # Not a floor: what the host's wake-ups of a sleeping worker cost
              # the tap wire's senders, against the CPU that polling burns.
              ("softena-tap+busy@1500", "veth@1500", one)]
    peer_runs = [(name, one) for name in (*peers1500, *peers_best)]
    for test in one:
        cmp.append(Comparison("softena-xdp@1500", test, ("veth+xdp@1500",), 1.0, "1"))
    for test in multi + procs:
        cmp.append(Comparison("softena-xdp@1500", test, ("veth+xdp@1500",), None, "1"))
    for test in one:
        cmp.append(Comparison("softena-xdp@9000", test, ("veth@9000",), 0.5, "1"))
    for test in one:
        cmp.append(Comparison("softena-tap@1500", test, ("veth@1500",), 0.9, "2"))
    for test in multi:
        cmp.append(Comparison("softena-tap@1500", test, ("veth@1500",), 0.6, "2"))
    for test in procs:
        cmp.append(Comparison("softena-tap@1500", test, ("veth@1500",), None, "2"))
    for test in one:
        cmp.append(Comparison("softena-tap@9000", test, ("veth@9000",), None, "2"))
    for test in one:
        cmp += [Comparison("softena-xdp+threads@1500", test, ("veth+xdp@1500",), None, "1"),
                Comparison("softena-xdp+threads@1500", test, ("veth+xdp+threads@1500",), None, "1"),
                Comparison("softena-xdp+hostthreads@1500", test, ("veth+xdp@1500",), None, "1"),
                Comparison("softena-xdp+inline@1500", test, ("veth+xdp@1500",), None, "1"),
                Comparison("softena-xdp@1500", test, ("veth+xdp+coalesced@1500",), None, "1"),
                Comparison("softena-tap+busy@1500", test, ("veth@1500",), None, "2")]
    if usernet_tools:
        for test in one:
            cmp += [Comparison("softena-xdp@1500", test, peers1500, 1.0, "3"),
                    Comparison("softena-xdp@9000", test, peers_best, 1.0, "3"),
                    Comparison("softena-tap@1500", test, peers1500, 2.0, "3"),
                    Comparison("softena-tap@9000", test, peers_best, 2.0, "3")]
    return Plan(t, paths, blocks, peer_runs, cmp, idle_after="softena-xdp@1500")


def schedule(plan: Plan, rounds: int) -> Iterator[tuple[int, Path, Test]]:
    """Blocks in order; within a block, for each test, baseline and softena back to back,
    the order inside a pair alternating between rounds.  Then the user-mode peers."""
    for rnd in range(rounds):
        for sp, bp, tests in plan.blocks:
            for tname in tests:
                pair = [plan.paths[sp]] if bp is None else [plan.paths[bp], plan.paths[sp]]
                if rnd % 2:
                    pair.reverse()
                for path in pair:
                    yield rnd, path, plan.tests[tname]
        for up, tests in plan.peer_runs:
            for tname in tests:
                yield rnd, plan.paths[up], plan.tests[tname]


@dataclass
class Runner:
    """Measures paths one test at a time, keeping softena and the peers up while a block lasts."""

    lab: Lab
    seconds: int
    omit: int
    port: int
    retries: int
    pause: float
    usernet_mtu: dict[str, int] = field(default_factory=dict)
    device_info: dict[str, dict] = field(default_factory=dict)  # softena path -> mode, pid, rss, umem
    dev_path: str | None = None  # the softena path the running device was brought up for

    def _softena_for(self, path: Path) -> None:
        dev = self.lab.dev
        peer_napi = "threaded" if path.threaded else "inline" if path.peer_inline else "auto"
        host_napi = "threaded" if path.host_threaded else "auto"
        if dev is None or (dev.wire, dev.mtu, dev.busy_poll, dev.peer_napi, dev.host_napi) != \
                (path.wire, path.mtu, path.busy_poll, peer_napi, host_napi):
            self.close_device()
            log(f"softena up {path.name}")
            dev = self.lab.softena_up(path.wire, path.mtu, busy_poll=path.busy_poll, peer_napi=peer_napi,
                                      host_napi=host_napi)
            self.dev_path = path.name
            self.device_info[path.name] = {"mode": dev.mode, "peer": dev.peer, "pid": dev.pid,
                                           "queues": dev.queues}

    def close_device(self) -> None:
        """Record the device's memory after its block, then take it down."""
        dev = self.lab.dev
        if dev is None:
            return
        info = self.device_info.get(self.dev_path or "")
        if info is not None and info.get("pid") == dev.pid:
            info["rss_bytes"] = cost.rss_bytes(dev.pid)
            try:
                info["umem_bytes"] = cost.umem_bytes(self.lab.softena_stats().get("region"))
            except (BenchError, ValueError):
                info["umem_bytes"] = None
        self.lab.softena_down()

    def measure_idle(self, seconds: float) -> cost.CpuUse:
        """CPU of the (already up) device with no traffic, after a second to settle."""
        import time
        assert self.lab.dev
        time.sleep(1.0)
        a = cost.snapshot(self.lab.dev.pid)
        time.sleep(seconds)
        return cost.used(a, cost.snapshot(self.lab.dev.pid))

    def once(self, path: Path, test: Test) -> tuple[float, cost.CpuUse | None]:
        if path.kind == "veth":
            self.lab.set_veth(path.mtu, path.xdp, path.threaded, path.coalesced)
            return iperf3(NS_A, NS_B, ADDR_B, self.port, self.seconds, test.streams, test.rx, self.omit,
                          processes=test.processes), None
        if path.kind == "usernet":
            self.close_device()
            if self.usernet_mtu.get(path.tool) != path.mtu:
                self.lab.usernet_up(path.tool, path.mtu)
                self.usernet_mtu[path.tool] = path.mtu
            u = USERNET[path.tool]
            # The client is in the namespace: iperf3 -R sends host -> namespace (tx).
            return iperf3(u["ns"], None, "127.0.0.1", free_port(), self.seconds, test.streams, not test.rx,
                          self.omit, target=u["gateway"]), None
        self._softena_for(path)
        assert self.lab.dev
        self.lab.check_path()
        a = cost.snapshot(self.lab.dev.pid, DEV)
        gbps = iperf3(None, DEV_NS, self.lab.dev.peer, self.port, self.seconds, test.streams, test.rx, self.omit,
                      processes=test.processes)
        b = cost.snapshot(self.lab.dev.pid, DEV)
        self.lab.check_path()
        return gbps, cost.used(a, b)

    def measure(self, path: Path, test: Test, rnd: int) -> Sample:
        """PATH x TEST once, with at most RETRIES further attempts."""
        import time
        error = ""
        for attempt in range(1 + self.retries):
            stolen, started = cost.stolen_cpu(), time.monotonic()
            try:
                gbps, cpu = self.once(path, test)
            except BenchError as exc:
                error = str(exc)
                log(f"round {rnd + 1}: {path.name:<18} {test.name:<16} attempt {attempt + 1} failed: {error}")
                if self.lab.dev_maybe_up and self.lab.dev is None:
                    self.lab.softena_down()  # up failed half way; if down fails too, the bench stops
                time.sleep(self.pause)
                continue
            lost = cost.stolen_pct(stolen, cost.stolen_cpu(), time.monotonic() - started)
            extra = []
            if cpu is not None and cpu.process_pct is not None:
                extra.append(f"device {cpu.process_pct:.0f}% of a core")
            if lost is not None:
                extra.append(f"{lost:.0f}% stolen")
            log(f"round {rnd + 1}: {path.name:<18} {test.name:<16} {gbps:7.2f} Gbit/s"
                + (f"  ({'; '.join(extra)})" if extra else ""))
            time.sleep(self.pause)
            return Sample(path.name, test.name, rnd, gbps, cpu=cpu, stolen_pct=lost)
        return Sample(path.name, test.name, rnd, None, error=error)


def summarize(plan: Plan, samples: list[Sample]) -> tuple[list[dict], list[dict]]:
    """(per-path rows, comparison rows).

    A path's Gbit/s is the median over rounds.  A comparison's ratio is the
    median over rounds of the ratio within a round when its one baseline was
    paired with it; against several baselines (the user-mode peers: the best
    of them) it is median Gbit/s over the best baseline's median.
    """
    by: dict[tuple[str, str], dict[int, Sample]] = {}
    for s in samples:
        by.setdefault((s.path, s.test), {})[s.round] = s

    def med(path: str, test: str) -> float | None:
        vals = [s.gbps for s in by.get((path, test), {}).values() if s.gbps is not None]
        return statistics.median(vals) if vals else None

    path_rows = []
    for (pname, tname), mine in sorted(by.items(), key=lambda kv: (list(plan.paths).index(kv[0][0]),
                                                                   list(plan.tests).index(kv[0][1]))):
        row: dict = {"path": pname, "test": tname, "gbps": med(pname, tname),
                     "samples_gbps": [mine[r].gbps for r in sorted(mine)],
                     "stolen_pct": _med([mine[r].stolen_pct for r in sorted(mine)]),
                     "samples_stolen_pct": [mine[r].stolen_pct for r in sorted(mine)],
                     "errors": [mine[r].error for r in sorted(mine) if mine[r].error]}
        # Each round's CPU with that round's throughput (a round without either is left out).
        measured = [(s.cpu, s.gbps) for s in (mine[r] for r in sorted(mine)) if s.cpu is not None and s.gbps]
        cpus = [cpu for cpu, _ in measured]
        if cpus:
            per = [cpu.per_gbit(gbps) for cpu, gbps in measured]
            keys = sorted({k for d in per for k in d})
            row["cpu_s_per_gbit"] = {k: _med([d.get(k) for d in per]) for k in keys}
            row["device_cpu_pct"] = _med([c.process_pct for c in cpus])
            row["cpu"] = [c.as_dict() for c in cpus]
        path_rows.append(row)

    cmp_rows = []
    for c in plan.comparisons:
        mine = by.get((c.path, c.test), {})
        value = med(c.path, c.test)
        bases = [(b, med(b, c.test)) for b in c.baselines]
        have = [(b, v) for b, v in bases if v is not None]
        best = max(have, key=lambda bv: bv[1]) if have else (None, None)
        ratio, ratios = None, []
        if len(c.baselines) == 1 and have:
            base = by.get((c.baselines[0], c.test), {})
            pairs = [(mine[r].gbps, base[r].gbps) for r in sorted(mine) if r in base]
            ratios = [m / b for m, b in pairs if m is not None and b]
            ratio = statistics.median(ratios) if ratios else None
        elif value is not None and best[1]:
            ratio = value / best[1]
            ratios = [ratio]
        label = c.baselines[0] if len(c.baselines) == 1 else f"best of {'/'.join(c.baselines)}"
        cmp_rows.append({"section": "throughput", "item": c.issue_item, "case": c.path, "test": c.test,
                         "value": value, "unit": "Gbit/s", "baseline": label,
                         "baseline_used": best[0], "baseline_value": best[1], "ratio": ratio,
                         "round_ratios": ratios,
                         "floor": c.floor, "kind": "ratio>="})
    return path_rows, cmp_rows


def _med(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
