"""The wire's link state, watched from the device side.

The wire is the device's cable: when its far end goes down, or the peer
namespace and with it the veth disappear, the device sees no carrier. The
monitor reads the state four times a second (well within the second the
host may wait for NO-CARRIER) and reports changes; it also paces the
device's keep-alive. Reading sysfs or one netlink dump is cheaper at this
rate than keeping a subscription per namespace.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from pyroute2 import NetNS

from softena.threads import NamedThread

IFF_UP = 0x1
POLL_S = 0.25


def queues_in_use(ifname: str, direction: str) -> int:
    """Queues an interface of this namespace has in use in DIRECTION ("rx" or
    "tx"): sysfs lists exactly the real ones, as `ethtool -L` left them."""
    try:
        return sum(1 for q in os.listdir(f"/sys/class/net/{ifname}/queues") if q.startswith(f"{direction}-"))
    except FileNotFoundError:
        return 0


def host_link_up(ifname: str) -> bool:
    """Carrier of an interface in this namespace; a vanished one is down."""
    try:
        with open(f"/sys/class/net/{ifname}/carrier") as f:
            return f.read().strip() == "1"
    except OSError:  # gone, or administratively down (EINVAL)
        return False


class NetnsLinkReader:
    """Carrier and admin state of an interface inside another namespace."""

    def __init__(self, netns: str, ifname: str) -> None:
        self.netns = netns
        self.ifname = ifname
        self._ns: NetNS | None = None

    def __call__(self) -> bool:
        try:
            if self._ns is None:
                self._ns = NetNS(self.netns)
            links = self._ns.get_links(ifname=self.ifname)
        except Exception:  # the namespace went away: no cable
            self.close()
            return False
        if not links:
            return False
        link = links[0]
        return bool(link["flags"] & IFF_UP) and link.get("IFLA_CARRIER") == 1

    def close(self) -> None:
        if self._ns is not None:
            try:
                self._ns.close()
            except Exception:
                pass
            self._ns = None


class LinkMonitor(NamedThread):
    """Calls on_change(up) when the wire's state flips, on_tick() every second,
    on_poll() at every look (the device's other periodic duties)."""

    def __init__(self, dev: str, read: Callable[[], bool], on_change: Callable[[bool], None],
                 on_tick: Callable[[], None], on_poll: Callable[[], None] | None = None) -> None:
        super().__init__(name=f"softena/{dev}-link")
        self.read = read
        self.on_change = on_change
        self.on_tick = on_tick
        self.on_poll = on_poll
        self.up: bool | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        ticks = 0
        while not self._stopping.wait(POLL_S):
            if self.on_poll:
                self.on_poll()
            up = self.read()
            if up != self.up:
                self.up = up
                self.on_change(up)
            ticks += 1
            if ticks % round(1 / POLL_S) == 0:
                self.on_tick()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
        close = getattr(self.read, "close", None)
        if close:
            close()
