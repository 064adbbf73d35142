"""Least privilege: the device process keeps only the capabilities it uses.

Capabilities are per thread, and a Linux process has no call that changes
those of all its threads at once; so the device process drops what it does
not need once, before its first thread starts, and every thread after
inherits the reduced sets. What bring-up needs beyond the running device is
only what the drop itself takes (CAP_SETPCAP) and joining the read group
(CAP_SETGID); the rest of bring-up needs nothing the running device does not
need again for a reset, `ethtool -L/-G`, a link flap or the teardown.

Each set was measured, not guessed: with any one capability of
NEEDS missing, bring-up or a reset, `ethtool -L`, `-G`, a link flap or the
teardown fails on a wire that lists it; cap_bpf is the one a lab wire does
without, since cap_sys_admin implies it there. A tap wire's steering
program needs cap_bpf and cap_perfmon to load; without them the device
comes up unsteered.

Written with ctypes (capset(2), prctl(2)) as softena.threads names its
threads: the Python bindings of libcap-ng are Debian's, for Debian's own
Python, and this drop is twenty lines.
"""

from __future__ import annotations

import ctypes
import os

from softena.errors import SoftenaError

# What a running device keeps, why, and which wires need it: (reason, wire kinds).
# "xsk": AF_XDP wires (lab, xdp:IFACE); "lab": wires whose far end is a peer namespace
# (lab, tap); "steer": tap wires with their tun steering program (not --no-steering;
# the lab veth's is linked at bring-up, under cap_sys_admin); "affine": --host-napi
# affine, whatever the wire; "all": every wire.
# Measured one by one (see the module's docstring).
NEEDS: dict[str, tuple[str, str]] = {
    "cap_net_admin": ("links, tap queues, XDP attach, ethtool -L: bring-up, reset, -L/-G, teardown", "all"),
    "cap_net_raw": ("AF_XDP sockets, made anew on every queue rebuild; the lab's ICMP reachability probe",
                    "xsk lab"),
    "cap_bpf": ("the XDP program and its XSKMAP, a tap wire's steering program and its map "
                "(unprivileged BPF is disabled)", "xsk steer"),
    "cap_perfmon": ("the tap wire's steering program: the verifier refuses its table lookups "
                    "(variable-offset map reads) to a loader without it", "steer"),
    "cap_ipc_lock": ("every queue rebuild's UMEM pins its pages past RLIMIT_MEMLOCK", "xsk"),
    "cap_sys_admin": ("the peer namespace: made, entered for ethtool -L and the link watch, removed", "lab"),
    # A kernel thread's affinity and policy refuse even a root caller without it.
    "cap_sys_nice": ("--host-napi affine: each queue's NAPI thread bound to its worker's CPU, SCHED_BATCH",
                     "affine"),
}
# Only bring-up takes these, before the drop.
BRINGUP_ONLY: dict[str, str] = {
    "cap_setpcap": "dropping the rest from the bounding set",
    "cap_setgid": "joining --read-group, to hand the socket and the record to it",
}
# What the process must be started with (systemd's CapabilityBoundingSet): any wire's needs and the drop's.
# A --metrics-port below 1024 needs cap_net_bind_service besides.
BRINGUP_CAPS: tuple[str, ...] = (*NEEDS, *BRINGUP_ONLY)

CAP_NAMES = (
    "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
    "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
    "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module",
    "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot",
    "cap_sys_nice", "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
    "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
    "cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
)
CAP_NUMBER = {name: n for n, name in enumerate(CAP_NAMES)}

_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def runtime_caps(xsk: bool, lab: bool, low_port: bool = False, steer: bool = False,
                 affine: bool = False) -> dict[str, str]:
    """The capabilities a running device keeps, with why: those of NEEDS its wire needs
    (XSK: AF_XDP, LAB: a peer namespace, STEER: a tap wire's steering program,
    AFFINE: --host-napi affine), and cap_net_bind_service for a metrics port below 1024."""
    kinds = {"all"} | ({"xsk"} if xsk else set()) | ({"lab"} if lab else set()) | ({"steer"} if steer else set()) \
        | ({"affine"} if affine else set())
    keep = {name: why for name, (why, wires) in NEEDS.items() if kinds & set(wires.split())}
    if low_port:
        keep["cap_net_bind_service"] = "the metrics port is below 1024"
    return keep


def mask(names) -> int:
    """The capability bit mask of NAMES, as /proc/PID/status shows sets."""
    return sum(1 << CAP_NUMBER[name] for name in names)


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def _prctl(*args: int) -> int:
    result = _libc.prctl(*(ctypes.c_ulong(a) for a in args))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def drop_to(keep: dict[str, str]) -> None:
    """Leave the calling process with exactly KEEP in its effective, permitted and
    bounding sets, and nothing inheritable or ambient.

    Must run before the process's second thread: a thread keeps the sets it was
    started with.
    """
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SoftenaError(f"cannot drop capabilities: {threads} threads run already (each keeps its own)")
    bits = mask(keep) & current("CapPrm")  # what was never had cannot be kept
    try:
        if current() >> CAP_NUMBER["cap_setpcap"] & 1:  # else a supervisor chose the bounding set
            for cap in range(_last_cap() + 1):
                if not bits >> cap & 1 and _prctl(_PR_CAPBSET_READ, cap):
                    _prctl(_PR_CAPBSET_DROP, cap)
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for i in range(2):
            word = bits >> (32 * i) & 0xFFFFFFFF
            data[i].effective = data[i].permitted = word
        if _libc.capset(ctypes.byref(header), data) < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    except OSError as exc:
        raise SoftenaError(f"cannot drop capabilities: {exc.strerror}") from exc


def current(which: str = "CapEff", pid: int | str = "self") -> int:
    """A capability set of process PID (CapEff, CapPrm, CapBnd, CapInh, CapAmb) from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(which + ":"):
                return int(line.split()[1], 16)
    raise SoftenaError(f"/proc/{pid}/status has no {which}")


def names(bits: int) -> list[str]:
    """The capability names of a bit mask."""
    return [name for n, name in enumerate(CAP_NAMES) if bits >> n & 1]


def describe(keep: dict[str, str]) -> str:
    """One log line: what is kept and why."""
    return "capabilities kept: " + "; ".join(f"{name} ({why})" for name, why in keep.items())
