"""Edge cases of the proxy with real sockets on loopback: HTTP/1 pipelining and
keep-alive, backends that reset or hang up, opaque TCP half-close and back-pressure, and
what detection does with a client that sends nothing.

Clients here are raw sockets (with a small HTTP/1 reader of their own) so the tests see
exactly the bytes and the connection ends the proxy produces; HTTP backends are aiohttp
or raw asyncio servers when they must misbehave.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import NoReturn

import pytest
from aiohttp import web
from proxy_configs import AUTHORITY, allow_all, backend, books, config
from running import RunningProxy

import weft_proxy.proxy
from weft_api.config import InboundServer, Protocol, ServerKind
from weft_proxy.errors import PROXY_ERROR_HEADER
from weft_proxy.io.peek import detect_protocol, peek_protocol
from weft_proxy.tap.hub import TapHub

StartProxy = Callable[..., Awaitable[RunningProxy]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

GUARD_S = 2.0  # a bound on waits so a hang fails the test; never what it asserts
ERROR_HEADER = PROXY_ERROR_HEADER.decode()


# --- peers --------------------------------------------------------------------------------


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {AUTHORITY}\r\n"
    if body or method not in ("GET", "HEAD"):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A response's status and headers (names lower-cased)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One whole response: framed by Content-Length, chunked, or by the close."""
    status, headers = await read_head(reader)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
    else:
        body = await reader.read()
    return status, headers, body


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything until the connection ends, by a FIN or a reset."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def get(port: int, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request("GET", path))
        return await asyncio.wait_for(read_response(reader), GUARD_S)
    finally:
        writer.close()


def opaque(port: int) -> InboundServer:
    """An inbound port marked opaque, open to everyone: bytes pass as they are."""
    return InboundServer(
        name="opaque",
        kind=ServerKind.SERVER,
        port=port,
        protocol=Protocol.OPAQUE,
        authorizations=allow_all(port).authorizations,
        default_policy=allow_all(port).default_policy,
    )


async def opaque_proxy(proxies: StartProxy, app: int) -> RunningProxy:
    """A proxy whose inbound listener forwards opaque TCP to the application port `app`."""
    return await proxies(config(inbound=(opaque(app),)), inbound_fallback_port=app)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashing peer does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- HTTP/1 ---------------------------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(
    proxies: StartProxy, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/first":
            await asyncio.sleep(0.05)  # slower than the rest: a reordering would show
        return web.Response(text=f"{request.method} {request.path} {body.decode()}")

    port = await http_backend(echo)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(
        request("GET", "/first")
        + request("POST", "/second", b"the body")
        + request("GET", "/third?x=1")
    )  # one write: the proxy holds all three before it answers the first
    answers = [await asyncio.wait_for(read_response(reader), GUARD_S) for _ in range(3)]
    writer.close()
    assert [(status, body) for status, _, body in answers] == [
        (200, b"GET /first "),
        (200, b"POST /second the body"),
        (200, b"GET /third "),
    ]


async def test_keep_alive_requests_reuse_one_upstream_connection(
    proxies: StartProxy, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    async def peer_port(request: web.Request) -> web.Response:
        assert request.transport is not None
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))

    port = await http_backend(peer_port)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    seen = []
    for i in range(5):
        writer.write(request("GET", f"/books/{i}"))
        status, _, body = await asyncio.wait_for(read_response(reader), GUARD_S)
        assert status == 200
        seen.append(body)
    writer.close()
    assert len(set(seen)) == 1, seen  # the proxy's source port never changed


async def test_a_fault_serving_a_request_ends_only_its_connection(
    proxies: StartProxy,
    http_backend: Callable[[Handler], Awaitable[int]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    port = await http_backend(ok)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(request("GET", "/warm"))  # a pooled connection: the next is served at once
    assert (await asyncio.wait_for(read_response(reader), GUARD_S))[0] == 200

    def faulty(hub: TapHub) -> NoReturn:
        raise RuntimeError("a fault in the proxy")

    # Once the answer is judged, in the upstream connection's callbacks. (The tap hub is
    # a seam because it is not compiled: compiled code calls compiled code directly.)
    monkeypatch.setattr(TapHub, "watched", property(faulty))
    writer.write(request("GET", "/faulty"))
    # The connection ends (a hang would leave the client waiting for ever).
    assert await asyncio.wait_for(reader.read(), GUARD_S) == b""
    writer.close()
    assert "a fault in the proxy" in caplog.text
    monkeypatch.undo()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    for _ in range(2):  # the proxy goes on serving, pooled connections included
        writer.write(request("GET", "/after"))
        assert (await asyncio.wait_for(read_response(reader), GUARD_S))[0] == 200
    writer.close()


async def test_a_backend_reset_mid_body_cuts_the_response_and_the_proxy_stays_healthy(
    proxies: StartProxy, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    client_has_part = asyncio.Event()
    connections = 0

    async def crashing_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"0123456789")
            await writer.drain()
            await client_has_part.wait()  # so the reset cannot overtake the 10 bytes
            reset(writer)
            return
        while True:  # later connections answer normally, kept alive
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    port = await raw_app(crashing_once)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(request("GET", "/download"))
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    assert (status, headers["content-length"]) == (200, "1000")
    assert await asyncio.wait_for(reader.readexactly(10), GUARD_S) == b"0123456789"
    client_has_part.set()
    rest = await asyncio.wait_for(read_to_end(reader), GUARD_S)
    writer.close()
    assert rest == b""  # 10 of the 1000 bytes promised, then the connection ended

    assert await get(proxy.outbound_port) == (200, {"content-length": "2"}, b"ok")
    assert connections == 2


async def test_a_backend_hanging_up_without_an_answer_is_a_502_from_the_proxy(
    proxies: StartProxy, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    connections = 0

    async def hangs_up_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            if first:
                break  # read the request, then close without a word
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    port = await raw_app(hangs_up_once)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(request("GET", "/"))
    status, headers, _ = await asyncio.wait_for(read_response(reader), GUARD_S)
    assert status == 502
    assert f"127.0.0.1:{port}" in headers[ERROR_HEADER]

    # The client's connection is still usable, and so is the proxy.
    writer.write(request("GET", "/again"))
    assert await asyncio.wait_for(read_response(reader), GUARD_S) == (
        200,
        {"content-length": "2"},
        b"ok",
    )
    writer.close()
    assert (await get(proxy.outbound_port))[0] == 200


# --- opaque TCP -----------------------------------------------------------------------------


async def test_opaque_tcp_answers_after_the_clients_half_close(
    proxies: StartProxy, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    async def reverse_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # to the client's EOF
        writer.write(struct.pack("!I", len(data)) + data[::-1])
        await writer.drain()
        writer.close()

    app = await raw_app(reverse_after_eof)
    proxy = await opaque_proxy(proxies, app)
    payload = random.Random(6).randbytes(1024 * 1024 + 7)  # several reads' worth
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
    writer.write(payload)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), GUARD_S)
    writer.close()
    assert answer == struct.pack("!I", len(payload)) + payload[::-1]


async def test_opaque_tcp_carries_on_after_the_servers_half_close(
    proxies: StartProxy, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def says_it_all_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"all I have to say")
        writer.write_eof()  # done talking, still listening
        received.set_result(await reader.read())
        writer.close()

    app = await raw_app(says_it_all_first)
    proxy = await opaque_proxy(proxies, app)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
    assert await asyncio.wait_for(reader.read(), GUARD_S) == b"all I have to say"
    writer.write(b"and here is my answer")  # after the server's EOF reached us
    writer.write_eof()
    assert await asyncio.wait_for(received, GUARD_S) == b"and here is my answer"
    writer.close()


async def test_opaque_tcp_to_a_slow_reader_delivers_every_byte(
    proxies: StartProxy, raw_app: Callable[[StreamHandler], Awaitable[int]]
) -> None:
    payload = random.Random(7).randbytes(64 * 1024 * 1024)
    drained = 0  # what the client has handed over so far (its writes drained)
    drained_before_reading: list[int] = []

    async def slow_hasher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)  # not reading: buffers fill, back-pressure reaches the client
        drained_before_reading.append(drained)
        digest, total = hashlib.sha256(), 0
        while data := await reader.read(16 * 1024):  # then small reads
            digest.update(data)
            total += len(data)
        writer.write(f"{total} {digest.hexdigest()}".encode())
        await writer.drain()
        writer.close()

    app = await raw_app(slow_hasher)
    proxy = await opaque_proxy(proxies, app)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
    view, step = memoryview(payload), 1024 * 1024
    for start in range(0, len(payload), step):
        writer.write(view[start : start + step])
        await asyncio.wait_for(writer.drain(), GUARD_S)
        drained = min(start + step, len(payload))
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), GUARD_S)
    writer.close()
    assert answer.decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
    # While the backend read nothing, the proxy did not soak up the whole upload: its
    # buffers are bounded, so the client was held back until the backend read.
    assert drained_before_reading[0] < len(payload)


# --- detection ------------------------------------------------------------------------------

PATIENCE_S = 0.2  # instead of DETECT_TIMEOUT_S (10 s), a default the functions bind


@pytest.fixture
def short_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both listeners give up detection after PATIENCE_S."""
    monkeypatch.setattr(
        weft_proxy.proxy, "peek_protocol", functools.partial(peek_protocol, patience=PATIENCE_S)
    )
    monkeypatch.setattr(
        weft_proxy.proxy,
        "detect_protocol",
        functools.partial(detect_protocol, patience=PATIENCE_S),
    )


async def test_a_silent_inbound_client_goes_on_as_opaque_tcp_after_detection(
    short_detection: None,
    proxies: StartProxy,
    raw_app: Callable[[StreamHandler], Awaitable[int]],
) -> None:
    """A server-first protocol on a port not marked opaque: the client waits for the
    banner, the proxy waits for the client; detection's timeout breaks the tie."""

    async def banner_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.example ESMTP ready\r\n")
        await writer.drain()
        writer.write(b"echo: " + await reader.read())
        writer.close()

    app = await raw_app(banner_first)
    proxy = await proxies(config(), inbound_fallback_port=app)  # the port detects
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
    banner = await asyncio.wait_for(reader.readline(), GUARD_S)
    assert banner == b"220 smtp.example ESMTP ready\r\n"
    writer.write(b"EHLO client\r\n")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), GUARD_S) == b"echo: EHLO client\r\n"
    writer.close()


@pytest.mark.parametrize("sent", [b"", b"GET /half-a-request-line"], ids=["nothing", "partial"])
async def test_a_silent_outbound_client_without_destination_is_closed_after_detection(
    short_detection: None, proxies: StartProxy, sent: bytes
) -> None:
    """No original destination (no iptables here) and nothing recognisable: after
    detection gives up there is nowhere to send the bytes, so the proxy closes."""
    proxy = await proxies(config())
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    writer.write(sent)
    assert await asyncio.wait_for(read_to_end(reader), GUARD_S) == b""
    writer.close()


async def test_the_outbound_listener_is_healthy_after_a_silent_client(
    short_detection: None,
    proxies: StartProxy,
    http_backend: Callable[[Handler], Awaitable[int]],
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    port = await http_backend(ok)
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", proxy.outbound_port)
    status, _, body = await get(proxy.outbound_port)  # not held up by the silent one
    assert (status, body) == (200, b"ok")
    assert await asyncio.wait_for(read_to_end(silent_reader), GUARD_S) == b""
    silent_writer.close()
