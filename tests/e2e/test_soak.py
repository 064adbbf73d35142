"""CI's short soak (issue 12, item 6): bench/soak.py for a minute. Its own
checks decide (exit 1 on any failed one, 2 if it could not run or clean up);
the table it prints is in the failure message."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_a_minute_of_traffic_resets_and_reconfiguration_leaks_nothing_and_counts_every_frame(softena_up) -> None:
    # softena_up brings nothing up here: it checks that the soak left nothing behind.
    proc = subprocess.run([sys.executable, str(BENCH), "--duration", "60", "--dev", "sftsoak"],
                          capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(BENCH.parents[1])})
    report = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert "FAIL" not in proc.stdout, report
