"""Opaque TCP through the inbound proxy: server-first protocols, half-close, denial."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from proxy_configs import allow_all, config

from weft_api.config import DefaultPolicy, InboundServer, Protocol, ServerKind
from weft_proxy.proxy import Proxy


async def serve(handler: object) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def banner_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 smtp.example ESMTP ready\r\n")  # the server speaks first
    await writer.drain()
    writer.write(b"echo: " + await reader.read())  # until the client half-closes
    writer.close()


@pytest.fixture
async def app() -> AsyncIterator[int]:
    server, port = await serve(banner_first)
    yield port
    server.close()


async def proxy_for(app: int, server: InboundServer) -> tuple[Proxy, asyncio.Server]:
    proxy = Proxy("shop", inbound_fallback_port=app)
    proxy.apply(config(inbound=(server,)))
    listening = await proxy.listen("127.0.0.1", 0, 0, 0)
    return proxy, listening[0]


def server(port: int, protocol: Protocol, policy: DefaultPolicy) -> InboundServer:
    allowed = allow_all(port)
    return InboundServer(
        name="smtp",
        kind=ServerKind.SERVER,
        port=port,
        protocol=protocol,
        authorizations=allowed.authorizations
        if policy is DefaultPolicy.ALL_UNAUTHENTICATED
        else (),
        default_policy=policy,
    )


async def test_an_opaque_port_skips_detection_so_the_server_can_speak_first(app: int) -> None:
    _, inbound = await proxy_for(
        app, server(app, Protocol.OPAQUE, DefaultPolicy.ALL_UNAUTHENTICATED)
    )
    reader, writer = await asyncio.open_connection(*inbound.sockets[0].getsockname()[:2])
    banner = await asyncio.wait_for(reader.readline(), timeout=2)  # not the 10 s detection
    assert banner == b"220 smtp.example ESMTP ready\r\n"
    writer.write(b"\x00\x01binary")
    writer.write_eof()  # half-close: the app still answers after our EOF
    assert await asyncio.wait_for(reader.read(), timeout=2) == b"echo: \x00\x01binary"
    writer.close()
    inbound.close()


async def test_client_first_binary_is_detected_as_opaque_at_once(app: int) -> None:
    _, inbound = await proxy_for(
        app, server(app, Protocol.UNKNOWN, DefaultPolicy.ALL_UNAUTHENTICATED)
    )
    reader, writer = await asyncio.open_connection(*inbound.sockets[0].getsockname()[:2])
    writer.write(b"\x00\x01binary")
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), timeout=2)
    assert answer == b"220 smtp.example ESMTP ready\r\necho: \x00\x01binary"
    writer.close()
    inbound.close()


async def test_denied_tcp_is_closed_at_once(app: int) -> None:
    proxy, inbound = await proxy_for(app, server(app, Protocol.OPAQUE, DefaultPolicy.DENY))
    reader, writer = await asyncio.open_connection(*inbound.sockets[0].getsockname()[:2])
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), timeout=2)
    writer.close()
    inbound.close()
    denied = proxy.metrics.inbound_tcp_authz_deny_total.collect()[0].samples
    assert [s.value for s in denied if s.name.endswith("_total")] == [1.0]
