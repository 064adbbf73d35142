"""Device log lines in a form journald keeps: a priority prefix, then the device."""

from __future__ import annotations

import sys
import traceback

# sd-daemon(3) priority prefixes, as the kernel's printk levels.
LEVELS = {"err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def log(dev: str, level: str, msg: str) -> None:
    """Print one line: '<6>ena0: message' (journald strips the prefix)."""
    try:
        print(f"<{LEVELS[level]}>{dev}: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # a closed stderr must not stop a teardown half-way


def log_exception(dev: str, what: str, exc: BaseException) -> None:
    """Log WHAT failed with EXC, then its traceback, every line an err of DEV's.

    One prefix per line: journald keeps the priority and the device of each.
    """
    log(dev, "err", f"{what}: {type(exc).__name__}: {exc}")
    for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__):
        for line in chunk.rstrip("\n").splitlines():
            log(dev, "err", line)
