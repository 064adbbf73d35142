"""Injected faults, each made real in the part it breaks.

softena.device.faults records what the user asked for (kind, queue,
deadline). This is the glue that makes each part misbehave and recover:
the datapath commits its faults per queue (completions left unreaped, no
Rx buffers, a flipped byte), the link faults take the wire or its carrier
down, and the admin queue and the keep-alive ask `active()` themselves.
"""

from __future__ import annotations

import threading

from softena.datapath.datapath import FAULT_BITS
from softena.device.aenq import Group
from softena.device.faults import FaultInjector
from softena.errors import SoftenaError
from softena.log import log
from softena.threads import start_timer


class DeviceFaults:
    """The faults in force on one device, and what each does to it."""

    def __init__(self, device) -> None:
        self.device = device
        self.registry = FaultInjector()
        self._committed: dict[int, int] = {}  # qid -> SN_FAULT_* bits the datapath has
        self._lock = threading.Lock()

    def active(self, kind: str):
        """The fault of KIND if it is in force now."""
        return self.registry.active(kind)

    def listing(self) -> list[dict]:
        return self.registry.listing()

    def inject(self, kind: str, queue: int | None, seconds: float | None) -> dict:
        """softena fault inject: each fault applies at once and lifts when its time is up."""
        dev = self.device
        if queue is not None and not 0 <= queue < dev.settings.queues:
            raise SoftenaError(f"{dev.name}: no queue {queue}")
        try:
            fault = self.registry.inject(kind, queue, seconds)
        except ValueError as exc:
            raise SoftenaError(f"{dev.name}: {exc}") from exc
        if kind == "link-flap":
            dev.aenq.post(Group.LINK_CHANGE, up=False)
            self._later(seconds or 1.0, lambda: self.clear("link-flap"))
        elif kind == "wire-down":
            dev.set_wire_up(False)
            if seconds:
                self._later(seconds, lambda: self.clear("wire-down"))
        elif kind in FAULT_BITS:
            self.sync_datapath()
            if seconds:  # lifted on time; the watchdog's once-a-second sync is only the net
                self._later(seconds, self.sync_datapath)
        log(dev.name, "warning", f"fault injected: {kind}" + (f" on queue {queue}" if queue is not None else "")
            + (f" for {seconds} s" if seconds else ""))
        return {"kind": fault.kind, "queue": fault.queue, "for": seconds}

    def clear(self, kind: str | None = None) -> list[str]:
        """softena fault clear: end one fault or all of them, undoing what each did."""
        dev = self.device
        cleared = self.registry.clear(kind)
        if "wire-down" in cleared:
            dev.set_wire_up(True)
        if "link-flap" in cleared and dev.aenq is not None and dev.link is not None:
            dev.aenq.post(Group.LINK_CHANGE, up=bool(dev.link.up))
        if set(cleared) & set(FAULT_BITS):
            self.sync_datapath()
        return cleared

    def sync_datapath(self, fresh: bool = False) -> None:
        """Give each queue the faults it must commit; expired ones lift here.

        FRESH: the datapath was just rebuilt and commits nothing yet.
        """
        dp = self.device.datapath  # read once: a rebuild may swap it meanwhile
        with self._lock:
            if fresh or dp is None:
                self._committed.clear()
            if dp is None:
                return
            wanted: dict[int, int] = {}
            for kind, bit in FAULT_BITS.items():
                fault = self.registry.active(kind)
                if fault is None:
                    continue
                for qid in range(dp.config.num_queues):
                    if fault.queue is None or fault.queue == qid:
                        wanted[qid] = wanted.get(qid, 0) | bit
            for qid in range(dp.config.num_queues):
                if wanted.get(qid, 0) != self._committed.get(qid, 0):
                    dp.set_faults(qid, wanted.get(qid, 0))
            self._committed = wanted

    def _later(self, seconds: float, action) -> None:
        start_timer(f"softena/{self.device.name}-fault", seconds, action)
