#!/usr/bin/env python3
"""The datapath's checksum loops side by side: a microbenchmark of sn_csum.c.

Builds bench/c/datapath/csum.c with the datapath's own sn_csum.c and prints,
per run length, the portable and the AVX2 sum, and the two ways to copy a
payload and sum it (a memcpy then a sum, as TSO and the jumbo Rx gather did;
the fused copy-and-sum they use now), each as GB/s and as a ratio to its
baseline measured in the same run. Hot cache, one thread; no device, no
root. The device-level effect is measured by CPU per Gbit (compare.py).

    python3 bench/csum.py [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BENCH_DIR, REPO_DIR, BenchError, datapath_cflags, run  # noqa: E402
from report import table  # noqa: E402

NATIVE = os.path.join(REPO_DIR, "softena", "datapath", "native")
SOURCE = os.path.join(BENCH_DIR, "c", "datapath", "csum.c")


def measure(seconds: float) -> list[dict]:
    """Build and run the microbenchmark; one dict of GB/s per run length."""
    with tempfile.TemporaryDirectory(prefix="softena-csum-") as tmp:
        exe = os.path.join(tmp, "csum")
        run(["gcc", *datapath_cflags(), f"-I{NATIVE}", "-o", exe,
             SOURCE, os.path.join(NATIVE, "sn_csum.c")], timeout=60)
        out = run([exe, str(seconds)], timeout=60 + 40 * seconds).stdout
    rows = []
    for line in out.splitlines():
        length, portable, simd, copy, copy_then_sum, fused = line.split()
        rows.append({"len": int(length), "portable": float(portable),
                     "simd": None if simd == "-" else float(simd), "memcpy": float(copy),
                     "memcpy+portable": float(copy_then_sum), "fused": float(fused)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table; 1 on a failed build or run."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="time per case (default 0.3 s)")
    ap.add_argument("--rich", action="store_true", help="draw the table with rich")
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 10:
        ap.error("--seconds must be in (0, 10]")
    try:
        rows = measure(args.seconds)
    except BenchError as exc:
        print(f"csum: {exc}", file=sys.stderr)
        return 1
    body = []
    for r in rows:
        simd = "-" if r["simd"] is None else f"{r['simd']:.1f}"
        simd_x = "-" if r["simd"] is None else f"{r['simd'] / r['portable']:.2f}x"
        body.append([str(r["len"]), f"{r['portable']:.1f}", simd, simd_x, f"{r['memcpy']:.1f}",
                     f"{r['memcpy+portable']:.1f}", f"{r['fused']:.1f}",
                     f"{r['fused'] / r['memcpy+portable']:.2f}x"])
    table("sn_csum.c, GB/s over runs of LEN bytes (hot cache, one thread)",
          ["len", "portable sum", "AVX2 sum", "vs portable", "memcpy", "memcpy, then sum",
           "fused copy+sum", "vs memcpy, then sum"], body, set(range(8)), args.rich)
    return 0


if __name__ == "__main__":
    sys.exit(main())
