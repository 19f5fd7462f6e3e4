"""A request's deadline: its route's timeout, shortened by what the client asks for.

Clients may ask with either header:
- `weft-timeout`, a duration as Gateway API timeouts write it: one to four parts of a
  number (at most five digits) and a unit `h`, `m`, `s` or `ms`, such as `500ms`, `2s`
  or `1m30s`;
- `grpc-timeout`, as gRPC clients send it: at most eight digits and a unit `H`, `M`,
  `S`, `m` (ms), `u` (us) or `n` (ns), such as `100m`.

A client can only shorten the route's timeout, never extend it: the operator's limit on
how long the proxy holds a request stands. Zero, a malformed value or an unknown header
leaves the request to the route's timeout (a bad optional header is no reason to fail a
request). A route timeout of 0, as Gateway API means it, is no timeout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from weft_proxy.policies.clock import Clock

TIMEOUT_HEADER: Final = "weft-timeout"
GRPC_TIMEOUT_HEADER: Final = "grpc-timeout"

_DURATION = re.compile(r"(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}")
_DURATION_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
_SECONDS_PER_GRPC_UNIT = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request must be answered, on the proxy's monotonic clock."""

    at: float
    # The timeout it was set from, for the 504's message: remaining() on a loaded
    # machine may already have lost a millisecond.
    timeout_s: float = field(default=0.0, compare=False)

    def remaining(self, clock: Clock) -> float:
        """Seconds left, 0 once passed (what a timer or a retry decision needs)."""
        return max(0.0, self.at - clock())

    def expired(self, clock: Clock) -> bool:
        return clock() >= self.at


def request_deadline(
    route_timeout_ms: int | None, headers: Sequence[tuple[str, str]], clock: Clock
) -> Deadline | None:
    """The deadline of a request arriving now; None when nothing limits it.

    `headers` as in `RequestHead` (lower-case names).
    """
    if not route_timeout_ms and not headers:
        return None
    timeouts = [client_timeout_s(headers)]
    if route_timeout_ms:
        timeouts.append(route_timeout_ms / 1000)
    given = [timeout for timeout in timeouts if timeout is not None]
    if not given:
        return None
    timeout_s = min(given)
    return Deadline(clock() + timeout_s, timeout_s)


def client_timeout_s(headers: Sequence[tuple[str, str]]) -> float | None:
    """The shortest positive timeout the client's headers ask for, if any."""
    parsed = []
    for name, value in headers:
        if name == TIMEOUT_HEADER:
            parsed.append(parse_duration_s(value))
        elif name == GRPC_TIMEOUT_HEADER:
            parsed.append(parse_grpc_timeout_s(value))
    positive = [timeout for timeout in parsed if timeout]
    return min(positive) if positive else None


def parse_duration_s(value: str) -> float | None:
    """A `weft-timeout` value in seconds; None if malformed."""
    value = value.strip()
    if _DURATION.fullmatch(value) is None:
        return None
    return sum(
        int(number) * _SECONDS_PER_UNIT[unit] for number, unit in _DURATION_PART.findall(value)
    )


def parse_grpc_timeout_s(value: str) -> float | None:
    """A `grpc-timeout` value in seconds; None if malformed."""
    match = _GRPC_TIMEOUT.fullmatch(value.strip())
    if match is None:
        return None
    return int(match[1]) * _SECONDS_PER_GRPC_UNIT[match[2]]
