"""softena reset / fault: provoke the device's failures and recoveries on purpose."""

from __future__ import annotations

import argparse

from softena.cli.output import add_json_options, emit_json, examples, wants_json
from softena.control import ctlsock
from softena.device.faults import KINDS
from softena.device.health import ResetReason
from softena.errors import SoftenaError


def register(sub: argparse._SubParsersAction) -> None:
    reset = sub.add_parser("reset", help="reset the device: queues, rings, pools and sockets are rebuilt",
                           epilog=examples("softena reset ena0", "softena reset ena0 --reason MISS_INTERRUPT"))
    reset.add_argument("name", nargs="?", default="ena0", metavar="DEV", help="the device (default ena0)")
    reset.add_argument("--reason", default="USER_TRIGGER", help="an ENA reset reason (default USER_TRIGGER)")
    reset.set_defaults(func=cmd_reset)

    fault = sub.add_parser("fault", help="inject, list or clear device faults", epilog=examples(
        "softena fault inject keep-alive-loss --for 3 ena0  # a reset",
        "softena fault inject tx-completion-stall --queue 1 ena0",
        "softena fault list ena0",
        "softena fault clear ena0                           # lift them all"))
    # The verbs take options anywhere, as their parent does.
    verbs = fault.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=type(fault))
    inject = verbs.add_parser("inject", help=f"make the device fail: {', '.join(KINDS)}", epilog=examples(
        "softena fault inject wire-down ena0 --for 2", "softena fault inject rx-alloc-fail --queue 0 ena0"))
    inject.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    inject.add_argument("name", nargs="?", default="ena0", metavar="DEV", help="the device (default ena0)")
    inject.add_argument("--queue", type=int, help="only this queue (datapath faults)")
    inject.add_argument("--for", dest="seconds", type=float, help="lift it after this many seconds")
    inject.set_defaults(func=cmd_inject)
    clear = verbs.add_parser("clear", help="lift one fault, or all", epilog=examples(
        "softena fault clear ena0", "softena fault clear wire-down ena0"))
    # Both words are optional, so tell them apart by what they are: `clear DEV` and `clear KIND DEV` both work.
    clear.add_argument("words", nargs="*", metavar="[KIND] [DEV]", help=f"a fault kind ({', '.join(KINDS)}) "
                                                                        "and the device (default ena0)")
    clear.set_defaults(func=cmd_clear)
    listing = verbs.add_parser("list", help="faults in force", epilog=examples(
        "softena fault list ena0", "softena fault list -j ena0"))
    listing.add_argument("name", nargs="?", default="ena0", metavar="DEV", help="the device (default ena0)")
    add_json_options(listing)
    listing.set_defaults(func=cmd_list)


def cmd_reset(args: argparse.Namespace) -> int:
    if args.reason not in ResetReason.__members__:
        raise SoftenaError(f"unknown reset reason {args.reason}: one of {', '.join(ResetReason.__members__)}")
    ctlsock.request(args.name, "reset", reason=args.reason)
    print(f"{args.name}: reset requested ({args.reason})")
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    if args.seconds is not None and args.seconds <= 0:
        raise SoftenaError(f"invalid --for {args.seconds}: a positive number of seconds")
    ctlsock.request(args.name, "fault-inject", kind=args.kind, queue=args.queue, seconds=args.seconds)
    print(f"{args.name}: {args.kind} injected" + (f" for {args.seconds} s" if args.seconds else ""))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    kinds = [w for w in args.words if w in KINDS]
    names = [w for w in args.words if w not in KINDS]
    if len(kinds) > 1 or len(names) > 1:
        raise SoftenaError(f"fault clear takes one fault kind and one device, not {' '.join(args.words)}")
    args.kind, args.name = (kinds or [None])[0], (names or ["ena0"])[0]
    cleared = ctlsock.request(args.name, "fault-clear", kind=args.kind)
    print(f"{args.name}: cleared {', '.join(cleared) if cleared else 'nothing'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    faults = ctlsock.request(args.name, "fault-list")
    if wants_json(args):
        emit_json(args, faults)
        return 0
    for f in faults:
        where = "" if f["queue"] is None else f" queue {f['queue']}"
        until = "until cleared" if f["remaining"] is None else f"{f['remaining']} s left"
        print(f"{args.name}: {f['kind']}{where}, {until}")
    if not faults:
        print(f"{args.name}: no faults in force")
    return 0
