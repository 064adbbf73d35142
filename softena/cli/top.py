"""softena top [DEV]: a live view of each queue of a device, like top for a NIC.

On a terminal: a rich Live view on the alternate screen, refreshed every
--interval seconds, with keys read between refreshes (q quits, s cycles the
sort column, r reverses it). Elsewhere, or with --once / --iterations, it
prints frames as plain text, one after another, as `top -b` does. With -j,
one sample's numbers as JSON, as `ip -j -s link` gives them.

Both views show the usual columns, which fit 80 columns with their names
whole; --all shows every column (plain text then as wide as it needs).
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

from softena.cli.output import add_json_options, emit_json, examples, print_table, wants_json
from softena.control.state import DeviceState, list_devices, pid_alive
from softena.errors import SoftenaError, UsageError
from softena.netdev import top
from softena.netdev.top import COLUMNS, SORT_COLUMNS, USUAL_COLUMNS, Column, Frame, FrameRow, Reading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="live per-queue rates, drops, offloads and worker CPU of devices",
                       epilog=examples("softena top ena0                 # live; q quits, s sorts, r reverses",
                                       "softena top --once ena0          # one frame as text, as top -b",
                                       "softena top --once --all ena0    # every column, wide",
                                       "softena top -j -p ena0           # one sample of every column, JSON",
                                       "softena top --iterations 5 --interval 2 > top.log"))
    p.add_argument("name", nargs="?", metavar="DEV", help="the device (default: every running device)")
    p.add_argument("--interval", type=_positive, default=1.0, metavar="S", help="seconds between refreshes")
    p.add_argument("--iterations", type=_count, metavar="N", help="stop after N refreshes")
    p.add_argument("--once", action="store_true", help="print one frame (two reads INTERVAL apart) and exit")
    p.add_argument("-a", "--all", action="store_true", help="every column, not the usual ones (wide)")
    add_json_options(p)
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

    def __init__(self, name: str | None, columns: tuple[Column, ...] = USUAL_COLUMNS) -> None:
        self.name = name
        self.columns = columns  # those shown; frames hold every column
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
    value *= col.scale
    if col.digits:
        return f"{value:,.{col.digits}f}"
    return f"{round(value):,}"


def _arrow(view: View, utf8: bool) -> str:
    down = view.sort_column.sort_descending != view.reverse
    return ("▼" if down else "▲") if utf8 else ("v" if down else "^")


def _queues(f: Frame) -> str:
    return f"{len(f.rows)} queue{'s' if len(f.rows) != 1 else ''}"


def _header(col: Column, view: View, utf8: bool, plain: bool) -> str:
    return col.title + (" " + _arrow(view, utf8) if col is view.sort_column and not plain else "")


def _cells(row: FrameRow, columns: tuple[Column, ...]) -> list[str]:
    return [_fmt(c, row.cells[COLUMNS.index(c)]) for c in columns]


def _widths(view: View, utf8: bool, plain: bool) -> dict[Column, int]:
    """Each shown column's width: its name's, or its widest value's."""
    rows = [r for f in view.frames for r in (*f.rows, *([f.total] if f.total else []))]
    return {c: max(len(_header(c, view, utf8, plain)), *(len(_fmt(c, r.cells[COLUMNS.index(c)])) for r in rows))
            for c in view.columns}


def bands(view: View, utf8: bool, width: int) -> list[tuple[Column, ...]]:
    """The shown columns in bands that fit WIDTH, each led by the queue: on a terminal narrower than
    the table the columns wrap to a second table below, rather than rich cutting their names."""
    widths = _widths(view, utf8, plain=False)
    lead, *rest = view.columns
    out, band, used = [], [lead], widths[lead]
    for col in rest:
        if used + 1 + widths[col] > width and len(band) > 1:
            out.append(tuple(band))
            band, used = [lead], widths[lead]
        band.append(col)
        used += 1 + widths[col]
    return [*out, tuple(band)]


def _table(f: Frame, view: View, utf8: bool, plain: bool, columns: tuple[Column, ...], titled: bool = True) -> Table:
    what = f.state if f.interval is None or f.state != "up" else f"up, {_queues(f)}, {f.interval:.2f} s"
    if f.state == "up" and f.interval is None:
        what = f"up, {_queues(f)}, rates from the next read"
    title = f"{f.dev}: {what}" + (f" ({f.event})" if f.event else "") if titled else None
    # One space between columns, as ip and ethtool print them: the usual columns need it to fit 80.
    # The live view rules its header off; plain text is for grep and awk: names, then rows.
    if plain:
        table = Table(title=title, title_justify="left", box=None, padding=(0, 0, 0, 1), pad_edge=False)
    else:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0,
                      title_style=None if f.state == "up" else "bold red")
    for col in columns:
        header = _header(col, view, utf8, plain)
        table.add_column(header, justify="left" if col.attr == "queue-id" else "right", no_wrap=True,
                         min_width=len(header))
    rows: list[FrameRow] = top.sort_rows(f.rows, view.sort_column, view.reverse)
    for row in rows:
        table.add_row(*_cells(row, columns), style="yellow" if row.restarted else None)
    if f.total:
        table.add_row(*_cells(f.total, columns), style="bold", end_section=True)
    return table


def footer(view: View, utf8: bool, keys: bool = True) -> Text:
    lines = []
    if view.frames:
        shown = {c.title for c in view.columns}
        whole = [t for t in ("tid", "CPU %") if t in shown]
        notes = ["device row: device scope, queues that no longer exist included"]
        if whole:
            notes.append(f"its {' and '.join(whole)} {'are' if len(whole) > 1 else 'is'} the whole process's")
        if "inflight" in shown:
            notes.append("inflight is a gauge, never summed")
        lines += ["; ".join(notes),
                  "-: not known this interval (the first read, or the row's counters restarted: yellow)"]
    if keys:  # a pipe cannot take keys: the line would promise what it cannot do
        order = " -> ".join(c.title for c in SORT_COLUMNS)
        lines.append(f"sort: {view.sort_column.title} {_arrow(view, utf8)}   "
                     f"keys: q quit, s sort ({order}), r reverse")
    return Text("\n".join(lines), style="dim")


def tables(view: View, utf8: bool, plain: bool = False, width: int | None = None) -> list[Table]:
    """A table per device (PLAIN: for a pipe, no rule, no arrow); with WIDTH, in bands that fit it."""
    out = []
    for f in view.frames:
        for i, columns in enumerate(bands(view, utf8, width) if width else [view.columns]):
            out.append(_table(f, view, utf8, plain, columns, titled=i == 0))
    return out


def render(view: View, utf8: bool, width: int) -> Group:
    """The live screen, WIDTH columns wide: a table per device, then the footer."""
    body = tables(view, utf8, width=width) if view.frames else [Text("no softena devices")]
    return Group(*body, footer(view, utf8))


# ---- the terminal ------------------------------------------------------------------------


class Keys:
    """Keys from a cbreak tty, read without blocking the refresh; none when stdin is not a tty."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin and sys.stdin.isatty() else None
        self.saved: list | None = None

    def __enter__(self) -> Keys:
        if self.fd is not None:
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None and self.saved is not None:
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
    as_json = wants_json(args)
    if as_json and args.iterations:
        raise UsageError("top: -j prints one sample (every column); --iterations is for the text view")
    view = View(args.name, COLUMNS if args.all else USUAL_COLUMNS)
    if args.name:
        state = DeviceState.load(args.name)
        if state is None or not pid_alive(state.pid):
            raise SoftenaError(f"{args.name}: no such device (is it up?)")
    if as_json:
        return _json(view, args)
    iterations = 1 if args.once else args.iterations
    if args.once or not sys.stdout.isatty():
        return _plain(view, args.interval, iterations)
    return _live(view, args.interval, iterations)


def _json(view: View, args: argparse.Namespace) -> int:
    """One sample: two reads INTERVAL apart, every column's numbers, a list of devices as ip -j gives."""
    view.refresh()
    time.sleep(args.interval)
    view.refresh()
    emit_json(args, [top.as_json(f) for f in view.frames])
    return 0


def _plain(view: View, interval: float, iterations: int | None) -> int:
    console = Console(highlight=False)  # a pipe's width is COLUMNS, or 80; print_table widens for --all
    utf8 = console.encoding.lower().startswith("utf")
    view.refresh()
    n = 0
    while iterations is None or n < iterations:  # a reader that leaves (| head) is main()'s to handle
        time.sleep(interval)
        view.refresh()
        if not view.frames:
            console.print("no softena devices")
        for t in tables(view, utf8, plain=True):
            print_table(console, t)
            console.print()  # a blank line ends each table, as ip -s ends each device
        console.print(footer(view, utf8, keys=False))
        sys.stdout.flush()
        n += 1
    return 0


def _live(view: View, interval: float, iterations: int | None) -> int:
    console = Console(highlight=False)
    utf8 = console.encoding.lower().startswith("utf")
    view.refresh()
    n = 0
    with Keys() as keys, Live(render(view, utf8, console.width), console=console, screen=True,
                              auto_refresh=False) as live:
        deadline = time.monotonic() + interval
        while iterations is None or n < iterations:
            typed = keys.wait(deadline - time.monotonic())
            if typed:
                for ch in typed:
                    if not view.key(ch):
                        return 0
                live.update(render(view, utf8, console.width), refresh=True)
                continue
            view.refresh()
            n += 1
            live.update(render(view, utf8, console.width), refresh=True)
            deadline = max(deadline + interval, time.monotonic())
    return 0
