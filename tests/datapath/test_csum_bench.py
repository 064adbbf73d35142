"""bench/csum.py builds the checksum microbenchmark from the datapath's source and prints its table."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    """bench/csum.py with ARGS, bounded in time."""
    return subprocess.run([sys.executable, str(ROOT / "bench" / "csum.py"), *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_csum_bench_prints_every_length_with_its_ratios() -> None:
    """One row per run length, every rate a positive number and each ratio against its baseline."""
    proc = run_bench("--seconds", "0.02")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1448", "8948", "9000", "65000"]
    for r in rows:
        assert len(r) == 8
        rates = [float(v) for i, v in enumerate(r[1:], 1) if i not in (3, 7) and v != "-"]
        assert all(v > 0 for v in rates), r
        assert r[7].endswith("x") and float(r[7][:-1]) > 0


def test_csum_bench_refuses_a_time_out_of_range() -> None:
    """A bad --seconds is an argparse error, before anything is built."""
    proc = run_bench("--seconds", "0")
    assert proc.returncode == 2
    assert "--seconds must be in (0, 10]" in proc.stderr
