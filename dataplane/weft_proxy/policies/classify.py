"""Response classification: success or failure, for metrics, retries and failure accrual.

A route's response classes are tried in order and the first whose condition matches
decides, as in a ServiceProfile. When none matches (or the route has none), the default
applies: an HTTP status of 500 or more is a failure, and so is a gRPC status other than 0
(OK), which gRPC servers send with an HTTP 200.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from weft_api.config import ResponseClass, ResponseMatch

GRPC_OK = 0


class Classification(enum.StrEnum):
    """The `classification` label of `response_total`."""

    SUCCESS = "success"
    FAILURE = "failure"


# Python 3.11's EnumType has a __getattr__, which makes each `Classification.X` a slow lookup
# (a method wrapper made and freed): per-message code reads these instead.
_SUCCESS, _FAILURE = Classification.SUCCESS, Classification.FAILURE


def classify_response(
    classes: Sequence[ResponseClass], status: int, grpc_status: int | None = None
) -> Classification:
    """Classify a response by HTTP `status` and, for gRPC, the `grpc-status` it ended with."""
    for response_class in classes:
        if response_matches(response_class.condition, status):
            return _FAILURE if response_class.is_failure else _SUCCESS
    failed = status >= 500 or (grpc_status is not None and grpc_status != GRPC_OK)
    return _FAILURE if failed else _SUCCESS


def response_matches(match: ResponseMatch, status: int) -> bool:
    # Status trees hold no regex: evaluating them directly is as cheap as compiling them.
    if match.status is not None:
        return match.status.min <= status <= match.status.max
    if match.all is not None:
        return all(response_matches(part, status) for part in match.all)
    if match.any is not None:
        return any(response_matches(part, status) for part in match.any)
    assert match.not_ is not None  # ResponseMatch sets exactly one field
    return not response_matches(match.not_, status)
