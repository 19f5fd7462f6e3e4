"""Pure conversion between the config model (`weft_api.config`) and its wire messages.

Both ways, losslessly: `x_from_proto(x_to_proto(value)) == value` for every value the
model admits (tests/config/ checks it with Hypothesis). An outbound service travels
without its endpoints: `outbound_to_proto` splits them out by Endpoints resource name
and `outbound_from_proto` joins them back. Decoding a message the model cannot hold
(an unset enum, an empty match) raises `DecodeError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from weft_api.config import (
    Authentication,
    Authorization,
    AuthorizationKind,
    Backend,
    BackendPort,
    DefaultPolicy,
    Endpoint,
    InboundServer,
    Network,
    OutboundService,
    Protocol,
    ProtocolHint,
    ProxyIdentity,
    RequestMatch,
    ResponseClass,
    ResponseMatch,
    RetryBudget,
    Route,
    ServerKind,
    ServicePort,
    StatusRange,
    ValueMatch,
)
from weft_api.proto import config_pb2 as pb

K = TypeVar("K")
V = TypeVar("V")

EndpointSets = Mapping[str, tuple[Endpoint, ...]]


class DecodeError(ValueError):
    """A message the config model cannot hold."""


def _both_ways(pairs: dict[K, V]) -> tuple[dict[K, V], dict[V, K]]:
    return pairs, {wire: value for value, wire in pairs.items()}


_PROTOCOL, _PROTOCOL_BACK = _both_ways(
    {
        Protocol.UNKNOWN: pb.PROTOCOL_UNKNOWN,
        Protocol.HTTP1: pb.PROTOCOL_HTTP1,
        Protocol.HTTP2: pb.PROTOCOL_HTTP2,
        Protocol.GRPC: pb.PROTOCOL_GRPC,
        Protocol.OPAQUE: pb.PROTOCOL_OPAQUE,
        Protocol.TLS: pb.PROTOCOL_TLS,
    }
)
_DEFAULT_POLICY, _DEFAULT_POLICY_BACK = _both_ways(
    {
        DefaultPolicy.ALL_UNAUTHENTICATED: pb.DEFAULT_POLICY_ALL_UNAUTHENTICATED,
        DefaultPolicy.ALL_AUTHENTICATED: pb.DEFAULT_POLICY_ALL_AUTHENTICATED,
        DefaultPolicy.CLUSTER_UNAUTHENTICATED: pb.DEFAULT_POLICY_CLUSTER_UNAUTHENTICATED,
        DefaultPolicy.CLUSTER_AUTHENTICATED: pb.DEFAULT_POLICY_CLUSTER_AUTHENTICATED,
        DefaultPolicy.DENY: pb.DEFAULT_POLICY_DENY,
    }
)
_SERVER_KIND, _SERVER_KIND_BACK = _both_ways(
    {ServerKind.SERVER: pb.SERVER_KIND_SERVER, ServerKind.DEFAULT: pb.SERVER_KIND_DEFAULT}
)
_AUTHORIZATION_KIND, _AUTHORIZATION_KIND_BACK = _both_ways(
    {
        AuthorizationKind.DEFAULT: pb.AUTHORIZATION_KIND_DEFAULT,
        AuthorizationKind.SERVER_AUTHORIZATION: pb.AUTHORIZATION_KIND_SERVER_AUTHORIZATION,
        AuthorizationKind.AUTHORIZATION_POLICY: pb.AUTHORIZATION_KIND_AUTHORIZATION_POLICY,
        AuthorizationKind.TRAFFIC_TARGET: pb.AUTHORIZATION_KIND_TRAFFIC_TARGET,
    }
)
_AUTHENTICATION, _AUTHENTICATION_BACK = _both_ways(
    {
        Authentication.UNAUTHENTICATED: pb.AUTHENTICATION_UNAUTHENTICATED,
        Authentication.TLS_UNAUTHENTICATED: pb.AUTHENTICATION_TLS_UNAUTHENTICATED,
        Authentication.TLS_AUTHENTICATED: pb.AUTHENTICATION_TLS_AUTHENTICATED,
    }
)


def _decode(table: Mapping[K, V], wire: K, what: str) -> V:
    try:
        return table[wire]
    except KeyError:
        raise DecodeError(f"{what}: unset or unknown value {wire}") from None


def endpoints_name(namespace: str, service: str, port: int) -> str:
    """The name of the Endpoints resource of one port of a Service."""
    return f"{namespace}/{service}:{port}"


# --- identity -----------------------------------------------------------------------


def identity_to_proto(identity: ProxyIdentity) -> pb.ProxyIdentity:
    return pb.ProxyIdentity(
        pod=identity.pod,
        namespace=identity.namespace,
        service_account=identity.service_account,
        node=identity.node,
    )


def identity_from_proto(message: pb.ProxyIdentity) -> ProxyIdentity:
    node = message.node if message.HasField("node") else None
    return ProxyIdentity(message.pod, message.namespace, message.service_account, node)


# --- matches ------------------------------------------------------------------------


def _value_match_to_proto(match: ValueMatch) -> pb.ValueMatch:
    return pb.ValueMatch(name=match.name, value_regex=match.value_regex)


def _value_match_from_proto(message: pb.ValueMatch) -> ValueMatch:
    return ValueMatch(message.name, message.value_regex)


def request_match_to_proto(match: RequestMatch) -> pb.RequestMatch:
    if match.path_regex is not None:
        return pb.RequestMatch(path_regex=match.path_regex)
    if match.method is not None:
        return pb.RequestMatch(method=match.method)
    if match.header is not None:
        return pb.RequestMatch(header=_value_match_to_proto(match.header))
    if match.query_param is not None:
        return pb.RequestMatch(query_param=_value_match_to_proto(match.query_param))
    if match.all is not None:
        return pb.RequestMatch(all=pb.RequestMatchList(matches=_request_matches(match.all)))
    if match.any is not None:
        return pb.RequestMatch(any=pb.RequestMatchList(matches=_request_matches(match.any)))
    assert match.not_ is not None  # RequestMatch sets exactly one field
    return pb.RequestMatch(negation=request_match_to_proto(match.not_))


def _request_matches(matches: tuple[RequestMatch, ...]) -> list[pb.RequestMatch]:
    return [request_match_to_proto(match) for match in matches]


def request_match_from_proto(message: pb.RequestMatch) -> RequestMatch:
    match message.WhichOneof("match"):
        case "path_regex":
            return RequestMatch(path_regex=message.path_regex)
        case "method":
            return RequestMatch(method=message.method)
        case "header":
            return RequestMatch(header=_value_match_from_proto(message.header))
        case "query_param":
            return RequestMatch(query_param=_value_match_from_proto(message.query_param))
        case "all":
            return RequestMatch(all=_request_matches_back(message.all.matches))
        case "any":
            return RequestMatch(any=_request_matches_back(message.any.matches))
        case "negation":
            return RequestMatch(not_=request_match_from_proto(message.negation))
    raise DecodeError("a RequestMatch sets none of its conditions")


def _request_matches_back(messages: Iterable[pb.RequestMatch]) -> tuple[RequestMatch, ...]:
    return tuple(request_match_from_proto(message) for message in messages)


def _response_match_to_proto(match: ResponseMatch) -> pb.ResponseMatch:
    if match.status is not None:
        return pb.ResponseMatch(status=pb.StatusRange(min=match.status.min, max=match.status.max))
    if match.all is not None:
        return pb.ResponseMatch(all=pb.ResponseMatchList(matches=_response_matches(match.all)))
    if match.any is not None:
        return pb.ResponseMatch(any=pb.ResponseMatchList(matches=_response_matches(match.any)))
    assert match.not_ is not None  # ResponseMatch sets exactly one field
    return pb.ResponseMatch(negation=_response_match_to_proto(match.not_))


def _response_matches(matches: tuple[ResponseMatch, ...]) -> list[pb.ResponseMatch]:
    return [_response_match_to_proto(match) for match in matches]


def _response_match_from_proto(message: pb.ResponseMatch) -> ResponseMatch:
    match message.WhichOneof("match"):
        case "status":
            return ResponseMatch(status=StatusRange(message.status.min, message.status.max))
        case "all":
            return ResponseMatch(all=_response_matches_back(message.all.matches))
        case "any":
            return ResponseMatch(any=_response_matches_back(message.any.matches))
        case "negation":
            return ResponseMatch(not_=_response_match_from_proto(message.negation))
    raise DecodeError("a ResponseMatch sets none of its conditions")


def _response_matches_back(messages: Iterable[pb.ResponseMatch]) -> tuple[ResponseMatch, ...]:
    return tuple(_response_match_from_proto(message) for message in messages)


# --- inbound ------------------------------------------------------------------------


def _authorization_to_proto(authorization: Authorization) -> pb.Authorization:
    return pb.Authorization(
        kind=_AUTHORIZATION_KIND[authorization.kind],
        name=authorization.name,
        networks=[
            pb.Network(cidr=network.cidr, excluded=network.except_)
            for network in authorization.networks
        ],
        authentication=_AUTHENTICATION[authorization.authentication],
        identities=authorization.identities,
        routes=_request_matches(authorization.routes),
    )


def _authorization_from_proto(message: pb.Authorization) -> Authorization:
    return Authorization(
        kind=_decode(_AUTHORIZATION_KIND_BACK, message.kind, "Authorization.kind"),
        name=message.name,
        networks=tuple(
            Network(network.cidr, tuple(network.excluded)) for network in message.networks
        ),
        authentication=_decode(
            _AUTHENTICATION_BACK, message.authentication, "Authorization.authentication"
        ),
        identities=tuple(message.identities),
        routes=_request_matches_back(message.routes),
    )


def _server_to_proto(server: InboundServer) -> pb.InboundServer:
    return pb.InboundServer(
        name=server.name,
        kind=_SERVER_KIND[server.kind],
        port=server.port,
        protocol=_PROTOCOL[server.protocol],
        authorizations=[_authorization_to_proto(a) for a in server.authorizations],
        default_policy=_DEFAULT_POLICY[server.default_policy],
    )


def _server_from_proto(message: pb.InboundServer) -> InboundServer:
    return InboundServer(
        name=message.name,
        kind=_decode(_SERVER_KIND_BACK, message.kind, "InboundServer.kind"),
        port=message.port,
        protocol=_decode(_PROTOCOL_BACK, message.protocol, "InboundServer.protocol"),
        authorizations=tuple(_authorization_from_proto(a) for a in message.authorizations),
        default_policy=_decode(
            _DEFAULT_POLICY_BACK, message.default_policy, "InboundServer.default_policy"
        ),
    )


def inbound_to_proto(
    servers: tuple[InboundServer, ...], default_server: InboundServer
) -> pb.Inbound:
    return pb.Inbound(
        servers=[_server_to_proto(server) for server in servers],
        default_server=_server_to_proto(default_server),
    )


def inbound_from_proto(message: pb.Inbound) -> tuple[tuple[InboundServer, ...], InboundServer]:
    """The servers of the pod's ports, and the server of any other port."""
    if not message.HasField("default_server"):
        raise DecodeError("an Inbound has no default_server")
    servers = tuple(_server_from_proto(server) for server in message.servers)
    return servers, _server_from_proto(message.default_server)


# --- outbound -----------------------------------------------------------------------


def endpoint_to_proto(endpoint: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        address=endpoint.address,
        port=endpoint.port,
        identity=endpoint.identity,
        protocol_hint=pb.PROTOCOL_HINT_H2
        if endpoint.protocol_hint is ProtocolHint.H2
        else pb.PROTOCOL_HINT_NONE,
        labels=dict(endpoint.labels),
    )


def endpoint_from_proto(message: pb.Endpoint) -> Endpoint:
    """Labels come back sorted by name, as the catalog writes them."""
    return Endpoint(
        address=message.address,
        port=message.port,
        identity=message.identity if message.HasField("identity") else None,
        protocol_hint=ProtocolHint.H2 if message.protocol_hint == pb.PROTOCOL_HINT_H2 else None,
        labels=tuple(sorted(message.labels.items())),
    )


def _route_to_proto(route: Route) -> pb.Route:
    return pb.Route(
        name=route.name,
        condition=request_match_to_proto(route.condition),
        ports=route.ports,
        timeout_ms=route.timeout_ms,
        is_retryable=route.is_retryable,
        response_classes=[
            pb.ResponseClass(
                condition=_response_match_to_proto(response.condition),
                is_failure=response.is_failure,
            )
            for response in route.response_classes
        ],
    )


def _route_from_proto(message: pb.Route) -> Route:
    return Route(
        name=message.name,
        condition=request_match_from_proto(message.condition),
        ports=tuple(message.ports),
        timeout_ms=message.timeout_ms if message.HasField("timeout_ms") else None,
        is_retryable=message.is_retryable,
        response_classes=tuple(
            ResponseClass(_response_match_from_proto(response.condition), response.is_failure)
            for response in message.response_classes
        ),
    )


def _backend_to_proto(backend: Backend, endpoints: dict[str, tuple[Endpoint, ...]]) -> pb.Backend:
    for port in backend.ports:
        name = endpoints_name(backend.namespace, backend.name, port.port)
        if endpoints.setdefault(name, port.endpoints) != port.endpoints:
            raise ValueError(f"two backends give different endpoints for {name}")
    return pb.Backend(
        name=backend.name,
        namespace=backend.namespace,
        authority=backend.authority,
        weight=backend.weight,
        ports=[port.port for port in backend.ports],
    )


def _backend_from_proto(message: pb.Backend, endpoints: EndpointSets) -> Backend:
    ports = []
    for port in message.ports:
        name = endpoints_name(message.namespace, message.name, port)
        if name not in endpoints:
            raise DecodeError(f"backend {message.namespace}/{message.name}: no endpoints {name}")
        ports.append(BackendPort(port, endpoints[name]))
    return Backend(
        name=message.name,
        namespace=message.namespace,
        authority=message.authority,
        weight=message.weight,
        ports=tuple(ports),
    )


def outbound_to_proto(
    service: OutboundService,
) -> tuple[pb.OutboundService, dict[str, tuple[Endpoint, ...]]]:
    """The service without endpoints, and the endpoints of its backends by resource name."""
    endpoints: dict[str, tuple[Endpoint, ...]] = {}
    budget = service.retry_budget
    message = pb.OutboundService(
        name=service.name,
        namespace=service.namespace,
        authority=service.authority,
        cluster_ips=service.cluster_ips,
        ports=[
            pb.ServicePort(port=port.port, name=port.name, protocol=_PROTOCOL[port.protocol])
            for port in service.ports
        ],
        routes=[_route_to_proto(route) for route in service.routes],
        retry_budget=pb.RetryBudget(
            retry_ratio=budget.retry_ratio,
            min_retries_per_second=budget.min_retries_per_second,
            ttl_ms=budget.ttl_ms,
        ),
        backends=[_backend_to_proto(backend, endpoints) for backend in service.backends],
        split_matches=_request_matches(service.split_matches),
    )
    if service.unmatched_backend is not None:
        message.unmatched_backend.CopyFrom(_backend_to_proto(service.unmatched_backend, endpoints))
    return message, endpoints


def outbound_from_proto(message: pb.OutboundService, endpoints: EndpointSets) -> OutboundService:
    """The service, its backends' endpoints taken from `endpoints` (by resource name)."""
    budget = message.retry_budget
    unmatched = None
    if message.HasField("unmatched_backend"):
        unmatched = _backend_from_proto(message.unmatched_backend, endpoints)
    return OutboundService(
        name=message.name,
        namespace=message.namespace,
        authority=message.authority,
        cluster_ips=tuple(message.cluster_ips),
        ports=tuple(
            ServicePort(port.port, port.name, _decode(_PROTOCOL_BACK, port.protocol, "ServicePort"))
            for port in message.ports
        ),
        routes=tuple(_route_from_proto(route) for route in message.routes),
        retry_budget=RetryBudget(budget.retry_ratio, budget.min_retries_per_second, budget.ttl_ms),
        backends=tuple(_backend_from_proto(backend, endpoints) for backend in message.backends),
        split_matches=_request_matches_back(message.split_matches),
        unmatched_backend=unmatched,
    )


def backend_endpoint_names(message: pb.OutboundService) -> list[str]:
    """The Endpoints resources a service's backends name, each once, in order."""
    backends = [*message.backends]
    if message.HasField("unmatched_backend"):
        backends.append(message.unmatched_backend)
    names = (
        endpoints_name(backend.namespace, backend.name, port)
        for backend in backends
        for port in backend.ports
    )
    return list(dict.fromkeys(names))
