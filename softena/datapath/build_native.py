"""cffi (API mode) builder for the C datapath; run by setup.py at install."""

from __future__ import annotations

import pathlib
import re

from cffi import FFI

# setuptools refuses absolute source paths: name them from the project root.
ROOT = pathlib.Path(__file__).resolve().parents[2]
NATIVE = (pathlib.Path(__file__).resolve().parent / "native").relative_to(ROOT)
BPF = pathlib.Path("bpf")


def _cdef() -> str:
    """The declarations between the CDEF markers of softena_dp.h."""
    text = (ROOT / NATIVE / "softena_dp.h").read_text()
    match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", text, re.S)
    if not match:
        raise RuntimeError("softena_dp.h lost its CDEF markers")
    return match.group(1)


SOURCES = ("sn_pkt.c", "sn_rss.c", "sn_lro.c", "sn_pool.c", "sn_rx.c", "sn_xsk.c", "sn_dev.c")

ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "softena.datapath._native",
    '#include "softena_dp.h"',
    sources=[str(NATIVE / name) for name in SOURCES],
    include_dirs=[str(NATIVE), str(BPF)],
    libraries=["xdp", "bpf"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
