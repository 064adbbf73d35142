"""Notifications of the netdev family from softena devices, delivered like netlink multicast.

A subscriber binds a datagram socket under /run/softena/ntf/ named after its
groups and pid; every device process sends each notification to every
socket there whose groups include the notification's. Like netlink
multicast, a device started after the subscriber reaches it without either
knowing of the other, and a slow subscriber loses messages rather than
stalling the device (sends never block). Sockets of subscribers that died
are removed by the next publisher that finds nobody behind them.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Iterator

from softena.control.state import RUN_DIR
from softena.netdev.spec import NETDEV

NTF_DIR = os.path.join(RUN_DIR, "ntf")
_MAX_DGRAM = 65536


def _groups_of(path: str) -> set[str]:
    """Groups a subscriber socket listens to: its name is GROUP+GROUP-PID-N.sock."""
    return set(os.path.basename(path).rsplit("-", 2)[0].split("+"))


def publish(op: str, obj: dict) -> int:
    """Send notification OP (e.g. page-pool-add-ntf) with OBJ to every subscriber of its group.

    Returns how many subscribers it reached. Never blocks, never raises for a
    subscriber's sake.
    """
    group = NETDEV.op(op).group
    message = json.dumps({"name": op, "msg": obj}).encode()
    try:
        names = os.listdir(NTF_DIR)
    except FileNotFoundError:
        return 0
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.setblocking(False)
        for name in names:
            path = os.path.join(NTF_DIR, name)
            if not name.endswith(".sock") or group not in _groups_of(path[:-5]):
                continue
            try:
                sock.sendto(message, path)
                sent += 1
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    _unlink(path)  # its subscriber is gone
                # EAGAIN: a full subscriber loses this one, as with netlink's ENOBUFS
    return sent


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Subscription:
    """A subscriber to GROUPS ("mgmt", "page-pool"); iterate with messages()."""

    _count = 0

    def __init__(self, groups: list[str]) -> None:
        unknown = set(groups) - set(NETDEV.groups)
        if unknown:
            raise ValueError(f"unknown multicast group {', '.join(sorted(unknown))}: one of {', '.join(NETDEV.groups)}")
        os.makedirs(NTF_DIR, mode=0o700, exist_ok=True)
        Subscription._count += 1
        self.path = os.path.join(NTF_DIR, f"{'+'.join(sorted(groups))}-{os.getpid()}-{Subscription._count}.sock")
        _unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)

    def fileno(self) -> int:
        return self.sock.fileno()

    def messages(self, seconds: float) -> Iterator[dict]:
        """Notifications as they arrive, for SECONDS at most."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(_MAX_DGRAM)
            except TimeoutError:
                return
            yield json.loads(data)

    def read_ready(self) -> list[dict]:
        """Every notification already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(json.loads(self.sock.recv(_MAX_DGRAM)))
        except BlockingIOError:
            pass
        return out

    def close(self) -> None:
        self.sock.close()
        _unlink(self.path)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
