"""softena top [DEV]: a live view of each queue of a device, like top for a NIC.

On a terminal: a rich Live view on the alternate screen, refreshed every
--interval seconds, with keys read between refreshes (q quits, s cycles the
sort column, r reverses it). Elsewhere, or with --once / --iterations, it
prints frames as plain text, one after another, as `top -b` does.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
import tty

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from softena.cli.output import examples
from softena.control.state import DeviceState, list_devices, pid_alive
from softena.errors import SoftenaError
from softena.netdev import top
from softena.netdev.top import COLUMNS, SORT_COLUMNS, Column, Frame, FrameRow, Reading

PLAIN_WIDTH = 180  # a pipe has no width; wide enough for every column


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="live per-queue rates, drops, offloads and worker CPU of devices",
                       epilog=examples("softena top ena0                 # live; q quits, s sorts, r reverses",
                                       "softena top --once ena0          # one frame as text, as top -b",
                                       "softena top --iterations 5 --interval 2 > top.log"))
    p.add_argument("name", nargs="?", metavar="DEV", help="the device (default: every running device)")
    p.add_argument("--interval", type=_positive, default=1.0, metavar="S", help="seconds between refreshes")
    p.add_argument("--iterations", type=_count, metavar="N", help="stop after N refreshes")
    p.add_argument("--once", action="store_true", help="print one frame (two reads INTERVAL apart) and exit")
    p.set_defaults(func=cmd_top)


def _positive(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 3600:
        raise argparse.ArgumentTypeError(f"invalid interval {value!r}: seconds, above 0")
    return seconds


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}: a whole number, 1 or more")
    return int(value)


# ---- what to show ------------------------------------------------------------------------


class View:
    """The devices shown, their last reads, and the sort order the keys choose."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.last: dict[str, Reading] = {}
        self.frames: list[Frame] = []
        self.events: dict[str, str] = {}
        self.settled: dict[str, Reading] = {}  # the last read with every queue and pool in place
        self.sort = 0  # index into SORT_COLUMNS
        self.reverse = False

    def devices(self) -> list[str]:
        if self.name:
            return [self.name]
        running = [n for n in list_devices() if (s := DeviceState.load(n)) and pid_alive(s.pid)]
        return sorted(set(running) | set(self.last))  # one that went stays, shown as gone

    def refresh(self) -> None:
        frames = []
        for dev in self.devices():
            cur = top.read(dev)
            f = top.frame(self.last.get(dev), cur, since=self.settled.get(dev))
            if top.settled(cur):
                self.settled[dev] = cur
            if f.event:
                self.events[dev] = f"{f.event} at {time.strftime('%H:%M:%S')}"
            f.event = self.events.get(dev)
            frames.append(f)
            self.last[dev] = cur  # after a failed read, rates start again from the next good one
        self.frames = frames

    @property
    def sort_column(self) -> Column:
        return SORT_COLUMNS[self.sort]

    def key(self, ch: str) -> bool:
        """Act on a key; False when it asks to quit."""
        if ch == "q":
            return False
        if ch == "s":
            self.sort = (self.sort + 1) % len(SORT_COLUMNS)
            self.reverse = False
        elif ch == "r":
            self.reverse = not self.reverse
        return True


# ---- how it looks ------------------------------------------------------------------------


def _fmt(col: Column, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) or col.how == "id":
        return str(value)
    if col.how == "cpu":
        return f"{value:.{col.digits}f}"
    if col.digits:
        return f"{value:,.{col.digits}f}"
    return f"{round(value):,}"


def _arrow(view: View, utf8: bool) -> str:
    down = view.sort_column.sort_descending != view.reverse
    return ("▼" if down else "▲") if utf8 else ("v" if down else "^")


def _queues(f: Frame) -> str:
    return f"{len(f.rows)} queue{'s' if len(f.rows) != 1 else ''}"


def _table(f: Frame, view: View, utf8: bool, plain: bool) -> Table:
    what = f.state if f.interval is None or f.state != "up" else f"up, {_queues(f)}, {f.interval:.2f} s"
    if f.state == "up" and f.interval is None:
        what = f"up, {_queues(f)}, rates from the next read"
    title = f"{f.dev}: {what}" + (f" ({f.event})" if f.event else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD if plain else box.ROUNDED,
                  title_style=None if f.state == "up" else "bold red")
    for col in COLUMNS:
        header = col.title + (" " + _arrow(view, utf8) if col is view.sort_column and not plain else "")
        table.add_column(header, justify="left" if col.attr == "queue-id" else "right", no_wrap=True)
    rows: list[FrameRow] = top.sort_rows(f.rows, view.sort_column, view.reverse)
    for row in rows:
        table.add_row(*(_fmt(c, v) for c, v in zip(COLUMNS, row.cells)),
                      style="yellow" if row.restarted else None)
    if f.total:
        table.add_row(*(_fmt(c, v) for c, v in zip(COLUMNS, f.total.cells)), style="bold", end_section=True)
    return table


def footer(view: View, utf8: bool, keys: bool = True) -> Text:
    lines = []
    if view.frames:
        lines += ["device row: device scope, queues that no longer exist included; its tid and CPU % are the whole "
                  "process's; inflight is a gauge, never summed",
                  "-: not known this interval (the first read, or the row's counters restarted: yellow)"]
    if keys:  # a pipe cannot take keys: the line would promise what it cannot do
        order = " -> ".join(c.title for c in SORT_COLUMNS)
        lines.append(f"sort: {view.sort_column.title} {_arrow(view, utf8)}   "
                     f"keys: q quit, s sort ({order}), r reverse")
    return Text("\n".join(lines), style="dim")


def render(view: View, utf8: bool, plain: bool = False) -> Group:
    """The whole screen: a table per device, then the footer. PLAIN: for a pipe, no box lines, no keys."""
    if not view.frames:
        body = [Text("no softena devices")]
    else:
        body = [_table(f, view, utf8, plain) for f in view.frames]
    return Group(*body, footer(view, utf8, keys=not plain))


# ---- the terminal ------------------------------------------------------------------------


class Keys:
    """Keys from a cbreak tty, read without blocking the refresh; none when stdin is not a tty."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin and sys.stdin.isatty() else None
        self.saved = None

    def __enter__(self) -> Keys:
        if self.fd is not None:
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def wait(self, timeout: float) -> str:
        """Keys typed within TIMEOUT seconds ("" when none came by then)."""
        timeout = max(0.0, timeout)
        if self.fd is None:
            time.sleep(timeout)
            return ""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 64).decode(errors="ignore") if ready else ""


def cmd_top(args: argparse.Namespace) -> int:
    view = View(args.name)
    if args.name:
        state = DeviceState.load(args.name)
        if state is None or not pid_alive(state.pid):
            raise SoftenaError(f"{args.name}: no such device (is it up?)")
    iterations = 1 if args.once else args.iterations
    if args.once or not sys.stdout.isatty():
        return _plain(view, args.interval, iterations)
    return _live(view, args.interval, iterations)


def _plain(view: View, interval: float, iterations: int | None) -> int:
    console = Console(width=max(PLAIN_WIDTH, Console().width), highlight=False)
    utf8 = console.encoding.lower().startswith("utf")
    view.refresh()
    n = 0
    while iterations is None or n < iterations:  # a reader that leaves (| head) is main()'s to handle
        time.sleep(interval)
        view.refresh()
        console.print(render(view, utf8, plain=True))
        sys.stdout.flush()
        n += 1
    return 0


def _live(view: View, interval: float, iterations: int | None) -> int:
    console = Console(highlight=False)
    utf8 = console.encoding.lower().startswith("utf")
    view.refresh()
    n = 0
    with Keys() as keys, Live(render(view, utf8), console=console, screen=True, auto_refresh=False) as live:
        deadline = time.monotonic() + interval
        while iterations is None or n < iterations:
            typed = keys.wait(deadline - time.monotonic())
            if typed:
                for ch in typed:
                    if not view.key(ch):
                        return 0
                live.update(render(view, utf8), refresh=True)
                continue
            view.refresh()
            n += 1
            live.update(render(view, utf8), refresh=True)
            deadline = max(deadline + interval, time.monotonic())
    return 0
