"""Every HTTP/1 application keeps working through the mesh (issue 18, section 1): each
behaviour checked outbound, inbound and through a meshed pair (mTLS between two
proxies), with real sockets on loopback.

WebSockets run between aiohttp's client and server; everything that needs exact bytes
(Expect, trailers, framing, strictness, misbehaving backends) uses raw sockets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from http1_peers import (
    GUARD_S,
    PATHS,
    Path,
    Start,
    StreamHandler,
    exchange,
    open_path,
    read_body,
    read_head,
    read_response,
    read_to_end,
    request,
    until,
)
from running import metric_value

from weft_proxy.errors import PROXY_ERROR_HEADER
from weft_proxy.io.http1_client import Http1Pool

ERROR_HEADER = PROXY_ERROR_HEADER.decode()

Through = Callable[[int], Awaitable[Path]]


@pytest.fixture(params=PATHS)
async def through(request: pytest.FixtureRequest, proxies: Start) -> Through:
    """Opens the path this test runs on, in front of an app's port."""

    async def make(app_port: int) -> Path:
        return await open_path(request.param, proxies, app_port)

    return make


# --- 1. WebSocket / Upgrade ------------------------------------------------------------------


def websocket_app(closed_by_client: asyncio.Event) -> web.Application:
    """An echo server, strict as many are: an upgrade request carrying body framing is
    refused. Text `close-please` makes it close the WebSocket itself."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if "Transfer-Encoding" in request.headers or "Content-Length" in request.headers:
            return web.Response(status=400, text="an upgrade request has no body")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text="plain http")
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                if message.data == "close-please":
                    await ws.close(code=aiohttp.WSCloseCode.OK, message=b"bye")
                    return ws
                await ws.send_str(message.data)
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        closed_by_client.set()
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def test_websockets_carry_every_kind_of_message_and_close_cleanly_either_way(
    through: Through, aiohttp_app: Callable[[web.Application], Awaitable[int]]
) -> None:
    closed_by_client = asyncio.Event()
    path = await through(await aiohttp_app(websocket_app(closed_by_client)))
    rng = random.Random(18)
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 70_000]
    async with aiohttp.ClientSession(headers={"Host": path.host}) as session:
        async with session.ws_connect(
            f"{path.url}/chat", max_msg_size=4 * 1024 * 1024, autoping=False
        ) as ws:
            for batch in range(150):  # 3,000 messages, sent 20 at a time
                sent: list[str | bytes] = []
                for i in range(20):
                    size = sizes[i % len(sizes)] if batch % 10 == 0 else rng.randrange(2000)
                    if i % 2:
                        sent.append(rng.randbytes(size))
                        await ws.send_bytes(sent[-1])  # type: ignore[arg-type]
                    else:
                        sent.append("é" * size)
                        await ws.send_str(sent[-1])  # type: ignore[arg-type]
                for payload in sent:
                    message = await asyncio.wait_for(ws.receive(), GUARD_S)
                    assert message.data == payload
            big = rng.randbytes(1024 * 1024)
            await ws.send_bytes(big)
            assert (await asyncio.wait_for(ws.receive(), GUARD_S)).data == big
            await ws.ping(b"are you there")
            pong = await asyncio.wait_for(ws.receive(), GUARD_S)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"are you there")
            assert await ws.close()  # the client closes
            assert ws.close_code == aiohttp.WSCloseCode.OK
        await asyncio.wait_for(closed_by_client.wait(), GUARD_S)
        async with session.ws_connect(f"{path.url}/chat") as ws:  # the server closes
            await ws.send_str("close-please")
            closing = await asyncio.wait_for(ws.receive(), GUARD_S)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (aiohttp.WSCloseCode.OK, "bye")
        async with session.get(f"{path.url}/plain") as response:  # plain HTTP still works
            assert (response.status, await response.text()) == (200, "plain http")


async def test_an_upgrade_request_goes_body_less_and_a_refused_switch_keeps_http1_going(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    """A server that ignores `Upgrade` answers as HTTP/1; the client's next request on
    the same connection is served, and never taken for tunnel bytes."""
    heads: list[bytes] = []

    async def ignores_upgrades(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
            await writer.drain()
        writer.close()

    path = await through(await raw_app(ignores_upgrades))
    reader, writer = await path.open()
    upgrade = (("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))
    writer.write(request("GET", "/ws", host=path.host, headers=upgrade))
    first = await asyncio.wait_for(read_response(reader), GUARD_S)
    writer.write(request("GET", "/after", host=path.host))
    second = await asyncio.wait_for(read_response(reader), GUARD_S)
    writer.close()
    assert (first.status, first.body, second.status, second.body) == (200, b"no", 200, b"no")
    upgrade_head = heads[0].lower()
    assert b"upgrade: websocket" in upgrade_head
    assert b"transfer-encoding" not in upgrade_head
    assert b"content-length" not in upgrade_head
    assert heads[1].startswith(b"GET /after ")


# --- 2. A response never reaches the wrong client -------------------------------------------


def oversharing_app(late: asyncio.Event | None = None) -> StreamHandler:
    """Answers its first request with more than the response declares: a whole second
    (unsolicited) response, in the same write or, with `late`, once `late` is set.
    Every other request gets `fine`."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            served += 1
            if served == 1:
                smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET"
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                if late is None:
                    writer.write(answer + smuggled)
                else:
                    writer.write(answer)
                    await late.wait()
                    writer.write(smuggled)
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
            await writer.drain()
        writer.close()

    return handle


def idle_connections(path: Path) -> list[object]:
    """The pooled upstream connections of every proxy on the path."""
    pools: list[Http1Pool] = []
    for running in path.proxies:
        pools += running.proxy.inbound_http1._pools.values()
        for state in running.proxy.outbound_state.services.values():
            for group in state.groups.values():
                pools += group._pools.values()
    return [connection for pool in pools for connection in pool._idle]


@pytest.mark.parametrize("when", ["with-the-response", "while-idle"])
async def test_bytes_past_a_response_never_reach_the_next_client(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]], when: str
) -> None:
    late = asyncio.Event() if when == "while-idle" else None
    path = await through(await raw_app(oversharing_app(late)))
    first = await exchange(path, request("GET", "/one", host=path.host))
    assert (first.status, first.body) == (200, b"first")
    if late is not None:
        await until(lambda: bool(idle_connections(path)))
        late.set()  # the unsolicited response arrives on a pooled, idle connection
        # The proxy has read it: the pooled connection is no longer at a boundary.
        await until(lambda: any(not c.usable for c in idle_connections(path)))
    for i in range(3):
        later = await exchange(path, request("GET", f"/next/{i}", host=path.host))
        assert (later.status, later.body) == (200, b"fine")


# --- 3. Expect: 100-continue -------------------------------------------------------------


def continue_app() -> web.Application:
    """Answers `100 Continue`, then reads the body; `/secret` answers 401 at once,
    without asking for the body (both in aiohttp's expect handler)."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"got {(await request.read()).decode()}")

    async def expect(request: web.Request) -> web.Response | None:
        if request.path == "/secret":
            return web.Response(status=401, text="who are you")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", echo, expect_handler=expect)
    return app


async def send_expecting(
    path: Path, target: str, body: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    """Headers with `Expect: 100-continue`, then the first answer, as curl waits for it."""
    reader, writer = await path.open()
    head = request(
        "POST",
        target,
        host=path.host,
        headers=(("Expect", "100-continue"), ("Content-Length", str(len(body)))),
    )
    writer.write(head)
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    return reader, writer, status, headers


async def test_expect_100_continue_is_relayed_and_an_early_answer_is_not_a_failure(
    through: Through, aiohttp_app: Callable[[web.Application], Awaitable[int]]
) -> None:
    path = await through(await aiohttp_app(continue_app()))
    reader, writer, status, _ = await send_expecting(path, "/upload", b"hello world")
    assert status == 100  # relayed at once: the client has not sent its body
    writer.write(b"hello world")
    response = await asyncio.wait_for(read_response(reader), GUARD_S)
    assert (response.status, response.body) == (200, b"got hello world")
    writer.close()
    for _ in range(10):  # more than failure accrual's 7: none of them is a failure
        reader, writer, status, headers = await send_expecting(path, "/secret", b"x" * 1000)
        assert status == 401, headers
        assert ERROR_HEADER not in headers
        body, _ = await read_body(reader, headers)
        assert body == b"who are you"
        assert headers.get("connection") == "close"  # the body was never asked for
        assert await asyncio.wait_for(read_to_end(reader), GUARD_S) == b""
        writer.close()
    response = await exchange(path, request("POST", "/again", host=path.host, body=b"ok"))
    assert (response.status, response.body) == (200, b"got ok")


async def test_an_answer_before_the_body_is_relayed_not_a_502(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    """A server refusing an upload (413) as its head arrives, and reading no more of it
    (as Go's net/http does past 256 KiB) while the client still streams: the client
    gets the 413, however much of its body is still to go."""
    answered = asyncio.Event()

    async def too_large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n")
        writer.write(b"Connection: close\r\n\r\nbig")
        await writer.drain()
        writer.write_eof()
        await answered.wait()
        writer.close()

    path = await through(await raw_app(too_large))
    body = b"z" * (64 * 1024 * 1024)  # more than any socket buffers hold
    for _ in range(8):  # more than failure accrual's 7: a 413 is no failure
        answered.clear()
        reader, writer = await path.open()
        writer.write(request("PUT", "/upload", host=path.host)[:-2])
        writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode())

        async def upload(writer: asyncio.StreamWriter = writer) -> None:
            view = memoryview(body)
            for start in range(0, len(body), 65536):
                writer.write(view[start : start + 65536])
                await writer.drain()

        sending = asyncio.create_task(upload())
        response = await asyncio.wait_for(read_response(reader), GUARD_S)
        assert (response.status, response.body) == (413, b"big"), response.headers
        answered.set()
        sending.cancel()
        writer.close()


async def test_an_app_hanging_up_mid_upload_is_a_502_and_the_connection_goes_on(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    connections = 0

    async def hangs_up_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await reader.readuntil(b"\r\n\r\n")
            return  # read the head, then hang up without a word
        while True:
            _, headers = await read_head(reader)
            await read_body(reader, headers, request=True)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    path = await through(await raw_app(hangs_up_once))
    reader, writer = await path.open()
    writer.write(request("PUT", "/up", host=path.host)[:-2] + b"Content-Length: 10\r\n\r\n01234")
    response = await asyncio.wait_for(read_response(reader), GUARD_S)
    assert response.status == 502
    assert ERROR_HEADER in response.headers
    writer.write(b"56789")  # the rest of that body, then the next request
    writer.write(request("GET", "/again", host=path.host))
    again = await asyncio.wait_for(read_response(reader), GUARD_S)
    writer.close()
    assert (again.status, again.body) == (200, b"ok")


# --- 4. Trailers ---------------------------------------------------------------------------


async def test_trailers_pass_through_both_ways(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def with_trailers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers = await read_head(reader)
        received.append(await read_body(reader, headers, request=True))
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    path = await through(await raw_app(with_trailers))
    raw = (
        f"POST /up HTTP/1.1\r\nHost: {path.host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + b"4\r\ndata\r\n0\r\nX-Request-Sum: 42\r\n\r\n"
    )
    response = await exchange(path, raw)
    assert received == [(b"data", {"x-request-sum": "42"})]
    assert (response.status, response.body) == (200, b"hello world")
    assert response.trailers == {"x-checksum": "abc123"}
    assert response.headers.get("trailer") == "X-Checksum"  # announced, as they were


# --- 5. No framing the client did not send -----------------------------------------------------


async def test_a_body_less_request_is_forwarded_body_less(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    seen: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await reader.readuntil(b"\r\n\r\n"))
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        writer.close()

    path = await through(await raw_app(recording))
    reader, writer = await path.open()
    for method in ("GET", "DELETE", "OPTIONS"):
        writer.write(request(method, "/item", host=path.host))
        assert (await asyncio.wait_for(read_response(reader), GUARD_S)).status == 204
    writer.close()
    assert len(seen) == 3  # and nothing else: no empty chunked body followed any head
    for head in seen:
        assert b"transfer-encoding" not in head.lower()
        assert b"content-length" not in head.lower()


# --- 6. Strict where the RFC says so -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: books\r\nHost: evil\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nHost: books\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: books\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/1.1\r\nHost: books:\xb2\r\n\r\n", None),  # a port that is no number
    ],
)
async def test_requests_the_rfc_refuses_are_refused(
    through: Through,
    aiohttp_app: Callable[[web.Application], Awaitable[int]],
    raw: bytes,
    status: int | None,
) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    path = await through(await aiohttp_app(app))
    response = await exchange(path, raw.replace(b"Host: books", f"Host: {path.host}".encode()))
    if status is None:  # whatever it is routed to: answered, not a traceback
        assert response.status in (200, 400, 502)
    else:
        assert response.status == status
        assert ERROR_HEADER in response.headers


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 099 Too Low\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
    ],
)
async def test_a_malformed_response_is_a_502_from_the_proxy(
    through: Through,
    raw_app: Callable[[StreamHandler], Awaitable[int]],
    answer: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(answer)
        await writer.drain()
        await read_to_end(reader)
        writer.close()

    path = await through(await raw_app(broken))
    with caplog.at_level(logging.WARNING):
        response = await exchange(path, request("GET", "/", host=path.host))
    assert response.status == 502
    assert ERROR_HEADER in response.headers
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert len(caplog.records) <= len(path.proxies)  # a line per proxy at most


async def test_a_response_malformed_mid_body_is_cut_with_nothing_appended(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    client_has_part = asyncio.Event()

    async def garbles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await client_has_part.wait()
        writer.write(b"this is not a chunk\r\n\r\n")
        await writer.drain()
        await read_to_end(reader)
        writer.close()

    path = await through(await raw_app(garbles))
    reader, writer = await path.open()
    writer.write(request("GET", "/", host=path.host))
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    assert (status, headers.get("transfer-encoding")) == (200, "chunked")
    assert await asyncio.wait_for(reader.readuntil(b"hello\r\n"), GUARD_S) == b"5\r\nhello\r\n"
    client_has_part.set()
    rest = await asyncio.wait_for(read_to_end(reader), GUARD_S)
    writer.close()
    assert rest == b""  # cut: no last chunk, and no 400 written into the body


# --- 7. One pooled exchange: failures close the upstream, cuts count alike ---------------


def reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_a_client_gone_mid_response_closes_the_upstream_connection(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    """The relay fails writing to a client that reset: the app's connection is closed,
    not left open (leaked) with its response half read."""
    app_saw_the_end = asyncio.Event()
    client_has_part = asyncio.Event()

    async def streaming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"a" * 1000)
        await writer.drain()
        await client_has_part.wait()
        try:
            while True:  # until the proxy ends the connection
                writer.write(b"b" * 65536)
                await writer.drain()
        except ConnectionError:
            app_saw_the_end.set()
        writer.close()

    path = await through(await raw_app(streaming))
    reader, writer = await path.open()
    writer.write(request("GET", "/big", host=path.host))
    await asyncio.wait_for(read_head(reader), GUARD_S)
    await asyncio.wait_for(reader.readexactly(1000), GUARD_S)
    reset(writer)
    client_has_part.set()
    await asyncio.wait_for(app_saw_the_end.wait(), GUARD_S)


async def test_a_response_cut_mid_body_counts_as_a_failure(
    through: Through, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    client_has_part = asyncio.Event()

    async def cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        await writer.drain()
        await client_has_part.wait()
        reset(writer)

    path = await through(await raw_app(cuts))
    reader, writer = await path.open()
    writer.write(request("GET", "/", host=path.host))
    await asyncio.wait_for(read_head(reader), GUARD_S)
    await asyncio.wait_for(reader.readexactly(10), GUARD_S)
    client_has_part.set()
    assert await asyncio.wait_for(read_to_end(reader), GUARD_S) == b""
    writer.close()
    nearest = path.proxies[-1]  # the proxy that saw the cut
    direction = "outbound" if path.name == "outbound" else "inbound"

    def failures() -> float:
        lines = nearest.metric_lines("response_total")
        return sum(
            metric_value(line)
            for line in lines
            if f'direction="{direction}"' in line
            and 'status_code="200"' in line
            and 'classification="failure"' in line
        )

    await until(lambda: failures() == 1)
