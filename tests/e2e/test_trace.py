"""softena trace: drops the kernel makes on a real device's tap, seen with the
kernel's reasons; and the one-line errors when a prerequisite is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile

import pytest
from conftest import run, wait_for

from softena.errors import SoftenaError
from softena.trace import checks, devices, symbols
from softena.trace.tracer import DropKey, Interface, Tracer

SENT = 200  # frames of each kind, one by one: well under every queue's length
TOLERANCE = 5  # frames the sample may miss: a frame in flight at the edges of the window
BACKGROUND = 10  # the same reason from elsewhere (IPv6 chatter is its own reason)

# Run in the peer's namespace: SENT UDP datagrams to a closed port on the
# host, then SENT frames whose IPv4 header checksum is wrong, both by way of
# the wire into the device's tap.
PEER_SENDER = r"""
import socket, struct, sys
host, peer, port, dst_mac, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for _ in range(n):
        s.sendto(b"softena trace", (host, port))
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
    s.bind(("eth0", 0))
    src = s.getsockname()[4]
    frame = bytes(Ether(dst=dst_mac, src=src) / IP(src=peer, dst=host, chksum=0xbad) / UDP(dport=port) / b"x")
    for _ in range(n):
        s.send(frame)
"""


def closed_udp_port() -> int:
    """A UDP port no socket on the host holds (taken free, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def probes_of(pid: int) -> bool:
    """Whether process PID holds a raw tracepoint link on kfree_skb (its fdinfo names the tracepoint)."""
    fds = f"/proc/{pid}/fdinfo"
    try:
        for fd in os.listdir(fds):
            with open(os.path.join(fds, fd)) as f:
                info = f.read()
            if "link_type:\traw_tracepoint" in info and "tp_name:\tkfree_skb\n" in info:
                return True
    except OSError:  # gone, or an fd closed while we looked
        return False
    return False


@pytest.mark.e2e
def test_trace_sees_drops_with_their_reasons(softena_up):
    dev = softena_up("sft0")
    tap_mac = json.loads(run(["ip", "-j", "link", "show", dev.name], check=True).stdout)[0]["address"]
    port = closed_udp_port()
    tracer = subprocess.Popen([sys.executable, "-m", "softena", "trace", dev.name, "--json", "--interval", "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The sample counts from the moment the probes are attached: send after that.
        wait_for(lambda: probes_of(tracer.pid) or tracer.poll() is not None, within=30, what="probes loaded")
        assert tracer.poll() is None, tracer.communicate()[1]
        run(["ip", "netns", "exec", dev.netns, sys.executable, "-c", PEER_SENDER,
             dev.host_v4, dev.peer_v4, str(port), tap_mac, str(SENT)], timeout=30, check=True)
        out, err = tracer.communicate(timeout=30)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    assert tracer.returncode == 0, err
    sample = json.loads(out)
    assert {(i["ifname"], i["where"]) for i in sample["interfaces"]} == {(dev.name, "tap"),
                                                                         (dev.status["wire-ifname"], "wire")}
    on_tap = {d["reason"]: d["count"] for d in sample["drops"] if d["where"] == "tap" and d["event"] == "kfree_skb"}
    # The kernel's own names (this kernel's format file), not numbers.
    reasons = symbols.symbols("skb:kfree_skb", "reason").values()
    assert "NO_SOCKET" in reasons and "IP_CSUM" in reasons
    for reason in ("NO_SOCKET", "IP_CSUM"):
        assert SENT - TOLERANCE <= on_tap.get(reason, 0) <= SENT + BACKGROUND, (reason, sample["drops"])
    # Nothing of ours was dropped on the wire: every frame made it through softena to the tap.
    assert not [d for d in sample["drops"] if d["where"] == "wire" and d["reason"] in ("NO_SOCKET", "IP_CSUM")]


def test_trace_checks_name_the_fix():
    with tempfile.TemporaryDirectory() as empty:
        with pytest.raises(SoftenaError, match=r"tracefs is not mounted at .*: mount -t tracefs nodev"):
            checks.need_tracefs(empty)
        with pytest.raises(SoftenaError, match=r"no kernel headers at .*/6\.0\.0-x/build: apt-get install "
                                               r"linux-headers-6\.0\.0-x"):
            checks.need_headers(empty, "6.0.0-x")
        with pytest.raises(SoftenaError, match=r"needs bcc: apt-get install python3-bpfcc"):
            checks.import_bcc(search=(empty,))
        with pytest.raises(SoftenaError, match=r"no BTF at"):
            checks.need_btf(os.path.join(empty, "vmlinux"))
    with pytest.raises(SoftenaError, match=r"needs root"):
        checks.need_root(euid=1000)


@pytest.mark.e2e
def test_trace_no_such_device():
    proc = run([sys.executable, "-m", "softena", "trace", "sftnone", "--json"])
    assert proc.returncode == 1
    assert proc.stderr.strip() == "softena trace: sftnone: no such device (is it up?)"
    assert not proc.stdout


@pytest.mark.e2e
def test_trace_tells_namespaces_apart(softena_up):
    """Ifindexes repeat across namespaces: drops on the peer's eth0 count for
    (peer namespace, its ifindex) and not for the same ifindex in ours."""
    dev = softena_up("sft0")
    index = json.loads(run(["ip", "-n", dev.netns, "-j", "link", "show", "eth0"], check=True).stdout)[0]["ifindex"]
    peer = Interface(dev.name, "eth0", index, os.stat(f"/run/netns/{dev.netns}").st_ino, "wire")
    ours = Interface(dev.name, f"index {index} here", index, devices.netns_inode(), "tap")
    no_socket = DropKey(peer, "kfree_skb", "NO_SOCKET")
    with Tracer(checks.prerequisites(), [peer, ours]) as tracer:
        # From the host, through the device and its wire, to a port nothing holds in the peer.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(SENT):
                s.sendto(b"softena trace", (dev.peer_v4, 9))
        wait_for(lambda: tracer.read().get(no_socket, 0) >= SENT - TOLERANCE, within=5, what="drops in the peer")
        counts = tracer.read()
    assert counts[no_socket] <= SENT + BACKGROUND
    assert not [k for k in counts if k.iface == ours], counts
