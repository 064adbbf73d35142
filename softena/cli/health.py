"""softena reset / fault: provoke the device's failures and recoveries on purpose."""

from __future__ import annotations

import argparse
import json

from softena.control import ctlsock
from softena.device.faults import KINDS
from softena.device.health import ResetReason
from softena.errors import SoftenaError


def register(sub: argparse._SubParsersAction) -> None:
    reset = sub.add_parser("reset", help="reset the device: queues, rings, pools and sockets are rebuilt")
    reset.add_argument("name", nargs="?", default="ena0")
    reset.add_argument("--reason", default="USER_TRIGGER", help="an ENA reset reason (default USER_TRIGGER)")
    reset.set_defaults(func=cmd_reset)

    fault = sub.add_parser("fault", help="inject, list or clear device faults")
    # The verbs take options anywhere, as their parent does.
    verbs = fault.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=type(fault))
    inject = verbs.add_parser("inject", help=f"make the device fail: {', '.join(KINDS)}")
    inject.add_argument("kind", choices=KINDS)
    inject.add_argument("name", nargs="?", default="ena0")
    inject.add_argument("--queue", type=int, help="only this queue (datapath faults)")
    inject.add_argument("--for", dest="seconds", type=float, help="lift it after this many seconds")
    inject.set_defaults(func=cmd_inject)
    clear = verbs.add_parser("clear", help="lift one fault, or all")
    # Both words are optional, so tell them apart by what they are: `clear DEV` and `clear KIND DEV` both work.
    clear.add_argument("words", nargs="*", metavar="[KIND] [DEV]", help=f"a fault kind ({', '.join(KINDS)}) "
                                                                        "and the device (default ena0)")
    clear.set_defaults(func=cmd_clear)
    listing = verbs.add_parser("list", help="faults in force")
    listing.add_argument("name", nargs="?", default="ena0")
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
    print(json.dumps(ctlsock.request(args.name, "fault-list"), indent=2))
    return 0
