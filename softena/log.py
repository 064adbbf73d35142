"""Device log lines in a form journald keeps: a priority prefix, then the device."""

from __future__ import annotations

import sys

# sd-daemon(3) priority prefixes, as the kernel's printk levels.
LEVELS = {"err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def log(dev: str, level: str, msg: str) -> None:
    """Print one line: '<6>ena0: message' (journald strips the prefix)."""
    try:
        print(f"<{LEVELS[level]}>{dev}: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # a closed stderr must not stop a teardown half-way

