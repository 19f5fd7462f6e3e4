"""Linkerd's (Finagle's) retry budget: retries may add at most `retry_ratio` to the load.

Each original request deposits `retry_ratio` of a retry; each retry withdraws one; a
reserve of `min_retries_per_second * ttl` lets a client that sends little still retry.
Deposits and withdrawals count for `ttl`, in ten slots (as tower's budget keeps them): at
any time the window spans the current slot and the nine before it, so between
`ttl - ttl/10` and `ttl` of the past. A retry is allowed while, within the window,

    retries + 1 <= retry_ratio * requests + min_retries_per_second * ttl

so the retries of any span of `ttl - ttl/10` never exceed the reserve plus `retry_ratio`
times the requests of the `ttl` ending at the last of them. A retry storm thus stops at a
bounded extra load instead of multiplying the load on backends that already fail.
"""

from __future__ import annotations

from typing import Final

from weft_api.config import RetryBudget
from weft_proxy.policies.clock import Clock

SLOTS: Final = 10


class RetryBudgetTracker:
    """The budget of one parent Service, shared by all its routes (as Linkerd shares it)."""

    __slots__ = (
        "_clock",
        "_current_slot",
        "_ratio",
        "_requests",
        "_requests_in_window",
        "_reserve",
        "_retries",
        "_retries_in_window",
        "_slot_s",
    )

    def __init__(self, budget: RetryBudget, clock: Clock) -> None:
        if budget.ttl_ms <= 0 or budget.retry_ratio < 0 or budget.min_retries_per_second < 0:
            raise ValueError(f"invalid retry budget {budget}")
        ttl_s = budget.ttl_ms / 1000
        self._clock = clock
        self._ratio = budget.retry_ratio
        self._reserve = budget.min_retries_per_second * ttl_s
        self._slot_s = ttl_s / SLOTS
        self._requests = [0] * SLOTS
        self._retries = [0] * SLOTS
        self._requests_in_window = 0
        self._retries_in_window = 0
        self._current_slot = self._slot_at(clock())

    def record_request(self) -> None:
        """An original request was sent (a retry is not one)."""
        slot = int(self._clock() // self._slot_s)
        # Most calls: still in the current slot, nothing to forget.
        index = slot % SLOTS if slot == self._current_slot else self._advance()
        self._requests[index] += 1
        self._requests_in_window += 1

    def record_retry(self) -> None:
        """A retry was sent; call only after `can_retry()` said yes."""
        index = self._advance()
        self._retries[index] += 1
        self._retries_in_window += 1

    def can_retry(self) -> bool:
        self._advance()
        allowed = self._ratio * self._requests_in_window + self._reserve
        return self._retries_in_window + 1 <= allowed

    def _advance(self) -> int:
        """Forget the slots that left the window; return the current slot's index."""
        slot = self._slot_at(self._clock())
        if slot == self._current_slot:  # most calls: nothing has left the window
            return slot % SLOTS
        # Slots are numbered from the clock's zero; a clock stepping back stays in place.
        for expired in range(self._current_slot + 1, min(slot, self._current_slot + SLOTS) + 1):
            index = expired % SLOTS
            self._requests_in_window -= self._requests[index]
            self._retries_in_window -= self._retries[index]
            self._requests[index] = self._retries[index] = 0
        self._current_slot = max(slot, self._current_slot)
        return self._current_slot % SLOTS

    def _slot_at(self, now: float) -> int:
        return int(now // self._slot_s)
