"""The admin queue: typed commands to the device, completions with a status, a timeout.

As on an ENA device, every configuration change travels as a command
(GET_FEATURE, SET_FEATURE, CREATE/DESTROY SQ and CQ, GET_STATS) that the
device executes in its own context and completes with a status code. The
submitter waits for the completion up to a timeout. Opcodes, statuses and
feature ids carry the values of the ENA admin interface.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

from softena.threads import NamedThread


class Opcode(IntEnum):
    CREATE_SQ = 1
    DESTROY_SQ = 2
    CREATE_CQ = 3
    DESTROY_CQ = 4
    GET_FEATURE = 8
    SET_FEATURE = 9
    GET_STATS = 11


class Status(IntEnum):
    SUCCESS = 0
    RESOURCE_ALLOCATION_FAILURE = 1
    BAD_OPCODE = 2
    UNSUPPORTED_OPCODE = 3
    MALFORMED_REQUEST = 4
    ILLEGAL_PARAMETER = 5
    UNKNOWN_ERROR = 6
    RESOURCE_BUSY = 7


class Feature(IntEnum):
    DEVICE_ATTRIBUTES = 1
    MAX_QUEUES_NUM = 2
    HW_HINTS = 3
    LLQ = 4
    RSS_HASH_FUNCTION = 10
    STATELESS_OFFLOAD_CONFIG = 11
    RSS_INDIRECTION_TABLE_CONFIG = 12
    MTU = 14
    RSS_HASH_INPUT = 18
    INTERRUPT_MODERATION = 20
    AENQ_CONFIG = 26
    LINK_CONFIG = 27


@dataclass
class Command:
    """One admin queue entry."""

    opcode: Opcode
    feature: Feature | None = None
    args: dict[str, Any] = field(default_factory=dict)
    command_id: int = 0


@dataclass
class Completion:
    """One admin completion queue entry."""

    command_id: int
    status: Status
    result: Any = None
    reason: str = ""  # the device's words, as an extack message


class AdminError(Exception):
    """A command completed with a status other than SUCCESS, or not at all."""

    def __init__(self, completion: Completion | None, message: str) -> None:
        super().__init__(message)
        self.completion = completion


@dataclass
class AdminStats:
    """The ENA driver's admin queue counters (ethtool -S ena_admin_q_*)."""

    submitted_cmd: int = 0
    completed_cmd: int = 0
    aborted_cmd: int = 0
    out_of_space: int = 0
    no_completion: int = 0


# The device side: executes one command and returns its completion.
Executor = Callable[[Command], Completion]


class AdminQueue:
    """A bounded queue of commands, executed in order by the device's admin thread."""

    def __init__(self, dev: str, execute: Executor, depth: int = 32, timeout: float = 3.0,
                 stalled: Callable[[], bool] = lambda: False,
                 on_timeout: Callable[[Command], None] = lambda cmd: None) -> None:
        self.dev = dev
        self.execute = execute
        self.timeout = timeout
        self.stalled = stalled  # fault injection: the device stops completing
        self.on_timeout = on_timeout
        self.stats = AdminStats()
        self._sq: queue.Queue[tuple[Command, queue.Queue[Completion]] | None] = queue.Queue(maxsize=depth)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._thread = NamedThread(target=self._device_loop, name=f"softena/{dev}-admin")
        self._thread.start()

    def submit(self, opcode: Opcode, feature: Feature | None = None, **args: Any) -> Any:
        """Execute one command; return its result or raise AdminError."""
        with self._lock:
            cmd = Command(opcode, feature, args, next(self._ids) & 0xFFF)
        done: queue.Queue[Completion] = queue.Queue(maxsize=1)
        try:
            self._sq.put_nowait((cmd, done))
        except queue.Full:
            self.stats.out_of_space += 1
            raise AdminError(None, f"{self.dev}: admin queue is full") from None
        self.stats.submitted_cmd += 1
        try:
            completion = done.get(timeout=self.timeout)
        except queue.Empty:
            self.stats.no_completion += 1
            self.on_timeout(cmd)
            raise AdminError(None, f"{self.dev}: the admin command {cmd.opcode.name} timed out "
                                   f"after {self.timeout:.1f} s") from None
        self.stats.completed_cmd += 1
        if completion.status != Status.SUCCESS:
            what = cmd.feature.name if cmd.feature is not None else cmd.opcode.name
            raise AdminError(completion, completion.reason or f"{self.dev}: {what} failed: {completion.status.name}")
        return completion.result

    def _device_loop(self) -> None:
        while True:
            item = self._sq.get()
            if item is None:
                return
            cmd, done = item
            if self.stalled():  # completes too late: the submitter has given up
                time.sleep(self.timeout + 0.2)
            try:
                completion = self.execute(cmd)
            except Exception as exc:  # a device bug must not kill the queue
                completion = Completion(cmd.command_id, Status.UNKNOWN_ERROR, reason=f"{self.dev}: {exc}")
            completion.command_id = cmd.command_id
            done.put(completion)

    def close(self) -> None:
        """Abort what is queued and stop the device's admin thread."""
        while True:
            try:
                item = self._sq.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.stats.aborted_cmd += 1
                item[1].put(Completion(item[0].command_id, Status.RESOURCE_BUSY, reason=f"{self.dev}: aborted"))
        self._sq.put(None)
        self._thread.join(timeout=5)
