"""Outbound: what a client's proxy knows about one Service it may call.

Routes come from the ServiceProfile for the Service (the client's namespace's copy
first), else from HTTPRoutes whose parent is the Service: as in Linkerd, a profile
hides the routes. Backends come from the first TrafficSplit rooted at the Service (by
name); a backend counts on the ports it shares with the root, and a split with no
usable backend, or whose route groups all are missing, is ignored. Without a split, the
profile's dstOverrides split the parent the same way (Linkerd's own split, which
linkerd-smi writes from TrafficSplits); an override naming a port takes every port's
traffic there.
"""

from __future__ import annotations

from collections.abc import Sequence

from weft_api.config import (
    Backend,
    BackendPort,
    OutboundService,
    Protocol,
    RequestMatch,
    ResponseClass,
    RetryBudget,
    Route,
    ServicePort,
)
from weft_operator.catalog.endpoints import endpoints_of
from weft_operator.catalog.matches import (
    any_of,
    from_profile_condition,
    from_response_condition,
    from_route_match,
    from_smi_match,
    rule_matches,
)
from weft_operator.catalog.settings import MeshSettings
from weft_operator.index import lookups
from weft_operator.index.store import MeshIndex
from weft_resources.core import Service, ServicePortSpec
from weft_resources.httproute import HTTPRoute
from weft_resources.serviceprofile import ServiceProfile
from weft_resources.specs import HTTPRouteGroup
from weft_resources.split import TrafficSplit

# Service appProtocol: Linkerd 2.18's protocol declarations (http, kubernetes.io/h2c,
# linkerd.io/opaque), and TLS for the IANA names of TLS-wrapped HTTP. An opaque port is
# forwarded at once, without detection (server-speaks-first protocols need it); others
# leave detection on. Any other value is detected, as if absent.
_APP_PROTOCOLS = {
    "http": Protocol.HTTP1,
    "kubernetes.io/h2c": Protocol.HTTP2,
    "linkerd.io/opaque": Protocol.OPAQUE,
    "https": Protocol.TLS,
    "tls": Protocol.TLS,
}
_NO_CLUSTER_IP = ("", "None")


def build_outbound_service(
    index: MeshIndex,
    namespace: str,
    name: str,
    client_namespace: str | None = None,
    settings: MeshSettings | None = None,
) -> OutboundService | None:
    """The parent `namespace/name` as a client in `client_namespace` sees it; None when
    there is no such Service or it is an ExternalName (nothing to proxy)."""
    settings = settings or MeshSettings()
    service = index.get(Service, namespace, name)
    if service is None or service.spec.type == "ExternalName":
        return None
    client_namespace = client_namespace or namespace
    profile = lookups.profile_for(index, namespace, name, client_namespace, settings.cluster_domain)
    http_routes: list[HTTPRoute] = []
    if profile is not None:
        routes = _profile_routes(profile)
    else:
        http_routes = lookups.http_routes_of_service(index, namespace, name, client_namespace)
        routes = _http_routes(http_routes, service)
    backends, split_matches = _split(index, service, settings)
    if not backends:
        backends, split_matches = _route_split(index, service, http_routes, settings)
    if not backends:
        backends = _overrides(index, service, profile, settings)
    unmatched_backend = None
    if not backends or split_matches:
        root = _backend(index, service, 1, service.spec.ports, settings)
        backends = backends or (root,)
        unmatched_backend = root if split_matches else None
    return OutboundService(
        name=name,
        namespace=namespace,
        authority=settings.authority(name, namespace),
        cluster_ips=cluster_ips_of(service),
        ports=tuple(_service_port(port, profile) for port in _by_port(service.spec.ports)),
        routes=routes,
        retry_budget=_retry_budget(profile),
        backends=backends,
        split_matches=split_matches,
        unmatched_backend=unmatched_backend,
    )


def _split(
    index: MeshIndex, root: Service, settings: MeshSettings
) -> tuple[tuple[Backend, ...], tuple[RequestMatch, ...]]:
    """The backends and (v1alpha3+) request matches of the split rooted at `root`."""
    splits = lookups.splits_rooted_at(index, root.namespace, root.name)
    if not splits:
        return (), ()
    split = splits[0]
    matches = _split_matches(index, split)
    if split.spec.matches and not matches:
        return (), ()
    root_ports = {port.port for port in root.spec.ports}
    backends = []
    for target in split.spec.backends:
        service = index.get(Service, split.namespace, target.service)
        if service is None:
            continue
        shared = [port for port in service.spec.ports if port.port in root_ports]
        if shared:
            backends.append(_backend(index, service, target.weight, shared, settings))
    return (tuple(backends), matches) if backends else ((), ())


def _route_split(
    index: MeshIndex, root: Service, routes: list[HTTPRoute], settings: MeshSettings
) -> tuple[tuple[Backend, ...], tuple[RequestMatch, ...]]:
    """The first route (by name) whose rule splits: its backends, and its matches unless
    it takes every request."""
    for route in routes:
        rule = route.spec.split_rule()
        if rule is None:
            continue
        backends = []
        for ref in rule.backend_refs:
            service = index.get(Service, ref.namespace or route.namespace, ref.name)
            if service is not None:
                backend = _weighted(index, root, service, ref.weight, ref.port, settings)
                if backend is not None:
                    backends.append(backend)
        if backends:
            return tuple(backends), tuple(map(from_route_match, rule.matches))
    return (), ()


def _weighted(
    index: MeshIndex,
    root: Service,
    service: Service,
    weight: int,
    port: int | None,
    settings: MeshSettings,
) -> Backend | None:
    """`service` as a backend of `root`: on the ports they share, or, if `port` is named,
    every port of the root sent to that port of `service`; None if none applies."""
    root_ports = sorted({spec.port for spec in root.spec.ports})
    if port is None:
        pairs = [(spec.port, spec) for spec in service.spec.ports if spec.port in root_ports]
    else:
        named = [spec for spec in service.spec.ports if spec.port == port]
        pairs = [(root_port, named[0]) for root_port in root_ports] if named else []
    if not pairs:
        return None
    return Backend(
        name=service.name,
        namespace=service.namespace,
        authority=settings.authority(service.name, service.namespace),
        weight=weight,
        ports=tuple(
            BackendPort(root_port, endpoints_of(index, service, spec, settings))
            for root_port, spec in pairs
        ),
    )


def _overrides(
    index: MeshIndex, root: Service, profile: ServiceProfile | None, settings: MeshSettings
) -> tuple[Backend, ...]:
    if profile is None or not any(o.weight for o in profile.spec.dst_overrides):
        return ()
    backends = []
    for override in profile.spec.dst_overrides:
        target = override.target
        service = index.get(Service, target.namespace or profile.service.namespace, target.name)
        if service is not None:
            backend = _weighted(index, root, service, override.weight, target.port, settings)
            if backend is not None:
                backends.append(backend)
    return tuple(backends)


def _split_matches(index: MeshIndex, split: TrafficSplit) -> tuple[RequestMatch, ...]:
    matches: list[RequestMatch] = []
    for ref in split.spec.matches:
        group = index.get(HTTPRouteGroup, split.namespace, ref.name)
        if group is not None:
            matches.extend(map(from_smi_match, group.spec.matches))
    return tuple(dict.fromkeys(matches))


def _backend(
    index: MeshIndex,
    service: Service,
    weight: int,
    ports: Sequence[ServicePortSpec],
    settings: MeshSettings,
) -> Backend:
    return Backend(
        name=service.name,
        namespace=service.namespace,
        authority=settings.authority(service.name, service.namespace),
        weight=weight,
        ports=tuple(
            BackendPort(port.port, endpoints_of(index, service, port, settings))
            for port in _by_port(ports)
        ),
    )


def _profile_routes(profile: ServiceProfile) -> tuple[Route, ...]:
    return tuple(
        Route(
            name=route.name,
            condition=from_profile_condition(route.condition),
            timeout_ms=route.timeout_ms,
            is_retryable=route.is_retryable,
            response_classes=tuple(
                ResponseClass(from_response_condition(response.condition), response.is_failure)
                for response in route.response_classes
            ),
        )
        for route in profile.spec.routes
    )


def _http_routes(routes: list[HTTPRoute], service: Service) -> tuple[Route, ...]:
    """One route per rule, in route-name then rule order."""
    converted = []
    for route in routes:
        ports = _parent_ports(route, service)
        for rule in route.spec.rules:
            converted.append(
                Route(
                    name=route.name,
                    condition=any_of(rule_matches(rule)),
                    ports=ports,
                    timeout_ms=rule.timeouts.request_ms if rule.timeouts else None,
                )
            )
    return tuple(converted)


def _parent_ports(route: HTTPRoute, service: Service) -> tuple[int, ...]:
    """The Service ports a route attaches to; empty (all) if a parentRef has no port."""
    ports = [
        parent.port
        for parent in route.spec.parent_refs
        if parent.is_service
        and parent.refers_to(route.namespace, service.namespace, name=service.name)
    ]
    if None in ports:
        return ()
    return tuple(sorted({port for port in ports if port is not None}))


def _retry_budget(profile: ServiceProfile | None) -> RetryBudget:
    if profile is None or profile.spec.retry_budget is None:
        return RetryBudget()
    budget = profile.spec.retry_budget
    return RetryBudget(budget.retry_ratio, budget.min_retries_per_second, budget.ttl_ms)


def _service_port(port: ServicePortSpec, profile: ServiceProfile | None) -> ServicePort:
    if profile is not None and port.port in profile.spec.opaque_ports:
        protocol = Protocol.OPAQUE
    else:
        protocol = _APP_PROTOCOLS.get(port.app_protocol or "", Protocol.UNKNOWN)
    return ServicePort(port=port.port, name=port.name, protocol=protocol)


def cluster_ips_of(service: Service) -> tuple[str, ...]:
    """The addresses clients reach the Service at (none for headless Services)."""
    addresses = service.spec.cluster_ips or (service.spec.cluster_ip or "",)
    return tuple(address for address in addresses if address not in _NO_CLUSTER_IP)


def _by_port(ports: Sequence[ServicePortSpec]) -> list[ServicePortSpec]:
    return sorted(ports, key=lambda port: (port.port, port.protocol))
