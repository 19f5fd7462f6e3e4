"""Plain HTTP/2 through the proxy with real sockets on loopback: h2c clients and servers
written straight on h2's state machine (tests/proxy/h2_peers.py) around Weft's outbound
and inbound listeners, and aiohttp for the HTTP/1 side of HTTP/1-to-HTTP/2 hops."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import h2.errors
import pytest
from h2_peers import H2Client, H2Server, Message, ServerStream, read_request, request_head
from proxy_configs import AUTHORITY, backend, books, config
from running import RunningProxy, metric_value

from weft_api.config import (
    DefaultPolicy,
    InboundServer,
    Protocol,
    ServerKind,
)
from weft_proxy.protocols.detect import HTTP2_PREFACE

StartProxy = Callable[..., Awaitable[RunningProxy]]
OK = [(b":status", b"200")]


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., Awaitable[tuple[H2Server, int]]]]:
    started: list[H2Server] = []

    async def start(
        handler: Callable[..., Awaitable[object]], max_concurrent_streams: int = 100
    ) -> tuple[H2Server, int]:
        server = H2Server(handler, max_concurrent_streams)  # type: ignore[arg-type]
        started.append(server)
        return server, await server.start()

    yield start
    for server in started:
        await server.close()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[int], Awaitable[H2Client]]]:
    opened: list[H2Client] = []

    async def connect(port: int) -> H2Client:
        client = await H2Client.connect(port)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()


def named(name: str) -> Callable[[Message, ServerStream], Awaitable[object]]:
    async def handler(request: Message, stream: ServerStream) -> object:
        await read_request(request, stream)
        path = request.header(b":path") or b""
        return OK, name.encode() + b" " + path + b" %d" % len(request.body), None

    return handler


async def echo(request: Message, stream: ServerStream) -> object:
    await read_request(request, stream)
    return OK, request.body, request.trailers or [(b"x-echoed", b"yes")]


async def test_streams_reach_endpoints_by_authority_on_one_connection(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    (a, port_a), (b, port_b) = await servers(named("a")), await servers(named("b"))
    proxy = await proxies(config(books(backend("books", 1, [port_a, port_b]))))
    client = await clients(proxy.outbound_port)
    replies = await asyncio.gather(
        *(client.request(request_head(AUTHORITY, f"/books/{i}")) for i in range(60))
    )
    assert all(reply.header(b":status") == b"200" for reply in replies)
    assert {reply.body.split(b" ")[1] for reply in replies} == {b"/books/%d" % i for i in range(60)}
    assert a.requests, "balanced over both"
    assert b.requests, "balanced over both"
    assert len(a.peers) == len(b.peers) == 1  # each endpoint: one multiplexed connection
    lines = proxy.metric_lines("response_total")
    assert sum(metric_value(line) for line in lines if 'status_code="200"' in line) == 60


async def test_the_upstreams_stream_limit_is_respected(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    now, most = [0], [0]

    async def slow(request: Message, stream: ServerStream) -> object:
        now[0] += 1
        most[0] = max(most[0], now[0])
        await read_request(request, stream)
        await asyncio.sleep(0.05)
        now[0] -= 1
        return OK, b"done", None

    server, port = await servers(slow, max_concurrent_streams=2)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    client = await clients(proxy.outbound_port)
    replies = await asyncio.wait_for(
        asyncio.gather(*(client.request(request_head(AUTHORITY, "/")) for _ in range(8))), 5
    )
    assert [reply.body for reply in replies] == [b"done"] * 8
    assert most[0] == 2  # queued in the proxy, on one connection, not refused
    assert len(server.peers) == 1


async def test_big_bodies_stream_both_ways_under_flow_control(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    _, port = await servers(echo)
    proxy = await proxies(config(books(backend("echo", 1, [port]))))
    client = await clients(proxy.outbound_port)
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB: many times every window
    head = request_head(AUTHORITY, "/upload", "POST")
    replies = await asyncio.wait_for(
        asyncio.gather(*(client.request(head, payload) for _ in range(3))), 20
    )
    assert all(reply.body == payload for reply in replies)
    assert all(reply.trailers == [(b"x-echoed", b"yes")] for reply in replies)


async def test_a_client_that_does_not_read_holds_the_upstream_at_its_window(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    total, sent = 8 * 1024 * 1024, [0]

    async def firehose(request: Message, stream: ServerStream) -> None:
        await read_request(request, stream)
        await stream.send_head(OK)
        for _ in range(total // 65536):
            await stream.send(b"x" * 65536)
            sent[0] += 65536
        await stream.send(b"", end_stream=True)

    _, port = await servers(firehose)
    proxy = await proxies(config(books(backend("firehose", 1, [port]))))
    client = await clients(proxy.outbound_port)
    stream_id = client.start(request_head(AUTHORITY, "/"), end_stream=True)
    await asyncio.sleep(0.5)  # the client reads nothing meanwhile
    assert sent[0] < 1024 * 1024  # its window and the proxy's, not 8 MiB in memory
    reply = await asyncio.wait_for(client.peer.receive(stream_id, Message()), 20)
    assert len(reply.body) == total


async def test_trailers_pass_both_ways(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    server, port = await servers(echo)
    proxy = await proxies(config(books(backend("echo", 1, [port]))))
    client = await clients(proxy.outbound_port)
    head = request_head(AUTHORITY, "/", "POST", [(b"te", b"trailers")])
    reply = await client.request(head, b"body", trailers=[(b"x-checksum", b"abc")])
    assert server.requests[0].trailers == [(b"x-checksum", b"abc")]
    assert reply.body == b"body"
    assert reply.trailers == [(b"x-checksum", b"abc")]


async def test_a_client_reset_cancels_the_upstream_stream(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    upstream_ended: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    upstream_started = asyncio.Event()

    async def waits(request: Message, stream: ServerStream) -> None:
        await stream.send_head(OK)  # then waits for a request body that never comes
        upstream_started.set()
        upstream_ended.set_result(await read_request(request, stream))

    _, port = await servers(waits)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    client = await clients(proxy.outbound_port)
    stream_id = client.start(request_head(AUTHORITY, "/", "POST"))
    await asyncio.wait_for(upstream_started.wait(), 10)  # the stream reached the upstream
    client.reset(stream_id, h2.errors.ErrorCodes.CANCEL)
    ended = await asyncio.wait_for(upstream_ended, 2)
    assert ended.reset == h2.errors.ErrorCodes.CANCEL


async def test_an_upstream_reset_reaches_the_client_with_its_code(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    async def resets(request: Message, stream: ServerStream) -> None:
        await read_request(request, stream)
        await stream.send_head(OK)
        await stream.send(b"partial")
        stream.peer.h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        stream.peer.flush()

    _, port = await servers(resets)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    client = await clients(proxy.outbound_port)
    reply = await asyncio.wait_for(client.request(request_head(AUTHORITY, "/")), 2)
    assert reply.reset == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    failure = next(
        line for line in proxy.metric_lines("response_total") if "failure" in line
    )  # a response cut short is a failure, whatever its status
    assert 'status_code="200"' in failure


async def test_shutdown_sends_goaway(
    clients: Callable[[int], Awaitable[H2Client]], proxies: StartProxy
) -> None:
    proxy = await proxies(config(books(backend("books", 1, []))))
    client = await clients(proxy.outbound_port)
    await client.request(request_head(AUTHORITY, "/"))  # the connection is up
    proxy.proxy.shutdown()
    await asyncio.wait_for(client.peer.closed.wait(), 2)  # no stream open: closed at once
    assert client.peer.goaway is not None
    assert client.peer.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert not proxy.proxy.h2_sessions


async def test_an_upstream_goaway_moves_new_streams_to_a_new_connection(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    server, port = await servers(named("books"))
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    client = await clients(proxy.outbound_port)
    assert (await client.request(request_head(AUTHORITY, "/1"))).header(b":status") == b"200"
    server.go_away()
    # The proxy saw it: with no stream left open there, it closes that connection.
    await asyncio.wait_for(server.peers[0].closed.wait(), 10)
    assert (await client.request(request_head(AUTHORITY, "/2"))).header(b":status") == b"200"
    assert len(server.peers) == 2


async def test_no_endpoints_is_a_503_that_says_it_came_from_the_proxy(
    clients: Callable[[int], Awaitable[H2Client]], proxies: StartProxy
) -> None:
    proxy = await proxies(config(books(backend("books", 1, []))))
    client = await clients(proxy.outbound_port)
    reply = await client.request(request_head(AUTHORITY, "/"))
    assert reply.header(b":status") == b"503"
    assert b"no endpoints" in (reply.header(b"weft-proxy-error") or b"")


def frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, stream id, payload) of each whole frame in `data`."""
    found = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        kind, stream_id = data[3], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        found.append((kind, stream_id, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


@pytest.mark.parametrize(
    "bad_frame",
    [
        b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd",  # DATA on stream 0
        b"\x00\x00\x03\x01\x05\x00\x00\x00\x01\xff\xff\xff",  # HEADERS that HPACK rejects
        b"\x00\x00\x02\x04\x00\x00\x00\x00\x00\x00\x00",  # SETTINGS of a bad length
    ],
)
async def test_protocol_errors_get_goaway_and_the_proxy_stays_healthy(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
    bad_frame: bytes,
) -> None:
    _, port = await servers(named("books"))
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + bad_frame)
    answer = await asyncio.wait_for(reader.read(), 2)  # until the proxy closes
    writer.close()
    goaway = [payload for kind, _, payload in frames(answer) if kind == 0x7]
    assert goaway, answer
    (error_code,) = struct.unpack("!I", goaway[0][4:8])
    assert error_code != h2.errors.ErrorCodes.NO_ERROR
    client = await clients(proxy.outbound_port)
    assert (await client.request(request_head(AUTHORITY, "/"))).header(b":status") == b"200"


async def test_inbound_forwards_http2_to_the_application_under_its_policy(
    servers: Callable[..., Awaitable[tuple[H2Server, int]]],
    clients: Callable[[int], Awaitable[H2Client]],
    proxies: StartProxy,
) -> None:
    app, port = await servers(named("app"))
    deny = InboundServer(
        name="admin",
        kind=ServerKind.SERVER,
        port=port,
        protocol=Protocol.HTTP2,
        authorizations=(),
        default_policy=DefaultPolicy.DENY,
    )
    proxy = await proxies(config(inbound=(deny,)), inbound_fallback_port=port)
    client = await clients(proxy.inbound_port)
    denied = await client.request(request_head(AUTHORITY, "/secret"))
    assert denied.header(b":status") == b"403"
    assert b"unauthorized" in (denied.header(b"weft-proxy-error") or b"")
    assert not app.requests
    proxy.proxy.apply(config())  # the default policy: all unauthenticated
    allowed = await client.request(request_head(AUTHORITY, "/hello"))
    assert allowed.body == b"app /hello 0"
