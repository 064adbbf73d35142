"""The Rx latency histogram: wire arrival (the XDP program's stamp) to the tap write.

The datapath counts per queue in log2 microsecond buckets (sn_qstats'
rx_latency_us): bucket i holds latencies in (2^(i-1), 2^i] us, the first
those up to 1 us, the last those above 65536 us. They are plain counters, so
retired queues fold into the device base like any other; cumulative
Prometheus buckets and percentiles are made from them here.
"""

from __future__ import annotations

BOUNDS_US = tuple(1 << i for i in range(17))  # 1, 2, 4, ... 65536
KEYS = tuple(f"rx-latency-to-{b}us" for b in BOUNDS_US) + (f"rx-latency-over-{BOUNDS_US[-1]}us",)
SUM_KEY = "rx-latency-sum-ns"
PERCENTILES = (50, 90, 99)


def buckets(counters: dict) -> list[int]:
    """The non-cumulative bucket counts of COUNTERS (zeros where absent)."""
    return [counters.get(k, 0) for k in KEYS]


def delta(new: dict, old: dict | None) -> dict:
    """Buckets and sum counted between two reads of one queue."""
    old = old or {}
    return {k: new.get(k, 0) - old.get(k, 0) for k in (*KEYS, SUM_KEY)}


def count(counters: dict) -> int:
    return sum(buckets(counters))


def cumulative(counters: dict) -> list[tuple[str, int]]:
    """Prometheus buckets: (le in seconds, frames at most that late), ending with +Inf."""
    out, total = [], 0
    for bound, n in zip(BOUNDS_US, buckets(counters)):
        total += n
        out.append((repr(bound / 1e6), total))
    out.append(("+Inf", total + buckets(counters)[-1]))
    return out


def percentile(counters: dict, p: float) -> float | None:
    """The P-th percentile in microseconds, interpolated linearly inside its
    bucket (as Prometheus' histogram_quantile does); None without frames.
    A percentile in the open top bucket is reported at its lower bound."""
    counts = buckets(counters)
    total = sum(counts)
    if not total:
        return None
    rank = total * p / 100
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i == len(BOUNDS_US):
                return float(BOUNDS_US[-1])
            low = 0.0 if i == 0 else float(BOUNDS_US[i - 1])
            return low + (BOUNDS_US[i] - low) * (rank - seen) / n
        seen += n
    return float(BOUNDS_US[-1])


def percentiles(counters: dict) -> dict[str, float | None]:
    """p50, p90, p99 in microseconds."""
    return {f"p{p}": percentile(counters, p) for p in PERCENTILES}


def summary(counters: dict) -> dict:
    """Frames counted, p50/p90/p99 and the mean, in microseconds (None without frames)."""
    n = count(counters)
    return {"frames": n, **percentiles(counters),
            "mean": round(counters.get(SUM_KEY, 0) / n / 1000, 3) if n else None}
