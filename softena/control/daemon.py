"""The device process: brings the device up, serves its socket, tears it down on a signal.

Teardown always runs in the main thread, in order, once the done event is
set: by a signal, a shutdown request, or a thread that died (see
softena.threads.LastResort); a death makes the process exit non-zero.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

from setproctitle import setproctitle

from softena.control import access, privilege, sdnotify
from softena.control.cleanup import clear_leftovers
from softena.control.config import METRICS_PORT_BASE, DeviceConfig
from softena.control.ctlsock import (
    Command,
    ControlServer,
    Field,
    boolean,
    integer,
    json_object,
    nullable,
    one_of,
    positive,
    text,
)
from softena.control.device import Device
from softena.control.devlock import DeviceLock
from softena.control.ethtool_ops import EthtoolOps
from softena.device.admin import Opcode
from softena.device.faults import KINDS
from softena.device.health import ResetReason
from softena.errors import SoftenaError
from softena.log import log
from softena.netdev.family import NetdevError
from softena.netdev.spec import NETDEV
from softena.ports import rfs
from softena.threads import LastResort, name_this_thread

if TYPE_CHECKING:
    from softena.netdev.metrics import MetricsServer


def _notify(fd: int | None, line: str) -> None:
    """Tell the waiting `softena up` how bring-up ended."""
    if fd is None:
        return
    try:
        os.write(fd, (line + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def ethtool_reads(request: dict) -> bool:
    """Whether an ethtool operation only reads: get-channels and channels-get alike, drvinfo, stats."""
    op = request["op"]
    return op.startswith(("get", "drvinfo")) or op.endswith(("-get", "stats"))


def commands(device: Device, done: threading.Event, retitle, metrics: MetricsServer | None = None
             ) -> dict[str, Command]:
    """What the control socket answers, with the fields each request may carry."""
    ethtool = EthtoolOps(device)

    def ethtool_op(req: dict):
        try:
            return ethtool.handle(req)
        finally:
            if not ethtool_reads(req):
                retitle()  # -L changes the queue count the title shows

    def netdev_op(req: dict) -> dict:
        """The netdev family: a reply, or the errno and extack the kernel would give."""
        try:
            return {"reply": device.netdev.handle(req["op"], req.get("attrs") or {}, bool(req.get("dump")))}
        except NetdevError as exc:
            return {"error": exc.as_reply()}

    return {
        "status": Command(lambda req: {**device.status(), "metrics": metrics.address if metrics else None},
                          read_only=True),
        "stats": Command(lambda req: device.stats(), read_only=True),
        "fault-list": Command(lambda req: device.faults.listing(), read_only=True),
        # The device's own count of what it moved, asked the way the ENA driver asks: an admin command.
        "device-stats": Command(lambda req: device.admin_queue.submit(Opcode.GET_STATS, type="basic"), read_only=True),
        "ethtool": Command(ethtool_op, {"op": Field(text, required=True), "args": Field(json_object)},
                           read_only=ethtool_reads),
        "reset": Command(lambda req: device.reset(ResetReason[req.get("reason", "USER_TRIGGER")]),
                         {"reason": Field(one_of(ResetReason.__members__))}),
        "fault-inject": Command(lambda req: device.faults.inject(req["kind"], req.get("queue"), req.get("seconds")),
                                {"kind": Field(one_of(KINDS), required=True), "queue": Field(nullable(integer)),
                                 "seconds": Field(nullable(positive))}),
        "fault-clear": Command(lambda req: device.faults.clear(req.get("kind")),
                               {"kind": Field(nullable(one_of(KINDS)))}),
        "netdev": Command(netdev_op, {"op": Field(one_of(op.name for op in NETDEV.ops if op.do or op.dump),
                                                  required=True),
                                      "attrs": Field(json_object), "dump": Field(boolean)},
                          read_only=lambda req: req["op"] != "napi-set"),
        "shutdown": Command(lambda req: done.set()),
    }


def title(device: Device) -> str:
    """What `ps` shows of the device process."""
    n = device.settings.queues
    return f"softena: {device.name} ({n} queue pair{'s' if n != 1 else ''}, wire {device.config.wire.describe()})"


def status_line(device: Device) -> str:
    """What `systemctl status` shows of the device: its queues, wire and resets so far."""
    n = device.settings.queues
    line = f"{device.name}: {n} queue pair{'s' if n != 1 else ''}, wire {device.config.wire.describe()}"
    resets = device.health_stats.total_resets
    return line + (f", {resets} reset{'s' if resets != 1 else ''}" if resets else "")


def start_metrics(device: Device) -> MetricsServer | None:
    """The Prometheus endpoint, once the device has the slot its default port follows.

    A port taken fails the bring-up rather than moving elsewhere: scrape
    configurations name fixed ports, and the instance label carries the port.
    """
    config = device.config
    if not config.metrics:
        return None
    from softena.netdev.metrics import MetricsServer  # prometheus_client: the device process's alone, not the CLI's

    port = config.metrics_port if config.metrics_port is not None else METRICS_PORT_BASE + device.slot
    try:
        return MetricsServer(device, config.metrics_address, port)
    except SoftenaError:
        device.stop()
        raise


def settle_privileges(config: DeviceConfig) -> int | None:
    """Before the process's first thread: clear a crashed predecessor's leftovers
    (which may take more than this device needs), join the read group, open the
    run directory to it, and drop every capability the running device does not
    use (softena.control.privilege). Returns the read group's id."""
    gid = access.group_id(config.read_group) if config.read_group is not None else None
    clear_leftovers(config.name, keep_log=True)
    access.join_group(gid)
    access.settle_run_dir(gid)
    low_port = config.metrics and config.metrics_port is not None and config.metrics_port < 1024
    keep = privilege.runtime_caps(config.wire.kind == "xsk", config.wire.lab, low_port,
                                  steer=config.wire.kind == "tap" and config.steering,
                                  affine=config.host_napi == "affine")
    privilege.drop_to(keep)
    log(config.name, "info", privilege.describe(keep))
    return gid


def run(config: DeviceConfig, notify_fd: int | None = None) -> int:
    """Run the device until SIGTERM, SIGINT, a shutdown request or a thread's death; return the exit code."""
    done = threading.Event()
    # Signals only set the event: teardown runs in the main thread, in order.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    last_resort = LastResort(config.name, done)
    last_resort.install()
    setproctitle(f"softena: {config.name} (starting)")
    # setproctitle also names this thread for the kernel, cut to 15 bytes;
    # threads started from here inherit the name, so give it a whole one.
    name_this_thread(f"softena/{config.name}")

    lock = None
    try:
        lock = DeviceLock.acquire(config.name)  # held for life; the kernel lets go of it at the end
        # Loading the aRFS recorder takes capabilities the running device drops.
        rfs_loaded = rfs.try_load()
        gid = settle_privileges(config)
        device = Device(config, rfs_loaded)
        device.state.read_gid = gid
        device.start()
        metrics = start_metrics(device)
    except SoftenaError as exc:
        _notify(notify_fd, f"error {exc}")
        sdnotify.notify(f"STATUS={exc}")
        if lock is not None:
            lock.release()
        raise
    setproctitle(title(device))
    name_this_thread(f"softena/{config.name}")
    server = ControlServer(config.name, commands(device, done, lambda: setproctitle(title(device)), metrics), gid)
    if metrics:
        last_resort.restart_with(metrics.thread_name, metrics.start)
    last_resort.restart_with(server.thread_name, server.start)
    server.start()
    _notify(notify_fd, "ready")
    shown = status_line(device)
    sdnotify.notify("READY=1", f"STATUS={shown}")
    try:
        # Only a service manager reads the status: without one this thread
        # sleeps until the device goes down, and an idle device spends nothing here.
        while not done.wait(1.0 if sdnotify.enabled() else None):
            # `ethtool -L` and resets change what the status says; a second late is soon enough.
            if (now := status_line(device)) != shown:
                sdnotify.notify(f"STATUS={now}")
                shown = now
    finally:
        sdnotify.notify("STOPPING=1", f"STATUS={config.name}: going down")
        log(config.name, "info", "going down")
        setproctitle(f"softena: {config.name} (going down)")
        server.close()
        if metrics:
            metrics.close()
        device.stop()
        access.settle_run_dir()
        lock.release()
    return 1 if last_resort.failure else 0
