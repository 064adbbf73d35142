"""Topology: everything the bench creates, and its removal.

- the baselines: namespaces sb-a / sb-b joined by a veth pair sbv-a/sbv-b
  (198.18.1.1 -> .2), at MTU 1500 or 9000, with or without an XDP_PASS
  program (native mode) on both ends;
- one softena device, `sbn0` with its lab peer namespace `sbn0-peer`
  (`softena up`, any wire/MTU/busy-poll), up for one block of measurements;
- the user-mode peers: a namespace given networking by pasta or
  slirp4netns, toward servers on the host's loopback;
- a temporary directory for the compiled helpers.

Lab.cleanup() removes exactly what was created, also after Ctrl-C or a
failure, and checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from common import (
    REPO_DIR,
    BenchError,
    build_helpers,
    check_address,
    link_exists,
    log,
    need,
    netns_list,
    run,
    wait_ping,
)

NS_A, NS_B = "sb-a", "sb-b"
VETH_A, VETH_B = "sbv-a", "sbv-b"
ADDR_A, ADDR_B = "198.18.1.1", "198.18.1.2"

# The lab peer's interrupt moderation (softena.ports.lab.PEER_RX_USECS; the bench
# drives softena as a command and does not import it; a test keeps the two equal).
PEER_RX_USECS = 50

DEV = "sbn0"  # the bench's softena device; its lab namespace is DEV-peer, its wire link DEV-wire
DEV_NS = f"{DEV}-peer"
DEV_WIRE = f"{DEV}-wire"
DEV_STATE = f"/run/softena/{DEV}.json"

# User-mode networking peers: one namespace each, addresses in 198.18.0.0/15.
# The namespace reaches the host's loopback through the tool's gateway address.
USERNET = {
    # slirp4netns --cidr N/24: the namespace gets N+100, the gateway (host) N+2
    "slirp4netns": {"ns": "sb-slirp", "ifname": "tap0", "cidr": "198.18.64.0/24",
                    "addr": "198.18.64.100", "gateway": "198.18.64.2"},
    "pasta": {"ns": "sb-pasta", "ifname": "sbp0", "addr": "198.18.65.2", "gateway": "198.18.65.1"},
}

XDP_PASS_C = """\
#include <linux/bpf.h>
#define SEC(name) __attribute__((section(name), used))
SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
char _license[] SEC("license") = "GPL";
"""


def sysfs_write(ns: str, dev: str, **values: int) -> list[str]:
    """The command that writes each value to DEV's /sys/class/net attribute of that
    name, in order, in one process inside NS (which sysfs shows the devices of)."""
    script = " && ".join(f"echo {value} > /sys/class/net/{dev}/{attr}" for attr, value in values.items())
    return ["ip", "netns", "exec", ns, "sh", "-c", script]


@dataclass
class Device:
    """What is known about the running softena device."""

    wire: str
    mtu: int
    busy_poll: int
    peer_napi: str
    host_napi: str
    pid: int
    peer: str
    mode: str
    queues: int


@dataclass
class Lab:
    """Everything the bench creates, so that cleanup removes exactly that."""

    softena_cmd: str | None
    queues: int
    tmpdir: str | None = None
    helpers: dict[str, str] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    xdp_obj: str | None = None
    veth_xdp: bool = False
    veth_mtu: int = 1500
    veth_threaded: bool = False
    veth_coalesced: bool = False
    owns_names: bool = False
    dev: Device | None = None
    dev_maybe_up: bool = False
    dev_ever_up: bool = False
    usernet_procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- the softena command: this checkout's unless told otherwise --

    def softena(self, *args: str) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.softena_cmd:
            return [*shlex.split(self.softena_cmd), *args], env
        env["PYTHONPATH"] = REPO_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return [sys.executable, "-m", "softena", *args], env

    def run_softena(self, *args: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv, env = self.softena(*args)
        return run(argv, timeout=timeout, check=check, env=env)

    # -- preflight --

    def preflight(self) -> None:
        """Refuse to start on a machine that is not clean, before creating anything."""
        if os.geteuid() != 0:
            raise BenchError("must be run as root")
        for tool, package in (("ip", "iproute2"), ("ss", "iproute2"), ("ping", "iputils-ping"),
                              ("clang", "clang"), ("gcc", "gcc")):  # iperf3: common.use_iperf3()
            need(tool, package)
        mine_ns = {NS_A, NS_B, DEV_NS} | {u["ns"] for u in USERNET.values()}
        clash = sorted(netns_list() & mine_ns)
        if clash:
            raise BenchError(f"namespace(s) {', '.join(clash)} already exist: another bench is running or "
                             f"one was killed; remove them (`softena down {DEV}`, `ip netns del NAME`)")
        links = [n for n in (DEV, DEV_WIRE, VETH_A, VETH_B) if link_exists(n)]
        if links or os.path.exists(DEV_STATE):
            raise BenchError(f"{', '.join(links) or DEV_STATE} already exist(s): `softena down {DEV}` first")
        self.owns_names = True  # from here on, these names are ours to remove
        self.tmpdir = tempfile.mkdtemp(prefix="softena-bench-")

    def build(self) -> None:
        """Compile the XDP_PASS object and the C helpers into the temp dir."""
        assert self.tmpdir
        src, obj = os.path.join(self.tmpdir, "pass.c"), os.path.join(self.tmpdir, "pass.o")
        with open(src, "w") as f:
            f.write(XDP_PASS_C)
        triple = run(["gcc", "-dumpmachine"]).stdout.strip()
        run(["clang", "-O2", "-target", "bpf", f"-I/usr/include/{triple}", "-c", src, "-o", obj], timeout=60)
        self.xdp_obj = obj
        self.helpers = build_helpers(self.tmpdir)

    # -- baseline veth --

    def create_veth(self) -> None:
        """Two namespaces joined by a veth pair with QUEUES queues each way."""
        for ns in (NS_A, NS_B):
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            run(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
        q = str(self.queues)
        run(["ip", "link", "add", VETH_A, "numtxqueues", q, "numrxqueues", q, "netns", NS_A,
             "type", "veth", "peer", "name", VETH_B, "numtxqueues", q, "numrxqueues", q, "netns", NS_B])
        for ns, dev, addr in ((NS_A, VETH_A, ADDR_A), (NS_B, VETH_B, ADDR_B)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", "dev", dev, "up"])
        wait_ping(NS_A, ADDR_B)

    def set_veth(self, mtu: int, xdp: bool, threaded: bool = False, coalesced: bool = False) -> None:
        """Veth baseline at MTU, with XDP_PASS on both ends or none; THREADED:
        both ends receive with GRO in NAPI threads, as softena's --peer-napi threaded peer;
        COALESCED: both ends' NAPI polls moderated as the lab peer's are under a stream
        (--peer-napi adaptive, or coalesced; the XDP ends' NAPI already has GRO)."""
        if coalesced != self.veth_coalesced:
            self._veth_coalesce(coalesced)
        if self.veth_threaded and not threaded:
            self._veth_napi_threads(False)  # while the NAPIs still exist: veth has none without XDP or GRO
        if self.veth_xdp and (not xdp or mtu != self.veth_mtu):
            for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
                run(["ip", "-n", ns, "link", "set", "dev", dev, "xdpdrv", "off"])
            self.veth_xdp = False
        if mtu != self.veth_mtu:
            for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
                run(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", str(mtu)])
            self.veth_mtu = mtu
        if xdp and not self.veth_xdp:
            assert self.xdp_obj
            for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
                run(["ip", "-n", ns, "link", "set", "dev", dev, "xdpdrv", "obj", self.xdp_obj, "sec", "xdp"])
            self.veth_xdp = True
            for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):  # prove it is there, in native mode
                if "prog/xdp " not in run(["ip", "-n", ns, "-d", "link", "show", "dev", dev]).stdout:
                    raise BenchError(f"XDP program not attached in native mode on {ns}/{dev}")
        if threaded and not self.veth_threaded:
            self._veth_napi_threads(True)

    def _veth_coalesce(self, on: bool) -> None:
        """Software interrupt moderation at both veth ends, with softena's lab peer's
        values (softena.ports.lab.PEER_RX_USECS), or none."""
        for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
            run(sysfs_write(ns, dev, gro_flush_timeout=PEER_RX_USECS * 1000 if on else 0,
                            napi_defer_hard_irqs=int(on)))
        self.veth_coalesced = on

    def _veth_napi_threads(self, on: bool) -> None:
        """GRO and threaded NAPI on both veth ends, or neither (threads off before GRO, GRO on before threads)."""
        for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
            threads = sysfs_write(ns, dev, threaded=int(on))
            gro = ["ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "on" if on else "off"]
            for argv in (gro, threads) if on else (threads, gro):
                run(argv)
        self.veth_threaded = on

    # -- softena --

    def softena_up(self, wire: str = "lab", mtu: int = 1500, busy_poll: int = 0,
                   peer_napi: str = "auto", host_napi: str = "auto") -> Device:
        """`softena up sbn0 --wire W --mtu M --queues Q --peer-napi P --host-napi H [--busy-poll U]`;
        returns once traffic passes."""
        if self.dev is not None:
            self.softena_down()
        args = ["up", DEV, "--queues", str(self.queues), "--wire", wire, "--mtu", str(mtu), "--no-metrics",
                "--peer-napi", peer_napi, "--host-napi", host_napi]
        if busy_poll:
            args += ["--busy-poll", str(busy_poll)]
        self.dev_maybe_up = self.dev_ever_up = True
        self.run_softena(*args, timeout=90)
        status = json.loads(self.run_softena("status", "--json", timeout=15).stdout)
        mine = next((d for d in status if d.get("dev") == DEV), None)
        if not mine or mine.get("state") != "up":
            raise BenchError(f"softena status does not show {DEV} up: {mine}")
        peer = check_address((mine.get("lab") or {}).get("peer", [None])[0] or "")
        self.dev = Device(wire, mtu, busy_poll, peer_napi, host_napi, int(mine["pid"]), peer,
                          f"{mine.get('wire')} ({mine.get('wire-mode')})", int(mine.get("queues", self.queues)))
        self.check_path()
        return self.dev

    def check_path(self) -> None:
        """Traffic to the lab peer really crosses our device, and the device process is still the same.

        The machine is shared: another softena device puts lab addresses on
        the host too, and a `softena down` from elsewhere may take ours away.
        """
        assert self.dev
        route = run(["ip", "-j", "route", "get", self.dev.peer], check=False)
        try:
            via = json.loads(route.stdout)[0].get("dev")
        except (ValueError, IndexError, AttributeError):
            via = None
        if via != DEV:
            raise BenchError(f"route to {self.dev.peer} goes via {via or 'nothing'}, not {DEV}")
        if not os.path.exists(f"/proc/{self.dev.pid}"):
            raise BenchError(f"the {DEV} device process {self.dev.pid} went away")

    def set_arfs(self, on: bool) -> None:
        """`softena ethtool -K sbn0 ntuple on|off`: accelerated RFS for the host."""
        self.run_softena("ethtool", "-K", DEV, "ntuple", "on" if on else "off", timeout=15)

    def napi_tune(self, defer_hard_irqs: int = 100, gro_flush_timeout: int = 200000) -> int:
        """napi-set defer-hard-irqs / gro-flush-timeout on each of our device's NAPIs; returns how many."""
        ifindex = int(open(f"/sys/class/net/{DEV}/ifindex").read())
        out = self.run_softena("ynl", "--family", "netdev", "--dump", "napi-get", "--output-json").stdout
        ids = [n["id"] for n in json.loads(out) if n.get("ifindex") == ifindex]
        for napi_id in ids:
            self.run_softena("ynl", "--family", "netdev", "--do", "napi-set", "--json",
                             json.dumps({"id": napi_id, "defer-hard-irqs": defer_hard_irqs,
                                         "gro-flush-timeout": gro_flush_timeout}))
        return len(ids)

    def softena_stats(self) -> dict:
        return json.loads(self.run_softena("stats", DEV, "--json", timeout=15).stdout)

    def softena_down(self) -> None:
        """`softena down sbn0` if a device of ours may exist; bounded in time."""
        if not self.dev_maybe_up:
            return
        if os.path.exists(DEV_STATE) or link_exists(DEV) or DEV_NS in netns_list():
            self.run_softena("down", DEV, timeout=60)
        self.dev_maybe_up = False
        self.dev = None

    # -- user-mode networking peers --

    def usernet_up(self, tool: str, mtu: int) -> dict[str, str]:
        """A namespace with TOOL's user-mode networking at MTU; returns its USERNET entry."""
        u = USERNET[tool]
        ns = u["ns"]
        if ns not in self.namespaces:
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            run(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
        self.usernet_down(tool)
        if tool == "slirp4netns":
            argv = ["slirp4netns", "--configure", f"--mtu={mtu}", f"--cidr={u['cidr']}", "--disable-dns",
                    "--netns-type=path", f"/run/netns/{ns}", u["ifname"]]
        else:
            # As root, pasta would switch to nobody and then fail to join the namespace: --runas 0.
            argv = ["pasta", "--foreground", "--quiet", "--runas", "0", "--config-net", "--netns", ns, "--ipv4-only",
                    "-I", u["ifname"], "-a", u["addr"], "-n", "24", "-g", u["gateway"], "-m", str(mtu),
                    "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-dhcp"]
        log(f"{tool}: {' '.join(argv)}")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.usernet_procs[tool] = proc
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip()[-400:] if proc.stderr else ""
                self.usernet_procs.pop(tool, None)
                raise BenchError(f"{tool} exited ({proc.returncode}): {err}")
            out = run(["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", u["ifname"]], check=False).stdout
            if u["addr"] in out:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{tool}: {u['ifname']} in {ns} has no {u['addr']} after 10 s")
            time.sleep(0.1)
        run(["ip", "-n", ns, "link", "set", "dev", u["ifname"], "mtu", str(mtu)])
        if tool == "slirp4netns":  # pasta answers no echo at its gateway; its first iperf3 connect tells
            wait_ping(ns, u["gateway"], timeout=5)
        return u

    def usernet_down(self, tool: str) -> None:
        proc = self.usernet_procs.pop(tool, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        if proc.stderr:
            proc.stderr.close()

    # -- cleanup --

    def cleanup(self) -> list[str]:
        """Remove everything created, in reverse order; returns the problems found."""
        problems: list[str] = []
        if not self.owns_names:
            return problems  # refused at preflight: nothing here is ours
        for tool in list(self.usernet_procs):
            self.usernet_down(tool)
        try:
            self.softena_down()
        except BenchError as exc:
            problems.append(f"softena down: {exc}")
        for ns in reversed(self.namespaces):
            r = run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0 and ns in netns_list():
                problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
        self.namespaces = []
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        ours_ns = {NS_A, NS_B} | {u["ns"] for u in USERNET.values()}
        ours_links = [VETH_A, VETH_B]
        if self.dev_ever_up:
            ours_ns.add(DEV_NS)
            ours_links += [DEV, DEV_WIRE]
        left = sorted(netns_list() & ours_ns) + [n for n in ours_links if link_exists(n)]
        if left:
            problems.append(f"left behind: {', '.join(left)}")
        return problems

