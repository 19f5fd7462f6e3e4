"""Config builders for the proxy's socket tests: a `books` Service in namespace `shop`."""

from __future__ import annotations

from weft_api.config import (
    ALL_NETWORKS,
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
    ProxyConfig,
    ProxyIdentity,
    RetryBudget,
    Route,
    ServerKind,
    ServicePort,
)

AUTHORITY = "books.shop.svc.cluster.local"


def backend(name: str, weight: int, ports: list[int], parent_port: int = 80) -> Backend:
    endpoints = tuple(
        Endpoint("127.0.0.1", port, labels=(("dst_pod", f"{name}-{i}"),))
        for i, port in enumerate(ports)
    )
    return Backend(
        name=name,
        namespace="shop",
        authority=f"{name}.shop.svc.cluster.local",
        weight=weight,
        ports=(BackendPort(parent_port, endpoints),),
    )


def books(*backends_: Backend, routes: tuple[Route, ...] = ()) -> OutboundService:
    return OutboundService(
        name="books",
        namespace="shop",
        authority=AUTHORITY,
        cluster_ips=("10.96.0.10",),
        ports=(ServicePort(80, "http", Protocol.HTTP1),),
        routes=routes,
        retry_budget=RetryBudget(),
        backends=backends_,
    )


def allow_all(port: int = 0) -> InboundServer:
    return InboundServer(
        name="all-unauthenticated",
        kind=ServerKind.DEFAULT,
        port=port,
        protocol=Protocol.UNKNOWN,
        authorizations=(
            Authorization(
                AuthorizationKind.DEFAULT,
                "all-unauthenticated",
                tuple(Network(cidr) for cidr in ALL_NETWORKS),
                Authentication.UNAUTHENTICATED,
            ),
        ),
        default_policy=DefaultPolicy.ALL_UNAUTHENTICATED,
    )


def config(*outbound: OutboundService, inbound: tuple[InboundServer, ...] = ()) -> ProxyConfig:
    return ProxyConfig(
        identity=ProxyIdentity(pod="client-0", namespace="shop", service_account="client"),
        inbound=inbound,
        inbound_default=allow_all(),
        outbound=outbound,
    )
