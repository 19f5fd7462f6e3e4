"""Request match trees (routes, split matches, route-limited authorizations) as predicates.

A `RequestMatch` tree is compiled once, when its config arrives, into a closure; requests
are then matched without walking the dataclasses or compiling regexes again. Every regex
is already anchored by the catalog, so all of them are applied with a plain search, by
RE2 (`weft_api.route_regex`): linear in the request, whatever the pattern, where
Python's backtracking `re` could spend hours on one request and stall the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from weft_api import route_regex
from weft_api.config import RequestMatch, ValueMatch
from weft_proxy.protocols import http1


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What matching looks at in an HTTP request.

    `path` is without the query, `query` the raw query string (no `?`). Header names are
    lower case (HTTP/2 sends them so; the HTTP/1 stack lowers them); a repeated header is
    several pairs, and a match on it holds if any of its values matches.
    """

    method: str
    path: str
    query: str = ""
    headers: Sequence[tuple[str, str]] = ()

    @classmethod
    def from_http1(cls, head: http1.RequestHead) -> RequestHead:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers]
        return cls.from_target(head.method, head.target.decode("latin-1"), headers)

    @classmethod
    def from_http2(cls, headers: Sequence[tuple[bytes, bytes]]) -> RequestHead:
        """From an HTTP/2 head: pseudo-headers give method and path, the rest are headers."""
        method, path, plain = "GET", "/", []
        for key, value in headers:
            if key == b":method":
                method = value.decode("latin-1")
            elif key == b":path":
                path = value.decode("latin-1")
            elif not key.startswith(b":"):
                plain.append((key.decode("latin-1"), value.decode("latin-1")))
        return cls.from_target(method, path, plain)

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: Sequence[tuple[str, str]] = ()
    ) -> RequestHead:
        """From an HTTP/1 request target (origin or absolute form) or an HTTP/2 `:path`."""
        if not target.startswith("/") and "://" in target:
            # Absolute form: drop the scheme and authority, keep the rest.
            target = "/" + target.partition("://")[2].partition("/")[2]
        path, _, query = target.partition("?")
        return cls(method, path, query, headers)


RequestPredicate = Callable[[RequestHead], bool]


def compile_request_match(match: RequestMatch) -> RequestPredicate:
    """A predicate for `match`; raises ValueError for a regex RE2 cannot compile, so
    that the config client can refuse the snapshot instead of mis-routing."""
    if match.path_regex is not None:
        search_path = _search(match.path_regex)
        return lambda request: search_path(request.path)
    if match.method is not None:
        method = match.method
        return lambda request: request.method == method
    if match.header is not None:
        return _header_predicate(match.header)
    if match.query_param is not None:
        return _query_param_predicate(match.query_param)
    if match.all is not None:
        return _all_of(tuple(map(compile_request_match, match.all)))
    if match.any is not None:
        return compile_any_of(match.any)
    assert match.not_ is not None  # RequestMatch sets exactly one field
    negated = compile_request_match(match.not_)
    return lambda request: not negated(request)


def compile_any_of(matches: Iterable[RequestMatch]) -> RequestPredicate:
    """Matches a request that any of `matches` matches; none matches no request."""
    alternatives = tuple(map(compile_request_match, matches))
    match alternatives:
        case (only,):
            return only
        case (first, second):
            return lambda request: first(request) or second(request)
    return lambda request: any(part(request) for part in alternatives)


def _all_of(parts: tuple[RequestPredicate, ...]) -> RequestPredicate:
    # One or two parts (what the catalog mostly writes) skip the generator: about 4x faster.
    match parts:
        case (only,):
            return only
        case (first, second):
            return lambda request: first(request) and second(request)
    return lambda request: all(part(request) for part in parts)


def _header_predicate(header: ValueMatch) -> RequestPredicate:
    name, search_value = header.name.lower(), _search(header.value_regex)
    return lambda request: any(
        key == name and search_value(value) for key, value in request.headers
    )


def _query_param_predicate(parameter: ValueMatch) -> RequestPredicate:
    name, search_value = parameter.name, _search(parameter.value_regex)

    def matches(request: RequestHead) -> bool:
        # Decoded as a form would be (`a%2Fb` is `a/b`, `?flag` is an empty value).
        pairs = parse_qsl(request.query, keep_blank_values=True)
        return any(key == name and search_value(value) for key, value in pairs)

    return matches


@functools.lru_cache(maxsize=1024)
def _search(pattern: str) -> Callable[[str], bool]:
    # Cached by text, so a new snapshot repeating a regex does not compile it again.
    try:
        return route_regex.compile_search(pattern)
    except route_regex.RegexError as error:
        raise ValueError(f"invalid regex {pattern!r}: {error.reason}") from error
