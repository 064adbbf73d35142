"""Who may ask a device what: the CLI run as a real unprivileged user, against real devices.

A system user and group are made for the module and removed after it, also
on failure. The user runs this tree's CLI with setpriv; the interpreter may
live where only root can reach (pyenv under /root), so each run happens in a
private mount namespace where the blocking directory is replaced by a
tmpfs of mode 0755 holding binds of just what the CLI needs. The user's own
rights (uid, groups, capabilities, the modes of /run/softena) are untouched.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import tempfile

import pytest
from conftest import device_status, run

from softena.control import ctlsock
from softena.control.ctlsock import Command, ControlServer

USER, GROUP = "sftuser", "sftread"
TREE = pathlib.Path(__file__).resolve().parents[2]
RUN = pathlib.Path("/run/softena")


def _drop_user() -> None:
    run(["userdel", USER])
    run(["groupdel", USER])  # the user's own group, where useradd made one
    run(["groupdel", GROUP])


@pytest.fixture(scope="module")
def user():
    """A system user in a system group GROUP; both gone afterwards."""
    _drop_user()  # a run killed half-way may have left them
    run(["groupadd", "--system", GROUP], check=True)
    try:
        run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", GROUP, USER],
            check=True)
        yield USER
    finally:
        _drop_user()


def _blocked(path: pathlib.Path) -> pathlib.Path | None:
    """The highest directory above PATH that others cannot enter, if any."""
    for parent in reversed(path.parents):
        if parent != pathlib.Path("/") and not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def as_user(*args: str, net_admin: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `softena ARGS` from this tree as USER (with CAP_NET_ADMIN ambient if NET_ADMIN)."""
    needed = [pathlib.Path(sys.prefix).resolve(), TREE]
    with tempfile.TemporaryDirectory() as stash:
        script = []
        for n, top in enumerate({b for p in needed if (b := _blocked(p))}):
            script += [f"mkdir {stash}/{n}", f"mount --bind {top} {stash}/{n}",
                       f"mount -t tmpfs -o mode=0755 sftreach {top}"]
            for p in needed:
                if top in p.parents:
                    script += [f"mkdir -p {p}", f"mount --bind {stash}/{n}/{p.relative_to(top)} {p}"]
        caps = ["--inh-caps=+net_admin", "--ambient-caps=+net_admin"] if net_admin else ["--inh-caps=-all"]
        argv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", *caps,
                "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"PYTHONPATH={TREE}", "HOME=/",
                sys.executable, "-m", "softena", *args]
        script.append("exec " + shlex.join(argv))
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script)],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def refused(proc: subprocess.CompletedProcess, words: str) -> None:
    """One line naming WORDS, exit 1, no traceback."""
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softena: ") and words in lines[0], proc.stderr


def mode_of(path: pathlib.Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def test_the_read_group_reads_and_every_change_needs_cap_net_admin(softena_up, user) -> None:
    dev = softena_up("sft0", "--queues", "2", "--read-group", GROUP)
    gid = int(run(["getent", "group", GROUP], check=True).stdout.split(":")[2])
    assert mode_of(RUN) == (0o755, 0, 0)
    assert mode_of(RUN / "sft0.sock") == (0o660, 0, gid)
    assert mode_of(RUN / "sft0.json") == (0o640, 0, gid)
    assert mode_of(RUN / "sft0.log")[0] == 0o600
    assert mode_of(RUN / "sft0.lock")[0] == 0o600

    rings, faults = run(["softena", "ethtool", "-g", "sft0"], check=True).stdout, ctlsock.request("sft0", "fault-list")
    status = json.loads(as_user("status", "--json").stdout)
    assert [(r["dev"], r["state"], r["queues"]) for r in status if r["dev"] == "sft0"] == [("sft0", "up", 2)]
    assert "queues" in json.loads(as_user("stats", "sft0", "--json").stdout)
    for args in (["-S"], ["-l"], ["-g"], ["-i"]):
        proc = as_user("ethtool", *args, "sft0")
        assert proc.returncode == 0 and proc.stdout, (args, proc.stderr)
    queues = json.loads(as_user("ynl", "--family", "netdev", "--dump", "queue-get", "--output-json").stdout)
    assert any(q.get("ifindex") == dev.status["ifindex"] for q in queues), queues
    top = as_user("top", "sft0", "--once", "--interval", "0.2")
    assert top.returncode == 0 and "sft0" in top.stdout, top.stderr

    for args, cmd in ((["ethtool", "-L", "sft0", "combined", "1"], "ethtool"),
                      (["ethtool", "-G", "sft0", "rx", "512"], "ethtool"),
                      (["reset", "sft0"], "reset"),
                      (["fault", "inject", "link-flap", "sft0"], "fault-inject"),
                      (["down", "sft0"], "shutdown")):
        refused(as_user(*args), f"sft0: permission denied: {cmd} needs CAP_NET_ADMIN")
    after = device_status("sft0")
    assert (after["pid"], after["queues"]) == (dev.pid, 2)
    assert run(["softena", "ethtool", "-g", "sft0"], check=True).stdout == rings
    assert ctlsock.request("sft0", "fault-list") == faults
    assert run(["ping", "-c", "2", "-i", "0.2", "-W", "2", dev.peer_v4]).returncode == 0

    # The same user with CAP_NET_ADMIN changes the device, as with ip and ethtool.
    change = as_user("ethtool", "-L", "sft0", "combined", "1", net_admin=True)
    assert change.returncode == 0, change.stderr
    assert device_status("sft0")["queues"] == 1


def test_without_a_read_group_the_user_is_refused_even_reads(softena_up, user) -> None:
    softena_up("sft0", "--queues", "1")
    assert mode_of(RUN)[0] == 0o700  # no running device has a read group
    assert mode_of(RUN / "sft0.sock")[0] == 0o600 and mode_of(RUN / "sft0.json")[0] == 0o600
    refused(as_user("status"), "/run/softena: permission denied")
    refused(as_user("stats", "sft0"), "sft0: control socket: permission denied")
    refused(as_user("ethtool", "-L", "sft0", "combined", "1", net_admin=True),
            "sft0: control socket: permission denied")
    refused(as_user("down", "sft0"), "permission denied")
    assert device_status("sft0")["state"] == "up"


def test_a_device_without_a_read_group_stays_closed_beside_one_with(softena_up, user) -> None:
    softena_up("sft0", "--queues", "1", "--read-group", GROUP)
    softena_up("sft1", "--queues", "1")
    rows = {r["dev"]: r["state"] for r in json.loads(as_user("status", "--json").stdout)}
    assert rows["sft0"] == "up" and rows["sft1"] == "permission denied", rows
    refused(as_user("stats", "sft1"), "sft1: control socket: permission denied")
    run(["softena", "down", "sft0"], check=True)
    assert mode_of(RUN)[0] == 0o700  # closed again with the last device that had a read group


def test_an_unknown_read_group_is_refused_before_anything_is_made() -> None:
    proc = run(["softena", "up", "sft0", "--read-group", "sft-no-such-group"])
    assert proc.returncode == 1
    assert proc.stderr.strip() == "softena: invalid --read-group 'sft-no-such-group': no such group"


def _ask_as(uid: int, gid: int, path: str, request: bytes) -> dict:
    """REQUEST sent from a forked child running as UID:GID with no capabilities; its reply."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing but syscalls and modules already loaded
        try:
            os.close(rfd)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(request)
                s.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            os.write(wfd, reply)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        reply = f.read()
    os.waitpid(pid, 0)
    return json.loads(reply)


def test_the_server_checks_its_peer_even_where_the_file_modes_would_let_anyone_in() -> None:
    # In-process, with the socket opened to all: the credential check alone must refuse.
    nobody = 65534
    server = ControlServer("sftu0", {"status": Command(lambda req: "fine", read_only=True),
                                     "reset": Command(lambda req: "done")}, read_gid=nobody)
    run_mode = mode_of(RUN)[0]
    try:
        os.chmod(server.path, 0o666)
        os.chmod(RUN, 0o755)
        server.start()
        member = _ask_as(nobody, nobody, server.path, b'{"cmd": "status"}')
        assert member == {"result": "fine"}
        assert _ask_as(nobody, nobody, server.path, b'{"cmd": "reset"}') == \
            {"error": "sftu0: permission denied: reset needs CAP_NET_ADMIN"}
        stranger = _ask_as(nobody, nobody - 1, server.path, b'{"cmd": "status"}')
        assert re.fullmatch(r"sftu0: permission denied: not root, no CAP_NET_ADMIN, and sftu0 has read group \S+",
                            stranger["error"]), stranger
    finally:
        server.close()
        os.chmod(RUN, run_mode)
