"""The device side's once-a-second duties, as a NIC's firmware timer.

Each second the device sends the driver its KEEP_ALIVE (an AENQ event the
watchdog waits for), looks at the host's multicast list for groups joined
below IP, which raise no notification (softena.control.hostwatch), and on
the lab's tap wire looks for the peer's namespace (Device._look_for_peer_netns).
One thread wakes once a second for all of them: on this kind of guest a
Python thread's every wake-up costs a few hundred microseconds of CPU,
which is what an idle device spends.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from softena.threads import NamedThread

PERIOD_S = 1.0


class DeviceTimer(NamedThread):
    """Runs each of DUTIES once a second, in order, until stopped."""

    def __init__(self, dev: str, duties: list[Callable[[], None]]) -> None:
        super().__init__(name=f"softena/{dev}-timer")
        self.duties = duties
        self._stopping = threading.Event()

    def run(self) -> None:
        # Half a period off the watchdog's looks, and on fixed deadlines so
        # that it stays there: two Python threads waking together fight for
        # the GIL, and each hand-over is another wake-up.
        next_at = time.monotonic() + PERIOD_S / 2
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            next_at += PERIOD_S
            for duty in self.duties:
                duty()

    def stop(self) -> None:
        """Stop ticking and wait for the thread."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=5)
