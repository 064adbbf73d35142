#!/usr/bin/env python3
"""Instructions per frame of the datapath's C paths, counted by callgrind, this
tree's datapath against another commit's, side by side.

Timings drift on a shared machine; instruction counts do not: the same
build counts the same on every run. So a change to the per-frame code
(sn_pkt.c, sn_csum.c, sn_hw_gro.c) is weighed here first, before the
device-level bench (compare.py) says what it buys.

    python3 bench/instructions.py                 this tree against HEAD
    python3 bench/instructions.py --against REV   against another commit
    python3 bench/instructions.py --json          the counts as JSON

bench/c/datapath/icount.c, built with the datapath's own flags
(softena/datapath/build_native.py's CFLAGS), runs
each case; callgrind collects only the case's function
(--toggle-collect). A case is counted at N and 2N frames and the
difference divided by N, which leaves out set-up and first-call costs.
The harness checks every frame it produced with the fuzzers' reference
parser (fuzz/ref.h), so no count is that of an error path. The baseline is
built from REV's datapath with this tree's harness; a REV whose datapath
the harness cannot build (an older API) is said so, and the tree is
counted alone. Needs gcc, git, valgrind and this checkout's softena
importable (cffi); no root, no device.

Exit status: 0; 2 when a tool is missing, a build or a count fails, or REV
is not a commit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BENCH_DIR, REPO_DIR, BenchError, datapath_cflags, need, run  # noqa: E402
from report import table  # noqa: E402

NATIVE = "softena/datapath/native"
HARNESS = os.path.join(BENCH_DIR, "c", "datapath", "icount.c")
SOURCES = ("sn_pkt.c", "sn_csum.c", "sn_hw_gro.c")
CFLAGS = [*datapath_cflags(), "-Wl,-z,now"]  # the datapath's own, and symbols bound at load, not at first call

# (case, what one frame of it is)
CASES = (
    ("tso1500", "TSO: a 65,066-byte frame cut at MTU 1500"),
    ("tso9000", "TSO at MTU 9000, into 4 KiB UMEM pieces"),
    ("csum1500", "Tx checksum offload, one 1514-byte frame"),
    ("rxcsum", "Rx checksum check and mark, one 1514-byte frame"),
    ("gro45", "Rx coalescing of 45 segments into one frame"),
)


def build(native_dir: str, fuzz_dir: str, exe: str) -> None:
    """The harness against the datapath sources in NATIVE_DIR; a failure names gcc's first error."""
    proc = run(["gcc", *CFLAGS, f"-I{native_dir}", f"-I{fuzz_dir}", "-o", exe, HARNESS,
                *(os.path.join(native_dir, s) for s in SOURCES)], timeout=120, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if " error: " in line]
        raise BenchError(f"gcc: {(errors or proc.stderr.strip().splitlines() or ['failed'])[0]}")


def checkout(rev: str, dest: str) -> None:
    """REV's datapath sources and reference parser into DEST."""
    try:
        run(["git", "-C", REPO_DIR, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], timeout=30)
    except BenchError as exc:
        raise BenchError(f"--against {rev}: not a commit of {REPO_DIR}") from exc
    archive = subprocess.run(["git", "-C", REPO_DIR, "archive", rev, NATIVE, "fuzz/ref.h"],
                             capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    if archive.returncode != 0:
        raise BenchError(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True, timeout=60)


def count(exe: str, case: str, frames: int, workdir: str) -> tuple[int, int, int]:
    """(instructions, wire frames out, bytes in) of FRAMES frames of CASE."""
    out_file = os.path.join(workdir, f"callgrind.{case}.{frames}")
    proc = run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                f"--toggle-collect=case_{case}", exe, case, str(frames)], timeout=300, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{case}: {(proc.stderr.strip() or proc.stdout.strip())[-600:]}")
    _, frames_out, bytes_in = proc.stdout.split()
    with open(out_file) as f:
        totals = [line for line in f if line.startswith("totals:")]
    if not totals:
        raise BenchError(f"{case}: callgrind wrote no totals to {out_file}")
    return int(totals[0].split()[1]), int(frames_out), int(bytes_in)


def per_frame(exe: str, case: str, frames: int, workdir: str) -> dict:
    """Instructions of one frame of CASE: the count at 2*FRAMES less that at FRAMES, over FRAMES."""
    one, frames_out, bytes_in = count(exe, case, frames, workdir)
    two, _, _ = count(exe, case, 2 * frames, workdir)
    return {"instructions": (two - one) // frames, "wire_frames": frames_out, "bytes": bytes_in}


def measure(against: str, frames: int) -> dict:
    """Count every case in this tree's build and in AGAINST's; the result as a dict."""
    need("gcc", "gcc")
    need("valgrind", "valgrind")
    result: dict = {"against": against, "frames": frames, "note": None, "cases": []}
    with tempfile.TemporaryDirectory(prefix="softena-icount-") as tmp:
        tree = os.path.join(tmp, "tree")
        build(os.path.join(REPO_DIR, NATIVE), os.path.join(REPO_DIR, "fuzz"), tree)
        base: str | None = None
        if against:
            need("git", "git")
            src = os.path.join(tmp, "src")
            os.mkdir(src)
            checkout(against, src)
            built = os.path.join(tmp, "base")
            try:
                build(os.path.join(src, NATIVE), os.path.join(src, "fuzz"), built)
                base = built
            except BenchError as exc:
                result["note"] = f"{against}'s datapath does not build with this harness; {exc}"
        for case, what in CASES:
            row: dict[str, Any] = {"case": case, "what": what, "tree": per_frame(tree, case, frames, tmp)}
            row["base"] = per_frame(base, case, frames, tmp) if base else None
            result["cases"].append(row)
    return result


def print_table(result: dict, use_rich: bool) -> None:
    """One row per case: the baseline's and the tree's instructions per frame, and their ratio."""
    body = []
    for r in result["cases"]:
        t, b = r["tree"], r["base"]
        body.append([r["case"], r["what"], str(t["wire_frames"]),
                     f"{b['instructions']:,}" if b else "-", f"{t['instructions']:,}",
                     f"{t['instructions'] / b['instructions']:.3f}x" if b and b["instructions"] else "-",
                     f"{t['instructions'] / t['bytes']:.2f}"])
    against = result["against"] or "-"
    table(f"Instructions per frame (callgrind, {result['frames']} and {2 * result['frames']} frames), "
          f"this tree against {against}",
          ["case", "one frame", "wire frames", against, "tree", "tree / " + against, "per byte"],
          body, {2, 3, 4, 5, 6}, use_rich)
    if result["note"]:
        print(f"note: {result['note']}")


def main(argv: list[str] | None = None) -> int:
    """Print the table (or JSON); 2 when something could not be built or counted."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", default="HEAD", metavar="REV",
                    help="the commit whose datapath is the baseline (default HEAD; '' for none)")
    ap.add_argument("--frames", type=int, default=20, help="N: frames counted, at N and 2N (default 20)")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    ap.add_argument("--rich", action="store_true", help="draw the table with rich")
    args = ap.parse_args(argv)
    if not 1 <= args.frames <= 10000:
        ap.error("--frames must be in 1..10000")
    try:
        result = measure(args.against, args.frames)
    except BenchError as exc:
        print(f"instructions: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args.rich and sys.stdout.isatty())
    return 0


if __name__ == "__main__":
    sys.exit(main())
