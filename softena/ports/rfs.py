"""Accelerated RFS for the host: the recorder of bpf/softena_rfs.bpf.c.

A NIC with aRFS (`ethtool -K ntuple on`) puts each flow's frames on the queue
whose interrupt runs on the CPU that reads the flow: the kernel's RFS records
that CPU at every recvmsg() and hands it to the driver. Then the reader is
woken on its own CPU, with the data warm in its cache, instead of across
CPUs, a wake-up that costs tens of microseconds on a virtual machine. A tap
has no such hand-off, so the device records it itself: a BPF program at
the host's copy of a received skb to user space writes the reader's CPU
into a flow table that the wire's steering programs and the datapath read
in place. Flows the host only sends (a bulk sender's ACKs) are never read,
so RSS keeps them, and their worker, on whatever CPU it chose.

The recorder is loaded before the device process drops its capabilities
(a tracing program takes cap_bpf and cap_perfmon to load; attaching it,
filling its maps and reading its table take none), unattached, so the
steering programs can share its table; it is attached (a hook on every
socket read of the system) only while aRFS is on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from softena.datapath.xdp import BpfFds, attach_rfs_recorder, configure_rfs_recorder, load_rfs_recorder
from softena.errors import SoftenaError
from softena.ports.xsk import bpf_object_path

OBJECT = "softena_rfs.bpf.o"


@dataclass
class FlowRecorder(BpfFds):
    """The recorder's two programs and its flow table; closing it detaches and frees them."""

    FDS = ("link_fd", "udp_link_fd", "prog_fd", "udp_prog_fd", "table_fd", "conf_fd")

    prog_fd: int  # every read that copies an skb
    udp_prog_fd: int  # connected UDP sockets' reads (a small datagram is read without that copy)
    table_fd: int
    conf_fd: int
    seed: int
    link_fd: int = -1
    udp_link_fd: int = -1

    def watch(self, ifindex: int) -> None:
        """Record the flows the host reads from the device's interface IFINDEX."""
        configure_rfs_recorder(self.conf_fd, ifindex, self.seed)

    def set_attached(self, on: bool) -> None:
        """Attach the recorder (aRFS on) or detach it; idempotent."""
        if on and self.link_fd < 0:
            self.link_fd = attach_rfs_recorder(self.prog_fd)
            try:
                self.udp_link_fd = attach_rfs_recorder(self.udp_prog_fd)
            except SoftenaError:
                self.set_attached(False)
                raise
        elif not on:
            for name in ("link_fd", "udp_link_fd"):
                if getattr(self, name) >= 0:
                    os.close(getattr(self, name))
                    setattr(self, name, -1)


def load() -> FlowRecorder:
    """Load the recorder, unattached, with an empty flow table and a fresh hash seed.
    Raises SoftenaError with libbpf's reason (no BTF, no cap_perfmon)."""
    prog_fd, udp_prog_fd, table_fd, conf_fd = load_rfs_recorder(bpf_object_path(OBJECT))
    return FlowRecorder(prog_fd, udp_prog_fd, table_fd, conf_fd, seed=int.from_bytes(os.urandom(4), "little"))


def try_load() -> tuple[FlowRecorder | None, str]:
    """The recorder, or None and why it could not be loaded."""
    try:
        return load(), ""
    except SoftenaError as exc:
        return None, str(exc)
