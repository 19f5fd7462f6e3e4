"""The canary's judgement, without a cluster: promote while healthy, hold without
enough traffic, roll back on failures."""

from __future__ import annotations

from weft_cli.canary.steps import CanaryPolicy, Verdict, judge, next_weight
from weft_cli.observe.golden import Figures

POLICY = CanaryPolicy(step=25, min_success=0.95, min_requests=10)


def figures(success: float | None, requests: int) -> Figures:
    return Figures(success, requests / 5, 3.0, 9.0, 12.0, 0, requests)


def test_a_healthy_canary_is_promoted_step_by_step_to_all_traffic() -> None:
    weight, seen = 0, []
    while (verdict := judge(weight, figures(1.0, 50), POLICY)) is not Verdict.DONE:
        weight = next_weight(weight, verdict, POLICY)
        seen.append(weight)
    assert seen == [25, 50, 75, 100]


def test_a_failing_canary_is_rolled_back_to_nothing_at_once() -> None:
    verdict = judge(50, figures(0.80, 50), POLICY)
    assert verdict is Verdict.ROLLBACK
    assert next_weight(50, verdict, POLICY) == 0


def test_too_little_traffic_holds_the_weight_rather_than_guess() -> None:
    for canary in (None, figures(None, 0), figures(0.5, 3)):
        verdict = judge(50, canary, POLICY)
        assert verdict is Verdict.HOLD
        assert next_weight(50, verdict, POLICY) == 50


def test_the_first_step_needs_no_traffic_to_judge() -> None:
    assert judge(0, None, POLICY) is Verdict.PROMOTE
