"""softena up / down: bring a device up in the background, take it down."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time

from softena.cli.output import examples
from softena.cli.upconfig import UpOptions
from softena.control import ctlsock, daemon, devlock
from softena.control.cleanup import clear_leftovers
from softena.control.config import (
    HOST_NAPI_MODES,
    METRICS_HOST,
    METRICS_PORT_BASE,
    PEER_NAPI_MODES,
    DeviceConfig,
    WireSpec,
    check_environment,
    parse_cpus,
)
from softena.control.devlock import DeviceLock
from softena.control.health import Thresholds
from softena.control.state import (
    RUN_DIR,
    DeviceState,
    denied,
    list_devices,
    log_path,
    pid_alive,
)
from softena.datapath.datapath import MAX_QUEUES
from softena.device.features import MAX_MTU, DeviceAttributes
from softena.errors import SoftenaError

UP_EXAMPLES = examples(
    "softena up                        # ena0, peer namespace ena0-peer",
    "softena up ena1 --queues 2 --cpus 0-1",
    "softena up ena0 --wire xdp:eth1   # an existing interface as the wire",
    "softena up ena0 --wire tap --mtu 9000",
    "softena up --peer-napi threaded  # lab peer in NAPI threads",
    "softena up --host-napi inline    # host receives in workers' writes",
    "softena up ena0 --foreground      # stay attached, for a supervisor")


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="bring a device up (default ena0 with a lab peer)", epilog=UP_EXAMPLES)
    up.add_argument("name", nargs="?", default="ena0", help="interface name (default ena0)")
    up.add_argument("--queues", type=int, help="queue pairs (default: one per online CPU)")
    up.add_argument("--cpus", help="CPUs for the queue workers, e.g. 0,2-3")
    up.add_argument("--wire", default="lab", help="lab (default), xdp:IFACE, tap or tap:NAME")
    up.add_argument("--mtu", type=int, default=1500, help="MTU of the device and its wire")
    up.add_argument("--llq", default="96",
                    help="low-latency queue: bytes of each Tx frame pushed with its descriptor, 96 (default), "
                         "224 (large LLQ headers) or off")
    up.add_argument("--busy-poll", type=int, default=0, metavar="USECS",
                    help="workers poll for work this long before sleeping (latency for CPU; default 0)")
    up.add_argument("--peer-napi", choices=PEER_NAPI_MODES, default="auto",
                    help="how a lab peer receives: adaptive, as a host's NIC does with DIM, with GRO and its "
                         "receive interrupts moderated to one per 50 us while the wire carries it 50,000 frames "
                         "a second or more, taken at once below (a veth wire only); coalesced, moderated always "
                         "(a ping pays 10-20 us more); inline, in the sender's transmit call frame by frame, as "
                         "veth does by default; threaded, with GRO in NAPI threads of its own (on a small machine "
                         "they share its CPUs: more throughput for several streams, less for one, and a thread "
                         "wake-up more per round trip); auto (default): adaptive on the veth wire, inline on a "
                         "tap wire, which carries TSO frames whole")
    up.add_argument("--host-napi", choices=HOST_NAPI_MODES, default="auto",
                    help="where the host receives what the device delivers: affine, in the tap's NAPI threads "
                         "with GRO, each bound to its queue's worker CPU as a NIC's queue interrupt is and "
                         "running when the worker sleeps, so a reader is woken on its own CPU; inline, inside "
                         "the worker's write to the tap (no hand-off to a thread, and no wait for a polling "
                         "worker to sleep); threaded, in those threads unbound (the kernel's "
                         "/sys/class/net/DEV/threaded); auto (default): affine, or inline with --busy-poll")
    up.add_argument("--no-steering", action="store_true",
                    help="no RSS stage on a software wire: frames arrive on the queue the peer sent them on "
                         "and workers hand them over (for comparison)")
    up.add_argument("--max-queues", type=int, help="model a device with this many queue pairs at most (1..64)")
    up.add_argument("--max-mtu", type=int, help="model a device with this MTU limit")
    up.add_argument("--keep-alive-timeout", type=float, default=6.0, help="seconds without KEEP_ALIVE before a reset")
    up.add_argument("--tx-timeout", type=float, default=5.0, help="seconds before a Tx completion counts as missing")
    up.add_argument("--missing-tx-threshold", type=int, default=128,
                    help="missing Tx completions that reset the device")
    metrics = up.add_mutually_exclusive_group()
    metrics.add_argument("--metrics-port", type=int, metavar="PORT",
                         help=f"Prometheus endpoint http://ADDR:PORT/metrics (default: "
                              f"{METRICS_PORT_BASE} + the device's slot, {METRICS_PORT_BASE} for the first device)")
    metrics.add_argument("--no-metrics", action="store_true", help="no Prometheus endpoint")
    up.add_argument("--metrics-address", default=METRICS_HOST, metavar="ADDR",
                    help=f"IP address the Prometheus endpoint listens on (default {METRICS_HOST})")
    up.add_argument("--read-group", metavar="GROUP",
                    help="members of GROUP (name or number) may use the read-only commands: status, stats, "
                         "ethtool gets, ynl dumps, top (default: root and CAP_NET_ADMIN only)")
    up.add_argument("--foreground", action="store_true", help="stay attached (for supervisors)")
    up.add_argument("--config", metavar="FILE",
                    help="take options from this TOML file (keys: the long options without --, and name); "
                         "the command line overrides it")
    up.add_argument("--print-config", action="store_true",
                    help="print the options the file and the command line add up to, as TOML, and exit")
    up.add_argument("-j", "--json", action="store_true", default=argparse.SUPPRESS,
                    help="--print-config as JSON")
    up.add_argument("--notify-fd", type=int, help=argparse.SUPPRESS)
    # Last: the schema takes the defaults of the options above out of the parser.
    up.set_defaults(func=cmd_up, up_options=UpOptions(up))

    down = sub.add_parser("down", help="take a device down and remove what it created",
                          epilog=examples("softena down", "softena down ena1"))
    down.add_argument("name", nargs="?", metavar="DEV", help="device (default: the only one, or ena0)")
    down.set_defaults(func=cmd_down)


def config_from_args(args: argparse.Namespace) -> DeviceConfig:
    config = DeviceConfig(name=args.name, wire=WireSpec.parse(args.wire), mtu=args.mtu,
                          llq_header=parse_llq(args.llq), attrs=device_attributes(args.max_queues, args.max_mtu),
                          thresholds=thresholds(args), metrics=not args.no_metrics, metrics_port=args.metrics_port,
                          metrics_address=args.metrics_address, busy_poll_us=args.busy_poll,
                          steering=not args.no_steering, read_group=args.read_group,
                          peer_napi=args.peer_napi, host_napi=args.host_napi)
    if args.queues is not None:
        config.queues = args.queues
    else:  # one per online CPU, as far as the device has queues
        config.queues = min(config.queues, config.attrs.max_queues)
    if args.cpus is not None:
        config.cpus = parse_cpus(args.cpus)
    config.validate()
    return config


def thresholds(args: argparse.Namespace) -> Thresholds:
    """The watchdogs' limits, each checked to be positive."""
    for name in ("keep_alive_timeout", "tx_timeout", "missing_tx_threshold"):
        if getattr(args, name) <= 0:
            raise SoftenaError(f"invalid --{name.replace('_', '-')} {getattr(args, name)}: must be positive")
    return Thresholds(args.keep_alive_timeout, args.tx_timeout, args.missing_tx_threshold)


def parse_llq(text: str) -> int:
    """--llq: off, 96 or 224."""
    if text == "off":
        return 0
    if text in ("96", "224"):
        return int(text)
    raise SoftenaError(f"invalid --llq '{text}': off, 96 or 224")


def device_attributes(max_queues: int | None, max_mtu: int | None) -> DeviceAttributes:
    """The device to model: the defaults, or a smaller or larger one."""
    attrs = DeviceAttributes()
    if max_queues is not None:
        if not 1 <= max_queues <= MAX_QUEUES:  # the datapath's and the XSKMAP's limit
            raise SoftenaError(f"invalid --max-queues {max_queues}: 1..{MAX_QUEUES}")
        attrs = dataclasses.replace(attrs, max_queues=max_queues)
    if max_mtu is not None:
        if not attrs.min_mtu <= max_mtu <= MAX_MTU:
            raise SoftenaError(f"invalid --max-mtu {max_mtu}: {attrs.min_mtu}..{MAX_MTU}")
        attrs = dataclasses.replace(attrs, max_mtu=max_mtu)
    return attrs


def cmd_up(args: argparse.Namespace) -> int:
    args, config = args.up_options.merge(args, args.config, config_from_args)
    if args.print_config:
        print(args.up_options.dump(args, as_json=getattr(args, "json", False)))
        return 0
    if args.foreground:
        return daemon.run(config, args.notify_fd)
    check_environment(config)
    return _spawn_background(args, config)


def _spawn_background(args: argparse.Namespace, config: DeviceConfig) -> int:
    """Start the device process detached and wait until it passes traffic."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    devlock.refuse_if_held(config.name)  # at once, before touching the running one's log
    rfd, wfd = os.pipe()
    argv = [sys.executable, "-m", "softena", *sys.argv[1:], "--foreground", "--notify-fd", str(wfd)]
    # 0600: the run directory may be open to a device's read group; the log is root's.
    with open(os.open(log_path(config.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                pass_fds=(wfd,), start_new_session=True)
    os.close(wfd)
    with os.fdopen(rfd) as pipe:
        line = pipe.readline().strip()
    if line == "ready":
        print(f"{config.name}: up, {config.queues} queue pairs, wire {config.wire.describe()}")
        return 0
    proc.wait(timeout=30)
    if line.startswith("error "):
        _drop_log(config.name)
        raise SoftenaError(line[len("error "):])
    # It died before it could say why: its log is all there is to show.
    tail = _drop_log(config.name)
    raise SoftenaError(f"{config.name}: the device process exited ({proc.returncode}): {tail or 'no output'}")


def _drop_log(dev: str) -> str:
    """Remove a failed device's log, unless a record still points at it; return its last line."""
    path = log_path(dev)
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    if DeviceState.load(dev) is None:
        os.unlink(path)
    return lines[-1] if lines else ""


def cmd_down(args: argparse.Namespace) -> int:
    name = args.name or _default_device()
    state = DeviceState.load(name)
    if state is None and denied(name):
        raise SoftenaError(f"{name}: permission denied: not root, and not in the device's read group")
    if state is None:
        raise SoftenaError(f"{name}: no such device")
    if not pid_alive(state.pid):
        if os.geteuid() != 0:
            raise SoftenaError("must be run as root")
        with DeviceLock.acquire(name):  # a crashed device's lock is free; a live one's names it
            clear_leftovers(name)
        print(f"{name}: cleared what a crashed device left behind")
        return 0
    try:
        ctlsock.request(name, "shutdown")  # the device says whether this caller may
    except SoftenaError:
        if os.geteuid() != 0:
            raise
        os.kill(state.pid, 15)
    deadline = time.monotonic() + 20
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(state.pid):
        raise SoftenaError(f"{name}: device process {state.pid} did not stop within 20 s")
    clear_leftovers(name)  # a no-op after a clean stop
    print(f"{name}: down")
    return 0


def _default_device() -> str:
    devices = list_devices()
    return devices[0] if len(devices) == 1 else "ena0"
