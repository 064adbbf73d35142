"""Who may ask a device what: the control socket's peer, its rights, and the run directory's modes.

- root (uid 0), and any process with CAP_NET_ADMIN effective, may send
  every command: the capability `ip link` and `ethtool` ask for;
- members of the device's read group (`softena up --read-group GROUP`; by
  default none) may send the commands that only read: status, stats,
  ethtool gets, ynl dumps, top;
- nobody else is answered.

The file modes let exactly these reach the socket: with no read group
everything stays root's (directory 0700, socket and record 0600); with one,
the socket is 0660 and the record 0640, both of group GROUP, and the
directory opens to 0755 (its names are the devices', which `ip link` and
`ps` show anyone anyway; every file in it keeps a mode of its own).
"""

from __future__ import annotations

import errno
import grp
import os
import signal
import socket
import struct
from dataclasses import dataclass

from softena.control.state import RUN_DIR, DeviceState, list_devices, pid_alive
from softena.errors import SoftenaError

CAP_NET_ADMIN = 12
# socket(7) SO_PEERPIDFD (Linux 6.5); Python 3.11's socket module lacks the name.
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)


def group_id(text: str) -> int:
    """--read-group: a group name or number, which must exist."""
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        pass
    if text.isdigit():
        try:
            return grp.getgrgid(int(text)).gr_gid
        except KeyError:
            pass
    raise SoftenaError(f"invalid --read-group '{text}': no such group")


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a control connection."""

    pid: int
    uid: int
    groups: frozenset[int]  # its primary group and supplementary groups
    caps: int  # its effective capabilities

    @property
    def net_admin(self) -> bool:
        return self.uid == 0 or bool(self.caps >> CAP_NET_ADMIN & 1)


def peer_of(conn: socket.socket) -> Peer:
    """The credentials of CONN's peer: SO_PEERCRED, then its groups and capabilities from /proc.

    /proc/PID is read by pid, and a pid can be reused once its process has
    gone. The peer's pidfd (SO_PEERPIDFD) settles it: if the process it names
    is still alive after the read, the pid was never free, so what was read
    is the peer's. Where the kernel has no SO_PEERPIDFD, the read is taken
    as it is: the peer had to exit and its pid be given to a new process
    within microseconds, and a request of a peer that went away is answered
    to nobody.
    """
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid == 0:
        return Peer(pid, uid, frozenset({gid}), 0)
    try:
        pidfd = struct.unpack("i", conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
    except OSError:
        pidfd = -1
    try:
        groups, caps = {gid}, 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "Groups":
                    groups.update(int(g) for g in value.split())
                elif key == "CapEff":
                    caps = int(value, 16)
        if pidfd >= 0:
            _check_alive(pidfd)
    except OSError:
        raise SoftenaError("permission denied: the client went away") from None
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return Peer(pid, uid, frozenset(groups), caps)


def _check_alive(pidfd: int) -> None:
    """Raise ProcessLookupError if PIDFD's process has exited (signal 0 only checks)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except PermissionError:
        pass  # alive, and not ours to signal: the device keeps no CAP_KILL


def check(dev: str, peer: Peer, read_gid: int | None) -> None:
    """Refuse a PEER that may send nothing at all, before its request is read."""
    if not peer.net_admin and (read_gid is None or read_gid not in peer.groups):
        whom = "no read group" if read_gid is None else f"read group {group_name(read_gid)}"
        raise SoftenaError(f"{dev}: permission denied: not root, no CAP_NET_ADMIN, and {dev} has {whom}")


def check_command(dev: str, peer: Peer, cmd: str, reads: bool) -> None:
    """Refuse a change from a PEER without CAP_NET_ADMIN."""
    if not reads and not peer.net_admin:
        raise SoftenaError(f"{dev}: permission denied: {cmd} needs CAP_NET_ADMIN")


# ---- files -------------------------------------------------------------------------


def join_group(gid: int | None) -> None:
    """Add GID to this process's groups, so it can hand its files to that group
    (chgrp needs CAP_CHOWN only for a group the owner is not in). Before the drop:
    it takes CAP_SETGID."""
    if gid is not None and gid not in os.getgroups():
        try:
            os.setgroups([*os.getgroups(), gid])
        except OSError as exc:
            raise SoftenaError(f"cannot join read group {group_name(gid)}: {exc.strerror}") from exc


def hand_to_group(path: str, gid: int | None, mode: int) -> None:
    """Give PATH to group GID with MODE; with no GID, leave it root's."""
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, mode)


def settle_run_dir(extra_gid: int | None = None) -> None:
    """0755 while a running device has a read group (EXTRA_GID: the one coming up), else 0700."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    shared = extra_gid is not None
    for name in list_devices():
        state = DeviceState.load(name)
        if state is not None and state.read_gid is not None and state.pid != os.getpid() and pid_alive(state.pid):
            shared = True
    os.chmod(RUN_DIR, 0o755 if shared else 0o700)


def refusal(exc: OSError, what: str) -> SoftenaError:
    """The one line for a client that may not open WHAT."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SoftenaError(f"{what}: permission denied (root's, and its read group's if it has one)")
    return SoftenaError(f"{what}: {exc.strerror}")
