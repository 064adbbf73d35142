"""softena: the command line. One module per command group, dispatched from here."""

from __future__ import annotations

import argparse
import os
import sys

from softena import __version__
from softena.cli import output
from softena.errors import SoftenaError, UsageError


class IntermixedParser(argparse.ArgumentParser):
    """A command's parser that takes options anywhere, as ip and ethtool users type them.

    argparse fills positionals from the first run of words it sees, so
    `fault inject KIND --queue 0 DEV` would leave DEV over; the intermixed
    parse collects the positionals from everywhere. A parser that has
    subcommands of its own keeps argparse's usual parse (intermixed parsing
    cannot take subparsers).
    """

    _intermixed = False

    def __init__(self, *args, **kwargs) -> None:
        # Epilogs hold examples, one command a line: keep their line breaks.
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or self._intermixed:
            return super().parse_known_args(args, namespace)
        self._intermixed = True  # parse_known_intermixed_args calls back into this method
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = False


JSON_FLAGS = ("-j", "--json", "-p", "--pretty")


def build_parser() -> argparse.ArgumentParser:
    from softena.cli import ethtool, health, lifecycle, show, top, trace, ynl

    parser = argparse.ArgumentParser(
        prog="softena", description="softena: a software ENA-like multiqueue network adapter",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=output.examples(
            "softena up                 # ena0 with a lab peer namespace ena0-peer",
            "softena -j -p status       # every device, as indented JSON",
            "softena stats ena0         # per-queue counters",
            "softena ethtool -L ena0 combined 2",
            "softena COMMAND --help     # a command's options and examples"))
    parser.add_argument("-V", "--version", action="version", version=f"softena {__version__}")
    # Before the command, as `ip -j -p link`; each printing command takes them after it too.
    output.add_json_options(parser, suppress_default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=IntermixedParser)
    lifecycle.register(sub)
    show.register(sub)
    ethtool.register(sub)
    health.register(sub)
    ynl.register(sub)
    top.register(sub)
    trace.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `softena` command."""
    argv = sys.argv[1:] if argv is None else argv
    # ethtool's and ynl's option letters are not argparse's: their words go to
    # their own parsers, after any -j/-p given before the command.
    lead = 0
    while lead < len(argv) and argv[lead] in JSON_FLAGS:
        lead += 1
    command, rest = argv[lead:lead + 1], argv[lead + 1:]
    try:
        if command == ["ethtool"]:
            from softena.cli import ethtool

            return ethtool.run(rest, as_json=lead > 0, pretty=any(a in ("-p", "--pretty") for a in argv[:lead]))
        if command == ["ynl"]:
            from softena.cli import ynl

            return ynl.run(rest + (["--output-json"] if lead else []))
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except UsageError as exc:
        print(f"softena: {exc}", file=sys.stderr)
        return 2
    except SoftenaError as exc:
        print(f"softena: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`softena ethtool -S ena0 | head`): quietly, as
        # coreutils do; point stdout at /dev/null so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
