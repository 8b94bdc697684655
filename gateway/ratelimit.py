"""Token buckets: per tenant for HTTP requests, per connection for WebSocket messages.

Limits are per gateway process; N processes behind a balancer allow N times the rate in total.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, up to ``burst`` saved; each request takes one."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: float) -> TokenBucket:
        """A bucket that can take a full burst right away."""
        return cls(rate, burst, burst, time.monotonic())

    def take(self) -> float:
        """Take a token: 0.0 if there was one, else the seconds until one will be there."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class TenantLimiter:
    """One bucket per tenant, made on first use."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, tenant: str) -> float:
        """0.0 when the tenant may go on, else the seconds to wait (the ``Retry-After``)."""
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = TokenBucket.full(self.rate, self.burst)
        return bucket.take()
