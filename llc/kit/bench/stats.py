"""Percentiles for the benches: one definition, so every bench's p99 means the same thing."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The value at percentile ``q`` (0-100) by rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
