"""Cost accounting: CPU time of the device process and of each worker thread, memory.

A snapshot before and after a measurement, and the difference divided by
what the measurement carried.  The times are the scheduler's own, in
nanoseconds: the process's CPU clock (clock_gettime on the clock id
clock_getcpuclockid() would give, which counts threads that have exited too)
and each thread's /proc/.../schedstat.  psutil and /proc/.../stat give the
same times rounded to clock ticks (10 ms), which is a third of a percent
over a 3-second idle reading; they are read only where the exact ones are
missing (a kernel without CONFIG_SCHED_INFO).  Worker threads are the ones
the kernel names `softena/<dev>-<queue>` (their comm, 15 bytes at most, always ends in the
queue number).  With `--host-napi threaded` the host's receive of the
device's Rx runs in kernel threads `napi/<dev>-N` instead of in the
workers: not the device process's CPU, so it is counted apart, as
"host-napi", to show where the work went.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKER_COMM = re.compile(r"^softena/.*-(\d+)$")
MIB = 1 << 20


def _stat_cpu(path: str) -> float | None:
    """utime + stime in seconds from a /proc/.../stat file, in clock ticks."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def thread_cpu(task_dir: str) -> float | None:
    """Seconds on CPU of the thread (or process leader) at TASK_DIR (/proc/PID or
    /proc/PID/task/TID): schedstat's first field, else stat's ticks."""
    try:
        with open(f"{task_dir}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return _stat_cpu(f"{task_dir}/stat")


def process_cpu(pid: int) -> float | None:
    """Seconds on CPU of every thread PID has had, exited ones included.

    Python has no clock_getcpuclockid(); its clock id is the kernel's
    encoding of a process CPU clock (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)).
    """
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9
    except OSError:  # gone, or not a thread-group leader
        return _stat_cpu(f"/proc/{pid}/stat")


@dataclass
class CpuSnapshot:
    """CPU seconds of one process and its worker threads at one moment."""

    when: float
    process: float | None
    workers: dict[str, float] = field(default_factory=dict)  # "q<N>" -> seconds


def _napi_threads_cpu(ifname: str) -> float | None:
    """CPU seconds of IFNAME's threaded-NAPI kernel threads, None if it has none."""
    total = None
    prefix = f"napi/{ifname}-"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith(prefix):
                    continue
        except OSError:
            continue
        cpu = thread_cpu(f"/proc/{pid}")
        if cpu is not None:
            total = (total or 0.0) + cpu
    return total


def snapshot(pid: int | None, host_ifname: str | None = None) -> CpuSnapshot:
    """The process's CPU time and each worker thread's, now; with HOST_IFNAME,
    also its host tap's NAPI threads, as "host-napi"."""
    snap = CpuSnapshot(time.monotonic(), None)
    if pid is None:
        return snap
    if host_ifname:
        napi = _napi_threads_cpu(host_ifname)
        if napi is not None:
            snap.workers["host-napi"] = napi
    snap.process = process_cpu(pid)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return snap
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        m = WORKER_COMM.match(comm)
        if m:
            cpu = thread_cpu(f"/proc/{pid}/task/{tid}")
            if cpu is not None:
                key = f"q{m.group(1)}"
                snap.workers[key] = snap.workers.get(key, 0.0) + cpu
    return snap


@dataclass
class CpuUse:
    """CPU used between two snapshots: seconds, and the wall time between them."""

    wall: float
    process: float | None
    workers: dict[str, float]

    @property
    def process_pct(self) -> float | None:
        """Process CPU as a percentage of one core."""
        return None if self.process is None or self.wall <= 0 else 100.0 * self.process / self.wall

    def per_gbit(self, gbps: float | None) -> dict[str, float | None]:
        """CPU seconds per Gbit carried (= cores busy per Gbit/s), process and each worker."""
        carried = (gbps or 0.0) * self.wall  # Gbit
        out: dict[str, float | None] = {"process": self.process / carried if self.process is not None
                                        and carried > 0 else None}
        for k, v in sorted(self.workers.items()):
            out[k] = v / carried if carried > 0 else None
        return out

    def as_dict(self) -> dict[str, object]:
        return {"wall_s": round(self.wall, 3), "process_cpu_s": self.process,
                "workers_cpu_s": dict(sorted(self.workers.items())), "process_pct": self.process_pct}


def used(a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
    """What was used from snapshot A to snapshot B (threads gone or new count from 0)."""
    proc = b.process - a.process if a.process is not None and b.process is not None else None
    workers = {k: v - a.workers.get(k, 0.0) for k, v in b.workers.items()}
    return CpuUse(b.when - a.when, proc, workers)


def stolen_cpu(stat: str = "/proc/stat") -> float | None:
    """CPU seconds the hypervisor has taken from this guest's CPUs since boot
    (the steal column of /proc/stat's "cpu" line, all CPUs together).

    On a shared machine another guest's load takes time from both sides of a
    comparison alike only if it is steady; the bench records how much each
    run lost, so a round that lost more is seen as such.
    """
    try:
        with open(stat) as f:
            fields = f.readline().split()
        return int(fields[8]) / CLK_TCK if fields[0] == "cpu" else None
    except (OSError, IndexError, ValueError):
        return None


def stolen_pct(before: float | None, after: float | None, wall: float, cpus: int | None = None) -> float | None:
    """The share of all CPUs' time stolen between two stolen_cpu() readings WALL s apart, in %."""
    cpus = cpus or os.cpu_count() or 1
    if before is None or after is None or wall <= 0:
        return None
    return 100.0 * (after - before) / (wall * cpus)


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of PID."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def umem_bytes(region: dict | None) -> int | None:
    """UMEM size from `softena stats --json`'s region: frames x frame-size (all queues)."""
    try:
        return int(region["frames"]) * int(region["frame-size"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None
