"""Fixtures for the proxy's tests: real TLS ClientHellos, made by OpenSSL without sockets,
and proxies listening on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web
from running import RunningProxy, start_proxy

from weft_api.config import ProxyConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

DEFAULT_SNI = "web.emojivoto.svc.cluster.local"


def make_client_hello(
    server_hostname: str | None = DEFAULT_SNI,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    max_version: ssl.TLSVersion | None = None,
) -> bytes:
    """The first flight a Python TLS client sends: its ClientHello, record framed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = server_hostname is not None
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if max_version is not None:
        context.maximum_version = max_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()  # waits for the ServerHello, having written the ClientHello
    return outgoing.read()


@pytest.fixture(scope="session")
def client_hello() -> Callable[..., bytes]:
    """`make_client_hello`, for tests (session scope, so Hypothesis tests may use it too)."""
    return make_client_hello


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[..., Awaitable[RunningProxy]]]:
    """Starts proxies on loopback (`start_proxy`'s arguments); closes them afterwards."""
    started: list[RunningProxy] = []

    async def start(cfg: ProxyConfig | None, **kwargs: Any) -> RunningProxy:
        running = await start_proxy(cfg, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture
async def raw_app() -> AsyncIterator[Callable[[StreamHandler], Awaitable[int]]]:
    """Starts raw asyncio servers on loopback, for apps that misbehave on purpose. Their
    connections still open when the test ends (pooled by a proxy) are ended then."""
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[object]] = set()

    async def start(handler: StreamHandler) -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


@pytest.fixture
async def aiohttp_app() -> AsyncIterator[Callable[[web.Application], Awaitable[int]]]:
    """Starts aiohttp applications on loopback; returns each one's port."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def http_backend(
    aiohttp_app: Callable[[web.Application], Awaitable[int]],
) -> Callable[[Handler], Awaitable[int]]:
    """Starts aiohttp apps on loopback answering every method and path with a handler
    (bodies up to 64 MiB)."""

    async def start(handler: Handler) -> int:
        application = web.Application(client_max_size=64 * 1024 * 1024)
        application.router.add_route("*", "/{tail:.*}", handler)
        return await aiohttp_app(application)

    return start
