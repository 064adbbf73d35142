"""Watch the host interface with rtnetlink: what `ip link set ena0 ...` asks of the device.

A kernel driver learns of `ip link set dev mtu/up/down/promisc` through its
ndo callbacks, and of the multicast groups the host joins through
ndo_set_rx_mode. A TAP device's owner sees only rtnetlink notifications:
RTM_NEWLINK for the first (softena.ports.link.LinkWatch follows them), and
RTM_NEWMULTICAST and RTM_DELMULTICAST for IP multicast joins (Linux 6.13
on). A group joined below IP (`ip maddr add`, a packet socket) raises no
notification; the device also reads the list once a second for those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from softena.ports.link import LinkWatch

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


class HostLinkWatcher(LinkWatch):
    """Calls on_change(old, new) whenever the host changes the interface DEV,
    and on_multicast() when it joins or leaves an IP multicast group on it."""

    def __init__(self, dev: str, initial: HostLinkState, on_change: Callable[[HostLinkState, HostLinkState], None],
                 on_multicast: Callable[[], None] | None = None) -> None:
        self.state = initial
        self.on_change = on_change
        self.on_multicast = on_multicast
        super().__init__(f"softena/{dev}-ipwatch", dev, multicast=on_multicast is not None)

    def link_changed(self, msg: ifinfmsg | None) -> None:
        if msg is None:  # the interface is gone: the device is going down anyway
            return
        new = HostLinkState.from_msg(msg)
        if new != self.state:
            old, self.state = self.state, new
            self.on_change(old, new)

    def multicast_changed(self) -> None:
        if self.on_multicast is not None:
            self.on_multicast()


def read_dev_mcast() -> bytes:
    """/proc/net/dev_mcast as it is now: every interface's joined multicast MACs.
    Read as bytes with os calls: the device reads it once a second, and a
    text-mode open() costs an idle device more than the read itself."""
    try:
        fd = os.open("/proc/net/dev_mcast", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def joined_groups(ifindex: int, dev_mcast: bytes) -> list[bytes]:
    """Multicast MACs the host joined on IFINDEX, as DEV_MCAST (a read_dev_mcast()) lists them."""
    index = str(ifindex).encode()
    groups = []
    for line in dev_mcast.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0] == index:
            groups.append(bytes.fromhex(fields[4].decode()))
    return sorted(groups)
