"""Which interfaces `softena trace` watches: each device's tap and its wire."""

from __future__ import annotations

import os
import socket

from softena.control import ctlsock
from softena.control.state import DeviceState, list_devices, pid_alive
from softena.errors import SoftenaError
from softena.trace.tracer import Interface


def netns_inode(pid: int | str = "self") -> int:
    """The inode number that names PID's network namespace (what the kernel's net->ns.inum holds)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def running() -> list[str]:
    return [n for n in list_devices() if (s := DeviceState.load(n)) and pid_alive(s.pid)]


def interfaces(name: str) -> list[Interface]:
    """DEV's tap and wire, as its process sees them (`softena status`)."""
    status = ctlsock.request(name, "status")
    netns = netns_inode(status["pid"])
    if netns != netns_inode():
        # Interface names resolve in our own namespace only.
        raise SoftenaError(f"{name}: its process runs in another network namespace; run softena trace there")
    found = [Interface(name, name, status["ifindex"], netns, "tap")]
    wire = status.get("wire-ifname")
    if wire:
        try:
            found.append(Interface(name, wire, socket.if_nametoindex(wire), netns, "wire"))
        except OSError as exc:
            raise SoftenaError(f"{name}: wire {wire}: {exc.strerror}") from exc
    return found
