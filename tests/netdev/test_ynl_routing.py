"""softena ynl's routing and printing, against NetdevFamily on stand-in devices and a stand-in
kernel: no root, no device, no netlink."""

from __future__ import annotations

import errno
import json
import pprint
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from softena.cli import ynl as cli
from softena.datapath.datapath import QueueReading
from softena.netdev import ynl
from softena.netdev.family import PAGE_POOL_ID_BASE, NapiSettings, NetdevError, NetdevFamily, napi_id
from softena.netdev.genl import NlError
from softena.netdev.printer import format_error
from softena.netdev.spec import counters


@dataclass
class StandIn:
    """What NetdevFamily reads of a device."""

    name: str
    ifindex: int
    slot: int
    queues: int = 2
    settings: SimpleNamespace = field(init=False)
    workers: list = field(init=False)
    napi_settings: list = field(init=False)
    pool_generation: int = 0
    frame_size: int = 4096

    def __post_init__(self) -> None:
        self.settings = SimpleNamespace(queues=self.queues)
        self.workers = [SimpleNamespace(qid=q, tid=1000 * self.slot + q) for q in range(self.queues)]
        self.napi_settings = [NapiSettings() for _ in range(self.queues)]

    def read_counters(self):
        names = counters("qstats")
        pool_gauges = {"inflight": 4, "cached": 0, "ring": 0, "detach-time": 0}
        queues = [QueueReading(q, counters={n: 10 * (q + 1) for n in names}, pool={n: q for n in counters(
            "page-pool-stats")}, pool_gauges=dict(pool_gauges)) for q in range(self.queues)]
        return SimpleNamespace(queues=queues, queue_totals={n: 30 for n in names})

    def set_napi(self, qid: int, **changes: int) -> None:
        for key, value in changes.items():
            setattr(self.napi_settings[qid], key, value)


class Kernel:
    """The kernel's side as ynl would get it: a tap at ifindex 7 the kernel knows only as tun."""

    def __init__(self, fail: NlError | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple] = []

    def dump(self, op: str, attrs: dict) -> list[dict]:
        self.calls.append(("dump", op, attrs))
        if self.fail:
            raise self.fail
        if op == "queue-get":
            return [{"id": 0, "type": t, "ifindex": i} for i in (1, 4, 7, 9) for t in ("rx", "tx")]
        if op == "dev-get":
            return [{"ifindex": i, "xdp-features": set()} for i in (1, 4, 7, 9)]
        return []

    def do(self, op: str, attrs: dict, flags: int = 0):
        self.calls.append(("do", op, attrs))
        if self.fail:
            raise self.fail
        return {"kernel": op}

    def close(self) -> None:
        pass


@pytest.fixture
def devices(monkeypatch):
    """Two softena devices answering through NetdevFamily as their control socket would, in JSON."""
    stand_ins = {"sft0": StandIn("sft0", 7, slot=0), "sft1": StandIn("sft1", 12, slot=1)}
    families = {name: NetdevFamily(dev) for name, dev in stand_ins.items()}

    def request(dev, cmd, timeout=10.0, **args):
        assert cmd == "netdev"
        try:
            reply = {"reply": families[dev].handle(args["op"], args["attrs"], args["dump"])}
        except NetdevError as exc:
            reply = {"error": exc.as_reply()}
        return json.loads(json.dumps(reply))

    monkeypatch.setattr(ynl.ctlsock, "request", request)
    return stand_ins


def netdev(devices, kernel=None) -> ynl.Netdev:
    listed = [ynl.SoftenaDevice(d.name, d.ifindex, d.slot) for d in devices.values()]
    return ynl.Netdev(listed, kernel or Kernel())


def test_a_dump_merges_softena_devices_in_ifindex_order_replacing_the_kernels_tap(devices) -> None:
    queues = netdev(devices).dump("queue-get", {})
    assert [(q["ifindex"], q["type"], q.get("napi-id")) for q in queues] == [
        (1, "rx", None), (1, "tx", None), (4, "rx", None), (4, "tx", None),
        (7, "rx", 1), (7, "rx", 2), (7, "tx", 1), (7, "tx", 2),  # sft0's own, NAPI ids from slot 0
        (9, "rx", None), (9, "tx", None),
        (12, "rx", 65), (12, "rx", 66), (12, "tx", 65), (12, "tx", 66)]


def test_flag_sets_from_a_device_are_sets_as_ynl_prints_them(devices) -> None:
    devs = netdev(devices).dump("dev-get", {})
    assert [d["ifindex"] for d in devs] == [1, 4, 7, 9, 12]
    assert devs[2]["xdp-features"] == set() and isinstance(devs[2]["xsk-features"], set)


def test_a_request_naming_a_softena_ifindex_never_reaches_the_kernel(devices) -> None:
    kernel = Kernel()
    stats = netdev(devices, kernel).dump("qstats-get", {"ifindex": 12, "scope": "queue"})
    assert kernel.calls == []
    assert [(s["queue-type"], s["queue-id"]) for s in stats] == [("rx", 0), ("rx", 1), ("tx", 0), ("tx", 1)]
    assert all(k.startswith("rx-") for s in stats[:2] for k in s if k not in ("ifindex", "queue-type", "queue-id"))
    assert netdev(devices, kernel).do("dev-get", {"ifindex": 7})["ifindex"] == 7 and kernel.calls == []


def test_a_kernel_ifindex_goes_to_the_kernel_alone(devices) -> None:
    kernel = Kernel()
    netdev(devices, kernel).dump("queue-get", {"ifindex": 4})
    assert kernel.calls == [("dump", "queue-get", {"ifindex": 4})]


def test_napi_ids_route_by_slot_and_napi_set_changes_what_napi_get_shows(devices) -> None:
    kernel = Kernel()
    nd = netdev(devices, kernel)
    nid = napi_id(1, 1)
    assert nd.do("napi-set", {"id": nid, "defer-hard-irqs": 10}) is None
    napi = nd.do("napi-get", {"id": nid})
    assert (napi["ifindex"], napi["pid"], napi["defer-hard-irqs"]) == (12, 1001, 10)
    assert nd.do("napi-get", {"id": 999999}) == {"kernel": "napi-get"}  # above NR_CPUS: the kernel's


def test_a_page_pool_id_of_softena_is_answered_by_the_device_that_owns_it(devices) -> None:
    kernel = Kernel()
    nd = netdev(devices, kernel)
    pool = NetdevFamily(devices["sft1"]).page_pool_id(1)
    assert pool >= PAGE_POOL_ID_BASE
    assert nd.do("page-pool-get", {"id": pool})["ifindex"] == 12
    assert nd.do("page-pool-stats-get", {"info": {"id": pool}})["info"] == {"id": pool, "ifindex": 12}
    with pytest.raises(NlError) as missing:
        nd.do("page-pool-get", {"id": PAGE_POOL_ID_BASE + (9 << 20)})
    assert missing.value.code == errno.ENOENT
    assert kernel.calls == []


def test_a_dump_the_kernel_cannot_answer_still_lists_softenas_objects(devices) -> None:
    kernel = Kernel(fail=NlError(errno.EOPNOTSUPP, 36, 0x100, None))
    stats = netdev(devices, kernel).dump("page-pool-stats-get", {})
    assert [s["info"]["ifindex"] for s in stats] == [7, 7, 12, 12]


def test_a_devices_refusal_prints_as_the_kernels_would(devices) -> None:
    with pytest.raises(NlError) as err:
        netdev(devices).do("queue-get", {"ifindex": 7, "type": "rx", "id": 5})
    e = err.value
    text = format_error(e.code, e.nl_len, e.nl_flags, e.extack, e.nl_type)
    assert text == ("Netlink error: Invalid argument\n"
                    "nl_len = 72 (56) nl_flags = 0x300 nl_type = 2\n"
                    "\terror: -22\n"
                    "\textack: {'msg': 'rx queue out of range', 'bad-attr': '.id'}")


def test_unknown_attributes_and_operations_are_refused_before_anyone_is_asked(devices) -> None:
    kernel = Kernel()
    with pytest.raises(ynl.SpecError, match="Space 'queue' has no attribute 'queue'"):
        netdev(devices, kernel).dump("queue-get", {"queue": 1})
    with pytest.raises(ynl.SpecError, match="unknown operation 'dev-add-ntf'"):
        netdev(devices, kernel).do("dev-add-ntf", {})
    assert kernel.calls == []


def test_merge_keeps_the_kernels_order_and_objects_without_an_ifindex_in_place() -> None:
    kernel = [{"ifindex": 1, "n": 0}, {"n": 1}, {"ifindex": 3, "n": 2}]
    merged = ynl.merge_by_ifindex(kernel, [(2, {"ifindex": 2, "n": "ours"})])
    assert [m["n"] for m in merged] == [0, 1, "ours", 2]


# ---- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_netdev(devices, monkeypatch):
    nd = netdev(devices)
    monkeypatch.setattr(ynl, "Netdev", lambda: nd)
    return nd


def test_the_default_output_is_pprint_of_the_reply(cli_netdev, capsys) -> None:
    assert cli.run(["--family", "netdev", "--dump", "qstats-get", "--json", '{"ifindex": 7}']) == 0
    expected = cli_netdev.dump("qstats-get", {"ifindex": 7})
    assert capsys.readouterr().out == pprint.pformat(expected) + "\n"


def test_output_json_is_one_line_of_json_in_the_kernels_attribute_order(cli_netdev, capsys) -> None:
    assert cli.run(["--family", "netdev", "--do", "dev-get", "--json", '{"ifindex": 7}', "--output-json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"ifindex": 7, "xdp-features": [], "xdp-rx-metadata-features": [], "xsk-features": []}


def test_a_netlink_error_is_printed_on_stdout_with_exit_status_1(cli_netdev, capsys) -> None:
    assert cli.run(["--family", "netdev", "--do", "napi-get", "--json", '{"id": 30}']) == 1
    assert capsys.readouterr().out.startswith("Netlink error: No such file or directory\n")


@pytest.mark.parametrize("argv, message", [
    (["--json", "{id: 1}"], "softena ynl: --json is not valid JSON: "),
    (["--json", '{"bogus": 1}'], "softena ynl: Space 'napi' has no attribute 'bogus'"),
    (["--json", '{"id": "x"}'], "softena ynl: Attribute 'id' takes a number, not 'x'"),
])
def test_bad_json_is_one_line_on_stderr_and_exit_status_1(cli_netdev, capsys, argv, message) -> None:
    assert cli.run(["--family", "netdev", "--do", "napi-get", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_other_families_are_refused_in_one_line_without_a_system_ynl(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert cli.run(["--family", "ethtool", "--dump", "channels-get"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_list_ops_lists_the_tables_operations_with_their_modes(capsys) -> None:
    assert cli.run(["--family", "netdev", "--list-ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "dev-get  [ do, dump ]"
    assert "qstats-get  [ dump ]" in lines and "napi-set  [ do ]" in lines
    assert not any("ntf" in line for line in lines)
