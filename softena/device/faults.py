"""Fault injection: what a user can make the device do wrong, on purpose, for a while.

No hardware NIC lets its user provoke its failures; a software one can, so
each watchdog and recovery path can be exercised with traffic running.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

KINDS = ("keep-alive-loss", "tx-completion-stall", "admin-timeout", "link-flap", "rx-alloc-fail",
         "wire-down", "corrupt-rx")


@dataclass
class Fault:
    kind: str
    queue: int | None
    until: float  # monotonic deadline; inf when it lasts until cleared


class FaultInjector:
    """The faults in force; the device's parts ask it whether to misbehave."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def inject(self, kind: str, queue: int | None = None, seconds: float | None = None) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(KINDS)}")
        fault = Fault(kind, queue, time.monotonic() + seconds if seconds else float("inf"))
        with self._lock:
            self._faults[kind] = fault
        return fault

    def active(self, kind: str) -> Fault | None:
        """The fault of KIND if it is in force now."""
        with self._lock:
            fault = self._faults.get(kind)
            if fault and time.monotonic() >= fault.until:
                del self._faults[kind]
                return None
            return fault

    def clear(self, kind: str | None = None) -> list[str]:
        """End one fault, or all; return the kinds that were in force."""
        with self._lock:
            kinds = [kind] if kind else list(self._faults)
            return [k for k in kinds if self._faults.pop(k, None)]

    def listing(self) -> list[dict]:
        now = time.monotonic()
        with self._lock:
            return [{"kind": f.kind, "queue": f.queue,
                     "remaining": None if f.until == float("inf") else round(f.until - now, 1)}
                    for f in self._faults.values() if f.until > now]
