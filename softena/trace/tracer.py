"""The drop probes of `softena trace`: loaded once, fed the interfaces to
watch, read as counters per (interface, event, code)."""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass
from types import ModuleType

from softena.errors import SoftenaError
from softena.trace import symbols
from softena.trace.btf import Btf

PROGRAM = os.path.join(os.path.dirname(__file__), "probe.bpf.c")

# The probes' event numbers (EV_* in probe.bpf.c): tracepoint and its function.
EVENTS = {0: "kfree_skb", 1: "xdp_exception", 2: "xdp_redirect_err", 3: "xdp_devmap_xmit"}
ATTACH = (("skb", "kfree_skb", "on_kfree_skb"), ("xdp", "xdp_exception", "on_xdp_exception"),
          ("xdp", "xdp_redirect_err", "on_xdp_redirect_err"), ("xdp", "xdp_redirect_map_err", "on_xdp_redirect_err"),
          ("xdp", "xdp_devmap_xmit", "on_xdp_devmap_xmit"))


@dataclass(frozen=True)
class Interface:
    """One interface of a device to watch, known by its namespace and index."""

    dev: str
    ifname: str
    ifindex: int
    netns: int  # inode of its network namespace
    where: str  # "tap" or "wire"


@dataclass(frozen=True)
class DropKey:
    """What one counter counts: an interface, a tracepoint and the kernel's name for why."""

    iface: Interface
    event: str
    reason: str


def offsets(btf: Btf) -> dict[str, int]:
    """The struct offsets the probe program takes as defines."""
    return {"SKB_DEV": btf.offset("sk_buff", "dev"),
            "NETDEV_IFINDEX": btf.offset("net_device", "ifindex"),
            "NETDEV_NET": btf.offset("net_device", "nd_net.net"),
            "NET_INUM": btf.offset("net", "ns.inum")}


class Tracer:
    """The loaded probes: counters since load for the interfaces given."""

    def __init__(self, bcc: ModuleType, interfaces: list[Interface], tracefs: str = symbols.TRACEFS) -> None:
        self.interfaces = {(i.netns, i.ifindex): i for i in interfaces}
        self.reasons = symbols.symbols("skb:kfree_skb", "reason", tracefs)
        self.actions = symbols.symbols("xdp:xdp_exception", "act", tracefs)
        cflags = [f"-D{k}={v}" for k, v in offsets(Btf.load()).items()]
        try:
            self.bpf = bcc.BPF(src_file=PROGRAM.encode(), cflags=cflags)
        except Exception as exc:  # bcc raises bare Exception when clang or the verifier refuses
            raise SoftenaError(f"the probes did not load: {exc}") from exc
        wanted = self.bpf[b"wanted"]
        for netns, ifindex in self.interfaces:
            key = wanted.Key()
            key.netns, key.ifindex = netns, ifindex
            wanted[key] = ctypes.c_uint8(1)
        try:
            for system, name, fn in ATTACH:
                if symbols.has_event(f"{system}:{name}", tracefs):
                    self.bpf.attach_raw_tracepoint(tp=name.encode(), fn_name=fn.encode())
        except Exception as exc:
            self.close()
            raise SoftenaError(f"cannot attach the probes: {exc}") from exc

    def read(self) -> dict[DropKey, int]:
        """Every counter so far, by what it counts."""
        counts: dict[DropKey, int] = {}
        for key, value in self.bpf[b"drops"].items():
            iface = self.interfaces.get((key.where.netns, key.where.ifindex))
            if iface is None:
                continue
            event = EVENTS.get(key.event, f"event {key.event}")
            k = DropKey(iface, event, self.reason(event, key.code))
            counts[k] = counts.get(k, 0) + value.value
        return counts

    def reason(self, event: str, code: int) -> str:
        """The kernel's name for CODE of EVENT: drop reason, XDP action or errno."""
        if event == "kfree_skb":
            return self.reasons.get(code, f"reason {code}")
        if event == "xdp_exception":
            return self.actions.get(code, f"action {code}")
        code = ctypes.c_int32(code).value  # -errno, sign lost on the way through a u32
        return errno.errorcode.get(code, f"error {code}") if code else "OK"

    def close(self) -> None:
        self.bpf.cleanup()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
