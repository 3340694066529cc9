"""Percentiles the way latency tools report them: nearest rank over the sorted samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(round(p * len(sorted_values) / 100.0, 9)))  # round: 99.9% of 1000 is 999
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99), "p999": percentile(ordered, 99.9)}
