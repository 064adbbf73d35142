"""Build steps pyproject.toml cannot express: the cffi datapath and the XDP object."""

from __future__ import annotations

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The wire's XDP program, the software wires' steering programs, the host's RFS recorder.
BPF_PROGRAMS = {"bpf/softena_xdp.bpf.c": "softena/ports/softena_xdp.bpf.o",
                "bpf/softena_steer.bpf.c": "softena/ports/softena_steer.bpf.o",
                "bpf/softena_rfs.bpf.c": "softena/ports/softena_rfs.bpf.o"}


class BuildWithBpf(build_ext):
    """Compile the BPF programs with clang next to the C datapath."""

    def run(self) -> None:
        super().run()
        clang = shutil.which("clang")
        if clang is None:
            raise SystemExit("softena: clang is needed to build bpf/ (apt-get install clang)")
        machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        for source, obj in BPF_PROGRAMS.items():
            out = obj if self.inplace else os.path.join(self.build_lib, obj)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            # Debian keeps asm/types.h under the multiarch include directory.
            subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{machine}",
                            "-Ibpf", "-c", source, "-o", out], check=True)


setup(
    cffi_modules=["softena/datapath/build_native.py:ffibuilder",
                  "softena/datapath/build_native.py:vectors_builder"],
    cmdclass={"build_ext": BuildWithBpf},
)
