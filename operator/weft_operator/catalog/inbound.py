"""Inbound policy of one pod: a server per port it serves, and one for any other port.

Precedence, per port: a Server selecting the pod (the first by name when several
claim the port) brings its accessPolicy and the ServerAuthorizations and
AuthorizationPolicies attached to it; a port without one falls back to the default
inbound policy. Once SMI TrafficTargets name the pod as their destination (its
ServiceAccount, or an IdentityBinding that binds it; for this port, or for every
port), the fallback becomes deny and only their rules add permissions. Any
authorization admits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from weft_api.config import (
    Authorization,
    DefaultPolicy,
    InboundServer,
    Protocol,
    ProxyIdentity,
    ServerKind,
)
from weft_api.mesh import PROXY_CONTAINER
from weft_operator.catalog.authorizations import (
    default_authorization,
    from_authorization_policy,
    from_server_authorization,
    from_traffic_target,
    probe_authorization,
)
from weft_operator.catalog.matches import rule_matches
from weft_operator.catalog.settings import MeshSettings
from weft_operator.catalog.workloads import default_inbound_policy
from weft_operator.index import lookups
from weft_operator.index.store import MeshIndex
from weft_resources.access import TrafficTarget
from weft_resources.core import Pod
from weft_resources.policy import ProxyProtocol, Server

ANY_OTHER_PORT = 0

_PROTOCOLS = {
    ProxyProtocol.UNKNOWN: Protocol.UNKNOWN,
    ProxyProtocol.HTTP1: Protocol.HTTP1,
    ProxyProtocol.HTTP2: Protocol.HTTP2,
    ProxyProtocol.GRPC: Protocol.GRPC,
    ProxyProtocol.OPAQUE: Protocol.OPAQUE,
    ProxyProtocol.TLS: Protocol.TLS,
}


@dataclass(frozen=True, slots=True)
class _PodPolicy:
    """What every port of one pod is decided by."""

    index: MeshIndex
    settings: MeshSettings
    fallback: DefaultPolicy
    traffic_targets: tuple[TrafficTarget, ...]


def build_inbound(
    index: MeshIndex, identity: ProxyIdentity, settings: MeshSettings
) -> tuple[tuple[InboundServer, ...], InboundServer]:
    """The servers of the pod's ports (sorted), and the server of any other port."""
    pod = index.get(Pod, identity.namespace, identity.pod)
    context = _PodPolicy(
        index,
        settings,
        default_inbound_policy(index, identity.namespace, pod, settings),
        tuple(
            lookups.traffic_targets_for(
                index, identity.namespace, identity.service_account, pod, settings.trust_domain
            )
        ),
    )
    if pod is None:
        return (), _inbound_server(context, ANY_OTHER_PORT, None, ())
    ports = _declared_ports(pod)
    servers = _servers_by_port(index, pod, ports)
    probes = _probe_paths(pod, ports)
    listed = tuple(
        _inbound_server(context, port, servers.get(port), probes.get(port, ()))
        for port in sorted(set(ports.values()) | set(servers))
    )
    return listed, _inbound_server(context, ANY_OTHER_PORT, None, ())


def _inbound_server(
    context: _PodPolicy, port: int, server: Server | None, probe_paths: tuple[str, ...]
) -> InboundServer:
    if server is None:
        kind, protocol, policy = ServerKind.DEFAULT, Protocol.UNKNOWN, context.fallback
        authorizations = []
    else:
        kind, protocol = ServerKind.SERVER, _PROTOCOLS[server.spec.proxy_protocol]
        policy = server.spec.access_policy
        authorizations = _attached_authorizations(context, server)
    governing = [
        target for target in context.traffic_targets if target.spec.destination.port in (None, port)
    ]
    if governing:
        policy = DefaultPolicy.DENY
        for target in governing:
            granted = from_traffic_target(context.index, target, port, context.settings)
            if granted is not None:
                authorizations.append(granted)
    fallback = default_authorization(policy, context.settings)
    if fallback is not None:
        authorizations.append(fallback)
    if probe_paths and policy is not DefaultPolicy.ALL_UNAUTHENTICATED:
        authorizations.append(probe_authorization(probe_paths))
    return InboundServer(
        name=server.name if server else policy.value,
        kind=kind,
        port=port,
        protocol=protocol,
        authorizations=tuple(sorted(authorizations, key=lambda a: (a.kind, a.name))),
        default_policy=policy,
    )


def _attached_authorizations(context: _PodPolicy, server: Server) -> list[Authorization]:
    index, settings = context.index, context.settings
    granted: list[Authorization | None] = [
        from_server_authorization(authorization, settings)
        for authorization in lookups.server_authorizations_of(index, server)
    ]
    for policy in lookups.policies_protecting_server(index, server):
        granted.append(from_authorization_policy(index, policy, settings))
    for route in lookups.http_routes_of_server(index, server):
        matches = tuple(match for rule in route.spec.rules for match in rule_matches(rule))
        for policy in lookups.policies_protecting_route(index, route):
            granted.append(from_authorization_policy(index, policy, settings, matches))
    return [authorization for authorization in granted if authorization is not None]


def _declared_ports(pod: Pod) -> dict[str, int]:
    """TCP ports of the application containers, by name (unnamed ones by number)."""
    return {
        port.name or str(port.container_port): port.container_port
        for container in pod.spec.containers
        if container.name != PROXY_CONTAINER
        for port in container.ports
        if port.protocol == "TCP"
    }


def _resolve(port: int | str, declared: dict[str, int]) -> int | None:
    return port if isinstance(port, int) else declared.get(port)


def _servers_by_port(index: MeshIndex, pod: Pod, declared: dict[str, int]) -> dict[int, Server]:
    chosen: dict[int, Server] = {}
    for server in lookups.servers_selecting(index, pod):
        port = _resolve(server.spec.port, declared)
        if port is not None:
            chosen.setdefault(port, server)
    return chosen


def _probe_paths(pod: Pod, declared: dict[str, int]) -> dict[int, tuple[str, ...]]:
    paths: defaultdict[int, set[str]] = defaultdict(set)
    for container in pod.spec.containers:
        for probe in (container.liveness_probe, container.readiness_probe, container.startup_probe):
            if probe is None or probe.http_get is None:
                continue
            port = _resolve(probe.http_get.port, declared)
            if port is not None:
                paths[port].add(probe.http_get.path.split("?", 1)[0] or "/")
    return {port: tuple(sorted(found)) for port, found in paths.items()}
