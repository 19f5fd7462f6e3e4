"""The proxy's per-connection limits on HTTP/2 floods, as a setting: what injection
reads from the `config.weft.dev/proxy-http2-limits` annotation and the proxy from
`WEFT_PROXY_HTTP2_LIMITS`. The proxy enforces them (weft_proxy.protocols.http2_limits).

A frame that opens and resets a stream (CVE-2023-44487, "rapid reset"), a SETTINGS, a
PING, a PRIORITY, an empty DATA or an unknown frame costs the sender a few bytes and the
proxy real work on its one event loop. Each kind gets a token bucket per connection: a
burst, then a sustained rate per second. The defaults are far above what real clients
send (gRPC keepalive pings every few seconds, a SETTINGS or two per connection, calls
cancelled now and then) and far below what a flood sends (hundreds of thousands of
frames a second).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Final


class Flood(enum.Enum):
    """The kinds of frame a peer's budget counts, by the name a setting gives them."""

    RESETS = "resets"  # streams the peer opened and reset (RST_STREAM)
    SETTINGS = "settings"  # SETTINGS frames (acknowledgements are free)
    PINGS = "pings"  # PING frames (acknowledgements are free)
    CONTROL = "control"  # PRIORITY, unknown frame types, empty DATA that ends nothing


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int
    per_second: float


_DEFAULTS: Final = {
    Flood.RESETS: Rate(burst=200, per_second=100),
    Flood.SETTINGS: Rate(burst=20, per_second=5),
    Flood.PINGS: Rate(burst=100, per_second=50),
    Flood.CONTROL: Rate(burst=500, per_second=250),
}


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Per-connection limits, one rate per kind of frame."""

    rates: dict[Flood, Rate] = field(default_factory=lambda: dict(_DEFAULTS))
    # Streams whose handlers still run, reset or not: past this the peer opens streams
    # faster than they can be cancelled, whatever it resets.
    max_handlers: int = 512

    def with_rate(self, kind: Flood, rate: Rate) -> FloodLimits:
        return replace(self, rates={**self.rates, kind: rate})


DEFAULT_LIMITS: Final = FloodLimits()


def parse(text: str) -> FloodLimits:
    """Limits from a setting such as `resets=200:100,pings=20:5` (kind=burst:per_second;
    kinds not named keep their default). ValueError names what is wrong."""
    limits = DEFAULT_LIMITS
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, value = part.partition("=")
        try:
            kind = Flood(name.strip())
        except ValueError:
            known = ", ".join(k.value for k in Flood)
            raise ValueError(f"unknown HTTP/2 limit {name!r} (known: {known})") from None
        burst, _, per_second = value.partition(":")
        try:
            rate = Rate(int(burst), float(per_second))
        except ValueError:
            raise ValueError(f"{part!r}: expected {name}=BURST:PER_SECOND, e.g. 200:100") from None
        if rate.burst < 1 or not rate.per_second >= 0:
            raise ValueError(f"{part!r}: the burst must be 1 or more, the rate 0 or more")
        limits = limits.with_rate(kind, rate)
    return limits
