"""The software wire's RSS stage: frames arrive on the queue the device's RSS picks.

softena/ports/steer.py puts a steering program where frames enter a software
wire (tcx at the lab peer's veth egress; the tap's tun steering program), fed
the device's key, indirection table, hash fields and queue count. It is right
when both queues receive (RSS spreads the flows) and no frame needs handing
to another worker (rx-steered-out stays put), after every change of the RSS
configuration too; and the device still hands frames over without it.
"""

from __future__ import annotations

import pytest
from conftest import run
from iperf import iperf3


# Mixed flows: TCP both ways and over IPv6, UDP, several streams each.
def mixed_traffic(dev) -> None:
    iperf3(dev.netns, dev.peer_v4, "-P", "4", duration=1)
    iperf3(dev.netns, dev.peer_v4, "-P", "4", "-R", duration=1)
    iperf3(dev.netns, dev.peer_v6, "-P", "3", "-R", duration=1)
    iperf3(dev.netns, dev.peer_v4, "-u", "-b", "100M", "-P", "3", "-R", duration=1)


def per_queue(dev, key: str) -> list[int]:
    return [q[key] for q in dev.stats()["queues"]]


def delta(before: list[int], after: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before)]


def ethtool(*args: str) -> None:
    run(["softena", "ethtool", *args], check=True)


def handed_over_and_received(dev) -> tuple[int, list[int]]:
    """Frames handed to another worker, and frames received per queue, over mixed traffic."""
    out0, rx0 = per_queue(dev, "rx-steered-out"), per_queue(dev, "rx-packets")
    mixed_traffic(dev)
    out1, rx1 = per_queue(dev, "rx-steered-out"), per_queue(dev, "rx-packets")
    return sum(delta(out0, out1)), delta(rx0, rx1)


# Frames the programs leave to the datapath: IPv6 with extension headers
# (MLD reports carry hop-by-hop), a handful per test.
STRAYS = 16


@pytest.mark.parametrize("wire, where", [("lab", "tcx on eth0 in sft0-peer"), ("tap", "tun steering on sft0-wire")])
def test_frames_arrive_on_their_rss_queue_and_none_is_handed_over(softena_up, wire: str, where: str) -> None:
    dev = softena_up("sft0", "--queues", "2", "--wire", wire)
    assert dev.status["wire-steering"] == f"by RSS, {where}"
    handed, received = handed_over_and_received(dev)
    assert min(received) > 1000, f"RSS should spread the flows over both queues: {received}"
    assert handed <= STRAYS, f"{handed} frames handed over; received {received}"


def test_steering_follows_the_indirection_table_and_the_hash_fields(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("-X", "sft0", "weight", "0", "1")  # everything to queue 1
    handed, received = handed_over_and_received(dev)
    assert handed <= STRAYS and received[1] > 10 * max(received[0], 1), received
    ethtool("-X", "sft0", "equal", "2")
    ethtool("-N", "sft0", "rx-flow-hash", "tcp4", "sd")  # addresses only: the 4 streams share a queue
    handed, received = handed_over_and_received(dev)
    assert handed <= STRAYS, f"{handed} frames handed over; received {received}"


def test_queue_count_changes_reach_the_steering_stage(softena_up) -> None:
    """Growing from 1 to 3 queues: every new queue receives (the lab veth grows with it), none hands over."""
    dev = softena_up("sft0", "--queues", "1", "--max-queues", "4")
    ethtool("-L", "sft0", "combined", "3")
    handed, received = handed_over_and_received(dev)
    assert len(received) == 3 and sum(1 for r in received if r > 100) >= 2, received
    assert handed <= STRAYS, f"{handed} frames handed over; received {received}"


def test_without_steering_the_workers_hand_frames_over(softena_up) -> None:
    """The control: the same traffic, no RSS stage, and the datapath does the steering."""
    dev = softena_up("sft0", "--queues", "2", "--no-steering")
    assert dev.status["wire-steering"] == "off (--no-steering)"
    handed, received = handed_over_and_received(dev)
    assert handed > 1000 and min(received) > 1000, (handed, received)


def test_rx_hashing_off_stops_steering_too(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("-K", "sft0", "rxhash", "off")
    handed, _ = handed_over_and_received(dev)
    assert handed == 0


def steering_programs() -> int:
    out = run(["bpftool", "prog", "show"]).stdout
    return out.count("softena_lab_steer") + out.count("softena_tap_steer")


def test_the_steering_program_goes_with_the_device(softena_up) -> None:
    before = steering_programs()
    softena_up("sft0", "--queues", "2")
    assert steering_programs() == before + 1
    run(["softena", "down", "sft0"], check=True)
    assert steering_programs() == before
