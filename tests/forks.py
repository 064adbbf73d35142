"""Counting the processes a process forks, in the kernel (a bcc probe on the
sched_process_fork tracepoint), for tests that hold a process to no fork.
A fork is over in milliseconds, too soon for a poll of /proc to see it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from softena.trace.btf import Btf
from softena.trace.checks import import_bcc

# The tracepoint fires for threads too (clone with CLONE_THREAD); a new
# process is a child that leads a thread group of its own. The child's tgid
# is read at its offset in the running kernel's task_struct, from its BTF, as
# `softena trace` reads its structs (the headers bcc finds may be another
# kernel's).
PROGRAM = r"""
BPF_ARRAY(forks, u64, 1);

RAW_TRACEPOINT_PROBE(sched_process_fork)
{
    const char *child = (const char *)ctx->args[1];
    u32 parent_tgid = bpf_get_current_pid_tgid() >> 32;
    u32 child_tgid = 0;

    bpf_probe_read_kernel(&child_tgid, sizeof(child_tgid), child + TASK_TGID);

    if (parent_tgid == WATCHED && child_tgid != WATCHED) {
        int zero = 0;
        u64 *n = forks.lookup(&zero);
        if (n)
            __sync_fetch_and_add(n, 1);
    }
    return 0;
}
"""


class ForkCount:
    """The processes forked so far by the process watched."""

    def __init__(self, bpf) -> None:
        self._forks = bpf[b"forks"]

    @property
    def value(self) -> int:
        return int(self._forks[0].value)


@contextlib.contextmanager
def forks_of(pid: int) -> Iterator[ForkCount]:
    """Count the processes PID forks while the block runs (its threads do not count)."""
    tgid_at = Btf.load().offset("task_struct", "tgid")
    bpf = import_bcc().BPF(text=PROGRAM.encode(), cflags=[f"-DWATCHED={pid}", f"-DTASK_TGID={tgid_at}"])
    try:
        yield ForkCount(bpf)
    finally:
        bpf.cleanup()
