"""The control socket and the device process's threads: every request answered, no one blocked, no silent deaths."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import Snapshot, device_status, run, wait_for

from softena.control.ctlsock import Command, ControlServer
from softena.threads import LastResort

SOCK = "/run/softena/{}.sock"


def raw(dev: str, data: bytes, timeout: float = 5.0) -> dict:
    """Send DATA as one request on a connection of its own; return the decoded reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(SOCK.format(dev))
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a refused oversized request: the reply is still there to read
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return json.loads(reply)


def ask(dev: str, **request) -> dict:
    return raw(dev, json.dumps(request).encode())


def status_answers(dev: str) -> bool:
    proc = run(["softena", "status", "--json"], timeout=15)
    rows = json.loads(proc.stdout) if proc.returncode == 0 else []
    return any(r["dev"] == dev and r["state"] == "up" for r in rows)


MALFORMED = [
    (b'{"cmd": "reset", "reason": "BOGUS"}', "invalid reason 'BOGUS'"),
    (b'{"cmd": "fault-inject", "kind": 5, "queue": "x"}', "invalid kind 5"),
    (b'{"cmd": "fault-inject", "kind": "link-flap", "queue": "x"}', "invalid queue 'x': an integer or null"),
    (b'{"cmd": "fault-inject", "kind": "link-flap", "seconds": -1}', "invalid seconds -1: a positive number"),
    (b'{"cmd": "fault-inject", "kind": "link-flap", "seconds": NaN}', "malformed request"),
    (b'{"cmd": "fault-inject", "queue": 0}', "missing field 'kind'"),
    (b'{"cmd": "fault-clear", "kind": ["wire-down"]}', "invalid kind"),
    (b'{"cmd": "ethtool", "op": 7}', "invalid op 7: a string"),
    (b'{"cmd": "ethtool", "op": "get-channels", "args": [1]}', "invalid args [1]: a JSON object"),
    (b'{"cmd": "status", "verbose": true}', "unknown field 'verbose'"),
    (b'{"cmd": "frobnicate"}', "unknown command 'frobnicate'"),
    (b'{"cmd": 42}', "unknown command 42"),
    (b'{"reason": "NORMAL"}', "unknown command None"),
    (b'["status"]', "a JSON object expected, not list"),
    (b'"status"', "a JSON object expected, not str"),
    (b'{"cmd": "status"', "malformed request"),
    (b'\xff\xfe{"cmd": "status"}', "malformed request"),
    (b"", "malformed request: empty"),
    (b'{"cmd": "' + b"x" * (2 << 20) + b'"}', "request too large"),
]


def test_every_malformed_request_gets_a_one_line_error_and_the_device_keeps_answering(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    for data, words in MALFORMED:
        reply = raw(dev.name, data)
        assert list(reply) == ["error"], (data[:60], reply)
        assert words in reply["error"] and "\n" not in reply["error"], (data[:60], reply)
        assert reply["error"].startswith("sft0: "), reply
        assert status_answers(dev.name), f"no status after {data[:60]!r}"
    assert "Traceback" not in open(f"/run/softena/{dev.name}.log").read()


def test_a_silent_client_delays_no_one_and_gets_a_timeout_reply(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.settimeout(10)
        silent.connect(SOCK.format(dev.name))
        t0 = time.monotonic()
        assert "result" in ask(dev.name, cmd="status")
        assert time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        assert status_answers(dev.name)
        assert time.monotonic() - t0 < 2.0  # the command's own start-up included
        reply = json.loads(silent.recv(65536))
    assert "no complete request within 2 s" in reply["error"]


def test_past_32_clients_at_once_the_next_is_refused_as_busy_not_queued(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    clients = []
    try:
        for _ in range(32):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            clients.append(s)
            s.settimeout(10)
            s.connect(SOCK.format(dev.name))
        time.sleep(0.2)  # let the server take them all
        t0 = time.monotonic()
        reply = ask(dev.name, cmd="status")
        assert "busy" in reply.get("error", ""), reply
        assert time.monotonic() - t0 < 1.0
        # The silent ones time out after 2 s and free their places.
        wait_for(lambda: "result" in ask(dev.name, cmd="status"), within=5, what="status after the silent clients")
    finally:
        for s in clients:
            s.close()


def test_stats_answer_while_ethtool_L_rebuilds_the_queues(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    replies: list[tuple[float, int | None]] = []  # (latency, live queues listed)
    stop = threading.Event()

    def poll() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            reply = ask(dev.name, cmd="stats")
            replies.append((time.monotonic() - t0, len(reply["result"]["queues"]) if "result" in reply else None))
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.2)
        change = run(["softena", "ethtool", "-L", dev.name, "combined", "1"], timeout=30)
        time.sleep(0.2)
    finally:
        stop.set()
        poller.join(timeout=35)
    assert change.returncode == 0, change.stderr
    counts = [n for _, n in replies]
    assert None not in counts, replies
    assert counts[0] == 2 and counts[-1] == 1, counts
    # Between the old queues and the new there are none: a read served then was
    # served during the rebuild. One server thread for all would never show it.
    assert 0 in counts, counts
    assert max(latency for latency, _ in replies) < 0.5, replies


def test_threads_carry_their_names_in_the_kernel(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    names = set()
    for tid in os.listdir(f"/proc/{dev.pid}/task"):
        with open(f"/proc/{dev.pid}/task/{tid}/comm") as f:
            names.add(f.read().strip())
    # 15 bytes: a name too long for the kernel drops softena/, never its role.
    assert {"softena/sft0", "sft0-ctl", "sft0-link", "sft0-ipwatch", "sft0-timer", "sft0-aenq",
            "sft0-admin", "softena/sft0-0", "softena/sft0-1"} <= names, names


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[0].decode().strip()


def test_the_process_title_shows_the_device_its_queues_and_wire(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    assert cmdline(dev.pid) == "softena: sft0 (2 queue pairs, wire lab veth (AF_XDP))"
    ps = run(["ps", "-o", "args=", "-p", str(dev.pid)], check=True).stdout.strip()
    assert ps == "softena: sft0 (2 queue pairs, wire lab veth (AF_XDP))"
    run(["softena", "ethtool", "-L", dev.name, "combined", "1"], check=True)
    assert cmdline(dev.pid) == "softena: sft0 (1 queue pair, wire lab veth (AF_XDP))"


def test_a_thread_that_dies_takes_the_device_down_in_order_with_its_traceback_logged(tmp_path) -> None:
    # A real failure from outside: the wire vanishes while the interface is
    # down, so `ip link set up` cannot build the queues, and the exception
    # ends the rtnetlink watcher's thread. Before the last resort it died
    # silently and left a device that no longer followed `ip link`.
    before = Snapshot.take()
    out = open(tmp_path / "device.log", "w+")
    proc = subprocess.Popen(["softena", "up", "sft0", "--queues", "1", "--foreground"], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=out)
    try:
        wait_for(lambda: os.path.exists(SOCK.format("sft0")) and status_answers("sft0"), within=30,
                 what="sft0 up")
        run(["ip", "link", "set", "sft0", "down"], check=True)
        wait_for(lambda: device_status("sft0")["threads"] == [], within=5, what="queues stopped")
        run(["ip", "link", "del", "sft0-wire"], check=True)
        run(["ip", "link", "set", "sft0", "up"], check=True)
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        run(["softena", "down", "sft0"])
    log = open(tmp_path / "device.log").read()
    assert "<3>sft0: thread softena/sft0-ipwatch died: SoftenaError" in log, log
    assert "<3>sft0: Traceback (most recent call last):" in log
    assert "<3>sft0: going down: thread softena/sft0-ipwatch died" in log
    assert Snapshot.take() == before


class _AcceptFailsOnce:
    """A listening socket whose first accept() fails as no transient error does."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._failed = False

    def accept(self):
        if not self._failed:
            self._failed = True
            raise OSError(errno.EPROTO, "injected accept failure")
        return self._sock.accept()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_a_control_server_whose_accept_loop_dies_is_restarted_and_answers(capsys) -> None:
    # In-process: no outside request can break the accept loop, so its
    # listening socket is made to fail once.
    hooks = threading.excepthook, sys.excepthook
    done = threading.Event()
    last_resort = LastResort("sftu0", done)
    last_resort.install()
    server = ControlServer("sftu0", {"status": Command(lambda req: "fine", read_only=True)})
    try:
        server.sock = _AcceptFailsOnce(server.sock)
        last_resort.restart_with(server.thread_name, server.start)
        server.start()
        assert ask("sftu0", cmd="status") == {"result": "fine"}
        assert not done.is_set() and last_resort.failure is None
    finally:
        server.close()
        threading.excepthook, sys.excepthook = hooks
    err = capsys.readouterr().err
    assert "<3>sftu0: thread softena/sftu0-ctl died: OSError" in err
    assert "<4>sftu0: softena/sftu0-ctl restarted" in err
    assert not os.path.exists(SOCK.format("sftu0"))


def test_a_handler_that_fails_is_answered_as_an_internal_error_logged_with_its_traceback(capsys) -> None:
    # In-process: the device's handlers check what they are given, so no
    # request from outside is known to get this far; the catch must exist anyway.
    server = ControlServer("sftu0", {"status": Command(lambda req: "fine", read_only=True),
                                     "broken": Command(lambda req: {}["missing"])})
    try:
        server.start()
        reply = ask("sftu0", cmd="broken")
        assert reply == {"error": "sftu0: internal error: KeyError: 'missing' (see the device log)"}
        assert ask("sftu0", cmd="status") == {"result": "fine"}
        assert ask("sftu0", cmd="broken")["error"].startswith("sftu0: internal error")  # the change lock was let go
    finally:
        server.close()
    err = capsys.readouterr().err
    assert "<3>sftu0: request 'broken' failed: KeyError: 'missing'" in err
    assert "<3>sftu0: Traceback (most recent call last):" in err


@pytest.mark.parametrize("op, reads", [
    ("get-channels", True), ("channels-get", True), ("drvinfo", True), ("get-stats", True), ("gstats", True),
    ("rss-get", True), ("set-channels", False), ("channels-set", False), ("rss-set", False), ("reset", False),
])
def test_ethtool_operations_are_told_reads_or_changes_in_both_spellings(op: str, reads: bool) -> None:
    from softena.control.daemon import ethtool_reads

    assert ethtool_reads({"op": op}) is reads
