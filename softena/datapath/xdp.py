"""The BPF programs (the wire's XDP program, the software wires' steering, the host's
RFS recorder), through libbpf in the C module."""

from __future__ import annotations

import os
from typing import ClassVar

from softena.datapath.datapath import Arfs, arfs_native, rss_native
from softena.datapath.native import error_buffer, error_text, ffi, lib
from softena.device.rss import RssConfig
from softena.errors import SoftenaError


class BpfFds:
    """Base of the objects holding fds that keep BPF objects alive (a link,
    a map): close() gives them back, and the kernel drops a link with its
    last fd. FDS names the attributes holding them; -1 is none."""

    FDS: ClassVar[tuple[str, ...]]

    def close(self) -> None:
        """Close the fds still open (detaching what a link held); idempotent."""
        for name in self.FDS:
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
            setattr(self, name, -1)


def load_xdp_program(obj_path: str, ifindex: int, native: bool) -> tuple[int, int, int]:
    """Load OBJ_PATH's program and attach it to IFINDEX by a BPF link, in
    driver mode (device-bound, for the RX metadata kfuncs) when NATIVE, else
    generic mode. Returns (link fd, XSKMAP fd, rx_missed map fd); closing
    them detaches it. Raises SoftenaError with libbpf's reason."""
    link_fd, map_fd, missed_fd = ffi.new("int *", -1), ffi.new("int *", -1), ffi.new("int *", -1)
    err = error_buffer()
    if lib.sn_xdp_load(obj_path.encode(), ifindex, int(native), link_fd, map_fd, missed_fd, err, len(err)):
        raise SoftenaError(error_text(err))
    return link_fd[0], map_fd[0], missed_fd[0]


def xdp_missed(missed_fd: int) -> int:
    """Frames the wire program found no socket for, over all queues (its rx_missed map)."""
    n = lib.sn_xdp_missed(missed_fd)
    if n < 0:
        raise SoftenaError(f"cannot read the wire program's rx_missed map: {os.strerror(-n)}")
    return n


def load_steering(obj_path: str, prog: str, rfs_table_fd: int = -1) -> tuple[int, int]:
    """Load program PROG of the steering object OBJ_PATH, reading the host's flow
    table RFS_TABLE_FD (-1: none): (program fd, map fd). Raises SoftenaError
    with libbpf's reason."""
    prog_fd, map_fd = ffi.new("int *", -1), ffi.new("int *", -1)
    err = error_buffer()
    if lib.sn_steer_load(obj_path.encode(), prog.encode(), rfs_table_fd, prog_fd, map_fd, err, len(err)):
        raise SoftenaError(error_text(err))
    return prog_fd[0], map_fd[0]


def link_steering_tcx(prog_fd: int, netns_path: str, ifname: str) -> int:
    """Attach the tcx steering program at IFNAME's egress inside the network
    namespace NETNS_PATH by a link; returns the link fd (closing it detaches)."""
    err = error_buffer()
    fd = lib.sn_steer_link_tcx(prog_fd, netns_path.encode(), ifname.encode(), err, len(err))
    if fd < 0:
        raise SoftenaError(error_text(err))
    return fd


def update_steering(map_fd: int, rss: RssConfig, queues: int, enabled: bool, arfs: Arfs | None = None) -> None:
    """Give the steering program the device's RSS over QUEUES queues, and its aRFS."""
    r = lib.sn_steer_update(map_fd, rss_native(rss), queues, int(enabled),
                            arfs_native(arfs) if arfs is not None else ffi.NULL)
    if r:
        raise SoftenaError(f"cannot update the steering map: {os.strerror(-r)}")


def load_rfs_recorder(obj_path: str) -> tuple[int, int, int, int]:
    """Load the RFS recorder of OBJ_PATH, unattached: (its skb program's fd, its
    connected UDP program's, flow table's, settings map's). Raises SoftenaError
    with libbpf's reason."""
    fds = [ffi.new("int *", -1) for _ in range(4)]
    err = error_buffer()
    if lib.sn_rfs_load(obj_path.encode(), *fds, err, len(err)):
        raise SoftenaError(error_text(err))
    return fds[0][0], fds[1][0], fds[2][0], fds[3][0]


def attach_rfs_recorder(prog_fd: int) -> int:
    """Attach a recorder program to its tracepoint; returns the fd holding it (closing it detaches)."""
    err = error_buffer()
    fd = lib.sn_rfs_attach(prog_fd, err, len(err))
    if fd < 0:
        raise SoftenaError(error_text(err))
    return fd


def configure_rfs_recorder(conf_fd: int, ifindex: int, seed: int) -> None:
    """Record the flows the host reads from IFINDEX, hashed with SEED."""
    r = lib.sn_rfs_configure(conf_fd, ifindex, seed)
    if r:
        raise SoftenaError(f"cannot configure the RFS recorder: {os.strerror(-r)}")
