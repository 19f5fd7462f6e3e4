"""Linkerd `policy.linkerd.io` HTTPRoute (Gateway API shaped), v1beta1 to v1beta3.

Its parents are Servers (inbound: routes that AuthorizationPolicies can target) or
Services (outbound: routes with timeouts). What Weft's proxies cannot do is refused
rather than ignored (so admission refuses it and the operator reports it): hostnames,
filters, and backendRefs Weft cannot express as a split of a Service parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from weft_resources.base import Frozen, Kind, Resource
from weft_resources.fields import DurationMs, PortNumber, compiled_regex
from weft_resources.manifest import Manifest
from weft_resources.policy import POLICY_GROUP


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


class BackendRef(Frozen):
    group: str | None = None
    kind: str = "Service"
    name: str
    namespace: str | None = None
    port: PortNumber | None = None
    weight: int = Field(1, ge=0)
    filters: tuple[dict[str, Any], ...] = ()


class RouteRuleSpec(Frozen):
    matches: tuple[RouteMatchSpec, ...] = ()
    timeouts: TimeoutsSpec | None = None
    backend_refs: tuple[BackendRef, ...] = ()
    filters: tuple[dict[str, Any], ...] = ()

    @field_validator("filters")
    @classmethod
    def _no_filters(cls, filters: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        if filters:
            kinds = ", ".join(sorted({str(f.get("type", "?")) for f in filters}))
            raise ValueError(
                f"Weft's proxies apply no filters ({kinds}); remove them, or the route "
                "would be taken without them"
            )
        return filters


class HTTPRouteSpec(Frozen):
    parent_refs: tuple[ParentRef, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[RouteRuleSpec, ...] = ()

    @field_validator("hostnames")
    @classmethod
    def _no_hostnames(cls, hostnames: tuple[str, ...]) -> tuple[str, ...]:
        if hostnames:
            raise ValueError(
                "Weft does not match routes on hostnames; remove them (a route applies "
                "to every name its parent Service or Server is reached by)"
            )
        return hostnames

    @model_validator(mode="after")
    def _backends_weft_can_take(self) -> Self:
        """backendRefs naming the parent Service only restate where requests go. Other
        Services split a Service parent's traffic, as a TrafficSplit does, in one rule
        only: without matches, all of it; with matches, what they match (the rest goes
        to the parent, as for an SMI split with matches)."""
        splitting = [i for i, rule in enumerate(self.rules) if self._splits(rule)]
        for i, rule in enumerate(self.rules):
            for j, backend in enumerate(rule.backend_refs):
                where = f"rules[{i}].backendRefs[{j}]"
                if backend.filters:
                    raise ValueError(f"{where}.filters: Weft's proxies apply no filters")
                if backend.kind != "Service" or backend.group not in (None, "", "core"):
                    raise ValueError(f"{where}: a backend must be a Service, not {backend.kind}")
        if not splitting:
            return self
        if not any(parent.is_service for parent in self.parent_refs):
            raise ValueError(
                f"rules[{splitting[0]}].backendRefs: a Server parent (inbound) has no backends"
            )
        if len(splitting) > 1:
            raise ValueError(
                f"rules[{splitting[1]}].backendRefs: Weft splits a route's traffic in one "
                f"rule only (rules[{splitting[0]}] already does); send the other rules to "
                "the parent Service"
            )
        return self

    def split_rule(self) -> RouteRuleSpec | None:
        """The rule whose backendRefs split the parent's traffic, if one does."""
        return next((rule for rule in self.rules if self._splits(rule)), None)

    def _splits(self, rule: RouteRuleSpec) -> bool:
        return any(
            not any(self._is_parent(parent, backend) for parent in self.parent_refs)
            for backend in rule.backend_refs
        )

    @staticmethod
    def _is_parent(parent: ParentRef, backend: BackendRef) -> bool:
        return (
            parent.is_service
            and backend.kind == "Service"
            and backend.group in (None, "", "core")
            and backend.name == parent.name
            and backend.namespace == parent.namespace
            and (backend.port is None or parent.port in (None, backend.port))
        )


class HTTPRoute(Resource):
    KIND: ClassVar[Kind] = Kind.HTTP_ROUTE
    API_GROUP: ClassVar[str] = POLICY_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1beta2", "v1beta3")
    spec: HTTPRouteSpec


def parse_http_route(body: Mapping[str, Any]) -> HTTPRoute:
    manifest = Manifest.read(body, HTTPRoute)
    return HTTPRoute(meta=manifest.meta, spec=manifest.part(HTTPRouteSpec))
