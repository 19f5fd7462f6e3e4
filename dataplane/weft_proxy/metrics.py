"""The proxy's metrics, with Linkerd's names and labels, so Flagger's linkerd queries,
Grafana dashboards and habits carry over (see docs/proxy.md, "Metrics").

prometheus-client needs one label set per metric, while Linkerd's inbound and outbound
series carry different labels; every metric here has the union, and a label that does
not apply is empty, which Prometheus treats as absent.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS_MS = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip

TARGET_LABELS = (
    "direction",
    "authority",
    "tls",
    "no_tls_reason",
    "target_addr",
    "client_id",
    "srv_kind",
    "srv_name",
    "authz_kind",
    "authz_name",
    "server_id",
    "dst_namespace",
    "dst_service",
    "dst_deployment",
    "dst_pod",
    "dst_serviceaccount",
    "rt_route",
)
RESPONSE_LABELS = (*TARGET_LABELS, "status_code", "classification", "grpc_status_code")
# Per ServiceProfile route, outbound: `dst` is the Service's authority with its port.
ROUTE_LABELS = ("direction", "dst", "rt_route")
ROUTE_RESPONSE_LABELS = (*ROUTE_LABELS, "status_code", "classification", "grpc_status_code")


# The `le` labels of the latency buckets, as prometheus_client writes them (Go's float
# format, which for these bounds is Python's repr), +Inf last.
_LE = (*(repr(float(bound)) for bound in LATENCY_BUCKETS_MS), "+Inf")

OVERFLOW = "[overflow]"  # a client-chosen label value past the limit of distinct ones


class BoundedValues:
    """Lets through up to `limit` distinct values of a label clients choose (`authority`
    comes from their Host header) and reports any later one as OVERFLOW: a client sending
    random Host headers must not grow the proxy's series, and its memory, without bound.
    """

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = 100) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return OVERFLOW


class Target:
    """The labels of one request's or connection's target; empty means not applicable.

    Targets are long-lived (one per endpoint and authority, or per route) and remember
    their labelled metric children: resolving 20 labels costs more than the rest of a
    request's metrics. `names` are the label names of the families the target counts in.
    """

    __slots__ = ("_children", "_values", "labels")

    def __init__(
        self, labels: Mapping[str, str] | None = None, names: tuple[str, ...] = TARGET_LABELS
    ) -> None:
        self.labels = dict(labels or {})
        self._values = tuple(self.labels.get(name, "") for name in names)
        self._children: dict[object, Any] = {}

    def values(self) -> tuple[str, ...]:
        return self._values

    def child(self, key: object, make: Callable[[], Any]) -> Any:
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = make()
        return found


class _Series:
    """One labelled series of a request counter (and, for responses, its latency
    histogram), counted in plain numbers and read at scrape time: a prometheus_client
    child costs a lock and a handful of calls per increment, on every request."""

    __slots__ = ("buckets", "count", "created", "sum")

    def __init__(self, histogram: bool) -> None:
        self.count = 0
        self.sum = 0.0
        # Per bucket of LATENCY_BUCKETS_MS, then +Inf; not cumulative until exported.
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1) if histogram else None
        self.created = time.time()

    def observe(self, ms: float) -> None:
        self.count += 1
        self.sum += ms
        # As prometheus_client's Histogram: the first bucket whose bound is >= ms.
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1  # type: ignore[index]


class _Family:
    """A counter family (with, for `histogram`, the latency histogram of the same series)
    whose series are `_Series`, exported as prometheus_client's Counter and Histogram
    export theirs: `name_total` and `name_created`; `_bucket`, `_count`, `_sum`,
    `_created`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        histogram: tuple[str, str] | None = None,  # its name and documentation
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.histogram = histogram
        self.series: dict[tuple[str, ...], _Series] = {}

    def series_for(self, values: tuple[str, ...]) -> _Series:
        """The series of these label values: shared by every Target that has them (a
        Target rebuilt after a config push counts on where the old one left off)."""
        found = self.series.get(values)
        if found is None:
            found = self.series[values] = _Series(self.histogram is not None)
        return found

    def collect(self) -> Iterator[Metric]:
        counter = Metric(self.name, self.documentation, "counter")
        histogram = None
        if self.histogram is not None:
            histogram = Metric(self.histogram[0], self.histogram[1], "histogram")
        for values, series in list(self.series.items()):
            labels = dict(zip(self.labels, values, strict=True))
            counter.add_sample(self.name + "_total", labels, float(series.count))
            counter.add_sample(self.name + "_created", labels, series.created)
            if histogram is not None and series.buckets is not None:
                name, cumulative = histogram.name, 0
                for le, count in zip(_LE, series.buckets, strict=True):
                    cumulative += count
                    histogram.add_sample(name + "_bucket", {**labels, "le": le}, float(cumulative))
                histogram.add_sample(name + "_count", labels, float(cumulative))
                histogram.add_sample(name + "_sum", labels, series.sum)
                histogram.add_sample(name + "_created", labels, series.created)
        yield counter
        if histogram is not None:
            yield histogram

    def describe(self) -> Iterator[Metric]:
        yield Metric(self.name, self.documentation, "counter")
        if self.histogram is not None:
            yield Metric(self.histogram[0], self.histogram[1], "histogram")


class _Families:
    """The request families, as one collector in the registry (in this order)."""

    def __init__(self, families: list[_Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield from family.collect()

    def describe(self) -> Iterator[Metric]:
        for family in self.families:
            yield from family.describe()


class ProxyMetrics:
    """All metric families of one proxy, in a registry of its own (tests run several).

    Endpoint families (`request_total`, `response_total`, ...) count every attempt, as
    the endpoint saw it: a retried failure counts as a failure. Route families count per
    ServiceProfile route what the client saw (`route_*`: after retries) and every
    attempt (`route_actual_*`), as Linkerd's do. The per-request families are counted in
    plain numbers (`_Family`), the others in prometheus_client's metrics.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._requests = _Family("request", "HTTP requests", TARGET_LABELS)
        latency = "Time from request head to response head, in milliseconds"
        self._responses = _Family(
            "response", "HTTP responses", RESPONSE_LABELS, ("response_latency_ms", latency)
        )
        self._route_requests = _Family("route_request", "HTTP requests per route", ROUTE_LABELS)
        latency = "Time from request head to the response head the client got, in milliseconds"
        self._route_responses = _Family(
            "route_response",
            "HTTP responses per route, as the client got them (after retries)",
            ROUTE_RESPONSE_LABELS,
            ("route_response_latency_ms", latency),
        )
        self._route_actual_requests = _Family(
            "route_actual_request", "HTTP attempts per route, retries included", ROUTE_LABELS
        )
        self._route_actual_responses = _Family(
            "route_actual_response",
            "HTTP responses per route to every attempt, retried ones included",
            ROUTE_RESPONSE_LABELS,
        )
        r.register(
            _Families(
                [
                    self._requests,
                    self._responses,
                    self._route_requests,
                    self._route_responses,
                    self._route_actual_requests,
                    self._route_actual_responses,
                ]
            )
        )
        peer = (*TARGET_LABELS, "peer")
        self.tcp_open_total = Counter("tcp_open", "TCP connections opened", peer, registry=r)
        self.tcp_close_total = Counter("tcp_close", "TCP connections closed", peer, registry=r)
        self.tcp_open_connections = Gauge(
            "tcp_open_connections", "TCP connections open now", peer, registry=r
        )
        self.tcp_read_bytes_total = Counter(
            "tcp_read_bytes", "Bytes read from the peer", peer, registry=r
        )
        self.tcp_write_bytes_total = Counter(
            "tcp_write_bytes", "Bytes written to the peer", peer, registry=r
        )
        # Per request too: plain numbers, as the families above.
        self._http_allowed = _Family(
            "inbound_http_authz_allow", "HTTP requests authorized", TARGET_LABELS
        )
        self._http_denied = _Family(
            "inbound_http_authz_deny", "HTTP requests denied", TARGET_LABELS
        )
        r.register(_Families([self._http_allowed, self._http_denied]))
        self.inbound_tcp_authz_allow_total = Counter(
            "inbound_tcp_authz_allow", "TCP connections authorized", TARGET_LABELS, registry=r
        )
        self.inbound_tcp_authz_deny_total = Counter(
            "inbound_tcp_authz_deny", "TCP connections denied", TARGET_LABELS, registry=r
        )

    def request(self, target: Target) -> None:
        _count(self._requests, target)

    def response(
        self,
        target: Target,
        status: int,
        classification: str,
        latency_ms: float,
        grpc_status: int | None = None,
    ) -> None:
        family = self._responses
        _respond(family, target, status, classification, grpc_status).observe(latency_ms)

    def http_authz_allow(self, target: Target) -> None:
        """An inbound HTTP request was authorized (`inbound_http_authz_allow_total`)."""
        _count(self._http_allowed, target)

    def http_authz_deny(self, target: Target) -> None:
        _count(self._http_denied, target)

    def route_request(self, route: Target) -> None:
        _count(self._route_requests, route)

    def route_response(
        self,
        route: Target,
        status: int,
        classification: str,
        latency_ms: float,
        grpc_status: int | None = None,
    ) -> None:
        family = self._route_responses
        _respond(family, route, status, classification, grpc_status).observe(latency_ms)

    def route_actual_request(self, route: Target) -> None:
        _count(self._route_actual_requests, route)

    def route_actual_response(
        self, route: Target, status: int, classification: str, grpc_status: int | None = None
    ) -> None:
        family = self._route_actual_responses
        _respond(family, route, status, classification, grpc_status).count += 1


def _count(family: _Family, target: Target) -> None:
    series = target._children.get(family)
    if series is None:
        series = _series(family, target)
    series.count += 1


def _series(family: _Family, target: Target) -> _Series:
    found: _Series = target.child(family, lambda: family.series_for(target.values()))
    return found


def _respond(
    family: _Family, target: Target, status: int, classification: str, grpc_status: int | None
) -> _Series:
    """The target's series of `family` for this outcome, made on first use."""
    key = (family, status, classification, grpc_status)
    series: _Series | None = target._children.get(key)
    if series is None:

        def make() -> _Series:
            grpc = "" if grpc_status is None else str(grpc_status)
            # str(): a Classification (a StrEnum) is passed as it is, exported as text.
            values = (*target.values(), str(status), str(classification), grpc)
            return family.series_for(values)

        series = target.child(key, make)
    return series
