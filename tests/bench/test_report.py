"""The bench's report: the host TCP settings and the iperf3 every run uses, and how far each
round was from its floor."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import bench_module

ROOT = pathlib.Path(__file__).resolve().parents[2]


def read_sysctl(path: str) -> str:
    return pathlib.Path(path).read_text().strip()


def report(tmp_path: pathlib.Path, config: dict, rows: list[dict] | None = None,
           throughput: list[dict] | None = None) -> str:
    """bench/compare.py --report on a saved result with CONFIG, ROWS (judged, as the bench saves them)
    and the THROUGHPUT table's rows."""
    rows = rows or []
    bench_module("report").judge(rows)
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps({"config": config, "complete": True, "rows": rows, "throughput": throughput or []}))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--report", str(saved)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


BASE = {"smoke": True, "date": "2026-12-01 00:00 UTC", "cpu_model": "x", "cpus": 2, "kernel": "k",
        "queues": 2, "time": 3, "repeat": 2, "elapsed_s": 1.0}


def test_host_tcp_reads_this_machines_settings() -> None:
    """host_tcp() is what /proc/sys says, not a guess: the bench records the algorithm in force."""
    assert bench_module("compare").host_tcp() == {
        "tcp_congestion_control": read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control"),
        "default_qdisc": read_sysctl("/proc/sys/net/core/default_qdisc")}


def test_report_prints_the_host_tcp_line(tmp_path: pathlib.Path) -> None:
    out = report(tmp_path, {**BASE, "tcp_congestion_control": "cubic", "default_qdisc": "fq"})
    assert "  host TCP: congestion control cubic, default qdisc fq\n" in out


def test_a_result_saved_before_the_line_still_prints(tmp_path: pathlib.Path) -> None:
    out = report(tmp_path, BASE)
    assert "host TCP" not in out
    assert out.startswith("softena bench (smoke), 2026-12-01 00:00 UTC")


def test_use_iperf3_reads_the_version_of_the_binary_it_picks() -> None:
    """The version is what the installed iperf3 prints, and 3.16 is where its -P streams get threads."""
    common = bench_module("common")
    path = shutil.which("iperf3")
    assert path, "the tests install iperf3"
    printed = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    tool = common.use_iperf3("iperf3")
    assert tool["path"] == path
    assert printed.startswith(f"iperf {tool['version']}")
    major_minor = tuple(int(p) for p in tool["version"].split(".")[:2])
    assert tool["threads_per_stream"] == (major_minor >= (3, 16))


@pytest.mark.parametrize("text, version", [("iperf 3.12 (cJSON 1.7.15)\nLinux vm 6.18", (3, 12)),
                                           ("iperf 3.21 (cJSON 1.7.15)", (3, 21)),
                                           ("iperf 3.19.1 (cJSON 1.7.15)", (3, 19, 1)),
                                           ("iperf version 2.1.8 (14 March 2022) pthreads", None),
                                           ("", None)])
def test_iperf3_version_line(text: str, version: tuple[int, ...] | None) -> None:
    """iperf 2 (a different tool, `iperf`) and empty output are not taken for an iperf3."""
    assert bench_module("common").parse_iperf3_version(text) == version


def test_a_bad_iperf3_is_refused_before_anything_is_created(tmp_path: pathlib.Path) -> None:
    """--iperf3 with a missing path or a program that is not iperf3: a clear error, exit 2, and
    (being refused before the lab) no namespace made."""
    fake = tmp_path / "iperf3"
    fake.write_text("#!/bin/sh\necho 'not a network tool'\n")
    fake.chmod(0o755)
    for arg, says in ((str(tmp_path / "missing"), "iperf3 not found"), (str(fake), "is not an iperf3")):
        before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--smoke", "--iperf3", arg],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2
        assert says in proc.stderr
        after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        assert after == before


def test_report_names_the_iperf3(tmp_path: pathlib.Path) -> None:
    old = report(tmp_path, {**BASE, "iperf3": {"path": "/usr/bin/iperf3", "version": "3.12",
                                                "threads_per_stream": False}})
    assert "  iperf3 3.12 (/usr/bin/iperf3): every -P stream in one thread\n" in old
    new = report(tmp_path, {**BASE, "iperf3": {"path": "/opt/iperf3", "version": "3.21",
                                                "threads_per_stream": True}})
    assert "  iperf3 3.21 (/opt/iperf3): a thread per -P stream\n" in new
    assert "-P stream" not in report(tmp_path, BASE)  # saved before it was recorded


def ratio_row(test: str, round_ratios: list[float], floor: float | None = 1.0) -> dict:
    """A throughput comparison as throughput.summarize() makes it: the median of the rounds' ratios."""
    ratio = sorted(round_ratios)[len(round_ratios) // 2]
    return {"section": "throughput", "item": "1", "case": "softena-xdp@1500", "test": test,
            "value": 9.0 * ratio, "unit": "Gbit/s", "baseline": "veth+xdp@1500", "baseline_value": 9.0,
            "ratio": ratio, "round_ratios": round_ratios, "floor": floor, "kind": "ratio>="}


def table_line(out: str, test: str) -> str:
    return next(line for line in out.splitlines() if f" {test} " in line)


def test_each_ratio_shows_the_range_of_its_rounds(tmp_path: pathlib.Path) -> None:
    out = report(tmp_path, BASE, [ratio_row("1 stream tx", [0.97, 0.91, 1.02]),
                                  ratio_row("1 stream rx", [1.04], floor=None)])
    assert "rounds: their range" in out
    assert table_line(out, "1 stream tx").split()[-5:] == ["0.97", "0.91-1.02", ">=", "1.00x", "FAIL"]
    assert table_line(out, "1 stream rx").split()[-4:] == ["1.04", "-", "-", "-"]  # one round: no range


def test_a_failed_floor_says_in_how_many_rounds_it_was_met(tmp_path: pathlib.Path) -> None:
    """An edge (met in some rounds) reads apart from a clear miss (met in none)."""
    out = report(tmp_path, BASE, [ratio_row("1 stream tx", [0.97, 0.91, 1.02]),
                                  ratio_row("1 stream rx", [0.80, 0.85, 0.82])])
    floors = next(line for line in out.splitlines() if line.startswith("Floors:"))
    assert floors == ("Floors: 0/2 PASS; not passed: "
                      "softena-xdp@1500 1 stream tx vs veth+xdp@1500 FAIL (met in 1 of 3 rounds); "
                      "softena-xdp@1500 1 stream rx vs veth+xdp@1500 FAIL")


def smoke_result(collapsed: dict[str, list[float]]) -> dict:
    """A judged smoke result whose 1-stream cases have these rounds' ratios (floor 1.0)."""
    rows = [ratio_row(test, rounds) for test, rounds in collapsed.items()]
    bench_module("report").judge(rows)
    return {"rows": rows, "collapse": any(r["collapse"] for r in rows)}


@pytest.mark.parametrize("second, status, confirmed", [
    ({"1 stream tx": [0.40, 0.45], "1 stream rx": [0.90, 0.95]}, 1, True),   # the same case again
    ({"1 stream tx": [0.40, 0.70], "1 stream rx": [0.90, 0.95]}, 0, False),  # one round above half
    ({"1 stream tx": [0.90, 0.95], "1 stream rx": [0.30, 0.35]}, 0, False),  # another case: not the same
])
def test_a_smoke_collapse_fails_only_when_a_second_run_repeats_it(
        monkeypatch: pytest.MonkeyPatch, second: dict, status: int, confirmed: bool) -> None:
    """CI gates on the smoke: a case below half its floor in every round of two
    smoke runs in a row, never one bad run (compare.py --smoke's exit status)."""
    compare = bench_module("compare")
    first = smoke_result({"1 stream tx": [0.30, 0.41], "1 stream rx": [0.90, 0.95]})
    runs = iter([(0, first), (0, smoke_result(second))])
    emitted: list[dict] = []
    monkeypatch.setattr(compare, "use_iperf3", lambda path: {"path": path})
    monkeypatch.setattr(compare, "run_once", lambda args, tool: next(runs))
    monkeypatch.setattr(compare, "emit", lambda args, result: emitted.append(result))
    assert compare.main(["--smoke"]) == status
    assert [len(r["rows"]) for r in emitted] == [2, 2]  # both runs' tables are printed
    assert emitted[1]["confirming"] == ["softena-xdp@1500 1 stream tx vs veth+xdp@1500"]


def test_a_smoke_without_a_collapse_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compare = bench_module("compare")
    calls: list[int] = []

    def run_once(args: object, tool: object) -> tuple[int, dict]:
        calls.append(1)
        return 0, smoke_result({"1 stream tx": [0.45, 0.55]})  # FAIL, one round above half: no collapse

    monkeypatch.setattr(compare, "use_iperf3", lambda path: {"path": path})
    monkeypatch.setattr(compare, "run_once", run_once)
    monkeypatch.setattr(compare, "emit", lambda args, result: None)
    assert compare.main(["--smoke"]) == 0
    assert calls == [1]


def test_a_smoke_that_could_not_run_says_so_without_a_second_run(monkeypatch: pytest.MonkeyPatch) -> None:
    compare = bench_module("compare")
    runs = iter([(2, {"rows": [], "collapse": True})])
    monkeypatch.setattr(compare, "use_iperf3", lambda path: {"path": path})
    monkeypatch.setattr(compare, "run_once", lambda args, tool: next(runs))
    monkeypatch.setattr(compare, "emit", lambda args, result: None)
    assert compare.main(["--smoke"]) == 2


def test_cost_pairs_each_rounds_cpu_with_that_rounds_throughput() -> None:
    """A round that carried nothing leaves the cost to the rounds that did, each CPU over its own Gbit/s."""
    throughput, cost = bench_module("throughput"), bench_module("cost")
    plan = throughput.make_plan(4, True, [])
    second = cost.CpuUse(wall=3.0, process=1.5, workers={"q0": 1.2})
    third = cost.CpuUse(wall=3.0, process=3.0, workers={"q0": 2.4})
    samples = [throughput.Sample("softena-xdp@1500", "1 stream tx", 0, None, error="iperf3 failed"),
               throughput.Sample("softena-xdp@1500", "1 stream tx", 1, 5.0, cpu=second),
               throughput.Sample("softena-xdp@1500", "1 stream tx", 2, 10.0, cpu=third)]
    rows, _ = throughput.summarize(plan, samples)
    row = next(r for r in rows if r["path"] == "softena-xdp@1500")
    assert row["cpu_s_per_gbit"] == {"process": 0.1, "q0": 0.08}  # 1.5/(5*3) and 3.0/(10*3); 1.2/15, 2.4/30
    assert row["device_cpu_pct"] == 75.0  # the median of 50% and 100%


def test_each_throughput_row_keeps_what_the_hypervisor_stole_in_its_rounds(tmp_path: pathlib.Path) -> None:
    """A row's stolen share is the median of its rounds', each round's kept; the report shows it
    beside the run's whole share in its header."""
    throughput = bench_module("throughput")
    plan = throughput.make_plan(4, True, [])
    samples = [throughput.Sample("veth@1500", "1 stream tx", r, 15.0, stolen_pct=pct)
               for r, pct in enumerate((2.0, 30.0, 4.0))]
    rows, _ = throughput.summarize(plan, samples)
    row = next(r for r in rows if r["path"] == "veth@1500")
    assert row["stolen_pct"] == 4.0 and row["samples_stolen_pct"] == [2.0, 30.0, 4.0]
    out = report(tmp_path, {**BASE, "stolen_pct": 7.25}, throughput=rows)
    assert "  hypervisor: 7.2% of the CPUs' time stolen during the run" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("veth@1500"))
    assert line.split()[-1] == "4.0"


def test_the_bench_moderates_veth_as_softena_moderates_its_lab_peer() -> None:
    """(b)+coalesced is (b) given the lab peer's receive; the bench names the value itself."""
    from softena.ports.lab import PEER_RX_USECS

    assert bench_module("topology").PEER_RX_USECS == PEER_RX_USECS


def test_the_full_plan_shows_the_unmoderated_peer_and_the_moderated_baseline() -> None:
    throughput = bench_module("throughput")
    plan = throughput.make_plan(4, False, [])
    assert plan.paths["softena-xdp+inline@1500"].peer_inline
    assert plan.paths["veth+xdp+coalesced@1500"].coalesced
    pairs = {(c.path, c.baselines) for c in plan.comparisons if c.test == "1 stream tx"}
    assert ("softena-xdp@1500", ("veth+xdp@1500",)) in pairs  # floor 1, against (b) as it is
    assert ("softena-xdp@1500", ("veth+xdp+coalesced@1500",)) in pairs
    assert ("softena-xdp+inline@1500", ("veth+xdp@1500",)) in pairs
