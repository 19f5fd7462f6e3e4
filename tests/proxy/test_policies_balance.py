"""Peak EWMA and power-of-two-choices, simulated on a manual clock."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Mapping

import pytest

from weft_proxy.policies.balance import InFlight, P2cBalancer
from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.ewma import DEFAULT_RTT_S, PeakEwma

# --- peak EWMA ------------------------------------------------------------------------


def test_the_default_rtt_stands_until_a_sample_arrives_and_decays_meanwhile() -> None:
    clock = ManualClock()
    rtt = PeakEwma(clock, default_rtt_s=0.010, decay_s=1.0)
    assert rtt.estimate() == pytest.approx(0.010)
    clock.advance(0.1)
    assert rtt.estimate() == pytest.approx(0.010 * math.exp(-0.1))


def test_a_peak_replaces_the_estimate_at_once() -> None:
    clock = ManualClock()
    rtt = PeakEwma(clock, default_rtt_s=0.010, decay_s=10.0)
    rtt.observe(0.500)
    assert rtt.estimate() == pytest.approx(0.500)


def test_lower_samples_pull_the_estimate_down_slowly() -> None:
    clock = ManualClock()
    rtt = PeakEwma(clock, decay_s=10.0)
    rtt.observe(0.100)
    clock.advance(1.0)
    rtt.observe(0.010)
    weight = math.exp(-0.1)
    assert rtt.estimate() == pytest.approx(0.100 * weight + 0.010 * (1 - weight))
    for _ in range(200):  # a second of steady fast responses, every 5 ms
        clock.advance(0.005)
        rtt.observe(0.010)
    # The excess over the steady RTT decays with the time constant, whatever the rate.
    assert rtt.estimate() == pytest.approx(0.010 + 0.090 * math.exp(-2.0 / 10.0))


def test_reading_the_estimate_does_not_change_it() -> None:
    clock = ManualClock()
    once, often = PeakEwma(clock), PeakEwma(clock)
    for _ in range(10):
        clock.advance(0.5)
        often.estimate()
    assert once.estimate() == often.estimate()


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        PeakEwma(ManualClock(), decay_s=0)


# --- power of two choices -------------------------------------------------------------


def balancer(clock: ManualClock, endpoints: list[str], seed: int = 1) -> P2cBalancer[str]:
    pool: P2cBalancer[str] = P2cBalancer(clock, random.Random(seed))
    pool.update(endpoints)
    return pool


def simulate(
    latencies: Mapping[str, float], requests: int, interval_s: float, seed: int = 1
) -> Counter[str]:
    """Requests arrive every `interval_s`; each endpoint answers after its latency."""
    clock = ManualClock()
    pool = balancer(clock, list(latencies), seed)
    completions: list[tuple[float, int, InFlight]] = []
    picks: Counter[str] = Counter()
    for number in range(requests):
        while completions and completions[0][0] <= clock.now:
            heapq.heappop(completions)[2].finish()
        chosen = pool.pick()
        assert chosen is not None
        picks[chosen] += 1
        heapq.heappush(completions, (clock.now + latencies[chosen], number, pool.start(chosen)))
        clock.advance(interval_s)
    return picks


def test_the_slow_endpoint_gets_measurably_less_traffic() -> None:
    picks = simulate({"fast-1": 0.005, "fast-2": 0.005, "slow": 0.100}, 5000, 0.002)
    share = picks["slow"] / picks.total()
    assert share < 0.10, picks  # a third with round robin
    assert picks["fast-1"] > 0.3 * picks.total()
    assert picks["fast-2"] > 0.3 * picks.total()


def test_equal_endpoints_share_the_traffic() -> None:
    picks = simulate({"a": 0.010, "b": 0.010, "c": 0.010}, 3000, 0.002)
    assert all(abs(count / 3000 - 1 / 3) < 0.05 for count in picks.values()), picks


def test_pending_requests_shift_picks_to_the_idle_endpoint() -> None:
    clock = ManualClock()
    pool = balancer(clock, ["busy", "idle"])
    stuck = [pool.start("busy") for _ in range(3)]
    assert pool.load("busy").pending == 3
    assert {pool.pick() for _ in range(20)} == {"idle"}
    for request in stuck:
        request.finish()
        request.finish()  # idempotent
    assert pool.load("busy").pending == 0


def test_a_shunned_endpoint_is_tried_again_once_its_peak_has_decayed() -> None:
    clock = ManualClock()
    pool = balancer(clock, ["a", "b"])
    for endpoint, rtt in (("a", 0.010), ("b", 1.0)):
        request = pool.start(endpoint)
        clock.advance(rtt)
        request.finish()
    assert pool.pick() == "a"
    clock.advance(60.0)  # no sample: b's peak decays to ~2.5 ms, below what a answers in
    pool.load("a").rtt.observe(0.010)
    assert pool.pick() == "b"


def test_updates_keep_the_state_of_endpoints_that_stay() -> None:
    clock = ManualClock()
    pool = balancer(clock, ["a", "b"])
    request = pool.start("a")
    clock.advance(0.5)
    request.finish()
    before = pool.load("a")
    pool.update(["a", "c"])
    assert pool.load("a") is before
    assert pool.load("c").rtt.estimate() == pytest.approx(DEFAULT_RTT_S)
    assert pool.endpoints == ("a", "c")
    pool.add("d")
    pool.add("a")
    pool.remove("c")
    pool.remove("zz")
    assert pool.endpoints == ("a", "d")
    assert pool.load("a") is before


def test_no_endpoint_one_endpoint() -> None:
    clock = ManualClock()
    assert balancer(clock, []).pick() is None
    assert balancer(clock, ["only"]).pick() == "only"
    assert balancer(clock, ["only"]).pick(lambda endpoint: False) is None


def test_unavailable_endpoints_are_never_picked() -> None:
    clock = ManualClock()
    pool = balancer(clock, ["a", "b", "c", "d"])
    available = {"b", "d"}
    picks = Counter(pool.pick(available.__contains__) for _ in range(1000))
    assert set(picks) == available
    assert all(count > 400 for count in picks.values())
    assert pool.pick(lambda endpoint: False) is None
