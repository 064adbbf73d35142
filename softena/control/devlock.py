"""One process per device: an exclusive flock on /run/softena/<dev>.lock.

The device process takes it before it creates anything and holds it for its
life; the kernel lets go of it when the process dies, kill -9 included, so
a lock is never stale. The file says who holds it (pid and start time), for
the refusal of a second `softena up`.

The holder unlinks the file as it lets go. A process that opened the file
just before could then lock the unlinked one while a third locks a new file
of the same name; so whoever takes the lock checks that the file it locked
is still the one the name points at, and otherwise tries again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from softena.control.state import RUN_DIR, pid_alive
from softena.errors import SoftenaError


def lock_path(dev: str) -> str:
    return os.path.join(RUN_DIR, f"{dev}.lock")


class DeviceLock:
    """The held lock of one device; release() (or the process's death) lets it go."""

    def __init__(self, dev: str, fd: int) -> None:
        self.dev = dev
        self.fd = fd

    @classmethod
    def acquire(cls, dev: str) -> DeviceLock:
        """Take DEV's lock at once, or refuse naming the process that holds it."""
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        path = lock_path(dev)
        for _ in range(10):  # each retry means the holder let go meanwhile
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read(fd)
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise SoftenaError(f"{dev}: cannot lock {path}: {exc.strerror}") from exc
                raise SoftenaError(f"{dev}: already driven by softena process {holder}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                started = time.strftime("%Y-%m-%d %H:%M:%S")
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} (started {started})\n".encode(), 0)
                return cls(dev, fd)
            os.close(fd)
        raise SoftenaError(f"{dev}: cannot lock {path}: it keeps being replaced")

    def release(self) -> None:
        """Remove the lock file and let go; idempotent."""
        if self.fd < 0:
            return
        try:
            os.unlink(lock_path(self.dev))
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> DeviceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def refuse_if_held(dev: str) -> None:
    """Refuse DEV if its lock file names a live softena process; taking no lock.

    For `softena up` before it starts the device process: the refusal comes
    at once. Only the device process's own acquire() settles a race.
    """
    try:
        with open(lock_path(dev)) as f:
            holder = f.read().strip()
        pid = int(holder.split()[0])
    except (OSError, ValueError, IndexError):
        return
    if pid_alive(pid):
        raise SoftenaError(f"{dev}: already driven by softena process {holder}")


def _read(fd: int) -> str:
    """Who holds the lock, as its file says; the file is written right after locking."""
    for _ in range(20):
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.005)
    return "(unknown pid)"
