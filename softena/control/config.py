"""The device's bring-up configuration, validated before anything is created."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import dataclass, field

from softena.control.access import group_id
from softena.control.health import Thresholds
from softena.device.features import DeviceAttributes
from softena.errors import SoftenaError

_IFNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,9}$")  # room for "-wire", "-peer"
# One 4 KiB UMEM frame less XDP headroom and skb_shared_info: above this a
# veth hands XDP multi-buffer frames, which need XDP_USE_SG sockets; where
# the kernel lacks them, the AF_XDP wire's MTU stops here.
XSK_MAX_MTU = 3498
_ANY_IFNAME = re.compile(r"^[^\s/:]{1,15}$")  # what the kernel accepts
# The Prometheus endpoint listens on loopback unless told otherwise (a
# Kubernetes node's own address, for one); by default on this port plus the
# device's slot, so each running device has its own, fixed port.
METRICS_HOST = "127.0.0.1"
METRICS_PORT_BASE = 9464
# --busy-poll's ceiling: past a second between sleeps a worker no longer
# busy-polls, it spins.
MAX_BUSY_POLL_US = 1_000_000


# --peer-napi: where a lab peer's receive runs (softena/ports/lab.py);
# --host-napi: where the host's receive of our Rx runs (softena/ports/tap.py, hostnapi.py).
PEER_NAPI_MODES = ("auto", "adaptive", "inline", "coalesced", "threaded")
VETH_PEER_MODES = ("adaptive", "coalesced")  # moderation of veth's NAPI; a tap wire's frames cross whole
HOST_NAPI_MODES = ("auto", "inline", "threaded", "affine")


def resolve_peer_napi(mode: str, wire: WireSpec) -> str:
    """--peer-napi auto (the default): adaptive on the lab's veth wire, as a
    host's NIC receives, moderated while a stream lasts; inline on a tap wire,
    whose frames cross whole (TSO and all, with their vnet headers), so the
    peer has nothing to merge, and inline where the far end is not ours."""
    if mode != "auto":
        return mode
    return "adaptive" if wire.lab and wire.kind == "xsk" else "inline"


def resolve_host_napi(mode: str, busy_poll_us: int) -> str:
    """--host-napi auto (the default): affine, as a NIC's queue interrupts are
    placed; inline with --busy-poll, whose workers seldom sleep, and an affine
    NAPI thread runs only when its worker does."""
    if mode != "auto":
        return mode
    return "inline" if busy_poll_us else "affine"


@dataclass(frozen=True)
class WireSpec:
    """--wire: lab (veth to a peer namespace), xdp:IFACE, tap (in the lab) or tap:NAME."""

    kind: str  # "xsk" or "tap"
    iface: str | None  # existing interface (xdp:) or tap name (tap:NAME)
    lab: bool  # the far end is eth0 in <dev>-peer

    @classmethod
    def parse(cls, text: str) -> WireSpec:
        if text == "lab":
            return cls("xsk", None, True)
        if text == "tap":
            return cls("tap", None, True)
        kind, _, iface = text.partition(":")
        if kind in ("xdp", "tap") and iface:
            return cls("xsk" if kind == "xdp" else "tap", iface, False)
        raise SoftenaError(f"invalid wire '{text}': use lab, xdp:IFACE, tap or tap:NAME")

    def describe(self) -> str:
        if self.lab:
            return "lab veth (AF_XDP)" if self.kind == "xsk" else "lab tap"
        return f"{'xdp' if self.kind == 'xsk' else 'tap'}:{self.iface}"


@dataclass
class DeviceConfig:
    """Everything `softena up` was asked for."""

    name: str = "ena0"
    queues: int = field(default_factory=lambda: os.cpu_count() or 1)
    cpus: list[int] = field(default_factory=lambda: sorted(os.sched_getaffinity(0)))
    wire: WireSpec = field(default_factory=lambda: WireSpec.parse("lab"))
    mtu: int = 1500
    llq_header: int = 96  # ENA's default LLQ entry: 96 bytes of header inline
    thresholds: Thresholds = field(default_factory=Thresholds)
    attrs: DeviceAttributes = field(default_factory=DeviceAttributes)
    metrics: bool = True  # --no-metrics: no Prometheus endpoint
    metrics_port: int | None = None  # None: METRICS_PORT_BASE + the device's slot
    metrics_address: str = METRICS_HOST  # --metrics-address: where the endpoint listens
    busy_poll_us: int = 0  # --busy-poll: workers spin this long for work before they sleep
    steering: bool = True  # --no-steering: no RSS stage on a software wire (softena/ports/steer.py)
    read_group: str | None = None  # --read-group: may use the read-only control commands
    peer_napi: str = "auto"  # --peer-napi: a lab peer receives moderated by its load, always, inline or in threads
    host_napi: str = "auto"  # --host-napi: the host receives our Rx inline or in NAPI threads of the tap

    def __post_init__(self) -> None:
        self.host_napi = resolve_host_napi(self.host_napi, self.busy_poll_us)
        self.peer_napi = resolve_peer_napi(self.peer_napi, self.wire)

    def validate(self) -> None:
        """Refuse what cannot work, before any kernel object exists."""
        if not _IFNAME.match(self.name):
            raise SoftenaError(
                f"invalid device name '{self.name}': 1-10 letters, digits, '_' or '.', starting with a letter")
        self.attrs.check_queues(self.queues)
        if self.llq_header not in (0, 96, 224):
            raise SoftenaError(f"invalid --llq {self.llq_header}: off, 96 or 224")
        self.attrs.check_mtu(self.mtu)
        allowed = os.sched_getaffinity(0)
        bad = [c for c in self.cpus if c not in allowed]
        if not self.cpus or bad:
            raise SoftenaError(f"invalid --cpus: {bad or 'empty'} not among the allowed CPUs {sorted(allowed)}")
        if self.wire.iface and not _ANY_IFNAME.match(self.wire.iface):
            raise SoftenaError(f"invalid wire interface name '{self.wire.iface}'")
        if not 0 <= self.busy_poll_us <= MAX_BUSY_POLL_US:
            raise SoftenaError(f"invalid --busy-poll {self.busy_poll_us}: 0..{MAX_BUSY_POLL_US} microseconds")
        if self.peer_napi not in PEER_NAPI_MODES:
            raise SoftenaError(f"invalid --peer-napi '{self.peer_napi}': {' or '.join(PEER_NAPI_MODES)}")
        if self.peer_napi in VETH_PEER_MODES and self.wire.kind == "tap":
            raise SoftenaError(f"--peer-napi {self.peer_napi}: a veth wire's mode; a tap wire carries TSO "
                               "frames whole, so its peer has nothing to merge")
        if self.peer_napi != "inline" and not self.wire.lab:
            raise SoftenaError(f"--peer-napi {self.peer_napi}: only a lab wire has a peer of ours; "
                               f"wire {self.wire.describe()} has none")
        if self.host_napi not in HOST_NAPI_MODES:
            raise SoftenaError(f"invalid --host-napi '{self.host_napi}': {' or '.join(HOST_NAPI_MODES)}")
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise SoftenaError(f"invalid --metrics-port {self.metrics_port}: 1..65535")
        try:
            ipaddress.ip_address(self.metrics_address)
        except ValueError:
            raise SoftenaError(f"invalid --metrics-address '{self.metrics_address}': not an IP address") from None
        if self.read_group is not None:
            group_id(self.read_group)


def parse_cpus(text: str) -> list[int]:
    """A CPU list as taskset takes it: '0,2-3'."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError as exc:
        raise SoftenaError(f"invalid --cpus '{text}': expected a list such as 0,2-3") from exc
    return sorted(set(cpus))


def check_environment(config: DeviceConfig) -> None:
    """Root, /dev/net/tun and the tools the chosen wire needs."""
    if os.geteuid() != 0:
        raise SoftenaError("must be run as root (CAP_NET_ADMIN and CAP_NET_RAW are needed)")
    if not os.path.exists("/dev/net/tun"):
        raise SoftenaError("/dev/net/tun is missing: load the tun module (modprobe tun)")
    needed = {"ip": "iproute2"}
    if config.wire.lab and config.wire.kind == "xsk":
        needed["ethtool"] = "ethtool"
    for tool, package in needed.items():
        if shutil.which(tool) is None:
            raise SoftenaError(f"missing dependency: {tool} (apt-get install {package})")
