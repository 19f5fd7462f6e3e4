"""Kubernetes quantities and Go durations, as upstream writes them."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?"
)
_BINARY_POWERS = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

_DURATION_PART = re.compile(
    r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
)  # Go accepts both micro signs
_NANOS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NANOS_PER_MILLI = 1_000_000


def parse_quantity(value: int | str) -> Fraction:
    """The exact value of a Kubernetes quantity: `1` and `"1"` are 1, `"500m"` is 1/2."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Fraction(value)
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number = Fraction(match["number"])
    if match["binary"]:
        return number * (1 << _BINARY_POWERS[match["binary"]])
    if match["decimal"]:
        return number * Fraction(10) ** _DECIMAL_EXPONENTS[match["decimal"]]
    if match["exponent"]:
        return number * Fraction(10) ** int(match["exponent"])
    return number


def quantity_to_milli(value: int | str) -> int:
    """A quantity in thousandths, rounded up as Kubernetes' MilliValue does: `"1"` is 1000."""
    return math.ceil(parse_quantity(value) * 1000)


def parse_go_duration_ms(text: str) -> int:
    """A Go duration (`"10s"`, `"500ms"`, `"1m30s"`, `"0"`) in milliseconds, rounded up.

    Rounding up keeps a short positive timeout from becoming 0, which means "none".
    Negative durations are refused: nothing Weft configures runs backwards.
    """
    remaining = text.strip()
    if remaining.startswith("-"):
        raise ValueError(f"{text!r} is negative; a duration here must be 0 or more")
    remaining = remaining.removeprefix("+")
    if remaining == "0":
        return 0
    parts = list(_DURATION_PART.finditer(remaining))
    if not parts or "".join(part[0] for part in parts) != remaining:
        raise ValueError(f"{text!r} is not a duration such as '500ms', '10s' or '1m30s'")
    nanos = sum(Fraction(part[1]) * _NANOS_PER_UNIT[part[2]] for part in parts)
    return math.ceil(nanos / _NANOS_PER_MILLI)
