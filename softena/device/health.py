"""Health: reset reasons, the counters a driver keeps about resets, and a rate-limited log.

Reasons carry the values of the ENA register interface (ena_regs_reset_reason_types);
counter names follow the ENA driver's ethtool statistics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum

from softena.log import log


class ResetReason(IntEnum):
    """enum ena_regs_reset_reason_types, with its values."""

    NORMAL = 0
    KEEP_ALIVE_TO = 1
    ADMIN_TO = 2
    MISS_TX_CMPL = 3
    INV_RX_REQ_ID = 4
    INV_TX_REQ_ID = 5
    TOO_MANY_RX_DESCS = 6
    INIT_ERR = 7
    DRIVER_INVALID_STATE = 8
    OS_TRIGGER = 9
    OS_NETDEV_WD = 10
    SHUTDOWN = 11
    USER_TRIGGER = 12
    GENERIC = 13
    MISS_INTERRUPT = 14
    SUSPECTED_POLL_STARVATION = 15
    RX_DESCRIPTOR_MALFORMED = 16
    TX_DESCRIPTOR_MALFORMED = 17
    MISSING_ADMIN_INTERRUPT = 18
    DEVICE_REQUEST = 19
    MISS_FIRST_INTERRUPT = 20


@dataclass
class HealthStats:
    """The driver's global counters about health, with ena_ethtool.c's names.

    Every one only grows. wd_expired: keep-alive watchdog expiries;
    missing_intr: a queue found no longer polled; missing_tx_cmpl: Tx
    descriptors found past the Tx timeout; bad_tx_req_id/bad_rx_req_id:
    completions or Rx descriptors naming no buffer of ours; admin_to: admin
    commands that did not complete in time; interface_up/down: the host
    interface's queues started and stopped by `ip link set`.
    """

    total_resets: int = 0
    reset_fail: int = 0
    wd_expired: int = 0
    missing_intr: int = 0
    missing_tx_cmpl: int = 0
    bad_tx_req_id: int = 0
    bad_rx_req_id: int = 0
    admin_to: int = 0
    interface_up: int = 0
    interface_down: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: {r.name: 0 for r in ResetReason})

    def as_dict(self) -> dict:
        """A copy safe to hand to another thread."""
        return {**vars(self), "reasons": dict(self.reasons)}


class RateLimitedLog:
    """At most BURST lines per INTERVAL seconds for each message key, as printk_ratelimited."""

    def __init__(self, dev: str, interval: float = 5.0, burst: int = 10) -> None:
        self.dev = dev
        self.interval = interval
        self.burst = burst
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, printed, suppressed)

    def __call__(self, level: str, msg: str, key: str | None = None) -> None:
        key = key or msg
        now = time.monotonic()
        start, printed, suppressed = self._windows.get(key, (now, 0, 0))
        if now - start >= self.interval:
            if suppressed:
                log(self.dev, "warning", f"{suppressed} messages like '{key}' suppressed")
            start, printed, suppressed = now, 0, 0
        if printed < self.burst:
            log(self.dev, level, msg)
            printed += 1
        else:
            suppressed += 1
        self._windows[key] = (start, printed, suppressed)
