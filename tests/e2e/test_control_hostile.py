"""Hostile control input against a live device: every client gets an error or a closed connection
within a bounded time, everyone else is still served, and the device keeps passing traffic.

Malformed JSON, non-objects, unknown commands, wrong field types and unknown
fields, one at a time, are test_control.py's MALFORMED; here are the clients
that misbehave in time and in number.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

from conftest import wait_for
from test_control import SOCK, ask

from softena.control.ctlsock import MAX_CLIENTS, MAX_REQUEST, RECV_TIMEOUT

MARGIN = 1.0  # seconds past RECV_TIMEOUT a refusal may take on a busy 2-core machine


def connect(dev: str, timeout: float = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(SOCK.format(dev))
    return s


def reply_of(s: socket.socket) -> dict:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return json.loads(data)


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def pinging(peer: str, count: int) -> subprocess.Popen:
    """COUNT pings 50 ms apart to the lab peer, in the background."""
    return subprocess.Popen(["ping", "-c", str(count), "-i", "0.05", "-W", "2", peer], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def all_answered(ping: subprocess.Popen) -> None:
    out, _ = ping.communicate(timeout=30)
    assert ping.returncode == 0 and " 0% packet loss" in out, out


def test_an_endless_request_is_cut_at_the_limit_and_answered_at_once(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    with connect(dev.name) as s:
        t0 = time.monotonic()
        sent = 0
        try:
            while sent < 16 * MAX_REQUEST:  # never shuts its side: the server must stop reading by itself
                sent += s.send(b"x" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = reply_of(s)
        elapsed = time.monotonic() - t0
    assert reply == {"error": f"sft0: request too large: over {MAX_REQUEST} bytes"}
    assert sent < 16 * MAX_REQUEST and elapsed < 1.0, (sent, elapsed)
    assert "result" in ask(dev.name, cmd="status")


def test_a_half_sent_request_and_a_slow_drip_are_refused_after_the_timeout(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    half, drip = connect(dev.name), connect(dev.name)
    try:
        t0 = time.monotonic()
        half.sendall(b'{"cmd": "sta')
        replies: dict[str, tuple[dict, float]] = {}

        def dripping() -> None:
            try:
                for byte in b'{"cmd": "status"}':  # a byte every 0.3 s: it would take 5 s
                    drip.send(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                pass  # cut off: the reply is there to read

        dripper = threading.Thread(target=dripping)
        dripper.start()
        assert "result" in ask(dev.name, cmd="status")  # neither holds anyone up
        replies["half"] = (reply_of(half), time.monotonic() - t0)
        replies["drip"] = (reply_of(drip), time.monotonic() - t0)
        dripper.join(timeout=10)
    finally:
        half.close()
        drip.close()
    for name, (reply, elapsed) in replies.items():
        assert f"no complete request within {RECV_TIMEOUT:g} s" in reply["error"], (name, reply)
        assert RECV_TIMEOUT - 0.1 < elapsed < RECV_TIMEOUT + MARGIN, (name, elapsed)


def test_clients_that_never_read_their_replies_hold_no_server_thread(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    baseline = threads(dev.pid)
    clients = []
    try:
        for _ in range(MAX_CLIENTS):
            s = connect(dev.name)
            clients.append(s)
            s.sendall(json.dumps({"cmd": "stats"}).encode())
            s.shutdown(socket.SHUT_WR)
        # All of them still connected, none read: the server is done with them anyway.
        wait_for(lambda: threads(dev.pid) == baseline, within=RECV_TIMEOUT + MARGIN, what="request threads gone")
        t0 = time.monotonic()
        assert "result" in ask(dev.name, cmd="stats")
        assert time.monotonic() - t0 < 1.0
    finally:
        for s in clients:
            s.close()


def test_a_hundred_clients_at_once_are_all_answered_and_traffic_passes(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    baseline = threads(dev.pid)
    ping = pinging(dev.peer_v4, 60)
    results: list[tuple[str, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(100)

    def client() -> None:
        start.wait(timeout=30)
        t0 = time.monotonic()
        try:
            with connect(dev.name) as s:
                s.sendall(b'{"cmd": "stats"}')
                s.shutdown(socket.SHUT_WR)
                reply = reply_of(s)
            outcome = "answered" if "result" in reply else "busy" if "busy" in reply.get("error", "") else repr(reply)
        except OSError as exc:
            outcome = f"failed: {exc}"
        with lock:
            results.append((outcome, time.monotonic() - t0))

    storm = [threading.Thread(target=client) for _ in range(100)]
    for t in storm:
        t.start()
    for t in storm:
        t.join(timeout=60)
    try:
        outcomes = [o for o, _ in results]
        slowest = max(elapsed for _, elapsed in results)
        assert len(results) == 100 and set(outcomes) <= {"answered", "busy"}, outcomes
        assert outcomes.count("answered") >= MAX_CLIENTS, outcomes  # the first MAX_CLIENTS at least
        assert slowest < 5.0, slowest
        print(f"100 clients: {outcomes.count('answered')} answered, {outcomes.count('busy')} refused as busy, "
              f"slowest reply {slowest:.2f} s")
        assert "result" in ask(dev.name, cmd="status")
        wait_for(lambda: threads(dev.pid) == baseline, within=RECV_TIMEOUT + MARGIN, what="back to the baseline")
    finally:
        all_answered(ping)
    assert ask(dev.name, cmd="status")["result"]["pid"] == dev.pid


def test_a_storm_of_silent_clients_ends_within_the_timeout_and_traffic_passes(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    baseline = threads(dev.pid)
    ping = pinging(dev.peer_v4, 60)
    silent = []
    try:
        for _ in range(100):
            try:
                silent.append(connect(dev.name, timeout=1.0))
            except OSError:
                break  # the backlog is full: the kernel itself refuses the rest
        t0 = time.monotonic()
        errors = []
        for s in silent:
            s.settimeout(RECV_TIMEOUT + MARGIN)
            errors.append(reply_of(s)["error"])  # a timeout or a busy refusal, never nothing
        assert time.monotonic() - t0 < RECV_TIMEOUT + MARGIN
        timed_out = sum("no complete request" in e for e in errors)
        busy = sum("busy" in e for e in errors)
        assert (len(silent), timed_out, busy) == (100, MAX_CLIENTS, 100 - MAX_CLIENTS), errors
        wait_for(lambda: "result" in ask(dev.name, cmd="status"), within=2, what="status after the storm")
        wait_for(lambda: threads(dev.pid) == baseline, within=RECV_TIMEOUT + MARGIN, what="back to the baseline")
    finally:
        for s in silent:
            s.close()
        all_answered(ping)
