"""softena ethtool: every option of its table answers, every knob has a real effect on traffic
and counters, refusals and failures change nothing."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from conftest import device_status, run, wait_for
from iperf import iperf3, iperf3_running
from rss_ref import toeplitz

from softena.cli.ethtool import OPTIONS
from softena.control.ethtool_ops import EthtoolOps
from softena.control.ethtool_stats import ENA_STATS


def ethtool(dev: str, *args: str, json_out: bool = False):
    """Run `softena ethtool`; with JSON_OUT return its parsed JSON."""
    proc = run(["softena", "ethtool", *(["--json"] if json_out else []), args[0], dev, *args[1:]], check=True)
    return json.loads(proc.stdout) if json_out else proc.stdout


def refused(dev: str, *args: str, status: int = 1) -> str:
    """The one error line of a refused call; STATUS 2 for a malformed command line, 1 for a refusal."""
    proc = run(["softena", "ethtool", args[0], dev, *args[1:]])
    assert proc.returncode == status, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softena: "), proc.stderr
    return lines[0]


def per_queue(dev, key: str) -> list[int]:
    return [q[key] for q in dev.stats()["queues"]]


def grew(before: list[int], after: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before)]


def kernel_features(ifname: str) -> dict[str, str]:
    """What the real `ethtool -k` says the kernel does on IFNAME."""
    out = run(["ethtool", "-k", ifname], check=True).stdout
    return dict(line.strip().split(": ", 1) for line in out.splitlines()[1:])


# ---- the option table --------------------------------------------------------

# One case per option of the table: its arguments and a piece of what it must print
# (a get) or of what the matching get must print afterwards (a set).
OPTION_CASES = {
    "-i": ([], "-i", "bus-info: softena:sft0"),
    "-l": ([], "-l", "Current hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t2"),
    "-L": (["combined", "1"], "-l", "Current hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t1"),
    "-g": ([], "-g", "Current hardware settings:\nRX:\t\t\t1024\nRX Mini:\t\tn/a"),
    "-G": (["rx", "512"], "-g", "Current hardware settings:\nRX:\t\t\t512\nRX Mini:\t\tn/a"),
    "-k": ([], "-k", "large-receive-offload: off [fixed]\nntuple-filters: off\nreceive-hashing: on\nrx-gro-hw: on"),
    "-K": (["rxhash", "off"], "-k", "receive-hashing: off"),
    "-x": ([], "-x", "RSS hash function:\n    toeplitz: on\n    xor: off\n    crc32: off"),
    "-X": (["equal", "1"], "-x", "   0:      0     0     0     0     0     0     0     0"),
    "-n": (["rx-flow-hash", "udp6"], "-n", "UDP over IPV6 flows use these fields for computing Hash flow key:\n"
                                           "IP SA\nIP DA\nL4 bytes 0 & 1 [TCP/UDP src port]\n"),
    "-N": (["rx-flow-hash", "udp6", "d"], "-n", "UDP over IPV6 flows use these fields for computing Hash flow key:\n"
                                                "IP DA\n"),
    "-c": ([], "-c", "Adaptive RX: off  TX: n/a\n\nrx-usecs: 0\n\ntx-usecs: 0"),
    "-C": (["rx-usecs", "20", "adaptive-rx", "on"], "-c", "Adaptive RX: on  TX: n/a\n\nrx-usecs: 20\n"),
    "-S": ([], "-S", "NIC statistics:\n     total_resets: 0\n"),
}


def test_the_option_cases_cover_the_table_exactly() -> None:
    assert set(OPTION_CASES) == set(OPTIONS)


def test_the_options_send_exactly_the_operations_the_device_answers() -> None:
    assert {o.op for o in OPTIONS.values()} == set(EthtoolOps(device=None)._ops)


def test_every_option_of_the_table_answers_as_ethtool_would(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    for flag, (args, view, expected) in OPTION_CASES.items():  # sets last within each pair, as listed
        out = ethtool("sft0", flag, *args)
        if OPTIONS[flag].show:
            assert expected in out, (flag, out)
        else:
            assert out == "", (flag, out)  # a set prints nothing, as ethtool
            view_args = args[:2] if view == "-n" else []
            assert expected in ethtool("sft0", view, *view_args), flag


@pytest.mark.parametrize("args, reason, status", [
    (["-L", "rx", "2"], "-L takes combined N", 2),
    (["-L"], "-L takes combined N", 2),
    (["-l", "combined", "1"], "-l takes no arguments", 2),
    (["-G", "rx"], "missing value after 'rx'", 2),
    (["-K", "gro", "maybe"], "invalid value 'maybe' for gro: on or off", 2),
    (["-n", "rx-flow-hash", "sctp4"], "unsupported flow type sctp4", 1),  # ethtool's word, not the device's
    (["-X", "hkey", "zz"], "invalid value 'zz' for hkey", 2),
])
def test_words_outside_an_options_table_entry_are_refused_before_the_device_is_asked(args, reason, status) -> None:
    # No device: the parser refuses before it would connect; a malformed command line exits 2, as argparse's.
    assert reason in refused("sft9", *args, status=status)


# ---- -S: the ENA driver's names ---------------------------------------------

def stat_source(stats: dict, name: str):
    """The `softena stats --json` value behind ethtool -S statistic NAME, from the table."""
    for s in ENA_STATS:
        if s.scope == "global" and name == s.name or s.scope == "admin" and name == f"ena_admin_q_{s.name}":
            section, key = s.source
            return stats[section][key]
        suffix = f"_{s.scope}_{s.name}"
        if s.scope in ("tx", "rx") and name.startswith("queue_") and name.endswith(suffix):
            qid = int(name[len("queue_"):-len(suffix)])
            return next(q for q in stats["queues"] if q["queue-id"] == qid)[s.source]
    raise AssertionError(f"{name} is in no table entry")


def test_statistics_carry_the_ena_drivers_names_in_its_layout_and_nothing_unsourced(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    names = list(ethtool("sft0", "-S", json_out=True))
    stats = dev.stats()
    for name in names:
        stat_source(stats, name)  # every printed name has its source in softena stats
    queue_names = [n for n in names if n.startswith("queue_")]
    assert names[0] == "total_resets" and names[-1] == "ena_admin_q_no_completion"
    assert queue_names[:4] == ["queue_0_tx_cnt", "queue_0_tx_bytes", "queue_0_tx_queue_stop",
                               "queue_0_tx_queue_wakeup"]
    assert queue_names.index("queue_0_rx_cnt") < queue_names.index("queue_1_tx_cnt")
    assert names.index("interface_up") < names.index("queue_0_tx_cnt") < names.index("ena_admin_q_aborted_cmd")
    for expected in ("wd_expired", "missing_tx_cmpl", "queue_1_tx_napi_comp", "queue_1_tx_bad_req_id",
                     "queue_1_rx_csum_good", "queue_1_rx_csum_unchecked", "queue_1_rx_page_alloc_fail",
                     "ena_admin_q_submitted_cmd"):
        assert expected in names
    # What softena cannot count as the driver means it is left out, not shown as 0.
    for absent in ("tx_timeout", "suspend", "admin_q_pause", "queue_0_tx_dma_mapping_err",
                   "queue_0_tx_llq_buffer_copy", "queue_0_rx_empty_rx_ring", "queue_0_rx_xdp_pass"):
        assert absent not in names
    assert not [n for n in names if "steered" in n or n.startswith("aenq")]


def test_statistics_move_with_traffic_and_agree_with_softena_stats(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    before = ethtool("sft0", "-S", json_out=True)
    iperf3(dev.netns, dev.peer_v4, "-P", "2")
    after = ethtool("sft0", "-S", json_out=True)
    sent = sum(after[f"queue_{i}_tx_cnt"] - before[f"queue_{i}_tx_cnt"] for i in range(2))
    assert sent > 10000
    assert after["queue_0_tx_bytes"] + after["queue_1_tx_bytes"] > before["queue_0_tx_bytes"] + 10_000_000
    assert after["ena_admin_q_completed_cmd"] == after["ena_admin_q_submitted_cmd"]

    def agree() -> bool:  # at rest; NAPI counters tick on idle timeouts, so they are left aside
        shown, stats = ethtool("sft0", "-S", json_out=True), dev.stats()
        polled = {s.name for s in ENA_STATS if s.source in ("napi-sleeps", "napi-polls")}
        return all(v == stat_source(stats, n) for n, v in shown.items() if not n.endswith(tuple(polled)))

    wait_for(agree, within=5, what="ethtool -S agreeing with softena stats")


# ---- -k / -K: the host's GRO, the device's hardware GRO, no LRO ----------------

def test_gro_is_the_host_kernels_feature_and_leaves_the_devices_hw_gro_working(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    assert kernel_features("sft0")["generic-receive-offload"] == "on"
    ethtool("sft0", "-K", "gro", "off")
    assert kernel_features("sft0")["generic-receive-offload"] == "off"
    shown = ethtool("sft0", "-k")
    assert "generic-receive-offload: off\n" in shown and "rx-gro-hw: on" in shown
    before = dev.queue_totals()
    iperf3(dev.netns, dev.peer_v4, "-R")
    after = dev.queue_totals()
    assert after["rx-hw-gro-packets"] - before["rx-hw-gro-packets"] > 1000  # the device still coalesces
    ethtool("sft0", "-K", "generic-receive-offload", "on")
    assert kernel_features("sft0")["generic-receive-offload"] == "on"
    assert "generic-receive-offload: on\n" in ethtool("sft0", "-k")


def test_lro_is_off_and_fixed_and_asking_for_it_is_refused(softena_up) -> None:
    softena_up("sft0", "--queues", "1")
    before = ethtool("sft0", "-k")
    assert "large-receive-offload: off [fixed]" in before
    assert "Could not change any device features: large-receive-offload is off [fixed]" in \
        refused("sft0", "-K", "gro", "off", "lro", "on")
    assert ethtool("sft0", "-k") == before  # gro, asked beside it, stays on too
    assert kernel_features("sft0")["generic-receive-offload"] == "on"
    ethtool("sft0", "-K", "lro", "off")  # what it already is: nothing to refuse


# ---- knobs with an effect on traffic -------------------------------------------

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
    assert ethtool("sft0", "-x", json_out=True)["hkey"] == key.hex()
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
    features = {f["name"]: f["active"] for f in ethtool("sft0", "-k", json_out=True)["features"]}
    assert features["tx-checksumming"] is False and features["tcp-segmentation-offload"] is False
    before = dev.queue_totals()
    iperf3(dev.netns, dev.peer_v4)
    after = dev.queue_totals()
    assert after["tx-needs-csum"] == before["tx-needs-csum"]
    assert after["tx-csum-none"] - before["tx-csum-none"] > 10000


@pytest.mark.parametrize("feature, iperf_args, unchanged, grown, least", [
    ("rx-gro-hw", ["-R"], "rx-hw-gro-packets", "rx-packets", 10000),  # no receive coalescing in the device
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
        assert device_status("sft0")["queues"] == 1
        time.sleep(2)
        ethtool("sft0", "-L", "combined", "2")
    assert result["end"]["sum_received"]["bytes"] > 0
    assert device_status("sft0")["queues"] == 2
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


# ---- refusals and failures change nothing ---------------------------------------

VIEWS = [("-l",), ("-g",), ("-k",), ("-x",), ("-c",), ("-n", "rx-flow-hash", "tcp4")]


@pytest.mark.parametrize("args, reason", [
    (["-L", "combined", "40"], "requested channel count 40 exceeds maximum 32"),
    (["-L", "combined", "0"], "at least one channel is needed"),
    (["-G", "rx", "9000"], "requested rx ring size 9000 exceeds maximum 8192"),
    (["-G", "tx-push-buf-len", "100"], "tx-push-buf-len must be 96 or 224, got 100"),
    (["-C", "rx-usecs", "5000"], "rx-usecs 5000 out of range 0..1000"),
    (["-X", "hkey", "00:11"], "RSS hash key must be 40 bytes, got 2"),
    (["-X", "hfunc", "xor"], "only the toeplitz hash function is supported"),
    (["-X", "equal", "3"], "equal 3 needs 1..2 rings"),
    (["-K", "highdma", "on"], "feature highdma does not exist or cannot be changed"),
    (["-K", "lro", "on"], "Could not change any device features: large-receive-offload is off [fixed]"),
    (["-N", "rx-flow-hash", "tcp4", "sdfnm"], "the device hashes on s, d, f and n only, not m"),
])
def test_refused_values_give_the_devices_reason_and_change_nothing(softena_up, args: list[str], reason: str) -> None:
    softena_up("sft0", "--queues", "2")
    before = [ethtool("sft0", *v) for v in VIEWS]
    assert reason in refused("sft0", *args)
    assert [ethtool("sft0", *v) for v in VIEWS] == before


def test_a_channel_cut_below_a_custom_table_is_refused(softena_up) -> None:
    softena_up("sft0", "--queues", "2")
    ethtool("sft0", "-X", "weight", "1", "1")
    ethtool("sft0", "-X", "weight", "0", "1")
    assert "too low for the existing indirection table" in refused("sft0", "-L", "combined", "1")
    assert device_status("sft0")["queues"] == 2


XDP_PASS_C = """
__attribute__((section("xdp"), used)) int xdp_pass(void *ctx) { return 2; }
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


@pytest.mark.parametrize("queues, asked", [(2, 1), (1, 2)])
def test_a_channel_change_the_wire_refuses_restores_queues_table_rings_and_traffic(
        softena_up, tmp_path, queues: int, asked: int) -> None:
    dev = softena_up("sft0", "--queues", str(queues))
    # An XDP program on the far end of the veth cable: veth then refuses to give
    # one end more tx queues than the other has rx queues, so the device accepts
    # -L and the wire refuses to follow, half-way through the change.
    obj = tmp_path / "pass.o"
    (tmp_path / "pass.c").write_text(XDP_PASS_C)
    run(["clang", "-O2", "-target", "bpf", "-c", str(tmp_path / "pass.c"), "-o", str(obj)], check=True)
    run(["ip", "-n", dev.netns, "link", "set", "dev", "eth0", "xdpdrv", "obj", str(obj), "sec", "xdp"], check=True)
    before = [ethtool("sft0", *v) for v in VIEWS]
    assert "ethtool -L" in refused("sft0", "-L", "combined", str(asked))
    assert [ethtool("sft0", *v) for v in VIEWS] == before
    assert device_status("sft0")["queues"] == queues
    assert [q["queue-id"] for q in dev.stats()["queues"]] == list(range(queues))
    # Traffic as before: every queue receives, as the restored table spreads it.
    rx = per_queue(dev, "rx-packets")
    iperf3(dev.netns, dev.peer_v4, "-R", "-P", "8")
    assert min(grew(rx, per_queue(dev, "rx-packets"))) > 100
    # And the same change goes through once the wire can follow.
    run(["ip", "-n", dev.netns, "link", "set", "dev", "eth0", "xdpdrv", "off"], check=True)
    ethtool("sft0", "-L", "combined", str(asked))
    assert device_status("sft0")["queues"] == asked
    assert set(ethtool("sft0", "-x", json_out=True)["indir"]) == set(range(asked))


def test_a_smaller_modelled_device_enforces_its_limits_everywhere(softena_up) -> None:
    softena_up("sft0", "--queues", "2", "--max-queues", "2", "--max-mtu", "2000")
    assert "Combined:\t2" in ethtool("sft0", "-l").split("Current hardware settings:")[0]
    assert "exceeds maximum 2" in refused("sft0", "-L", "combined", "3")
    run(["ip", "link", "set", "sft0", "mtu", "2500"], check=True)
    wait_for(lambda: json.loads(run(["ip", "-j", "link", "show", "sft0"], check=True).stdout)[0]["mtu"] == 1500,
             what="MTU set back")
    proc = run(["softena", "up", "sft1", "--queues", "3", "--max-queues", "2"])
    assert proc.returncode == 1 and "invalid queue count 3: the device supports 1..2" in proc.stderr
    assert device_status("sft0")["queues"] == 2


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
