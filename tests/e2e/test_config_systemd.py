"""softena as a systemd service: the unit verifies, its ExecStart brings a device up from its config file and
talks sd_notify (READY=1 once traffic passes, STATUS=, STOPPING=1 on SIGTERM) and leaves nothing behind; a bad
config file stops bring-up before anything exists."""

from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import Snapshot, device_status, run

UNIT = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "softena@.service"
SOFTENA = "/usr/local/bin/softena"  # the unit's ExecStart; deploy/install.sh links it


def unit_text(softena: str) -> str:
    """The unit with ExecStart's binary at SOFTENA (where it is installed elsewhere)."""
    return UNIT.read_text().replace(SOFTENA, softena)


def installed_softena() -> str:
    return SOFTENA if os.access(SOFTENA, os.X_OK) else shutil.which("softena")


def exec_start(instance: str, config: str) -> list[str]:
    """The unit's ExecStart for INSTANCE, its config file at CONFIG."""
    line = next(ln for ln in UNIT.read_text().splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(line[len("ExecStart="):].replace("/etc/softena/%i.toml", config).replace("%i", instance))
    return [installed_softena() if argv[0] == SOFTENA else argv[0], *argv[1:]]


@pytest.fixture
def verify():
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: deploy/install.sh --test installs the systemd package")

    def check(text: str, tmp: pathlib.Path) -> subprocess.CompletedProcess:
        path = tmp / "softena@sft9.service"
        path.write_text(text)
        return run(["systemd-analyze", "verify", str(path)])
    return check


def test_systemd_analyze_verify_passes_on_the_unit(verify, tmp_path) -> None:
    proc = verify(unit_text(installed_softena()), tmp_path)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    # And it does look: the same unit with a binary that is not there fails.
    broken = verify(unit_text("/nonexistent/softena"), tmp_path)
    assert broken.returncode != 0 and "/nonexistent/softena" in broken.stderr


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NotifyListener:
    """The service manager's end of $NOTIFY_SOCKET: an abstract AF_UNIX datagram socket."""

    def __init__(self) -> None:
        self.name = f"@softena-test-notify-{os.getpid()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.seen: list[dict[str, str]] = []

    def wait(self, key: str, within: float, value: str | None = None) -> dict[str, str]:
        """The first message (of those seen or to come) that sets KEY (to VALUE)."""
        deadline = time.monotonic() + within
        while True:
            for msg in self.seen:
                if key in msg and (value is None or value in msg[key]):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value or ''} within {within} s: {self.seen}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.seen.append(dict(line.split("=", 1) for line in data.splitlines()))

    def close(self) -> None:
        self.sock.close()


def test_exec_start_notifies_ready_once_traffic_passes_and_stopping_on_sigterm(tmp_path) -> None:
    before = Snapshot.take()
    port = free_port("127.0.0.2")
    config = tmp_path / "sft3.toml"
    config.write_text(f'name = "sftignored"\nqueues = 2\nmetrics-address = "127.0.0.2"\nmetrics-port = {port}\n')
    listener = NotifyListener()
    proc = subprocess.Popen(exec_start("sft3", str(config)), env={**os.environ, "NOTIFY_SOCKET": listener.name},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = listener.wait("READY", within=60)
        assert ready["READY"] == "1"
        assert ready["STATUS"] == "sft3: 2 queue pairs, wire lab veth (AF_XDP)"
        status = device_status("sft3")  # the instance name, not the file's
        assert status["pid"] == proc.pid and status["queues"] == 2
        peer = status["lab"]["peer"][0]
        ping = run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "sft3", peer], timeout=20)
        assert ping.returncode == 0, ping.stdout
        # The endpoint listens where the file said, on 127.0.0.2 only.
        assert status["metrics"] == f"127.0.0.2:{port}"
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=5) as resp:
            assert b"softena_" in resp.read()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        # A reset shows in the status line.
        run(["softena", "reset", "sft3"], check=True)
        assert listener.wait("STATUS", within=15, value="1 reset")["STATUS"] == \
            "sft3: 2 queue pairs, wire lab veth (AF_XDP), 1 reset"
        proc.send_signal(signal.SIGTERM)
        stopping = listener.wait("STOPPING", within=10)
        assert stopping == {"STOPPING": "1", "STATUS": "sft3: going down"}
        assert proc.wait(timeout=30) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        run(["softena", "down", "sft3"])
    assert Snapshot.take() == before


@pytest.mark.parametrize("text, words", [
    ("queues = 2\nqueuse = 3\n", ":2: unknown key 'queuse'"),
    ("mtu = \"big\"\n", ":1: mtu: expected an integer, not a string"),
    ("\nbusy-poll = 2000000\n", ":2: busy-poll: invalid --busy-poll 2000000"),
    ("mtu = 1500\nwire = lab\n", ":2:8: wire: Invalid value"),
])
def test_bad_config_file_stops_bring_up_before_anything_exists(tmp_path, text: str, words: str) -> None:
    before = Snapshot.take()
    config = tmp_path / "sft4.toml"
    config.write_text(text)
    for argv in (["softena", "up", "sft4", "--config", str(config)], exec_start("sft4", str(config))):
        proc = run(argv, timeout=30)
        assert proc.returncode == 1, proc
        assert proc.stderr.startswith(f"softena: {config}{words}") and proc.stderr.count("\n") == 1, proc.stderr
    assert Snapshot.take() == before


def test_a_config_file_missing_is_refused_by_name(tmp_path) -> None:
    proc = run(exec_start("sft4", str(tmp_path / "sft4.toml")), timeout=30)
    assert proc.returncode == 1
    assert proc.stderr == f"softena: cannot read {tmp_path / 'sft4.toml'}: No such file or directory\n"
