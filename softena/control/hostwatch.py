"""Watch the host interface with rtnetlink: what `ip link set ena0 ...` asks of the device.

A kernel driver learns of `ip link set dev mtu/up/down/promisc` through its
ndo callbacks; a TAP device's owner only sees RTM_NEWLINK notifications, so
this thread listens for them and hands each change to the device. The
subscription is a plain NETLINK_ROUTE socket (pyroute2 parses the
messages): its synchronous API buffers notifications out of reach of a
timed wait, and this thread must be able to stop.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from typing import Callable

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from softena.threads import NamedThread

RTMGRP_LINK = 0x1
RTM_NEWLINK = 16
IFF_UP, IFF_PROMISC, IFF_ALLMULTI = 0x1, 0x100, 0x200


@dataclass(frozen=True)
class HostLinkState:
    """What the host has set on the interface."""

    mtu: int
    up: bool
    promisc: bool
    allmulti: bool

    @classmethod
    def from_msg(cls, msg: ifinfmsg) -> HostLinkState:
        flags = msg["flags"]
        return cls(msg.get_attr("IFLA_MTU"), bool(flags & IFF_UP), bool(flags & IFF_PROMISC),
                   bool(flags & IFF_ALLMULTI))


class HostLinkWatcher(NamedThread):
    """Calls on_change(old, new) whenever the host changes the interface."""

    def __init__(self, dev: str, ifindex: int, initial: HostLinkState,
                 on_change: Callable[[HostLinkState, HostLinkState], None]) -> None:
        super().__init__(name=f"softena/{dev}-ipwatch")
        self.ifindex = ifindex
        self.state = initial
        self.on_change = on_change
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self._sock.bind((0, RTMGRP_LINK))
        self._sock.settimeout(0.2)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                break
            for msg in self._links(data):
                new = HostLinkState.from_msg(msg)
                if new != self.state:
                    old, self.state = self.state, new
                    self.on_change(old, new)

    def _links(self, data: bytes):
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if length < 16:
                return
            if kind == RTM_NEWLINK:
                msg = ifinfmsg(data[off:off + length])
                msg.decode()
                if msg["index"] == self.ifindex:
                    yield msg
            off += (length + 3) & ~3

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
        self._sock.close()


def joined_groups(ifindex: int) -> list[bytes]:
    """Multicast MACs the host joined on IFINDEX, as /proc/net/dev_mcast lists them."""
    groups = []
    try:
        with open("/proc/net/dev_mcast") as f:
            for line in f:
                fields = line.split()
                if len(fields) == 5 and fields[0] == str(ifindex):
                    groups.append(bytes.fromhex(fields[4]))
    except OSError:
        pass
    return sorted(groups)
