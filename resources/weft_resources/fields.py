"""Field types shared by several kinds: each validates and normalises one thing."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from weft_api import route_regex
from weft_resources.units import parse_go_duration_ms, quantity_to_milli

_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def compiled_regex(pattern: str) -> str:
    """`pattern`, if the proxy's engine (RE2, same options) compiles it.

    Python's `re` must not judge: it admits backtracking-only syntax (backreferences,
    lookaround) that the proxy cannot run, and its matching could stall a proxy for hours.
    """
    return route_regex.check(pattern)  # RegexError is a ValueError: a sentence, pattern named


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{text!r} is not a CIDR such as '10.0.0.0/8' or 'fd00::/8'") from None


def _port_reference(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 65535:
            return value
        raise ValueError(f"{value} is not a port number (1 to 65535)")
    if isinstance(value, str) and len(value) <= 15 and _PORT_NAME.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is neither a port number nor a port name")


def milli_weight(value: Any) -> int:
    """A weight written as a Kubernetes quantity, in thousandths: `"500m"` is 500."""
    if not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    milli = quantity_to_milli(value)
    if milli < 0:
        raise ValueError(f"{value!r} is negative; a weight must be 0 or more")
    return milli


def _duration_ms(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration such as '500ms', '10s' or '1m30s'")
    return parse_go_duration_ms(value)


def _single_condition(value: Any) -> Any:
    # Upstream's CRD types `not` as a list while its Go types and docs use an object.
    # A list of several reads as "none of these": `not` of their `any`.
    if not isinstance(value, list):
        return value
    if not value:
        raise ValueError("a list for `not` must hold at least one condition")
    return value[0] if len(value) == 1 else {"any": value}


Regex = Annotated[str, AfterValidator(compiled_regex)]
Cidr = Annotated[str, AfterValidator(_network)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
PortReference = Annotated[int | str, BeforeValidator(_port_reference)]
MilliWeight = Annotated[int, BeforeValidator(milli_weight)]
DurationMs = Annotated[int, BeforeValidator(_duration_ms)]
ObjectOrList = BeforeValidator(_single_condition)
