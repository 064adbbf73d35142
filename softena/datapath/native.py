"""The compiled C datapath, with a clear error when the package was not built."""

from __future__ import annotations

from softena.errors import SoftenaError

try:
    from softena.datapath._native import ffi, lib  # noqa: F401  (re-exported)
except ImportError as exc:  # pragma: no cover - depends on the install
    raise SoftenaError(
        f"the C datapath is not built ({exc}): install with `pip install .` "
        "(needs gcc, libxdp-dev, libbpf-dev)") from exc


def error_buffer():
    """A char[] the C side fills with its reason on failure."""
    return ffi.new("char[]", 256)


def error_text(buf) -> str:
    """The reason the C side wrote."""
    return ffi.string(buf).decode(errors="replace")


def struct_fields(ctype: str) -> list[str]:
    """Field names of a C struct, in declaration order."""
    return [name for name, _ in ffi.typeof(ctype).fields]


def struct_to_dict(ptr, ctype: str, arrays: dict[str, tuple[str, ...]] | None = None) -> dict[str, int]:
    """Counters of a C struct, under the netdev family's dashed names; an
    array field is one counter per element, named by ARRAYS[field]."""
    out: dict[str, int] = {}
    for name, f in ffi.typeof(ctype).fields:
        value = getattr(ptr, name)
        if f.type.kind == "array":
            assert arrays is not None, f"{ctype}.{name}: an array field needs its element names"
            out.update(zip(arrays[name], map(int, value), strict=True))
        else:
            out[name.replace("_", "-")] = int(value)
    return out
