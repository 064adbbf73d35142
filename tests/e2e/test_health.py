"""Health: each fault produces its log line, its counters and a recovery, with traffic running."""

from __future__ import annotations

import time

import psutil
from conftest import device_log, run, wait_for
from iperf import iperf3, iperf3_running


def health(dev) -> dict:
    return dev.stats()["health"]




def reachable(dev) -> bool:
    return run(["ping", "-c", "1", "-W", "1", dev.peer_v4]).returncode == 0


def fault(dev, *args: str) -> None:
    run(["softena", "fault", "inject", args[0], dev.name, *args[1:]], check=True)


def test_user_reset_under_iperf3_load_loses_no_connection(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    with iperf3_running(dev.netns, dev.peer_v4, duration=20) as result:
        for _ in range(3):
            time.sleep(4)
            run(["softena", "reset", "sft0"], check=True)
    assert result["end"]["sum_received"]["bytes"] > 0
    stats = health(dev)
    assert stats["total_resets"] == 3 and stats["reasons"]["USER_TRIGGER"] == 3
    log = device_log("sft0")
    assert log.count("<3>sft0: trigger reset is on") == 3 and "reset reason: USER_TRIGGER" in log


def test_keep_alive_loss_fires_the_watchdog_and_the_device_comes_back(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--keep-alive-timeout", "2")
    fault(dev, "keep-alive-loss", "--for", "3")
    wait_for(lambda: health(dev)["total_resets"] >= 1, within=6, what="keep-alive reset")
    stats = health(dev)
    assert stats["wd_expired"] >= 1 and stats["reasons"]["KEEP_ALIVE_TO"] >= 1
    assert "keep alive watchdog timeout" in device_log("sft0")
    wait_for(lambda: reachable(dev), within=5, what="traffic after the reset")


def test_admin_timeout_is_counted_and_resets_the_device(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    fault(dev, "admin-timeout", "--for", "4")
    proc = run(["softena", "ethtool", "-C", "sft0", "rx-usecs", "10"])
    assert proc.returncode == 1 and "timed out" in proc.stderr
    wait_for(lambda: health(dev)["reasons"]["ADMIN_TO"] >= 1 and health(dev)["total_resets"] >= 1,
             within=20, what="ADMIN_TO reset")
    assert dev.stats()["admin-queue"]["no_completion"] >= 1
    assert "reset reason: ADMIN_TO" in device_log("sft0")
    wait_for(lambda: reachable(dev), within=5, what="traffic after the reset")


def test_tx_completion_stall_is_found_and_resets_past_the_threshold(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--tx-timeout", "1", "--missing-tx-threshold", "16")
    fault(dev, "tx-completion-stall", "--for", "3")
    run(["ping", "-c", "40", "-i", "0.02", "-W", "1", dev.peer_v4])
    wait_for(lambda: health(dev)["reasons"]["MISS_TX_CMPL"] >= 1, within=8, what="MISS_TX_CMPL reset")
    assert health(dev)["missing_tx_cmpl"] > 16
    assert "Found a Tx that wasn't completed on time, qid 0, index" in device_log("sft0")
    wait_for(lambda: reachable(dev), within=5, what="traffic after the reset")


def test_link_flap_drops_and_restores_the_carrier(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    before = dev.stats()["aenq"]["link_change"]
    fault(dev, "link-flap", "--for", "1")
    wait_for(lambda: dev.stats()["aenq"]["link_change"] >= before + 2, within=3, what="down and up")
    log = device_log("sft0")
    assert log.rindex("link is DOWN") < log.rindex("link is UP")
    assert reachable(dev)


def test_wire_down_takes_the_wire_and_gives_it_back(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    fault(dev, "wire-down", "--for", "2")
    wait_for(lambda: "NO-CARRIER" in run(["ip", "link", "show", "sft0"]).stdout, within=1.5, what="NO-CARRIER")
    assert "fault injected: wire-down for 2.0 s" in device_log("sft0")
    wait_for(lambda: "link is DOWN" in device_log("sft0"), within=1, what="log line")
    wait_for(lambda: reachable(dev), within=6, what="traffic after the wire is back")


def test_rx_alloc_fail_starves_the_fill_ring_until_lifted(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--keep-alive-timeout", "30")
    fault(dev, "rx-alloc-fail", "--for", "2")
    run(["ping", "-c", "20", "-i", "0.05", "-W", "1", dev.peer_v4])
    assert dev.queue_totals()["rx-alloc-fail"] > 0
    wait_for(lambda: "refilled rx queue 0 with 0 pages only" in device_log("sft0"), within=3, what="log line")
    wait_for(lambda: reachable(dev), within=5, what="traffic after the pool refills")


def test_corrupt_rx_frames_are_counted_bad_and_traffic_recovers(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    fault(dev, "corrupt-rx", "--for", "2")
    time.sleep(0.5)
    iperf3(dev.netns, dev.peer_v4, "-R", duration=1)
    assert dev.queue_totals()["rx-csum-bad"] > 0
    wait_for(lambda: "frames with bad checksums" in device_log("sft0"), within=3, what="log line")
    time.sleep(2)
    assert reachable(dev)


def test_fifty_resets_leak_no_fds_threads_memory_or_frames(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    proc = psutil.Process(dev.pid)
    run(["softena", "reset", "sft0"], check=True)  # let the first rebuild settle the allocator
    wait_for(lambda: health(dev)["total_resets"] == 1, within=10, what="first reset")
    fds, threads, rss = proc.num_fds(), proc.num_threads(), proc.memory_info().rss
    for i in range(50):
        run(["softena", "reset", "sft0"], check=True)
        wait_for(lambda: health(dev)["total_resets"] == i + 2, within=10, what=f"reset {i + 2}")
    assert health(dev)["reset_fail"] == 0
    assert proc.num_fds() == fds and proc.num_threads() == threads
    assert proc.memory_info().rss - rss < 32 << 20, "RSS grew by more than 32 MiB over 50 resets"
    stats = dev.stats()
    region = stats["region"]
    assert region["frames-free"] + sum(p["inflight"] for p in stats["page-pools"]) == region["frames"]
    assert reachable(dev)
