#!/usr/bin/env python3
"""Compare softena's iperf3 TCP throughput against the kernel's own veth path.

One run measures four paths, each with four tests (one stream and -P N
streams, forward and reverse):

  veth          two namespaces (sb-a, sb-b) joined by a veth pair: baseline
  veth+xdp      the same veth with an XDP_PASS program on BOTH ends: baseline
  softena-xdp   `softena up` (lab veth wire driven through AF_XDP), host to
                ena0-peer; its ratio is taken against veth+xdp
  softena-tap   `softena up --wire tap`; its ratio is taken against veth

Each softena measurement is paired with its baseline measured right before
or after it (the order alternates between rounds), and softena is down while
a baseline runs, so drift on a shared machine hits both sides of a pair
alike.  A ratio is the median over rounds of the per-round pair ratios.

The script creates only: namespaces sb-a and sb-b (with veth sbv-a/sbv-b),
a temporary directory for the XDP object, and softena's own ena0 and
ena0-peer via `softena up`.  It removes all of them on exit, including after
Ctrl-C or a failure, and refuses to start if any of them already exists.

Stdlib only.  Must run as root.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Iterator, Sequence

# ---- names and addresses ---------------------------------------------------

NS_A, NS_B = "sb-a", "sb-b"
VETH_A, VETH_B = "sbv-a", "sbv-b"
ADDR_A, ADDR_B = "198.18.1.1", "198.18.1.2"
ADDR_PREFIX = 24

SOFTENA_DEV = "ena0"
SOFTENA_NS = "ena0-peer"
SOFTENA_WIRE_LINK = "ena0-wire"  # the host end of softena's lab veth
SOFTENA_PEER = "198.18.0.2"  # lab index 0; the real one is read from ena0-peer after `up`
SOFTENA_PEER_IF = "eth0"
SOFTENA_STATE = f"/run/softena/{SOFTENA_DEV}.json"

# Only these ranges may appear anywhere (benchmarking nets, RFC 2544/5180).
ALLOWED_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"))

# The XDP_PASS program for the veth+xdp baseline; compiled at run time.
XDP_PASS_C = """\
#include <linux/bpf.h>
#define SEC(name) __attribute__((section(name), used))
SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
char _license[] SEC("license") = "GPL";
"""


def _check_addresses() -> None:
    """Refuse to run with an address outside the allowed benchmarking ranges."""
    for addr in (ADDR_A, ADDR_B, SOFTENA_PEER):
        ip = ipaddress.ip_address(addr)
        if not any(ip in net for net in ALLOWED_NETS):
            raise SystemExit(f"internal error: {addr} is outside the allowed ranges")


# ---- the matrix -------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    """One iperf3 test shape."""

    name: str
    streams: int
    reverse: bool


@dataclass(frozen=True)
class Path:
    """One measured path; softena paths name the baseline they are judged by."""

    name: str
    kind: str  # "veth" or "softena"
    xdp: bool = False  # veth: XDP_PASS attached on both ends
    wire: str | None = None  # softena: argument of --wire, None for the default
    baseline: str | None = None  # softena: name of the baseline path
    floor: float | None = None  # softena: minimum ratio for single-stream tests
    description: str = ""


PATHS: tuple[Path, ...] = (
    Path("veth", "veth", description="kernel veth between two namespaces"),
    Path("veth+xdp", "veth", xdp=True,
         description="same veth, XDP_PASS (xdpdrv) attached on both ends"),
    Path("softena-xdp", "softena", wire=None, baseline="veth+xdp", floor=0.50,
         description="softena up (default lab wire: veth via AF_XDP)"),
    Path("softena-tap", "softena", wire="tap", baseline="veth", floor=0.50,
         description="softena up --wire tap"),
)
PATH_BY_NAME = {p.name: p for p in PATHS}


def make_tests(parallel: int) -> tuple[Test, ...]:
    """Single stream and PARALLEL streams, forward and reverse (-R)."""
    return (
        Test("1 stream fwd", 1, False),
        Test("1 stream rev", 1, True),
        Test(f"{parallel} streams fwd", parallel, False),
        Test(f"{parallel} streams rev", parallel, True),
    )


def floor_for(path: Path, test: Test) -> float | None:
    """The project's floor applies to single-stream tests, each way."""
    return path.floor if path.floor is not None and test.streams == 1 else None


# ---- process helpers ----------------------------------------------------------


class BenchError(Exception):
    """A step failed; the message says which and why."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C does."""


def log(msg: str) -> None:
    """Progress goes to stderr so stdout holds only the result."""
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a time bound; its own session keeps Ctrl-C for us.

    On timeout or interruption, subprocess.run kills the child before the
    exception propagates.
    """
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise BenchError(f"command not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-800:]
        raise BenchError(f"`{' '.join(argv)}` failed ({proc.returncode}): {detail}")
    return proc


def in_ns(ns: str | None, argv: Sequence[str]) -> list[str]:
    """ARGV run inside namespace NS (None: the host namespace)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


def netns_list() -> set[str]:
    """Names of the named network namespaces."""
    out = run(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_exists(name: str, ns: str | None = None) -> bool:
    """Whether interface NAME exists in NS (None: the host namespace)."""
    argv = ["ip", *(["-n", ns] if ns else []), "link", "show", "dev", name]
    return run(argv, check=False).returncode == 0


# ---- iperf3 -----------------------------------------------------------------


class IperfServer:
    """A one-off iperf3 server in a namespace, killed on exit whatever happens."""

    def __init__(self, ns: str, bind: str, port: int) -> None:
        self.ns, self.bind, self.port = ns, bind, port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> IperfServer:
        argv = in_ns(self.ns, ["iperf3", "-s", "-1", "-B", self.bind, "-p", str(self.port)])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
                raise BenchError(f"iperf3 server in {self.ns} exited ({self.proc.returncode}): {err}")
            ss = run(in_ns(self.ns, ["ss", "-Hltn", f"sport = :{self.port}"]), timeout=5, check=False)
            if ss.stdout.strip():
                return self
            time.sleep(0.05)
        self.close()
        raise BenchError(f"iperf3 server in {self.ns} did not listen on port {self.port} within 5 s")

    def close(self) -> None:
        """Stop the server (it may have exited by itself after its client)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def iperf3_gbps(client_ns: str | None, server_ns: str, server_addr: str, test: Test,
                args: argparse.Namespace) -> float:
    """One iperf3 TCP run; returns end.sum_received.bits_per_second in Gbit/s."""
    argv = in_ns(client_ns, ["iperf3", "-c", server_addr, "-p", str(args.port), "-J",
                             "-t", str(args.time), "-P", str(test.streams),
                             "--connect-timeout", "3000"])
    if args.omit:
        argv += ["-O", str(args.omit)]
    if test.reverse:
        argv.append("-R")
    with IperfServer(server_ns, server_addr, args.port):
        proc = run(argv, timeout=args.time + args.omit + 30, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-400:]
        raise BenchError(f"iperf3 gave no JSON (exit {proc.returncode}): {detail}") from exc
    if "error" in result:
        raise BenchError(f"iperf3: {result['error']}")
    try:
        bps = float(result["end"]["sum_received"]["bits_per_second"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchError("iperf3 JSON lacks end.sum_received.bits_per_second") from exc
    if proc.returncode != 0:
        raise BenchError(f"iperf3 exited {proc.returncode}")
    return bps / 1e9


# ---- the environment the bench creates ----------------------------------------


@dataclass
class Lab:
    """Everything this script creates, so that cleanup removes exactly that."""

    softena: str
    queues: int
    tmpdir: str | None = None
    namespaces: list[str] = field(default_factory=list)
    xdp_obj: str | None = None
    xdp_attached: bool = False
    softena_maybe_up: bool = False
    softena_settled: bool = True
    owns_names: bool = False  # preflight passed: the names below are ours
    softena_ever_up: bool = False
    softena_pid: int | None = None
    softena_modes: dict[str, str] = field(default_factory=dict)
    softena_peer: str | None = None  # the lab peer's IPv4 address while softena is up

    # -- preflight --

    def preflight(self, args: argparse.Namespace) -> None:
        """Refuse to start on a machine that is not clean, before creating anything."""
        if os.geteuid() != 0:
            raise BenchError("must be run as root")
        for tool in ("ip", "ss", "iperf3", "clang", "gcc", self.softena):
            if shutil.which(tool) is None:
                raise BenchError(f"required command not found: {tool}")
        clash = sorted(netns_list() & {NS_A, NS_B, SOFTENA_NS})
        if clash:
            hints = [f"`ip netns del {ns}`" for ns in clash if ns != SOFTENA_NS]
            if SOFTENA_NS in clash:
                hints.insert(0, f"`softena down {SOFTENA_DEV}`")
            raise BenchError(f"namespace(s) {', '.join(clash)} already exist: another bench or "
                             f"softena device is running; stop it first ({', '.join(hints)})")
        links = [n for n in (SOFTENA_DEV, SOFTENA_WIRE_LINK, VETH_A, VETH_B) if link_exists(n)]
        if links:
            raise BenchError(f"interface(s) {', '.join(links)} already exist; take them down first "
                             f"(`softena down` for {SOFTENA_DEV})")
        if os.path.exists(SOFTENA_STATE):
            raise BenchError(f"softena has a record of {SOFTENA_DEV} ({SOFTENA_STATE}): "
                             f"run `softena down {SOFTENA_DEV}` first")
        self.owns_names = True  # from here on, these names are ours to remove
        others = sorted(n[:-5] for n in (os.listdir(os.path.dirname(SOFTENA_STATE))
                                          if os.path.isdir(os.path.dirname(SOFTENA_STATE)) else [])
                        if n.endswith(".json"))
        if others:
            log(f"note: other softena device(s) exist ({', '.join(others)}); they share the CPUs, "
                f"and every softena run checks that its traffic crosses {SOFTENA_DEV}")

    # -- XDP object --

    def build_xdp(self) -> None:
        """Write and compile the XDP_PASS program into a private temp dir."""
        self.tmpdir = tempfile.mkdtemp(prefix="softena-bench-")
        src = os.path.join(self.tmpdir, "pass.c")
        obj = os.path.join(self.tmpdir, "pass.o")
        with open(src, "w") as f:
            f.write(XDP_PASS_C)
        triple = run(["gcc", "-dumpmachine"]).stdout.strip()
        run(["clang", "-O2", "-target", "bpf", f"-I/usr/include/{triple}", "-c", src, "-o", obj],
            timeout=60)
        self.xdp_obj = obj

    # -- baseline veth --

    def create_veth(self) -> None:
        """Two namespaces joined by a veth pair with QUEUES queues each way."""
        for ns in (NS_A, NS_B):
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            run(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
        q = str(self.queues)
        run(["ip", "link", "add", VETH_A, "numtxqueues", q, "numrxqueues", q, "netns", NS_A,
             "type", "veth", "peer", "name", VETH_B, "numtxqueues", q, "numrxqueues", q,
             "netns", NS_B])
        for ns, dev, addr in ((NS_A, VETH_A, ADDR_A), (NS_B, VETH_B, ADDR_B)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/{ADDR_PREFIX}", "dev", dev])
            run(["ip", "-n", ns, "link", "set", "dev", dev, "up"])
        self._wait_ping(NS_A, ADDR_B)

    def _wait_ping(self, ns: str | None, addr: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run(in_ns(ns, ["ping", "-c", "1", "-W", "1", "-q", addr]), timeout=5,
                   check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise BenchError(f"no ping reply from {addr} within {timeout:.0f} s")

    def set_xdp(self, on: bool) -> None:
        """Attach XDP_PASS (native mode) on both veth ends, or detach it."""
        if on == self.xdp_attached:
            return
        for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
            if on:
                assert self.xdp_obj is not None
                run(["ip", "-n", ns, "link", "set", "dev", dev, "xdpdrv", "obj", self.xdp_obj,
                     "sec", "xdp"])
            else:
                run(["ip", "-n", ns, "link", "set", "dev", dev, "xdpdrv", "off"])
        self.xdp_attached = on
        if on:  # prove it is there and in native mode
            for ns, dev in ((NS_A, VETH_A), (NS_B, VETH_B)):
                out = run(["ip", "-n", ns, "-d", "link", "show", "dev", dev]).stdout
                if "prog/xdp " not in out:
                    raise BenchError(f"XDP program not attached in native mode on {ns}/{dev}")

    # -- softena --

    def softena_up(self, wire: str | None) -> None:
        """`softena up [--wire WIRE] --queues Q`; returns once traffic passes."""
        argv = [self.softena, "up", "--queues", str(self.queues)]
        if wire:
            argv += ["--wire", wire]
        self.softena_maybe_up = self.softena_ever_up = True
        self.softena_settled = False
        proc = run(argv, timeout=60, check=False)
        self.softena_settled = True  # it returned: no bring-up is still in flight
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip())[-800:]
            raise BenchError(f"`{' '.join(argv)}` failed ({proc.returncode}): {detail}")
        self.softena_pid = None
        try:
            with open(SOFTENA_STATE) as f:
                self.softena_pid = int(json.load(f)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.softena_peer = self._read_peer_address()
        status = run([self.softena, "status", "--json"], timeout=15, check=False)
        try:
            for dev in json.loads(status.stdout):
                if dev.get("dev") == SOFTENA_DEV:
                    self.softena_modes[wire or "lab"] = (f"{dev.get('wire')} ({dev.get('wire-mode')}), "
                                                         f"peer {self.softena_peer}")
        except (ValueError, AttributeError):
            pass

    def softena_down(self) -> None:
        """`softena down` if a device of ours may exist; bounded in time."""
        if not self.softena_maybe_up:
            return
        # A bring-up cut short may still be finishing: give it a moment to leave a record.
        deadline = time.monotonic() + (0.0 if self.softena_settled else 3.0)
        while (not os.path.exists(SOFTENA_STATE) and not link_exists(SOFTENA_DEV)
               and SOFTENA_NS not in netns_list() and time.monotonic() < deadline):
            time.sleep(0.2)
        if os.path.exists(SOFTENA_STATE) or link_exists(SOFTENA_DEV) or SOFTENA_NS in netns_list():
            run([self.softena, "down", SOFTENA_DEV], timeout=60)
        self.softena_maybe_up = False
        self.softena_pid = None
        self.softena_peer = None

    def _read_peer_address(self) -> str:
        """The IPv4 address of eth0 in ena0-peer.

        softena gives each device its own lab subnet, 198.18.<index>.0/24;
        ena0 gets index 0 (198.18.0.2 for the peer) unless another device
        already holds it, so the address is read, not assumed.
        """
        out = run(["ip", "-n", SOFTENA_NS, "-j", "-4", "addr", "show", "dev", SOFTENA_PEER_IF],
                  check=False)
        try:
            addrs = [a["local"] for i in json.loads(out.stdout or "[]") for a in i.get("addr_info", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            addrs = []
        for addr in addrs:
            if any(ipaddress.ip_address(addr) in net for net in ALLOWED_NETS):
                return addr
        raise BenchError(f"no lab IPv4 address on {SOFTENA_PEER_IF} in {SOFTENA_NS} "
                         f"(found {addrs or 'none'}; {out.stderr.strip()})")

    def check_softena_path(self) -> None:
        """Make sure traffic to the lab peer really crosses our ena0.

        The machine is shared: another softena device (whatever its name)
        puts the same lab addresses on the host, and a `softena down` from
        elsewhere may take ours away.  Either would make a result meaningless.
        """
        peer = self.softena_peer or SOFTENA_PEER
        route = run(["ip", "-j", "route", "get", peer], check=False)
        try:
            dev = json.loads(route.stdout)[0].get("dev")
        except (ValueError, IndexError, AttributeError):
            dev = None
        if dev != SOFTENA_DEV:
            raise BenchError(f"route to {peer} goes via {dev or 'nothing'}, not {SOFTENA_DEV}")
        others = run(["ip", "-j", "-4", "addr", "show", "to", f"{peer}/{ADDR_PREFIX}"],
                     check=False)
        try:
            names = sorted({i["ifname"] for i in json.loads(others.stdout or "[]")} - {SOFTENA_DEV})
        except (ValueError, KeyError, TypeError):
            names = []
        if names:
            raise BenchError(f"another interface ({', '.join(names)}) holds a lab address "
                             f"too (another softena device?): results would be mixed")
        if self._read_peer_address() != peer:
            raise BenchError(f"the address of {SOFTENA_PEER_IF} in {SOFTENA_NS} changed")
        pid = None
        try:
            with open(SOFTENA_STATE) as f:
                pid = int(json.load(f)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if pid is None or pid != self.softena_pid or not os.path.exists(f"/proc/{pid}"):
            raise BenchError(f"the {SOFTENA_DEV} device process changed or went away "
                             f"(was {self.softena_pid}, now {pid})")

    def softena_cpu_seconds(self) -> float | None:
        """User+system CPU time of the softena device process so far."""
        if self.softena_pid is None:
            return None
        try:
            with open(f"/proc/{self.softena_pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    # -- cleanup --

    def cleanup(self) -> list[str]:
        """Remove everything created, in reverse order; returns problems found."""
        problems: list[str] = []
        if not self.owns_names:
            return problems  # refused at preflight: nothing here is ours
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
        # Verify: nothing of ours may remain.
        ours_ns, ours_links = {NS_A, NS_B}, [VETH_A, VETH_B]
        if self.softena_ever_up:
            ours_ns.add(SOFTENA_NS)
            ours_links += [SOFTENA_DEV, SOFTENA_WIRE_LINK]
        left = sorted(netns_list() & ours_ns) + [n for n in ours_links if link_exists(n)]
        if left:
            problems.append(f"left behind: {', '.join(left)}")
        return problems


# ---- measurement ------------------------------------------------------------


@dataclass
class Sample:
    """One iperf3 run's result (gbps None when it failed)."""

    path: str
    test: str
    round: int
    gbps: float | None
    error: str | None = None
    softena_cpu_pct: float | None = None


def measure_once(lab: Lab, path: Path, test: Test, args: argparse.Namespace
                 ) -> tuple[float, float | None]:
    """One run of PATH x TEST: (Gbit/s, softena CPU % or None).

    softena is brought up only for its own run and taken down right after,
    so it never runs (or spins) while a baseline is measured.
    """
    if path.kind == "veth":
        lab.set_xdp(path.xdp)
        return iperf3_gbps(NS_A, NS_B, ADDR_B, test, args), None
    try:
        lab.softena_up(path.wire)
        time.sleep(args.pause)
        lab.check_softena_path()
        cpu0, t0 = lab.softena_cpu_seconds(), time.monotonic()
        gbps = iperf3_gbps(None, SOFTENA_NS, lab.softena_peer or SOFTENA_PEER, test, args)
        cpu1, t1 = lab.softena_cpu_seconds(), time.monotonic()
        lab.check_softena_path()  # still ours at the end of the run
    finally:
        lab.softena_down()  # a BenchError here is fatal: the machine is not clean
    cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else None
    return gbps, cpu_pct


def measure(lab: Lab, path: Path, test: Test, rnd: int, args: argparse.Namespace) -> Sample:
    """Measure PATH x TEST once, with at most ARGS.retries further attempts."""
    error = ""
    for attempt in range(1 + args.retries):
        try:
            gbps, cpu_pct = measure_once(lab, path, test, args)
        except BenchError as exc:
            error = str(exc)
            log(f"round {rnd + 1}: {path.name:<12} {test.name:<15} attempt {attempt + 1} "
                f"failed: {error}")
            if lab.softena_maybe_up:  # softena down failed: do not go on
                raise
            time.sleep(args.pause)
            continue
        log(f"round {rnd + 1}: {path.name:<12} {test.name:<15} {gbps:7.2f} Gbit/s")
        time.sleep(args.pause)
        return Sample(path.name, test.name, rnd, gbps, softena_cpu_pct=cpu_pct)
    return Sample(path.name, test.name, rnd, None, error=error)


def schedule(tests: Sequence[Test], rounds: int) -> Iterator[tuple[int, Path, Test]]:
    """Pairs (baseline, softena) per test, run back to back.

    The order inside a pair and the order of the two wires alternate between
    rounds, so neither side is always first after a change.
    """
    softena_paths = [p for p in PATHS if p.kind == "softena"]
    for rnd in range(rounds):
        wires = softena_paths if rnd % 2 == 0 else softena_paths[::-1]
        for sp in wires:
            base = PATH_BY_NAME[sp.baseline or ""]
            for test in tests:
                pair = (base, sp) if rnd % 2 == 0 else (sp, base)
                for path in pair:
                    yield rnd, path, test


# ---- results ----------------------------------------------------------------


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median of the values that exist."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(samples: list[Sample], tests: Sequence[Test]) -> list[dict[str, Any]]:
    """One row per path x test: median Gbit/s, baseline, ratio, floor, verdict.

    The ratio is the median over rounds of softena/baseline taken within a
    round (pairs measured back to back), not a ratio of two medians.
    """
    by: dict[tuple[str, str], dict[int, Sample]] = {}
    for s in samples:
        by.setdefault((s.path, s.test), {})[s.round] = s
    rows: list[dict[str, Any]] = []
    for path in PATHS:
        for test in tests:
            mine = by.get((path.name, test.name), {})
            row: dict[str, Any] = {
                "path": path.name,
                "test": test.name,
                "streams": test.streams,
                "reverse": test.reverse,
                "gbps": median_or_none([s.gbps for s in mine.values()]),
                "samples_gbps": [mine[r].gbps for r in sorted(mine)],
                "errors": [mine[r].error for r in sorted(mine) if mine[r].error],
                "baseline": path.baseline,
                "baseline_gbps": None,
                "ratio": None,
                "floor": floor_for(path, test),
                "verdict": None,
            }
            if path.kind == "softena":
                row["softena_cpu_pct"] = median_or_none([s.softena_cpu_pct for s in mine.values()])
            if path.baseline:
                base = by.get((path.baseline, test.name), {})
                row["baseline_gbps"] = median_or_none([s.gbps for s in base.values()])
                ratios = [mine[r].gbps / base[r].gbps for r in mine
                          if r in base and mine[r].gbps is not None and base[r].gbps]
                row["ratio"] = statistics.median(ratios) if ratios else None
            if row["floor"] is not None:
                if row["ratio"] is None:
                    row["verdict"] = "NO DATA"  # counts as a failure for --check
                else:
                    row["verdict"] = "PASS" if row["ratio"] >= row["floor"] else "FAIL"
            rows.append(row)
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]], lab: Lab, args: argparse.Namespace,
                complete: bool = True) -> None:
    """The human-readable result on stdout."""
    head = ("path", "test", "Gbit/s", "baseline", "base Gbit/s", "ratio", "floor", "verdict")
    body = []
    for r in rows:
        body.append((r["path"], r["test"], _fmt(r["gbps"], ".2f"), r["baseline"] or "-",
                     _fmt(r["baseline_gbps"], ".2f") if r["baseline"] else "-",
                     _fmt(r["ratio"], ".2f") if r["baseline"] else "-",
                     f">= {r['floor']:.2f}" if r["floor"] is not None else "-",
                     r["verdict"] or "-"))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    right = {2, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    if not complete:
        print("INCOMPLETE RUN: the bench stopped early; rows below hold what was measured.\n")
    print(f"iperf3 TCP, {args.time} s per run, median of {args.repeat} round(s), "
          f"{lab.queues} queue(s), {os.cpu_count()} CPU(s), kernel {os.uname().release}")
    for p in PATHS:
        mode = lab.softena_modes.get(p.wire or "lab") if p.kind == "softena" else None
        extra = f" [{mode}]" if mode else ""
        print(f"  {p.name:<12} {p.description}{extra}")
    print()
    print(line(head))
    print(line(["-" * w for w in widths]))
    prev = None
    for r, cells in zip(rows, body):
        if prev is not None and r["path"] != prev:
            print()
        prev = r["path"]
        print(line(cells))
    floors = [r for r in rows if r["floor"] is not None]
    print()
    print("Floors (single stream, each way): softena-xdp >= 0.50 x veth+xdp, "
          "softena-tap >= 0.50 x veth")
    failed = [r for r in floors if r["verdict"] != "PASS"]
    print(f"Floors: {len(floors) - len(failed)}/{len(floors)} PASS"
          + (f"; FAIL: {', '.join(r['path'] + ' ' + r['test'] for r in failed)}" if failed else ""))
    errors = [(r["path"], r["test"], e) for r in rows for e in r["errors"]]
    if errors:
        print("\nErrors:")
        for path, test, err in errors:
            print(f"  {path} {test}: {err}")


# ---- main -------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(
        description="iperf3 TCP throughput of softena (AF_XDP and tap wires) as a ratio "
                    "to the kernel's veth path (plain and with XDP_PASS).")
    ap.add_argument("--time", type=int, default=5, help="seconds per iperf3 run (default 5)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds; results are medians over rounds (default 1)")
    ap.add_argument("--parallel", type=int, default=4, help="streams of the -P tests (default 4)")
    ap.add_argument("--omit", type=int, default=0,
                    help="iperf3 -O: extra seconds at the start left out of the result (default 0)")
    ap.add_argument("--queues", type=int, default=os.cpu_count() or 1,
                    help="softena --queues and the veth queue count (default: one per CPU)")
    ap.add_argument("--port", type=int, default=5201, help="iperf3 port (default 5201)")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="seconds of quiet between runs and after softena up (default 1)")
    ap.add_argument("--retries", type=int, default=2,
                    help="further attempts of a run that failed (default 2)")
    ap.add_argument("--softena", default="softena", help="the softena command (default: softena)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="JSON result: to stdout instead of the table, or to FILE as well")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a floor fails (otherwise exit 0 whatever the ratios)")
    args = ap.parse_args(argv)
    for name in ("time", "repeat", "parallel", "queues"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.omit < 0 or args.pause < 0 or args.retries < 0:
        ap.error("--omit, --pause and --retries must not be negative")
    return args


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole comparison; see the module docstring."""
    _check_addresses()
    args = parse_args(argv)
    tests = make_tests(args.parallel)
    lab = Lab(softena=args.softena, queues=args.queues)
    samples: list[Sample] = []
    old_handlers = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    status = 0
    interrupted = False
    started = time.monotonic()
    try:
        lab.preflight(args)
        total = len(list(schedule(tests, args.repeat)))
        log(f"{total} runs of {args.time} s ({args.repeat} round(s)); this takes about "
            f"{total * (args.time + args.omit + 2 * args.pause + 1.5) / 60:.1f} min")
        lab.build_xdp()
        lab.create_veth()
        for rnd, path, test in schedule(tests, args.repeat):
            samples.append(measure(lab, path, test, rnd, args))
    except BenchError as exc:
        log(f"error: {exc}")
        status = 2
    except (KeyboardInterrupt, Interrupted):
        log("interrupted")
        interrupted = True
        status = 130
    finally:
        # Cleanup must finish: no second Ctrl-C in the middle of it.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        log("cleaning up")
        problems = lab.cleanup()
        for p in problems:
            log(f"cleanup problem: {p}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if problems and status == 0:
            status = 2
    if status != 0 and not samples:
        return status
    rows = summarize(samples, tests)
    result = {
        "config": {"time": args.time, "repeat": args.repeat, "parallel": args.parallel,
                   "omit": args.omit, "queues": args.queues, "cpus": os.cpu_count(),
                   "kernel": os.uname().release,
                   "elapsed_s": round(time.monotonic() - started, 1)},
        "paths": {p.name: {"description": p.description, "baseline": p.baseline,
                           "mode": lab.softena_modes.get(p.wire or "lab") if p.kind == "softena"
                           else None} for p in PATHS},
        "complete": status == 0,
        "rows": rows,
        "floors_pass": all(r["verdict"] == "PASS" for r in rows if r["floor"] is not None),
    }
    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print_table(rows, lab, args, complete=status == 0)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    if interrupted or status != 0:
        return status
    if args.check and not result["floors_pass"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
