"""The golden metrics of a set of series: success rate, requests per second, latency
quantiles and open TCP connections, from Linkerd's metric names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from weft_cli.observe.histogram import quantile
from weft_cli.observe.window import Series

RESPONSES = "response_total"
LATENCY_BUCKETS = "response_latency_ms_bucket"
TCP_OPEN = "tcp_open_connections"
INBOUND, OUTBOUND = "inbound", "outbound"


@dataclass
class Golden:
    """Sums over series; add series, then read the figures.

    `family` picks the metric families: "" for the endpoints' (`response_total`, ...),
    "route_" for the per-route ones (`route_response_total`, ...).
    """

    family: str = ""
    responses: float = 0.0
    successes: float = 0.0
    tcp_connections: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, series: Series) -> None:
        if not series.name.startswith(self.family):
            return
        name = series.name[len(self.family) :]
        if name == RESPONSES:
            self.responses += series.value
            if series.labels.get("classification") != "failure":
                self.successes += series.value
        elif name == LATENCY_BUCKETS:
            bound = float(series.labels["le"])
            self.buckets[bound] = self.buckets.get(bound, 0.0) + series.value
        elif name == TCP_OPEN:
            self.tcp_connections += series.value

    def figures(self, seconds: float) -> Figures:
        return Figures(
            success=self.successes / self.responses if self.responses else None,
            rps=self.responses / seconds if seconds > 0 else 0.0,
            p50=quantile(0.5, self.buckets),
            p95=quantile(0.95, self.buckets),
            p99=quantile(0.99, self.buckets),
            tcp_connections=round(self.tcp_connections),
            requests=round(self.responses),
        )


@dataclass(frozen=True)
class Figures:
    success: float | None  # a fraction; None: no responses in the window
    rps: float
    p50: float | None  # milliseconds
    p95: float | None
    p99: float | None
    tcp_connections: int
    requests: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "rps": self.rps,
            "latency_ms_p50": self.p50,
            "latency_ms_p95": self.p95,
            "latency_ms_p99": self.p99,
            "tcp_connections": self.tcp_connections,
            "requests": self.requests,
        }


def golden(series: Iterable[Series], family: str = "") -> Golden:
    total = Golden(family)
    for one in series:
        total.add(one)
    return total


def host_of(authority: str) -> str:
    """`web.shop.svc.cluster.local:80` -> `web.shop.svc.cluster.local`."""
    if authority.startswith("["):  # an IPv6 literal
        return authority.partition("]")[0] + "]"
    return authority.rsplit(":", 1)[0].rstrip(".") if ":" in authority else authority.rstrip(".")


def service_hosts(service: str, namespace: str, cluster_domain: str) -> frozenset[str]:
    """The names a client may call a Service by (from its namespace or from any)."""
    fqdn = f"{service}.{namespace}.svc.{cluster_domain}"
    return frozenset({service, f"{service}.{namespace}", f"{service}.{namespace}.svc", fqdn})


def addressed_to(series: Series, hosts: frozenset[str], namespace: str) -> bool:
    """An outbound series of requests a client addressed to one of `hosts`."""
    labels = series.labels
    return (
        labels.get("direction") == OUTBOUND
        and host_of(labels.get("authority", "")) in hosts
        and labels.get("dst_namespace", namespace) == namespace
    )
