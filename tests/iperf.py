"""iperf3 between the host and a namespace, bounded in time, with JSON results."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time


def wait_listening(netns: str, port: int, timeout: float = 5.0) -> None:
    """Wait until something listens on PORT inside NETNS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True, timeout=5).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"iperf3 server did not listen on {port} in {netns}")


def iperf3(netns: str, server: str, *args: str, port: int = 5201, duration: int = 3) -> dict:
    """Run one iperf3 test from the host to a one-off server in NETNS; return its JSON."""
    srv = subprocess.Popen(["ip", "netns", "exec", netns, "iperf3", "-s", "-1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(netns, port)
        family = "-6" if ":" in server else "-4"
        proc = subprocess.run(["iperf3", family, "-c", server, "-p", str(port), "-t", str(duration), "-J", *args],
                              capture_output=True, text=True, timeout=duration + 30)
        result = json.loads(proc.stdout)
        if "error" in result:
            raise AssertionError(f"iperf3 {' '.join(args)}: {result['error']}")
        return result
    finally:
        srv.kill()
        srv.wait(timeout=10)


def gbits(result: dict) -> float:
    """Received throughput of a TCP or UDP result, in Gbit/s."""
    end = result["end"]
    summary = end.get("sum_received") or end.get("sum")
    return summary["bits_per_second"] / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def iperf3_running(netns: str, server: str, *args: str, duration: int, port: int = 5201):
    """Run iperf3 in the background for the body of the with block; yields the
    dict its JSON result lands in once the stream has ended."""
    result: dict = {}
    stream = threading.Thread(target=lambda: result.update(iperf3(netns, server, *args, port=port,
                                                                  duration=duration)))
    stream.start()
    try:
        yield result
    finally:
        stream.join(timeout=duration + 60)
