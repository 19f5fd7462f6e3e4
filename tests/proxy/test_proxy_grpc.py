"""gRPC through the proxy with real peers on loopback: grpcio's asyncio server and client
(grpc.aio, an independent HTTP/2 implementation), services built from generic handlers
with bytes in and out, so no code generation is needed."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from h2_peers import H2Client, request_head
from proxy_configs import AUTHORITY, backend, books, config
from running import RunningProxy, metric_value

from weft_api.config import DefaultPolicy, InboundServer, Protocol, RequestMatch, Route, ServerKind

SERVICE = "test.Books"
StartProxy = Callable[..., Awaitable[RunningProxy]]


class GrpcBackends:
    """gRPC servers answering by the request's bytes, counting calls per server."""

    def __init__(self) -> None:
        self.servers: list[grpc.aio.Server] = []
        self.hits: collections.Counter[str] = collections.Counter()
        self.failures_left = 0  # "flaky" requests fail with UNAVAILABLE while this lasts

    async def start(self, name: str) -> int:
        async def get(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.hits[name] += 1
            if request == b"missing":
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such book")
            if request == b"slow":
                await asyncio.sleep(3)
            if request == b"nap":
                await asyncio.sleep(0.3)
            if request == b"flaky" and self.failures_left > 0:
                self.failures_left -= 1
                await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
            return name.encode() + b": " + request

        async def listing(
            request: bytes, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            for i in range(int(request)):
                yield b"book %d" % i
                if i >= 10:  # a long listing: the client cancels it, in one test
                    await asyncio.sleep(0.01)

        async def chat(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            async for message in requests:
                yield b"re: " + message

        handlers = {
            "Get": grpc.unary_unary_rpc_method_handler(get),
            "List": grpc.unary_stream_rpc_method_handler(listing),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        }
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
        port: int = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.servers.append(server)
        return port


@pytest.fixture
async def backends() -> AsyncIterator[GrpcBackends]:
    found = GrpcBackends()
    yield found
    for server in found.servers:
        await server.stop(0)


def channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.default_authority", AUTHORITY)]
    )


async def get(port: int, request: bytes) -> bytes:
    async with channel(port) as ch:
        reply: bytes = await ch.unary_unary(f"/{SERVICE}/Get")(request, timeout=5)
        return reply


async def failed_get(port: int, request: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await get(port, request)
    return raised.value


def trailer(error: grpc.aio.AioRpcError, name: str) -> str | None:
    return dict(error.trailing_metadata() or ()).get(name)  # type: ignore[arg-type]


async def test_unary_server_streaming_and_bidi_calls(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    async with channel(proxy.outbound_port) as ch:
        assert await ch.unary_unary(f"/{SERVICE}/Get")(b"dune", timeout=5) == b"books: dune"
        listed = [m async for m in ch.unary_stream(f"/{SERVICE}/List")(b"3", timeout=5)]
        assert listed == [b"book 0", b"book 1", b"book 2"]
        call = ch.stream_stream(f"/{SERVICE}/Chat")(timeout=5)
        for word in (b"hello", b"mesh"):  # each reply read before the next message is sent
            await call.write(word)
            assert await call.read() == b"re: " + word
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK


async def test_a_grpc_error_status_counts_as_a_failure(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    assert await get(proxy.outbound_port, b"dune") == b"books: dune"
    error = await failed_get(proxy.outbound_port, b"missing")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such book"
    lines = proxy.metric_lines("response_total")
    failure = next(line for line in lines if 'classification="failure"' in line)
    assert 'grpc_status_code="5"' in failure
    assert 'status_code="200"' in failure
    assert metric_value(failure) == 1
    success = next(line for line in lines if 'classification="success"' in line)
    assert 'grpc_status_code="0"' in success


async def test_no_endpoints_is_unavailable_from_the_proxy(proxies: StartProxy) -> None:
    proxy = await proxies(config(books(backend("books", 1, []))))
    error = await failed_get(proxy.outbound_port, b"dune")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "no endpoints" in error.details()
    assert "no endpoints" in (trailer(error, "weft-proxy-error") or "")


async def test_a_route_timeout_is_deadline_exceeded_from_the_proxy(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    route = Route("Get", RequestMatch(path_regex=f"^/{SERVICE}/Get$"), timeout_ms=200)
    proxy = await proxies(config(books(backend("books", 1, [port]), routes=(route,))))
    started = asyncio.get_running_loop().time()
    error = await failed_get(proxy.outbound_port, b"slow")  # the client would wait 5 s
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "timed out after 200 ms" in (trailer(error, "weft-proxy-error") or "")
    assert asyncio.get_running_loop().time() - started < 2


async def test_grpc_timeout_is_honoured_by_the_proxy(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    # A raw HTTP/2 client sends grpc-timeout without keeping a deadline of its own, so
    # the answer can only be the proxy's.
    port = await backends.start("books")
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    client = await H2Client.connect(proxy.outbound_port)
    grpc_head = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    head = request_head(
        AUTHORITY, f"/{SERVICE}/Get", "POST", [*grpc_head, (b"grpc-timeout", b"200m")]
    )
    message = b"\x00\x00\x00\x00\x04slow"  # gRPC framing: uncompressed, length 4
    reply = await asyncio.wait_for(client.request(head, message), 2)
    await client.close()
    assert reply.header(b"grpc-status") == b"4"  # DEADLINE_EXCEEDED, trailers-only
    assert reply.header(b"weft-proxy-error") == b"request timed out after 200 ms"
    assert reply.trailers is None


async def test_calls_the_client_cancels_do_not_eject_the_endpoint(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    async with channel(proxy.outbound_port) as ch:
        for _ in range(10):  # more than the consecutive failures that eject
            call = ch.unary_stream(f"/{SERVICE}/List")(b"1000", timeout=5)
            assert await call.read() == b"book 0"
            call.cancel()
        assert await ch.unary_unary(f"/{SERVICE}/Get")(b"dune", timeout=5) == b"books: dune"


async def test_a_split_sends_calls_by_weight(backends: GrpcBackends, proxies: StartProxy) -> None:
    stable, canary = await backends.start("stable"), await backends.start("canary")
    service = books(backend("stable", 800, [stable]), backend("canary", 200, [canary]))
    proxy = await proxies(config(service))
    async with channel(proxy.outbound_port) as ch:
        get_call = ch.unary_unary(f"/{SERVICE}/Get")
        for _ in range(400):
            await get_call(b"x", timeout=5)
    share = backends.hits["canary"] / 400
    assert 0.12 < share < 0.28, backends.hits


async def test_retryable_routes_retry_failed_calls(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    backends.failures_left = 1
    route = Route("Get", RequestMatch(path_regex=f"^/{SERVICE}/Get$"), is_retryable=True)
    proxy = await proxies(config(books(backend("books", 1, [port]), routes=(route,))))
    assert await get(proxy.outbound_port, b"flaky") == b"books: flaky"
    assert backends.hits["books"] == 2


async def test_calls_in_flight_finish_across_a_graceful_shutdown(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    port = await backends.start("books")
    proxy = await proxies(config(books(backend("books", 1, [port]))))
    async with channel(proxy.outbound_port) as ch:
        get_call = ch.unary_unary(f"/{SERVICE}/Get")
        in_flight = asyncio.ensure_future(get_call(b"nap", timeout=5))
        for _ in range(1000):  # until the call reached the backend (where it naps)
            if backends.hits["books"] or in_flight.done():
                break
            await asyncio.sleep(0.01)
        proxy.proxy.shutdown()  # GOAWAY: no new streams on this connection
        assert await in_flight == b"books: nap"
        assert not proxy.proxy.h2_sessions  # closed once its last stream ended
        assert await get_call(b"again", timeout=5) == b"books: again"  # a new connection


async def test_inbound_denies_calls_with_permission_denied(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    app = await backends.start("app")
    deny = InboundServer(
        name="grpc",
        kind=ServerKind.SERVER,
        port=app,
        protocol=Protocol.GRPC,
        authorizations=(),
        default_policy=DefaultPolicy.DENY,
    )
    proxy = await proxies(config(inbound=(deny,)), inbound_fallback_port=app)
    error = await failed_get(proxy.inbound_port, b"dune")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "unauthorized" in (trailer(error, "weft-proxy-error") or "")
    assert backends.hits["app"] == 0


async def test_inbound_forwards_allowed_calls_to_the_application(
    backends: GrpcBackends, proxies: StartProxy
) -> None:
    app = await backends.start("app")
    proxy = await proxies(config(), inbound_fallback_port=app)
    assert await get(proxy.inbound_port, b"dune") == b"app: dune"
    async with channel(proxy.inbound_port) as ch:
        listed = [m async for m in ch.unary_stream(f"/{SERVICE}/List")(b"2", timeout=5)]
    assert listed == [b"book 0", b"book 1"]
    allowed = proxy.metric_lines("inbound_http_authz_allow_total")
    assert [metric_value(line) for line in allowed] == [2]
