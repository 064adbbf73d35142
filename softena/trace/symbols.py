"""Names the running kernel gives to numbers in its tracepoints.

The drop reasons of skb:kfree_skb and the XDP actions of the xdp events are
enums whose numbering changes between kernel versions; each tracepoint's
format file (tracefs) spells the running kernel's table in its print format
as __print_symbolic(REC->field, { 2, "NOT_SPECIFIED" }, ...).
"""

from __future__ import annotations

import os
import re

from softena.errors import SoftenaError

TRACEFS = "/sys/kernel/tracing"

_PAIR = re.compile(r'\{\s*(-?\d+)\s*,\s*"([^"]*)"\s*\}')


def event_dir(event: str, tracefs: str = TRACEFS) -> str:
    """The tracefs directory of EVENT ("skb:kfree_skb")."""
    system, name = event.split(":")
    return os.path.join(tracefs, "events", system, name)


def has_event(event: str, tracefs: str = TRACEFS) -> bool:
    return os.path.isdir(event_dir(event, tracefs))


def symbols(event: str, field: str, tracefs: str = TRACEFS) -> dict[int, str]:
    """The number -> name table the print format of EVENT uses for FIELD."""
    path = os.path.join(event_dir(event, tracefs), "format")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise SoftenaError(f"cannot read {path}: {exc.strerror}") from exc
    start = text.find(f"__print_symbolic(REC->{field},")
    if start < 0:
        raise SoftenaError(f"{path}: no symbolic names for {field}")
    # The table runs to the parenthesis that closes __print_symbolic; names hold no parentheses.
    body = text[start:text.index(")", start + len("__print_symbolic("))]
    return {int(num): name for num, name in _PAIR.findall(body)}
