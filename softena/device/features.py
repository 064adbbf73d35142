"""Device attributes: what the device offers, negotiated at start like a driver probe."""

from __future__ import annotations

from dataclasses import dataclass

from softena.errors import SoftenaError

MAX_MTU = 65535 - 14 - 8  # a tap carries at most 64 KiB frames (L2 and two tags)


@dataclass(frozen=True)
class DeviceAttributes:
    """Limits an ENA device reports through GET_FEATURE(DEVICE_ATTRIBUTES)."""

    max_queues: int = 32
    min_mtu: int = 128
    max_mtu: int = 9216
    min_ring_size: int = 256
    max_ring_size: int = 8192
    rss_indir_size: int = 128
    rss_key_size: int = 40
    max_coalesce_usecs: int = 1000
    llq_supported: bool = True

    def check_queues(self, n: int) -> int:
        """Validate a queue pair count against the device."""
        if not 1 <= n <= self.max_queues:
            raise SoftenaError(f"invalid queue count {n}: the device supports 1..{self.max_queues}")
        return n

    def check_mtu(self, mtu: int) -> int:
        """Validate an MTU with the ena(4) wording."""
        if not self.min_mtu <= mtu <= self.max_mtu:
            raise SoftenaError(f"Invalid MTU setting. new_mtu: {mtu}")
        return mtu
