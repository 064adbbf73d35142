"""The wire's XDP program, loaded and attached through libbpf in the C module."""

from __future__ import annotations

from softena.datapath.native import error_buffer, error_text, ffi, lib
from softena.errors import SoftenaError


def load_xdp_program(obj_path: str, ifindex: int, native: bool) -> tuple[int, int]:
    """Load OBJ_PATH's program and attach it to IFINDEX by a BPF link, in
    driver mode (device-bound, for the RX metadata kfuncs) when NATIVE, else
    generic mode. Returns (link fd, XSKMAP fd); closing both detaches it.
    Raises SoftenaError with libbpf's reason."""
    link_fd, map_fd = ffi.new("int *", -1), ffi.new("int *", -1)
    err = error_buffer()
    if lib.sn_xdp_load(obj_path.encode(), ifindex, int(native), link_fd, map_fd, err, len(err)):
        raise SoftenaError(error_text(err))
    return link_fd[0], map_fd[0]
