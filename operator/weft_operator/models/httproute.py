"""Linkerd `policy.linkerd.io` HTTPRoute (Gateway API shaped), v1beta1 to v1beta3.

Its parents are Servers (inbound: routes that AuthorizationPolicies can target) or
Services (outbound: routes with timeouts). Filters and backendRefs are not read yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from weft_operator.models.base import Frozen, Kind, Resource
from weft_operator.models.fields import DurationMs, PortNumber, compiled_regex
from weft_operator.models.manifest import Manifest
from weft_operator.models.policy import POLICY_GROUP


class ParentRef(Frozen):
    """Gateway API defaults a parent to a Gateway; Weft reads Server and Service parents."""

    group: str | None = None
    kind: str = "Gateway"
    name: str
    namespace: str | None = None
    port: PortNumber | None = None

    @property
    def is_server(self) -> bool:
        return self.kind == "Server" and self.group in (None, POLICY_GROUP)

    @property
    def is_service(self) -> bool:
        return self.kind == "Service" and self.group in (None, "", "core")

    def refers_to(self, route_namespace: str, namespace: str, name: str) -> bool:
        """Whether this parent is `namespace/name`; it defaults to the route's namespace."""
        return self.name == name and (self.namespace or route_namespace) == namespace


class PathMatchSpec(Frozen):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = "/"

    # On the field (not the model), so that a refusal names `path.value`. `type` comes
    # first, so it is known here unless it was itself refused.
    @field_validator("value")
    @classmethod
    def _valid_value(cls, value: str, info: ValidationInfo) -> str:
        match info.data.get("type"):
            case "RegularExpression":
                return compiled_regex(value)
            case "Exact" | "PathPrefix" if not value.startswith("/"):
                raise ValueError(f"{value!r} must start with '/'")
        return value


class ValueMatchSpec(Frozen):
    """A header or query parameter condition."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str
    value: str

    @field_validator("value")
    @classmethod
    def _valid_regex(cls, value: str, info: ValidationInfo) -> str:
        return compiled_regex(value) if info.data.get("type") == "RegularExpression" else value


class RouteMatchSpec(Frozen):
    """Conditions ANDed; a rule's matches are ORed; no match at all is prefix `/`."""

    path: PathMatchSpec | None = None
    headers: tuple[ValueMatchSpec, ...] = ()
    query_params: tuple[ValueMatchSpec, ...] = ()
    method: str | None = None


class TimeoutsSpec(Frozen):
    request_ms: DurationMs | None = Field(None, alias="request")
    backend_request_ms: DurationMs | None = Field(None, alias="backendRequest")


class RouteRuleSpec(Frozen):
    matches: tuple[RouteMatchSpec, ...] = ()
    timeouts: TimeoutsSpec | None = None


class HTTPRouteSpec(Frozen):
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[RouteRuleSpec, ...] = ()


class HTTPRoute(Resource):
    KIND: ClassVar[Kind] = Kind.HTTP_ROUTE
    API_GROUP: ClassVar[str] = POLICY_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1beta2", "v1beta3")
    spec: HTTPRouteSpec


def parse_http_route(body: Mapping[str, Any]) -> HTTPRoute:
    manifest = Manifest.read(body, HTTPRoute)
    return HTTPRoute(meta=manifest.meta, spec=manifest.part(HTTPRouteSpec))
