"""softena ynl on a real device: softena's objects where the kernel has none (qstats, NAPIs),
the kernel's own answers untouched for its devices, ynl's errors and output forms, and
notifications from both."""

from __future__ import annotations

import ast
import json
import subprocess
import time

import pytest
from conftest import run, wait_for

from softena.control import ctlsock
from softena.errors import SoftenaError
from softena.netdev.family import napi_slot
from softena.netdev.genl import NetdevGenl

NETNS = "sft-ynl"  # a namespace of this test's own for the kernel's notifications


def ynl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["softena", "ynl", "--family", "netdev", *args], check=check, timeout=30)


def ynl_json(*args: str):
    out = ynl(*args, "--output-json").stdout
    assert out.count("\n") == 1, out
    return json.loads(out)


def ynl_pprint(*args: str):
    """The default output, read back: ynl prints Python literals (sets included)."""
    return ast.literal_eval(ynl(*args).stdout.replace("set()", "[]"))


def kernel(mode: str, op: str, attrs: dict | None = None):
    """The kernel's own answer, straight over generic netlink."""
    with NetdevGenl() as nl:
        return getattr(nl, mode)(op, attrs or {})


def needs_netdev_command(dev) -> None:
    """Until the device answers the netdev family on its control socket, only the kernel's side can be tested."""
    try:
        ctlsock.request(dev.name, "netdev", op="dev-get", attrs={}, dump=True)
    except SoftenaError as exc:
        if "unknown command" in str(exc):
            pytest.skip(f"{dev.name} does not answer the netdev family yet: {exc}")
        raise


def ping(dev, count: int = 20) -> None:
    run(["ping", "-c", str(count), "-i", "0.02", "-W", "2", dev.peer_v4], check=True)


def ours(objs: list[dict], dev) -> list[dict]:
    return [o for o in objs if o.get("ifindex") == dev.status["ifindex"]]


# ---- the kernel's devices: exactly the kernel's answers ----------------------------------------


def test_dev_get_of_lo_is_the_kernels_answer() -> None:
    assert ynl_json("--do", "dev-get", "--json", '{"ifindex": 1}') == \
        json.loads(json.dumps(kernel("do", "dev-get", {"ifindex": 1}), default=list))


def test_an_unknown_napi_id_prints_the_kernels_error_and_exits_1() -> None:
    proc = ynl("--do", "napi-get", "--json", '{"id": 999999}', check=False)
    assert proc.returncode == 1
    assert proc.stdout == ("Netlink error: No such file or directory\n"
                           "nl_len = 44 (28) nl_flags = 0x300 nl_type = 2\n"
                           "\terror: -2\n"
                           "\textack: {'bad-attr': '.id'}\n")


def test_a_missing_attribute_is_named_with_its_doc() -> None:
    proc = ynl("--do", "napi-get", "--json", "{}", check=False)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "\textack: {'miss-type': 'id', 'miss-type-doc': 'ID of the NAPI instance.'}"


def test_other_families_are_refused_in_one_line() -> None:
    proc = run(["softena", "ynl", "--family", "rt-link", "--dump", "getlink"], timeout=30)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "netdev" in proc.stderr


@pytest.fixture
def netns():
    run(["ip", "netns", "add", NETNS], check=True)
    yield NETNS
    run(["ip", "netns", "del", NETNS])


def test_subscribing_to_mgmt_prints_the_kernels_device_notifications(netns) -> None:
    sub = subprocess.Popen(["ip", "netns", "exec", netns, "softena", "ynl", "--family", "netdev",
                            "--subscribe", "mgmt", "--sleep", "3", "--output-json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # subscribed by then
        run(["ip", "-n", netns, "link", "add", "sftv0", "type", "veth", "peer", "name", "sftv1"], check=True)
        run(["ip", "-n", netns, "link", "del", "sftv0"], check=True)
        out, err = sub.communicate(timeout=15)
    finally:
        sub.kill()
        sub.wait()
    assert sub.returncode == 0, err
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert names.count("dev-add-ntf") == 2 and names.count("dev-del-ntf") == 2, names


# ---- softena's devices ---------------------------------------------------------------------------


def test_qstats_per_queue_lists_sft0s_queues_and_grows_with_traffic(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    needs_netdev_command(dev)
    before = ours(ynl_pprint("--dump", "qstats-get", "--json", '{"scope": "queue"}'), dev)
    assert [(q["queue-type"], q["queue-id"]) for q in before] == [("rx", 0), ("rx", 1), ("tx", 0), ("tx", 1)]
    ping(dev)
    after = ours(ynl_pprint("--dump", "qstats-get", "--json", '{"scope": "queue"}'), dev)

    def total(stats, key):
        return sum(q.get(key, 0) for q in stats)

    assert total(after, "rx-packets") - total(before, "rx-packets") >= 20
    assert total(after, "tx-packets") - total(before, "tx-packets") >= 20
    device = ynl_json("--dump", "qstats-get", "--json", f'{{"ifindex": {dev.status["ifindex"]}}}')
    assert len(device) == 1 and device[0]["rx-packets"] >= total(after, "rx-packets")


def test_napi_get_lists_one_napi_per_queue_pair_polled_by_its_worker(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    needs_netdev_command(dev)
    napis = ours(ynl_json("--dump", "napi-get"), dev)
    assert len(napis) == 2
    assert sorted(napi_slot(n["id"])[1] for n in napis) == [0, 1]
    assert {napi_slot(n["id"])[0] for n in napis} == {dev.status["slot"]}
    for n in napis:
        with open(f"/proc/{dev.pid}/task/{n['pid']}/comm") as f:
            assert f.read().strip() == f"softena/sft0-{napi_slot(n['id'])[1]}"


def test_queue_get_shows_sft0s_queues_with_napi_ids_and_lo_as_the_kernel_does(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    needs_netdev_command(dev)
    queues = ynl_json("--dump", "queue-get")
    napi_ids = {n["id"] for n in ours(ynl_json("--dump", "napi-get"), dev)}
    mine = ours(queues, dev)
    assert sorted((q["type"], q["id"]) for q in mine) == [("rx", 0), ("rx", 1), ("tx", 0), ("tx", 1)]
    assert {q["napi-id"] for q in mine} == napi_ids
    assert [q for q in queues if q["ifindex"] == 1] == [q for q in kernel("dump", "queue-get") if q["ifindex"] == 1]
    ifindexes = [q["ifindex"] for q in queues]
    assert ifindexes == sorted(ifindexes)


def test_napi_set_changes_what_napi_get_shows(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    needs_netdev_command(dev)
    nid = ours(ynl_json("--dump", "napi-get"), dev)[0]["id"]
    assert ynl("--do", "napi-set", "--json", json.dumps({"id": nid, "defer-hard-irqs": 10})).stdout == "None\n"
    assert ynl_json("--do", "napi-get", "--json", json.dumps({"id": nid}))["defer-hard-irqs"] == 10


def test_subscribing_to_page_pool_prints_softenas_pools_going_and_coming_on_a_queue_change(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    needs_netdev_command(dev)
    sub = subprocess.Popen(["softena", "ynl", "--family", "netdev", "--subscribe", "page-pool", "--sleep", "4",
                            "--output-json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
        out, err = sub.communicate(timeout=15)
    finally:
        sub.kill()
        sub.wait()
    ntfs = [json.loads(line) for line in out.splitlines()]
    mine = [n for n in ntfs if n["msg"].get("ifindex") == dev.status["ifindex"]]
    names = [n["name"] for n in mine]
    assert names.count("page-pool-del-ntf") == 2 and names.count("page-pool-add-ntf") == 1, (names, err)
    assert names.index("page-pool-add-ntf") > max(i for i, n in enumerate(names) if n == "page-pool-del-ntf")
    wait_for(lambda: len(ours(ynl_json("--dump", "page-pool-get"), dev)) == 1, within=5, what="one pool listed")
