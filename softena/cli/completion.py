"""Bash completion for softena, from the parsers --help prints: `python3 -m softena.cli.completion > softena`.

shtab turns the parsers into a static script, so a <TAB> runs no Python
(argcomplete would start softena on every one). Every command build_parser()
has is in it, a new one too; what shtab cannot know from the parsers is added
here: the running devices where a command takes DEV, ynl's operations.
"""

from __future__ import annotations

import argparse
import sys

import shtab

from softena.cli.manpage import commands
from softena.control.state import RUN_DIR

DEVICES = "_softena_devices"

# Running devices: one state file each in the run directory, NAME.json.
PREAMBLE = f"""
{DEVICES}() {{
  local f names=()
  for f in {RUN_DIR}/*.json; do
    [ -e "$f" ] || continue
    f=${{f##*/}}
    names+=("${{f%.json}}")
  done
  compgen -W "${{names[*]}}" -- "$1"
}}
"""


def _takes_device(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    """DEV arguments and options, and a command's NAME, except up's: that one names a new device."""
    if action.metavar == "DEV":
        return True
    return not action.option_strings and action.dest == "name" and parser.prog != "softena up"


def _ynl_choices(parser: argparse.ArgumentParser) -> None:
    """ynl's operations and groups as choices, for completion only (ynl itself refuses unknown ones)."""
    from softena.netdev.spec import NETDEV

    choices = {"do": [op.name for op in NETDEV.ops if op.do], "dump": [op.name for op in NETDEV.ops if op.dump],
               "ntf": sorted({op.group for op in NETDEV.ops if op.group}), "family": [NETDEV.name]}
    for action in parser._actions:
        if action.dest in choices:
            action.choices = choices[action.dest]


def script(parser: argparse.ArgumentParser | None = None) -> str:
    """The bash completion script for PARSER (default: softena's)."""
    if parser is None:
        from softena.cli.main import build_parser

        parser = build_parser()
    for full, _, sub in commands(parser):
        for action in sub._actions:
            if _takes_device(sub, action):
                action.complete = {"bash": DEVICES}  # type: ignore[attr-defined]  # shtab's way
        if full == "ynl":
            _ynl_choices(sub)
    return shtab.complete(parser, "bash", preamble=PREAMBLE)


if __name__ == "__main__":
    sys.stdout.write(script())
