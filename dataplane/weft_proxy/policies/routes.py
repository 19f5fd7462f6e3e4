"""Which route of a parent Service an HTTP request takes: the first that matches."""

from __future__ import annotations

from collections.abc import Sequence

from weft_api.config import OutboundService, Route
from weft_proxy.policies.request_match import (
    RequestHead,
    RequestPredicate,
    compile_request_match,
)


class RouteTable:
    """A parent's routes, compiled once per config; immutable, so shared by all requests."""

    __slots__ = ("_routes",)

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes: tuple[tuple[frozenset[int], RequestPredicate, Route], ...] = tuple(
            (frozenset(route.ports), compile_request_match(route.condition), route)
            for route in routes
        )

    @classmethod
    def of(cls, service: OutboundService) -> RouteTable:
        return cls(service.routes)

    def route_for(self, request: RequestHead, port: int) -> Route | None:
        """The first route for `port` (a port of the parent) matching `request`; None
        when no route matches, and the request gets no route-level policy."""
        for ports, matches, route in self._routes:
            if (not ports or port in ports) and matches(request):
                return route
        return None
