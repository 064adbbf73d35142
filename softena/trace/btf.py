"""Field offsets of kernel structs, read from the running kernel's BTF.

bcc compiles its programs against the kernel headers it finds, and on a
kernel without its own headers package those are another kernel's: the
layout of sk_buff, net_device or net differs between them. The kernel's own
type information (/sys/kernel/btf/vmlinux) does not, so the probes read
fields at offsets taken from it. Written by hand because no maintained
Python package reads BTF, and only struct members are needed: the format is
the kernel's Documentation/bpf/btf.rst.
"""

from __future__ import annotations

import struct

from softena.errors import SoftenaError

VMLINUX = "/sys/kernel/btf/vmlinux"

# Kinds (btf.h BTF_KIND_*) and the bytes that follow each type's 12-byte head.
STRUCT, UNION, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG = 4, 5, 8, 9, 10, 11, 18
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}  # INT, ARRAY, VAR, DECL_TAG
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64
_QUALIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}


class Btf:
    """The types of one BTF blob: enough to find where a struct's member lies."""

    def __init__(self, data: bytes) -> None:
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != 0xEB9F:
            raise SoftenaError("not BTF (bad magic); a kernel with CONFIG_DEBUG_INFO_BTF is needed")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        self._strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
        # Index 0 is void; the others as laid out: (kind, name_off, size_or_type, members).
        self.types: list[tuple[int, int, int, list[tuple[int, int, int]]]] = [(0, 0, 0, [])]
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        while pos < end:
            name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
            kind, vlen, kind_flag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
            pos += 12
            members = []
            if kind in (STRUCT, UNION):
                for _ in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", data, pos)
                    # With kind_flag set, the top 8 bits hold a bitfield's size.
                    members.append((m_name, m_type, m_off & 0xFFFFFF if kind_flag else m_off))
                    pos += 12
            else:
                pos += _FIXED_EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen
            self.types.append((kind, name_off, size_or_type, members))

    @classmethod
    def load(cls, path: str = VMLINUX) -> Btf:
        try:
            with open(path, "rb") as f:
                return cls(f.read())
        except OSError as exc:
            raise SoftenaError(f"cannot read the kernel's BTF {path}: {exc.strerror}") from exc

    def name(self, type_id: int) -> str:
        return self.name_at(self.types[type_id][1])

    def struct_id(self, name: str) -> int:
        """The id of struct (or union, or typedef of one) NAME."""
        for type_id, (kind, name_off, _, _) in enumerate(self.types):
            if kind in (STRUCT, UNION, TYPEDEF) and name_off and self.name(type_id) == name:
                return self._resolve(type_id)
        raise SoftenaError(f"the kernel's BTF has no struct {name}")

    def _resolve(self, type_id: int) -> int:
        while self.types[type_id][0] in _QUALIFIERS:
            type_id = self.types[type_id][2]
        return type_id

    def _member(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(bit offset, type id) of NAME in a struct/union, looking inside anonymous ones."""
        for m_name, m_type, m_off in self.types[type_id][3]:
            if m_name and self.name_at(m_name) == name:
                return m_off, self._resolve(m_type)
            inner = self._resolve(m_type)
            if not m_name and self.types[inner][0] in (STRUCT, UNION):
                found = self._member(inner, name)
                if found:
                    return m_off + found[0], found[1]
        return None

    def name_at(self, off: int) -> str:
        return self._strings[off:self._strings.index(b"\0", off)].decode()

    def offset(self, struct_name: str, path: str) -> int:
        """Byte offset of PATH (members joined by dots, e.g. "ns.inum") in struct STRUCT_NAME."""
        type_id, bits = self.struct_id(struct_name), 0
        for part in path.split("."):
            found = self._member(type_id, part)
            if found is None:
                raise SoftenaError(f"the kernel's struct {struct_name} has no member {path}")
            bits, type_id = bits + found[0], found[1]
        if bits % 8:
            raise SoftenaError(f"struct {struct_name} member {path} is a bitfield")
        return bits // 8
