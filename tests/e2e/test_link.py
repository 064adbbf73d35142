"""AENQ: the device follows its wire's link, and keeps alive every second."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

from conftest import device_status, run, wait_for

from softena.control import ctlsock


def carrier(ifname: str) -> bool:
    entry = json.loads(run(["ip", "-j", "link", "show", ifname], check=True).stdout)[0]
    return "NO-CARRIER" not in entry["flags"]


def wait_carrier(ifname: str, want: bool, within: float) -> float:
    """Seconds until IFNAME's carrier is WANT; fails past WITHIN."""
    return wait_for(lambda: carrier(ifname) == want, within, f"{ifname} carrier {'up' if want else 'down'}")


def test_peer_end_going_down_takes_the_carrier_within_a_second_and_back(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    assert carrier("sft0")
    run(["ip", "netns", "exec", dev.netns, "ip", "link", "set", "eth0", "down"], check=True)
    wait_carrier("sft0", False, within=1.0)
    run(["ip", "netns", "exec", dev.netns, "ip", "link", "set", "eth0", "up"], check=True)
    wait_carrier("sft0", True, within=1.0)
    assert run(["ping", "-c", "1", "-W", "2", dev.peer_v4]).returncode == 0
    aenq = dev.stats()["aenq"]
    assert aenq["link_change"] >= 3  # up at start, down, up


def test_wire_set_down_with_ip_link_takes_the_carrier(softena_up) -> None:
    softena_up("sft0", "--queues", "1")
    run(["ip", "link", "set", "sft0-wire", "down"], check=True)
    wait_carrier("sft0", False, within=1.0)
    run(["ip", "link", "set", "sft0-wire", "up"], check=True)
    wait_carrier("sft0", True, within=1.0)


def test_peer_namespace_disappearing_leaves_no_carrier(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    run(["ip", "netns", "del", dev.netns], check=True)
    wait_carrier("sft0", False, within=1.0)
    assert dev.stats()["link"] == "down"


def udp_blast(address: str, seconds: float, stop: threading.Event) -> None:
    """Small datagrams to ADDRESS's discard port as fast as one socket sends,
    for at most SECONDS or until STOP: well over a stream's frame rate."""
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while time.monotonic() < deadline and not stop.is_set():
            for _ in range(100):
                with contextlib.suppress(OSError):  # no route once the carrier is gone
                    s.sendto(b"softena", (address, 9))


def test_peer_namespace_disappearing_while_moderated_leaves_no_carrier(softena_up) -> None:
    """While the lab peer is moderated, the device holds a netlink socket in its
    namespace, which keeps the namespace alive: it must let go at once."""
    dev = softena_up("sft0", "--queues", "1")
    stop = threading.Event()
    blast = threading.Thread(target=udp_blast, args=(dev.peer_v4, 8.0, stop))
    blast.start()
    try:
        wait_for(lambda: device_status("sft0")["lab"]["peer-moderated"], within=3, what="the peer moderated")
        run(["ip", "netns", "del", dev.netns], check=True)
        wait_carrier("sft0", False, within=1.5)
    finally:
        stop.set()
        blast.join(timeout=10)
    assert dev.stats()["link"] == "down"


def test_tap_wire_peer_namespace_disappearing_leaves_no_carrier(softena_up) -> None:
    """The device's own socket in that namespace keeps it alive: its name going is the sign."""
    dev = softena_up("sft0", "--queues", "1", "--wire", "tap")
    assert carrier("sft0")
    run(["ip", "netns", "del", dev.netns], check=True)
    wait_carrier("sft0", False, within=2.0)  # the device looks once a second
    assert dev.stats()["link"] == "down"


def test_tap_wire_follows_its_peer_end(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--wire", "tap")
    run(["ip", "netns", "exec", dev.netns, "ip", "link", "set", "eth0", "down"], check=True)
    wait_carrier("sft0", False, within=1.0)
    run(["ip", "netns", "exec", dev.netns, "ip", "link", "set", "eth0", "up"], check=True)
    wait_carrier("sft0", True, within=1.0)


def test_keep_alive_arrives_every_second(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    # The device's counter is read over its control socket, in process: a
    # `softena stats` started on a loaded machine once took a second longer
    # the second time, and the window held 5 keep-alives.
    started = time.monotonic()
    first = ctlsock.request(dev.name, "stats", timeout=5)["aenq"]["keep_alive"]
    time.sleep(3.2)
    stats = ctlsock.request(dev.name, "stats", timeout=5)
    window = time.monotonic() - started
    # One a second, never faster: at most one per whole second of the window
    # plus one, and one more the first read may have found still queued.
    assert 2 <= stats["aenq"]["keep_alive"] - first <= int(window) + 2, window
    assert stats["keep-alive-age"] < 1.5
