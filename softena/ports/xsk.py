"""The AF_XDP wire: the XDP program from bpf/ on the wire interface, one socket per queue.

Loading and the sockets go through libbpf and libxdp inside the C module; this
file decides the mode and owns the fds that keep the program attached.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from importlib import resources

from softena.datapath.xdp import BpfFds, load_xdp_program, xdp_missed
from softena.errors import SoftenaError

AF_XDP = 44


def bpf_object_path(name: str = "softena_xdp.bpf.o") -> str:
    """Where the install put a compiled BPF program of bpf/ (default: the wire program)."""
    path = resources.files("softena.ports") / name
    if not path.is_file():
        raise SoftenaError(f"the BPF program {name} is not built: reinstall softena (needs clang)")
    return str(path)


def check_af_xdp() -> None:
    """Fail early, with the alternative, where the kernel refuses AF_XDP."""
    try:
        socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        raise SoftenaError(
            f"AF_XDP is not available ({exc.strerror}): use a tap wire instead, --wire tap") from exc


@dataclass
class XdpAttachment(BpfFds):
    """The wire program attached to one interface; closing it detaches it."""

    FDS = ("link_fd", "xskmap_fd", "missed_fd")

    ifname: str
    link_fd: int
    xskmap_fd: int
    missed_fd: int
    mode: str  # "native" or "generic"

    def missed(self) -> int:
        """Frames dropped so far for want of a socket on their queue (a
        rebuild under way, the interface down); 0 once closed."""
        return xdp_missed(self.missed_fd) if self.missed_fd >= 0 else 0


def attach(ifname: str, ifindex: int) -> XdpAttachment:
    """Attach the wire program, native mode where the driver has it, generic otherwise."""
    obj = bpf_object_path()
    reasons = []
    for native, mode in ((True, "native"), (False, "generic")):
        try:
            link_fd, map_fd, missed_fd = load_xdp_program(obj, ifindex, native)
        except SoftenaError as exc:
            reasons.append(f"{mode}: {exc}")
            continue
        return XdpAttachment(ifname, link_fd, map_fd, missed_fd, mode)
    raise SoftenaError(f"{ifname}: cannot attach the XDP program ({'; '.join(reasons)})")
