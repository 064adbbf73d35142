"""The bench's CPU readings are the scheduler's exact times, exited threads included."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import types

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
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return __import__("cost")
    finally:
        sys.path.remove(str(ROOT / "bench"))


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
