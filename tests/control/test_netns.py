"""softena.netns: sockets and work inside a named namespace, from a thread, never a fork.

A fork of the device process takes CPU from its workers while they move frames
(tests/e2e/test_traffic.py has the frames it cost); every socket softena opens
in the lab peer's namespace goes through here."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest

from softena.netdev.genl import NetdevGenl
from softena.netns import iproute_in, run_in, socket_in
from softena.ports.link import LinkWatch

NETNS = "sftns0"


@pytest.fixture
def netns(monkeypatch: pytest.MonkeyPatch):
    """A fresh namespace with a veth pair in it, and os.fork() made to fail while the test runs."""
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        subprocess.run(["ip", "-n", NETNS, "link", "add", "sftv0", "type", "veth", "peer", "name", "sftv1"], check=True)

        def no_fork() -> int:
            raise AssertionError("softena.netns forked")

        monkeypatch.setattr(os, "fork", no_fork)
        yield NETNS
    finally:
        monkeypatch.undo()
        subprocess.run(["ip", "netns", "del", NETNS], check=True)


def test_work_runs_inside_the_namespace_and_the_caller_stays_out(netns: str) -> None:
    inside = run_in(netns, lambda: {name for _, name in socket.if_nameindex()})
    assert inside == {"lo", "sftv0", "sftv1"}
    assert "sftv0" not in {name for _, name in socket.if_nameindex()}


def test_sockets_made_there_speak_of_its_links(netns: str) -> None:
    with iproute_in(netns) as ipr:
        assert ipr.link_lookup(ifname="sftv0")
    with NetdevGenl(netns=netns) as genl:
        assert {dev["ifindex"] for dev in genl.dump("dev-get", {})} >= {1}
    seen: list = []
    got = threading.Event()

    class Watch(LinkWatch):
        def link_changed(self, msg) -> None:
            seen.append(msg)
            got.set()

    watch = Watch("softena/sft-test", "sftv0", netns=netns)
    watch.start()
    try:
        assert got.wait(5)
    finally:
        watch.stop()
    assert seen[0] is not None and seen[0].get_attr("IFLA_IFNAME") == "sftv0"
    with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))


def test_a_missing_namespace_is_an_error_and_is_never_made() -> None:
    with pytest.raises(FileNotFoundError):
        run_in("sftns-missing", lambda: None)
    with pytest.raises(OSError):
        NetdevGenl(netns="sftns-missing")
    assert not os.path.exists("/run/netns/sftns-missing")


def test_what_the_work_raises_reaches_the_caller(netns: str) -> None:
    def fails() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        run_in(netns, fails)
