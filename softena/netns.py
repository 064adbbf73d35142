"""Work inside a named network namespace without forking the device process.

pyroute2 makes a socket in another namespace by forking a child there and
receiving the socket back. The fork of a process this size, and the child
interpreter that enters the namespace and exits, take a CPU from the queue
workers: a stream starting on the lab wire, which opens the peer's netdev
socket, kept a worker from the host tap for some 16 ms, and the tap's queue
overflowed (1,750 frames dropped at 100,000 a second). setns(2) moves only
the thread that calls it, so a short-lived thread enters the namespace, does
the work there, and ends; the sockets it made stay in that namespace.
(Creating the namespace still forks, in pyroute2, at bring-up, before any
worker runs.)
"""

from __future__ import annotations

import socket
import threading
from typing import Callable, TypeVar

import pyroute2.netns
from pyroute2 import IPRoute

T = TypeVar("T")


def run_in(netns: str, work: Callable[[], T], name: str = "softena/netns") -> T:
    """Return WORK() run on a thread inside namespace NETNS; raise what it raised.

    A namespace of that name that does not exist is an OSError (ENOENT), never
    made: flags=0 keeps pyroute2 from creating it."""
    outcome: list[tuple[bool, object]] = []

    def runner() -> None:
        try:
            pyroute2.netns.setns(netns, flags=0)
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    thread = threading.Thread(target=runner, name=name, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def socket_in(netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket made inside namespace NETNS; it keeps the namespace alive while open."""
    return run_in(netns, lambda: socket.socket(family, kind, proto), name="softena/netns-sock")


def iproute_in(netns: str) -> IPRoute:
    """pyroute2's IPRoute on an rtnetlink socket made inside namespace NETNS."""
    made = socket_in(netns, socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    return IPRoute(fileno=made.detach())
