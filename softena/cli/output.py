"""What every command that prints shares: -j/-p as iproute2 spells them, examples, 80-column tables."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

JSON_HELP = "JSON output (one line; with -p, indented)"
PRETTY_HELP = "indented JSON, as ip -j -p (implies -j)"
WIDE = 1 << 16  # wider than any table: its natural width is measured against this


def add_json_options(parser: argparse.ArgumentParser, suppress_default: bool = True) -> None:
    """-j/--json and -p/--pretty on PARSER.

    On a command they default to SUPPRESS, so that `softena -j status`
    (the top-level options, as `ip -j link`) is not overwritten by the
    command's own unset defaults.
    """
    default = argparse.SUPPRESS if suppress_default else False
    parser.add_argument("-j", "--json", action="store_true", default=default, help=JSON_HELP)
    parser.add_argument("-p", "--pretty", action="store_true", default=default, help=PRETTY_HELP)


def wants_json(args: argparse.Namespace) -> bool:
    """Whether -j or -p was given, on the command or before it."""
    return bool(getattr(args, "json", False) or getattr(args, "pretty", False))


def print_json(value: Any, pretty: bool) -> None:
    """VALUE as ip prints JSON: one line, or indented with -p."""
    if pretty:
        print(json.dumps(value, indent=2))
    else:
        print(json.dumps(value, separators=(",", ":")))


def emit_json(args: argparse.Namespace, value: Any) -> None:
    print_json(value, bool(getattr(args, "pretty", False)))


def examples(*lines: str) -> str:
    """An --help epilog: 'examples:' and one indented command line each (the man page reads it back)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def table(title: str, headers: list[str] | tuple[str, ...], first_left: bool = True) -> Table:
    """A table as ip and ethtool print them: no box, one space between columns.

    Each column is at least as wide as its header, so a narrow terminal
    wraps values rather than folding or cutting a column's name.
    """
    t = Table(title=title, box=None, pad_edge=False, padding=(0, 1),
              title_justify="left")
    for i, header in enumerate(headers):
        t.add_column(header, justify="left" if i == 0 and first_left else "right", min_width=len(header))
    return t



def print_table(console: Console, t: Table) -> None:
    """T on CONSOLE, every word whole: text cells wrap to fit the width, but a table whose names and
    numbers alone are wider than the console (rich would cut them) is printed at its full width, as ip does."""
    measured = Measurement.get(console, console.options.update_width(WIDE), t)
    if measured.minimum <= console.width:
        console.print(t)
        return
    width = console.width
    console.width = measured.maximum
    try:
        console.print(t)
    finally:
        console.width = width
