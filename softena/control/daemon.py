"""The device process: brings the device up, serves its socket, tears it down on a signal."""

from __future__ import annotations

import os
import signal
import threading

from softena.control.config import DeviceConfig
from softena.control.ctlsock import ControlServer
from softena.control.device import Device
from softena.control.ethtool_ops import EthtoolOps
from softena.device.health import ResetReason
from softena.errors import SoftenaError
from softena.log import log


def _notify(fd: int | None, line: str) -> None:
    """Tell the waiting `softena up` how bring-up ended."""
    if fd is None:
        return
    try:
        os.write(fd, (line + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def run(config: DeviceConfig, notify_fd: int | None = None) -> int:
    """Run the device until SIGTERM, SIGINT or a shutdown request; return the exit code."""
    done = threading.Event()
    # Signals only set the event: teardown runs in the main thread, in order.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())

    device = Device(config)
    try:
        device.start()
    except SoftenaError as exc:
        _notify(notify_fd, f"error {exc}")
        raise
    handlers = {
        "status": lambda req: device.status(),
        "stats": lambda req: device.stats(),
        "shutdown": lambda req: done.set(),
        "ethtool": EthtoolOps(device).handle,
        "reset": lambda req: device.reset(ResetReason[req.get("reason", "USER_TRIGGER")]),
        "fault-inject": lambda req: device.faults.inject(req["kind"], req.get("queue"), req.get("seconds")),
        "fault-clear": lambda req: device.faults.clear(req.get("kind")),
        "fault-list": lambda req: device.faults.listing(),
    }
    server = ControlServer(config.name, handlers)
    server.start()
    _notify(notify_fd, "ready")
    try:
        while not done.wait(1.0):
            pass
    finally:
        log(config.name, "info", "going down")
        server.close()
        device.stop()
    return 0
