"""sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET, a path or an abstract '@' name, or nothing."""

from __future__ import annotations

import os
import socket

import pytest

from softena.control import sdnotify


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_sends_one_datagram_of_lines(tmp_path, monkeypatch, abstract: bool) -> None:
    name = f"@softena-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name[1:] if abstract else name)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", name)
        assert sdnotify.notify("READY=1", "STATUS=sft0: 2 queue pairs")
        assert listener.recv(4096) == b"READY=1\nSTATUS=sft0: 2 queue pairs"


def test_notify_does_nothing_without_a_notify_socket(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")


def test_notify_to_a_manager_gone_is_no_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody"))
    assert not sdnotify.notify("STOPPING=1")
