"""Failure accrual: ejection after consecutive failures, backoff, probation, restore."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.policies.balance import P2cBalancer
from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.failure_accrual import EndpointHealth, FailureAccrual

TICK = 1 / 64  # exact in binary: sums of ticks land on the backoffs exactly

HEALTHY, EJECTED, PROBATION = (
    EndpointHealth.HEALTHY,
    EndpointHealth.EJECTED,
    EndpointHealth.PROBATION,
)


def accrual(jitter: float = 0.0, seed: int = 1) -> tuple[FailureAccrual[str], ManualClock]:
    clock = ManualClock()
    breaker: FailureAccrual[str] = FailureAccrual(
        clock, random.Random(seed), max_failures=3, min_backoff_s=1.0, max_backoff_s=8.0,
        jitter=jitter, probe_timeout_s=5.0,
    )  # fmt: skip
    return breaker, clock


def fail(breaker: FailureAccrual[str], endpoint: str, times: int) -> None:
    for _ in range(times):
        breaker.on_dispatch(endpoint)
        breaker.record(endpoint, failed=True)


def test_consecutive_failures_eject_and_a_success_resets_the_count() -> None:
    breaker, _ = accrual()
    fail(breaker, "a", 2)
    breaker.record("a", failed=False)
    fail(breaker, "a", 2)
    assert breaker.health("a") is HEALTHY
    fail(breaker, "a", 1)
    assert breaker.health("a") is EJECTED
    assert not breaker.is_available("a")


def test_after_the_backoff_one_probe_goes_and_its_success_restores() -> None:
    breaker, clock = accrual()
    fail(breaker, "a", 3)
    clock.advance(1.0 - TICK)
    assert breaker.health("a") is EJECTED
    clock.advance(TICK)
    assert breaker.health("a") is PROBATION
    assert breaker.is_available("a")
    breaker.on_dispatch("a")
    assert not breaker.is_available("a")  # the probe is in flight: nothing else goes
    breaker.record("a", failed=False)
    assert breaker.health("a") is HEALTHY
    fail(breaker, "a", 3)  # restored with a fresh backoff: 1 s again
    clock.advance(1.0)
    assert breaker.health("a") is PROBATION


def test_a_failed_probe_doubles_the_backoff_up_to_the_maximum() -> None:
    breaker, clock = accrual()
    fail(breaker, "a", 3)
    for backoff in (1.0, 2.0, 4.0, 8.0, 8.0):
        clock.advance(backoff - TICK)
        assert breaker.health("a") is EJECTED
        clock.advance(TICK)
        assert breaker.health("a") is PROBATION
        fail(breaker, "a", 1)


def test_responses_arriving_while_ejected_are_ignored() -> None:
    breaker, clock = accrual()
    fail(breaker, "a", 3)
    breaker.record("a", failed=False)
    assert breaker.health("a") is EJECTED
    clock.advance(1.0)
    assert breaker.health("a") is PROBATION


def test_a_probe_without_verdict_frees_the_slot_after_the_probe_timeout() -> None:
    breaker, clock = accrual()
    fail(breaker, "a", 3)
    clock.advance(1.0)
    breaker.on_dispatch("a")
    clock.advance(5.0 - TICK)
    assert not breaker.is_available("a")
    clock.advance(TICK)
    assert breaker.is_available("a")


@given(seed=st.integers(min_value=0, max_value=2**32), ejections=st.integers(1, 8))
def test_jitter_stays_between_the_base_and_half_again_within_the_maximum(
    seed: int, ejections: int
) -> None:
    breaker, clock = accrual(jitter=0.5, seed=seed)
    fail(breaker, "a", 3)
    for _ in range(ejections - 1):
        while breaker.health("a") is EJECTED:
            clock.advance(TICK)
        fail(breaker, "a", 1)
    ejected_at = clock.now
    while breaker.health("a") is EJECTED:
        clock.advance(TICK)
    base = min(8.0, 2.0 ** (ejections - 1))
    assert base <= clock.now - ejected_at <= min(8.0, 1.5 * base) + TICK


def test_when_every_endpoint_is_ejected_the_caller_fails_fast() -> None:
    breaker, clock = accrual()
    endpoints = ["a", "b"]
    fail(breaker, "a", 3)
    assert not breaker.all_ejected(endpoints)
    fail(breaker, "b", 3)
    assert breaker.all_ejected(endpoints)
    assert not breaker.all_ejected([])  # no endpoint at all is another failure
    clock.advance(1.0)
    assert not breaker.all_ejected(endpoints)  # probes may go


def test_the_balancer_skips_ejected_endpoints() -> None:
    breaker, clock = accrual()
    pool: P2cBalancer[str] = P2cBalancer(clock, random.Random(5))
    pool.update(["a", "b", "c"])
    fail(breaker, "b", 3)
    picks = {pool.pick(breaker.is_available) for _ in range(200)}
    assert picks == {"a", "c"}
    fail(breaker, "a", 3)
    fail(breaker, "c", 3)
    assert pool.pick(breaker.is_available) is None


def test_retain_forgets_endpoints_that_left() -> None:
    breaker, _ = accrual()
    fail(breaker, "a", 3)
    breaker.retain(["b"])
    assert breaker.health("a") is HEALTHY


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid"):
        FailureAccrual(ManualClock(), random.Random(), min_backoff_s=2.0, max_backoff_s=1.0)
