"""Accelerated RFS for the host: a flow goes to the queue on the CPU that reads it.

With `ethtool -K ntuple on`, the recorder (bpf/softena_rfs.bpf.c) notes the CPU
of every host read of the device's frames, and the wire's steering stage and
the datapath put the flow's next frames on the queue whose worker runs there.
A flow is shown following its reader from one CPU to the other and back, on
both software wires and over IPv6, and staying on its RSS queue with the
feature off; the recorder is attached only while the feature is on, and the
feature's own switch is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import device_status, run

PORT = 5301  # the reader's
SPORT = 5302  # the sender's: one fixed flow
FRAMES = 400

# A connected UDP socket: the flow the kernel's RFS would record too.
READER = textwrap.dedent("""
    import os, socket, sys
    cpu, family, host, peer, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    os.sched_setaffinity(0, {cpu})
    s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, %d))
    s.connect((peer, %d))
    s.settimeout(5)
    print("ready", flush=True)
    n = 0
    try:
        while n < count:
            s.recv(2048)
            n += 1
    except socket.timeout:
        pass
    print(n, flush=True)
""" % (PORT, SPORT))

SENDER = textwrap.dedent("""
    import socket, sys, time
    family, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_INET6 if family == "6" else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", %d))
    for _ in range(count):
        s.sendto(b"x" * 64, (host, %d))
        time.sleep(0.0005)  # paced: the reader keeps up, and records as it reads
""" % (SPORT, PORT))


def per_queue(dev, key: str) -> list[int]:
    return [q[key] for q in dev.stats()["queues"]]


def ethtool(*args: str) -> subprocess.CompletedProcess:
    return run(["softena", "ethtool", *args])


def addresses(dev, family: str) -> tuple[str, str]:
    lab = dev.status["lab"]
    i = 1 if family == "6" else 0
    return lab["host"][i].replace(":0:0::", "::"), lab["peer"][i].replace(":0:0::", "::")


def read_flow_on(dev, cpu: int, family: str = "4") -> list[int]:
    """Frames each queue received while a reader pinned to CPU read one UDP flow from the peer."""
    host, peer = addresses(dev, family)
    before = per_queue(dev, "rx-packets")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cpu), family, host, peer, str(FRAMES)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        run(["ip", "netns", "exec", dev.netns, sys.executable, "-c", SENDER, family, host, str(FRAMES)],
            check=True, timeout=30)
        got = int(reader.communicate(timeout=10)[0].strip())
    finally:
        reader.kill()
        reader.wait()
    assert got == FRAMES, f"the reader got {got} of {FRAMES}"
    return [a - b for a, b in zip(per_queue(dev, "rx-packets"), before)]


def recorder_links(pid: int) -> int:
    """The device process's fds that attach a program to a tracepoint: the recorder's, while aRFS is on."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                n += "link_type:\traw_tracepoint" in f.read()
        except OSError:
            continue  # closed meanwhile
    return n


@pytest.fixture
def two_cpus() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("aRFS moves flows between CPUs: this machine has one")
    return cpus[0], cpus[1]


@pytest.mark.parametrize("wire, family", [("lab", "4"), ("tap", "4"), ("lab", "6")])
def test_a_flow_follows_the_cpu_that_reads_it(softena_up, two_cpus, wire: str, family: str) -> None:
    dev = softena_up("sft0", "--queues", "2", "--cpus", f"{two_cpus[0]},{two_cpus[1]}", "--wire", wire)
    assert dev.status["arfs"] == "off (ethtool -K ntuple on)"
    ethtool("-K", "sft0", "ntuple", "on").check_returncode()
    assert device_status("sft0")["arfs"] == "on, 2 CPUs"
    arfs0, out0 = sum(per_queue(dev, "rx-arfs-steered")), sum(per_queue(dev, "rx-steered-out"))
    for cpu in (*two_cpus, two_cpus[0]):
        received = read_flow_on(dev, cpu, family)
        # The first frames may go by RSS, until the reader has read one.
        assert received[dev.status["cpus"].index(cpu)] >= 0.9 * FRAMES, f"reader on CPU {cpu}: {received}"
    assert sum(per_queue(dev, "rx-arfs-steered")) - arfs0 >= 0.9 * 3 * FRAMES
    # The wire's steering stage put the frames on that queue: none was handed between workers.
    assert sum(per_queue(dev, "rx-steered-out")) - out0 <= 0.1 * FRAMES


def test_with_ntuple_off_rss_alone_places_the_flow_and_nothing_records(softena_up, two_cpus) -> None:
    dev = softena_up("sft0", "--queues", "2", "--cpus", f"{two_cpus[0]},{two_cpus[1]}")
    assert recorder_links(dev.pid) == 0
    ethtool("-K", "sft0", "ntuple", "on").check_returncode()
    assert recorder_links(dev.pid) == 2  # every skb copy; connected UDP sockets' reads
    ethtool("-K", "sft0", "ntuple", "off").check_returncode()
    assert recorder_links(dev.pid) == 0
    arfs0 = sum(per_queue(dev, "rx-arfs-steered"))
    places = []
    for cpu in two_cpus:
        received = read_flow_on(dev, cpu)
        places.append(received.index(max(received)))
        assert max(received) >= FRAMES, received
    assert places[0] == places[1], "RSS alone keeps one flow on one queue, wherever it is read"
    assert sum(per_queue(dev, "rx-arfs-steered")) == arfs0


def test_ntuple_filters_is_a_feature_with_the_kernels_names(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    assert "ntuple-filters: off" in run(["softena", "ethtool", "-k", "sft0"], check=True).stdout
    for word in ("ntuple", "rx-ntuple-filter", "ntuple-filters"):
        ethtool("-K", "sft0", word, "on").check_returncode()
        assert "ntuple-filters: on" in run(["softena", "ethtool", "-k", "sft0"], check=True).stdout
        ethtool("-K", "sft0", word, "off").check_returncode()
    assert "ntuple-filters: off" in run(["softena", "ethtool", "-k", "sft0"], check=True).stdout


def test_the_flow_table_outlives_a_reset_and_follows_a_channel_change(softena_up, two_cpus) -> None:
    dev = softena_up("sft0", "--queues", "2", "--cpus", f"{two_cpus[0]},{two_cpus[1]}", "--max-queues", "4")
    ethtool("-K", "sft0", "ntuple", "on").check_returncode()
    run(["softena", "reset", "sft0"], check=True)
    received = read_flow_on(dev, two_cpus[1])
    assert received[1] >= 0.9 * FRAMES, received
    ethtool("-L", "sft0", "combined", "1").check_returncode()
    assert device_status("sft0")["arfs"] == "on, idle: one queue"
    ethtool("-L", "sft0", "combined", "4").check_returncode()  # queues 0 and 2 on the first CPU, 1 and 3 on the other
    dev.status = device_status("sft0")
    assert dev.status["arfs"] == "on, 2 CPUs"
    for cpu in two_cpus:
        received = read_flow_on(dev, cpu)
        on_cpu = [q for q, c in enumerate(dev.status["cpus"]) if c == cpu]
        assert sum(received[q] for q in on_cpu) >= 0.9 * FRAMES, (cpu, received)
