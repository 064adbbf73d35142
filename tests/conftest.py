"""Shared fixtures: real softena devices on real namespaces, always torn down."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import subprocess
import sys
import time
import types
from dataclasses import dataclass

import pytest

RUN_DIR = "/run/softena"

# Every device the suite brings up checks each page-pool hand-off of every
# frame (sn_pool.c) and reports a frame lost or owned twice in its log.
os.environ.setdefault("SOFTENA_DEBUG_PAGE_POOL", "1")
POOL_BUG = "page_pool:"


def run(argv: list[str], timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; bounded in time."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str) -> types.ModuleType:
    """Import bench/NAME.py as the bench itself runs it (its folder first on sys.path)."""
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


# Tests name their devices sft*; snapshots look only at those, so a softena
# device or a benchmark running beside the suite does not disturb it.
PREFIX = "sft"


def wait_for(predicate, within: float = 2.0, what: str = "condition") -> float:
    """Poll PREDICATE until it holds; return the seconds it took, fail past WITHIN."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {within} s")


def device_log(name: str) -> str:
    """What the device process has logged so far."""
    with open(os.path.join(RUN_DIR, f"{name}.log")) as f:
        return f.read()


def snmp(netns: str | None, proto: str) -> dict[str, int]:
    """The /proc/net/snmp counters of PROTO ("Ip", "Tcp", "Udp", ...) in NETNS,
    read as nstat reads them, without nstat's history files."""
    argv = ["cat", "/proc/net/snmp"]
    lines = run(["ip", "netns", "exec", netns, *argv] if netns else argv, check=True).stdout.splitlines()
    names, values = [line.split()[1:] for line in lines if line.startswith(f"{proto}:")][:2]
    return dict(zip(names, map(int, values)))


def links() -> set[str]:
    """Interface names of ours in the host namespace."""
    entries = json.loads(run(["ip", "-j", "link", "show"], check=True).stdout)
    return {e["ifname"] for e in entries if e["ifname"].startswith(PREFIX)}


def namespaces() -> set[str]:
    names = {line.split()[0] for line in run(["ip", "netns", "list"], check=True).stdout.splitlines() if line}
    return {n for n in names if n.startswith(PREFIX)}


def xdp_programs() -> int:
    """softena's XDP programs in the kernel, less those on devices not ours."""
    progs = json.loads(run(["bpftool", "-j", "prog", "show"], check=True).stdout or "[]")
    ours = {p["id"] for p in progs if p.get("name", "").startswith("softena_wire")}
    for net in json.loads(run(["bpftool", "-j", "net", "show"], check=True).stdout or "[]"):
        for attached in net.get("xdp", []):
            if not attached["devname"].startswith(PREFIX):
                ours.discard(attached["id"])
    return len(ours)


def run_files() -> set[str]:
    try:
        return {f for f in os.listdir(RUN_DIR) if f.startswith(PREFIX)}
    except FileNotFoundError:
        return set()


@dataclass
class Snapshot:
    """What softena could leave behind, taken before and after a test."""

    links: set[str]
    namespaces: set[str]
    xdp_programs: int
    run_files: set[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(links(), namespaces(), xdp_programs(), run_files())


@dataclass
class Device:
    """A device a test brought up, with what `softena status --json` says of it."""

    name: str
    status: dict

    @property
    def pid(self) -> int:
        return self.status["pid"]

    @property
    def netns(self) -> str:
        return self.status["lab"]["netns"]

    @property
    def host_v4(self) -> str:
        return self.status["lab"]["host"][0]

    @property
    def peer_v4(self) -> str:
        return self.status["lab"]["peer"][0]

    @property
    def peer_v6(self) -> str:
        return self.status["lab"]["peer"][1]

    def stats(self) -> dict:
        return json.loads(run(["softena", "stats", self.name, "--json"], check=True).stdout)

    def queue_totals(self) -> dict[str, int]:
        """Device scope: what retired queues left plus the live queues."""
        return self.stats()["device"]


def device_status(name: str) -> dict:
    rows = json.loads(run(["softena", "status", "--json"], check=True).stdout)
    return next(r for r in rows if r["dev"] == name)


@pytest.fixture
def softena_up():
    """Factory: bring up a device with `softena up NAME ARGS...`; down at the end, whatever happens."""
    before = Snapshot.take()
    names: list[str] = []

    def up(name: str = "sft0", *args: str) -> Device:
        names.append(name)
        run(["softena", "up", name, *args], check=True)
        return Device(name, device_status(name))

    yield up
    pool_bugs = []
    for name in names:
        with contextlib.suppress(OSError):
            pool_bugs += [line for line in device_log(name).splitlines() if POOL_BUG in line]
        run(["softena", "down", name])
    after = Snapshot.take()
    assert after == before, f"left behind: {after} vs {before}"
    assert not pool_bugs, f"page pool ownership broken: {pool_bugs}"


E2E_DIR = pathlib.Path(__file__).resolve().parent / "e2e"

# Two test runs on one machine would bring up the same sft* names and see each
# other's devices in their snapshots; a run that brings up devices waits for
# the other to finish, and says so, rather than failing on what the other made.
RUN_LOCK = "/run/lock/softena-tests.lock"
RUN_LOCK_WAIT_S = 45 * 60
_RUN_LOCK_KEY = pytest.StashKey[object]()


def _needs_devices(item: pytest.Item) -> bool:
    return E2E_DIR in item.path.resolve().parents or "softena_up" in getattr(item, "fixturenames", ())


def pytest_collection_finish(session: pytest.Session) -> None:
    """Hold the machine-wide test lock for the session if any test brings up devices."""
    if os.geteuid() != 0 or not any(_needs_devices(item) for item in session.items):
        return
    os.makedirs(os.path.dirname(RUN_LOCK), exist_ok=True)
    lock = open(RUN_LOCK, "a+")  # noqa: SIM115 - held open until the process exits
    deadline = time.monotonic() + RUN_LOCK_WAIT_S
    holder = None  # set once we have said that we wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if holder is None:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                if reporter:  # capture hides print() here
                    reporter.write_line(f"another softena test run holds {RUN_LOCK} "
                                        f"(pid {holder} took it last); waiting for it")
            if time.monotonic() > deadline:
                pytest.exit(f"{RUN_LOCK} still held by pid {holder} after {RUN_LOCK_WAIT_S} s", returncode=3)
            time.sleep(1)
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    session.config.stash[_RUN_LOCK_KEY] = lock


# Only the end-to-end tests need root; the C vector tests run as anyone. A
# conftest.py of its own in e2e/ would shadow this one for `from conftest import`.
@pytest.fixture(autouse=True)
def _must_be_root(request: pytest.FixtureRequest) -> None:
    if E2E_DIR in request.node.path.resolve().parents and os.geteuid() != 0:
        pytest.fail("softena's end-to-end tests need root: they create TAP, veth, namespaces and AF_XDP sockets")


@pytest.fixture(params=["simd", "portable"])
def csum_loop(request: pytest.FixtureRequest):
    """Run a test with each summing loop of sn_csum.c: AVX2 (skipped on a CPU
    without it) and the portable one; the load-time choice comes back after.
    (Here, not in datapath/conftest.py, which would shadow this module.)"""
    from softena.datapath.vectors import lib

    simd = request.param == "simd"
    if lib.sn_csum_use_simd(simd) != simd:
        lib.sn_csum_use_simd(1)
        pytest.skip("this CPU has no AVX2")
    try:
        yield request.param
    finally:
        lib.sn_csum_use_simd(1)
