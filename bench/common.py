"""Helpers shared by the bench modules: bounded commands, namespaces, iperf3, C helpers.

Everything here is stdlib only.  Progress goes to stderr; results to stdout.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)

# Only these ranges (and loopback) may appear anywhere (benchmarking nets, RFC 2544/5180).
ALLOWED_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"),
                ipaddress.ip_network("127.0.0.0/8"))


class BenchError(Exception):
    """A step failed; the message says which and why."""


def need(tool: str, package: str) -> None:
    """Refuse to go on without the command TOOL, naming the Debian PACKAGE that has it."""
    if shutil.which(tool) is None:
        raise BenchError(f"{tool} not found (apt-get install {package})")


def datapath_cflags() -> list[str]:
    """The C datapath's compiler flags (softena/datapath/build_native.py), so
    that a harness built beside its sources is built as the datapath is.
    This checkout's softena and cffi must import."""
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    from softena.datapath.build_native import CFLAGS

    return list(CFLAGS)


# The iperf3 every throughput run uses; use_iperf3() picks another.
_IPERF3 = "iperf3"
# From 3.16, iperf3 runs each -P stream in a thread of its own; before, one
# thread served every stream of a client or a server.
IPERF3_THREADED_FROM = (3, 16)


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C does."""


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds only the result."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def check_address(addr: str) -> str:
    """ADDR, or an error if it is outside the allowed ranges."""
    ip = ipaddress.ip_address(addr)
    if not any(ip in net for net in ALLOWED_NETS):
        raise BenchError(f"refusing address {addr}: outside 198.18.0.0/15, 2001:2::/48 and loopback")
    return addr


def run(argv: Sequence[str], timeout: float = 30.0, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with a time bound, in its own session (Ctrl-C stays with us).

    On timeout or interruption subprocess.run kills the child before the
    exception propagates.
    """
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True, env=env)
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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at HOST right now (for servers in the host namespace)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_ping(ns: str | None, addr: str, timeout: float = 5.0) -> None:
    """Until ADDR answers an ICMP echo from NS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(in_ns(ns, ["ping", "-c", "1", "-W", "1", "-q", addr]), timeout=5, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise BenchError(f"no ping reply from {addr} within {timeout:.0f} s")


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median of the values that exist."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def percentile(sorted_vals: Sequence[float], q: float) -> float:
    """The Q-quantile (0..1) of SORTED_VALS, nearest rank."""
    if not sorted_vals:
        raise ValueError("no values")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


# ---- servers started in the background, always stopped by their own pid ----


class Server:
    """A background process (a server), stopped by its pid on close, whatever happened.

    READY is a line it prints once listening, or a callable polled until true.
    """

    def __init__(self, argv: Sequence[str], ready: Any = None, timeout: float = 5.0, name: str = "") -> None:
        self.argv, self.ready, self.timeout = list(argv), ready, timeout
        self.name = name or os.path.basename(self.argv[0])
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        try:
            if isinstance(self.ready, str):
                line = self._readline(deadline)
                if line is None or self.ready not in line:
                    raise BenchError(f"{self.name} did not become ready: {self._err()}")
            elif callable(self.ready):
                while not self.ready():
                    if self.proc.poll() is not None:
                        raise BenchError(f"{self.name} exited ({self.proc.returncode}): {self._err()}")
                    if time.monotonic() > deadline:
                        raise BenchError(f"{self.name} not ready within {self.timeout:.0f} s")
                    time.sleep(0.05)
        except BaseException:
            self.close()
            raise
        return self

    def _readline(self, deadline: float) -> str | None:
        import selectors
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.1):
                    return self.proc.stdout.readline()
                if self.proc.poll() is not None:
                    return None
        return None

    def _err(self) -> str:
        if self.proc is None or self.proc.poll() is None or self.proc.stderr is None:
            return "still running"
        return self.proc.stderr.read().strip()[-400:]

    def wait_output(self, timeout: float) -> str:
        """Wait for the process to end by itself (bounded) and return its stdout."""
        assert self.proc is not None
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.close()
            raise BenchError(f"{self.name} did not finish within {timeout:.0f} s") from exc
        return out or ""

    def close(self) -> None:
        """Stop the process by its pid (it may have exited already)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def listening(ns: str | None, port: int, proto: str = "t") -> Any:
    """A readiness check: something in NS listens on PORT (proto t: TCP, u: UDP)."""
    flag = "-Hltn" if proto == "t" else "-Hlun"
    return lambda: bool(run(in_ns(ns, ["ss", flag, f"sport = :{port}"]), timeout=5, check=False).stdout.strip())


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    """ARGV run on CPU alone, or where the scheduler puts it when CPU is None."""
    return list(argv) if cpu is None else ["taskset", "-c", str(cpu), *argv]


def use_iperf3(path: str) -> dict[str, Any]:
    """Make PATH the iperf3 of every later iperf3() run; returns its path,
    version and whether its -P streams run in threads of their own.

    A path not found, not runnable or not an iperf3 is an error, before
    anything is created.
    """
    global _IPERF3
    found = shutil.which(path)
    if found is None:
        raise BenchError(f"iperf3 not found: {path}")
    try:
        out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{found} --version failed: {exc}") from None
    version = parse_iperf3_version(out)
    if version is None:
        raise BenchError(f"{found} is not an iperf3: --version printed {out.strip()[:80]!r}")
    _IPERF3 = found
    return {"path": found, "version": ".".join(map(str, version)),
            "threads_per_stream": version >= IPERF3_THREADED_FROM}


def parse_iperf3_version(text: str) -> tuple[int, ...] | None:
    """(3, 12) from iperf3's `--version` line "iperf 3.12 (cJSON 1.7.15)", or None."""
    match = re.match(r"\s*iperf (\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def iperf3(client_ns: str | None, server_ns: str | None, server_addr: str, port: int, seconds: int,
           streams: int = 1, reverse: bool = False, omit: int = 0, target: str | None = None,
           client_cpu: int | None = None, processes: int = 1) -> float:
    """One iperf3 TCP run with a one-off server; end.sum_received in Gbit/s.

    The server binds SERVER_ADDR in SERVER_NS; the client connects to TARGET
    (default: the same address), e.g. a user-mode gateway mapped to loopback,
    from CLIENT_CPU alone when one is given. With PROCESSES > 1, that many
    server and client pairs run at once on ports PORT.., and their sums add up:
    iperf3 3.12 serves all of one client's -P streams in one thread, where a
    multi-threaded receiver (or iperf3 3.16 and later) reads on every CPU.
    The binary is the one use_iperf3() chose (default: iperf3 on PATH).
    """
    target = target or server_addr
    check_address(server_addr)
    check_address(target)
    ports = [port + i for i in range(processes)]
    with contextlib.ExitStack() as stack:
        for p in ports:
            server = in_ns(server_ns, [_IPERF3, "-s", "-1", "-B", server_addr, "-p", str(p)])
            stack.enter_context(Server(server, ready=listening(server_ns, p), name="iperf3 -s"))
        clients = []
        for p in ports:
            argv = in_ns(client_ns, pinned(client_cpu, [_IPERF3, "-c", target, "-p", str(p), "-J",
                                                        "-t", str(seconds), "-P", str(streams),
                                                        "--connect-timeout", "3000"]))
            argv += ["-O", str(omit)] if omit else []
            argv += ["-R"] if reverse else []
            clients.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, start_new_session=True))
        outputs = []
        try:
            for proc in clients:
                out, err = proc.communicate(timeout=seconds + omit + 30)
                outputs.append((proc.returncode, out, err))
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"iperf3 did not finish within {exc.timeout:.0f} s") from None
        finally:
            for proc in clients:  # a client that outlived its time, on an error above
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return sum(_iperf3_gbps(*result) for result in outputs)


def _iperf3_gbps(returncode: int, stdout: str, stderr: str) -> float:
    """end.sum_received of one iperf3 client's JSON, in Gbit/s."""
    try:
        result = json.loads(stdout)
    except ValueError as exc:
        detail = (stderr.strip() or stdout.strip())[-400:]
        raise BenchError(f"iperf3 gave no JSON (exit {returncode}): {detail}") from exc
    if "error" in result:
        raise BenchError(f"iperf3: {result['error']}")
    try:
        bps = float(result["end"]["sum_received"]["bits_per_second"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchError("iperf3 JSON lacks end.sum_received.bits_per_second") from exc
    if returncode != 0:
        raise BenchError(f"iperf3 exited {returncode}")
    return bps / 1e9


def build_helpers(tmpdir: str) -> dict[str, str]:
    """Compile bench/c/*.c into TMPDIR; returns {name: path of the binary}."""
    need("gcc", "gcc")
    out = {}
    src_dir = os.path.join(BENCH_DIR, "c")
    for name in sorted(os.listdir(src_dir)):
        if name.endswith(".c"):
            exe = os.path.join(tmpdir, name[:-2])
            run(["gcc", "-O2", "-Wall", "-o", exe, os.path.join(src_dir, name)], timeout=60)
            out[name[:-2]] = exe
    return out
