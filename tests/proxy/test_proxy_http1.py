"""The proxy with real sockets on loopback: aiohttp backends and clients (independent
HTTP/1 implementations) on either side of Weft's outbound and inbound listeners."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import generate_latest
from proxy_configs import AUTHORITY, allow_all, backend, books, config

from weft_api.config import (
    DefaultPolicy,
    InboundServer,
    Protocol,
    ProxyConfig,
    RequestMatch,
    RetryBudget,
    Route,
    ServerKind,
)
from weft_proxy.io import http1_server
from weft_proxy.metrics import OVERFLOW
from weft_proxy.policies.clock import ManualClock
from weft_proxy.policies.retry import MAX_RETRYABLE_BODY_BYTES
from weft_proxy.proxy import Proxy
from weft_proxy.tap.hub import TapFilter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Backends:
    """aiohttp servers on loopback, counting the requests each one served."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.hits: collections.Counter[str] = collections.Counter()

    async def start(self, name: str, handler: Handler | None = None) -> int:
        async def default(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            return web.Response(text=f"{name} {request.method} {request.path_qs} {len(body)}")

        chosen = handler or default

        async def counted(request: web.Request) -> web.StreamResponse:
            self.hits[name] += 1
            return await chosen(request)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", counted)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return port


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    found = Backends()
    yield found
    for runner in found.runners:
        await runner.cleanup()


class Running:
    def __init__(self, proxy: Proxy, servers: list[asyncio.Server]) -> None:
        self.proxy = proxy
        self.servers = servers

    def port(self, which: int) -> int:
        port: int = self.servers[which].sockets[0].getsockname()[1]
        return port

    @property
    def outbound(self) -> str:
        return f"http://127.0.0.1:{self.port(1)}"

    @property
    def inbound(self) -> str:
        return f"http://127.0.0.1:{self.port(0)}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.port(2)}"


@pytest.fixture
async def start_proxy() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    servers: list[asyncio.Server] = []

    async def start(cfg: ProxyConfig | None, **kwargs: Any) -> Running:
        proxy = Proxy("shop", **kwargs)
        if cfg is not None:
            proxy.apply(cfg)
        listening = await proxy.listen("127.0.0.1", 0, 0, 0)
        servers.extend(listening)
        return Running(proxy, listening)

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Host": AUTHORITY}) as session:
        yield session


async def test_requests_reach_the_service_endpoints_by_authority(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    ports = [await backends.start("books-a"), await backends.start("books-b")]
    proxy = await start_proxy(config(books(backend("books", 1, ports))))
    for i in range(40):
        async with http.get(f"{proxy.outbound}/books/{i}?page=2") as response:
            assert response.status == 200
            text = await response.text()
            assert text.endswith(f" GET /books/{i}?page=2 0")
    assert set(backends.hits) == {"books-a", "books-b"}  # balanced over both


async def test_a_split_sends_traffic_by_weight(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    stable, canary = await backends.start("stable"), await backends.start("canary")
    service = books(backend("stable", 800, [stable]), backend("canary", 200, [canary]))
    proxy = await start_proxy(config(service))
    for _ in range(500):
        async with http.get(f"{proxy.outbound}/") as response:
            assert response.status == 200
    share = backends.hits["canary"] / 500
    assert 0.13 < share < 0.27, backends.hits


async def test_no_endpoints_is_a_503_that_says_it_came_from_the_proxy(
    start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy(config(books(backend("books", 1, []))))
    async with http.get(f"{proxy.outbound}/") as response:
        assert response.status == 503
        assert "no endpoints" in response.headers["weft-proxy-error"]


async def test_the_proxys_own_error_answers_count_against_the_backend(
    start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    """A canary whose only endpoint cannot be reached must look failing, not idle."""
    dead = await backends_port_closed()
    proxy = await start_proxy(config(books(backend("books-v2", 1, [dead]))))
    for _ in range(3):
        async with http.get(f"{proxy.outbound}/") as response:
            assert response.status in (502, 503)
    text = generate_latest(proxy.proxy.metrics.registry).decode()
    failed = [
        line
        for line in text.splitlines()
        if line.startswith("response_total{")
        and 'dst_service="books-v2"' in line
        and 'classification="failure"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in failed) == 3


async def backends_port_closed() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_an_unknown_authority_is_a_502_and_the_proxy_stays_up(
    start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy(config())
    headers = {"Host": "nowhere.example"}
    async with http.get(f"{proxy.outbound}/", headers=headers) as response:
        assert response.status == 502
        assert "nowhere.example" in response.headers["weft-proxy-error"]
    async with http.get(f"{proxy.admin}/live") as response:
        assert response.status == 200


def flaky(failures: int) -> Handler:
    left = [failures]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        if left[0] > 0:
            left[0] -= 1
            return web.Response(status=500, text="boom")
        return web.Response(text="ok")

    return handler


@pytest.mark.parametrize(("retryable", "status", "hits"), [(True, 200, 2), (False, 500, 1)])
async def test_retryable_routes_are_retried_within_budget(
    backends: Backends,
    start_proxy: Any,
    http: aiohttp.ClientSession,
    retryable: bool,
    status: int,
    hits: int,
) -> None:
    port = await backends.start("books", flaky(1))
    route = Route("POST /books", RequestMatch(method="POST"), is_retryable=retryable)
    proxy = await start_proxy(config(books(backend("books", 1, [port]), routes=(route,))))
    async with http.post(f"{proxy.outbound}/books", data=b"x" * 1000) as response:
        assert response.status == status
    assert backends.hits["books"] == hits


async def test_a_body_too_big_to_keep_is_not_retried(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    port = await backends.start("books", flaky(1))
    route = Route("POST /books", RequestMatch(method="POST"), is_retryable=True)
    proxy = await start_proxy(config(books(backend("books", 1, [port]), routes=(route,))))
    body = b"x" * (MAX_RETRYABLE_BODY_BYTES + 1)
    async with http.post(f"{proxy.outbound}/books", data=body) as response:
        assert response.status == 500  # the failure as the endpoint gave it
    assert backends.hits["books"] == 1


def first_time_fails() -> Handler:
    """Fails the first request for each path and answers the next: a retry succeeds."""
    seen: set[str] = set()

    async def handler(request: web.Request) -> web.Response:
        first = request.path not in seen
        seen.add(request.path)
        return web.Response(status=500 if first else 200, text="")

    return handler


async def test_the_retry_budget_caps_retries_under_failure(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    """Every first attempt fails. Retries may add 50% to 100 requests plus a reserve of
    10 (1/s over a 10 s window): 60 requests are saved by a retry and 40 fail. (Every
    other request is retried, so the endpoint is never failing long enough to eject.)"""
    port = await backends.start("books", first_time_fails())
    route = Route("GET", RequestMatch(method="GET"), is_retryable=True)
    service = books(backend("books", 1, [port]), routes=(route,))
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=1, ttl_ms=10_000)
    proxy = await start_proxy(config(dataclasses.replace(service, retry_budget=budget)))
    statuses: collections.Counter[int] = collections.Counter()
    for number in range(100):
        async with http.get(f"{proxy.outbound}/books/{number}") as response:
            statuses[response.status] += 1
    assert 58 <= statuses[200] <= 60, statuses
    assert statuses[200] + statuses[500] == 100, statuses
    assert backends.hits["books"] == 100 + statuses[200]  # one retry per saved request


def sample_total(proxy: Proxy, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        sample.value
        for family in proxy.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_route_metrics_show_what_the_client_got_and_every_attempt(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    """A retried failure: the client got a 200, but the endpoint failed once, and the
    endpoint and "actual" families say so (a canary failing a share of requests shows
    even when retries hide it from clients)."""
    port = await backends.start("books", flaky(1))
    route = Route("POST /books", RequestMatch(method="POST"), is_retryable=True)
    running = await start_proxy(config(books(backend("books", 1, [port]), routes=(route,))))
    async with http.post(f"{running.outbound}/books", data=b"x") as response:
        assert response.status == 200
    proxy, rt = running.proxy, {"rt_route": "POST /books", "dst": f"{AUTHORITY}:80"}
    assert sample_total(proxy, "route_request_total", **rt) == 1
    assert sample_total(proxy, "route_response_total", **rt, classification="success") == 1
    assert sample_total(proxy, "route_response_total", **rt, classification="failure") == 0
    assert sample_total(proxy, "route_response_latency_ms_count", **rt) == 1
    assert sample_total(proxy, "route_actual_request_total", **rt) == 2
    actual = "route_actual_response_total"
    assert sample_total(proxy, actual, **rt, status_code="500", classification="failure") == 1
    assert sample_total(proxy, actual, **rt, status_code="200", classification="success") == 1
    endpoint = {"direction": "outbound", "dst_service": "books"}
    assert sample_total(proxy, "request_total", **endpoint) == 2
    assert sample_total(proxy, "response_total", **endpoint, classification="failure") == 1
    assert sample_total(proxy, "response_total", **endpoint, classification="success") == 1
    # A request no route matched counts under rt_route="" (`weft routes`' [DEFAULT]).
    async with http.get(f"{running.outbound}/authors") as response:
        assert response.status == 200
    unmatched = {"rt_route": "", "dst": f"{AUTHORITY}:80"}
    assert sample_total(proxy, "route_response_total", **unmatched, status_code="200") == 1


async def test_a_service_without_routes_has_no_route_metrics(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    port = await backends.start("books")
    running = await start_proxy(config(books(backend("books", 1, [port]))))
    async with http.get(f"{running.outbound}/books") as response:
        assert response.status == 200
    assert sample_total(running.proxy, "response_total", direction="outbound") == 1
    assert sample_total(running.proxy, "route_request_total") == 0


async def test_a_route_timeout_answers_504(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    port = await backends.start("books", slow)
    route = Route("GET", RequestMatch(method="GET"), timeout_ms=200)
    proxy = await start_proxy(config(books(backend("books", 1, [port]), routes=(route,))))
    started = asyncio.get_running_loop().time()
    async with http.get(f"{proxy.outbound}/") as response:
        assert response.status == 504
        assert "timed out after 200 ms" in response.headers["weft-proxy-error"]
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_dead_endpoint_is_ejected_and_traffic_moves_on(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    alive = await backends.start("alive")
    dead = await backends.start("dead")
    await backends.runners.pop().cleanup()  # nothing listens there any more
    # The clock stands still: the ejected endpoint's probe (after its backoff) never
    # comes, however slowly a loaded machine runs the 40 requests.
    proxy = await start_proxy(
        config(books(backend("books", 1, [alive, dead]))), clock=ManualClock()
    )
    statuses = []
    for _ in range(40):
        async with http.get(f"{proxy.outbound}/") as response:
            statuses.append(response.status)
    assert set(statuses[:20]) <= {200, 502}
    assert statuses[-15:] == [200] * 15  # after 7 failures the dead one is ejected


async def test_large_bodies_stream_both_ways(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for data in request.content.iter_chunked(65536):
            await response.write(data)
        await response.write_eof()
        return response

    port = await backends.start("echo", echo)
    proxy = await start_proxy(config(books(backend("echo", 1, [port]))))
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    async with http.post(f"{proxy.outbound}/upload", data=chunks()) as response:
        assert response.status == 200
        assert await response.read() == payload


async def test_websockets_pass_through(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(f"echo {message.data}")
        return ws

    port = await backends.start("chat", ws_echo)
    proxy = await start_proxy(config(books(backend("chat", 1, [port]))))
    async with http.ws_connect(f"{proxy.outbound}/chat") as ws:
        for word in ("hello", "mesh"):
            await ws.send_str(word)
            assert (await ws.receive()).data == f"echo {word}"


async def test_malformed_requests_get_400_and_the_proxy_stays_healthy(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    port = await backends.start("books")
    proxy = await start_proxy(config(books(backend("books", 1, [port]))))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port(1))
    writer.write(b"GET / HTTP/1.1\r\nHost: " + AUTHORITY.encode() + b"\r\nBad Header\r\n\r\n")
    answer = await reader.read()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"weft-proxy-error" in answer
    writer.close()
    async with http.get(f"{proxy.outbound}/") as response:
        assert response.status == 200


async def test_a_slow_loris_gets_408_and_an_idle_connection_is_closed(
    backends: Backends,
    start_proxy: Any,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http1_server, "IDLE_TIMEOUT_S", 0.3)
    port = await backends.start("books")
    proxy = await start_proxy(config(books(backend("books", 1, [port]))))
    # A head trickling in, a byte at a time, never completes within the timeout.
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port(1))
    for byte in b"GET / HTTP/1.1\r\nHost: books":
        writer.write(bytes([byte]))
        await asyncio.sleep(0.02)
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"weft-proxy-error" in answer
    writer.close()
    # A keep-alive connection left idle after a response is closed without a word.
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port(1))
    writer.write(b"GET / HTTP/1.1\r\nHost: " + AUTHORITY.encode() + b"\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert first.startswith(b"HTTP/1.1 200 ")
    rest = await asyncio.wait_for(reader.read(), timeout=5)  # to the close
    assert b"HTTP/1.1" not in rest
    writer.close()
    async with http.get(f"{proxy.outbound}/") as response:
        assert response.status == 200


async def test_a_graceful_shutdown_finishes_requests_in_flight_and_closes_idle_ones(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        if request.path == "/slow":
            arrived.set()
            await release.wait()
        return web.Response(text=f"done {request.path}")

    port = await backends.start("books", slow)
    running = await start_proxy(config(books(backend("books", 1, [port]))))
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", running.port(1))
    idle_writer.write(b"GET /quick HTTP/1.1\r\nHost: " + AUTHORITY.encode() + b"\r\n\r\n")
    await asyncio.wait_for(idle_reader.readuntil(b"done /quick"), timeout=5)

    async def in_flight() -> tuple[int, str]:
        async with http.get(f"{running.outbound}/slow") as response:
            return response.status, await response.text()

    request = asyncio.create_task(in_flight())
    await asyncio.wait_for(arrived.wait(), timeout=5)
    running.proxy.shutdown()
    # The idle keep-alive connection is closed at once, not at the end of the drain.
    assert await asyncio.wait_for(idle_reader.read(), timeout=2) == b""
    idle_writer.close()
    assert not await running.proxy.drained(0.2)  # the slow request is still being served
    release.set()
    assert await running.proxy.drained(5)
    assert await request == (200, "done /slow")


async def test_metrics_count_requests_with_linkerd_labels(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    port = await backends.start("books", flaky(1))
    proxy = await start_proxy(config(books(backend("books", 1, [port]))))
    for _ in range(3):
        async with http.get(f"{proxy.outbound}/") as response:
            await response.read()
    async with http.get(f"{proxy.admin}/metrics") as response:
        text = await response.text()
    lines = [line for line in text.splitlines() if line.startswith("response_total{")]
    failure = next(line for line in lines if 'classification="failure"' in line)
    success = next(line for line in lines if 'classification="success"' in line)
    assert 'direction="outbound"' in failure
    assert f'authority="{AUTHORITY}"' in failure
    assert 'dst_service="books"' in failure
    assert 'status_code="500"' in failure
    assert failure.endswith(" 1.0")
    assert success.endswith(" 2.0")
    assert "response_latency_ms_bucket{" in text


async def test_random_host_headers_cannot_grow_the_metrics_without_bound(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    """`authority` is whatever clients put in Host: past 100 distinct values, the rest
    are counted as "[overflow]", so the proxy's series (and memory) stay bounded."""
    app = await backends.start("app")
    running = await start_proxy(config(inbound=(allow_all(app),)), inbound_fallback_port=app)
    for number in range(150):
        headers = {"Host": f"random-{number}.example"}
        async with http.get(f"{running.inbound}/", headers=headers) as response:
            assert response.status == 200  # every request is still served
    inbound = [
        sample.labels["authority"]
        for family in running.proxy.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "request_total" and sample.labels["direction"] == "inbound"
    ]
    assert len(set(inbound)) == 101
    assert sample_total(running.proxy, "request_total", authority=OVERFLOW) == 50


async def test_inbound_enforces_the_server_policy(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    app = await backends.start("app")
    deny = InboundServer(
        name="admin",
        kind=ServerKind.SERVER,
        port=app,
        protocol=Protocol.HTTP1,
        authorizations=(),
        default_policy=DefaultPolicy.DENY,
    )
    proxy = await start_proxy(config(inbound=(deny,)), inbound_fallback_port=app)
    async with http.get(f"{proxy.inbound}/") as response:
        assert response.status == 403
        assert "unauthorized" in response.headers["weft-proxy-error"]
    assert backends.hits["app"] == 0
    proxy.proxy.apply(config(inbound=(allow_all(app),)))
    async with http.get(f"{proxy.inbound}/hello") as response:
        assert response.status == 200
        assert await response.text() == "app GET /hello 0"


async def test_ready_only_after_the_first_config(
    start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy(None)
    async with http.get(f"{proxy.admin}/ready") as response:
        assert response.status == 503
    proxy.proxy.apply(config())
    async with http.get(f"{proxy.admin}/ready") as response:
        assert response.status == 200


async def test_the_matched_route_labels_metrics_and_inbound_requests_reach_tap(
    backends: Backends, start_proxy: Any, http: aiohttp.ClientSession
) -> None:
    port = await backends.start("books")
    route = Route("GET /books/{id}", RequestMatch(path_regex="^(?:/books/[^/]+)$"))
    proxy = await start_proxy(
        config(books(backend("books", 1, [port]), routes=(route,)), inbound=(allow_all(port),)),
        inbound_fallback_port=port,
    )
    async with http.get(f"{proxy.outbound}/books/7") as response:
        assert response.status == 200
    async with http.get(f"{proxy.admin}/metrics") as response:
        text = await response.text()
    assert 'rt_route="GET /books/{id}"' in text
    watcher = proxy.proxy.tap.watch(TapFilter(direction="inbound"))
    async with http.get(f"{proxy.inbound}/books/8?x=1") as response:
        assert response.status == 200
    event, dropped = await asyncio.wait_for(watcher.next(), timeout=5)
    assert (event.method, event.path, event.status, dropped) == ("GET", "/books/8", 200, 0)
    assert event.destination == f"127.0.0.1:{port}"
