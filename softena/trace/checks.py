"""What `softena trace` needs before it compiles anything, each missing piece
named in one line with its fix."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

from softena.errors import SoftenaError
from softena.trace.btf import VMLINUX
from softena.trace.symbols import TRACEFS

# Debian installs bcc (python3-bpfcc) for its own Python only. The PyPI
# package named bcc is something else, so softena cannot depend on it there:
# another Python (a venv, pyenv) loads Debian's copy of that one package.
DIST_PACKAGES = ("/usr/lib/python3/dist-packages",)
EVENTS = ("skb:kfree_skb", "xdp:xdp_exception")


def need_root(euid: int | None = None) -> None:
    if (os.geteuid() if euid is None else euid) != 0:
        raise SoftenaError("needs root (it loads BPF programs into the kernel)")


def import_bcc(search: tuple[str, ...] | None = None) -> ModuleType:
    """The bcc module: this Python's own, or else the distribution's copy;
    with SEARCH, the copy in one of those directories only."""
    if search is None:
        try:
            import bcc
            return bcc
        except ImportError:
            search = DIST_PACKAGES
    for base in search:
        init = os.path.join(base, "bcc", "__init__.py")
        if not os.path.exists(init):
            continue
        spec = importlib.util.spec_from_file_location("bcc", init,
                                                      submodule_search_locations=[os.path.dirname(init)])
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules["bcc"] = module  # its submodules import "bcc.libbcc" by that name
        try:
            spec.loader.exec_module(module)
            return module
        except (ImportError, OSError) as exc:  # e.g. libbcc.so itself missing
            del sys.modules["bcc"]
            raise SoftenaError(f"bcc at {os.path.dirname(init)} does not load ({exc}): "
                               "apt-get install python3-bpfcc") from exc
    raise SoftenaError("needs bcc: apt-get install python3-bpfcc")


def need_tracefs(tracefs: str = TRACEFS) -> None:
    if not os.path.isdir(os.path.join(tracefs, "events")):
        raise SoftenaError(f"tracefs is not mounted at {tracefs}: mount -t tracefs nodev {tracefs}")
    missing = [e for e in EVENTS if not os.path.isdir(os.path.join(tracefs, "events", *e.split(":")))]
    if missing:
        raise SoftenaError(f"the kernel has no tracepoint {', '.join(missing)}")


def need_headers(modules: str | None = None, release: str | None = None) -> None:
    """bcc compiles against /lib/modules/RELEASE/build (struct layouts come from BTF, not from these)."""
    release = release or os.uname().release
    build = os.path.join(modules or "/lib/modules", release, "build")
    if not os.path.isdir(os.path.join(build, "include")):
        raise SoftenaError(f"no kernel headers at {build}: apt-get install linux-headers-{release}, "
                           "or run deploy/install.sh (it links Debian's linux-headers-ARCH and -common there)")


def need_btf(path: str = VMLINUX) -> None:
    if not os.path.exists(path):
        raise SoftenaError(f"the kernel has no BTF at {path}: a kernel built with CONFIG_DEBUG_INFO_BTF")


def prerequisites() -> ModuleType:
    """Check everything in turn and return bcc; raises SoftenaError on the first gap."""
    need_root()
    bcc = import_bcc()
    need_tracefs()
    need_headers()
    need_btf()
    return bcc
