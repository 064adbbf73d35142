#!/usr/bin/env python3
"""softena soak: mixed traffic for a long time while the device is reset and
reconfigured every few seconds, then checks that nothing leaked or went
uncounted (issue 12, item 6).

    python3 bench/soak.py                   # 10 minutes
    python3 bench/soak.py --duration 60     # CI's short soak

Traffic, continuously in bounded runs (soaktraffic.py): TCP both ways,
UDP at a fixed rate both ways, ping. Every --interval seconds one step of
the cycle: ethtool -L combined 1, -G rx/tx 512, reset, -L combined 2,
-G rx/tx 1024, reset; the device starts and ends at 2 queues, 1024 rings.
The process is sampled every --sample seconds: RSS, fds, threads, page
pool inflight and free frames of the region.

Checks at the end, after the traffic stopped and the idle trim:
  the device process is the one started (alive, never restarted);
  RSS within 5% of RSS after warm-up (the first full cycle);
  fds and threads (by name) equal to the baseline after bring-up;
  every pool back to its fill ring, free + inflight == region frames;
  the device's totals (retired queues included) against the veth peer's:
  every frame the device put on the wire reached the peer or is counted as
  dropped, and every frame the peer sent reached the device or is counted.

Exit status: 0 all checks pass; 1 a check failed; 2 the soak could not run
or clean up; 130 on Ctrl-C. Must run as root; wrap it in the e2e lock on a
shared machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BenchError, Interrupted, log  # noqa: E402
from soaklab import Sample, SoakDevice, wire_frames_delivered, wire_frames_sent  # noqa: E402
from soaktraffic import Iperf3Loop, Loop, PingLoop  # noqa: E402

QUEUES, RING = 2, 1024  # where the device starts and where each cycle ends
CYCLE = (("-L", "combined", "1"), ("-G", "rx", "512", "tx", "512"), ("reset",),
         ("-L", "combined", "2"), ("-G", "rx", "1024", "tx", "1024"), ("reset",))
RSS_TOLERANCE = 0.05


@dataclass
class Check:
    name: str
    value: str
    ok: bool


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="softena soak: traffic, resets and reconfiguration, then leak "
                                            "and counter checks")
    p.add_argument("--duration", type=int, default=600,
                   help="seconds of soak (default 600): as many whole cycles as fit, at least 2")
    p.add_argument("--interval", type=float, default=3.0, help="seconds between changes (default 3)")
    p.add_argument("--sample", type=float, default=2.0, help="seconds between process samples (default 2)")
    p.add_argument("--chunk", type=int, default=5, help="seconds of one traffic run (default 5)")
    p.add_argument("--udp-rate", default="50M", help="UDP rate each way, iperf3 -b (default 50M)")
    p.add_argument("--dev", default="soak0", help="device name (default soak0; its peer: DEV-peer)")
    p.add_argument("--softena", metavar="CMD", help="softena command (default: this checkout's)")
    args = p.parse_args(argv)
    if args.duration < 10 or args.interval <= 0 or args.sample <= 0 or args.chunk < 1:
        p.error("--duration at least 10, --interval, --sample and --chunk positive")
    return args


def change(dev: SoakDevice, step: tuple[str, ...]) -> float:
    """One step of the cycle; returns how long the device took to do it."""
    t0 = time.monotonic()
    if step == ("reset",):
        dev.softena("reset", dev.name, timeout=30)
    else:
        dev.softena("ethtool", step[0], dev.name, *step[1:], timeout=60)
    return time.monotonic() - t0


def soak(dev: SoakDevice, args: argparse.Namespace, loops: list[Loop]) -> tuple[list[Check], dict]:
    """Bring up, baseline, traffic and changes, idle, end readings; the checks."""
    dev.up(QUEUES)
    # Filled in place: main() stops whatever was started, also on failure.
    loops += [Iperf3Loop("tcp", dev.netns, dev.peer_v4, 5301, args.chunk, ["-P", "2"]),
              Iperf3Loop("udp", dev.netns, dev.peer_v4, 5302, args.chunk,
                         ["-u", "-b", args.udp_rate, "-l", "1200"]),
              PingLoop(dev.peer_v4, args.chunk)]
    idle0 = sum(p["inflight"] for p in dev.settle()["page-pools"])
    base = dev.sample()
    start, peer0, wire0 = dev.quiet_counters()
    log(f"{dev.name}: pid {dev.pid}, baseline rss {base.rss >> 20} MiB, {base.fds} fds, {base.nthreads} threads")

    for loop in loops:
        loop.start()
    samples: list[Sample] = []
    warm: Sample | None = None
    took: list[float] = []
    rss_cycles: list[int] = []  # at the end of each cycle, under traffic
    t_begin = next_sample = time.monotonic()
    cycle = 0
    # Whole cycles (so it ends where it started), at least two (one is the
    # warm-up), as many as fit in --duration: each takes a little more than
    # its intervals, the changes themselves take time.
    while cycle < 2 or (time.monotonic() - t_begin) * (cycle + 1) / cycle <= args.duration:
        for step in CYCLE:
            took.append(change(dev, step))
            deadline = time.monotonic() + args.interval
            while time.monotonic() < deadline:
                if not dev.alive():
                    raise BenchError(f"the device process {dev.pid} died")
                if time.monotonic() >= next_sample:
                    samples.append(dev.sample())
                    next_sample += args.sample
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        rss_cycles.append(dev.sample().rss)
        if cycle == 0:
            warm = dev.sample()
            log(f"warm: rss {warm.rss >> 20} MiB after {time.monotonic() - t_begin:.0f} s")
        cycle += 1
        log(f"cycle {cycle} done, {time.monotonic() - t_begin:.0f} s")
    soaked = time.monotonic() - t_begin
    for loop in loops:
        loop.stop()
    for loop in loops:
        loop.join(timeout=args.chunk + 60)
        if loop.is_alive():
            raise BenchError(f"traffic loop {loop.name} did not end")

    idle1 = sum(p["inflight"] for p in dev.settle()["page-pools"])
    last = dev.sample()
    end, peer1, wire1 = dev.quiet_counters()
    assert warm is not None
    d = {k: end.get(k, 0) - start.get(k, 0) for k in end}
    dpeer = {k: peer1[k] - peer0[k] for k in peer1}
    dwire = {k: wire1[k] - wire0[k] for k in wire1}

    checks: list[Check] = []
    alive = dev.alive()
    checks.append(Check("device process alive, same pid", f"pid {dev.pid}", alive))
    growth = (last.rss - warm.rss) / warm.rss
    checks.append(Check("RSS at the end vs after warm-up",
                        f"{warm.rss / 2**20:.1f} -> {last.rss / 2**20:.1f} MiB ({growth:+.1%}), "
                        f"max {max(s.rss for s in samples) / 2**20:.1f}", abs(growth) <= RSS_TOLERANCE))
    checks.append(Check("open fds vs baseline", f"{base.fds} -> {last.fds}", last.fds == base.fds))
    checks.append(Check("threads vs baseline (by name)", f"{base.nthreads} -> {last.nthreads}",
                        last.threads == base.threads))
    checks.append(Check("pool inflight back to its idle baseline", f"{idle0} -> {idle1}", idle1 == idle0))
    checks.append(Check("free + inflight == region frames",
                        f"{last.frames_free} + {last.inflight} of {last.frames}",
                        last.frames_free + last.inflight == last.frames))

    # Host to wire: what the device put on the wire (segments of GSO frames
    # counted one by one) reached the peer's eth0, or a kernel counter on the
    # way counted it dropped: the host end's tx-dropped (veth_xmit's drop),
    # the peer's rx-dropped.
    sent = wire_frames_sent(d)
    reached = dpeer["rx-packets"] + dwire["tx-dropped"] + dpeer["rx-dropped"]
    checks.append(Check("to the wire: device sent == peer received + dropped",
                        f"{sent} == {dpeer['rx-packets']} + {dwire['tx-dropped'] + dpeer['rx-dropped']}",
                        sent == reached))
    # Wire to host: what the peer's eth0 sent (its tx-dropped are veth_xmit's
    # drops, before the wire) is what the host end received.
    checks.append(Check("from the wire: peer sent == wire received",
                        f"{dpeer['tx-packets']} == {dwire['rx-packets']} (+ {dpeer['tx-dropped']} peer tx-dropped)",
                        dpeer["tx-packets"] == dwire["rx-packets"]))
    # Of those, the device took some off its AF_XDP sockets; the kernel counts
    # as the host end's rx-dropped the frames it could not put on a socket's
    # full Rx ring (the device reads them as overruns); the device counts
    # as rx-wire-missed the frames that found a queue without its socket
    # during a rebuild (the wire program drops and counts them) or were
    # left in a socket's Rx ring when it went. Nothing else may be missing.
    took_in = d["rx-wire-packets"]
    unseen = dwire["rx-packets"] - took_in - dwire["rx-dropped"] - d["rx-wire-missed"]
    checks.append(Check("from the wire: wire received == device took + dropped + missed",
                        f"{dwire['rx-packets']} == {took_in} + {dwire['rx-dropped']} + {d['rx-wire-missed']}"
                        f" ({unseen:+d})", unseen == 0))
    # rx-hw-drops holds the overruns the kernel dropped before the device
    # took them (a full socket Rx ring, read from XDP_STATISTICS) besides
    # handoff-ring overruns of frames it took, and the missed frames: the
    # taken frames' drops lie between rx-hw-drops less every overrun and
    # missed frame, and rx-hw-drops less the missed frames.
    delivered = wire_frames_delivered(d)
    taken_drops_min = d["rx-hw-drops"] - d["rx-hw-drop-overruns"] - d["rx-wire-missed"]
    low = delivered + d["rx-filtered"] + taken_drops_min
    checks.append(Check("device took == delivered + filtered + dropped of what it took",
                        f"{took_in} in {low}..{low + d['rx-hw-drop-overruns']}",
                        low <= took_in <= low + d["rx-hw-drop-overruns"]))
    for loop in loops:
        if loop.tally.runs == 0:
            checks.append(Check(f"{loop.tally.name} traffic ran", "no run completed", False))

    figures = {"soaked": soaked, "cycles": cycle, "changes": len(took),
               "change-p50": statistics.median(took), "change-max": max(took),
               "samples": len(samples), "rss-warm": warm.rss, "rss-end": last.rss,
               "rss-max": max(s.rss for s in samples), "unseen": unseen, "rss-cycles": rss_cycles,
               "device": d, "peer": dpeer, "wire": dwire}
    return checks, figures


def print_report(checks: list[Check], figures: dict, loops: list[Loop]) -> None:
    print(f"soak: {figures['soaked']:.0f} s, {figures['cycles']} cycles, {figures['changes']} changes "
          f"(each took p50 {figures['change-p50'] * 1000:.0f} ms, max {figures['change-max'] * 1000:.0f} ms), "
          f"{figures['samples']} samples")
    print()
    width = max(len(c.name) for c in checks)
    print(f"{'check':<{width}}  {'verdict':<7}  value")
    for c in checks:
        print(f"{c.name:<{width}}  {'ok' if c.ok else 'FAIL':<7}  {c.value}")
    print()
    print(f"{'traffic':<8}  {'runs':>5}  {'failed':>6}  {'MB':>9}  {'packets':>9}  {'lost':>7}  rtt p50/max ms")
    for loop in loops:
        t = loop.tally
        rtt = f"{statistics.median(t.rtts):.3f}/{max(t.rtts):.3f}" if t.rtts else "-"
        print(f"{t.name:<8}  {t.runs:>5}  {t.failed:>6}  {t.bytes / 1e6:>9.1f}  {t.packets:>9}  {t.lost:>7}  {rtt}")
    print()
    print("RSS MiB at each cycle's end: " + " ".join(f"{r / 2**20:.0f}" for r in figures["rss-cycles"]))
    d = figures["device"]
    print("device totals moved: " + ", ".join(f"{k} {d.get(k, 0)}" for k in (
        "rx-wire-packets", "rx-packets", "rx-hw-gro-packets", "rx-hw-gro-wire-packets",
        "rx-hw-drops", "rx-hw-drop-overruns", "rx-wire-missed", "rx-filtered",
        "tx-packets", "tx-hw-gso-packets", "tx-hw-gso-wire-packets", "tx-hw-drops")))
    print("peer eth0 moved: " + ", ".join(f"{k} {v}" for k, v in figures["peer"].items()))
    print("host wire moved: " + ", ".join(f"{k} {v}" for k, v in figures["wire"].items()))


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dev = SoakDevice(args.dev, args.softena)
    old = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    loops: list[Loop] = []
    status, problems = 0, []
    try:
        dev.preflight()
        checks, figures = soak(dev, args, loops)
        print_report(checks, figures, loops)
        status = 0 if all(c.ok for c in checks) else 1
    except BenchError as exc:
        log(f"error: {exc}")
        status = 2
    except (KeyboardInterrupt, Interrupted):
        log("interrupted")
        status = 130
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # cleanup must finish
            signal.signal(s, signal.SIG_IGN)
        try:
            for loop in loops:
                loop.stop()
            for loop in loops:  # each run is bounded: a loop ends within a chunk and its timeouts
                if loop.ident is not None:
                    loop.join(timeout=args.chunk + 40)
        finally:
            problems = dev.down()
        for p in problems:
            log(p)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s, h in old.items():
            signal.signal(s, h)
    if problems and status in (0, 1):
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
