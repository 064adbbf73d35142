"""Clearing what a device left behind: its namespace, links and files, after a crash too."""

from __future__ import annotations

import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from softena.control.state import DeviceState, pid_alive, remove_files
from softena.errors import SoftenaError
from softena.log import log
from softena.ports import lab


def remove_kernel_objects(state: DeviceState) -> None:
    """Delete the namespace and links a device record lists. Idempotent."""
    if state.netns and lab.ns_exists(state.netns):
        lab.netns.remove(state.netns)
    with IPRoute() as ipr:
        for name in state.links:
            for index in ipr.link_lookup(ifname=name):
                try:
                    ipr.link("del", index=index)
                except NetlinkError:
                    pass


def clear_leftovers(dev: str, keep_log: bool = False) -> bool:
    """Clean up after a device whose process died; refuse if it still runs.

    KEEP_LOG: called by the device's next process, whose log it is by now
    (`softena up` opened it for the new process to write to)."""
    state = DeviceState.load(dev)
    if state is None:
        return False
    if state.pid != os.getpid() and pid_alive(state.pid):
        raise SoftenaError(f"{dev}: device is already up (pid {state.pid})")
    log(dev, "notice", f"clearing what pid {state.pid} left behind")
    remove_kernel_objects(state)
    remove_files(dev, keep_log)
    return True
