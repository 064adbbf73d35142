"""The netdev family as a softena device publishes it: ids that cannot collide, qstats in the spec's
meanings, page pools, and notifications when queues are rebuilt."""

from __future__ import annotations

import json
import os
import time

from conftest import run, wait_for
from iperf import iperf3

from softena.control import ctlsock
from softena.netdev.family import PAGE_POOL_ID_BASE, kernel_max_cpus
from softena.netdev.notify import Subscription


def netdev(dev: str, op: str, dump: bool = True, **attrs):
    answer = ctlsock.request(dev, "netdev", op=op, attrs=attrs, dump=dump)
    assert "reply" in answer, answer
    return answer["reply"]


def peer_link(netns: str) -> dict:
    entry = json.loads(run(["ip", "netns", "exec", netns, "ip", "-j", "-s", "link", "show", "eth0"],
                           check=True).stdout)[0]
    return entry["stats64"]


def test_napi_ids_lie_below_min_napi_id_and_name_the_worker_threads(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    napis = netdev("sft0", "napi-get")
    assert [n["ifindex"] for n in napis] == [dev.status["ifindex"]] * 2
    for qid, napi in enumerate(napis):
        assert 1 <= napi["id"] <= kernel_max_cpus(), "a kernel NAPI id could collide"
        with open(f"/proc/{dev.pid}/task/{napi['pid']}/comm") as f:
            assert f.read().strip() == f"softena/sft0-{qid}"
    queues = netdev("sft0", "queue-get")
    assert sorted((q["type"], q["id"]) for q in queues) == [("rx", 0), ("rx", 1), ("tx", 0), ("tx", 1)]
    assert {q["napi-id"] for q in queues} == {n["id"] for n in napis}
    one = netdev("sft0", "napi-get", dump=False, id=napis[1]["id"])
    assert one == napis[1]
    missing = ctlsock.request("sft0", "netdev", op="napi-get", attrs={"id": napis[1]["id"] + 64}, dump=False)
    assert missing["error"]["errno"] == "ENOENT" and missing["error"]["bad-attr"] == "id"


def test_qstats_count_wire_packets_as_the_spec_says(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    peer_before = peer_link(dev.netns)
    (ours_before,) = netdev("sft0", "qstats-get")
    iperf3(dev.netns, dev.peer_v4)  # TSO: the host hands over 64 KiB frames, the wire carries MTU-sized ones

    def sent_and_arrived() -> tuple[int, int]:
        (ours,) = netdev("sft0", "qstats-get")
        peer = peer_link(dev.netns)
        return ours["tx-packets"] - ours_before["tx-packets"], peer["rx"]["packets"] - peer_before["rx"]["packets"]

    # What the device put on the wire is what the peer took off it; a few
    # neighbour or router frames may cross during the reads. tx-packets counts
    # a frame when its completion is reaped, which a busy machine can leave a
    # poll behind the peer's count (one TSO frame's ~45 segments): read again
    # until the two meet, for a while.
    sent, arrived = sent_and_arrived()
    for _ in range(20):
        if arrived - 20 <= sent <= arrived + 20:
            break
        time.sleep(0.1)
        sent, arrived = sent_and_arrived()
    assert arrived - 20 <= sent <= arrived + 20, (sent, arrived)
    (ours_after,) = netdev("sft0", "qstats-get")
    host = dev.queue_totals()
    assert host["tx-hw-gso-wire-packets"] > host["tx-hw-gso-packets"] * 5
    assert ours_after["tx-packets"] > host["tx-packets"], "wire packets outnumber the host's GSO frames"


def test_queue_scope_splits_rx_and_tx_and_adds_up_to_the_device_with_its_base(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    iperf3(dev.netns, dev.peer_v4, "-R", "-P", "2")
    run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
    per_queue = netdev("sft0", "qstats-get", scope=["queue"])
    (device,) = netdev("sft0", "qstats-get")
    assert sorted((e["queue-type"], e["queue-id"]) for e in per_queue) == [("rx", 0), ("tx", 0)]
    for entry in per_queue:
        prefix = entry["queue-type"] + "-"
        assert all(k.startswith(prefix) for k in entry if k not in ("ifindex", "queue-type", "queue-id"))
    rx_live = next(e for e in per_queue if e["queue-type"] == "rx")["rx-packets"]
    assert device["rx-packets"] > rx_live, "the device total keeps what queue 1 counted"


def test_page_pools_are_published_and_rebuilt_pools_are_notified(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    pools = netdev("sft0", "page-pool-get")
    napis = {n["id"] for n in netdev("sft0", "napi-get")}
    assert len(pools) == 2 and all(p["id"] >= PAGE_POOL_ID_BASE for p in pools)
    assert {p["napi-id"] for p in pools} == napis
    for p in pools:
        assert 0 < p["inflight"] and p["inflight-mem"] == p["inflight"] * 4096
    stats = netdev("sft0", "page-pool-stats-get")
    assert {s["info"]["id"] for s in stats} == {p["id"] for p in pools}
    with Subscription(["page-pool"]) as sub:
        run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
        got: list[dict] = []
        # Each old pool, its fill ring still lent out, is detached (change) then destroyed (del).
        wait_for(lambda: got.extend(sub.read_ready()) or len(got) >= 5, within=5, what="five notifications")
    deleted = {m["msg"]["id"] for m in got if m["name"] == "page-pool-del-ntf"}
    assert {m["msg"]["id"] for m in got if m["name"] == "page-pool-change-ntf"} == deleted
    added = [m["msg"] for m in got if m["name"] == "page-pool-add-ntf"]
    assert deleted == {p["id"] for p in pools}
    assert len(added) == 1 and added[0]["id"] not in deleted
    assert [p["id"] for p in netdev("sft0", "page-pool-get")] == [added[0]["id"]]


def test_dev_notifications_reach_a_subscriber_that_was_there_first(softena_up) -> None:
    with Subscription(["mgmt"]) as sub:
        dev = softena_up("sft0", "--queues", "1")
        got: list[dict] = []
        wait_for(lambda: got.extend(sub.read_ready()) or got, within=5, what="dev-add-ntf")
        assert got[0] == {"name": "dev-add-ntf", "msg": netdev("sft0", "dev-get", dump=False,
                                                                ifindex=dev.status["ifindex"])}
        run(["softena", "down", "sft0"], check=True)
        wait_for(lambda: got.extend(sub.read_ready()) or len(got) >= 2, within=5, what="dev-del-ntf")
        assert got[1]["name"] == "dev-del-ntf" and got[1]["msg"]["ifindex"] == dev.status["ifindex"]
    assert not os.path.exists(sub.path), "a subscriber leaves no socket behind"


def test_get_stats_through_the_admin_queue_counts_what_qstats_count(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    iperf3(dev.netns, dev.peer_v4, "-P", "2")
    admin_before = dev.stats()["admin-queue"]["completed_cmd"]
    (before,) = netdev("sft0", "qstats-get")
    basic = ctlsock.request("sft0", "device-stats")
    (after,) = netdev("sft0", "qstats-get")
    assert dev.stats()["admin-queue"]["completed_cmd"] > admin_before, "GET_STATS went through the admin queue"
    for ena, qstat in (("tx_pkts", "tx-packets"), ("tx_bytes", "tx-bytes"), ("rx_pkts", "rx-packets"),
                       ("rx_bytes", "rx-bytes")):
        assert before[qstat] <= basic[ena] <= after[qstat], ena
    assert basic["tx_drops"] == after.get("tx-hw-drops", 0) and basic["rx_drops"] == after.get("rx-hw-drops", 0)
    assert "device (GET_STATS, wire packets): tx_bytes" in run(["softena", "stats", "sft0"], check=True).stdout
