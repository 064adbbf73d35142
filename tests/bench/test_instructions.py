"""bench/instructions.py: the datapath's instructions per frame, by callgrind, against a commit's."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import bench_module

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "instructions.py"
WIRE_FRAMES = {"tso1500": 45, "tso9000": 8, "csum1500": 1, "rxcsum": 1, "gro45": 1}


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, cwd=ROOT, env=env)


def datapath_is_heads() -> bool:
    return subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--",
                           "softena/datapath/native", "fuzz/ref.h", "bench/c/datapath/icount.c"]).returncode == 0


def test_every_case_is_counted_and_heads_build_counts_the_same() -> None:
    proc = bench("--json", "--frames", "5")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {c["case"]: c["tree"]["wire_frames"] for c in result["cases"]} == WIRE_FRAMES
    for c in result["cases"]:
        assert c["tree"]["instructions"] > 0, c
    if datapath_is_heads():  # always so on a clean checkout, as in CI: two builds, two counts, one number
        assert [c["base"]["instructions"] for c in result["cases"]] == [c["tree"]["instructions"]
                                                                        for c in result["cases"]]
    out = bench("--frames", "5").stdout
    assert "tso1500" in out and "tree / HEAD" in out


def test_the_count_follows_the_code(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same sources built without optimisation count more: the count is the code's, not a constant."""
    mod = bench_module("instructions")
    native, fuzz = str(ROOT / "softena/datapath/native"), str(ROOT / "fuzz")
    counts = {}
    for level in ("-O2", "-O0"):
        monkeypatch.setattr(mod, "CFLAGS", [level, *mod.CFLAGS[1:]])
        exe = str(tmp_path / f"icount{level}")
        mod.build(native, fuzz, exe)
        counts[level] = mod.per_frame(exe, "tso1500", 3, str(tmp_path))["instructions"]
    assert counts["-O0"] > 2 * counts["-O2"] > 0, counts


def test_a_rev_that_is_no_commit_is_refused() -> None:
    proc = bench("--against", "no-such-rev")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"instructions: --against no-such-rev: not a commit of {ROOT}"


def test_without_valgrind_it_says_what_to_install(tmp_path: pathlib.Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gcc", "git"):
        os.symlink(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip(), bin_dir / tool)
    proc = bench(env={**os.environ, "PATH": str(bin_dir)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "instructions: valgrind not found (apt-get install valgrind)"
