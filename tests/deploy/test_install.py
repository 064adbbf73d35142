"""deploy/install.sh is the one command that installs softena, and a second run changes nothing.

The suite runs after install.sh (the README's test command, and CI, run it
first), so this test runs it once more and compares every file it installs,
and what pip built, before and after: contents, modes, link targets and
modification times.
"""

from __future__ import annotations

import glob
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import softena

ROOT = Path(__file__).resolve().parents[2]


def installed_paths() -> list[str]:
    """What install.sh puts in place: the unit, the example config, man page,
    completion, the command's link, the compiled datapath and BPF objects,
    pip's record of the editable install, and bcc's kernel-header links."""
    pkg = Path(softena.__file__).resolve().parent
    site = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    release = platform.release()
    paths = ["/etc/systemd/system/softena@.service", "/etc/softena/ena0.toml",
             "/usr/local/share/man/man8/softena.8", "/usr/share/bash-completion/completions/softena",
             "/usr/local/bin/softena", f"/lib/modules/{release}/build", f"/lib/modules/{release}/source",
             str(ROOT / ".install-stamp")]
    paths += glob.glob(str(pkg / "datapath" / "*.so")) + glob.glob(str(pkg / "ports" / "*.bpf.o"))
    for s in site:
        paths += glob.glob(os.path.join(s, "softena-*.dist-info", "*")) + glob.glob(os.path.join(s, "*softena*.pth"))
    return sorted(paths)


def manifest() -> dict[str, tuple]:
    """Per path: link target or content hash, mode and mtime (lstat: a link itself, not its target)."""
    out = {}
    for path in installed_paths():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            out[path] = ("absent",)
            continue
        if os.path.islink(path):
            what = "-> " + os.readlink(path)
        else:
            what = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        out[path] = (what, st.st_mode, st.st_mtime_ns)
    return out


def test_a_second_install_changes_nothing() -> None:
    before = manifest()
    assert before[str(ROOT / ".install-stamp")] != ("absent",), "run deploy/install.sh --test before the suite"
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "install.sh"), "--test"], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = manifest()
    changed = {p: (before.get(p), after.get(p)) for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert not changed, f"install.sh changed on its second run: {changed}"
    assert any(p.endswith(".so") for p in after), "no compiled datapath found"
