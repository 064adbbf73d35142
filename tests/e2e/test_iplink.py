"""`ip` drives the device as it drives a NIC: MTU, down/up, promisc, allmulti, tagged frames."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import device_log, device_status, run, snmp, wait_for
from iperf import iperf3


def link(ifname: str, netns: str | None = None) -> dict:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return json.loads(run([*prefix, "ip", "-j", "link", "show", ifname], check=True).stdout)[0]






def ping(address: str, size: int = 56) -> bool:
    return run(["ping", "-c", "1", "-W", "2", "-s", str(size), "-M", "do", address]).returncode == 0


def test_mtu_in_range_is_honoured_and_the_wire_follows(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    assert not ping(dev.peer_v4, 2900)
    run(["ip", "link", "set", "sft0", "mtu", "3000"], check=True)
    wait_for(lambda: link("sft0-wire")["mtu"] == 3000 and link("eth0", dev.netns)["mtu"] == 3000)
    assert ping(dev.peer_v4, 2900)
    assert "sft0: MTU 3000, wire follows" in device_log("sft0")


def test_mtu_out_of_range_is_refused_with_the_ena_message_and_set_back(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    run(["ip", "link", "set", "sft0", "mtu", "9500"], check=True)  # above the device's 9216
    wait_for(lambda: link("sft0")["mtu"] == 1500)
    assert "<3>sft0: Invalid MTU setting. new_mtu: 9500" in device_log("sft0")
    assert link("sft0-wire")["mtu"] == 1500
    assert ping(dev.peer_v4)


def test_an_mtu_the_tx_ring_cannot_carry_and_a_ring_too_small_for_the_mtu_are_both_refused(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    run(["ip", "link", "set", "sft0", "mtu", "600"], check=True)  # 64 KiB TSO frames need 266 Tx slots here
    wait_for(lambda: link("sft0-wire")["mtu"] == 600)
    proc = run(["softena", "ethtool", "-G", "sft0", "tx", "256"])
    assert proc.returncode == 1 and "requested tx ring size 256 is below 266" in proc.stderr
    assert "TX:\t\t\t1024" in run(["softena", "ethtool", "-g", "sft0"], check=True).stdout.split("Current")[1]
    run(["ip", "link", "set", "sft0", "mtu", "1500"], check=True)
    wait_for(lambda: link("sft0-wire")["mtu"] == 1500)
    run(["softena", "ethtool", "-G", "sft0", "tx", "256"], check=True)
    run(["ip", "link", "set", "sft0", "mtu", "600"], check=True)
    wait_for(lambda: link("sft0")["mtu"] == 1500, what="the MTU set back")
    assert "Invalid MTU setting. new_mtu: 600 needs a Tx ring of 266 or more, the ring has 256" in device_log("sft0")
    run(["softena", "ethtool", "-L", "sft0", "combined", "2"], check=True)  # a rebuild still succeeds
    assert ping(dev.peer_v4)


def test_af_xdp_wire_takes_jumbo_frames_in_several_buffers(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    run(["ip", "link", "set", "sft0", "mtu", "9000"], check=True)
    wait_for(lambda: link("eth0", dev.netns)["mtu"] == 9000)
    assert ping(dev.peer_v4, 8000) and ping(dev.peer_v6, 8000)
    before = dev.queue_totals()
    peer_csum_errors = snmp(dev.netns, "Tcp")["InCsumErrors"]
    result = iperf3(dev.netns, dev.peer_v4)
    iperf3(dev.netns, dev.peer_v4, "-R")
    after = dev.queue_totals()
    assert result["end"]["sum_received"]["bytes"] > 0
    # The host's TSO frames leave as 9000-byte segments written straight into
    # several UMEM frames each, their checksums summed across the frames: the
    # peer verifies every one.
    assert snmp(dev.netns, "Tcp")["InCsumErrors"] == peer_csum_errors
    assert after["rx-csum-unnecessary"] - before["rx-csum-unnecessary"] > 1000
    assert after["rx-csum-bad"] == 0
    # A bulk stream may fill the Rx ring (an overrun, counted); no other drop may
    # happen: a jumbo frame's several buffers are always taken whole. (A frame
    # of the peer's that met the MTU change's rebuild is a drop, rx-wire-missed,
    # before BEFORE.)
    assert after["rx-hw-drops"] - before["rx-hw-drops"] == \
        after["rx-hw-drop-overruns"] - before["rx-hw-drop-overruns"]


def test_tap_wire_takes_jumbo_frames_8000_byte_pings_pass(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--wire", "tap")
    run(["ip", "link", "set", "sft0", "mtu", "9000"], check=True)
    wait_for(lambda: link("eth0", dev.netns)["mtu"] == 9000)
    assert ping(dev.peer_v4, 8000)


def test_link_down_stops_the_queues_and_up_restarts_them(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    run(["ip", "link", "set", "sft0", "down"], check=True)
    wait_for(lambda: device_status("sft0")["threads"] == [])
    run(["ip", "link", "set", "sft0", "up"], check=True)
    wait_for(lambda: len(device_status("sft0")["threads"]) == 2)
    wait_for(lambda: ping(dev.peer_v4), within=5)


def send_from_peer(netns: str, dst_mac: str, dst_ip: str, count: int) -> None:
    """COUNT UDP frames from the peer to DST_IP, addressed to DST_MAC on the wire."""
    script = (f"from scapy.all import Ether, IP, UDP, sendp; "
              f"sendp(Ether(dst='{dst_mac}')/IP(dst='{dst_ip}')/UDP(dport=9)/b'softena', "
              f"iface='eth0', count={count}, verbose=0)")
    run(["ip", "netns", "exec", netns, sys.executable, "-c", script], check=True)


# iproute2 6.1 spells the second flag "allmulticast".
@pytest.mark.parametrize("flag, dst_mac", [("promisc", "02:00:00:00:99:99"), ("allmulticast", "01:00:5e:7f:01:02")])
def test_rx_mode_flags_decide_which_frames_reach_the_host(softena_up, flag: str, dst_mac: str) -> None:
    dev = softena_up("sft0", "--queues", "1")
    before = dev.queue_totals()
    send_from_peer(dev.netns, dst_mac, dev.host_v4, 50)
    time.sleep(0.3)
    assert dev.queue_totals()["rx-filtered"] - before["rx-filtered"] >= 50  # and stray IPv6 multicast
    run(["ip", "link", "set", "sft0", flag, "on"], check=True)
    wait_for(lambda: f"rx mode: promisc {'on' if flag == 'promisc' else 'off'}" in device_log("sft0"))
    # Counted from here: a stray multicast frame may still be on its way
    # through the old filter until the new one is in place.
    mid = dev.queue_totals()
    send_from_peer(dev.netns, dst_mac, dev.host_v4, 50)
    time.sleep(0.3)
    after = dev.queue_totals()
    assert after["rx-filtered"] == mid["rx-filtered"]
    assert after["rx-packets"] - mid["rx-packets"] >= 50


def test_a_multicast_group_the_host_joins_passes_the_filter_within_a_second(softena_up) -> None:
    """`ip maddr add` joins below IP, with no notification: the device finds it in its once-a-second look."""
    dev = softena_up("sft0", "--queues", "1")
    group = "01:00:5e:7f:01:03"

    def sent(count: int) -> dict:
        before = dev.queue_totals()
        send_from_peer(dev.netns, group, dev.host_v4, count)
        time.sleep(0.3)
        after = dev.queue_totals()
        return {k: after[k] - before[k] for k in ("rx-filtered", "rx-packets")}

    assert sent(50)["rx-filtered"] >= 50
    run(["ip", "maddr", "add", group, "dev", "sft0"], check=True)
    time.sleep(1.5)
    passed = sent(50)
    # A stray IPv6 multicast frame of the peer's may be filtered meanwhile; ours are not.
    assert passed["rx-filtered"] < 10 and passed["rx-packets"] >= 50, passed
    run(["ip", "maddr", "del", group, "dev", "sft0"], check=True)
    time.sleep(1.5)
    assert sent(50)["rx-filtered"] >= 50


def test_vlan_tagged_frames_cross_the_device_both_ways(softena_up) -> None:
    """The kernel here has no 8021q module, so tagged frames are sent and caught with packet sockets."""
    dev = softena_up("sft0", "--queues", "1")
    mac = link("sft0")["address"]
    sniff = ("import sys; from scapy.all import sniff, Dot1Q; "
             "p = sniff(iface=sys.argv[1], count=5, timeout=5, lfilter=lambda p: Dot1Q in p and p[Dot1Q].vlan == 100); "
             "print(len(p))")
    send = ("import sys; from scapy.all import Ether, Dot1Q, IP, UDP, sendp; "
            "sendp(Ether(dst=sys.argv[2])/Dot1Q(vlan=100)/IP(dst='198.18.100.1')/UDP(dport=9)/b'x', "
            "iface=sys.argv[1], count=5, inter=0.05, verbose=0)")
    host_sniffer = subprocess.Popen([sys.executable, "-c", sniff, "sft0"], stdout=subprocess.PIPE, text=True)
    peer_sniffer = subprocess.Popen(["ip", "netns", "exec", dev.netns, sys.executable, "-c", sniff, "eth0"],
                                    stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    run(["ip", "netns", "exec", dev.netns, sys.executable, "-c", send, "eth0", mac], check=True)
    run([sys.executable, "-c", send, "sft0", link("eth0", dev.netns)["address"]], check=True)
    assert host_sniffer.communicate(timeout=10)[0].strip() == "5"
    assert peer_sniffer.communicate(timeout=10)[0].strip() == "5"


def kernel_has_vlan() -> bool:
    """Whether this kernel can make VLAN devices (8021q); probed on a throwaway veth."""
    made = run(["ip", "link", "add", "sftvp0", "type", "veth", "peer", "name", "sftvp1"]).returncode == 0
    try:
        return made and run(["ip", "link", "add", "link", "sftvp0", "name", "sftvp0.9", "type", "vlan",
                             "id", "9"]).returncode == 0
    finally:
        run(["ip", "link", "del", "sftvp0"])


@pytest.mark.skipif(not kernel_has_vlan(), reason="this kernel has no 8021q: see the tagged-frame test above")
def test_a_vlan_on_top_carries_ping_and_tcp_end_to_end(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    run(["ip", "link", "add", "link", "sft0", "name", "sft0.100", "type", "vlan", "id", "100"], check=True)
    try:
        run(["ip", "addr", "add", "198.18.100.1/24", "dev", "sft0.100"], check=True)
        run(["ip", "link", "set", "sft0.100", "up"], check=True)
        for cmd in (["ip", "link", "add", "link", "eth0", "name", "eth0.100", "type", "vlan", "id", "100"],
                    ["ip", "addr", "add", "198.18.100.2/24", "dev", "eth0.100"],
                    ["ip", "link", "set", "eth0.100", "up"]):
            run(["ip", "netns", "exec", dev.netns, *cmd], check=True)
        assert ping("198.18.100.2")
        assert iperf3(dev.netns, "198.18.100.2")["end"]["sum_received"]["bytes"] > 0
    finally:
        run(["ip", "link", "del", "sft0.100"])
