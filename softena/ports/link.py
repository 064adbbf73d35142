"""Links followed through rtnetlink notifications: the wire's carrier, and the host's interface.

A NIC driver hears of its cable from an interrupt, and of `ip link set` from
its ndo callbacks. softena hears of both from RTM_NEWLINK and RTM_DELLINK
notifications on a NETLINK_ROUTE socket, in whichever namespace the link
lives: the wire's veth or tap here, the lab's peer end in its namespace.
The thread sleeps in poll() on that socket and a wake pipe, so an idle
device spends nothing on it, and a change reaches the device at once.

The socket is a plain one (pyroute2 parses the messages, and makes the
socket inside another namespace): pyroute2's synchronous API buffers
notifications out of reach of a poll(), and the thread must be able to
stop. When the socket overflowed (ENOBUFS: the kernel dropped
notifications) the watcher drops what is still queued, all older than the
loss, and asks for the link anew on the same socket, so the answer comes
after every older message.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from typing import Callable

from pyroute2.netlink import NLM_F_REQUEST
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from softena.netns import socket_in
from softena.threads import NamedThread, Readable

IFF_UP = 0x1
RTMGRP_LINK = 0x1
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWMULTICAST, RTM_DELMULTICAST = 56, 57  # Linux 6.13 on: IP multicast joins and leaves
RTNLGRP_IPV4_MCADDR, RTNLGRP_IPV6_MCADDR = 37, 38
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1


def queues_in_use(ifname: str, direction: str) -> int:
    """Queues an interface of this namespace has in use in DIRECTION ("rx" or
    "tx"): sysfs lists exactly the real ones, as `ethtool -L` left them."""
    try:
        return sum(1 for q in os.listdir(f"/sys/class/net/{ifname}/queues") if q.startswith(f"{direction}-"))
    except FileNotFoundError:
        return 0


def has_carrier(msg: ifinfmsg | None) -> bool:
    """Up and with carrier, as /sys/class/net/X/carrier reads "1"; a vanished link has none."""
    return msg is not None and bool(msg["flags"] & IFF_UP) and msg.get_attr("IFLA_CARRIER") == 1


class LinkWatch(NamedThread):
    """Follows the link IFNAME (in NETNS, or here): link_changed(msg) with every
    state rtnetlink reports, the first one at start, and link_changed(None)
    when the link is gone. With MULTICAST, also multicast_changed() at each IP
    multicast join or leave on it. Subclasses say what a change means."""

    def __init__(self, thread_name: str, ifname: str, netns: str | None = None, multicast: bool = False) -> None:
        super().__init__(name=thread_name)
        self.ifname = ifname
        self.index: int | None = None  # learnt from the first answer; a rename keeps it
        if netns is None:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                       socket.NETLINK_ROUTE)
        else:  # a namespace that is gone is an error, never created anew
            self._sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_ROUTE)
        self._sock.bind((0, RTMGRP_LINK))
        if multicast:
            for group in (RTNLGRP_IPV4_MCADDR, RTNLGRP_IPV6_MCADDR):
                try:
                    self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
                except OSError:  # a kernel before 6.13: the device's once-a-second look finds joins
                    pass
        self._readable = Readable(self._sock.fileno())
        self._ask()

    def link_changed(self, msg: ifinfmsg | None) -> None:
        """The link's state now (None: gone)."""
        raise NotImplementedError

    def multicast_changed(self) -> None:
        """An IP multicast group was joined or left on the link."""

    def run(self) -> None:
        while self._readable.wait():
            try:
                data = self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self._drain()
                self._ask()
                continue
            self._dispatch(data)

    def stop(self) -> None:
        """Wake the thread, wait for it, and close the socket."""
        self._readable.wake()
        if self.is_alive():
            self.join(timeout=5)
        self._sock.close()
        self._readable.close()

    def _ask(self) -> None:
        """RTM_GETLINK for our link: the answer is an RTM_NEWLINK, or an error once it is gone."""
        msg = ifinfmsg()
        msg["header"]["type"] = RTM_GETLINK
        msg["header"]["flags"] = NLM_F_REQUEST
        if self.index is not None:
            msg["index"] = self.index
        else:
            msg["attrs"] = [("IFLA_IFNAME", self.ifname)]
        msg.encode()
        self._sock.send(msg.data)

    def _drain(self) -> None:
        while True:
            try:
                self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise

    def _dispatch(self, data: bytes) -> None:
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if length < 16:
                return
            body = data[off:off + length]
            off += (length + 3) & ~3
            if kind in (RTM_NEWLINK, RTM_DELLINK):
                # ifinfomsg's ifi_index, read before pyroute2 decodes the
                # whole message: the host namespace's other links are many.
                if self.index is not None and length >= 24 and struct.unpack_from("=i", body, 20)[0] != self.index:
                    continue
                msg = ifinfmsg(body)
                msg.decode()
                if not self._ours(msg):
                    continue
                if kind == RTM_NEWLINK:
                    self.index = msg["index"]
                    self.link_changed(msg)
                else:
                    self.index = None
                    self.link_changed(None)
            elif kind == NLMSG_ERROR and length >= 20 and struct.unpack_from("=i", body, 16)[0] == -errno.ENODEV:
                self.link_changed(None)  # the answer to our question: no such link
            elif kind in (RTM_NEWMULTICAST, RTM_DELMULTICAST) and length >= 24:
                if struct.unpack_from("=I", body, 20)[0] == self.index:  # ifaddrmsg's ifa_index
                    self.multicast_changed()

    def _ours(self, msg: ifinfmsg) -> bool:
        if self.index is not None:
            return msg["index"] == self.index
        return msg.get_attr("IFLA_IFNAME") == self.ifname


class WireLink(LinkWatch):
    """The wire's carrier: calls on_change(up) whenever it flips, the first
    time at start. `up` is the state last reported."""

    def __init__(self, dev: str, ifname: str, on_change: Callable[[bool], None], netns: str | None = None) -> None:
        self.up: bool | None = None
        self.on_change = on_change
        self._peer_gone = False
        self._lock = threading.Lock()  # the watch and peer_gone() report from two threads
        super().__init__(f"softena/{dev}-link", ifname, netns=netns)

    def link_changed(self, msg: ifinfmsg | None) -> None:
        with self._lock:
            up = has_carrier(msg) and not self._peer_gone
            if up != self.up:
                self.up = up
                self.on_change(up)

    def peer_gone(self) -> None:
        """The far end's namespace is gone: no cable, whatever the link last said.

        The watch's own socket keeps that namespace alive, so no link
        notification ever says so; the device looks for the namespace's name."""
        if not self._peer_gone:
            self._peer_gone = True
            self.link_changed(None)
