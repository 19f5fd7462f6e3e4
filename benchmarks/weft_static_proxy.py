"""Run one Weft proxy whose outbound knows one Service, `bench`, on one endpoint.

Usage: python benchmarks/weft_static_proxy.py OUTBOUND_PORT BACKEND_PORT
Clients send `Host: bench.default.svc.cluster.local` to 127.0.0.1:OUTBOUND_PORT.

The process is set up as `python -m weft_proxy` sets up a pod's proxy (weft_proxy.main):
the same modules imported, logging format and level (WEFT_PROXY_LOG), listeners, uvloop,
and the start-up objects frozen out of the garbage collector once listening. Only the
config differs: static here, streamed from the control plane there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import uvloop

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
    ServerKind,
    ServicePort,
)
from weft_proxy.main import freeze_startup_objects
from weft_proxy.proxy import Proxy

AUTHORITY = "bench.default.svc.cluster.local"


def bench_config(backend_port: int) -> ProxyConfig:
    endpoint = Endpoint("127.0.0.1", backend_port)
    service = OutboundService(
        name="bench",
        namespace="default",
        authority=AUTHORITY,
        cluster_ips=("10.96.0.50",),
        ports=(ServicePort(80, "http", Protocol.HTTP1),),
        routes=(),
        retry_budget=RetryBudget(),
        backends=(Backend("bench", "default", AUTHORITY, 1, (BackendPort(80, (endpoint,)),)),),
    )
    allow = Authorization(
        AuthorizationKind.DEFAULT,
        "all-unauthenticated",
        tuple(Network(cidr) for cidr in ALL_NETWORKS),
        Authentication.UNAUTHENTICATED,
    )
    default = InboundServer(
        "all-unauthenticated", ServerKind.DEFAULT, 0, Protocol.UNKNOWN, (allow,),
        DefaultPolicy.ALL_UNAUTHENTICATED,
    )  # fmt: skip
    return ProxyConfig(
        identity=ProxyIdentity("bench-client", "default", "default"),
        inbound=(),
        inbound_default=default,
        outbound=(service,),
    )


async def main(outbound_port: int, backend_port: int) -> None:
    proxy = Proxy("default")
    proxy.apply(bench_config(backend_port))
    # Inbound, outbound and admin listeners, as weft_proxy.main.run opens them.
    await proxy.listen("127.0.0.1", 0, outbound_port, 0)
    freeze_startup_objects()
    await asyncio.Event().wait()


if __name__ == "__main__":
    # weft_proxy.main.main's logging set-up (inline there, so repeated here).
    logging.basicConfig(
        level=os.environ.get("WEFT_PROXY_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
