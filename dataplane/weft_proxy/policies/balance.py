"""Which endpoint of a backend gets a request: power of two choices over peak-EWMA load.

Two distinct endpoints are drawn at random and the one with the lower cost wins, where
cost = RTT estimate * (pending requests + 1), as linkerd2-proxy and Finagle weigh it: a
fast endpoint is preferred until the requests queued on it make it as slow as another.
Comparing two random endpoints, rather than scanning for the cheapest, spreads a burst
instead of sending all of it to the endpoint that was best a moment ago, in O(1).

The balancer is generic in the endpoint type (`Endpoint` configs in the proxy, anything
hashable in tests); an update keeps the load state of endpoints that stay.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from weft_proxy.policies.clock import Clock
from weft_proxy.policies.ewma import DECAY_S, DEFAULT_RTT_S, PeakEwma

EndpointT = TypeVar("EndpointT", bound=Hashable)


class EndpointLoad:
    """The load of one endpoint: its RTT estimate and its requests in flight."""

    __slots__ = ("pending", "rtt")

    def __init__(self, rtt: PeakEwma) -> None:
        self.rtt = rtt
        self.pending = 0

    def cost(self) -> float:
        return self.rtt.estimate() * (self.pending + 1)


class InFlight:
    """One request sent to an endpoint; `finish()` it once the response is complete
    (or failed), which takes it off the pending count and records its RTT."""

    __slots__ = ("_clock", "_load", "_started_at")

    def __init__(self, load: EndpointLoad, clock: Clock) -> None:
        self._load: EndpointLoad | None = load
        self._clock = clock
        self._started_at = clock()
        load.pending += 1

    def finish(self) -> None:
        """Idempotent, so the I/O layer may call it from every path that ends a request."""
        if self._load is None:
            return
        self._load.pending -= 1
        self._load.rtt.observe(self._clock() - self._started_at)
        self._load = None


class P2cBalancer(Generic[EndpointT]):
    __slots__ = ("_clock", "_decay_s", "_default_rtt_s", "_endpoints", "_loads", "_rng")

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        default_rtt_s: float = DEFAULT_RTT_S,
        decay_s: float = DECAY_S,
    ) -> None:
        self._clock = clock
        self._rng = rng
        self._default_rtt_s = default_rtt_s
        self._decay_s = decay_s
        self._loads: dict[EndpointT, EndpointLoad] = {}
        self._endpoints: list[EndpointT] = []  # indexable, for the random draw

    @property
    def endpoints(self) -> tuple[EndpointT, ...]:
        return tuple(self._endpoints)

    def update(self, endpoints: Iterable[EndpointT]) -> None:
        """Replace the endpoint set; an endpoint that stays keeps its load."""
        wanted = dict.fromkeys(endpoints)
        self._loads = {
            endpoint: self._loads.get(endpoint) or self._new_load() for endpoint in wanted
        }
        self._endpoints = list(wanted)

    def add(self, endpoint: EndpointT) -> None:
        if endpoint not in self._loads:
            self._loads[endpoint] = self._new_load()
            self._endpoints.append(endpoint)

    def remove(self, endpoint: EndpointT) -> None:
        """Requests in flight to it may still `finish()`; they no longer matter."""
        if self._loads.pop(endpoint, None) is not None:
            self._endpoints.remove(endpoint)

    def load(self, endpoint: EndpointT) -> EndpointLoad:
        return self._loads[endpoint]

    def pick(self, is_available: Callable[[EndpointT], bool] | None = None) -> EndpointT | None:
        """The endpoint for the next request, among those `is_available` admits (all when
        None); None when there is none, and the caller fails the request fast."""
        candidates = self._endpoints
        if len(candidates) == 1:  # one endpoint: nothing to draw
            only = candidates[0]
            return only if is_available is None or is_available(only) else None
        if len(candidates) >= 2:
            first, second = self._two_distinct(candidates)
            if is_available is None or (is_available(first) and is_available(second)):
                return self._cheaper(first, second)
        if is_available is not None:
            # Rare path (an endpoint is ejected): the same draw among the available ones
            # only, so the choice stays uniform over available pairs.
            candidates = [endpoint for endpoint in candidates if is_available(endpoint)]
        if len(candidates) >= 2:
            return self._cheaper(*self._two_distinct(candidates))
        return candidates[0] if candidates else None

    def start(self, endpoint: EndpointT) -> InFlight:
        """Count a request sent to `endpoint` (one `pick` returned) until it finishes."""
        return InFlight(self._loads[endpoint], self._clock)

    def _two_distinct(self, candidates: list[EndpointT]) -> tuple[EndpointT, EndpointT]:
        # random() scaled is uniform enough for any pool size, at half the cost of randrange().
        count = len(candidates)
        first = int(self._rng.random() * count)
        second = int(self._rng.random() * (count - 1))
        if second >= first:
            second += 1
        return candidates[first], candidates[second]

    def _cheaper(self, first: EndpointT, second: EndpointT) -> EndpointT:
        return first if self._loads[first].cost() <= self._loads[second].cost() else second

    def _new_load(self) -> EndpointLoad:
        rtt = PeakEwma(self._clock, default_rtt_s=self._default_rtt_s, decay_s=self._decay_s)
        return EndpointLoad(rtt)
