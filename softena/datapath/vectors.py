"""The packet engines' test entry points (sn_vectors.h), a module apart from
the runtime one: built from the pure packet sources, without libxdp or libbpf,
so tests run them against independent vectors without a device or root."""

from __future__ import annotations

from softena.errors import SoftenaError

try:
    from softena.datapath._vectors import ffi, lib  # noqa: F401  (re-exported)
except ImportError as exc:  # pragma: no cover - depends on the install
    raise SoftenaError(f"the C test vectors module is not built ({exc}): install with `pip install .`") from exc
