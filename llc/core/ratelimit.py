"""A token bucket for POST /calls: ``rate_per_min`` calls a minute, bursts up to that many.

Pure: the caller passes the clock. Placing calls costs money and reputation (spam flags on
the caller ID), so a leaked API token or a runaway script is throttled, not trusted.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate_per_min: int, now: float = 0.0) -> None:
        self.capacity = float(rate_per_min)
        self.per_s = rate_per_min / 60.0
        self.tokens = self.capacity
        self.at = now

    def take(self, now: float) -> float:
        """0.0 when allowed (one token spent), else the seconds until the next one is free."""
        if self.capacity <= 0:
            return 0.0  # no limit configured
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_s
