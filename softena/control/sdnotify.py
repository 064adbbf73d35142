"""Tell systemd how the device process is doing: sd_notify(3) for Type=notify units.

The protocol is one datagram of NAME=VALUE lines to the AF_UNIX socket named
in $NOTIFY_SOCKET ('@' for the abstract namespace). Written here rather than
taken from python-systemd: that is a C extension built against libsystemd,
a dependency for a dozen lines. Without $NOTIFY_SOCKET (not under systemd,
or a Type= other than notify) every call does nothing.
"""

from __future__ import annotations

import os
import socket


def _address() -> str | None:
    """The manager's socket address from $NOTIFY_SOCKET; None when there is none to notify."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        return "\0" + address[1:]
    if not address.startswith("/"):  # unset, or a vsock: address meant for a VM's host
        return None
    return address


def enabled() -> bool:
    """Whether a service manager is listening for notifications."""
    return _address() is not None


def notify(*assignments: str) -> bool:
    """Send ASSIGNMENTS ("READY=1", "STATUS=...") to the service manager; whether it was sent.

    A manager that is not listening is no reason for the device to fail,
    so errors are swallowed, as sd_notify's callers usually do.
    """
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(assignments).encode(), address)
    except OSError:
        return False
    return True
