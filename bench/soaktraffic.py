"""The soak's traffic: loops of short bounded runs, each in its own thread,
until told to stop. Every iperf3 server is a one-off (-1) started for one
run and stopped by its pid (common.Server), whatever happened.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from common import BenchError, Server, in_ns, listening, log, run


@dataclass
class Tally:
    """What one traffic loop did, summed over its runs."""

    name: str
    runs: int = 0
    failed: int = 0
    bytes: int = 0          # TCP: bytes the receiver got
    packets: int = 0        # UDP: datagrams sent; ping: echoes sent
    lost: int = 0           # UDP: datagrams the receiver never saw; ping: no reply
    rtts: list[float] = field(default_factory=list)  # ping, milliseconds
    errors: list[str] = field(default_factory=list)


class Loop(threading.Thread):
    """Run one kind of traffic in chunks of CHUNK seconds until stop() or the deadline."""

    def __init__(self, name: str, chunk: int) -> None:
        super().__init__(name=f"soak-{name}", daemon=True)
        self.tally = Tally(name)
        self.chunk = chunk
        self._halt = threading.Event()
        self.n = 0

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.once()
                self.tally.runs += 1
            except BenchError as exc:
                # A run that a reset cut short is expected now and then; the
                # soak's checks are on the counters, not on every run.
                self.tally.failed += 1
                self.tally.errors.append(str(exc)[-200:])
                log(f"{self.tally.name}: {exc}")
                self._halt.wait(0.5)
            self.n += 1

    def once(self) -> None:
        raise NotImplementedError


class Iperf3Loop(Loop):
    """iperf3 runs between the host and the peer namespace, alternating direction."""

    def __init__(self, name: str, netns: str, peer: str, port: int, chunk: int, args: list[str]) -> None:
        super().__init__(name, chunk)
        self.netns, self.peer, self.port, self.args = netns, peer, port, args

    def once(self) -> None:
        server = in_ns(self.netns, ["iperf3", "-s", "-1", "-B", self.peer, "-p", str(self.port)])
        argv = ["iperf3", "-c", self.peer, "-p", str(self.port), "-J", "-t", str(self.chunk),
                "--connect-timeout", "3000", *self.args, *(["-R"] if self.n % 2 else [])]
        with Server(server, ready=listening(self.netns, self.port), name="iperf3 -s"):
            proc = run(argv, timeout=self.chunk + 30, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError as exc:
            raise BenchError(f"iperf3 gave no JSON (exit {proc.returncode})") from exc
        if "error" in result:
            raise BenchError(f"iperf3: {result['error']}")
        end = result["end"]
        if "-u" in self.args:  # the receiver's count of what the sender sent
            self.tally.packets += int(end["sum"]["packets"])
            self.tally.lost += int(end["sum"]["lost_packets"])
        else:
            self.tally.bytes += int(end["sum_received"]["bytes"])


PING_RTT = re.compile(r"time=([\d.]+) ms")


class PingLoop(Loop):
    """ping the peer at a steady interval, CHUNK seconds a run."""

    def __init__(self, peer: str, chunk: int, interval: float = 0.05) -> None:
        super().__init__("ping", chunk)
        self.peer, self.interval = peer, interval

    def once(self) -> None:
        count = int(self.chunk / self.interval)
        proc = run(["ping", "-n", "-i", str(self.interval), "-c", str(count), "-w", str(self.chunk + 2),
                    "-W", "1", self.peer], timeout=self.chunk + 10, check=False)
        rtts = [float(m) for m in PING_RTT.findall(proc.stdout)]
        m = re.search(r"(\d+) packets transmitted, (\d+) received", proc.stdout)
        if not m:
            raise BenchError(f"ping gave no summary: {proc.stderr.strip()[-200:]}")
        self.tally.packets += int(m.group(1))
        self.tally.lost += int(m.group(1)) - int(m.group(2))
        self.tally.rtts += rtts
