"""Whether a failed request is sent again: the route allows it, the proxy still holds the
whole body, time is left, and the parent's retry budget has room.

The decision reads the budget but does not spend it: on `RetryDecision.RETRY` the caller
sends the retry and calls `budget.record_retry()`.
"""

from __future__ import annotations

import enum
from typing import Final

from weft_api.config import Route
from weft_proxy.policies.retry_budget import RetryBudgetTracker

MAX_RETRYABLE_BODY_BYTES: Final = 64 * 1024
"""A request body is buffered for a retry up to this size (Linkerd's limit); a larger one
streams through and cannot be sent again."""


class RetryDecision(enum.StrEnum):
    """RETRY, or why not (for logs and metrics)."""

    RETRY = "retry"
    SUCCEEDED = "succeeded"
    NOT_RETRYABLE = "not_retryable"
    BODY_NOT_BUFFERED = "body_not_buffered"
    NO_TIME_LEFT = "no_time_left"
    BUDGET_EXHAUSTED = "budget_exhausted"


def decide_retry(
    route: Route | None,
    *,
    failed: bool,
    body_bytes: int | None,
    budget: RetryBudgetTracker,
    time_left_s: float | None = None,
) -> RetryDecision:
    """Decide on retrying a request after an attempt.

    `failed`: the response was classified as a failure, or the endpoint could not be
    connected to. `body_bytes`: the size of the request body the proxy buffered in full,
    None if it streamed on without keeping it. `time_left_s`: what remains of the
    request's deadline, None if it has none.
    """
    if not failed:
        return RetryDecision.SUCCEEDED
    if route is None or not route.is_retryable:
        return RetryDecision.NOT_RETRYABLE
    if body_bytes is None or body_bytes > MAX_RETRYABLE_BODY_BYTES:
        return RetryDecision.BODY_NOT_BUFFERED
    if time_left_s is not None and time_left_s <= 0:
        return RetryDecision.NO_TIME_LEFT
    if not budget.can_retry():
        return RetryDecision.BUDGET_EXHAUSTED
    return RetryDecision.RETRY
