"""The Rx latency histogram's arithmetic: log2 us buckets to Prometheus buckets and percentiles."""

from __future__ import annotations

import pytest

from softena.datapath import latency


def test_buckets_are_log2_microseconds_from_1_to_65536_and_an_open_top() -> None:
    assert latency.BOUNDS_US[:4] == (1, 2, 4, 8) and latency.BOUNDS_US[-1] == 65536
    assert len(latency.KEYS) == len(latency.BOUNDS_US) + 1
    assert latency.KEYS[0] == "rx-latency-to-1us" and latency.KEYS[-1] == "rx-latency-over-65536us"


def test_prometheus_buckets_are_cumulative_in_seconds_and_end_at_inf() -> None:
    counts = {"rx-latency-to-4us": 3, "rx-latency-to-64us": 2, "rx-latency-over-65536us": 1}
    buckets = latency.cumulative(counts)
    assert buckets[0] == ("1e-06", 0) and buckets[2] == ("4e-06", 3) and buckets[6] == ("6.4e-05", 5)
    assert buckets[-2] == ("0.065536", 5) and buckets[-1] == ("+Inf", 6)


def test_percentiles_interpolate_inside_their_bucket() -> None:
    counts = {"rx-latency-to-2us": 50, "rx-latency-to-128us": 50}
    assert latency.percentile(counts, 50) == 2.0
    assert latency.percentile(counts, 25) == 1.5
    assert latency.percentile(counts, 99) == pytest.approx(64 + 64 * 49 / 50)
    assert latency.percentile({}, 50) is None
    assert latency.percentile({"rx-latency-over-65536us": 4}, 99) == 65536.0


def test_summary_gives_frames_p50_p90_p99_and_the_mean() -> None:
    s = latency.summary({"rx-latency-to-8us": 4, latency.SUM_KEY: 24_000})
    assert s["frames"] == 4 and s["mean"] == 6.0 and 4 < s["p50"] <= s["p90"] <= s["p99"] <= 8
