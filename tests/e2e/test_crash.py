"""Crash safety: kill -9 under load leaves nothing the next `up` trips on, and one device has one process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from conftest import Snapshot, device_status, links, namespaces, run, run_files, wait_for, xdp_programs
from iperf import wait_listening
from test_lifecycle import wait_gone

HOLDER = re.compile(r"softena: sft0: already driven by softena process (\d+) \(started [0-9-]{10} [0-9:]{8}\)")


def test_kill_9_under_load_then_up_again_finds_nothing_stale_and_passes_traffic(softena_up, tmp_path) -> None:
    before = Snapshot.take()
    dev = softena_up("sft0", "--queues", "2")
    pidfile = tmp_path / "iperf3.pid"
    server = subprocess.Popen(["ip", "netns", "exec", dev.netns, "iperf3", "-s", "-1", "-p", "5201",
                               "--pidfile", str(pidfile)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = None
    try:
        wait_listening(dev.netns, 5201)
        client = subprocess.Popen(["iperf3", "-c", dev.peer_v4, "-p", "5201", "-t", "10"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)  # the stream is running
        assert client.poll() is None
        os.kill(dev.pid, signal.SIGKILL)
        wait_gone(dev.pid)
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if pidfile.exists():  # the server runs on as ip netns exec's child
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    # The lock went with the process; the record and the namespace stayed for the next up.
    assert "sft0.lock" in run_files() and "sft0-peer" in namespaces()
    again = softena_up("sft0", "--queues", "2")
    assert again.pid != dev.pid
    assert run(["ping", "-c", "20", "-i", "0.02", "-W", "2", again.peer_v4]).returncode == 0
    # Exactly one device's worth: the new one's links, namespace, program and files, nothing stale.
    assert links() - before.links == {"sft0", "sft0-wire"}
    assert namespaces() - before.namespaces == {"sft0-peer"}
    assert xdp_programs() == before.xdp_programs + 1
    assert run_files() - before.run_files == {"sft0.json", "sft0.sock", "sft0.log", "sft0.lock"}
    with open("/run/softena/sft0.lock") as f:
        assert f.read().split()[0] == str(again.pid)
    with open("/run/softena/sft0.log") as f:  # the new process logs to the file `softena up` gave it
        assert "up: 2 queue pairs" in f.read().split("clearing what pid")[-1]


def test_of_two_ups_at_once_exactly_one_drives_the_device_and_the_other_names_it() -> None:
    before = Snapshot.take()
    procs = [subprocess.Popen(["softena", "up", "sft0", "--queues", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    try:
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        pid = device_status("sft0")["pid"]
        loser = next(err for code, _, err in results if code == 1)
        match = HOLDER.fullmatch(loser.strip())
        assert match and int(match.group(1)) == pid, loser
        peer = device_status("sft0")["lab"]["peer"][0]
        assert run(["ping", "-c", "3", "-i", "0.2", "-W", "2", peer]).returncode == 0
        # A third, later, is refused by `softena up` itself, before any process is started.
        third = run(["softena", "up", "sft0", "--queues", "1"])
        assert third.returncode == 1 and HOLDER.fullmatch(third.stderr.strip()), third.stderr
    finally:
        run(["softena", "down", "sft0"])
    wait_for(lambda: Snapshot.take() == before, within=10, what="nothing left")


def test_down_of_a_device_killed_hard_removes_its_lock_file_too() -> None:
    before = Snapshot.take()
    run(["softena", "up", "sft0", "--queues", "1"], check=True)
    try:
        pid = device_status("sft0")["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        down = run(["softena", "down", "sft0"])
    assert down.returncode == 0 and "cleared" in down.stdout, down
    assert Snapshot.take() == before
