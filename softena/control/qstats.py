"""Device totals that never go back, as the kernel's netdev_stat_ops keep them.

Per-queue counters count from the queue's creation and vanish with it (a
rebuild, a reset, a ring or queue-count change). What they had counted moves
into the device base, like a driver's get_base_stats(); the device total is
base + live queues, so it only grows.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from softena.datapath.datapath import Datapath, QueueReading


@dataclass
class DeviceReading:
    """Live queues and device scope, read together so that they agree."""

    queues: list[QueueReading]
    queue_base: dict[str, int]
    pool_base: dict[str, int]
    queue_totals: dict[str, int]
    pool_totals: dict[str, int]


class StatsBase:
    """Counters of queues and page pools that no longer exist.

    Retiring a datapath (fold its last counters into the base, then free it)
    and reading (live queues + base) hold one lock, so a reader sees a queue
    either live or in the base, never both and never neither.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: Counter[str] = Counter()
        self._pool: Counter[str] = Counter()
        self._wire_missed = 0

    def retire(self, dp: Datapath) -> None:
        """Fold DP's counters into the base and close it, as one step."""
        with self._lock:
            for r in dp.read():
                self._queue.update(r.counters)
                self._pool.update(r.pool)
            dp.close()

    def fold_wire_missed(self, total: int) -> None:
        """Frames that reached the wire while no queue could take them
        (TOTAL: the wire program's count so far, never going back): the
        increase goes into the base, as rx-hw-drops and rx-wire-missed,
        which no queue of the moment can claim."""
        with self._lock:
            grew = total - self._wire_missed
            if grew > 0:
                self._wire_missed = total
                self._queue.update({"rx-hw-drops": grew, "rx-wire-missed": grew})

    def read(self, dp: Datapath | None) -> DeviceReading:
        """The live queues of DP (None: no datapath now) with device totals."""
        with self._lock:
            readings = dp.read() if dp is not None else []
            queue, pool = Counter(self._queue), Counter(self._pool)
            base = DeviceReading(readings, dict(self._queue), dict(self._pool), {}, {})
        for r in readings:
            queue.update(r.counters)
            pool.update(r.pool)
        base.queue_totals, base.pool_totals = dict(queue), dict(pool)
        return base
