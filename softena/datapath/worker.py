"""Queue workers: one pinned thread per queue pair, the device's NAPI context."""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

from softena.datapath.native import ffi
from softena.threads import name_this_thread

PR_SET_TIMERSLACK = 29
# The naps of interrupt moderation and of a deferral are microseconds long:
# the default 50 us of timer slack would stretch each one to that.
TIMER_SLACK_NS = 1000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class NapiConfig:
    """Polling knobs: what napi-set and ethtool -C change."""

    budget: int = 64
    busy_poll_us: int = 0
    sleep_timeout_ms: int = 1000
    rx_usecs: int = 0  # interrupt moderation (ethtool -C)
    tx_usecs: int = 0
    adaptive_rx: bool = False  # moderate Rx only while a poll fills a quarter of its budget


    def native(self):
        """The struct sn_poll_config the workers read at every turn of their loop."""
        cfg = ffi.new("struct sn_poll_config *")
        cfg.budget, cfg.busy_poll_us, cfg.sleep_timeout_ms = self.budget, self.busy_poll_us, self.sleep_timeout_ms
        cfg.rx_usecs, cfg.tx_usecs, cfg.adaptive_rx = self.rx_usecs, self.tx_usecs, self.adaptive_rx
        return cfg


class QueueWorker(threading.Thread):
    """Runs the queue's NAPI loop (sn_napi_run: poll in batches, sleep in poll() when idle)."""

    def __init__(self, datapath, dev_name: str, qid: int, cpu: int, napi: NapiConfig, settings) -> None:
        super().__init__(name=f"softena/{dev_name}-{qid}", daemon=True)
        self.datapath = datapath
        self.qid = qid
        self.cpu = cpu
        self.napi = napi
        # The queue's napi-set settings (defer_hard_irqs, gro_flush_timeout,
        # irq_suspend_timeout): they belong to the queue index, as the kernel's
        # napi_config, and each datapath this queue is rebuilt into gets them.
        self.settings = settings
        self.tid: int | None = None
        self._started = threading.Event()

    def run(self) -> None:
        self.tid = threading.get_native_id()
        os.sched_setaffinity(0, {self.cpu})  # 0: this thread
        name_this_thread(self.name)
        _libc.prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0)
        self.datapath.set_napi(self.qid, self.settings)
        self._started.set()
        # The whole loop runs in C with the GIL released, until stop().
        self.datapath.run(self.qid)

    def wait_started(self, timeout: float = 5.0) -> bool:
        """Block until the thread is pinned and named."""
        return self._started.wait(timeout)

    def stop(self) -> None:
        """Ask the loop to end and wake it; join() afterwards."""
        self.datapath.stop_queue(self.qid)


def cpu_for_queue(qid: int, cpus: list[int]) -> int:
    """Round-robin placement over the allowed CPUs."""
    return cpus[qid % len(cpus)]
