"""Kubernetes quantities and Go durations, as upstream writes them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_resources.units import parse_go_duration_ms, parse_quantity, quantity_to_milli

counts = st.integers(min_value=0, max_value=10**9)


@given(counts)
def test_a_whole_number_is_that_many_units_written_either_way(n: int) -> None:
    assert quantity_to_milli(n) == quantity_to_milli(str(n)) == n * 1000


@given(counts)
def test_the_milli_suffix_is_thousandths(n: int) -> None:
    assert quantity_to_milli(f"{n}m") == n


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False))
def test_decimal_fractions_are_exact(value: Decimal) -> None:
    assert quantity_to_milli(str(value)) == int(value * 1000)


@given(counts, st.sampled_from(["k", "M", "G"]))
def test_decimal_suffixes_scale_by_powers_of_ten(n: int, suffix: str) -> None:
    power = {"k": 3, "M": 6, "G": 9}[suffix]
    assert quantity_to_milli(f"{n}{suffix}") == n * 10**power * 1000


@pytest.mark.parametrize(
    ("quantity", "milli"),
    [
        ("500m", 500),
        ("1", 1000),
        (1, 1000),
        ("0.5", 500),
        (".5", 500),
        ("1Ki", 1_024_000),
        ("1e3", 1_000_000),
        ("1E", 10**21),  # the exa suffix, not an exponent
        ("+2", 2000),
        ("1u", 1),  # rounded up, as Kubernetes' MilliValue does
    ],
)
def test_known_quantities(quantity: int | str, milli: int) -> None:
    assert quantity_to_milli(quantity) == milli


@pytest.mark.parametrize("text", ["5x", "", "m", "1.2.3", "1 k", "--1", "0x10"])
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


def test_a_boolean_is_not_a_quantity() -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(True)


units_ms = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(units_ms))), min_size=1))
def test_durations_add_their_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    assert parse_go_duration_ms(text) == sum(amount * units_ms[unit] for amount, unit in parts)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("10s", 10_000),
        ("500ms", 500),
        ("1m30s", 90_000),
        ("1.5s", 1500),
        ("0", 0),
        ("2h45m", 9_900_000),
        ("100us", 1),  # sub-millisecond rounds up: a positive timeout never becomes 0
        ("1500000ns", 2),
        ("+3s", 3000),
        ("1µs", 1),
    ],
)
def test_known_durations(text: str, ms: int) -> None:
    assert parse_go_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "10", "1x", "s", "1s2", "x1s", "1 s", "1d"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration such as '500ms', '10s' or '1m30s'"):
        parse_go_duration_ms(text)


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="is negative"):
        parse_go_duration_ms("-1s")
