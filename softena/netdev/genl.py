"""The kernel's netdev generic netlink family, spoken through pyroute2 and driven by spec.py.

Nothing here is written per attribute set: the pyroute2 message classes are
generated from the spec table, requests are encoded from it (names, enum
and flag values, NLA_UINT widths, nests) and replies decoded by it into
plain dicts keyed by attribute name in the order the kernel put them, with
enums as names and flag sets as Python sets, exactly the values ynl gives.

Errors keep what ynl shows of them: the errno, the error message's length
and flags, and the extack (message, the bad attribute as a path such as
'.ifindex', a missing attribute by name, the violated policy). So the
socket asks for capped acks, extended acks and strict checking as ynl's does.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

from pyroute2.netlink import (
    NETLINK_GENERIC,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    genlmsg,
    nla,
    nlmsg,
)
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket
from pyroute2.netlink.marshal import Marshal

from softena.netdev.spec import ATTR_SETS, NETDEV, AttrSet, Op, nested_set
from softena.netns import socket_in

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0xC000
_RECV_SIZE = 131072  # as ynl's: a dump's message never exceeds it

# Extack attributes (include/uapi/linux/netlink.h, enum nlmsgerr_attrs)
_EXTACK_MSG, _EXTACK_OFFS, _EXTACK_POLICY, _EXTACK_MISS_TYPE, _EXTACK_MISS_NEST = 1, 2, 4, 5, 6
# enum netlink_attribute_type, from NL_ATTR_TYPE_FLAG = 1
_POLICY_TYPES = ("flag", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "binary", "string",
                 "nul-string", "nested", "nested-array", "bitfield32", "sint", "uint")
# enum netlink_policy_type_attr: (dict key, struct format)
_POLICY_FIELDS = {2: ("min-value", "q"), 3: ("max-value", "q"), 4: ("min-value", "Q"), 5: ("max-value", "Q"),
                  6: ("min-length", "I"), 7: ("max-length", "I"), 10: ("bitfield32-mask", "I"), 12: ("mask", "Q")}


class SpecError(ValueError):
    """A request the spec cannot encode (an unknown attribute or value); the text is ynl's."""


class NlError(NetlinkError):
    """An error the kernel answered, with what ynl prints of it."""

    def __init__(self, code: int, nl_len: int, nl_flags: int, extack: dict | None, nl_type: int = NLMSG_ERROR) -> None:
        super().__init__(code, (extack or {}).get("msg"))
        self.nl_len = nl_len
        self.nl_flags = nl_flags
        self.nl_type = nl_type  # NLMSG_DONE when a dump fails
        self.extack = extack


# ---- the codec: values <-> the spec's names -------------------------------------------


def _definition(attr) -> tuple[str, ...]:
    return NETDEV.definitions[attr.enum]


def _is_flags(attr) -> bool:
    return attr.kind == "flags"


def encode_value(attr, value: Any) -> Any:
    """A request value as pyroute2 takes it: enum and flag names become numbers, nests lists."""
    if attr.type == "nest":
        if not isinstance(value, dict):
            raise SpecError(f"Attribute '{attr.name}' is a nest: give a JSON object")
        return {"attrs": encode_attrs(nested_set(attr), value)}
    if isinstance(value, bool) or not isinstance(value, (int, str, list, set, tuple)):
        raise SpecError(f"Attribute '{attr.name}' takes a number, not {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(value)  # type: ignore[arg-type]  # a list fails here too, as it should
    except (TypeError, ValueError):
        if attr.enum is None:
            raise SpecError(f"Attribute '{attr.name}' takes a number, not {value!r}") from None
    names = _definition(attr)
    if _is_flags(attr):
        mask = 0
        for name in [value] if isinstance(value, str) else value:
            if name not in names:
                raise SpecError(f"'{name}' is not one of {attr.enum}: {', '.join(names)}")
            mask |= 1 << names.index(name)
        return mask
    if value not in names:
        raise SpecError(f"'{value}' is not one of {attr.enum}: {', '.join(names)}")
    return names.index(value)


def encode_attrs(attr_set: AttrSet, values: dict) -> list[list]:
    """pyroute2's ['name', value] list for a request's attributes, in the order given."""
    out: list[list] = []
    for name, value in values.items():
        try:
            attr = attr_set[name]
        except KeyError:
            raise SpecError(f"Space '{attr_set.name}' has no attribute '{name}'") from None
        if attr.multi and isinstance(value, list):
            out.extend([name, encode_value(attr, v)] for v in value)
        else:
            out.append([name, encode_value(attr, value)])
    return out


def decode_value(attr, value: Any) -> Any:
    if attr.type == "nest":
        return decode_attrs(nested_set(attr), value)
    if attr.enum is None:
        return value
    names = _definition(attr)
    if _is_flags(attr):
        return {names[bit] if bit < len(names) else bit for bit in range(value.bit_length()) if value >> bit & 1}
    return names[value] if value < len(names) else value


def decode_attrs(attr_set: AttrSet, msg) -> dict:
    """A decoded pyroute2 message or nest as {name: value} in the kernel's order."""
    out: dict[str, Any] = {}
    for name, value in msg.get("attrs", ()):
        if name == "UNKNOWN":
            continue  # an attribute newer than the spec: ynl's --process-unknown would show it raw
        attr = attr_set[name]
        if attr.type == "pad":
            continue
        decoded = decode_value(attr, value)
        if attr.multi:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


# ---- pyroute2 message classes, generated from the table ----------------------------------


def _uint(self, *argv, **kwarg):
    """NLA_UINT: 4 or 8 bytes, by the length on the wire (decode) or the value's size (encode)."""
    if "value" in kwarg:
        return self.uint32 if int(kwarg["value"]).bit_length() <= 32 else self.uint64
    length = struct.unpack_from("H", kwarg["data"], kwarg["offset"])[0]
    return self.uint64 if length == 12 else self.uint32


_NLA_TYPES = {"u32": "uint32", "u64": "uint64", "uint": "uint", "pad": "hex"}


def _namespace(attr_set: AttrSet, prefix: str) -> dict:
    ns: dict[str, Any] = {"__slots__": (), "uint": staticmethod(_uint)}
    nla_map = []
    for attr in attr_set.attrs:
        if attr.type == "nest":
            class_name = f"{prefix}_{attr.nested}".replace("-", "_")
            ns[class_name] = type(class_name, (nla,), _namespace(nested_set(attr), prefix))
            nla_map.append((attr.id, attr.name, class_name))
        else:
            nla_map.append((attr.id, attr.name, _NLA_TYPES[attr.type]))
    # pyroute2 cannot compile an empty map; an attribute id 0 never comes
    ns["nla_map"] = tuple(nla_map) or ((0, "UNSPEC", "none"),)
    return ns


MESSAGES: dict[str, type[genlmsg]] = {
    name: type(f"netdev_{name}".replace("-", "_"), (genlmsg,), _namespace(attr_set, "nest"))
    for name, attr_set in ATTR_SETS.items()
}


# ---- the socket ---------------------------------------------------------------------------


def _extack(raw: bytes) -> dict:
    extack: dict[str, Any] = {}
    for atype, payload in _tlvs(raw):
        if atype == _EXTACK_MSG:
            extack["msg"] = payload.rstrip(b"\0").decode("ascii", "replace")
        elif atype == _EXTACK_OFFS:
            extack["bad-attr-offs"] = struct.unpack("I", payload[:4])[0]
        elif atype == _EXTACK_MISS_TYPE:
            extack["miss-type"] = struct.unpack("I", payload[:4])[0]
        elif atype == _EXTACK_MISS_NEST:
            extack["miss-nest"] = struct.unpack("I", payload[:4])[0]
        elif atype == _EXTACK_POLICY:
            extack["policy"] = _policy(payload)
        else:
            extack.setdefault("unknown", []).append(f"[type:{atype} len:{len(payload) + 4}] {payload!r}")
    return extack


def _policy(raw: bytes) -> dict:
    policy: dict[str, Any] = {}
    for atype, payload in _tlvs(raw):
        if atype == 1:
            code = struct.unpack("I", payload[:4])[0]
            policy["type"] = _POLICY_TYPES[code - 1] if 1 <= code <= len(_POLICY_TYPES) else code
        elif atype in _POLICY_FIELDS:
            key, fmt = _POLICY_FIELDS[atype]
            policy[key] = struct.unpack(fmt, payload[:struct.calcsize(fmt)])[0]
    return policy


def _tlvs(raw: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(raw):
        length, atype = struct.unpack_from("HH", raw, offset)
        if length < 4:
            return
        yield atype & ~NLA_TYPE_MASK, raw[offset + 4:offset + length]
        offset += (length + 3) & ~3


class _Marshal(Marshal):
    """pyroute2's marshal, choosing the message class by genl command and keeping errors whole."""

    family_id: int | None = None

    def parse_one_message(self, key, flags, sequence_number, data, offset, length):
        if key == NLMSG_ERROR or (key == NLMSG_DONE and flags & NLM_F_ACK_TLVS):
            return self._error(key, flags, data, offset, length)
        if key == self.family_id and offset + 20 <= len(data):
            op = NETDEV.op_by_id(data[offset + 16])
            if op is not None:
                msg = MESSAGES[op.attr_set](data, offset=offset)
                msg.decode()
                msg["header"]["error"] = None
                return msg
        return super().parse_one_message(key, flags, sequence_number, data, offset, length)

    def _error(self, key, flags, data, offset, length):
        msg = nlmsg()
        code = -struct.unpack_from("i", data, offset + 16)[0]
        msg["header"] = {"length": length, "type": key, "flags": flags, "error": None,
                         "sequence_number": struct.unpack_from("I", data, offset + 8)[0]}
        if code:
            # An error message carries the request's header after the code (only the header,
            # as the ack is capped); a dump's DONE carries the extack right after the code.
            skip = 0 if key == NLMSG_DONE else 16 if flags & NLM_F_CAPPED else \
                struct.unpack_from("I", data, offset + 20)[0]
            extack = _extack(data[offset + 20 + skip:offset + length]) if flags & NLM_F_ACK_TLVS else None
            msg["header"]["error"] = NlError(code, length, flags, extack, key)
        return msg


class _AsyncSocket(AsyncGenericNetlinkSocket):
    marshal_class = _Marshal


class _Socket(GenericNetlinkSocket):
    async_class = _AsyncSocket


def _extack_path(request: bytes, attr_set: AttrSet, offset: int, target: int) -> str | None:
    """The attribute at byte TARGET of REQUEST as ynl names it: '.ifindex', '.info.id'."""
    pos = offset
    for atype, payload in _tlvs(request, offset):
        full = (len(payload) + 4 + 3) & ~3
        attr = attr_set.by_id(atype)
        if attr is None or pos > target:
            return None
        if pos == target:
            return "." + attr.name
        if pos + full <= target:
            pos += full
            continue
        if attr.type != "nest":
            return None
        sub = _extack_path(payload, nested_set(attr), 0, target - pos - 4)
        return None if sub is None else "." + attr.name + sub
    return None


def _finish_extack(err: NlError, op: Op, request: bytes) -> None:
    """Name the attributes the extack points at by offset or number, as ynl does."""
    extack = err.extack
    if not extack:
        return
    attr_set = ATTR_SETS[op.attr_set]
    if "miss-type" in extack and "miss-nest" not in extack:
        attr = attr_set.by_id(extack["miss-type"])
        if attr is not None:
            extack["miss-type"] = attr.name
            if attr.doc:
                extack["miss-type-doc"] = attr.doc
    if "bad-attr-offs" in extack:
        path = _extack_path(request, attr_set, 20, extack["bad-attr-offs"])
        if path:
            del extack["bad-attr-offs"]
            extack["bad-attr"] = path


class NetdevGenl:
    """A socket on the kernel's netdev family: do(), dump(), and notifications().

    With NETNS, the socket is made in that named network namespace (from a
    thread there, softena.netns: no fork; a name that does not exist is an
    error, never made) and speaks of its devices; it keeps the namespace alive
    while open."""

    def __init__(self, netns: str | None = None) -> None:
        if netns is None:
            self.sock = _Socket(ext_ack=True, strict_check=True)
        else:
            made = socket_in(netns, socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_GENERIC)
            self.sock = _Socket(ext_ack=True, strict_check=True, fileno=made.detach())
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.bind(NETDEV.name, MESSAGES["dev"])
        except BaseException:
            self.sock.close()
            raise
        self.sock.marshal.family_id = self.sock.prid

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetdevGenl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, op: Op, attrs: dict, flags: int) -> list[dict]:
        msg = MESSAGES[op.attr_set]()
        msg["cmd"] = op.id
        msg["version"] = NETDEV.version
        msg["attrs"] = encode_attrs(ATTR_SETS[op.attr_set], attrs)
        try:
            replies = self.sock.nlm_request(msg, msg_type=self.sock.prid, msg_flags=flags)
        except NlError as err:
            _finish_extack(err, op, bytes(msg.data))
            raise
        return [decode_attrs(ATTR_SETS[op.attr_set], r) for r in replies if r["header"]["type"] == self.sock.prid]

    def do(self, op_name: str, attrs: dict, flags: int = 0) -> dict | list[dict] | None:
        """One request, one reply (None for an op that answers with an ack only).

        FLAGS are extra netlink flags (ynl's --create, --replace, ...)."""
        replies = self._request(NETDEV.op(op_name), attrs, NLM_F_REQUEST | NLM_F_ACK | flags)
        return None if not replies else replies[0] if len(replies) == 1 else replies

    def dump(self, op_name: str, attrs: dict) -> list[dict]:
        return self._request(NETDEV.op(op_name), attrs, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP)


class NetdevMulticast:
    """A subscription to the netdev family's multicast GROUPS (mgmt, page-pool).

    A plain netlink socket of its own, so select() sees every notification
    the moment it is queued; pyroute2 resolves the group ids and decodes.
    """

    def __init__(self, groups: list[str]) -> None:
        with NetdevGenl() as genl:
            ids = dict(genl.sock.mcast_groups)
            family_id = genl.sock.prid
        for group in groups:
            if group not in ids:
                raise SpecError(f'Multicast group "{group}" not present in the family')
        self.marshal = _Marshal()
        self.marshal.family_id = family_id
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_GENERIC)
        try:
            self.sock.bind((0, 0))
            for group in groups:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, ids[group])
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_ready(self) -> list[dict]:
        """The notifications queued now, as ynl gives them: {'name': op, 'msg': {...}}."""
        out: list[dict] = []
        while True:
            try:
                data = self.sock.recv(_RECV_SIZE)
            except BlockingIOError:
                return out
            for msg in self.marshal.parse(data):
                op = NETDEV.op_by_id(msg.get("cmd", 0)) if msg["header"]["type"] == self.marshal.family_id else None
                if op is not None and op.group is not None:
                    out.append({"name": op.name, "msg": decode_attrs(ATTR_SETS[op.attr_set], msg)})

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetdevMulticast:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
