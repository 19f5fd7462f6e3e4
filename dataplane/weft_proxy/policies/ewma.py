"""Peak-EWMA round-trip time of one endpoint (Finagle's, as linkerd2-proxy uses it).

Quick to punish, slow to forgive: an RTT above the current estimate replaces it at once,
so a slowing endpoint loses traffic on its first slow response; a lower RTT only pulls
the estimate down with weight `1 - exp(-elapsed / decay)`. Between samples the estimate
decays towards zero, so an endpoint shunned for being slow is eventually tried again and
can prove it has recovered. Reading the estimate never changes it.
"""

from __future__ import annotations

import math
from typing import Final

from weft_proxy.policies.clock import Clock

DEFAULT_RTT_S: Final = 0.030
"""Estimate of an endpoint with no sample yet (linkerd2-proxy's): neither shunned nor flooded."""

DECAY_S: Final = 10.0
"""Time constant of the decay (linkerd2-proxy's)."""


class PeakEwma:
    __slots__ = ("_clock", "_decay_s", "_estimate_s", "_updated_at")

    def __init__(
        self, clock: Clock, *, default_rtt_s: float = DEFAULT_RTT_S, decay_s: float = DECAY_S
    ) -> None:
        if default_rtt_s <= 0 or decay_s <= 0:
            raise ValueError("the default RTT and the decay must be positive")
        self._clock = clock
        self._decay_s = decay_s
        self._estimate_s = default_rtt_s
        self._updated_at = clock()

    def estimate(self) -> float:
        """The RTT estimate now, in seconds."""
        return self._estimate_s * self._weight_of_past(self._clock())

    def observe(self, rtt_s: float) -> None:
        """Take in the RTT of a request that just completed."""
        now = self._clock()
        weight = math.exp(-max(0.0, now - self._updated_at) / self._decay_s)  # (inlined)
        decayed = self._estimate_s * weight
        self._estimate_s = rtt_s if rtt_s > decayed else decayed + rtt_s * (1.0 - weight)
        self._updated_at = now

    def _weight_of_past(self, now: float) -> float:
        # A clock that steps back counts as no time passed.
        return math.exp(-max(0.0, now - self._updated_at) / self._decay_s)
