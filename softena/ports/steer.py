"""The wire's RSS stage: the steering programs of bpf/softena_steer.bpf.c.

A NIC hashes each received frame and picks its queue before any queue sees
it. A software wire has no such stage: a veth delivers a frame to the queue
its sender transmitted on, a tap to the queue its flow last used. Without
one, a frame lands on the wrong worker as often as not and the datapath
hands it over, a cross-CPU wake-up each time. The steering program computes
the device's own RSS choice where the frame enters the wire and puts it on
that queue: a tcx program at the lab peer's veth egress, or the tap's tun
steering program. The datapath still hashes every frame: what the program
leaves alone or gets wrong is handed over as before (rx-steered-out counts
it), so steering saves work and decides nothing. With aRFS on, a flow the
host reads goes first to the queue on its reader's CPU (softena.ports.rfs).

A real NIC (`--wire xdp:IFACE`) has its own RSS stage and gets none.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass

from softena.datapath.datapath import Arfs
from softena.datapath.xdp import BpfFds, link_steering_tcx, load_steering, update_steering
from softena.device.rss import RssConfig
from softena.errors import SoftenaError
from softena.ports.xsk import bpf_object_path

OBJECT = "softena_steer.bpf.o"
TUNSETSTEERINGEBPF = 0x800454E0  # _IOR('T', 224, int)


@dataclass
class WireSteering(BpfFds):
    """A steering program in place on the wire; closing it detaches what a link holds."""

    FDS = ("link_fd", "map_fd")

    where: str  # "tcx on eth0 in ena0-peer"
    link_fd: int  # -1 for tun: the tap holds its program until it goes
    map_fd: int

    def update(self, rss: RssConfig, queues: int, enabled: bool, arfs: Arfs | None = None) -> None:
        """Steer by RSS over QUEUES queues (not at all when not ENABLED), flows
        the host reads first by ARFS when it is on."""
        update_steering(self.map_fd, rss, queues, enabled and queues > 1, arfs)


def attach_veth(netns: str, ifname: str, rfs_table_fd: int = -1) -> WireSteering:
    """Link the tcx program at IFNAME's egress in network namespace NETNS, reading
    the host's flow table RFS_TABLE_FD (-1: none); it starts idle."""
    prog_fd, map_fd = load_steering(bpf_object_path(OBJECT), "softena_lab_steer", rfs_table_fd)
    try:
        link_fd = link_steering_tcx(prog_fd, f"/run/netns/{netns}", ifname)
    except SoftenaError:
        os.close(map_fd)
        raise
    finally:
        os.close(prog_fd)  # the link holds the program
    return WireSteering(f"tcx on {ifname} in {netns}", link_fd, map_fd)


def attach_tap(fd: int, ifname: str, rfs_table_fd: int = -1) -> WireSteering:
    """Give the tap wire behind FD (IFNAME) the tun steering program, reading the
    host's flow table RFS_TABLE_FD (-1: none); it starts idle."""
    prog_fd, map_fd = load_steering(bpf_object_path(OBJECT), "softena_tap_steer", rfs_table_fd)
    try:
        fcntl.ioctl(fd, TUNSETSTEERINGEBPF, struct.pack("i", prog_fd))
    except OSError as exc:
        os.close(map_fd)
        raise SoftenaError(f"{ifname}: cannot set the tun steering program: {exc.strerror}") from exc
    finally:
        os.close(prog_fd)  # tun holds the program
    return WireSteering(f"tun steering on {ifname}", -1, map_fd)
