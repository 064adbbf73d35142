"""The driver's health watchdog: keep-alive, Tx completions, stuck queues, and resets.

Once a second it looks at what the device reports: the age of the last
KEEP_ALIVE, every queue's oldest Tx descriptor in flight and whether each
worker still polls. What it finds, and resets other parts ask for (an admin
command that timed out, the user), end in one device reset at a time,
carried out by this thread. Its tick also syncs the datapath's injected
faults (softena.control.faults), a net under each fault's own timer.

Once a second is ENA's timer service period (ena_timer_service()). A reset
asked for by another part wakes the thread at once; the watchdogs' own
timeouts are seconds long, so finer looks would only cost an idle device
CPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from softena.datapath.datapath import QueueReading
from softena.device.health import HealthStats, RateLimitedLog, ResetReason
from softena.threads import NamedThread

CHECK_PERIOD_S = 1.0


@dataclass
class Thresholds:
    """When the watchdogs fire (softena up --keep-alive-timeout ...)."""

    keep_alive_timeout: float = 6.0
    tx_timeout: float = 5.0
    missing_tx_threshold: int = 128
    stuck_queue_timeout: float = 3.0


class HealthMonitor(NamedThread):
    """Watches DEVICE and resets it when a watchdog fires or a reset is asked for."""

    def __init__(self, device, thresholds: Thresholds, stats: HealthStats) -> None:
        super().__init__(name=f"softena/{device.name}-wd")
        self.device = device
        self.thresholds = thresholds
        self.stats = stats
        self.log = RateLimitedLog(device.name)
        self._requests: list[ResetReason] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._polls: dict[int, tuple[int, float]] = {}  # qid -> (napi-polls, since)
        self._stale_tx: set[int] = set()
        self._seen: dict[int, dict[str, int]] = {}  # qid -> its counters at the last look

    def request_reset(self, reason: ResetReason) -> None:
        """Ask for a reset from any thread; this one carries it out."""
        if reason not in self._requests:
            self._requests.append(reason)
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(CHECK_PERIOD_S)
            self._wake.clear()
            if self._stopping.is_set():
                break
            self.device.faults.sync_datapath()  # lifts expired faults
            reason = self._requests.pop(0) if self._requests else self._check()
            if reason is not None:
                self._reset(reason)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout=30)

    # ---- watchdogs: one small check each, as ena_netdev.c's timer service --

    def _check(self) -> ResetReason | None:
        """Run every check on one reading of the datapath; the first that fires wins."""
        now = time.monotonic()
        reason = self.check_for_missing_keep_alive(now)
        if reason is not None:
            return reason
        if not self.device.workers:
            self._polls.clear()
            self._seen.clear()
            return None
        # Read once: a concurrent `ip link set down` may free the datapath
        # meanwhile, and then this reading is simply empty.
        dp = self.device.datapath
        queues = dp.read_health() if dp is not None else []
        for check in (self.check_for_bad_req_ids, self.check_for_rx_trouble,
                      self.check_for_missing_completions, self.check_for_missed_polls):
            reason = check(queues, now)
            if reason is not None:
                break
        for q in queues:
            self._seen[q.qid] = q.counters
        return reason

    def _grew(self, q: QueueReading, key: str) -> int:
        return q.counters[key] - self._seen.get(q.qid, q.counters)[key]

    def check_for_missing_keep_alive(self, now: float) -> ResetReason | None:
        last = self.device.last_keep_alive
        if last and now - last > self.thresholds.keep_alive_timeout:
            self.stats.wd_expired += 1
            self.log("err", "keep alive watchdog timeout")
            return ResetReason.KEEP_ALIVE_TO
        return None

    def check_for_bad_req_ids(self, queues: list[QueueReading], now: float) -> ResetReason | None:
        for q in queues:
            tx, rx = self._grew(q, "tx-bad-req-id"), self._grew(q, "rx-bad-req-id")
            self.stats.bad_tx_req_id += tx
            self.stats.bad_rx_req_id += rx
            if tx > 0:
                self.log("err", f"Invalid req_id in Tx completions of queue {q.qid}")
                return ResetReason.INV_TX_REQ_ID
            if rx > 0:
                self.log("err", f"Invalid req_id in Rx descriptors of queue {q.qid}")
                return ResetReason.INV_RX_REQ_ID
        return None

    def check_for_rx_trouble(self, queues: list[QueueReading], now: float) -> None:
        """Failed refills and bad checksums are logged, not reset for."""
        for q in queues:
            failed, bad = self._grew(q, "rx-alloc-fail"), self._grew(q, "rx-csum-bad")
            if failed > 0:
                self.log("warning", f"refilled rx queue {q.qid} with 0 pages only ({failed} failed refills)",
                         key="rx-alloc")
            if bad > 0:
                self.log("warning", f"rx queue {q.qid}: {bad} frames with bad checksums", key="csum-bad")
        return None

    def check_for_missing_completions(self, queues: list[QueueReading], now: float) -> ResetReason | None:
        t = self.thresholds
        now_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        missing = 0
        for q in queues:
            inflight = q.gauges["tx-inflight"]
            if inflight and now_ns - q.gauges["tx-cmpl-stamp-ns"] > t.tx_timeout * 1e9:
                if q.qid not in self._stale_tx:
                    self._stale_tx.add(q.qid)
                    self.stats.missing_tx_cmpl += inflight
                    self.log("warning", f"Found a Tx that wasn't completed on time, qid {q.qid}, "
                                        f"index {q.gauges['tx-oldest-slot']}.", key="missing-tx")
                missing += inflight
            else:
                self._stale_tx.discard(q.qid)
        if missing > t.missing_tx_threshold:
            self.log("err", f"The number of lost tx completion is above the threshold "
                            f"({missing} > {t.missing_tx_threshold}). Reset the device")
            return ResetReason.MISS_TX_CMPL
        return None

    def check_for_missed_polls(self, queues: list[QueueReading], now: float) -> ResetReason | None:
        """A worker whose poll count stands still is a lost interrupt."""
        for q in queues:
            polls, since = self._polls.get(q.qid, (-1, now))
            if q.counters["napi-polls"] != polls:
                self._polls[q.qid] = (q.counters["napi-polls"], now)
            elif now - since > self.thresholds.stuck_queue_timeout:
                self.stats.missing_intr += 1
                self.log("err", f"queue {q.qid} is no longer polled")
                return ResetReason.MISS_INTERRUPT
        return None

    # ---- reset ------------------------------------------------------------------

    def _reset(self, reason: ResetReason, attempts: int = 6) -> None:
        self.log("err", "trigger reset is on", key="reset")
        self.log("err", f"reset reason: {reason.name}", key="reset-reason")
        self.stats.reasons[reason.name] += 1
        delay = 0.1
        for _ in range(attempts):
            try:
                self.device.rebuild_io()
            except Exception as exc:  # any failure is retried: the device must come back
                self.stats.reset_fail += 1
                self.log("err", f"reset failed ({exc}); retrying in {delay:.1f} s", key="reset-fail")
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.stats.total_resets += 1
            self._requests.clear()  # what went wrong meanwhile, this reset has cured
            self._polls.clear()
            self._stale_tx.clear()
            self._seen.clear()
            self.device.faults.sync_datapath(fresh=True)
            self.device.last_keep_alive = time.monotonic()  # a fresh device, a fresh watchdog
            self.log("info", f"device reset done ({reason.name})", key="reset-done")
            return
        self.log("err", f"device did not come back after {attempts} attempts")
