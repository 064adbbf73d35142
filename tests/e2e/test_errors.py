"""Every way bring-up can be refused: one clear line, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import sys

import pytest
from conftest import Snapshot, run

NO_AF_XDP = str(pathlib.Path(__file__).parents[1] / "no_af_xdp.py")
SOFTENA = shutil.which("softena") or "softena"


def refused(argv: list[str], env: dict | None = None) -> str:
    """Run a refused command; check the shape of the refusal and return its line."""
    before = Snapshot.take()
    proc = run(argv, timeout=60) if env is None else _run_env(argv, env)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softena: "), proc.stderr
    assert Snapshot.take() == before
    return lines[0]


def _run_env(argv: list[str], env: dict):
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_not_root_is_refused() -> None:
    # An unmapped user namespace: euid 65534, everything else as it is.
    line = refused(["unshare", "--user", SOFTENA, "up", "sft0"])
    assert "must be run as root" in line


def test_missing_dev_net_tun_is_refused() -> None:
    line = refused(["unshare", "--mount", "sh", "-c", f"mount -t tmpfs none /dev/net && exec {SOFTENA} up sft0"])
    assert "/dev/net/tun is missing" in line and "modprobe tun" in line


def test_wire_interface_that_does_not_exist_is_refused() -> None:
    line = refused([SOFTENA, "up", "sft0", "--wire", "xdp:sftnope0"])
    assert "wire interface sftnope0 does not exist" in line


def test_device_name_already_taken_is_refused_and_the_other_device_survives() -> None:
    run(["ip", "link", "add", "sft0", "type", "veth", "peer", "name", "sft0p"], check=True)
    try:
        line = refused([SOFTENA, "up", "sft0"])
        assert "sft0: device name already taken" in line
        assert run(["ip", "link", "show", "sft0"]).returncode == 0
    finally:
        run(["ip", "link", "del", "sft0"])


def test_af_xdp_unavailable_is_refused_with_the_tap_wire_suggested() -> None:
    line = refused([sys.executable, NO_AF_XDP, SOFTENA, "up", "sft0"])
    assert "AF_XDP is not available" in line and "--wire tap" in line


@pytest.mark.parametrize("count", ["0", "33", "-1"])
def test_bad_queue_count_is_refused(count: str) -> None:
    line = refused([SOFTENA, "up", "sft0", "--queues", count])
    assert f"invalid queue count {count}" in line


def test_missing_dependency_is_named_with_its_package(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ip").symlink_to(shutil.which("ip"))
    line = refused([SOFTENA, "up", "sft0"], env={**os.environ, "PATH": str(tmp_path)})
    assert "missing dependency: ethtool (apt-get install ethtool)" in line


@pytest.mark.parametrize("args, words", [
    (["--wire", "bogus"], "invalid wire 'bogus'"),
    (["--cpus", "x"], "invalid --cpus 'x'"),
    (["--cpus", "999"], "invalid --cpus"),
    (["--mtu", "20000"], "Invalid MTU setting. new_mtu: 20000"),
])
def test_bad_arguments_are_refused(args: list[str], words: str) -> None:
    assert words in refused([SOFTENA, "up", "sft0", *args])


def test_bad_device_name_is_refused() -> None:
    assert "invalid device name" in refused([SOFTENA, "up", "sft0-much-too-long"])


def test_second_up_of_a_running_device_is_refused(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    proc = run([SOFTENA, "up", "sft0", "--queues", "1"])
    assert proc.returncode == 1
    assert re.fullmatch(rf"softena: sft0: already driven by softena process {dev.pid} \(started [0-9: -]+\)\n",
                        proc.stderr), proc.stderr
    assert run(["ping", "-c", "1", "-W", "2", dev.peer_v4]).returncode == 0


def test_down_of_an_unknown_device_is_refused() -> None:
    assert "sft9: no such device" in refused([SOFTENA, "down", "sft9"])
