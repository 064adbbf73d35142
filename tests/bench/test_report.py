"""The bench's report: the host TCP settings every iperf3 run inherits, and how far each round
was from its floor."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]


def read_sysctl(path: str) -> str:
    return pathlib.Path(path).read_text().strip()


def bench_module(name: str) -> types.ModuleType:
    """Import bench/NAME.py as the bench itself runs it (its folder first on sys.path)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def report(tmp_path: pathlib.Path, config: dict, rows: list[dict] | None = None) -> str:
    """bench/compare.py --report on a saved result with CONFIG and ROWS (judged, as the bench saves them)."""
    rows = rows or []
    bench_module("report").judge(rows)
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps({"config": config, "complete": True, "rows": rows}))
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
