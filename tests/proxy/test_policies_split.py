"""TrafficSplit: weighted backends, zero weights, split matches."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from weft_api.config import Backend, OutboundService, RequestMatch, RetryBudget
from weft_proxy.policies.request_match import RequestHead
from weft_proxy.policies.split import BackendSplit, WeightedChoice


def backend(name: str, weight: int) -> Backend:
    return Backend(name, "default", f"{name}.default.svc.cluster.local", weight, ())


PRIMARY, CANARY, ROOT = backend("web-primary", 900), backend("web-canary", 100), backend("web", 1)


def service(
    backends: tuple[Backend, ...],
    split_matches: tuple[RequestMatch, ...] = (),
    unmatched: Backend | None = None,
) -> OutboundService:
    return OutboundService(
        "web", "default", "web.default.svc.cluster.local", ("10.96.0.10",), (), (),
        RetryBudget(), backends, split_matches, unmatched,
    )  # fmt: skip


def test_a_seeded_rng_gives_the_same_picks() -> None:
    def picks(seed: int) -> list[str | None]:
        split = BackendSplit(service((PRIMARY, CANARY)), random.Random(seed))
        return [chosen.name if (chosen := split.pick(None)) else None for _ in range(50)]

    assert picks(7) == picks(7)
    assert set(picks(7)) == {"web-primary", "web-canary"}


def test_picks_follow_the_weights_within_tolerance() -> None:
    split = BackendSplit(service((PRIMARY, CANARY)), random.Random(2024))
    draws = 20_000
    counts = Counter(split.pick(None) for _ in range(draws))
    # 10% expected; the binomial's standard deviation is 0.2%, so 1% is five of them.
    assert abs(counts[CANARY] / draws - 0.10) < 0.01
    assert counts[PRIMARY] + counts[CANARY] == draws


def test_zero_weights_are_never_picked_and_all_zero_picks_nothing() -> None:
    drained = backend("web-canary", 0)
    split = BackendSplit(service((PRIMARY, drained)), random.Random(1))
    assert {split.pick(None) for _ in range(500)} == {PRIMARY}
    nothing = BackendSplit(service((drained,)), random.Random(1))
    assert nothing.pick(None) is None


@given(
    weights=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_only_weighted_backends_are_ever_picked(weights: list[int], seed: int) -> None:
    backends = [backend(f"b{index}", weight) for index, weight in enumerate(weights)]
    choice, rng = WeightedChoice(backends), random.Random(seed)
    picked = {choice.pick(rng) for _ in range(30)}
    if sum(weights) == 0:
        assert picked == {None}
    else:
        assert picked <= {b for b in backends if b.weight > 0}


def test_split_matches_send_only_matching_requests_to_the_split() -> None:
    beta = RequestMatch(path_regex="^/beta")
    split = BackendSplit(service((CANARY,), (beta,), ROOT), random.Random(3))
    assert split.pick(RequestHead("GET", "/beta/page")) is CANARY
    assert split.pick(RequestHead("GET", "/home")) is ROOT
    assert split.pick(None) is ROOT  # a TCP connection has no request to match


def test_without_split_matches_every_request_and_connection_is_split() -> None:
    split = BackendSplit(service((CANARY,)), random.Random(3))
    assert split.pick(RequestHead("GET", "/home")) is CANARY
    assert split.pick(None) is CANARY
