"""Links followed through rtnetlink (softena.ports.link): the first state at
once, every change after it, nothing when nothing changes, whole again after
the kernel dropped notifications; in a namespace of its own, as the lab's."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import run, wait_for
from pyroute2 import NetNS
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from softena.ports.link import LinkWatch, WireLink

NETNS, END, PEER = "sftlw-ns", "sftlw0", "sftlw1"


class Recorder(LinkWatch):
    """Keeps every state and multicast change it is told; blocks in the first
    change until `release` is set, as a busy device would."""

    def __init__(self, multicast: bool = False, block: bool = False) -> None:
        self.states: list[ifinfmsg | None] = []
        self.multicast = 0
        self.release = threading.Event()
        if not block:
            self.release.set()
        super().__init__("softena/sftlw-test", END, netns=NETNS, multicast=multicast)

    def link_changed(self, msg: ifinfmsg | None) -> None:
        self.states.append(msg)
        self.release.wait(10)

    def multicast_changed(self) -> None:
        self.multicast += 1

    def mtu(self) -> int | None:
        last = self.states[-1] if self.states else None
        return None if last is None else last.get_attr("IFLA_MTU")


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A namespace of the test's own with a veth pair END/PEER in it, both down; deleted after."""
    run(["ip", "netns", "add", NETNS], check=True)
    try:
        run(["ip", "-n", NETNS, "link", "add", END, "type", "veth", "peer", "name", PEER], check=True)
        ns = NetNS(NETNS, flags=0)
        try:
            yield ns
        finally:
            ns.close()
    finally:
        run(["ip", "netns", "del", NETNS])


def runs(thread: threading.Thread) -> int:
    """How many times the kernel has run THREAD (schedstat's third field)."""
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[2])


def test_the_first_state_comes_at_once_then_each_change_and_no_wakeup_between(netns) -> None:
    watch = Recorder()
    watch.start()
    try:
        wait_for(lambda: watch.mtu() == 1500, within=2, what="the first state")
        time.sleep(0.2)
        before = runs(watch)
        time.sleep(1.0)
        assert runs(watch) - before == 0  # no timed wake-ups
        netns.link("set", index=watch.index, mtu=1400)
        wait_for(lambda: watch.mtu() == 1400, within=2, what="the MTU change")
    finally:
        start = time.monotonic()
        watch.stop()
    assert not watch.is_alive() and time.monotonic() - start < 0.5


def test_a_watch_that_lost_notifications_asks_for_the_link_anew(netns) -> None:
    watch = Recorder(block=True)
    watch.start()
    try:
        wait_for(lambda: watch.states, within=2, what="the first state")
        index = watch.index
        # Far more than the socket's buffer holds (each RTM_NEWLINK takes
        # about 2 KiB of it): the kernel drops some and says ENOBUFS.
        for mtu in range(1400, 999, -1):
            netns.link("set", index=index, mtu=mtu)
        watch.release.set()
        wait_for(lambda: watch.mtu() == 1000, within=5, what="the last MTU after the overflow")
        assert watch.is_alive()
        assert len(watch.states) < 400  # it did lose some: the test overflowed the socket
        netns.link("set", index=index, mtu=1500)  # and it still listens
        wait_for(lambda: watch.mtu() == 1500, within=2, what="a change after the overflow")
    finally:
        watch.release.set()
        watch.stop()


def test_ip_multicast_joins_are_told(netns) -> None:
    watch = Recorder(multicast=True)
    watch.start()
    try:
        wait_for(lambda: watch.states, within=2, what="the first state")
        assert watch.multicast == 0
        # Up, the link joins the all-nodes groups (224.0.0.1, ff02::1) on its own.
        run(["ip", "-n", NETNS, "link", "set", END, "up"], check=True)
        wait_for(lambda: watch.multicast > 0, within=2, what="a multicast join")
    finally:
        watch.stop()


def test_the_wire_carrier_follows_the_far_end_and_its_removal(netns) -> None:
    flips: list[bool] = []
    wire = WireLink("sftlw", END, flips.append, netns=NETNS)
    wire.start()
    try:
        wait_for(lambda: flips == [False], within=2, what="no carrier at first")
        run(["ip", "-n", NETNS, "link", "set", END, "up"], check=True)
        time.sleep(0.3)
        assert flips == [False]  # up, but the far end is down: still no carrier
        run(["ip", "-n", NETNS, "link", "set", PEER, "up"], check=True)
        wait_for(lambda: flips == [False, True], within=2, what="carrier")
        run(["ip", "-n", NETNS, "link", "del", PEER], check=True)  # takes END with it
        wait_for(lambda: flips == [False, True, False], within=2, what="no carrier once gone")
        assert wire.up is False
    finally:
        wire.stop()


def test_a_namespace_that_does_not_exist_is_an_error_and_is_not_created() -> None:
    with pytest.raises(FileNotFoundError):
        WireLink("sftlw", END, lambda up: None, netns="sftlw-none")
    assert subprocess.run(["ip", "netns", "pids", "sftlw-none"], capture_output=True).returncode != 0


def test_a_link_that_is_not_there_yet_has_no_carrier_until_it_comes(netns) -> None:
    flips: list[bool] = []
    run(["ip", "-n", NETNS, "link", "del", END], check=True)  # and PEER with it
    wire = WireLink("sftlw", END, flips.append, netns=NETNS)
    wire.start()
    try:
        wait_for(lambda: flips == [False], within=2, what="no carrier while there is no link")
        run(["ip", "-n", NETNS, "link", "add", END, "up", "type", "veth", "peer", "name", PEER], check=True)
        run(["ip", "-n", NETNS, "link", "set", PEER, "up"], check=True)
        wait_for(lambda: flips == [False, True], within=2, what="carrier once the link is made")
    finally:
        wire.stop()
