"""TAP ports: the host port (what the host sees as ena0) and the optional tap wire.

A multiqueue TAP opened once per queue pair, with virtio-net headers so
checksum and segmentation metadata cross the boundary instead of being done
in software per frame. The ioctls are few and stable; no library wraps the
multiqueue and vnet-header ones, so they are issued here with fcntl.
"""

from __future__ import annotations

import fcntl
import os
import struct

from pyroute2 import IPRoute
from pyroute2.ethtool import Ethtool

from softena.errors import SoftenaError
from softena.netns import run_in

TUN_PATH = "/dev/net/tun"

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNSETCARRIER = 0x400454E2

IFF_TAP = 0x0002
IFF_NAPI = 0x0010
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_MULTI_QUEUE = 0x0100

TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08

VNET_HDR_LEN = 12  # struct virtio_net_hdr_v1, as the C datapath uses


def offload_flags(tx_csum: bool, tso: bool) -> int:
    """TUNSETOFFLOAD bits: what this reader accepts from the host stack."""
    flags = TUN_F_CSUM if tx_csum else 0
    if tx_csum and tso:
        flags |= TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
    return flags


def open_queues(name: str, count: int, offloads: int, napi: bool = False) -> list[int]:
    """Create (or attach to) multiqueue tap NAME and return one fd per queue.

    The tap is not persistent: when the last fd closes, as on a crash, the
    kernel removes the interface.  With NAPI, frames written to a queue are
    received by the kernel in that queue's NAPI poll (IFF_NAPI), not inside
    the write() itself.
    """
    flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE | (IFF_NAPI if napi else 0)
    if not os.path.exists(TUN_PATH):
        raise SoftenaError(f"{TUN_PATH} is missing: load the tun module (modprobe tun)")
    fds: list[int] = []
    try:
        for _ in range(count):
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            fds.append(fd)
            ifr = struct.pack("16sH", name.encode(), flags)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
            fcntl.ioctl(fd, TUNSETOFFLOAD, offloads)
    except OSError as exc:
        close_all(fds)
        raise SoftenaError(f"{name}: cannot create the tap queues: {exc.strerror}") from exc
    return fds


def resize_queues(name: str, fds: list[int], count: int, offloads: int, netns: str | None = None,
                  napi: bool = False) -> None:
    """Grow or shrink tap NAME's queues to COUNT, in place in FDS (fd 0 stays).

    A tap that lives in another namespace (a lab's tap wire, eth0 there) is
    attached to in that namespace: TUNSETIFF looks the name up in the
    namespace of the thread that opened /dev/net/tun, and would otherwise
    create a new tap of that name on the host.
    """
    if count < len(fds):
        close_all(fds[count:])
        del fds[count:]
    elif count > len(fds):
        fds += open_queues_in(netns, name, count - len(fds), offloads, napi) if netns else \
            open_queues(name, count - len(fds), offloads, napi)


def open_queues_in(netns: str, name: str, count: int, offloads: int, napi: bool = False) -> list[int]:
    """open_queues() from inside namespace NETNS, on a thread there (softena.netns)."""
    try:
        return run_in(netns, lambda: open_queues(name, count, offloads, napi), name=f"softena/{name}-tapns")
    except (OSError, SoftenaError) as exc:
        raise SoftenaError(f"{netns}/{name}: cannot attach to the tap: {exc}") from exc


def set_link(ifname: str, **attrs) -> None:
    """Set attributes of a host-namespace interface (mtu=, state=, ...)."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise SoftenaError(f"{ifname}: no such interface")
        ipr.link("set", index=found[0], **attrs)


def set_threaded(ifname: str, threaded: bool) -> None:
    """Run IFNAME's NAPI instances in kernel threads of their own, or in softirq
    (/sys/class/net/IFNAME/threaded, what `ip link` cannot set yet).

    A tap has NAPI instances only for queues opened with IFF_NAPI; a queue
    opened later gets its thread from the kernel, as the setting is per device.
    """
    try:
        with open(f"/sys/class/net/{ifname}/threaded", "w") as f:
            f.write("1" if threaded else "0")
    except OSError as exc:
        raise SoftenaError(f"{ifname}: cannot set threaded NAPI: {exc.strerror}") from exc


def is_threaded(ifname: str) -> bool:
    """Whether IFNAME's NAPI instances run in kernel threads (what an admin may have changed since)."""
    try:
        with open(f"/sys/class/net/{ifname}/threaded") as f:
            return f.read().strip() not in ("", "0")
    except OSError:
        return False


def set_offloads(fd: int, offloads: int) -> None:
    """Renegotiate what the host may hand us (checksum, TSO)."""
    fcntl.ioctl(fd, TUNSETOFFLOAD, offloads)


def kernel_feature(ifname: str, name: str) -> tuple[bool, bool]:
    """A netdev feature the host kernel keeps for IFNAME (e.g. rx-gro, what
    `ethtool -k` calls generic-receive-offload): (active, changeable)."""
    ethtool = Ethtool()
    try:
        feature = ethtool.get_features(ifname).features[name]
    except OSError as exc:
        raise SoftenaError(f"{ifname}: cannot read feature {name}: {exc.strerror}") from exc
    finally:
        ethtool.close()
    return bool(feature.enable), bool(feature.available)


def set_kernel_feature(ifname: str, name: str, on: bool) -> None:
    """Switch a host kernel feature of IFNAME (SIOCETHTOOL ETHTOOL_SFEATURES, as `ethtool -K`)."""
    ethtool = Ethtool()
    try:
        features = ethtool.get_features(ifname)
        features.features[name].enable = on
        ethtool.set_features(ifname, features)
        now = ethtool.get_features(ifname).features[name].enable
    except OSError as exc:
        raise SoftenaError(f"{ifname}: cannot change feature {name}: {exc.strerror}") from exc
    finally:
        ethtool.close()
    if bool(now) != on:
        raise SoftenaError(f"{ifname}: the kernel kept {name} {'on' if now else 'off'}")


def set_carrier(fd: int, up: bool) -> None:
    """Drive the interface's carrier, as a NIC's link state does."""
    fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", 1 if up else 0))


def close_all(fds: list[int]) -> None:
    """Close every fd, ignoring ones already closed."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
