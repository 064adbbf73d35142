"""What a running device leaves in /run/softena, and how leftovers are found.

<dev>.json records the daemon's pid and every kernel object it created, and
is written before the first of them exists, so a crashed daemon (kill -9)
can be cleaned up by the next `softena up` or `softena down` of that device.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from softena.errors import SoftenaError

RUN_DIR = "/run/softena"


def state_path(dev: str) -> str:
    return os.path.join(RUN_DIR, f"{dev}.json")


def socket_path(dev: str) -> str:
    return os.path.join(RUN_DIR, f"{dev}.sock")


def log_path(dev: str) -> str:
    return os.path.join(RUN_DIR, f"{dev}.log")


@dataclass
class DeviceState:
    """The record of one device's process and kernel objects."""

    dev: str
    pid: int
    wire: str  # the --wire spec
    netns: str | None = None  # peer namespace we created
    lab_index: int | None = None  # which lab subnet it uses
    slot: int | None = None  # its number among running devices: NAPI and page pool ids
    links: list[str] = field(default_factory=list)  # host links we created
    read_gid: int | None = None  # --read-group: may read this record and ask the read-only commands

    def save(self) -> None:
        """Write atomically: a reader never sees half a record. Root's alone (0600),
        or also its read group's (0640)."""
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        tmp = state_path(self.dev) + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "w") as f:
            if self.read_gid is not None:
                os.fchown(fd, -1, self.read_gid)  # the process is in that group: see access.join_group
                os.fchmod(fd, 0o640)
            json.dump(asdict(self), f)
        os.replace(tmp, state_path(self.dev))

    @classmethod
    def load(cls, dev: str) -> DeviceState | None:
        try:
            with open(state_path(dev)) as f:
                return cls(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None


def denied(dev: str) -> bool:
    """Whether DEV's record is there, or may be, but this user may not read it."""
    try:
        os.stat(state_path(dev))
    except PermissionError:
        return True  # the run directory is closed to this user
    except OSError:
        return False
    return not os.access(state_path(dev), os.R_OK)


def list_devices() -> list[str]:
    """Names of devices with a record, running or left over."""
    try:
        names = os.listdir(RUN_DIR)
    except PermissionError:
        raise SoftenaError(f"{RUN_DIR}: permission denied (softena's devices are root's, "
                           "and their read group's if they have one)") from None
    except OSError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json"))


def pid_alive(pid: int) -> bool:
    """Whether PID is a live softena process (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"softena" in f.read()
    except OSError:
        return False


def remove_files(dev: str, keep_log: bool = False) -> None:
    """Drop the record, socket and log of DEV (but the log if KEEP_LOG)."""
    for path in (state_path(dev), socket_path(dev), *(() if keep_log else (log_path(dev),)), state_path(dev) + ".tmp"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def free_index(except_dev: str, field_name: str, limit: int) -> int | None:
    """The lowest value of FIELD_NAME (lab_index, slot) below LIMIT that no other
    running device holds; None when all are taken."""
    used = set()
    for name in list_devices():
        state = DeviceState.load(name)
        if state is None or name == except_dev:
            continue
        value = getattr(state, field_name, None)
        if value is not None and pid_alive(state.pid):
            used.add(value)
    return min(set(range(limit)) - used, default=None)
