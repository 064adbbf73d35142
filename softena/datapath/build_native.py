"""cffi (API mode) builders for the C datapath; run by setup.py at install.

Two modules: softena.datapath._native, the runtime surface the device calls
(softena_dp.h), linked with libxdp and libbpf; and softena.datapath._vectors,
the packet engines' test entry points (sn_vectors.h), built from the pure
packet sources alone.
"""

from __future__ import annotations

import pathlib
import re

from cffi import FFI

# setuptools refuses absolute source paths: name them from the project root.
ROOT = pathlib.Path(__file__).resolve().parents[2]
NATIVE = (pathlib.Path(__file__).resolve().parent / "native").relative_to(ROOT)
BPF = pathlib.Path("bpf")
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function"]

# The packet engines: they know frames, not queues, sockets or devices.
PACKET_SOURCES = ("sn_csum.c", "sn_pkt.c", "sn_rss.c", "sn_hw_gro.c")
RUNTIME_SOURCES = PACKET_SOURCES + ("sn_pool.c", "sn_rx.c", "sn_xsk.c", "sn_tap.c", "sn_dev.c", "sn_steer.c",
                                    "sn_rfs.c", "sn_bpfobj.c")
VECTOR_SOURCES = PACKET_SOURCES + ("sn_vectors.c",)


def _cdef(*headers: str) -> str:
    """The declarations between the CDEF markers of HEADERS, in order."""
    blocks = []
    for header in headers:
        text = (ROOT / NATIVE / header).read_text()
        match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", text, re.S)
        if not match:
            raise RuntimeError(f"{header} lost its CDEF markers")
        blocks.append(match.group(1))
    return "\n".join(blocks)


def _builder(module: str, header: str, sources: tuple[str, ...], **link) -> FFI:
    ffi = FFI()
    ffi.cdef(_cdef("sn_rss.h", header))
    ffi.set_source(module, f'#include "{header}"', sources=[str(NATIVE / name) for name in sources],
                   include_dirs=[str(NATIVE), str(BPF)], extra_compile_args=CFLAGS, **link)
    return ffi


ffibuilder = _builder("softena.datapath._native", "softena_dp.h", RUNTIME_SOURCES, libraries=["xdp", "bpf"])
vectors_builder = _builder("softena.datapath._vectors", "sn_vectors.h", VECTOR_SOURCES)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    vectors_builder.compile(verbose=True)
