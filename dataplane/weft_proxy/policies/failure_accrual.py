"""Failure accrual: consecutive failures eject an endpoint; a probe after a backoff restores it.

Per endpoint, as linkerd2-proxy's consecutive-failures breaker does:
- healthy: `max_failures` failures in a row (a success resets the count) eject it;
- ejected: no request is sent to it for a backoff that doubles with each ejection in a
  row, from `min_backoff_s` up to `max_backoff_s`, plus up to `jitter` of it at random so
  that the proxies of a fleet do not all probe a recovering endpoint at the same moment;
  responses still arriving from before the ejection are ignored;
- probation, once the backoff is over: one request, the probe, may go; its success
  restores the endpoint, its failure ejects it again with the next backoff. A probe that
  ends with no verdict (the client went away) frees the slot after `probe_timeout_s`.

When every endpoint of a backend is unavailable, the caller fails the request at once
(503) rather than queueing it: see `all_ejected`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Hashable, Iterable
from typing import Final, Generic, TypeVar

from weft_proxy.policies.clock import Clock

MAX_FAILURES: Final = 7
MIN_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 60.0
JITTER: Final = 0.5
PROBE_TIMEOUT_S: Final = 10.0

EndpointT = TypeVar("EndpointT", bound=Hashable)


class EndpointHealth(enum.StrEnum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    PROBATION = "probation"


class _Breaker:
    """The accrual state of an endpoint that has failed lately (healthy ones have none)."""

    __slots__ = ("ejected_until", "ejections", "failures", "probe_sent_at")

    def __init__(self) -> None:
        self.failures = 0
        self.ejections = 0
        self.ejected_until: float | None = None
        self.probe_sent_at: float | None = None


class FailureAccrual(Generic[EndpointT]):
    __slots__ = (
        "_breakers",
        "_clock",
        "_jitter",
        "_max_backoff_s",
        "_max_failures",
        "_min_backoff_s",
        "_probe_timeout_s",
        "_rng",
    )

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        max_failures: int = MAX_FAILURES,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        jitter: float = JITTER,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        if max_failures < 1 or not 0 < min_backoff_s <= max_backoff_s or jitter < 0:
            raise ValueError("invalid failure accrual parameters")
        self._clock = clock
        self._rng = rng
        self._max_failures = max_failures
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._jitter = jitter
        self._probe_timeout_s = probe_timeout_s
        self._breakers: dict[EndpointT, _Breaker] = {}

    def health(self, endpoint: EndpointT) -> EndpointHealth:
        breaker = self._breakers.get(endpoint)
        if breaker is None or breaker.ejected_until is None:
            return EndpointHealth.HEALTHY
        if self._clock() < breaker.ejected_until:
            return EndpointHealth.EJECTED
        return EndpointHealth.PROBATION

    def is_available(self, endpoint: EndpointT) -> bool:
        """Whether a request may be sent to `endpoint` now (the balancer's filter)."""
        if endpoint not in self._breakers:  # most calls: it has not failed lately
            return True
        match self.health(endpoint):
            case EndpointHealth.HEALTHY:
                return True
            case EndpointHealth.EJECTED:
                return False
        return not self._probe_in_flight(self._breakers[endpoint])

    def all_ejected(self, endpoints: Iterable[EndpointT]) -> bool:
        """True when there are endpoints and none is available (each is ejected, or on
        probation with its probe in flight): the caller fails the request fast, with 503."""
        listed = list(endpoints)
        return bool(listed) and not any(map(self.is_available, listed))

    def on_dispatch(self, endpoint: EndpointT) -> None:
        """A request is being sent to `endpoint`; in probation, it is the probe."""
        if endpoint in self._breakers and self.health(endpoint) is EndpointHealth.PROBATION:
            self._breakers[endpoint].probe_sent_at = self._clock()

    def record(self, endpoint: EndpointT, *, failed: bool) -> None:
        """The outcome of a request to `endpoint`: a failure is a response classified as
        one, a connection error or a timeout."""
        if not failed and endpoint not in self._breakers:
            return  # healthy, and stays so: the common case, with nothing to update
        match self.health(endpoint):
            case EndpointHealth.HEALTHY if failed:
                breaker = self._breakers.setdefault(endpoint, _Breaker())
                breaker.failures += 1
                if breaker.failures >= self._max_failures:
                    self._eject(breaker)
            case EndpointHealth.HEALTHY:
                self._breakers.pop(endpoint, None)
            case EndpointHealth.PROBATION if failed:
                self._eject(self._breakers[endpoint])
            case EndpointHealth.PROBATION:
                del self._breakers[endpoint]
            # Ejected: a straggler from before the ejection says nothing new.

    def retain(self, endpoints: Iterable[EndpointT]) -> None:
        """Forget endpoints that left the backend (call with the new endpoint set)."""
        kept = set(endpoints)
        self._breakers = {e: b for e, b in self._breakers.items() if e in kept}

    def _eject(self, breaker: _Breaker) -> None:
        breaker.ejections += 1
        breaker.failures = 0
        breaker.probe_sent_at = None
        breaker.ejected_until = self._clock() + self._backoff_s(breaker.ejections)

    def _backoff_s(self, ejections: int) -> float:
        base = min(self._max_backoff_s, self._min_backoff_s * 2.0 ** min(ejections - 1, 64))
        return min(self._max_backoff_s, base * (1.0 + self._jitter * self._rng.random()))

    def _probe_in_flight(self, breaker: _Breaker) -> bool:
        sent_at = breaker.probe_sent_at
        return sent_at is not None and self._clock() - sent_at < self._probe_timeout_s
