"""Bring-up, teardown and crash recovery of a device, on real kernel objects."""

from __future__ import annotations

import os
import signal
import time

import psutil
from conftest import Snapshot, device_status, links, namespaces, run, xdp_programs


def wait_gone(pid: int, timeout: float = 20) -> None:
    """Wait until PID has exited with all its threads (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE and len(os.listdir(f"/proc/{pid}/task")) == 1:
                return
        except (psutil.NoSuchProcess, FileNotFoundError):
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still runs")


def test_up_creates_tap_wire_namespace_and_xdp_program_and_down_removes_them() -> None:
    before = Snapshot.take()
    try:
        run(["softena", "up", "sft0", "--queues", "2"], check=True)
        status = device_status("sft0")
        assert {"sft0", "sft0-wire"} <= links()
        assert "sft0-peer" in namespaces()
        assert xdp_programs() == before.xdp_programs + 1
        assert os.path.exists("/run/softena/sft0.sock")
        assert oct(os.stat("/run/softena/sft0.sock").st_mode & 0o777) == "0o600"
        pid = status["pid"]
    finally:
        down = run(["softena", "down", "sft0"])
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "sft0: down" and "clearing" not in down.stderr, down
    wait_gone(pid)
    assert Snapshot.take() == before


def test_workers_are_named_per_queue_and_pinned_round_robin(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "3", "--cpus", "0")
    threads = {}
    for t in psutil.Process(dev.pid).threads():
        with open(f"/proc/{dev.pid}/task/{t.id}/comm") as f:
            threads[f.read().strip()] = t.id
    for q in range(3):
        tid = threads[f"softena/sft0-{q}"]
        assert os.sched_getaffinity(tid) == {0}
    assert dev.status["cpus"] == [0, 0, 0]
    assert dev.status["threads"] == ["softena/sft0-0", "softena/sft0-1", "softena/sft0-2"]


def test_status_shows_queues_cpus_wire_and_its_xdp_mode(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    assert dev.status["queues"] == 2
    assert dev.status["wire-ifname"] == "sft0-wire"
    assert dev.status["wire-mode"].startswith(("native", "generic"))
    table = run(["softena", "status"], check=True).stdout
    assert "sft0" in table and "native" in table


def test_idle_device_costs_under_two_percent_of_one_core(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    proc = psutil.Process(dev.pid)
    time.sleep(1.0)  # let bring-up's own work settle
    start, t0 = proc.cpu_times(), time.monotonic()
    time.sleep(5.0)
    end, elapsed = proc.cpu_times(), time.monotonic() - t0
    used = (end.user + end.system) - (start.user + start.system)
    assert used / elapsed < 0.02, f"idle device used {100 * used / elapsed:.1f}% of a core"


def test_sigterm_tears_down_in_order_and_leaves_nothing() -> None:
    before = Snapshot.take()
    run(["softena", "up", "sft0", "--queues", "2"], check=True)
    pid = device_status("sft0")["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid)
    finally:
        run(["softena", "down", "sft0"])
    assert Snapshot.take() == before


def kill_hard(name: str) -> int:
    pid = device_status(name)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    return pid


def test_after_kill_9_the_next_up_clears_the_leftovers_and_works(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    kill_hard("sft0")
    # The kernel took the tap and the XDP link with the process; the rest stays.
    assert "sft0" not in links() and "sft0-peer" in namespaces()
    assert xdp_programs() == 0
    again = softena_up("sft0", "--queues", "2")
    assert again.pid != dev.pid
    assert run(["ping", "-c", "1", "-W", "2", again.peer_v4]).returncode == 0


def test_after_kill_9_down_clears_everything() -> None:
    before = Snapshot.take()
    run(["softena", "up", "sft0", "--queues", "2"], check=True)
    try:
        kill_hard("sft0")
    finally:
        down = run(["softena", "down", "sft0"])
    assert down.returncode == 0, down.stderr
    assert "cleared" in down.stdout
    assert Snapshot.take() == before
