"""The lab wire: a veth pair whose far end is eth0 in a peer namespace.

It stands in for the network cable and the machine at its other end, so a
fresh host can push real traffic through softena with nothing else set up.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from dataclasses import dataclass

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from softena.errors import SoftenaError
from softena.netns import iproute_in
from softena.ports.link import queues_in_use

IFA_F_NODAD = 0x02  # addresses usable at once: the lab has no duplicates

PEER_IFNAME = "eth0"
V4_PREFIX, V6_PREFIX = 24, 64
MAX_LABS = 256  # one /24 of 198.18.0.0/16 each


@dataclass(frozen=True)
class LabNames:
    """The names and addresses of one device's lab, all derived from the device.

    Lab INDEX i uses 198.18.i.0/24 and 2001:2:0:i::/64, so several devices can
    each have a lab; the first device gets index 0: 198.18.0.1 and 2001:2::1.
    """

    dev: str
    index: int = 0

    @property
    def host_v4(self) -> str:
        return f"198.18.{self.index}.1"

    @property
    def peer_v4(self) -> str:
        return f"198.18.{self.index}.2"

    @property
    def host_v6(self) -> str:
        return f"2001:2:0:{self.index:x}::1"

    @property
    def peer_v6(self) -> str:
        return f"2001:2:0:{self.index:x}::2"

    @property
    def netns(self) -> str:
        return f"{self.dev}-peer"

    @property
    def wire(self) -> str:
        return f"{self.dev}-wire"


def ns_exists(name: str) -> bool:
    """Whether network namespace NAME exists (as `ip netns list` shows it)."""
    return name in netns.listnetns()


def link_index(ipr: IPRoute, name: str) -> int | None:
    """The ifindex of NAME in IPR's namespace, or None."""
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def create_netns(names: LabNames) -> None:
    """Make the peer namespace with its loopback up."""
    if ns_exists(names.netns):
        raise SoftenaError(f"{names.dev}: namespace {names.netns} already exists")
    netns.create(names.netns)
    with iproute_in(names.netns) as ns:
        ns.link("set", index=link_index(ns, "lo"), state="up")


def create_veth(names: LabNames, queues: int, max_queues: int, mtu: int) -> int:
    """Create the veth wire, its far end as eth0 in the peer namespace; the host end stays down.

    Both ends get MAX_QUEUES queues allocated and QUEUES in use (the host
    end's Rx queues all, see set_veth_queues), so the wire spreads like the
    device does and can follow `ethtool -L` later.
    Returns the ifindex of the host end.
    """
    with IPRoute() as ipr:
        try:
            ipr.link("add", ifname=names.wire, kind="veth", mtu=mtu,
                     num_tx_queues=max_queues, num_rx_queues=max_queues,
                     peer={"ifname": PEER_IFNAME, "net_ns_fd": names.netns, "mtu": mtu,
                           "num_tx_queues": max_queues, "num_rx_queues": max_queues})
        except NetlinkError as exc:
            raise SoftenaError(f"{names.dev}: cannot create wire {names.wire}: {os.strerror(exc.code)}") from exc
        index = link_index(ipr, names.wire)
    if index is None:
        raise SoftenaError(f"{names.dev}: wire {names.wire} was created but is not there")
    set_veth_queues(names, queues)
    # The wire is a cable: the host must not talk on it by itself.
    _sysctl(f"net/ipv6/conf/{names.wire}/disable_ipv6", "1")
    # The host end stays down (the peer without carrier) until the device's
    # queues can take frames: the device raises it, as a NIC its link.
    return index


def set_veth_queues(names: LabNames, queues: int) -> None:
    """Set the queues in use on the veth wire (ethtool -L): the peer's eth0
    sends and receives on QUEUES, the host end sends on QUEUES.

    The host end keeps every Rx queue it was made with, as a NIC keeps its
    hardware queues whatever the driver uses: growing a veth's Rx queues
    under an attached XDP program leaves the added ones running it without
    ever redirecting (Linux 6.18: xdp_packets counted, not xdp_redirect),
    and detaching to re-attach would hand the frames of that moment to the
    host's stack uncounted. veth wants the host's Rx queues never fewer than
    the peer's Tx queues, which this keeps.
    """
    host = ["ethtool", "-L", names.wire, "tx", str(queues)]
    peer = ["ethtool", "-L", PEER_IFNAME, "rx", str(queues), "tx", str(queues)]
    current = queues_in_use(names.wire, "tx")
    # An XDP program on the peer makes veth want its Rx queues never fewer
    # than the host end's Tx queues: grow the host end first, shrink the peer first.
    steps = [lambda: _retry_busy(lambda: _run(host)), lambda: run_in_netns(names.netns, peer)]
    for step in steps if queues >= current else reversed(steps):
        step()


def _retry_busy(step, timeout: float = 3.0) -> None:
    """Run STEP, retrying while closed AF_XDP sockets still hold their queues:
    the kernel releases a socket's buffer pool from a deferred work item."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return step()
        except SoftenaError as exc:
            if "AF_XDP" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise SoftenaError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


# --peer-napi coalesced: the peer's NIC raises at most one receive interrupt
# per 50 us under load, as Intel's 10/40G drivers do by default (rx-usecs 50,
# 20,000 interrupts a second); veth has no interrupt to moderate, so the
# kernel's software coalescing stands in for it (Documentation/networking/napi.rst).
PEER_RX_USECS = 50


def configure_peer(names: LabNames, checksum_offload: bool = False, receive: str = "inline") -> None:
    """Address and bring up the peer's eth0; RECEIVE: how it receives (--peer-napi, resolved).

    Without CHECKSUM_OFFLOAD its Tx checksum offload goes off: on veth,
    offloaded frames would reach AF_XDP with incomplete checksums, which a
    real cable never carries. A tap wire carries vnet headers and keeps it.
    """
    with iproute_in(names.netns) as ns:
        index = link_index(ns, PEER_IFNAME)
        ns.addr("add", index=index, address=names.peer_v4, prefixlen=V4_PREFIX)
        ns.addr("add", index=index, address=names.peer_v6, prefixlen=V6_PREFIX, flags=IFA_F_NODAD)
        ns.link("set", index=index, state="up")
    if not checksum_offload:
        run_in_netns(names.netns, ["ethtool", "-K", PEER_IFNAME, "tx", "off"])
    if receive == "threaded":
        give_peer_napi_threads(names)
    elif receive == "coalesced":
        give_peer_coalesced_napi(names)
    elif receive == "adaptive":  # GRO now; softena.ports.peerdim moderates it while a stream lasts
        _peer_gro_on(names)


def _peer_gro_on(names: LabNames) -> None:
    """GRO at the peer's eth0, and with it veth's NAPI.

    veth hands a frame to its peer's NAPI only when the sending end offers no
    TSO (veth_skb_is_eligible_for_gro); a cable carries frames of at most the
    MTU anyway, all AF_XDP sends.
    """
    if os.path.exists(f"/sys/class/net/{names.wire}"):  # a veth wire
        _run(["ethtool", "-K", names.wire, "tso", "off"])
    run_in_netns(names.netns, ["ethtool", "-K", PEER_IFNAME, "gro", "on"])


def _peer_sysfs(names: LabNames, **values: int) -> None:
    """Write each value to the peer eth0's /sys/class/net attribute of that name, in
    order, in one process in its namespace (which sysfs shows the devices of)."""
    script = " && ".join(f"echo {value} > /sys/class/net/{PEER_IFNAME}/{attr}" for attr, value in values.items())
    run_in_netns(names.netns, ["sh", "-c", script])


def give_peer_coalesced_napi(names: LabNames) -> None:
    """--peer-napi coalesced (the default on the lab's veth wire): the peer's
    eth0 receives as a host's NIC does, with GRO and moderated interrupts.

    Copy-mode AF_XDP transmits each frame on its own (__dev_direct_xmit()
    enables bottom halves after every frame), so an unmoderated NAPI poll
    holds one frame and GRO has nothing to merge: the peer's TCP takes every
    1500-byte frame alone, and ACKs them, on our worker's CPU. With the poll
    deferred PEER_RX_USECS after one that found work (gro_flush_timeout,
    napi_defer_hard_irqs 1), the frames that arrive meanwhile wait in veth's
    ring and meet in one poll, as a NIC's interrupt moderation gathers them.
    A frame that finds the peer idle is still taken at once, but the timer it
    arms fires inside its round trip: a ping pays 15-20 us (docs/performance.md).
    """
    _peer_gro_on(names)
    _peer_sysfs(names, gro_flush_timeout=PEER_RX_USECS * 1000, napi_defer_hard_irqs=1)


def give_peer_napi_threads(names: LabNames) -> None:
    """--peer-napi threaded: the peer's eth0 receives as a host's NIC does,
    with GRO, in NAPI polls of its own (threaded NAPI, a kernel thread per queue).

    By default veth (and a tap) runs its peer's whole receive, up to the TCP
    socket, inside the sender's transmit call: here, inside our worker's
    sendto() or write(). A host at the far end of a cable does that work on
    its own CPUs. The threads are scheduled like any thread, so on a small
    machine they share its CPUs; each wake-up costs a round trip some
    microseconds, which veth's inline receive (and the bench's veth
    baselines) do not pay.
    """
    _peer_gro_on(names)
    _peer_sysfs(names, threaded=1)


def peer_ifindex(names: LabNames) -> int:
    """The ifindex of the peer's eth0 in its namespace."""
    with iproute_in(names.netns) as ns:
        index = link_index(ns, PEER_IFNAME)
    if index is None:
        raise SoftenaError(f"{names.dev}: the lab peer has no {PEER_IFNAME}")
    return index


def set_peer_state(names: LabNames, state: str) -> None:
    """Set the peer's eth0 up or down."""
    with iproute_in(names.netns) as ns:
        ns.link("set", index=link_index(ns, PEER_IFNAME), state=state)


def set_mtu(names: LabNames, wire: str | None, mtu: int) -> None:
    """Set the MTU of the wire: its host end WIRE (if a veth) and the peer's eth0."""
    if wire is not None:
        with IPRoute() as ipr:
            ipr.link("set", index=link_index(ipr, wire), mtu=mtu)
    with iproute_in(names.netns) as ns:
        ns.link("set", index=link_index(ns, PEER_IFNAME), mtu=mtu)


def address_host(names: LabNames) -> None:
    """Give the device its lab addresses."""
    with IPRoute() as ipr:
        index = link_index(ipr, names.dev)
        ipr.addr("add", index=index, address=names.host_v4, prefixlen=V4_PREFIX)
        ipr.addr("add", index=index, address=names.host_v6, prefixlen=V6_PREFIX, flags=IFA_F_NODAD)


def move_to_peer(names: LabNames, ifname: str) -> None:
    """Move a host interface (a tap wire) into the peer namespace as eth0."""
    with IPRoute() as ipr:
        ipr.link("set", index=link_index(ipr, ifname), net_ns_fd=names.netns)
    with iproute_in(names.netns) as ns:
        ns.link("set", index=link_index(ns, ifname), ifname=PEER_IFNAME)


def icmp_echo(ident: int, seq: int) -> bytes:
    """An ICMP echo request with its checksum."""
    body = bytearray(struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"softena-up")
    total = sum(int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    body[2:4] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(body)


def wait_reachable(names: LabNames, timeout: float = 5.0) -> None:
    """Up means passing traffic: an ICMP echo to the peer must come back."""
    deadline = time.monotonic() + timeout
    ident = os.getpid() & 0xFFFF
    # A raw socket: ping sockets depend on net.ipv4.ping_group_range.
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(0.2)
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            s.sendto(icmp_echo(ident, seq), (names.peer_v4, 0))
            try:
                while True:
                    reply = s.recv(1500)
                    icmp = reply[(reply[0] & 0xF) * 4:]
                    if icmp[0] == 0 and int.from_bytes(icmp[4:6], "big") == ident:
                        return
            except OSError:
                pass
    raise SoftenaError(f"{names.dev}: no traffic passes to the lab peer {names.peer_v4} within {timeout:.0f} s")


def run_in_netns(name: str, argv: list[str]) -> None:
    """Run a tool inside namespace NAME; its failure is a SoftenaError."""
    _run(["ip", "netns", "exec", name, *argv])


def _sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/{path}", "w") as f:
        f.write(value)
