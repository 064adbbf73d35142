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
    OS_NETIF_UP = 10
    USER_TRIGGER = 11
    GENERIC = 12
    MISS_INTERRUPT = 13


@dataclass
class HealthStats:
    """What `softena stats` and ethtool -S report of the device's health."""

    total_resets: int = 0
    reset_fail: int = 0
    wd_expired: int = 0
    missing_tx_cmpl: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: {r.name: 0 for r in ResetReason})


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
