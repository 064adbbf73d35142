"""The libFuzzer harnesses of fuzz/: built against the datapath's C sources,
replayed over the committed corpus, then fuzzed for a bounded time.

A crash, a sanitizer report or a broken invariant fails the test with the
reproducer's path; replay it with `fuzz/build/fuzz_rx PATH` after
`python3 fuzz/build.py`.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
FUZZ_SECONDS = 30  # per harness: CI's budget, about a minute for both
HARNESSES = ("fuzz_rx", "fuzz_tx")


def _load_build():
    spec = importlib.util.spec_from_file_location("fuzz_build", ROOT / "fuzz" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory) -> dict[str, pathlib.Path]:
    return _load_build().build(tmp_path_factory.mktemp("fuzz-build"))


def _corpus(name: str) -> pathlib.Path:
    return CORPUS / name.removeprefix("fuzz_")


def _failure(proc: subprocess.CompletedProcess, artifacts: pathlib.Path) -> str:
    """What a failed run found: the reproducer's path and the report's lines that say why."""
    found = sorted(str(p) for p in artifacts.glob("*-*") if p.is_file())
    why = [line for line in proc.stderr.splitlines()
           if re.search(r"invariant broken|ERROR: |SUMMARY: |runtime error", line)]
    return f"reproducer: {', '.join(found) or 'none written'}\n" + "\n".join(why[:10])


@pytest.mark.parametrize("name", HARNESSES)
def test_corpus_small(name: str) -> None:
    """The committed corpus stays a seed set, not an archive."""
    files = [p for p in _corpus(name).iterdir() if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert files and len(files) <= 400 and size <= 1_500_000, f"{len(files)} files, {size} bytes"


@pytest.mark.parametrize("name", HARNESSES)
def test_corpus_replays(name: str, harnesses: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """Every committed input, the regressions of fixed bugs among them, runs clean."""
    corpus = _corpus(name)
    proc = subprocess.run([str(harnesses[name]), "-runs=0", f"-artifact_prefix={tmp_path}/", str(corpus)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, _failure(proc, tmp_path)
    regressions = [p.name for p in corpus.glob("regress-*")]
    assert regressions, f"{corpus}: no regression inputs"


@pytest.mark.parametrize("name", HARNESSES)
def test_fuzz_bounded(name: str, harnesses: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """Fuzz from the committed corpus for FUZZ_SECONDS: no crash, no broken invariant."""
    grown = tmp_path / "grown"
    grown.mkdir()
    argv = [str(harnesses[name]), f"-max_total_time={FUZZ_SECONDS}", "-timeout=5", "-rss_limit_mb=2048",
            "-print_final_stats=1", f"-artifact_prefix={tmp_path}/", str(grown), str(_corpus(name))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=FUZZ_SECONDS + 90, cwd=tmp_path)
    assert proc.returncode == 0, _failure(proc, tmp_path)
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert runs and int(runs.group(1)) > 1000, f"{name} barely ran: {proc.stderr[-500:]}"
