"""Printing netdev-family answers and errors the way the kernel's ynl prints them.

ynl prints a reply with pprint.PrettyPrinter().pprint (dicts sorted by key,
flag sets as Python sets), or, with --output-json, as one line of JSON in
the kernel's attribute order (sets as lists, bytes as hex). A netlink error
is "Netlink error: <strerror>" followed by the error message's header and
extack, as ynl (Linux 6.18 and before) formats its NlMsg.
"""

from __future__ import annotations

import json
import os
import pprint
from typing import Any

NLMSG_HDRLEN = 16
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, bytes):
            return o.hex()
        if isinstance(o, set):
            return list(o)
        return super().default(o)


def format_reply(reply: Any, as_json: bool = False) -> str:
    """REPLY as ynl shows it: pprint by default, one line of JSON with AS_JSON."""
    if as_json:
        return json.dumps(reply, cls=_Encoder)
    return pprint.PrettyPrinter().pformat(reply)


def format_error(code: int, nl_len: int, nl_flags: int, extack: dict | None, nl_type: int = 2) -> str:
    """A netlink error as ynl prints it (NlError.__str__ and NlMsg.__repr__)."""
    lines = [f"Netlink error: {os.strerror(code)}",
             f"nl_len = {nl_len} ({nl_len - NLMSG_HDRLEN}) nl_flags = 0x{nl_flags:x} nl_type = {nl_type}",
             f"\terror: {-code}"]
    if extack:
        lines.append(f"\textack: {extack!r}")
    return "\n".join(lines)


def synthetic_error_header(extack: dict | None) -> tuple[int, int]:
    """(nl_len, nl_flags) of the capped error message the kernel would send with EXTACK.

    softena's devices answer over their control socket, not netlink; their
    errors are shown as the kernel's would be, with lengths counted honestly.
    """
    nl_len = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN  # header, error code, the request's header
    if not extack:
        return nl_len, NLM_F_CAPPED
    for key, value in extack.items():
        if key == "msg":
            nl_len += 4 + ((len(value.encode()) + 1 + 3) & ~3)
        elif key in ("bad-attr", "bad-attr-offs", "miss-type", "miss-nest"):
            nl_len += 8
    return nl_len, NLM_F_CAPPED | NLM_F_ACK_TLVS
