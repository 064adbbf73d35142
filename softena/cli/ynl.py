"""`softena ynl`: the kernel's ynl command line for the netdev family, softena's devices included.

Takes ynl's options (tools/net/ynl/pyynl/cli.py) and prints what ynl prints,
errors included, so scripts written for ynl run unchanged. softena's
devices answer for themselves and the kernel for everything else (see
softena.netdev.ynl). Other families go to a system ynl when one is
installed, and are refused otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from softena.cli.output import examples
from softena.netdev.printer import format_error, format_reply
from softena.netdev.spec import NETDEV

USAGE = ("softena ynl --family netdev (--do OP | --dump OP | --list-ops |\n"
         "       --list-msgs | --multi OP JSON ...) [--json JSON] [--output-json]\n"
         "       [--subscribe GROUP [--sleep N]]")

# netlink request flags ynl's --replace, --excl, --create and --append add
_NLM_F = {"replace": 0x100, "excl": 0x200, "create": 0x400, "append": 0x800}


DESCRIPTION = """The kernel's ynl command line (tools/net/ynl) for the netdev family: softena's
devices answer for themselves, the kernel for every other device. It keeps
ynl's own options and output, so scripts written for ynl run unchanged:
--json is the request's attributes, --output-json prints replies as JSON
(softena -j ynl ... adds it)."""

EXAMPLES = examples(
    "softena ynl --family netdev --dump qstats-get    # device scope",
    "softena ynl --family netdev --dump napi-get --output-json",
    "softena ynl --family netdev --dump page-pool-get",
    "softena ynl --family netdev --subscribe page-pool --sleep 10",
    "softena ynl --family netdev --list-ops")


def register(sub: argparse._SubParsersAction) -> None:
    # main() hands `softena ynl ...` to run(), so ynl's options reach ynl's
    # own parser untouched; the parser here is the same one, for --help, the
    # man page and completion.
    add_arguments(sub.add_parser("ynl", help="ynl for the netdev family, softena devices included "
                                             "(ynl's arguments and output)", usage=USAGE,
                                 description=DESCRIPTION, epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="softena ynl", usage=USAGE, description=DESCRIPTION, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """ynl's options (tools/net/ynl/pyynl/cli.py) on P."""
    spec = p.add_mutually_exclusive_group(required=True)
    spec.add_argument("--family", help="name of the netlink FAMILY")
    spec.add_argument("--list-families", action="store_true", help="list the families this ynl speaks")
    spec.add_argument("--spec", help="a SPEC file; only netdev.yaml is understood")
    p.add_argument("--schema", help="ignored: the family's spec is built in")
    p.add_argument("--no-schema", action="store_true", help="ignored: the family's spec is built in")
    p.add_argument("--json", dest="json_text", metavar="JSON", help="the request's attributes, as JSON")
    ops = p.add_mutually_exclusive_group()
    ops.add_argument("--do", metavar="DO-OPERATION", help="a do request")
    ops.add_argument("--multi", nargs=2, action="append", metavar=("DO-OPERATION", "JSON_TEXT"),
                     help="several do requests in one message batch")
    ops.add_argument("--dump", metavar="DUMP-OPERATION", help="a dump request")
    ops.add_argument("--list-ops", action="store_true", help="the family's operations")
    ops.add_argument("--list-msgs", action="store_true", help="the family's operations and notifications")
    p.add_argument("--duration", dest="duration", type=int, help="when subscribed, watch for DURATION seconds")
    p.add_argument("--sleep", dest="duration", type=int, help="alias for duration")
    p.add_argument("--subscribe", dest="ntf", metavar="GROUP", help="print the multicast GROUP's notifications")
    for name in _NLM_F:
        p.add_argument(f"--{name}", dest="flags", action="append_const", const=_NLM_F[name],
                       help=f"set NLM_F_{name.upper()} on do requests")
    p.add_argument("--process-unknown", action=argparse.BooleanOptionalAction, help="ignored")
    p.add_argument("--output-json", action="store_true", help="replies as JSON, one line each")
    p.add_argument("--dbg-small-recv", default=0, const=4000, nargs="?", type=int, help="ignored")


def _modes(op) -> str:
    if op.group is not None:
        return "notify"
    return ", ".join(m for m, has in (("do", op.do), ("dump", op.dump)) if has)


def _other_family(argv: list[str], family: str) -> int:
    system_ynl = shutil.which("ynl")
    if system_ynl:
        os.execv(system_ynl, [system_ynl, *argv])  # not ours to answer: the system's ynl does, unchanged
    print(f"softena ynl: family '{family}' is not supported: softena ynl speaks netdev only, and no system ynl "
          "is installed to pass it to", file=sys.stderr)
    return 1


def _loads(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def _refuse(message: str) -> int:
    print(f"softena ynl: {message}", file=sys.stderr)
    return 1


def run(argv: list[str]) -> int:
    """`softena ynl ARGV`, as `ynl ARGV` with the netdev family."""
    from softena.netdev import ynl

    args = parser().parse_args(argv)
    if args.list_families:
        print(NETDEV.name)
        return 0
    family = args.family or os.path.basename(args.spec).removesuffix(".yaml")
    if family != NETDEV.name:
        return _other_family(argv, family)
    out = lambda reply: print(format_reply(reply, args.output_json), flush=True)  # noqa: E731
    try:
        attrs = _loads(args.json_text, "--json") if args.json_text else {}
        multi = [(op, _loads(text, f"--multi {op}")) for op, text in args.multi or ()]
    except ValueError as exc:
        return _refuse(str(exc))
    flags = sum(set(args.flags or ()))

    netdev = ynl.Netdev() if args.do or args.dump or args.multi or args.ntf else None
    try:
        if args.list_ops or args.list_msgs:
            for op in NETDEV.ops:
                if args.list_msgs or op.group is None:
                    print(op.name, " [", _modes(op), "]")
        if netdev is None:  # listing only
            return 0
        if args.ntf:
            netdev.subscribe(args.ntf)
        if args.do:
            out(netdev.do(args.do, attrs, flags))
        if args.dump:
            out(netdev.dump(args.dump, attrs))
        if multi:
            out([netdev.do(op, op_attrs, flags) for op, op_attrs in multi])
        if args.ntf:
            for ntf in netdev.notifications(args.duration):
                out(ntf)
    except ynl.NlError as err:
        print(format_error(err.code, err.nl_len, err.nl_flags, err.extack, err.nl_type))
        return 1
    except ynl.SpecError as exc:
        return _refuse(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        if netdev is not None:
            netdev.close()
    return 0
