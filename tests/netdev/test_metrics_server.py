"""The metrics server's refusal to start: a clear error whatever the OSError carries."""

from __future__ import annotations

import time
import types

import pytest

from softena.errors import SoftenaError
from softena.netdev import metrics


@pytest.mark.parametrize("error, says", [(OSError(98, "Address already in use"), "address already in use"),
                                         (OSError("no reason given"), "no reason given")])
def test_a_port_that_cannot_be_served_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, error: OSError,
                                                        says: str) -> None:
    """An OSError with an errno has a strerror; one raised with a message alone has none, and
    must not turn into an AttributeError on the way to the user."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(metrics, "make_server", refuse)
    with pytest.raises(SoftenaError) as exc:
        metrics.MetricsServer(types.SimpleNamespace(name="sft0"), "127.0.0.1", 9100)
    assert str(exc.value) == (f"sft0: metrics port 127.0.0.1:9100: {says}; "
                              "choose another with --metrics-port N, or --no-metrics")


def test_an_idle_server_sleeps_until_closed_and_closes_at_once() -> None:
    """No timed wake-ups while nobody scrapes (serve_forever polls twice a second)."""
    server = metrics.MetricsServer(types.SimpleNamespace(name="sft0"), "127.0.0.1", 0)
    try:
        assert server.thread is not None
        time.sleep(0.2)
        with open(f"/proc/self/task/{server.thread.native_id}/schedstat") as f:
            before = int(f.read().split()[2])
        time.sleep(1.0)
        with open(f"/proc/self/task/{server.thread.native_id}/schedstat") as f:
            assert int(f.read().split()[2]) == before
    finally:
        start = time.monotonic()
        server.close()
    assert not server.thread.is_alive() and time.monotonic() - start < 0.5
