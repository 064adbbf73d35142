"""Fixtures shared by the packet-engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from softena.datapath.vectors import lib


@pytest.fixture(params=["simd", "portable"])
def csum_loop(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each summing loop of sn_csum.c: AVX2 (skipped on a CPU
    without it) and the portable one; the load-time choice comes back after."""
    simd = request.param == "simd"
    if lib.sn_csum_use_simd(simd) != simd:
        lib.sn_csum_use_simd(1)
        pytest.skip("this CPU has no AVX2")
    try:
        yield request.param
    finally:
        lib.sn_csum_use_simd(1)
