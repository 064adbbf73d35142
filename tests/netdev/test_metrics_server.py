"""The metrics server's refusal to start: a clear error whatever the OSError carries."""

from __future__ import annotations

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
