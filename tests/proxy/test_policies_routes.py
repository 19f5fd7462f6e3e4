"""Request match trees, route selection and response classification."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_api.config import (
    RequestMatch,
    ResponseClass,
    ResponseMatch,
    Route,
    StatusRange,
    ValueMatch,
)
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.request_match import RequestHead, compile_request_match
from weft_proxy.policies.routes import RouteTable

GET_BOOKS = RequestHead("GET", "/books/12", "format=json&flag", (("x-user", "ana"),))


def matches(match: RequestMatch, request: RequestHead = GET_BOOKS) -> bool:
    return compile_request_match(match)(request)


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/books?id=1", "/books", "id=1"),
        ("/books", "/books", ""),
        ("http://books.default.svc:8080/books/1?x=y", "/books/1", "x=y"),
        ("http://books.default.svc", "/", ""),
        ("*", "*", ""),
    ],
)
def test_request_head_splits_the_target(target: str, path: str, query: str) -> None:
    head = RequestHead.from_target("GET", target)
    assert (head.path, head.query) == (path, query)


def test_path_regexes_are_searched_as_the_catalog_anchored_them() -> None:
    assert matches(RequestMatch(path_regex=r"^(?:/books/\d+)$"))
    assert not matches(RequestMatch(path_regex=r"^(?:/books)$"))
    assert matches(RequestMatch(path_regex=r"^(?:/books)"))  # SMI: anchored at the start only


def test_the_query_is_not_part_of_the_path() -> None:
    with_query = RequestHead.from_target("GET", "/books/12?format=json")
    assert matches(RequestMatch(path_regex=r"^(?:/books/12)$"), with_query)


def test_method_header_and_query_parameter() -> None:
    assert matches(RequestMatch(method="GET"))
    assert not matches(RequestMatch(method="POST"))
    assert matches(RequestMatch(header=ValueMatch("x-user", "^(?:ana|bo)$")))
    assert matches(RequestMatch(header=ValueMatch("X-User", "^(?:ana)$")))  # names: any case
    assert not matches(RequestMatch(header=ValueMatch("x-user", "^(?:an)$")))
    assert not matches(RequestMatch(header=ValueMatch("x-group", "^.*$")))
    assert matches(RequestMatch(query_param=ValueMatch("format", "^(?:json)$")))
    assert matches(RequestMatch(query_param=ValueMatch("flag", "^$")))
    assert not matches(RequestMatch(query_param=ValueMatch("Format", "^(?:json)$")))


def test_a_repeated_header_or_parameter_matches_on_any_value() -> None:
    request = RequestHead("GET", "/", "tag=a&tag=b%2Fc", (("x-tag", "a"), ("x-tag", "b")))
    assert matches(RequestMatch(header=ValueMatch("x-tag", "^b$")), request)
    assert matches(RequestMatch(query_param=ValueMatch("tag", "^b/c$")), request)  # decoded


def test_all_any_not() -> None:
    get = RequestMatch(method="GET")
    post = RequestMatch(method="POST")
    assert matches(RequestMatch(all=(get, RequestMatch(path_regex="^/books"))))
    assert not matches(RequestMatch(all=(get, post)))
    assert matches(RequestMatch(any=(post, get)))
    assert matches(RequestMatch(not_=post))
    assert not matches(RequestMatch(not_=get))
    assert matches(RequestMatch(all=()))  # the catalog's "every request"
    assert not matches(RequestMatch(any=()))


def test_an_invalid_regex_is_refused_when_compiled() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        compile_request_match(RequestMatch(path_regex="^(?:/books["))


trees = st.recursive(
    st.sampled_from(
        [
            RequestMatch(method="GET"),
            RequestMatch(method="POST"),
            RequestMatch(path_regex="^/books"),
            RequestMatch(header=ValueMatch("x-user", "^ana$")),
        ]
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda parts: RequestMatch(all=tuple(parts))),
        st.lists(children, max_size=3).map(lambda parts: RequestMatch(any=tuple(parts))),
        children.map(lambda part: RequestMatch(not_=part)),
    ),
    max_leaves=8,
)


def evaluate(match: RequestMatch, request: RequestHead) -> bool:
    """The tree's meaning, written out plainly, to check the compiled form against."""
    if match.method is not None:
        return request.method == match.method
    if match.path_regex is not None:
        return request.path.startswith("/books")
    if match.header is not None:
        return ("x-user", "ana") in request.headers
    if match.all is not None:
        return all(evaluate(part, request) for part in match.all)
    if match.any is not None:
        return any(evaluate(part, request) for part in match.any)
    assert match.not_ is not None
    return not evaluate(match.not_, request)


requests = st.builds(
    RequestHead,
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(["/books", "/books/1", "/authors"]),
    headers=st.sampled_from([(), (("x-user", "ana"),), (("x-user", "bo"),)]),
)


@given(trees, requests)
def test_compiled_trees_mean_what_the_tree_says(match: RequestMatch, request: RequestHead) -> None:
    assert compile_request_match(match)(request) == evaluate(match, request)


# --- routes ---------------------------------------------------------------------------

BOOKS = Route("books", RequestMatch(path_regex="^/books"), is_retryable=True)
ADMIN_ON_9090 = Route("admin", RequestMatch(path_regex="^/admin"), ports=(9090,))
EVERYTHING_ELSE = Route("default", RequestMatch(all=()))


def test_the_first_matching_route_wins() -> None:
    table = RouteTable([BOOKS, EVERYTHING_ELSE])
    assert table.route_for(GET_BOOKS, 80) is BOOKS
    assert table.route_for(RequestHead("GET", "/authors"), 80) is EVERYTHING_ELSE
    assert RouteTable([EVERYTHING_ELSE, BOOKS]).route_for(GET_BOOKS, 80) is EVERYTHING_ELSE


def test_a_route_with_ports_applies_to_those_ports_only() -> None:
    table = RouteTable([ADMIN_ON_9090])
    admin = RequestHead("GET", "/admin")
    assert table.route_for(admin, 9090) is ADMIN_ON_9090
    assert table.route_for(admin, 80) is None


def test_no_route_matches() -> None:
    assert RouteTable([BOOKS]).route_for(RequestHead("GET", "/authors"), 80) is None
    assert RouteTable([]).route_for(GET_BOOKS, 80) is None


# --- classification -------------------------------------------------------------------

SUCCESS, FAILURE = Classification.SUCCESS, Classification.FAILURE


@pytest.mark.parametrize(
    ("status", "grpc_status", "expected"),
    [
        (200, None, SUCCESS),
        (404, None, SUCCESS),
        (499, None, SUCCESS),
        (500, None, FAILURE),
        (503, None, FAILURE),
        (200, 0, SUCCESS),
        (200, 14, FAILURE),  # UNAVAILABLE
        (200, 5, FAILURE),  # NOT_FOUND: any status but OK
        (503, 0, FAILURE),
    ],
)
def test_default_classification(status: int, grpc_status: int | None, expected: str) -> None:
    assert classify_response((), status, grpc_status) == expected


def status_class(low: int, high: int, is_failure: bool) -> ResponseClass:
    return ResponseClass(ResponseMatch(status=StatusRange(low, high)), is_failure)


def test_the_first_matching_response_class_decides() -> None:
    classes = (status_class(404, 404, True), status_class(500, 599, False))
    assert classify_response(classes, 404) == FAILURE
    assert classify_response(classes, 503) == SUCCESS
    assert classify_response(classes, 200) == SUCCESS  # none matches: the default
    assert classify_response(classes, 200, grpc_status=13) == FAILURE


def test_response_condition_trees() -> None:
    not_found = ResponseMatch(status=StatusRange(404, 404))
    client_errors = ResponseMatch(status=StatusRange(400, 499))
    other_client_errors = ResponseMatch(all=(client_errors, ResponseMatch(not_=not_found)))
    classes = (ResponseClass(other_client_errors, True),)
    assert classify_response(classes, 403) == FAILURE
    assert classify_response(classes, 404) == SUCCESS
    either = ResponseClass(ResponseMatch(any=(not_found, client_errors)), True)
    assert classify_response((either,), 404) == FAILURE
