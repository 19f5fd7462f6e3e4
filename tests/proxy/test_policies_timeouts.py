"""Request deadlines from the route's timeout and the client's headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.timeouts import (
    GRPC_TIMEOUT_HEADER,
    TIMEOUT_HEADER,
    Deadline,
    parse_duration_s,
    parse_grpc_timeout_s,
    request_deadline,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h1m1s1ms", 3661.001),
        (" 10s ", 10.0),
        ("0s", 0.0),
        ("10", None),
        ("1.5s", None),
        ("-1s", None),
        ("123456s", None),  # at most five digits a part
        ("1s1s1s1s1s", None),  # at most four parts
        ("", None),
    ],
)
def test_weft_timeout_values(value: str, seconds: float | None) -> None:
    assert parse_duration_s(value) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("100m", 0.1),
        ("2S", 2.0),
        ("1M", 60.0),
        ("1H", 3600.0),
        ("250u", 250e-6),
        ("99999999n", 0.099999999),
        ("123456789m", None),  # at most eight digits
        ("100", None),
        ("1s", None),
    ],
)
def test_grpc_timeout_values(value: str, seconds: float | None) -> None:
    assert parse_grpc_timeout_s(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_the_route_timeout_alone() -> None:
    clock = ManualClock()
    deadline = request_deadline(2000, (), clock)
    assert deadline == Deadline(clock.now + 2.0)
    assert request_deadline(None, (), clock) is None
    assert request_deadline(0, (), clock) is None  # 0 is "no timeout"


def test_a_client_shortens_the_route_timeout_but_never_extends_it() -> None:
    clock = ManualClock()
    shorter = request_deadline(2000, ((TIMEOUT_HEADER, "500ms"),), clock)
    assert shorter == Deadline(clock.now + 0.5)
    longer = request_deadline(2000, ((TIMEOUT_HEADER, "1m"),), clock)
    assert longer == Deadline(clock.now + 2.0)
    without_route = request_deadline(None, ((GRPC_TIMEOUT_HEADER, "250m"),), clock)
    assert without_route == Deadline(clock.now + 0.25)


def test_the_shortest_header_wins_and_bad_or_zero_ones_are_ignored() -> None:
    clock = ManualClock()
    headers = (
        (TIMEOUT_HEADER, "3s"),
        (GRPC_TIMEOUT_HEADER, "1S"),
        (TIMEOUT_HEADER, "soon"),
        (TIMEOUT_HEADER, "0s"),
        ("x-timeout", "1ms"),
    )
    assert request_deadline(None, headers, clock) == Deadline(clock.now + 1.0)
    assert request_deadline(None, ((TIMEOUT_HEADER, "0s"),), clock) is None


def test_remaining_time_counts_down_to_zero() -> None:
    clock = ManualClock()
    deadline = Deadline(clock.now + 1.0)
    clock.advance(0.25)
    assert deadline.remaining(clock) == 0.75
    assert not deadline.expired(clock)
    clock.advance(1.0)
    assert deadline.remaining(clock) == 0.0
    assert deadline.expired(clock)


@given(route_ms=st.none() | st.integers(0, 10**6), client=st.text(max_size=12))
def test_a_deadline_is_never_later_than_the_route_allows(route_ms: int | None, client: str) -> None:
    clock = ManualClock()
    deadline = request_deadline(route_ms, ((TIMEOUT_HEADER, client),), clock)
    if route_ms:
        assert deadline is not None
        assert deadline.at <= clock.now + route_ms / 1000
    if deadline is not None:
        assert deadline.at > clock.now
