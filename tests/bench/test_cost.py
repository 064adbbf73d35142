"""The bench's CPU readings are the scheduler's exact times, exited threads included."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import types

from conftest import bench_module

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Burns CPU in a thread that exits and in the main thread, prints what the
# process and its main thread have used by their own clocks, then idles
# until its stdin closes.
CHILD = """
import sys, threading, time
def burn(s):
    end = time.thread_time() + s
    while time.thread_time() < end:
        pass
t = threading.Thread(target=burn, args=(0.15,)); t.start(); t.join()
burn(0.1)
print(time.process_time(), time.thread_time(), flush=True)
sys.stdin.read()
"""


def cost_module() -> types.ModuleType:
    return bench_module("cost")


def test_process_and_thread_cpu_match_the_process_own_clocks() -> None:
    cost = cost_module()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        process_own, main_own = map(float, child.stdout.readline().split())
        process, main = cost.process_cpu(child.pid), cost.thread_cpu(f"/proc/{child.pid}/task/{child.pid}")
    finally:
        child.communicate("")
    assert process_own > 0.24  # the exited thread's 0.15 s is in it
    # The same clocks, read a moment later by another process: equal but for
    # the child's last instructions, far under a 10 ms clock tick.
    assert 0 <= process - process_own < 0.003
    assert 0 <= main - main_own < 0.003
    assert process - main > 0.14  # the exited thread counts for the process only


def test_a_process_that_is_gone_reads_none() -> None:
    cost = cost_module()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(child.stdout)
    assert cost.process_cpu(pid) is None and cost.thread_cpu(f"/proc/{pid}") is None
    assert cost.snapshot(pid).process is None


def test_stolen_cpu_reads_the_steal_column_of_proc_stat(tmp_path: pathlib.Path) -> None:
    """The eighth time of /proc/stat's "cpu" line (steal), in seconds; this machine's own reads too."""
    cost = cost_module()
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")
    stat.write_text(f"cpu  10 0 20 300 4 0 1 {5 * ticks} 0 0\ncpu0 5 0 10 150 2 0 1 {2 * ticks} 0 0\n")
    assert cost.stolen_cpu(str(stat)) == 5.0
    stat.write_text("intr 1 2 3\n")
    assert cost.stolen_cpu(str(stat)) is None
    assert cost.stolen_cpu(str(tmp_path / "missing")) is None
    now = cost.stolen_cpu()
    assert now is not None and now >= 0


def test_stolen_pct_is_a_share_of_every_cpus_time() -> None:
    cost = cost_module()
    assert cost.stolen_pct(10.0, 11.0, wall=5.0, cpus=2) == 10.0  # 1 s of 10 CPU-seconds
    assert cost.stolen_pct(None, 11.0, wall=5.0, cpus=2) is None
    assert cost.stolen_pct(10.0, 11.0, wall=0.0, cpus=2) is None
