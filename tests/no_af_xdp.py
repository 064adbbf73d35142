"""Run a command where the kernel refuses AF_XDP sockets, as systemd's
RestrictAddressFamilies= does: a seccomp filter makes socket(AF_XDP, ...)
fail with EAFNOSUPPORT. Usage: python3 no_af_xdp.py COMMAND [ARGS...]"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
AUDIT_ARCH_X86_64, NR_SOCKET, AF_XDP, EAFNOSUPPORT = 0xC000003E, 41, 44, 97
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
# Classic BPF opcodes: load word absolute, jump if equal, return.
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter() -> None:
    prog = [
        (LD_W_ABS, 0, 0, 4), (JEQ_K, 0, 5, AUDIT_ARCH_X86_64),  # seccomp_data.arch
        (LD_W_ABS, 0, 0, 0), (JEQ_K, 0, 3, NR_SOCKET),  # seccomp_data.nr
        (LD_W_ABS, 0, 0, 16), (JEQ_K, 0, 1, AF_XDP),  # low word of args[0]
        (RET_K, 0, 0, RET_ERRNO | EAFNOSUPPORT), (RET_K, 0, 0, RET_ALLOW),
    ]
    code = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(code)
    fprog = SockFprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0):
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")


if __name__ == "__main__":
    install_filter()
    os.execvp(sys.argv[1], sys.argv[1:])
