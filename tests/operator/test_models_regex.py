"""Every regex field is judged by the proxy's engine (RE2): what it cannot run is refused
with the field and the reason; what only backtracking engines choke on is admitted."""

from __future__ import annotations

from typing import Any

import pytest

from weft_operator.reconciler import Reconciler, StatusWrite
from weft_resources import InvalidResource, parse_resource
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND

PROFILE_META = {"name": "books.shop.svc.cluster.local", "namespace": "shop"}


def profile(path_regex: str) -> dict[str, Any]:
    condition = {"pathRegex": path_regex}
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": PROFILE_META,
        "spec": {"routes": [{"name": "r", "condition": condition}]},
    }


def route_group(path_regex: str | None = None, header: str | None = None) -> dict[str, Any]:
    match: dict[str, Any] = {"name": "m"}
    if path_regex is not None:
        match["pathRegex"] = path_regex
    if header is not None:
        match["headers"] = [{"x-version": header}]
    return {
        "apiVersion": "specs.smi-spec.io/v1alpha4",
        "kind": "HTTPRouteGroup",
        "metadata": {"name": "g", "namespace": "shop"},
        "spec": {"matches": [match]},
    }


def http_route(match: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"kind": "Server", "group": "policy.linkerd.io", "name": "s"}],
            "rules": [{"matches": [match]}],
        },
    }


def regex(value: str) -> dict[str, str]:
    return {"type": "RegularExpression", "value": value}


def header(value: str) -> dict[str, str]:
    return {"name": "x-version", **regex(value)}


# Patterns Python's `re` compiles (the old validator admitted them all), RE2 does not.
REFUSED = [
    pytest.param("(a)\\1", "backreferences are not supported", id="backreference"),
    pytest.param("(?P<v>a)(?P=v)", "backreferences are not supported", id="named-backref"),
    pytest.param("/books(?=/)", "lookahead is not supported", id="lookahead"),
    pytest.param("/books(?!/admin)", "lookahead is not supported", id="negative-lookahead"),
    pytest.param("(?<=/)books", "lookbehind is not supported", id="lookbehind"),
    pytest.param("(?>a+)b", "atomic groups are not supported", id="atomic-group"),
    pytest.param("a*+b", "possessive quantifiers are not supported", id="possessive"),
    pytest.param("/books\\Z", "write \\z for the end of the text", id="python-end-anchor"),
    pytest.param("a{1001}", "RE2 allows counts up to 1000", id="big-count"),
]


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidResource) as raised:
        parse_resource(body)
    return raised.value.message


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (profile, "spec.routes[0].condition.pathRegex"),
        (route_group, "spec.matches[0].pathRegex"),
        (lambda p: route_group(header=p), "spec.matches[0].headers: header 'x-version'"),
        (lambda p: http_route({"path": regex(p)}), "spec.rules[0].matches[0].path.value"),
        (
            lambda p: http_route({"headers": [header(p)]}),
            "spec.rules[0].matches[0].headers[0].value",
        ),
        (
            lambda p: http_route({"queryParams": [header(p)]}),
            "spec.rules[0].matches[0].queryParams[0].value",
        ),
    ],
    ids=["profile", "group-path", "group-header", "route-path", "route-header", "route-query"],
)
def test_what_re2_cannot_run_is_refused_naming_field_and_reason(
    make: Any, field: str, pattern: str, reason: str
) -> None:
    message = refusal(make(pattern))
    assert message.startswith(f"{field}: {pattern!r} is not a valid regular expression: ")
    assert reason in message
    assert "RE2" in message
    assert "https://github.com/google/re2/wiki/Syntax" in message


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "/api/(\\w+/?)+$", "(x+x+)+y", "(?i)/Books/[0-9]+", "/\\p{L}+", "(?P<id>\\d+)"],
)
def test_patterns_only_backtracking_engines_choke_on_are_admitted(pattern: str) -> None:
    parse_resource(profile(pattern))
    parse_resource(route_group(pattern, header=pattern))
    parse_resource(http_route({"path": regex(pattern), "headers": [header(pattern)]}))


def test_a_quote_that_would_swallow_the_catalogs_anchors_is_refused() -> None:
    # RE2 compiles `\Qv2` alone, a quote to the end; `^(?:\Qv2)$` would not compile.
    message = refusal(route_group(header="\\Qv2"))
    assert "a \\Q quote must end with \\E" in message
    parse_resource(route_group(header="\\Qv2.0\\E"))


def test_a_plain_syntax_error_carries_no_re2_hint() -> None:
    message = refusal(profile("/books/[0-9"))
    assert message == (
        "spec.routes[0].condition.pathRegex: '/books/[0-9' is not a valid regular "
        "expression: missing ]: [0-9"
    )


def test_the_operator_reports_the_field_and_reason_in_status() -> None:
    body = profile("/books/(?!admin)")
    body["metadata"] = {**PROFILE_META, "uid": "u1", "generation": 1}
    actions = Reconciler().observe(BY_KIND[Kind.SERVICE_PROFILE], "ADDED", body)
    write = next(action for action in actions if isinstance(action, StatusWrite))
    accepted = next(c for c in write.status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False"
    assert accepted["reason"] == "Invalid"
    assert accepted["message"].startswith(
        "spec.routes[0].condition.pathRegex: '/books/(?!admin)' is not a valid regular "
        "expression: invalid perl operator: (?! (lookahead is not supported"
    )
