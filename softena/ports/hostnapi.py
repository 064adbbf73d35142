"""The host's NAPI threads of the tap, placed as a NIC's queue interrupts are.

A NIC raises queue i's interrupt on the CPU its driver made it affine to, and
the host's receive (NAPI, in softirq) runs there, on a CPU that was idle:
the scheduler then wakes the reading task where it sleeps. softena's worker
is a thread, not an interrupt: when its tap write wakes a reader on its own
CPU, that CPU is busy, and the scheduler moves the reader to an idle CPU
(select_idle_sibling()), a cross-CPU wake-up each time and, with aRFS, a
flow chasing its reader. Only a per-CPU kernel thread may wake a task onto
its own CPU (the "kworker stacking" rule), and only when it runs alone.

So with `--host-napi affine` the tap's queues are opened with IFF_NAPI and
threaded NAPI, and queue i's NAPI thread is bound to worker i's CPU (a
per-CPU kernel thread, as the rule wants) and given SCHED_BATCH, which does
not preempt on wake-up: it runs when the worker sleeps, alone, like softirq
after an interrupt, and wakes the reader where it sleeps.

tun's NAPI instances have no NAPI id, so their threads are all named
napi/<dev>-0 and nothing maps one to its queue; each queue is opened alone
and the one thread that appears with it is its own.
"""

from __future__ import annotations

import os
from typing import Callable

import psutil

from softena.errors import SoftenaError
from softena.ports import tap

KTHREADD_PID = 2  # the parent of every kernel thread


def napi_threads(ifname: str) -> set[int]:
    """The pids of the kernel's NAPI threads of IFNAME (napi/IFNAME-ID, cut to 15 bytes).
    Only digits may follow the prefix, so that another interface whose name
    starts with IFNAME- (napi/ena0-wire-3 beside napi/ena0-0) is not taken for it."""
    prefix = f"napi/{ifname}-"[:15]

    def ours(name: str) -> bool:
        return name == prefix or (name.startswith(prefix) and name[len(prefix):].isdigit())

    return {p.info["pid"] for p in psutil.process_iter(["pid", "name", "ppid"])
            if p.info["ppid"] == KTHREADD_PID and ours(p.info["name"] or "")}


def place(pid: int, cpu: int) -> None:
    """Bind NAPI thread PID to CPU, with SCHED_BATCH: no preemption of the worker on wake-up."""
    try:
        os.sched_setaffinity(pid, {cpu})
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:
        raise SoftenaError(f"cannot place NAPI thread {pid} on CPU {cpu}: {exc.strerror} "
                           f"(it takes cap_sys_nice; --host-napi inline needs none)") from exc


def placed(ifname: str, cpus: list[int]) -> bool:
    """Whether IFNAME's NAPI threads are one per CPU of CPUS (a CPU listed twice: two
    threads there), each bound to that CPU alone with SCHED_BATCH, as place() left them.
    An admin who writes /sys/class/net/DEV/threaded off and on gets new, unbound threads."""
    found: list[int] = []
    for pid in napi_threads(ifname):
        try:
            affinity, policy = os.sched_getaffinity(pid), os.sched_getscheduler(pid)
        except OSError:  # a thread that went with its queue, or with threaded NAPI
            return False
        if len(affinity) != 1 or policy != os.SCHED_BATCH:
            return False
        found += affinity
    return sorted(found) == sorted(cpus)


def open_queues(name: str, first: int, count: int, offloads: int, cpu_of: Callable[[int], int]) -> list[int]:
    """Open tap NAME's queues FIRST..FIRST+COUNT-1 with threaded NAPI, one at a time,
    each queue's NAPI thread on CPU_OF(queue). Queue 0 creates the tap and turns
    threaded NAPI on, so every queue after gets its thread as it attaches."""
    fds: list[int] = []
    try:
        for q in range(first, first + count):
            before = napi_threads(name)
            fds += tap.open_queues(name, 1, offloads, napi=True)
            if q == 0:
                tap.set_threaded(name, True)
            new = napi_threads(name) - before
            if len(new) != 1:
                raise SoftenaError(f"{name}: queue {q} should have brought one NAPI thread, "
                                   f"{len(new)} appeared (another device of a like name?)")
            place(new.pop(), cpu_of(q))
    except (SoftenaError, OSError):
        tap.close_all(fds)
        raise
    return fds


def resize_queues(name: str, fds: list[int], count: int, offloads: int, cpu_of: Callable[[int], int]) -> None:
    """Grow or shrink tap NAME's queues to COUNT in place in FDS, as tap.resize_queues(),
    a new queue's NAPI thread placed on CPU_OF(queue); a closed queue's thread goes with it."""
    if count > len(fds):
        fds += open_queues(name, len(fds), count - len(fds), offloads, cpu_of)
    else:
        tap.resize_queues(name, fds, count, offloads)
