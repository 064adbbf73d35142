"""The asynchronous event notification queue (AENQ): the device tells the driver.

Groups and their values follow the ENA admin interface. The device posts
events from its own context; one driver-side thread delivers them in order
to the handler registered for their group, and counts them per group.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

from softena.threads import NamedThread


class Group(IntEnum):
    LINK_CHANGE = 0
    FATAL_ERROR = 1
    WARNING = 2
    NOTIFICATION = 3
    KEEP_ALIVE = 4


@dataclass
class Event:
    group: Group
    syndrome: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.monotonic)


Handler = Callable[[Event], None]


class Aenq:
    """Posted events, delivered in order to one handler per group."""

    def __init__(self, dev: str, handlers: dict[Group, Handler]) -> None:
        self.dev = dev
        self.handlers = handlers
        self.counts = dict.fromkeys((g.name.lower() for g in Group), 0)
        self.unhandled = 0
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._thread = NamedThread(target=self._deliver, name=f"softena/{dev}-aenq")
        self._thread.start()

    def post(self, group: Group, syndrome: int = 0, **data: Any) -> None:
        """Device side: queue one event."""
        self._events.put(Event(group, syndrome, data))

    def _deliver(self) -> None:
        while (event := self._events.get()) is not None:
            self.counts[event.group.name.lower()] += 1
            handler = self.handlers.get(event.group)
            if handler is None:
                self.unhandled += 1
                continue
            handler(event)

    def close(self) -> None:
        """Deliver what is queued, then stop."""
        self._events.put(None)
        self._thread.join(timeout=5)
