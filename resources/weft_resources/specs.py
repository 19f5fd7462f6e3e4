"""SMI `specs.smi-spec.io`: HTTPRouteGroup, TCPRoute (v1alpha1 to v1alpha4), UDPRoute (v1alpha4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator

from weft_resources.base import Frozen, Kind, Resource
from weft_resources.fields import PortNumber, Regex, compiled_regex
from weft_resources.manifest import Manifest

_SPECS_GROUP = "specs.smi-spec.io"


class HeaderCondition(Frozen):
    """A request header whose value matches `value_regex` in full."""

    name: str
    value_regex: str


def _header_conditions(value: Any) -> Any:
    # The spec and Go types use a map; the reference CRD and OSM use single-key maps.
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        if any(len(item) != 1 for item in value):
            raise ValueError("each item of a header list must be a map with exactly one header")
        pairs = [next(iter(item.items())) for item in value]
    else:
        raise ValueError(f"{value!r} is neither a map of headers nor a list of one-header maps")
    conditions = []
    for name, pattern in pairs:
        if not isinstance(pattern, str):
            raise ValueError(f"header {name!r}: {pattern!r} is not a string")
        try:
            compiled_regex(pattern)
        except ValueError as error:
            raise ValueError(f"header {name!r}: {error}") from None
        conditions.append(HeaderCondition(name=str(name).lower(), value_regex=pattern))
    return conditions


class HTTPMatch(Frozen):
    """Conditions ANDed; a route group's matches are ORed. `*` in methods is any method."""

    name: str = ""
    methods: tuple[str, ...] = ()
    path_regex: Regex | None = None
    headers: Annotated[tuple[HeaderCondition, ...], BeforeValidator(_header_conditions)] = ()


class HTTPRouteGroupSpec(Frozen):
    matches: tuple[HTTPMatch, ...] = ()

    def named(self, name: str) -> HTTPMatch | None:
        return next((match for match in self.matches if match.name == name), None)


class HTTPRouteGroup(Resource):
    KIND: ClassVar[Kind] = Kind.HTTP_ROUTE_GROUP
    API_GROUP: ClassVar[str] = _SPECS_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    spec: HTTPRouteGroupSpec


class PortMatch(Frozen):
    """Connections to any of `ports`; no ports means every port."""

    name: str = ""
    ports: tuple[PortNumber, ...] = ()

    def admits(self, port: int) -> bool:
        return not self.ports or port in self.ports


class PortRouteSpec(Frozen):
    """TCPRoute and UDPRoute: before v1alpha4 a TCPRoute has no fields, so all ports."""

    matches: PortMatch = PortMatch()


class TCPRoute(Resource):
    KIND: ClassVar[Kind] = Kind.TCP_ROUTE
    API_GROUP: ClassVar[str] = _SPECS_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    spec: PortRouteSpec


class UDPRoute(Resource):
    KIND: ClassVar[Kind] = Kind.UDP_ROUTE
    API_GROUP: ClassVar[str] = _SPECS_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha4",)
    spec: PortRouteSpec


def parse_http_route_group(body: Mapping[str, Any]) -> HTTPRouteGroup:
    manifest = Manifest.read(body, HTTPRouteGroup)
    # v1alpha1/v1alpha2 keep `matches` at the top level. Without a conversion webhook
    # such objects come back at any apiVersion unchanged, so read the shape.
    at = "" if "matches" in body and "spec" not in body else "spec"
    return HTTPRouteGroup(meta=manifest.meta, spec=manifest.part(HTTPRouteGroupSpec, at=at))


def parse_tcp_route(body: Mapping[str, Any]) -> TCPRoute:
    manifest = Manifest.read(body, TCPRoute)
    return TCPRoute(meta=manifest.meta, spec=manifest.part(PortRouteSpec))


def parse_udp_route(body: Mapping[str, Any]) -> UDPRoute:
    manifest = Manifest.read(body, UDPRoute)
    return UDPRoute(meta=manifest.meta, spec=manifest.part(PortRouteSpec))
