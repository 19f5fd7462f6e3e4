"""Request and response conditions of every source kind, as config match trees.

Every regex in the config is anchored here, so the proxy applies all of them the
same way (a search): ServiceProfile paths and Gateway-style regexes match the whole
value; SMI `pathRegex` is anchored at the start only, as the SMI spec says.

The proxy matches with RE2 (`weft_api.route_regex`), and the models admit a user's
regex only if RE2 compiles it both alone and anchored (`whole`, `^(?:...)$`: the whole
value, as RE2's `$` matches only at the very end, never before a trailing newline).
Exact values and prefixes go through `re.escape`, whose every escape RE2 reads as the
character itself (tests/operator/test_catalog_regex.py checks every code point).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from weft_api import route_regex
from weft_api.config import RequestMatch, ResponseMatch, StatusRange, ValueMatch
from weft_resources.httproute import (
    PathMatchSpec,
    RouteMatchSpec,
    RouteRuleSpec,
    ValueMatchSpec,
)
from weft_resources.serviceprofile import RequestCondition, ResponseCondition
from weft_resources.specs import HTTPMatch

EVERY_REQUEST = RequestMatch(all=())


def all_of(matches: Iterable[RequestMatch]) -> RequestMatch:
    """One match stays itself; none matches every request."""
    collected = tuple(matches)
    return collected[0] if len(collected) == 1 else RequestMatch(all=collected)


def any_of(matches: Iterable[RequestMatch]) -> RequestMatch:
    """One match stays itself; none (Gateway API's default) matches every request."""
    collected = tuple(matches)
    if not collected:
        return EVERY_REQUEST
    return collected[0] if len(collected) == 1 else RequestMatch(any=collected)


def exact_path(path: str) -> RequestMatch:
    return RequestMatch(path_regex=f"^{re.escape(path)}$")


def from_profile_condition(condition: RequestCondition) -> RequestMatch:
    """Fields set together in one ServiceProfile condition are ANDed."""
    parts = []
    if condition.path_regex is not None:
        parts.append(RequestMatch(path_regex=_whole(condition.path_regex)))
    if condition.method is not None:
        parts.append(RequestMatch(method=condition.method.upper()))
    if condition.all is not None:
        parts.append(RequestMatch(all=tuple(map(from_profile_condition, condition.all))))
    if condition.any is not None:
        parts.append(RequestMatch(any=tuple(map(from_profile_condition, condition.any))))
    if condition.not_ is not None:
        parts.append(RequestMatch(not_=from_profile_condition(condition.not_)))
    return all_of(parts)


def from_response_condition(condition: ResponseCondition) -> ResponseMatch:
    parts = []
    if condition.status is not None:
        status = StatusRange(min=condition.status.lowest, max=condition.status.highest)
        parts.append(ResponseMatch(status=status))
    if condition.all is not None:
        parts.append(ResponseMatch(all=tuple(map(from_response_condition, condition.all))))
    if condition.any is not None:
        parts.append(ResponseMatch(any=tuple(map(from_response_condition, condition.any))))
    if condition.not_ is not None:
        parts.append(ResponseMatch(not_=from_response_condition(condition.not_)))
    return parts[0] if len(parts) == 1 else ResponseMatch(all=tuple(parts))


def from_smi_match(match: HTTPMatch) -> RequestMatch:
    """An HTTPRouteGroup match: path (anchored at the start), methods, headers."""
    parts = []
    if match.path_regex is not None:
        parts.append(RequestMatch(path_regex=route_regex.at_start(match.path_regex)))
    if match.methods and "*" not in match.methods:
        parts.append(any_of(RequestMatch(method=method.upper()) for method in match.methods))
    for header in match.headers:
        value_regex = _whole(header.value_regex)
        parts.append(RequestMatch(header=ValueMatch(name=header.name, value_regex=value_regex)))
    return all_of(parts)


def from_route_match(match: RouteMatchSpec) -> RequestMatch:
    """A Gateway-API-shaped HTTPRoute match."""
    parts = []
    if match.path is not None and (path := _path(match.path)) is not None:
        parts.append(path)
    for header in match.headers:
        parts.append(RequestMatch(header=_value_match(header, header.name.lower())))
    for parameter in match.query_params:
        parts.append(RequestMatch(query_param=_value_match(parameter, parameter.name)))
    if match.method is not None:
        parts.append(RequestMatch(method=match.method.upper()))
    return all_of(parts)


def _path(path: PathMatchSpec) -> RequestMatch | None:
    match path.type:
        case "Exact":
            return exact_path(path.value)
        case "RegularExpression":
            return RequestMatch(path_regex=_whole(path.value))
    # A prefix matches whole segments: /books matches /books and /books/1, not /booksy.
    prefix = path.value.rstrip("/")
    if not prefix:
        return None
    return RequestMatch(path_regex=f"^{re.escape(prefix)}(?:/.*)?$")


def _value_match(match: ValueMatchSpec, name: str) -> ValueMatch:
    regex = (
        _whole(match.value) if match.type == "RegularExpression" else f"^{re.escape(match.value)}$"
    )
    return ValueMatch(name=name, value_regex=regex)


def _whole(regex: str) -> str:
    return route_regex.whole(regex)  # the models checked that RE2 compiles it so


def rule_matches(rule: RouteRuleSpec) -> tuple[RequestMatch, ...]:
    """An HTTPRoute rule's matches (ORed); a rule without matches takes every request."""
    return tuple(map(from_route_match, rule.matches)) or (EVERY_REQUEST,)
