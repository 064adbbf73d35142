"""softena trace [DEV]: what the kernel drops on a device's tap and wire, and why.

The drop probes (softena/trace) count skb:kfree_skb by drop reason and the
xdp tracepoints' exceptions and redirect errors, on the device's interfaces
only. On a terminal: a rate table refreshed every --interval; with -j, one
sample over --interval as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from softena.cli import output
from softena.errors import SoftenaError
from softena.trace import checks, devices
from softena.trace.tracer import DropKey, Interface, Tracer

WIDTH = 80


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trace", help="live kernel drops on a device's tap and wire, with the kernel's reasons",
                       description="Count what the kernel drops on a device's tap and wire (skb:kfree_skb,\n"
                                   "with the running kernel's drop reasons) and its XDP errors; -j prints\n"
                                   "one sample over --interval and exits.",
                       epilog=output.examples("softena trace", "softena trace ena0 --duration 30",
                                              "softena trace ena0 -j -p --interval 5"))
    p.add_argument("name", nargs="?", metavar="DEV", help="the device (default: every running device)")
    output.add_json_options(p)
    p.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="seconds per refresh or sample")
    p.add_argument("--duration", type=_seconds, metavar="S", help="stop after S seconds (default: at Ctrl-C)")
    p.set_defaults(func=cmd_trace)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 86400:
        raise argparse.ArgumentTypeError(f"invalid seconds {value!r}: a number above 0")
    return seconds


def cmd_trace(args: argparse.Namespace) -> int:
    try:
        bcc = checks.prerequisites()  # before anything is compiled or asked of a device
        names = [args.name] if args.name else devices.running()
        if not names:
            raise SoftenaError("no softena devices running")
        watched = [iface for name in names for iface in devices.interfaces(name)]
        with Tracer(bcc, watched) as tracer:
            if output.wants_json(args):
                return sample(tracer, watched, args)
            return live(tracer, watched, args)
    except SoftenaError as exc:
        print(f"softena trace: {exc}", file=sys.stderr)
        return 1


# ---- one sample as JSON -------------------------------------------------------------------


def sample(tracer: Tracer, watched: list[Interface], args: argparse.Namespace) -> int:
    """Count for --interval from the moment the probes are attached, then print."""
    start = time.monotonic()
    time.sleep(args.interval)
    counts = tracer.read()
    seconds = time.monotonic() - start
    out = {"interval": round(seconds, 3),
           "interfaces": [{"dev": i.dev, "ifname": i.ifname, "ifindex": i.ifindex, "where": i.where} for i in watched],
           "drops": [{"dev": k.iface.dev, "ifname": k.iface.ifname, "where": k.iface.where, "event": k.event,
                      "reason": k.reason, "count": n, "rate": round(n / seconds, 1)}
                     for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]}
    output.emit_json(args, out)
    return 0


# ---- the live table ----------------------------------------------------------------------


def table(watched: list[Interface], rates: dict[DropKey, float], totals: dict[DropKey, int],
          seconds: float) -> Table:
    """Drops per second over the last refresh and in all since the start, busiest first."""
    title = ", ".join(f"{i.ifname} ({i.where})" for i in watched)
    t = Table(title=f"softena trace: {title}", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("interface", max_width=15, no_wrap=True)
    t.add_column("where")
    t.add_column("reason", max_width=32, overflow="fold")
    t.add_column("drops/s", justify="right")
    t.add_column("total", justify="right")
    for key in sorted(totals, key=lambda k: (-rates.get(k, 0.0), -totals[k], k.iface.ifname, k.reason)):
        t.add_row(key.iface.ifname, key.iface.where, label(key), f"{rates.get(key, 0.0):.1f}", str(totals[key]))
    if not totals:
        t.caption = f"no drops in {seconds:.0f} s"
    return t


def label(key: DropKey) -> str:
    """A drop reason alone; the tracepoint too for the XDP ones."""
    return key.reason if key.event == "kfree_skb" else f"{key.event}:{key.reason}"


def live(tracer: Tracer, watched: list[Interface], args: argparse.Namespace) -> int:
    start = last_time = time.monotonic()
    last: dict[DropKey, int] = {}
    console = Console() if sys.stdout.isatty() else Console(width=WIDTH)  # a pipe has no width
    view = Live(table(watched, {}, {}, 0), console=console, auto_refresh=False) if console.is_terminal else None
    try:
        if view:
            view.start()
        while args.duration is None or time.monotonic() - start < args.duration:
            wait = args.interval if args.duration is None else min(args.interval,
                                                                   start + args.duration - time.monotonic())
            time.sleep(max(wait, 0))
            now, totals = time.monotonic(), tracer.read()
            rates = {k: (n - last.get(k, 0)) / (now - last_time) for k, n in totals.items()}
            frame = table(watched, rates, totals, now - start)
            if view:
                view.update(frame, refresh=True)
            else:
                console.print(frame)
            last, last_time = totals, now
    except KeyboardInterrupt:
        pass
    finally:
        if view:
            view.stop()
    return 0
