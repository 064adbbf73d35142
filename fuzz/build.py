"""Build the libFuzzer harnesses of fuzz/ against the datapath's own C sources.

    python3 fuzz/build.py [OUTDIR]      (default fuzz/build/)

Each harness is linked with the packet sources it drives, straight from
softena/datapath/native/, under libFuzzer, ASan and UBSan. UBSan's alignment
check is left out: the datapath reads headers in place at Ethernet offsets
(an IPv4 header at 14 bytes is 2-aligned by nature), which x86 allows and
the kernel does alike with its unaligned helpers.

Grow and trim a corpus by hand (the test only replays and briefly fuzzes):
    fuzz/build/fuzz_rx -max_total_time=600 /tmp/new fuzz/corpus/rx
    fuzz/build/fuzz_rx -merge=1 fuzz/corpus/rx.min fuzz/corpus/rx /tmp/new
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
NATIVE = ROOT / "softena" / "datapath" / "native"
CFLAGS = ["-g", "-O1", "-std=gnu11", "-Wall", "-Wno-unused-function",
          "-fsanitize=fuzzer,address,undefined", "-fno-sanitize=alignment",
          "-fno-sanitize-recover=undefined", f"-I{NATIVE}"]

# harness -> the datapath sources it runs
HARNESSES = {
    "fuzz_rx": ("sn_csum.c", "sn_pkt.c", "sn_hw_gro.c"),
    "fuzz_tx": ("sn_csum.c", "sn_pkt.c"),
}


def build(outdir: pathlib.Path, cc: str = "clang") -> dict[str, pathlib.Path]:
    """Compile every harness into OUTDIR; return name -> binary. Raises on a failed build."""
    outdir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, sources in HARNESSES.items():
        binary = outdir / name
        argv = [cc, *CFLAGS, str(ROOT / "fuzz" / f"{name}.c"), *(str(NATIVE / s) for s in sources),
                "-o", str(binary)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            raise RuntimeError(f"{name}: build failed: {proc.stderr.strip()}")
        built[name] = binary
    return built


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "build"
    try:
        for name, path in build(out).items():
            print(f"{name}: {path}")
    except (RuntimeError, OSError) as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        sys.exit(1)
