"""The netdev family as `ynl` sees it, with softena's devices answering for themselves.

Requests go where the object lives:

- a request naming an ifindex goes to the softena device with that ifindex,
  or to the kernel;
- napi-get/napi-set by id go to the device whose NAPI id range holds it
  (family.napi_slot), page-pool-get/page-pool-stats-get by a page pool id
  at or above family.PAGE_POOL_ID_BASE to the device that owns the pool;
- everything else goes to the kernel, and a dump goes to the kernel and to
  every softena device, merged in ifindex order.

For a softena device the kernel's own answer for its tap is replaced, not
merged: tun keeps no queue stats and no NAPI ids, so what the kernel says
of the tap is true of the tun device and not of the adapter behind it.
Every value is normalised to what ynl gives (enum names, flag sets), so
one printer serves both.
"""

from __future__ import annotations

import errno
import heapq
import select
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from softena.control import ctlsock
from softena.control.state import DeviceState, list_devices, pid_alive
from softena.errors import SoftenaError
from softena.netdev import genl, notify
from softena.netdev.family import PAGE_POOL_ID_BASE, napi_slot
from softena.netdev.printer import synthetic_error_header
from softena.netdev.spec import ATTR_SETS, NETDEV, AttrSet, Op, nested_set

NlError = genl.NlError
SpecError = genl.SpecError


@dataclass(frozen=True)
class SoftenaDevice:
    name: str
    ifindex: int
    slot: int | None


def warn(message: str) -> None:
    print(f"softena ynl: {message}", file=sys.stderr)


def softena_devices() -> list[SoftenaDevice]:
    """Running softena devices, in ifindex order; a device that does not answer is left out."""
    try:
        names = list_devices()
    except SoftenaError as exc:  # not root, and in no device's read group
        warn(f"{exc}; showing the kernel's view only")
        return []
    out = []
    for name in names:
        state = DeviceState.load(name)
        if state is None or not pid_alive(state.pid):
            continue  # gone, or not this user's to read
        try:
            status = ctlsock.request(name, "status", timeout=5.0)
        except SoftenaError as exc:
            warn(f"{exc}; showing the kernel's view of {name}")
            continue
        out.append(SoftenaDevice(name, status["ifindex"], status.get("slot", state.slot)))
    return sorted(out, key=lambda d: d.ifindex)


# ---- values between the spec, JSON and ynl ------------------------------------------------


def operation(name: str) -> Op:
    """The op ynl would run for `--do NAME` or `--dump NAME` (notifications are not operations)."""
    try:
        op = NETDEV.op(name)
    except KeyError:
        op = None
    if op is None or op.group is not None:
        names = ", ".join(o.name for o in NETDEV.ops if o.group is None)
        raise SpecError(f"unknown operation '{name}' of family netdev: one of {names}")
    return op


def normalise_request(op: Op, attrs: Any) -> dict:
    """ATTRS checked against the spec (ynl's errors for unknown names) with enum and flag names
    spelled out, as a softena device takes them."""
    if not isinstance(attrs, dict):
        raise SpecError("--json must be a JSON object of attribute names and values")
    attr_set = ATTR_SETS[op.attr_set]
    decoded = genl.decode_attrs(attr_set, {"attrs": genl.encode_attrs(attr_set, attrs)})
    return _jsonable(decoded)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, list)):
        return [_jsonable(v) for v in value]
    return value


def from_device(attr_set: AttrSet, obj: dict) -> dict:
    """An object a softena device sent as JSON, with ynl's value types (flag sets as sets)."""
    out = {}
    for name, value in obj.items():
        try:
            attr = attr_set[name]
        except KeyError:
            out[name] = value
            continue
        if attr.type == "nest" and isinstance(value, dict):
            out[name] = from_device(nested_set(attr), value)
        elif attr.kind == "flags" and isinstance(value, list):
            out[name] = set(value)
        else:
            out[name] = value
    return out


def ifindex_of(obj: dict) -> int | None:
    """The ifindex an object belongs to: its own, or that of a nest (page-pool-stats' info)."""
    if "ifindex" in obj:
        return obj["ifindex"]
    for value in obj.values():
        if isinstance(value, dict) and "ifindex" in value:
            return value["ifindex"]
    return None


def device_error(error: dict) -> NlError:
    """A softena device's refusal as the kernel's error message would carry it."""
    code = getattr(errno, str(error.get("errno")), errno.EINVAL)
    extack = {}
    if error.get("message"):
        extack["msg"] = error["message"]
    if error.get("bad-attr"):
        extack["bad-attr"] = "." + error["bad-attr"]
    nl_len, nl_flags = synthetic_error_header(extack)
    return NlError(code, nl_len, nl_flags, extack or None)


# ---- the router -----------------------------------------------------------------------------


class DeviceUnavailable(SoftenaError):
    """A softena device that could not answer a netdev request (down, or too old to know it)."""


class Netdev:
    """The netdev family over the kernel and softena's devices."""

    def __init__(self, devices: list[SoftenaDevice] | None = None, kernel: genl.NetdevGenl | None = None) -> None:
        self.devices = softena_devices() if devices is None else devices
        self._kernel = kernel
        self._subscriptions: tuple = ()

    @property
    def kernel(self) -> genl.NetdevGenl:
        if self._kernel is None:
            self._kernel = genl.NetdevGenl()
        return self._kernel

    def close(self) -> None:
        if self._kernel is not None:
            self._kernel.close()
        for sub in self._subscriptions:
            sub.close()

    def ask(self, dev: SoftenaDevice, op: Op, attrs: dict, dump: bool) -> Any:
        try:
            result = ctlsock.request(dev.name, "netdev", op=op.name, attrs=attrs, dump=dump)
        except SoftenaError as exc:
            raise DeviceUnavailable(str(exc)) from None
        if result.get("error"):
            raise device_error(result["error"])
        reply = result.get("reply")
        attr_set = ATTR_SETS[op.attr_set]
        if isinstance(reply, list):
            return [from_device(attr_set, obj) for obj in reply]
        return None if reply is None else from_device(attr_set, reply)

    def _by_ifindex(self, ifindex: Any) -> SoftenaDevice | None:
        return next((d for d in self.devices if d.ifindex == ifindex), None)

    # ---- do ----

    def do(self, op_name: str, attrs: dict, flags: int = 0) -> Any:
        op = operation(op_name)
        request = normalise_request(op, attrs)
        if op.attr_set in ("page-pool", "page-pool-stats"):
            pool_id = request.get("id", request.get("info", {}).get("id") if isinstance(request.get("info"), dict)
                                  else None)
            if isinstance(pool_id, int) and pool_id >= PAGE_POOL_ID_BASE and self.devices:
                return self._pool_owner_do(op, request)
        dev = self._do_target(op, request)
        if dev is not None:
            return self.ask(dev, op, request, dump=False)
        return self.kernel.do(op.name, attrs, flags)

    def _do_target(self, op: Op, request: dict) -> SoftenaDevice | None:
        if "ifindex" in request:
            return self._by_ifindex(request["ifindex"])
        if op.attr_set == "napi" and isinstance(request.get("id"), int):
            where = napi_slot(request["id"])
            if where is not None:
                return next((d for d in self.devices if d.slot == where[0]), None)
        return None

    def _pool_owner_do(self, op: Op, request: dict) -> Any:
        """Ask each device in turn: the one that owns the pool answers, the others say ENOENT."""
        last: NlError | None = None
        for dev in self.devices:
            try:
                return self.ask(dev, op, request, dump=False)
            except NlError as err:
                if err.code != errno.ENOENT:
                    raise
                last = err
            except DeviceUnavailable as exc:
                warn(str(exc))
        if last is not None:
            raise last
        return self.kernel.do(op.name, request)

    # ---- dump ----

    def dump(self, op_name: str, attrs: dict) -> list[dict]:
        op = operation(op_name)
        request = normalise_request(op, attrs)
        if "ifindex" in request:
            dev = self._by_ifindex(request["ifindex"])
            return self.kernel.dump(op.name, attrs) if dev is None else self.ask(dev, op, request, dump=True)
        ours: list[tuple[int, dict]] = []
        answered = set()
        for dev in self.devices if op.dump else ():
            try:
                ours.extend((dev.ifindex, obj) for obj in self.ask(dev, op, request, dump=True))
                answered.add(dev.ifindex)
            except DeviceUnavailable as exc:
                warn(f"{exc}; showing the kernel's view of {dev.name}")
        try:
            kernel = self.kernel.dump(op.name, attrs)
        except NlError as err:
            # e.g. page-pool-stats-get on a kernel built without page pool stats
            if not (err.code == errno.EOPNOTSUPP and op.dump and answered):
                raise
            kernel = []
        return merge_by_ifindex([o for o in kernel if ifindex_of(o) not in answered], ours)

    # ---- notifications ----

    def subscribe(self, group: str) -> None:
        """Join GROUP of the kernel's family and of softena's devices; ynl subscribes before
        any request, so the notifications a request causes are caught too."""
        if group not in NETDEV.groups:
            raise SpecError(f'Multicast group "{group}" not present in the family')
        self._subscriptions = (genl.NetdevMulticast([group]), notify.Subscription([group]))

    def notifications(self, duration: float | None) -> Iterator[dict]:
        """Notifications as they come, for DURATION seconds (None: until interrupted)."""
        kernel, softena = self._subscriptions
        ours = {d.ifindex for d in self.devices}
        deadline = None if duration is None else time.monotonic() + duration
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            ready = select.select([kernel, softena], [], [], left)[0]
            if softena in ready:
                for ntf in softena.read_ready():
                    msg = from_device(ATTR_SETS[NETDEV.op(ntf["name"]).attr_set], ntf["msg"])
                    index = ifindex_of(msg)
                    if index is not None:  # a message of no device hides none of the kernel's
                        ours.add(index)
                    yield {"name": ntf["name"], "msg": msg}
            if kernel in ready:
                # the kernel's word on a softena tap is replaced by the device's, as in dumps
                yield from (ntf for ntf in kernel.read_ready() if ifindex_of(ntf["msg"]) not in ours)


def merge_by_ifindex(kernel: list[dict], ours: list[tuple[int, dict]]) -> list[dict]:
    """The kernel's objects in the kernel's order, softena's inserted where their ifindex falls."""
    keyed, last = [], 0
    for obj in kernel:
        last = ifindex_of(obj) or last  # an object without one (an orphaned page pool) stays put
        keyed.append((last, obj))
    return [obj for _, obj in heapq.merge(keyed, ours, key=lambda pair: pair[0])]
