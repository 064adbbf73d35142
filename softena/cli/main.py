"""softena: the command line. One module per command group, dispatched from here."""

from __future__ import annotations

import argparse
import sys

from softena.errors import SoftenaError


def build_parser() -> argparse.ArgumentParser:
    from softena.cli import ethtool, health, lifecycle, show

    parser = argparse.ArgumentParser(
        prog="softena", description="softena: a software ENA-like multiqueue network adapter")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    lifecycle.register(sub)
    show.register(sub)
    ethtool.register(sub)
    health.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `softena` command."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["ethtool"]:
            from softena.cli import ethtool

            return ethtool.run(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except SoftenaError as exc:
        print(f"softena: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
