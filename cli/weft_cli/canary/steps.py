"""Judging a canary step, as Flagger does: promote the canary by one step while its
success rate holds over enough requests, roll back at once when it does not. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from weft_cli.observe.golden import Figures


class Verdict(enum.Enum):
    PROMOTE = "promote"
    HOLD = "hold"  # too few requests to judge: wait another window
    ROLLBACK = "rollback"
    DONE = "done"  # the canary takes all traffic and is healthy


@dataclass(frozen=True)
class CanaryPolicy:
    step: int = 20  # percentage points of traffic per promotion
    min_success: float = 0.95
    min_requests: int = 10  # canary responses a window needs before it is judged


def judge(canary_weight: int, canary: Figures | None, policy: CanaryPolicy) -> Verdict:
    """The verdict on a window in which the canary had `canary_weight` percent."""
    if canary_weight <= 0:
        return Verdict.PROMOTE  # nothing to judge yet: give it its first share
    if canary is None or canary.success is None or canary.requests < policy.min_requests:
        return Verdict.HOLD
    if canary.success < policy.min_success:
        return Verdict.ROLLBACK
    return Verdict.DONE if canary_weight >= 100 else Verdict.PROMOTE


def next_weight(canary_weight: int, verdict: Verdict, policy: CanaryPolicy) -> int:
    if verdict is Verdict.PROMOTE:
        return min(100, canary_weight + policy.step)
    if verdict is Verdict.ROLLBACK:
        return 0
    return canary_weight
