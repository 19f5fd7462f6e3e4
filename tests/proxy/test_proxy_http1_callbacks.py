"""HTTP/1 requests served in the proxy's Protocol callbacks, and handed mid-way to the
client connection's task, as a client and an app see them: real sockets on loopback,
outbound, inbound and through a meshed pair (mTLS between two proxies).

A request goes in callbacks only once the proxy has an idle pooled connection to the
endpoint chosen: each test first warms its path with a request (or a few), so that the
requests it checks take the callback path, and the hand-offs from it (a large or
chunked body, a body still arriving, a full client write buffer, a retry, a deadline,
a drain) happen in the middle of an exchange.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from http1_peers import (
    GUARD_S,
    PATHS,
    Path,
    Start,
    StreamHandler,
    open_path,
    read_head,
    read_response,
    read_to_end,
    request,
    until,
)
from proxy_configs import backend, books, config
from running import RunningProxy, metric_value

from weft_api.config import RequestMatch, RetryBudget, Route
from weft_proxy.errors import PROXY_ERROR_HEADER
from weft_proxy.policies.clock import ManualClock

ERROR_HEADER = PROXY_ERROR_HEADER.decode()
PEER_HEADER = "x-peer-port"  # the app's: the port of the connection it was asked on

Through = Callable[[int], Awaitable[Path]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(params=PATHS)
async def through(request: pytest.FixtureRequest, proxies: Start) -> Through:
    """Opens the path this test runs on, in front of an app's port."""

    async def make(app_port: int) -> Path:
        return await open_path(request.param, proxies, app_port)

    return make


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def peer_port(http: web.Request) -> str:
    assert http.transport is not None
    return str(http.transport.get_extra_info("peername")[1])


async def echo(http: web.Request) -> web.Response:
    """What the request was, as the app got it: method, path, body size and digest."""
    body = await http.read()
    text = f"{http.method} {http.path} {len(body)} {digest(body)}"
    return web.Response(text=text, headers={PEER_HEADER: peer_port(http)})


def echoed(method: str, target: str, body: bytes = b"") -> bytes:
    """The body `echo` answers a request with."""
    return f"{method} {target} {len(body)} {digest(body)}".encode()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    response = await asyncio.wait_for(read_response(reader), GUARD_S)
    return response.status, response.headers, response.body


def chunked_request(target: str, host: str, parts: list[bytes]) -> bytes:
    head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return head.encode() + chunks + b"0\r\n\r\n"


def responses_counted(running: RunningProxy) -> float:
    """Every response the proxy counted (`response_total`, over all its labels)."""
    return sum(metric_value(line) for line in running.metric_lines("response_total"))


# --- 1. Keep-alive requests of every kind, one upstream connection ---------------------------


async def test_keep_alive_requests_of_every_kind_are_answered_in_order_over_one_upstream(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    """After a warm-up, requests that go in callbacks (body-less, a small body, HEAD)
    and ones the task serves (a large body, a chunked one, one still arriving) follow
    each other on one client connection: each gets its own answer, and every one of
    them reached the app over the same upstream connection (each driver gave it back
    to the pool at the end of its exchange)."""
    head_arrived = asyncio.Event()

    async def handler(http: web.Request) -> web.StreamResponse:
        if http.path == "/split":
            head_arrived.set()  # before its body: the client holds it back until now
        return await echo(http)

    path = await through(await http_backend(handler))
    reader, writer = await path.open()
    small, large = b"s" * 300, bytes(range(256)) * 400  # 100 KiB
    chunks = [b"first chunk ", b"x" * 20_000, b" last"]
    ports = []

    async def check(raw: bytes, expected: bytes) -> None:
        writer.write(raw)
        status, headers, body = await answer(reader)
        assert (status, body) == (200, expected)
        ports.append(headers[PEER_HEADER])

    host = path.host
    await check(request("GET", "/warm", host=host), echoed("GET", "/warm"))
    for round_ in range(2):  # the second round: after each kind, every other kind
        await check(request("GET", f"/get/{round_}", host=host), echoed("GET", f"/get/{round_}"))
        await check(
            request("POST", "/small", host=host, body=small), echoed("POST", "/small", small)
        )
        await check(
            request("POST", "/large", host=host, body=large), echoed("POST", "/large", large)
        )
        await check(
            chunked_request("/chunked", host, chunks), echoed("POST", "/chunked", b"".join(chunks))
        )
        # The body after the head, in a write of its own once the app has the head.
        head_arrived.clear()
        writer.write(request("POST", "/split", host=host, headers=(("Content-Length", "10"),)))
        await asyncio.wait_for(head_arrived.wait(), GUARD_S)
        await check(b"0123456789", echoed("POST", "/split", b"0123456789"))
        writer.write(request("HEAD", "/head", host=host))
        status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
        assert status == 200
        assert headers["content-length"] == str(len(echoed("HEAD", "/head")))  # and no body
        ports.append(headers[PEER_HEADER])
    await check(request("GET", "/last", host=host), echoed("GET", "/last"))
    writer.close()
    assert len(ports) == 14
    assert len(set(ports)) == 1, ports  # one upstream connection, reused for each
    assert responses_counted(path.proxies[0]) == 14  # each counted once, by either driver


# --- 2. Pipelining ----------------------------------------------------------------------------


async def test_pipelined_requests_of_mixed_kinds_are_answered_in_order(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    """Five requests in one write, after a warm-up: body-less and small-bodied ones go
    in callbacks, the large-bodied one by the task, and each answer comes in order."""
    path = await through(await http_backend(echo))
    reader, writer = await path.open()
    host = path.host
    writer.write(request("GET", "/warm", host=host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    small, large = b"tiny body", bytes(range(251)) * 400  # ~100 KiB
    batch = [
        ("GET", "/one", None),
        ("POST", "/two", small),
        ("POST", "/three", large),
        ("GET", "/four", None),
        ("POST", "/five", small),
    ]
    for _ in range(2):  # the second batch: right after the first one's answers
        writer.write(b"".join(request(m, t, host=host, body=b) for m, t, b in batch))
        ports = set()
        for method, target, body in batch:
            status, headers, got = await answer(reader)
            assert (status, got) == (200, echoed(method, target, body or b""))
            ports.add(headers[PEER_HEADER])
        assert len(ports) == 1, ports
    writer.close()


# --- 3. A large response, and a client that stops reading ---------------------------------

BIG = 32 * 1024 * 1024  # more than every kernel buffer on the way holds, on loopback

# The proxy on the meshed path's client side reads its upstream over TLS, whose
# transport may hand a Protocol more than 256 KiB in one `data_received`: that pauses
# the upstream's reading (MAX_UNREAD), and the callback path must resume it once it has
# taken the events (it stalled a few hundred KiB in, most runs, when it did not).


def streaming_app(size: int, written: list[int]) -> Handler:
    """`/big` answers `size` bytes (a known pattern) in 64 KiB writes, each awaited
    (so the app is held back when nobody reads): `written[0]` says how far it got.
    Every other path: `echo`."""
    payload = pattern(size)

    async def handler(http: web.Request) -> web.StreamResponse:
        if http.path != "/big":
            return await echo(http)
        response = web.StreamResponse(headers={"Content-Length": str(size)})
        await response.prepare(http)
        for at in range(0, size, 64 * 1024):
            await response.write(payload[at : at + 64 * 1024])
            written[0] = min(at + 64 * 1024, size)
        await response.write_eof()
        return response

    return handler


def pattern(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


async def slow_reader(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection with a small receive buffer: the proxy's writes to it back
    up soon after the client stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before it connects
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", path.port))
    return await asyncio.open_connection(sock=sock)


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    """`size` bytes, each read bounded (a stall fails, a slow machine does not)."""
    parts, got = [], 0
    while got < size:
        part = await asyncio.wait_for(reader.read(min(size - got, 1 << 20)), GUARD_S)
        assert part, f"the connection ended {size - got} bytes short"
        parts.append(part)
        got += len(part)
    return b"".join(parts)


async def test_a_large_response_streams_whole_through_the_callback_path(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    """A response far larger than any buffer, relayed as it arrives, to a client that
    reads as fast as it can; then the connection carries the next request."""
    size = 4 * 1024 * 1024
    path = await through(await http_backend(streaming_app(size, [0])))
    reader, writer = await slow_reader(path)
    writer.write(request("GET", "/warm", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    writer.write(request("GET", "/big", host=path.host))
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    assert (status, headers["content-length"]) == (200, str(size))
    assert await read_exactly(reader, size) == pattern(size)
    writer.write(request("GET", "/after", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/after"))
    writer.close()


async def test_a_large_response_to_a_client_that_stops_reading_arrives_whole(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    """The client's write buffer fills mid-relay (the request goes on in the task): the
    app is held back meanwhile (the proxy does not read the whole response into its
    memory), every byte then arrives in order, and the connection carries the next
    request."""
    written = [0]
    path = await through(await http_backend(streaming_app(BIG, written)))
    reader, writer = await slow_reader(path)
    writer.write(request("GET", "/warm", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    writer.write(request("GET", "/big", host=path.host))
    # The client reads nothing for a while: the proxy's buffers toward it fill.
    await until(lambda: written[0] >= 2 * 1024 * 1024)
    await asyncio.sleep(0.3)  # not for correctness: time for every buffer to fill
    assert written[0] < BIG, "the proxy read the whole response with nobody reading it"
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    assert (status, headers["content-length"]) == (200, str(BIG))
    assert await read_exactly(reader, BIG) == pattern(BIG)
    writer.write(request("GET", "/after", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/after"))
    writer.close()


# --- 4. A client that goes away while its answer is awaited ----------------------------------


@pytest.mark.parametrize("late", ["head", "body"])
async def test_a_late_answer_to_a_client_gone_never_reaches_the_next_client(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]], late: str
) -> None:
    """A client disconnects while its request, in callbacks, waits for a slow answer
    (its head, or the rest of its body). The next client's request gets its own
    answer while the app still owes the first one (the upstream connection owed a
    response is not reused); once the late answer came (to the proxy only), every
    request still gets its own answer."""
    arrived, release = asyncio.Event(), asyncio.Event()
    rest = b"R" * 50_000

    async def handler(http: web.Request) -> web.StreamResponse:
        if http.path != "/slow":
            return await echo(http)
        if late == "head":
            arrived.set()
            await release.wait()
            return web.Response(text="late answer")
        response = web.StreamResponse(headers={"Content-Length": str(5 + len(rest))})
        await response.prepare(http)
        await response.write(b"early")
        arrived.set()
        await release.wait()
        await response.write(rest)
        await response.write_eof()
        return response

    path = await through(await http_backend(handler))
    reader, writer = await path.open()
    writer.write(request("GET", "/warm", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    writer.write(request("GET", "/slow", host=path.host))
    await asyncio.wait_for(arrived.wait(), GUARD_S)
    if late == "body":
        status, _ = await asyncio.wait_for(read_head(reader), GUARD_S)
        assert status == 200
        assert await asyncio.wait_for(reader.readexactly(5), GUARD_S) == b"early"
    writer.close()
    await writer.wait_closed()

    reader, writer = await path.open()
    writer.write(request("GET", "/next", host=path.host))
    # Answered while the first is still owed its answer: not on the first's connection.
    assert (await answer(reader))[::2] == (200, echoed("GET", "/next"))
    release.set()  # the late answer comes, to the proxy only
    for i in range(3):
        writer.write(request("GET", f"/again/{i}", host=path.host))
        assert (await answer(reader))[::2] == (200, echoed("GET", f"/again/{i}"))
    writer.close()
    for i in range(3):  # new connections too (each may take a pooled upstream one)
        reader, writer = await path.open()
        writer.write(request("GET", f"/new/{i}", host=path.host))
        assert (await answer(reader))[::2] == (200, echoed("GET", f"/new/{i}"))
        writer.close()


# --- 5. A retry of an answer judged in callbacks --------------------------------------------

ROOMY = RetryBudget(retry_ratio=1.0, min_retries_per_second=100, ttl_ms=10_000)


class Endpoints:
    """Two raw endpoints, `good` and `bad`, answering GETs with their name, kept alive;
    once `failing`, `bad` answers 500 (`how="500"`) or hangs up without an answer
    (`how="close"`)."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.failing = False
        self.hits = {"good": 0, "bad": 0}

    def handler(self, name: str) -> StreamHandler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                self.hits[name] += 1
                if name == "bad" and self.failing:
                    if self.how == "close":
                        break
                    writer.write(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad"
                    )
                else:
                    text = name.encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)
                    )
                await writer.drain()
            writer.close()

        return handle


@pytest.mark.parametrize("how", ["500", "close"])
@pytest.mark.parametrize("retryable", [True, False])
async def test_a_failed_answer_in_callbacks_is_retried_on_the_other_endpoint(
    proxies: Start,
    raw_app: Callable[[StreamHandler], Awaitable[int]],
    how: str,
    retryable: bool,
) -> None:
    """Both endpoints' pools warm, then one endpoint fails a request sent on its pooled
    connection: behind a retryable route the client still gets 200, from the other
    endpoint; without one, it gets the failure (the endpoint's 500 as it was, or the
    proxy's 502 for an answer that never came)."""
    endpoints = Endpoints(how)
    ports = [await raw_app(endpoints.handler("good")), await raw_app(endpoints.handler("bad"))]
    route = Route("GET", RequestMatch(method="GET"), is_retryable=retryable)
    service = books(backend("books", 1, ports), routes=(route,))
    # The clock stands still: both endpoints' latency estimates stay the same, so that
    # each request goes to either (by the balancer's draw), not always to the faster.
    cfg = config(dataclasses.replace(service, retry_budget=ROOMY))
    running = await proxies(cfg, clock=ManualClock())
    reader, writer = await asyncio.open_connection("127.0.0.1", running.outbound_port)

    async def get(target: str) -> tuple[int, dict[str, str], bytes]:
        writer.write(request("GET", target))
        return await answer(reader)

    for i in range(200):  # until each endpoint has a pooled connection (used again since)
        status, _, body = await get(f"/warm/{i}")
        assert (status, body) in ((200, b"good"), (200, b"bad"))
        if min(endpoints.hits.values()) >= 3:
            break
    assert min(endpoints.hits.values()) >= 3, endpoints.hits
    endpoints.failing = True
    failed = endpoints.hits["bad"]
    for i in range(200):  # until a request lands on the failing endpoint
        status, headers, body = await get(f"/try/{i}")
        if endpoints.hits["bad"] == failed:
            assert (status, body) == (200, b"good")
            continue
        if retryable:  # retried, on the other endpoint
            assert (status, body) == (200, b"good")
        elif how == "500":  # the endpoint's answer, as it was
            assert (status, body) == (500, b"bad")
            assert ERROR_HEADER not in headers
        else:  # the proxy's: no answer came
            assert status == 502
            assert ERROR_HEADER in headers
        break
    assert endpoints.hits["bad"] == failed + 1, endpoints.hits  # tried once, not again
    endpoints.failing = False
    for i in range(3):  # the connection carries on
        status, _, body = await get(f"/after/{i}")
        assert (status, body) in ((200, b"good"), (200, b"bad"))
    writer.close()


# --- 6. A deadline: served by the task ------------------------------------------------------


@pytest.mark.parametrize("through", ["outbound", "meshed"], indirect=True)
async def test_a_request_with_a_deadline_times_out_and_the_connection_goes_on(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]]
) -> None:
    """After a warm-up (a pooled connection: the next request could go in callbacks),
    a request with `weft-timeout` to a slow app gets the proxy's 504; the connection
    carries the next requests, which get their own answers, never the late one."""

    async def handler(http: web.Request) -> web.StreamResponse:
        if http.path == "/slow":
            await asyncio.sleep(1.0)  # the app is slow
            return web.Response(text="late answer")
        return await echo(http)

    path = await through(await http_backend(handler))
    reader, writer = await path.open()
    writer.write(request("GET", "/warm", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    writer.write(request("GET", "/slow", host=path.host, headers=(("weft-timeout", "100ms"),)))
    status, headers, _ = await answer(reader)
    assert status == 504
    assert "timed out after 100 ms" in headers[ERROR_HEADER]
    for i in range(3):
        writer.write(request("GET", f"/next/{i}", host=path.host))
        assert (await answer(reader))[::2] == (200, echoed("GET", f"/next/{i}"))
    writer.close()


# --- 7. A graceful shutdown --------------------------------------------------------------------


@pytest.mark.parametrize("size", [11, 1024 * 1024])
async def test_a_shutdown_lets_a_request_in_callbacks_finish_then_closes(
    through: Through, http_backend: Callable[[Handler], Awaitable[int]], size: int
) -> None:
    """A request in flight in callbacks when the proxies begin to drain gets its whole
    answer (a small one, or one large enough to fill the client's write buffer), which
    says `Connection: close`, and then its connection closes."""
    arrived, release = asyncio.Event(), asyncio.Event()
    payload = pattern(size)

    async def handler(http: web.Request) -> web.StreamResponse:
        if http.path != "/slow":
            return await echo(http)
        arrived.set()
        await release.wait()
        return web.Response(body=payload)

    path = await through(await http_backend(handler))
    reader, writer = await path.open()
    writer.write(request("GET", "/warm", host=path.host))
    assert (await answer(reader))[::2] == (200, echoed("GET", "/warm"))
    writer.write(request("GET", "/slow", host=path.host))
    await asyncio.wait_for(arrived.wait(), GUARD_S)
    for running in path.proxies:
        running.proxy.shutdown()
    release.set()
    status, headers = await asyncio.wait_for(read_head(reader), GUARD_S)
    assert (status, headers["content-length"]) == (200, str(size))
    assert headers.get("connection") == "close"  # the head says so (RFC 9112 9.6)
    assert await read_exactly(reader, size) == payload
    assert await asyncio.wait_for(read_to_end(reader), GUARD_S) == b""  # closed after it
    writer.close()
    for running in path.proxies:
        assert await running.proxy.drained(GUARD_S)
