"""`weft routes` and `weft stat sp`: traffic to a Service by ServiceProfile route, as
its clients got it (after retries), from their proxies' `route_*` families (the
`rt_route` label; `[DEFAULT]` matched no route)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from weft_cli.observe.golden import (
    OUTBOUND,
    Figures,
    Golden,
    golden,
    host_of,
    service_hosts,
)
from weft_cli.observe.window import Series, Window

DEFAULT_ROUTE = "[DEFAULT]"
ROUTE_FAMILY = "route_"  # what the client got, after retries
ACTUAL_FAMILY = "route_actual_"  # every attempt


@dataclass(frozen=True)
class Profile:
    namespace: str
    name: str  # <service>.<namespace>.svc.<cluster domain>
    service: str
    cluster_domain: str
    routes: tuple[str, ...]


@dataclass(frozen=True)
class RouteRow:
    namespace: str
    service: str
    route: str
    figures: Figures  # what clients got, after retries
    actual: Figures  # every attempt: failures that retries hid show here

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "service": self.service,
            "route": self.route,
            **self.figures.as_dict(),
            "actual_success": self.actual.success,
            "actual_rps": self.actual.rps,
        }


@dataclass(frozen=True)
class ProfileRow:
    namespace: str
    name: str
    service: str
    routes: int
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "serviceprofile": self.name,
            "service": self.service,
            "routes": self.routes,
            **self.figures.as_dict(),
        }


def _addressed(profile: Profile, window: Window) -> Iterator[Series]:
    hosts = service_hosts(profile.service, profile.namespace, profile.cluster_domain)
    return (
        s
        for s in window.series
        if s.name.startswith(ROUTE_FAMILY)
        and s.labels.get("direction") == OUTBOUND
        and host_of(s.labels.get("dst", "")) in hosts
    )


def route_stats(profile: Profile, window: Window) -> list[RouteRow]:
    """Every declared route, traffic or not; `[DEFAULT]` when requests matched none."""
    by_route = {route: (Golden(ROUTE_FAMILY), Golden(ACTUAL_FAMILY)) for route in profile.routes}
    for series in _addressed(profile, window):
        route = series.labels.get("rt_route") or DEFAULT_ROUTE
        effective, actual = by_route.setdefault(
            route, (Golden(ROUTE_FAMILY), Golden(ACTUAL_FAMILY))
        )
        effective.add(series)
        actual.add(series)
    seconds = window.seconds
    return [
        RouteRow(
            profile.namespace,
            profile.service,
            route,
            effective.figures(seconds),
            actual.figures(seconds),
        )
        for route, (effective, actual) in by_route.items()
    ]


def profile_stats(profile: Profile, window: Window) -> ProfileRow:
    return ProfileRow(
        profile.namespace,
        profile.name,
        profile.service,
        len(profile.routes),
        golden(_addressed(profile, window), ROUTE_FAMILY).figures(window.seconds),
    )
