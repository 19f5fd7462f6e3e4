"""Which backend of a parent gets a request (HTTP) or a connection (TCP): TrafficSplit weights.

With `split_matches` (SMI v1alpha3+), only requests matching one of them are split; other
requests, and every TCP connection (it has no request to match), go to `unmatched_backend`,
the parent Service itself.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

from weft_api.config import Backend, OutboundService
from weft_proxy.policies.request_match import RequestHead, compile_any_of


class WeightedChoice:
    """Picks among backends with probability weight / total; zero weights are never picked."""

    __slots__ = ("_backends", "_cumulative", "_total")

    def __init__(self, backends: Sequence[Backend]) -> None:
        self._backends = tuple(backend for backend in backends if backend.weight > 0)
        self._cumulative = tuple(itertools.accumulate(b.weight for b in self._backends))
        self._total = self._cumulative[-1] if self._cumulative else 0

    @property
    def fixed(self) -> bool:
        """The pick is always the same (one backend with a weight, or none)."""
        return len(self._backends) <= 1

    def pick(self, rng: random.Random) -> Backend | None:
        """None when no backend has a weight: the caller fails the request (503)."""
        if not self._total:
            return None
        if len(self._backends) == 1:  # most Services: no split, no draw
            return self._backends[0]
        # Integer draw: exact for any total, unlike scaling a float in [0, 1).
        return self._backends[bisect.bisect_right(self._cumulative, rng.randrange(self._total))]


class BackendSplit:
    """The split of one parent, compiled once per config."""

    __slots__ = ("_matches", "_rng", "_unmatched", "_weighted")

    def __init__(self, service: OutboundService, rng: random.Random) -> None:
        self._weighted = WeightedChoice(service.backends)
        self._matches = compile_any_of(service.split_matches) if service.split_matches else None
        self._unmatched = service.unmatched_backend
        self._rng = rng

    @property
    def fixed(self) -> bool:
        """Every request and connection gets the same backend (or none): no draw."""
        return self._matches is None and self._weighted.fixed

    def pick(self, request: RequestHead | None) -> Backend | None:
        """The backend for an HTTP `request`, or for a TCP connection (None)."""
        if self._matches is not None and (request is None or not self._matches(request)):
            return self._unmatched
        return self._weighted.pick(self._rng)
