"""Fixtures for the proxy's tests: real TLS ClientHellos, made by OpenSSL without sockets,
and proxies listening on loopback."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from running import RunningProxy, start_proxy

from weft_api.config import ProxyConfig

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
