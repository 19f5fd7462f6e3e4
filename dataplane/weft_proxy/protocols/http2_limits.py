"""Enforcing the HTTP/2 flood limits (weft_api.http2_limits) on one connection: a peer
that empties a budget is sent GOAWAY(ENHANCE_YOUR_CALM) and the connection closes, so
one client cannot starve the others."""

from __future__ import annotations

from weft_api.http2_limits import Flood, FloodLimits, Rate
from weft_proxy.policies.clock import Clock


class _Bucket:
    __slots__ = ("_at", "_rate", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._at = now

    def take(self, now: float) -> bool:
        rate = self._rate
        tokens = min(rate.burst, self._tokens + (now - self._at) * rate.per_second)
        self._at = now
        if tokens < 1:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1
        return True


class FloodGuard:
    """One connection's budgets. `spend` says whether the peer may have one more frame
    of a kind; buckets are made on first use (most connections never need most)."""

    __slots__ = ("_buckets", "_clock", "limits")

    def __init__(self, limits: FloodLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[Flood, _Bucket] = {}

    def spend(self, kind: Flood) -> bool:
        now = self._clock()
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = _Bucket(self.limits.rates[kind], now)
        return bucket.take(now)
