"""softena trace's parts that need no probes loaded: the BTF reader against
clang's own offsetof, the tracepoint symbol tables, and the table's width."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest
from rich.console import Console

from softena.cli.trace import WIDTH, table
from softena.errors import SoftenaError
from softena.trace import btf, symbols
from softena.trace.tracer import DropKey, Interface

FIELDS = (("sk_buff", "dev"), ("net_device", "ifindex"), ("net_device", "nd_net.net"), ("net", "ns.inum"),
          ("sk_buff", "skb_iif"), ("task_struct", "tgid"))


@pytest.mark.skipif(not os.path.exists(btf.VMLINUX), reason="the kernel has no BTF")
def test_btf_offsets_match_clang(tmp_path):
    """Our reader and clang, given bpftool's C dump of the same BTF, agree on every offset the probes use."""
    header = tmp_path / "vmlinux.h"
    with open(header, "w") as f:
        subprocess.run(["bpftool", "btf", "dump", "file", btf.VMLINUX, "format", "c"], stdout=f, check=True,
                       timeout=60)
    source = tmp_path / "offsets.c"
    source.write_text('#include "vmlinux.h"\nunsigned int offsets[] = {\n' +
                      "".join(f"__builtin_offsetof(struct {s}, {m}),\n" for s, m in FIELDS) + "};\n")
    obj = tmp_path / "offsets.o"
    subprocess.run(["clang", "-target", "bpf", "-O0", "-c", str(source), "-o", str(obj)], check=True, timeout=120)
    subprocess.run(["llvm-objcopy", "-O", "binary", "--only-section=.data", str(obj), str(tmp_path / "d")],
                   check=True, timeout=60)
    data = (tmp_path / "d").read_bytes()
    expected = list(struct.unpack(f"<{len(FIELDS)}I", data[:4 * len(FIELDS)]))
    kernel = btf.Btf.load()
    assert [kernel.offset(s, m) for s, m in FIELDS] == expected


def test_btf_rejects_what_is_not_btf(tmp_path):
    path = tmp_path / "vmlinux"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(SoftenaError, match="not BTF"):
        btf.Btf.load(str(path))


FORMAT = '''name: xdp_exception
format:
\tfield:u32 act;\toffset:12;\tsize:4;\tsigned:0;

print fmt: "prog_id=%d action=%s", REC->prog_id, __print_symbolic(REC->act, { 0, "ABORTED" }, { 1, "DROP" }, \
{ 4, "REDIRECT" }, { -1, ((void *)0) }), REC->ifindex
'''


def test_symbols_from_a_format_file(tmp_path):
    event = tmp_path / "events" / "xdp" / "xdp_exception"
    event.mkdir(parents=True)
    (event / "format").write_text(FORMAT)
    assert symbols.symbols("xdp:xdp_exception", "act", str(tmp_path)) == {0: "ABORTED", 1: "DROP", 4: "REDIRECT"}
    with pytest.raises(SoftenaError, match="no symbolic names for ifindex"):
        symbols.symbols("xdp:xdp_exception", "ifindex", str(tmp_path))


def test_table_fits_80_columns():
    tap = Interface("sft0", "sft0", 5, 4026531840, "tap")
    wire = Interface("sft0", "sft0-wire", 4, 4026531840, "wire")
    totals = {DropKey(tap, "kfree_skb", "UNICAST_IN_L2_MULTICAST"): 123456789,
              DropKey(wire, "xdp_redirect_err", "ENETDOWN"): 7,
              DropKey(tap, "kfree_skb", "NO_SOCKET"): 200}
    rates = {k: float(n) for k, n in totals.items()}
    console = Console(width=WIDTH, record=True)
    console.print(table([tap, wire], rates, totals, 1.0))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= WIDTH
    lines = [line.split() for line in text.splitlines() if "sft0" in line and "(tap)" not in line]
    # Busiest first, each with its reason in the kernel's words.
    assert [line[2] for line in lines] == ["UNICAST_IN_L2_MULTICAST", "NO_SOCKET", "xdp_redirect_err:ENETDOWN"]
