"""The lab peer's adaptive moderation: when the rate classifier turns it on and off."""

from __future__ import annotations

from softena.ports.peerdim import BUSY_PPS, IDLE_PPS, IDLE_SAMPLES, MODERATED, UNMODERATED, RateClassifier


def feed(classifier: RateClassifier, rates: list[float]) -> list[bool]:
    return [classifier.sample(r) for r in rates]


def test_a_ping_and_a_request_response_rate_stay_unmoderated() -> None:
    assert feed(RateClassifier(), [0, 1_000, 15_000, BUSY_PPS - 1] * 10) == [False] * 40


def test_the_first_sample_of_a_stream_moderates() -> None:
    assert feed(RateClassifier(), [1_000, BUSY_PPS, 300_000]) == [False, True, True]


def test_moderation_ends_only_after_enough_quiet_samples_in_a_row() -> None:
    c = RateClassifier()
    c.sample(400_000)
    # A pause shorter than IDLE_SAMPLES, or a rate between the two thresholds, keeps it on.
    assert feed(c, [0] * (IDLE_SAMPLES - 1) + [IDLE_PPS] + [0] * (IDLE_SAMPLES - 1)) == [True] * (2 * IDLE_SAMPLES - 1)
    assert c.sample(0) is False
    assert c.moderated is False


def test_the_thresholds_leave_a_gap_and_the_profiles_differ() -> None:
    assert IDLE_PPS < BUSY_PPS
    assert MODERATED.as_attrs() == {"defer-hard-irqs": 1, "gro-flush-timeout": 50_000}
    assert UNMODERATED.as_attrs() == {"defer-hard-irqs": 0, "gro-flush-timeout": 0}
