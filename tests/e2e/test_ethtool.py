"""softena ethtool: every knob has a real effect on traffic and counters, refusals change nothing."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from conftest import run, wait_for
from iperf import iperf3, iperf3_running
from rss_ref import toeplitz


def ethtool(dev: str, *args: str, json_out: bool = False):
    """Run `softena ethtool`; with JSON_OUT return its parsed JSON."""
    proc = run(["softena", "ethtool", *(["--json"] if json_out else []), args[0], dev, *args[1:]], check=True)
    return json.loads(proc.stdout) if json_out else proc.stdout


def refused(dev: str, *args: str) -> str:
    proc = run(["softena", "ethtool", args[0], dev, *args[1:]])
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softena: "), proc.stderr
    return lines[0]


def per_queue(dev, key: str) -> list[int]:
    return [q[key] for q in dev.stats()["queues"]]


def grew(before: list[int], after: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before)]


def test_drvinfo_and_statistics_look_like_ethtool(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    info = ethtool("sft0", "-i")
    assert "driver: softena" in info and "bus-info: softena:sft0" in info
    stats = ethtool("sft0", "-S")
    assert stats.startswith("NIC statistics:")
    for name in ("queue_0_tx_cnt", "queue_1_rx_cnt", "queue_1_rx_csum_good", "ena_admin_q_completed_cmd"):
        assert f"     {name}: " in stats
    assert dev.status["queues"] == 2


def test_indirection_table_pointing_at_queue_1_moves_all_rx_there(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-X", "weight", "0", "1")
    assert set(ethtool("sft0", "-x", json_out=True)["indir"]) == {1}
    before = per_queue(dev, "rx-packets")
    iperf3(dev.netns, dev.peer_v4, "-R", "-P", "2")
    delta = grew(before, per_queue(dev, "rx-packets"))
    assert delta[1] > 10000 and delta[0] < delta[1] / 100, delta


def test_hash_fields_and_key_decide_the_queue_as_the_reference_model_predicts(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    key = bytes(range(1, 41))
    ethtool("sft0", "-X", "hkey", ":".join(f"{b:02x}" for b in key))
    assert ethtool("sft0", "-x", json_out=True)["key"] == key.hex()
    # Addresses only: every flow between the two hosts lands on one queue.
    ethtool("sft0", "-N", "rx-flow-hash", "tcp4", "sd")
    assert "L4 bytes" not in ethtool("sft0", "-n", "rx-flow-hash", "tcp4")
    before = per_queue(dev, "rx-bytes")
    iperf3(dev.netns, dev.peer_v4, "-R", "-P", "4")
    delta = grew(before, per_queue(dev, "rx-bytes"))
    predicted = toeplitz(key, ipaddress.ip_address(dev.peer_v4).packed + ipaddress.ip_address(dev.host_v4).packed)
    busy = predicted % 128 % 2
    assert delta[busy] > 50 * max(delta[1 - busy], 1), delta


def test_tso_off_stops_device_segmentation_and_traffic_still_flows(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-K", "tso", "off")
    assert "tcp-segmentation-offload: off" in ethtool("sft0", "-k")
    before = dev.queue_totals()
    iperf3(dev.netns, dev.peer_v4)
    after = dev.queue_totals()
    assert after["tx-hw-gso-packets"] == before["tx-hw-gso-packets"]
    assert after["tx-packets"] - before["tx-packets"] > 10000
    ethtool("sft0", "-K", "tso", "on")
    iperf3(dev.netns, dev.peer_v4)
    assert dev.queue_totals()["tx-hw-gso-packets"] > after["tx-hw-gso-packets"]


def test_tx_checksumming_off_takes_tso_with_it_and_the_host_sends_full_checksums(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-K", "tx", "off")
    features = ethtool("sft0", "-k", json_out=True)
    assert features["tx-checksumming"] is False and features["tcp-segmentation-offload"] is False
    before = dev.queue_totals()
    iperf3(dev.netns, dev.peer_v4)
    after = dev.queue_totals()
    assert after["tx-needs-csum"] == before["tx-needs-csum"]
    assert after["tx-csum-none"] - before["tx-csum-none"] > 10000


@pytest.mark.parametrize("feature, iperf_args, unchanged, grown, least", [
    ("gro", ["-R"], "rx-hw-gro-packets", "rx-packets", 10000),  # no receive coalescing
    ("rx", ["-R"], "rx-csum-unnecessary", "rx-csum-none", 10000),  # frames go up unchecked
    ("rxhash", ["-R", "-P", "4"], "rx-steered-out", "rx-packets", 1000),  # frames stay on their wire queue
])
def test_turning_an_rx_feature_off_stops_its_work(softena_up, feature: str, iperf_args: list[str],
                                                   unchanged: str, grown: str, least: int) -> None:
    dev = softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-K", feature, "off")
    before = dev.queue_totals()
    iperf3(dev.netns, dev.peer_v4, *iperf_args)
    after = dev.queue_totals()
    assert after[unchanged] == before[unchanged]
    assert after[grown] - before[grown] > least


def test_channels_change_live_and_a_tcp_stream_across_it_completes(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    with iperf3_running(dev.netns, dev.peer_v4, duration=8) as result:
        time.sleep(2)
        ethtool("sft0", "-L", "combined", "1")
        assert "Combined:\t1" in ethtool("sft0", "-l").split("Current hardware settings:")[1]
        assert run(["softena", "status", "--json"], check=True).stdout.count('"queues": 1') == 1
        time.sleep(2)
        ethtool("sft0", "-L", "combined", "2")
    assert result["end"]["sum_received"]["bytes"] > 0
    assert len(dev.stats()["queues"]) == 2
    assert ethtool("sft0", "-x", json_out=True)["indir"][:2] == [0, 1]


def test_ring_sizes_round_down_to_a_power_of_two_as_ena_does(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    ethtool("sft0", "-G", "rx", "3000", "tx", "100", "tx-push-buf-len", "224")
    rings = ethtool("sft0", "-g", json_out=True)
    assert (rings["rx"], rings["tx"], rings["tx-push-buf-len"]) == (2048, 256, 224)
    assert run(["ping", "-c", "2", "-i", "0.2", "-W", "2", dev.peer_v4]).returncode == 0


def test_coalescing_rx_usecs_cuts_wakeups_per_frame(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")

    def wakeups_per_frame() -> float:
        before = dev.queue_totals()
        # A frame every 400 us: unmoderated, about one wakeup each, however busy the machine.
        iperf3(dev.netns, dev.peer_v4, "-R", "-u", "-b", "20M", "-l", "1000", "--pacing-timer", "50")
        after = dev.queue_totals()
        return (after["napi-wakeups"] - before["napi-wakeups"]) / (after["rx-wire-packets"] - before["rx-wire-packets"])

    plain = wakeups_per_frame()
    ethtool("sft0", "-C", "rx-usecs", "1000")
    assert "rx-usecs: 1000" in ethtool("sft0", "-c")
    moderated = wakeups_per_frame()
    assert moderated < plain / 2, (plain, moderated)  # measured here: 1.0 -> 0.33


@pytest.mark.parametrize("args, reason", [
    (["-L", "combined", "40"], "requested channel count 40 exceeds maximum 32"),
    (["-L", "combined", "0"], "at least one channel is needed"),
    (["-G", "rx", "9000"], "requested rx ring size 9000 exceeds maximum 8192"),
    (["-G", "tx-push-buf-len", "100"], "tx-push-buf-len must be 96 or 224, got 100"),
    (["-C", "rx-usecs", "5000"], "rx-usecs 5000 out of range 0..1000"),
    (["-X", "hkey", "00:11"], "RSS hash key must be 40 bytes, got 2"),
    (["-X", "hfunc", "xor"], "only the toeplitz hash function is supported"),
    (["-X", "equal", "3"], "equal 3 needs 1..2 rings"),
    (["-K", "ntuple", "on"], "feature ntuple does not exist or cannot be changed"),
    (["-N", "rx-flow-hash", "tcp4", "sdfnm"], "the device hashes on s, d, f and n only, not m"),
])
def test_refused_values_give_the_devices_reason_and_change_nothing(softena_up, args: list[str], reason: str) -> None:
    softena_up("sft0", "--queues", "2")
    views = [("-l",), ("-g",), ("-k",), ("-x",), ("-c",), ("-n", "rx-flow-hash", "tcp4")]
    before = [ethtool("sft0", *v) for v in views]
    assert reason in refused("sft0", *args)
    assert [ethtool("sft0", *v) for v in views] == before


def test_a_channel_cut_below_a_custom_table_is_refused(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-X", "weight", "1", "1")
    ethtool("sft0", "-X", "weight", "0", "1")
    assert "too low for the existing indirection table" in refused("sft0", "-L", "combined", "1")


def test_a_smaller_modelled_device_enforces_its_limits_everywhere(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--max-queues", "2", "--max-mtu", "2000")
    assert "Combined:\t2" in ethtool("sft0", "-l").split("Current hardware settings:")[0]
    assert "exceeds maximum 2" in refused("sft0", "-L", "combined", "3")
    run(["ip", "link", "set", "sft0", "mtu", "2500"], check=True)
    wait_for(lambda: json.loads(run(["ip", "-j", "link", "show", "sft0"], check=True).stdout)[0]["mtu"] == 1500,
             what="MTU set back")
    proc = run(["softena", "up", "sft1", "--queues", "3", "--max-queues", "2"])
    assert proc.returncode == 1 and "invalid queue count 3: the device supports 1..2" in proc.stderr
    assert dev.status["queues"] == 2


def test_llq_pushes_the_first_bytes_of_every_tx_frame_with_its_descriptor(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--llq", "224")
    assert "TX push buff len:\t224" in ethtool("sft0", "-g").split("Current hardware settings:")[1]
    before = dev.queue_totals()
    assert run(["ping", "-c", "3", "-i", "0.2", "-s", "500", "-W", "2", dev.peer_v4]).returncode == 0
    after = dev.queue_totals()
    pushed = after["tx-llq-push"] - before["tx-llq-push"]
    assert pushed >= 3 and after["tx-llq-push-bytes"] - before["tx-llq-push-bytes"] >= 3 * 224
    iperf3(dev.netns, dev.peer_v4)
    final = dev.queue_totals()
    wire_frames = final["tx-hw-gso-wire-packets"] - after["tx-hw-gso-wire-packets"]
    assert final["tx-llq-push"] - after["tx-llq-push"] >= wire_frames > 10000
    pushed = final["tx-llq-push"] - after["tx-llq-push"]
    assert final["tx-llq-push-bytes"] - after["tx-llq-push-bytes"] <= 224 * pushed


def test_llq_off_at_bring_up_and_switched_on_with_tx_push_buf_len(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--llq", "off")
    assert "TX push buff len:\tn/a" in ethtool("sft0", "-g").split("Current hardware settings:")[1]
    assert run(["ping", "-c", "2", "-i", "0.2", "-W", "2", dev.peer_v4]).returncode == 0
    assert dev.queue_totals()["tx-llq-push"] == 0
    ethtool("sft0", "-G", "tx-push-buf-len", "96")
    assert run(["ping", "-c", "2", "-i", "0.2", "-W", "2", dev.peer_v4]).returncode == 0
    assert dev.queue_totals()["tx-llq-push"] >= 2


def test_a_tap_wire_has_no_llq(softena_up) -> None:
    softena_up("sft0", "--queues", "1", "--wire", "tap")
    assert "this device has no LLQ" in refused("sft0", "-G", "tx-push-buf-len", "224")
