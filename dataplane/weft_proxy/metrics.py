"""The proxy's metrics, with Linkerd's names and labels, so Flagger's linkerd queries,
Grafana dashboards and habits carry over (see docs/proxy.md, "Metrics").

prometheus-client needs one label set per metric, while Linkerd's inbound and outbound
series carry different labels; every metric here has the union, and a label that does
not apply is empty, which Prometheus treats as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


class ProxyMetrics:
    """All metric families of one proxy, in a registry of its own (tests run several).

    Endpoint families (`request_total`, `response_total`, ...) count every attempt, as
    the endpoint saw it: a retried failure counts as a failure. Route families count per
    ServiceProfile route what the client saw (`route_*`: after retries) and every
    attempt (`route_actual_*`), as Linkerd's do.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.request_total = Counter("request", "HTTP requests", TARGET_LABELS, registry=r)
        self.response_total = Counter("response", "HTTP responses", RESPONSE_LABELS, registry=r)
        self.response_latency_ms = Histogram(
            "response_latency_ms",
            "Time from request head to response head, in milliseconds",
            RESPONSE_LABELS,
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.route_request_total = Counter(
            "route_request", "HTTP requests per route", ROUTE_LABELS, registry=r
        )
        self.route_response_total = Counter(
            "route_response",
            "HTTP responses per route, as the client got them (after retries)",
            ROUTE_RESPONSE_LABELS,
            registry=r,
        )
        self.route_response_latency_ms = Histogram(
            "route_response_latency_ms",
            "Time from request head to the response head the client got, in milliseconds",
            ROUTE_RESPONSE_LABELS,
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.route_actual_request_total = Counter(
            "route_actual_request", "HTTP attempts per route, retries included", ROUTE_LABELS,
            registry=r,
        )  # fmt: skip
        self.route_actual_response_total = Counter(
            "route_actual_response",
            "HTTP responses per route to every attempt, retried ones included",
            ROUTE_RESPONSE_LABELS,
            registry=r,
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
        self.inbound_http_authz_allow_total = Counter(
            "inbound_http_authz_allow", "HTTP requests authorized", TARGET_LABELS, registry=r
        )
        self.inbound_http_authz_deny_total = Counter(
            "inbound_http_authz_deny", "HTTP requests denied", TARGET_LABELS, registry=r
        )
        self.inbound_tcp_authz_allow_total = Counter(
            "inbound_tcp_authz_allow", "TCP connections authorized", TARGET_LABELS, registry=r
        )
        self.inbound_tcp_authz_deny_total = Counter(
            "inbound_tcp_authz_deny", "TCP connections denied", TARGET_LABELS, registry=r
        )

    def request(self, target: Target) -> None:
        _count(self.request_total, target)

    def response(
        self,
        target: Target,
        status: int,
        classification: str,
        latency_ms: float,
        grpc_status: int | None = None,
    ) -> None:
        outcome = (status, classification, grpc_status)
        _respond(self.response_total, self.response_latency_ms, target, outcome, latency_ms)

    def route_request(self, route: Target) -> None:
        _count(self.route_request_total, route)

    def route_response(
        self,
        route: Target,
        status: int,
        classification: str,
        latency_ms: float,
        grpc_status: int | None = None,
    ) -> None:
        outcome = (status, classification, grpc_status)
        total, latency = self.route_response_total, self.route_response_latency_ms
        _respond(total, latency, route, outcome, latency_ms)

    def route_actual_request(self, route: Target) -> None:
        _count(self.route_actual_request_total, route)

    def route_actual_response(
        self, route: Target, status: int, classification: str, grpc_status: int | None = None
    ) -> None:
        outcome = (status, classification, grpc_status)
        _respond(self.route_actual_response_total, None, route, outcome, 0.0)


def _count(counter: Counter, target: Target) -> None:
    target.child(counter, lambda: counter.labels(*target.values())).inc()


def _respond(
    total: Counter,
    latency: Histogram | None,
    target: Target,
    outcome: tuple[int, str, int | None],  # status, classification, gRPC status
    ms: float,
) -> None:
    """Count a response in `total` and its latency in `latency` (if any), through the
    target's children for that outcome, made on first use."""

    def make() -> tuple[Any, Any]:
        status, classification, grpc_status = outcome
        grpc = "" if grpc_status is None else str(grpc_status)
        values = (*target.values(), str(status), classification, grpc)
        return total.labels(*values), latency.labels(*values) if latency is not None else None

    counter, histogram = target.child((total, outcome), make)
    counter.inc()
    if histogram is not None:
        histogram.observe(ms)
