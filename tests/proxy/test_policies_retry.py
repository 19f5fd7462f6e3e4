"""The retry budget over time, and the retry decision."""

from __future__ import annotations

import bisect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_api.config import RequestMatch, RetryBudget, Route
from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.retry import MAX_RETRYABLE_BODY_BYTES, RetryDecision, decide_retry
from weft_proxy.policies.retry_budget import RetryBudgetTracker


def tracker(
    ratio: float = 0.2, per_second: int = 0, ttl_ms: int = 10_000
) -> tuple[RetryBudgetTracker, ManualClock]:
    clock = ManualClock()
    return RetryBudgetTracker(RetryBudget(ratio, per_second, ttl_ms), clock), clock


def retries_allowed(budget: RetryBudgetTracker) -> int:
    allowed = 0
    while budget.can_retry():
        budget.record_retry()
        allowed += 1
    return allowed


def test_no_requests_no_reserve_no_retry() -> None:
    budget, _ = tracker(per_second=0)
    assert not budget.can_retry()


def test_each_request_deposits_the_ratio() -> None:
    budget, _ = tracker(ratio=0.2)
    for _ in range(50):
        budget.record_request()
    assert retries_allowed(budget) == 10


def test_the_reserve_allows_retries_to_a_quiet_client() -> None:
    budget, _ = tracker(ratio=0.2, per_second=10, ttl_ms=10_000)
    assert retries_allowed(budget) == 100


def test_linkerds_defaults_allow_ratio_times_requests_plus_the_reserve() -> None:
    budget = RetryBudgetTracker(RetryBudget(), ManualClock())
    for _ in range(1000):
        budget.record_request()
    assert retries_allowed(budget) == 0.2 * 1000 + 10 * 10


def test_deposits_expire_after_the_ttl() -> None:
    budget, clock = tracker(ratio=1.0, ttl_ms=1000)
    budget.record_request()
    budget.record_request()
    clock.advance(0.9)
    assert budget.can_retry()
    clock.advance(0.2)  # the first slot has left the window
    assert not budget.can_retry()


def test_withdrawals_expire_too() -> None:
    budget, clock = tracker(ratio=0.0, per_second=1, ttl_ms=1000)
    assert retries_allowed(budget) == 1
    clock.advance(1.0)
    assert retries_allowed(budget) == 1


def test_a_long_silence_clears_every_slot() -> None:
    budget, clock = tracker(ratio=1.0, ttl_ms=1000)
    for _ in range(5):
        budget.record_request()
    clock.advance(3600.0)
    assert not budget.can_retry()
    budget.record_request()
    assert retries_allowed(budget) == 1


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid retry budget"):
        RetryBudgetTracker(RetryBudget(ttl_ms=0), ManualClock())


# Slots of a power-of-two width and event times in 1/64 s keep every float exact here.
events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=64 * 30), st.booleans()), max_size=300
)


@given(
    events=events,
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0, 2.0]),
    per_second=st.integers(min_value=0, max_value=3),
    ttl_ms=st.sampled_from([1250, 2500, 5000, 10_000]),
)
def test_retries_never_exceed_the_ratio_of_requests_plus_the_reserve(
    events: list[tuple[int, bool]], ratio: float, per_second: int, ttl_ms: int
) -> None:
    budget, clock = tracker(ratio, per_second, ttl_ms)
    start = clock.now
    requests: list[float] = []
    retries: list[float] = []
    for tick, is_retry in sorted(events):
        clock.now = start + tick / 64
        if not is_retry:
            budget.record_request()
            requests.append(clock.now)
        elif budget.can_retry():
            budget.record_retry()
            retries.append(clock.now)
    ttl_s = ttl_ms / 1000
    span_s = ttl_s - ttl_s / 10
    for last, at in enumerate(retries):
        in_span = last + 1 - bisect.bisect_right(retries, at - span_s)
        in_ttl = bisect.bisect_right(requests, at) - bisect.bisect_right(requests, at - ttl_s)
        assert in_span <= ratio * in_ttl + per_second * ttl_s


# --- the decision ---------------------------------------------------------------------

RETRYABLE = Route("books", RequestMatch(all=()), is_retryable=True)
NOT_RETRYABLE = Route("orders", RequestMatch(all=()))


def decide(
    route: Route | None = RETRYABLE,
    failed: bool = True,
    body_bytes: int | None = 0,
    time_left_s: float | None = None,
    per_second: int = 10,
) -> RetryDecision:
    budget, _ = tracker(per_second=per_second)
    return decide_retry(
        route, failed=failed, body_bytes=body_bytes, budget=budget, time_left_s=time_left_s
    )


def test_a_failed_request_on_a_retryable_route_is_retried() -> None:
    assert decide() is RetryDecision.RETRY
    assert decide(body_bytes=MAX_RETRYABLE_BODY_BYTES) is RetryDecision.RETRY
    assert decide(time_left_s=0.5) is RetryDecision.RETRY


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"failed": False}, RetryDecision.SUCCEEDED),
        ({"route": NOT_RETRYABLE}, RetryDecision.NOT_RETRYABLE),
        ({"route": None}, RetryDecision.NOT_RETRYABLE),
        ({"body_bytes": MAX_RETRYABLE_BODY_BYTES + 1}, RetryDecision.BODY_NOT_BUFFERED),
        ({"body_bytes": None}, RetryDecision.BODY_NOT_BUFFERED),
        ({"time_left_s": 0.0}, RetryDecision.NO_TIME_LEFT),
        ({"per_second": 0}, RetryDecision.BUDGET_EXHAUSTED),
    ],
)
def test_why_not_retried(overrides: dict[str, Any], expected: RetryDecision) -> None:
    assert decide(**overrides) is expected


def test_deciding_does_not_spend_the_budget() -> None:
    budget, _ = tracker(ratio=0.0, per_second=1, ttl_ms=1000)
    for _ in range(3):
        verdict = decide_retry(RETRYABLE, failed=True, body_bytes=0, budget=budget)
        assert verdict is RetryDecision.RETRY
    budget.record_retry()
    verdict = decide_retry(RETRYABLE, failed=True, body_bytes=0, budget=budget)
    assert verdict is RetryDecision.BUDGET_EXHAUSTED
