"""The device process's threads: names the kernel shows, and what happens when one dies.

Every long-lived thread is called softena/<dev>-<role> (ctl, link, ipwatch,
timer, aenq, admin, wd, peerdim on the lab's veth wire, and the queue number
for the workers), and the
kernel gets the same name, so `top -H`, `ps -L` and /proc/PID/task/*/comm tell them apart.

A thread that dies of an exception must not leave the device half-alive.
LastResort, installed once per device process, logs the traceback to the
device log and then applies the thread's policy:

- restart: the thread is started again, for threads that own nothing a
  restart could get wrong. The control server's accept loop is the one: it
  only owns the listening socket, which survives it. Past RESTART_LIMIT
  deaths within RESTART_WINDOW seconds the failure is taken to be lasting,
  and the device goes down.
- down (every other thread): the daemon's done event is set, so the main
  thread tears the device down in order and the process exits non-zero. The
  wire's carrier watcher, the rtnetlink watcher, the device timer
  (keep-alive), the AENQ, the admin queue, the watchdog, the queue workers,
  the lab peer's moderation and the fault timers each hold state that only
  a bring-up creates consistently; without one of them the device would
  answer but no longer work.

The control server's request threads never reach the hook: each catches
everything around its one request and answers with an error.
"""

from __future__ import annotations

import ctypes
import os
import select
import sys
import threading
import time
from typing import Callable

from softena.log import log, log_exception

PR_SET_NAME = 15
COMM_LEN = 15  # TASK_COMM_LEN less the NUL
PREFIX = "softena/"
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0

_libc = ctypes.CDLL(None, use_errno=True)


def kernel_name(name: str) -> bytes:
    """NAME as the kernel keeps it: 15 bytes at most.

    Cutting the tail would cut the role, the part that tells threads apart
    (softena/ena0-ctl and softena/ena0-link would both become softena/ena0-..):
    so a name too long loses its softena/ prefix first, then the device name
    its end, and the role stays whole.
    """
    raw = name.encode()
    if len(raw) <= COMM_LEN:
        return raw
    if name.startswith(PREFIX):
        raw = name[len(PREFIX):].encode()
    if len(raw) <= COMM_LEN:
        return raw
    dev, sep, role = raw.rpartition(b"-")
    if not sep or len(role) >= COMM_LEN - 1:
        return raw[:COMM_LEN]
    return dev[:COMM_LEN - len(role) - 1] + b"-" + role


def name_this_thread(name: str) -> None:
    """Give the calling thread NAME in the kernel (prctl PR_SET_NAME applies to the caller only)."""
    _libc.prctl(PR_SET_NAME, kernel_name(name), 0, 0, 0)


def named(thread: threading.Thread) -> threading.Thread:
    """THREAD, set to give the kernel its Python name as soon as it runs; before start().

    The kernel name can only be set from inside the thread, and subclasses
    override run(), so the instance's run is wrapped rather than the class's.
    """
    run = thread.run

    def run_named() -> None:
        name_this_thread(thread.name)
        run()

    thread.run = run_named  # type: ignore[method-assign]  # this one thread's, before start()
    return thread


class NamedThread(threading.Thread):
    """A daemon thread whose kernel name is its Python name."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("daemon", True)
        super().__init__(*args, **kwargs)
        named(self)


class Readable:
    """Sleep in poll() until FD is readable or wake() is called: how a thread
    waits for input with no timed wake-ups and still stops at once. Once
    woken it stays woken."""

    def __init__(self, fd: int) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._poller.register(self._wake_r, select.POLLIN)

    def wait(self) -> bool:
        """Block until FD is readable (True) or wake() was called (False)."""
        return not any(fd == self._wake_r for fd, _ in self._poller.poll())

    def wake(self) -> None:
        """From any thread: every wait() from now on returns False at once."""
        os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Close the pipe; no thread may wait() any more."""
        os.close(self._wake_r)
        os.close(self._wake_w)


def start_timer(name: str, seconds: float, action: Callable[[], None]) -> threading.Timer:
    """threading.Timer(SECONDS, ACTION), named NAME for Python and the kernel, started."""
    timer = threading.Timer(seconds, action)
    timer.name = name
    timer.daemon = True
    named(timer).start()
    return timer


class LastResort:
    """The device process's hooks for exceptions nothing else caught (see the module's docstring)."""

    def __init__(self, dev: str, done: threading.Event) -> None:
        self.dev = dev
        self.done = done
        self.failure: str | None = None  # why the device went down, if a thread took it down
        self._restarts: dict[str, tuple[Callable[[], None], list[float]]] = {}
        self._lock = threading.Lock()

    def install(self) -> None:
        threading.excepthook = self._thread_died
        sys.excepthook = self._main_died

    def restart_with(self, name: str, start: Callable[[], None]) -> None:
        """When the thread called NAME dies, call START (which starts a new one) instead of going down."""
        with self._lock:
            self._restarts[name] = (start, [])

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        exc = args.exc_value if args.exc_value is not None else args.exc_type()
        log_exception(self.dev, f"thread {name} died", exc.with_traceback(args.exc_traceback))
        if self.done.is_set():
            return  # already going down: the teardown runs anyway
        if self._restart(name):
            return
        with self._lock:
            self.failure = self.failure or f"thread {name} died ({args.exc_type.__name__}: {exc})"
        log(self.dev, "err", f"going down: {self.failure}")
        self.done.set()

    def _restart(self, name: str) -> bool:
        with self._lock:
            entry = self._restarts.get(name)
            if entry is None:
                return False
            start, deaths = entry
            now = time.monotonic()
            deaths[:] = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
            if len(deaths) > RESTART_LIMIT:
                log(self.dev, "err", f"{name} died {len(deaths)} times within {RESTART_WINDOW:.0f} s: "
                                     "not restarting it")
                return False
        try:
            start()
        except Exception as exc:
            log(self.dev, "err", f"restarting {name} failed: {exc!r}")
            return False
        log(self.dev, "warning", f"{name} restarted")
        return True

    def _main_died(self, exc_type, exc_value, exc_traceback) -> None:
        log_exception(self.dev, "the device process failed", exc_value.with_traceback(exc_traceback))
