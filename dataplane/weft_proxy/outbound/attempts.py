"""The request path that outbound HTTP/1 and HTTP/2 share: a request's plan (route,
backend, endpoints, deadline), then its attempts (endpoint choice, retries within budget,
failure accrual, metrics). A stack supplies only how one attempt is exchanged with one
endpoint, and relays the answer of the last one.

A retry chooses again, as Linkerd's and Envoy's retries go to another host: first
another endpoint of the same backend, then, when that backend has no other usable one,
the split draws again among the other backends with a weight. Only when none is left
does a retry go back to an endpoint already tried. A backend whose endpoints are all
ejected counts as a failed attempt there (the proxy's 503, against that backend), which
a retryable request retries on another backend.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from weft_api.config import Backend, OutboundService, Route
from weft_proxy.errors import ProxyError
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound.state import EndpointGroup, EndpointKey, OutboundState, ServiceState
from weft_proxy.policies.balance import InFlight
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.request_match import RequestHead
from weft_proxy.policies.retry import RetryDecision, decide_retry
from weft_proxy.policies.split import WeightedChoice
from weft_proxy.policies.timeouts import (
    GRPC_TIMEOUT_HEADER,
    TIMEOUT_HEADER,
    Deadline,
    request_deadline,
)
from weft_proxy.tap.hub import TapEvent, TapHub


class Answer(Protocol):
    """An endpoint's response head, as the attempt loop judges it."""

    @property
    def status(self) -> int: ...

    @property
    def grpc_status(self) -> int | None:
        """For gRPC, the status known so far (a trailers-only response says it at once)."""
        ...

    def discard(self) -> None:
        """Give up on the response (a retry follows): its connection or stream is spent."""


AnswerT = TypeVar("AnswerT", bound=Answer)
T = TypeVar("T")


_TIMEOUT_HEADERS = (TIMEOUT_HEADER.encode(), GRPC_TIMEOUT_HEADER.encode())


def timeout_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Only the headers a client may shorten its deadline with, for a parent without
    routes (whose requests are not otherwise decoded). Names are lower case, as both
    HTTP/1 (parsed) and HTTP/2 heads have them."""
    found: list[tuple[str, str]] = []
    for key, value in headers:  # (a loop, not a comprehension: no frame of its own)
        if key in _TIMEOUT_HEADERS:
            found.append((key.decode("latin-1"), value.decode("latin-1")))
    return found


@dataclass(slots=True)
class Plan:
    """Where a request goes and how long it may take, decided once for all its attempts."""

    state: ServiceState
    group: EndpointGroup
    route: Route | None
    authority: str
    deadline: Deadline | None
    timeout_ms: int | None
    route_target: Target | None  # the route_* labels; None: no ServiceProfile routes
    port: int
    # The backends the split drew `group`'s from, which a retry may draw again among;
    # () when the request did not go through the split (v1alpha3+ matches).
    split_backends: tuple[Backend, ...]
    rng: random.Random

    @property
    def route_name(self) -> str:
        """`rt_route` in metrics: the ServiceProfile route matched, if any."""
        return self.route.name if self.route is not None else ""

    def remaining_s(self, clock: Clock) -> float | None:
        return self.deadline.remaining(clock) if self.deadline is not None else None

    def timed_out(self) -> ProxyError:
        return ProxyError(504, f"request timed out after {self.timeout_ms} ms")


def plan_request(
    outbound: OutboundState,
    service: OutboundService,
    port: int,
    authority: str,
    request: Callable[[], RequestHead],
    headers: Iterable[tuple[bytes, bytes]],
) -> Plan:
    """Route, backend and deadline of a request to `service`; a ProxyError (503) when the
    backend chosen has no endpoints. Counts the request in the retry budget.

    `request` builds the request for matching, which costs: it is called only for a
    parent with routes or split matches; otherwise only the timeout headers of the
    request's `headers` (as they came, lower case) are read.
    """
    state = outbound.state_of(service)
    clock = outbound.clock
    route_target = None
    if state.matches_requests:
        matchable = request()
        route = state.routes.route_for(matchable, port)
        group, split_backends = state.drawn(state.split.pick(matchable), port)
        deadline = request_deadline(route.timeout_ms if route else None, matchable.headers, clock)
        route_target = state.route_target(port, route.name if route is not None else "")
    else:  # no routes (so no route metrics), no matches: the same way for every request
        route = None
        group, split_backends = state.unrouted(port)
        deadline = request_deadline(None, timeout_headers(headers), clock)
    if group is None or not group.endpoints:
        raise ProxyError(503, f"no endpoints for {service.name}.{service.namespace}:{port}")
    timeout_ms = round(deadline.timeout_s * 1000) if deadline is not None else None
    state.budget.record_request()
    return Plan(
        state,
        group,
        route,
        authority,
        deadline,
        timeout_ms,
        route_target,
        port,
        split_backends,
        outbound.rng,
    )


def _name(backend: Backend) -> tuple[str, str]:
    # A kept group's backend is the config's before: compare Services, not configs.
    return backend.namespace, backend.name


class Tried:
    """What a request's attempts have tried, so that a retry chooses again: another
    endpoint of the current backend, else another backend of the split."""

    __slots__ = ("backends", "endpoints")

    def __init__(self, plan: Plan) -> None:
        self.backends = {_name(plan.group.backend)}
        self.endpoints: set[EndpointKey] = set()  # of plan.group

    def untried(self, plan: Plan) -> EndpointKey | None:
        """An available endpoint of `plan.group` not tried yet, else one of another
        backend (`plan.group` moves to it), else None."""
        group = plan.group
        key = group.balancer.pick(
            lambda key: key not in self.endpoints and group.accrual.is_available(key)
        )
        return key if key is not None else self.other_backend(plan)

    def other_backend(self, plan: Plan) -> EndpointKey | None:
        """An available endpoint of a backend not tried yet, drawn by the split's weights
        among those left; `plan.group` moves to its group. None: no such backend."""
        while True:
            left = [b for b in plan.split_backends if _name(b) not in self.backends]
            backend = WeightedChoice(left).pick(plan.rng) if left else None
            if backend is None:
                return None
            self.backends.add(_name(backend))
            group = plan.state.group(backend, plan.port)
            key = group.pick() if group is not None else None
            if group is not None and key is not None:
                plan.group, self.endpoints = group, set()
                return key


class Ending(enum.Enum):
    """How a response relayed after its head ended."""

    COMPLETE = "complete"
    BROKEN = "broken"  # the endpoint reset it, or its connection was lost
    CANCELLED = "cancelled"  # the client gave up: no verdict on the endpoint


# Python 3.11's EnumType has a __getattr__, which makes each `Ending.X` a slow lookup
# (a method wrapper made and freed): per-message code reads these instead.
_COMPLETE, _CANCELLED = Ending.COMPLETE, Ending.CANCELLED
_FAILURE = Classification.FAILURE


class Attempt(Generic[AnswerT]):
    """The attempt whose answer goes back to the client; `settle` it once its response is
    over, for failure accrual and metrics."""

    # Not a dataclass: mypyc cannot compile a generic one (mypyc/mypyc#827).
    __slots__ = (
        "answer",
        "classification",
        "key",
        "latency_ms",
        "plan",
        "request_latency_ms",
        "target",
    )

    def __init__(
        self,
        plan: Plan,
        key: EndpointKey,
        target: Target,
        answer: AnswerT,
        latency_ms: float,  # to the response head, as Linkerd's response_latency_ms measures
        request_latency_ms: float,  # the same, from the request's start (retries included)
        classification: Classification,
    ) -> None:
        self.plan = plan
        self.key = key
        self.target = target
        self.answer = answer
        self.latency_ms = latency_ms
        self.request_latency_ms = request_latency_ms
        self.classification = classification

    def settle(
        self,
        metrics: ProxyMetrics,
        *,
        grpc_status: int | None = None,
        ending: Ending = Ending.COMPLETE,
    ) -> None:
        """`grpc_status` from trailers reclassifies the response; one that did not end
        complete is a failure."""
        classification = self.classification
        if ending is not _COMPLETE:
            classification = _FAILURE
        elif grpc_status is not None:
            classes = self.plan.route.response_classes if self.plan.route else ()
            classification = classify_response(classes, self.answer.status, grpc_status)
        if ending is not _CANCELLED:
            failed = classification is _FAILURE
            self.plan.group.accrual.record(self.key, failed=failed)
        grpc = grpc_status if grpc_status is not None else self.answer.grpc_status
        # A StrEnum is its value: passed as it is, without the enum's property lookup.
        status, value = self.answer.status, classification
        metrics.response(self.target, status, value, self.latency_ms, grpc)
        route = self.plan.route_target
        if route is not None:
            metrics.route_actual_response(route, status, value, grpc)
            metrics.route_response(route, status, value, self.request_latency_ms, grpc)


def tap(hub: TapHub, plan: Plan, chosen: Attempt[Any], method: str, path: str, source: str) -> None:
    """Publish the exchange to live tap watchers; callers check `hub.watched` first, as
    what they pass costs to compute."""
    endpoint = plan.group.endpoints.get(chosen.key)
    service = plan.state.service
    hub.publish(
        TapEvent(
            direction="outbound",
            method=method,
            authority=plan.authority,
            path=path,
            status=chosen.answer.status,
            latency_ms=chosen.latency_ms,
            tls=bool(endpoint and endpoint.identity),  # meshed endpoints: mTLS or nothing
            source=source,
            destination=f"{chosen.key[0]}:{chosen.key[1]}",
            timestamp=time.time(),
            destination_service=f"{service.namespace}/{service.name}",
            destination_identity=(endpoint.identity or "") if endpoint else "",
            grpc_status=chosen.answer.grpc_status,
        )
    )


async def attempt(
    plan: Plan,
    exchange: Callable[[EndpointKey], Awaitable[AnswerT | None]],
    retryable_bytes: Callable[[], int | None],
    metrics: ProxyMetrics,
    clock: Clock,
    resumed: Resumed | None = None,
) -> Attempt[AnswerT]:
    """Send the request to endpoints until an answer is final: one not to retry, by the
    route, the body (`retryable_bytes`, as `decide_retry` takes it) and the budget.

    `exchange` sends the request to one endpoint and returns its answer (a response
    head), or None if the endpoint could not be reached. The deadline bounds the wait
    for that head, the one thing the proxy can still answer for: ProxyError 504 when it
    passes, 503 when every endpoint is ejected, 502 when the last one could not be
    reached. A response body then streams under the client's own deadline.

    `resumed`: the request's first attempts were made in callbacks (`begin`, `dispatch`,
    `judge`), and a retry goes on here.
    """
    started = begin(plan, metrics, clock) if resumed is None else resumed.started
    try:
        attempts = _attempts(plan, exchange, retryable_bytes, metrics, clock, started, resumed)
        if plan.deadline is None:
            return await attempts
        return await _within_deadline(plan.deadline, plan.timed_out, attempts, clock)
    except ProxyError as failure:
        count_failure(plan, failure, metrics, clock, started)
        raise


def begin(plan: Plan, metrics: ProxyMetrics, clock: Clock) -> float:
    """The request's start, before its first attempt: when it began."""
    if plan.route_target is not None:
        metrics.route_request(plan.route_target)
    return clock()


def count_failure(
    plan: Plan, failure: ProxyError, metrics: ProxyMetrics, clock: Clock, started: float
) -> None:
    """The client gets the proxy's own answer: count it against the backend, or a canary
    whose endpoints are all ejected would look idle, not failing."""
    target = plan.group.failure_target(plan.authority, plan.route_name)
    metrics.request(target)
    latency_ms = (clock() - started) * 1000
    failed = Classification.FAILURE.value
    metrics.response(target, failure.status, failed, latency_ms)
    if plan.route_target is not None:
        metrics.route_response(plan.route_target, failure.status, failed, latency_ms)


async def _within_deadline(
    deadline: Deadline, timed_out: Callable[[], ProxyError], attempts: Awaitable[T], clock: Clock
) -> T:
    """`attempts`, bounded by the request's deadline (`timed_out()` raised when it passes)."""
    try:
        async with asyncio.timeout(deadline.remaining(clock)):
            return await attempts
    except TimeoutError:
        raise timed_out() from None


class Dispatched:
    """One attempt sent to an endpoint, until its answer is judged."""

    __slots__ = ("in_flight", "key", "started", "target")

    def __init__(self, key: EndpointKey, target: Target, in_flight: InFlight, started: float):
        self.key = key
        self.target = target
        self.in_flight = in_flight
        self.started = started


@dataclass(slots=True)
class Resumed:
    """Where the attempts begun in callbacks left off: the next endpoint to try."""

    started: float  # the request's start (`begin`)
    key: EndpointKey
    tried: Tried | None  # None: no attempt made yet


def dispatch(
    plan: Plan, key: EndpointKey, tried: Tried | None, metrics: ProxyMetrics, clock: Clock
) -> Dispatched:
    """Count an attempt to `key` as it is sent."""
    group = plan.group  # the retries of a request may move it to another backend
    if tried is not None:
        tried.endpoints.add(key)
    target = group.target(key, plan.authority, plan.state.service, plan.route_name)
    metrics.request(target)
    if plan.route_target is not None:
        metrics.route_actual_request(plan.route_target)
    group.accrual.on_dispatch(key)
    return Dispatched(key, target, group.balancer.start(key), clock())


def judge(
    plan: Plan,
    sent: Dispatched,
    answer: AnswerT | None,
    tried: Tried | None,
    retryable_bytes: Callable[[], int | None],
    metrics: ProxyMetrics,
    clock: Clock,
    request_started: float,
) -> Attempt[AnswerT] | Resumed:
    """An attempt's `answer` (None: the endpoint could not be reached): final (the
    Attempt), a retry (where to: `Resumed`), or ProxyError (503, 502)."""
    sent.in_flight.finish()
    key, target, group, route = sent.key, sent.target, plan.group, plan.route_target
    if answer is None:
        classification = _FAILURE
    else:
        classes = plan.route.response_classes if plan.route else ()
        classification = classify_response(classes, answer.status, answer.grpc_status)
    failed = classification is _FAILURE
    state = plan.state
    retry = failed and (
        decide_retry(
            plan.route,
            failed=failed,
            body_bytes=retryable_bytes(),
            budget=state.budget,
            time_left_s=plan.remaining_s(clock),
        )
        is RetryDecision.RETRY
    )
    now = clock()
    if retry:
        group.accrual.record(key, failed=True)
        state.budget.record_retry()
        if answer is not None:
            # The endpoint's answer counts as it was, though the client never sees it:
            # a partly failing canary must show, retries or not.
            answer.discard()
            failed_value, grpc = classification.value, answer.grpc_status
            latency_ms = (now - sent.started) * 1000
            metrics.response(target, answer.status, failed_value, latency_ms, grpc)
            if route is not None:
                metrics.route_actual_response(route, answer.status, failed_value, grpc)
        # Choose again; with nothing else left, an endpoint already tried.
        if tried is None:
            tried = Tried(plan)
            tried.endpoints.add(key)
        next_key = tried.untried(plan) or plan.group.pick()
        if next_key is None:
            raise ProxyError(503, _ALL_EJECTED)
        return Resumed(request_started, next_key, tried)
    if answer is None:
        group.accrual.record(key, failed=True)
        raise ProxyError(502, f"connection to {key[0]}:{key[1]} failed")
    latency_ms = (now - sent.started) * 1000
    request_latency_ms = (now - request_started) * 1000
    return Attempt(plan, key, target, answer, latency_ms, request_latency_ms, classification)


async def _attempts(
    plan: Plan,
    exchange: Callable[[EndpointKey], Awaitable[AnswerT | None]],
    retryable_bytes: Callable[[], int | None],
    metrics: ProxyMetrics,
    clock: Clock,
    request_started: float,
    resumed: Resumed | None,
) -> Attempt[AnswerT]:
    tried: Tried | None  # made for a second attempt only: most requests have one
    if resumed is not None:
        key, tried = resumed.key, resumed.tried
    else:
        tried = None
        picked = plan.group.pick()
        if picked is None:
            tried = Tried(plan)
            picked = _past_ejected(plan, tried, retryable_bytes, metrics, clock)
        key = picked
    while True:
        sent = dispatch(plan, key, tried, metrics, clock)
        try:
            answer = await exchange(key)
        except BaseException as error:
            sent.in_flight.finish()
            timed_out = plan.deadline is not None and plan.deadline.expired(clock)
            if timed_out and isinstance(error, asyncio.CancelledError):
                plan.group.accrual.record(key, failed=True)  # the endpoint's failure
            raise
        verdict = judge(plan, sent, answer, tried, retryable_bytes, metrics, clock, request_started)
        if not isinstance(verdict, Resumed):
            return verdict  # the final answer
        key, tried = verdict.key, verdict.tried


_ALL_EJECTED = "every endpoint is failing; it will be probed again shortly"


def _past_ejected(
    plan: Plan,
    tried: Tried,
    retryable_bytes: Callable[[], int | None],
    metrics: ProxyMetrics,
    clock: Clock,
) -> EndpointKey:
    """An endpoint of another backend, for a request whose backend has every endpoint
    ejected: that is a failed attempt there (the proxy's 503, counted against it, so a
    canary analysis sees it), retried as any other. ProxyError 503 when it is not."""
    decision = decide_retry(
        plan.route,
        failed=True,
        body_bytes=retryable_bytes(),
        budget=plan.state.budget,
        time_left_s=plan.remaining_s(clock),
    )
    ejected = plan.group
    key = tried.other_backend(plan) if decision is RetryDecision.RETRY else None
    if key is None:
        raise ProxyError(503, _ALL_EJECTED)  # `attempt` counts it against the backend
    plan.state.budget.record_retry()
    target = ejected.failure_target(plan.authority, plan.route_name)
    metrics.request(target)
    metrics.response(target, 503, Classification.FAILURE.value, 0.0)
    return key
