"""Hostile values over real sockets: what a peer can put in a frame or a header gets a
proper answer (RST_STREAM, GOAWAY, 502) and at most a warning line, never a traceback,
and the GOAWAY that ends a connection reaches the peer before the socket closes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import sys
from collections.abc import AsyncIterator

import h2.errors
import pytest
from aiohttp import web
from h2_peers import (
    H2Client,
    H2Server,
    Message,
    Peer,
    ServerStream,
    read_request,
    request_head,
)
from proxy_configs import backend, books, config
from running import RunningProxy, start_proxy

from weft_api.http2_limits import parse
from weft_api.mesh import ProxyEnv
from weft_localcluster.ports import pick_free
from weft_proxy.protocols.detect import HTTP2_PREFACE

SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
PROTOCOL_ERROR = int(h2.errors.ErrorCodes.PROTOCOL_ERROR)


def frames(data: bytes) -> list[tuple[int, int, bytes]]:
    found = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        found.append((data[3], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


@pytest.fixture
async def http1_app() -> AsyncIterator[tuple[int, list[str]]]:
    """An HTTP/1 application; the request lines it saw."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.raw_path}")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1], seen  # type: ignore[union-attr]
    await runner.cleanup()


@pytest.fixture
async def inbound(http1_app: tuple[int, list[str]]) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(config(), inbound_fallback_port=http1_app[0])
    yield running
    running.close()


async def test_an_upstream_status_of_5000_digits_is_a_502_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def huge_status(request: Message, stream: ServerStream) -> object:
        await read_request(request, stream)
        return [(b":status", b"9" * 5000)], b"", [(b"grpc-status", b"7" * 5000)]

    server = H2Server(huge_status)
    port = await server.start()
    proxy = await start_proxy(config(), inbound_fallback_port=port)
    client = await H2Client.connect(proxy.inbound_port)
    try:
        with caplog.at_level(logging.WARNING):
            reply = await asyncio.wait_for(client.request(request_head("app", "/")), 10)
    finally:
        await client.close()
        proxy.close()
        await server.close()
    assert reply.header(b":status") == b"502"
    assert reply.header(b"weft-proxy-error") is not None
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_the_goaway_reaches_a_peer_that_is_still_sending() -> None:
    # The proxy stops reading at the bad frame with a megabyte still coming: closing at
    # once would reset the connection and the peer could lose the GOAWAY saying why.
    proxy = await start_proxy(config(books(backend("books", 1, []))))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
        data_on_stream_0 = b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd"
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
        writer.write(HTTP2_PREFACE + SETTINGS + data_on_stream_0 + ping * 60_000)
        answer = await asyncio.wait_for(reader.read(), 10)  # a reset raises here
        writer.close()
    finally:
        proxy.close()
    goaways = [payload for kind, _, payload in frames(answer) if kind == 0x7]
    assert goaways, answer[:200]
    assert struct.unpack("!I", goaways[0][4:8])[0] == PROTOCOL_ERROR


async def test_a_drained_proxy_exits_without_a_traceback() -> None:
    ports = {name: pick_free() for name in ("inbound", "outbound", "admin", "tap")}
    env = dict(
        os.environ,
        **{
            ProxyEnv.INBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['inbound']}",
            ProxyEnv.OUTBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['outbound']}",
            ProxyEnv.ADMIN_LISTEN_ADDR: f"127.0.0.1:{ports['admin']}",
            ProxyEnv.TAP_LISTEN_ADDR: f"127.0.0.1:{ports['tap']}",
        },
    )
    proxy = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "weft_proxy", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proxy.stderr is not None
    while b"listening" not in (line := await asyncio.wait_for(proxy.stderr.readline(), 60)):
        assert line, "the proxy exited before listening"
    # A kubelet's probe connection, kept alive (as kubelets keep theirs) across the drain.
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["admin"])
    writer.write(b"GET /live HTTP/1.1\r\nHost: proxy\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    proxy.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proxy.communicate(), 30)
    writer.close()
    assert proxy.returncode == 0
    assert b"Traceback" not in stderr, stderr.decode()


async def test_an_invalid_limit_setting_stops_the_proxy_with_a_message() -> None:
    env = dict(os.environ, **{ProxyEnv.HTTP2_LIMITS: "pings=lots"})
    proxy = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "weft_proxy", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proxy.communicate(), 60)
    assert proxy.returncode == 2
    assert f"{ProxyEnv.HTTP2_LIMITS}: 'pings=lots'" in stderr.decode()
    assert b"Traceback" not in stderr


async def test_a_lower_limit_from_the_setting_applies_to_each_connection() -> None:
    proxy = await start_proxy(
        config(books(backend("books", 1, []))), http2_limits=parse("pings=3:0")
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
        writer.write(HTTP2_PREFACE + SETTINGS + ping * 4 + ping * 1000)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        proxy.close()
    kinds = [kind for kind, _, _ in frames(answer)]
    assert kinds[-1] == 0x7  # the fourth PING ends the connection
    goaway = next(payload for kind, _, payload in frames(answer) if kind == 0x7)
    assert struct.unpack("!I", goaway[4:8])[0] == int(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)


async def test_an_address_that_flooded_waits_while_others_are_served() -> None:
    async def hello(request: Message, stream: ServerStream) -> object:
        await read_request(request, stream)
        return [(b":status", b"200")], b"hello", None

    app = H2Server(hello)
    port = await app.start()
    # A penalty no test run outlasts, so the order below is not a race.
    proxy = await start_proxy(
        config(), inbound_fallback_port=port, http2_limits=parse("pings=1:0"), flood_penalty_s=600
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
        writer.write(HTTP2_PREFACE + SETTINGS + ping * 2)
        assert b"\x00\x00\x00\x0b" in await asyncio.wait_for(reader.read(), 10)  # calm down
        writer.close()

        again = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
        other_reader, other_writer = await asyncio.open_connection(
            "127.0.0.1", proxy.inbound_port, local_addr=("127.0.0.2", 0)
        )
        peer = Peer(other_reader, other_writer, client=True)
        other = H2Client(peer, asyncio.create_task(peer.run()))
        reply = await asyncio.wait_for(other.request(request_head("app", "/")), 10)
        assert reply.body == b"hello"  # another address is served at once
        again[1].write(HTTP2_PREFACE + SETTINGS)
        with pytest.raises(TimeoutError):  # while the flooder's address still waits
            await asyncio.wait_for(again[0].read(1), 0.5)
        again[1].close()
        await other.close()
    finally:
        proxy.close()
        await app.close()
