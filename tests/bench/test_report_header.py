"""The bench's report names the host TCP settings every iperf3 run inherits."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def read_sysctl(path: str) -> str:
    return pathlib.Path(path).read_text().strip()


def report(tmp_path: pathlib.Path, config: dict) -> str:
    """bench/compare.py --report on a saved result with CONFIG and no rows."""
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps({"config": config, "complete": True, "rows": []}))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--report", str(saved)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


BASE = {"smoke": True, "date": "2026-12-01 00:00 UTC", "cpu_model": "x", "cpus": 2, "kernel": "k",
        "queues": 2, "time": 3, "repeat": 2, "elapsed_s": 1.0}


def test_host_tcp_reads_this_machines_settings() -> None:
    """host_tcp() is what /proc/sys says, not a guess: the bench records the algorithm in force."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import compare
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert compare.host_tcp() == {
        "tcp_congestion_control": read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control"),
        "default_qdisc": read_sysctl("/proc/sys/net/core/default_qdisc")}


def test_report_prints_the_host_tcp_line(tmp_path: pathlib.Path) -> None:
    out = report(tmp_path, {**BASE, "tcp_congestion_control": "cubic", "default_qdisc": "fq"})
    assert "  host TCP: congestion control cubic, default qdisc fq\n" in out


def test_a_result_saved_before_the_line_still_prints(tmp_path: pathlib.Path) -> None:
    out = report(tmp_path, BASE)
    assert "host TCP" not in out
    assert out.startswith("softena bench (smoke), 2026-12-01 00:00 UTC")
