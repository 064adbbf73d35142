"""The fork counter the end-to-end tests hold the device process to
(tests/forks.py): it counts the processes one forks, not its threads."""

from __future__ import annotations

import os
import subprocess
import threading

from forks import forks_of


def test_counts_forked_processes_not_threads() -> None:
    with forks_of(os.getpid()) as forks:
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
        assert forks.value == 0
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        assert forks.value == 1
        subprocess.run(["true"], check=True)
        assert forks.value == 2


def test_counts_only_the_process_watched() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        with forks_of(child.pid) as forks:
            subprocess.run(["true"], check=True)
            assert forks.value == 0
    finally:
        child.kill()
        child.wait()
