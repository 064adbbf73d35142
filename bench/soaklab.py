"""The soak's device and what can be read of it: the softena process, its
counters, and the counters of the veth on either side of its wire.

The device is brought up with a lab peer (`softena up NAME`), so the wire is
a veth pair: NAME-wire in the host namespace (AF_XDP) and eth0 in NAME-peer.
Everything the device sends or receives on the wire crosses that pair, and
the pair's own counters are the peer's count of it.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass

import psutil
from common import REPO_DIR, BenchError, check_address, link_exists, netns_list, run

PEER_IFNAME = "eth0"


@dataclass
class Sample:
    """The device process and its pools at one moment."""

    t: float
    rss: int
    fds: int
    threads: collections.Counter[str]
    inflight: int
    frames_free: int
    frames: int

    @property
    def nthreads(self) -> int:
        return sum(self.threads.values())


def thread_names(pid: int) -> collections.Counter[str]:
    """How many threads of PID carry each name (/proc/PID/task/*/comm)."""
    names: collections.Counter[str] = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names[f.read().strip()] += 1
        except FileNotFoundError:  # a thread that ended while we looked
            continue
    return names


def wire_frames_sent(c: dict[str, int]) -> int:
    """Frames the device put on the wire: one per host frame, a GSO frame's segments instead of it."""
    return c["tx-packets"] - c["tx-hw-gso-packets"] + c["tx-hw-gso-wire-packets"]


def wire_frames_delivered(c: dict[str, int]) -> int:
    """Wire frames the device handed to the host: one per host frame, a GRO frame's segments instead of it."""
    return c["rx-packets"] - c["rx-hw-gro-packets"] + c["rx-hw-gro-wire-packets"]


class SoakDevice:
    """One softena device with a lab peer; down() removes it, whatever state it is in."""

    def __init__(self, name: str, softena_cmd: str | None = None) -> None:
        self.name = name
        self.netns = f"{name}-peer"
        self.wire = f"{name}-wire"
        self.softena_cmd = softena_cmd
        self.maybe_up = False
        self.pid = 0
        self.host_v4 = self.peer_v4 = ""

    def softena(self, *args: str, timeout: float = 30.0, check: bool = True):
        """Run this checkout's softena (or --softena CMD) with ARGS."""
        env = dict(os.environ)
        if self.softena_cmd:
            argv = [*shlex.split(self.softena_cmd), *args]
        else:
            env["PYTHONPATH"] = REPO_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            argv = [sys.executable, "-m", "softena", *args]
        return run(argv, timeout=timeout, check=check, env=env)

    def preflight(self) -> None:
        """Refuse to start over a device, namespace or link of the same name."""
        if os.geteuid() != 0:
            raise BenchError("must be run as root")
        clash = [n for n in (self.name, self.wire) if link_exists(n)]
        if self.netns in netns_list():
            clash.append(self.netns)
        if clash or os.path.exists(f"/run/softena/{self.name}.json"):
            raise BenchError(f"{', '.join(clash) or self.name} already exist(s): `softena down {self.name}` first")

    def up(self, queues: int) -> None:
        """`softena up NAME --queues Q`, then read its pid and lab addresses."""
        self.maybe_up = True
        self.softena("up", self.name, "--queues", str(queues), "--no-metrics", timeout=90)
        rows = json.loads(self.softena("status", "--json", timeout=15).stdout)
        mine = next((r for r in rows if r.get("dev") == self.name), None)
        if not mine or not mine.get("lab"):
            raise BenchError(f"softena status does not show {self.name} with a lab peer: {mine}")
        self.pid = int(mine["pid"])
        self.host_v4 = check_address(mine["lab"]["host"][0])
        self.peer_v4 = check_address(mine["lab"]["peer"][0])

    def down(self) -> list[str]:
        """`softena down NAME` if it may be up; returns what is left behind."""
        if not self.maybe_up:
            return []
        problems = []
        r = self.softena("down", self.name, timeout=60, check=False)
        if r.returncode:
            problems.append(f"softena down {self.name}: {r.stderr.strip()}")
        self.maybe_up = False
        left = [n for n in (self.name, self.wire) if link_exists(n)]
        if self.netns in netns_list():
            left.append(self.netns)
        if left:
            problems.append(f"left behind: {', '.join(left)}")
        return problems

    def alive(self) -> bool:
        """The device process we started is still the one running (never restarted)."""
        try:
            return psutil.Process(self.pid).is_running() and psutil.Process(self.pid).status() != "zombie"
        except psutil.NoSuchProcess:
            return False

    def stats(self) -> dict:
        return json.loads(self.softena("stats", self.name, "--json", timeout=15).stdout)

    def sample(self) -> Sample:
        """RSS, fds, threads of the process; pool inflight and free frames of the region."""
        proc = psutil.Process(self.pid)
        rss = proc.memory_info().rss
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        threads = thread_names(self.pid)
        st = self.stats()
        region = st["region"] or {"frames": 0, "frames-free": 0}
        inflight = sum(p["inflight"] for p in st["page-pools"])
        return Sample(time.monotonic(), rss, fds, threads, inflight, region["frames-free"], region["frames"])

    def link_counters(self, peer: bool) -> dict[str, int]:
        """The kernel's counters of the peer's eth0 (PEER) or the host end of the wire."""
        argv = ["ip", *(["-n", self.netns] if peer else []), "-s", "-j", "link", "show", "dev",
                PEER_IFNAME if peer else self.wire]
        s = json.loads(run(argv, timeout=10).stdout)[0]["stats64"]
        return {"rx-packets": s["rx"]["packets"], "rx-dropped": s["rx"]["dropped"],
                "tx-packets": s["tx"]["packets"], "tx-dropped": s["tx"]["dropped"]}

    def quiet_counters(self, tries: int = 20) -> tuple[dict, dict, dict]:
        """Device totals, the peer's and the host end's counters, read as one:
        the device's are read before and after the two links, and the reading is
        kept only when no frame moved meanwhile (a stray ND or ARP may)."""
        for _ in range(tries):
            before = self.stats()["device"]
            peer, wire = self.link_counters(peer=True), self.link_counters(peer=False)
            after = self.stats()["device"]
            if all(before[k] == after[k] for k in ("tx-packets", "rx-wire-packets")) and \
                    (peer, wire) == (self.link_counters(peer=True), self.link_counters(peer=False)):
                return after, peer, wire
            time.sleep(0.2)
        raise BenchError(f"counters of {self.name} and its peer never stood still for a reading")

    def settle(self, within: float = 10.0) -> dict:
        """Wait for the idle trim: every pool back to its fill ring, every UMEM frame
        free or inflight in one pool. Returns the stats read then; raises past WITHIN."""
        deadline = time.monotonic() + within
        st: dict = {}
        while time.monotonic() < deadline:
            st = self.stats()
            pools, region = st["page-pools"], st["region"]
            rx_ring = self.rx_ring()
            if region and all(p["inflight"] == rx_ring for p in pools) and \
                    region["frames-free"] + sum(p["inflight"] for p in pools) == region["frames"]:
                return st
            time.sleep(0.2)
        raise BenchError(f"pools not back to their fill rings within {within:.0f} s: "
                         f"{[p['inflight'] for p in st.get('page-pools', [])]}, region {st.get('region')}")

    def rx_ring(self) -> int:
        """The Rx ring size in force: each pool's idle baseline is a full fill ring."""
        out = self.softena("ethtool", "-g", self.name, timeout=15).stdout
        current = out.split("Current hardware settings:")[-1]
        for line in current.splitlines():
            if line.startswith("RX:"):
                return int(line.split()[1])
        raise BenchError(f"no current RX ring size in `softena ethtool -g {self.name}`")
