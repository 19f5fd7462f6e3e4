"""A small real mesh on loopback for the observability commands: a client proxy (`web`)
splitting its calls to `books` over two server proxies (`books-stable`, and
`books-canary` whose app fails one request in four), aiohttp apps behind them, real
traffic, and a proxies file naming each proxy's admin and tap ports.

Until pods run on the local cluster, this is how `weft stat`, `edges` and `tap` are
run against real proxies: the CLI reaches them directly (--proxies-file) instead of
through the API server's pod proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

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
from weft_proxy.proxy import Proxy

STABLE_WEIGHT, CANARY_WEIGHT = 800, 200


def allow_all() -> InboundServer:
    authorization = Authorization(
        AuthorizationKind.DEFAULT,
        "all-unauthenticated",
        tuple(Network(cidr) for cidr in ALL_NETWORKS),
        Authentication.UNAUTHENTICATED,
    )
    return InboundServer(
        name="all-unauthenticated",
        kind=ServerKind.DEFAULT,
        port=0,
        protocol=Protocol.UNKNOWN,
        authorizations=(authorization,),
        default_policy=DefaultPolicy.ALL_UNAUTHENTICATED,
    )


def proxy_config(
    namespace: str, pod: str, account: str, outbound: tuple[OutboundService, ...] = ()
) -> ProxyConfig:
    return ProxyConfig(
        identity=ProxyIdentity(pod=pod, namespace=namespace, service_account=account),
        inbound=(),
        inbound_default=allow_all(),
        outbound=outbound,
    )


def backend(namespace: str, name: str, weight: int, pod: str, port: int) -> Backend:
    labels = (
        ("dst_deployment", name),
        ("dst_namespace", namespace),
        ("dst_pod", pod),
        ("dst_service", name),
    )
    endpoint = Endpoint("127.0.0.1", port, labels=labels)
    return Backend(
        name=name,
        namespace=namespace,
        authority=f"{name}.{namespace}.svc.cluster.local",
        weight=weight,
        ports=(BackendPort(80, (endpoint,)),),
    )


@dataclass
class RunningProxy:
    namespace: str
    pod: str
    deployment: str
    account: str
    proxy: Proxy
    servers: list[asyncio.Server]

    def port(self, which: int) -> int:
        port: int = self.servers[which].sockets[0].getsockname()[1]
        return port

    @property
    def inbound_port(self) -> int:
        return self.port(0)

    @property
    def outbound_url(self) -> str:
        return f"http://127.0.0.1:{self.port(1)}"

    @property
    def admin_address(self) -> str:
        return f"127.0.0.1:{self.port(2)}"


@dataclass
class LiveMesh:
    namespace: str
    web: RunningProxy
    stable: RunningProxy
    canary: RunningProxy
    runners: list[web.AppRunner] = field(default_factory=list)
    tap_addresses: dict[str, str] = field(default_factory=dict)

    @property
    def proxies(self) -> list[RunningProxy]:
        return [self.web, self.stable, self.canary]

    @property
    def authority(self) -> str:
        return f"books.{self.namespace}.svc.cluster.local"

    def write_proxies_file(self, path: Path) -> Path:
        entries = []
        for running in self.proxies:
            entry = {
                "namespace": running.namespace,
                "pod": running.pod,
                "deployment": running.deployment,
                "serviceAccount": running.account,
                "admin": running.admin_address,
            }
            if running.pod in self.tap_addresses:
                entry["tap"] = self.tap_addresses[running.pod]
            entries.append(entry)
        path.write_text(yaml.safe_dump({"proxies": entries}))
        return path

    async def traffic(self, stop: asyncio.Event, per_second: float = 200) -> int:
        """Requests from `web` to `books` until `stop`; returns how many were sent."""
        sent = 0
        async with aiohttp.ClientSession(headers={"Host": self.authority}) as http:
            while not stop.is_set():
                async with http.get(f"{self.web.outbound_url}/books/{sent % 7}") as response:
                    await response.read()
                sent += 1
                await asyncio.sleep(1 / per_second)
        return sent


async def _app(fail_every: int = 0) -> tuple[web.AppRunner, int]:
    count = [0]

    async def handler(request: web.Request) -> web.Response:
        count[0] += 1
        failed = fail_every and count[0] % fail_every == 0
        return web.Response(status=500 if failed else 200, text=request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def _server_proxy(namespace: str, deployment: str, pod: str, app_port: int) -> RunningProxy:
    proxy = Proxy(namespace, inbound_fallback_port=app_port)
    proxy.apply(proxy_config(namespace, pod, "books"))
    servers = await proxy.listen("127.0.0.1", 0, 0, 0)
    return RunningProxy(namespace, pod, deployment, "books", proxy, servers)


@contextlib.asynccontextmanager
async def live_mesh(namespace: str) -> AsyncIterator[LiveMesh]:
    stable_app, stable_port = await _app()
    canary_app, canary_port = await _app(fail_every=4)
    stable = await _server_proxy(namespace, "books-stable", "books-stable-0", stable_port)
    canary = await _server_proxy(namespace, "books-canary", "books-canary-0", canary_port)
    books = OutboundService(
        name="books",
        namespace=namespace,
        authority=f"books.{namespace}.svc.cluster.local",
        cluster_ips=("10.96.0.10",),
        ports=(ServicePort(80, "http", Protocol.HTTP1),),
        routes=(),
        retry_budget=RetryBudget(),
        backends=(
            backend(namespace, "books-stable", STABLE_WEIGHT, stable.pod, stable.inbound_port),
            backend(namespace, "books-canary", CANARY_WEIGHT, canary.pod, canary.inbound_port),
        ),
    )
    client = Proxy(namespace)
    client.apply(proxy_config(namespace, "web-0", "web", (books,)))
    client_servers = await client.listen("127.0.0.1", 0, 0, 0)
    web_proxy = RunningProxy(namespace, "web-0", "web", "web", client, client_servers)
    mesh = LiveMesh(namespace, web_proxy, stable, canary, [stable_app, canary_app])
    try:
        yield mesh
    finally:
        for running in mesh.proxies:
            for server in running.servers:
                server.close()
        for runner in mesh.runners:
            await runner.cleanup()
