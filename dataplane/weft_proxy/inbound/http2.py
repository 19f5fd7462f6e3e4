"""Inbound HTTP/2 and gRPC: each request stream authorized against the port's server
policy, then forwarded to the application on the pod's loopback: over HTTP/2 (h2c, prior
knowledge), or over HTTP/1 when an outbound proxy upgraded it from HTTP/1 for the hop
between the two proxies (`weft-orig-proto`)."""

from __future__ import annotations

from weft_proxy.inbound.forward import APP_HOST, Inbound
from weft_proxy.io.http1_exchange import Exchange
from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.io.http2_forward import Upstream, exchange, request_body
from weft_proxy.io.http2_server import answer_error
from weft_proxy.io.http2_session import Stream, StreamReset
from weft_proxy.policies.authorize import Client
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.protocols.h1_h2 import h2_response, http1_request, is_downgradable
from weft_proxy.protocols.http1 import Framing, forwarded_trailers
from weft_proxy.protocols.http2 import ErrorCode, header_value


class Http1Response:
    """The application's HTTP/1 response to a downgraded request, for an HTTP/2 client."""

    __slots__ = ("exchange",)
    grpc_status = None

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    @property
    def status(self) -> int:
        return self.exchange.status

    async def relay(self, downstream: Stream) -> bool:
        """Relay the response; True if complete (a broken one resets the stream)."""
        exchange = self.exchange
        try:
            downstream.send_headers(h2_response(exchange.head))
            async for data in exchange.body():
                await downstream.send_data(data)
            trailers = forwarded_trailers(exchange.trailers) if exchange.trailers else None
            if trailers:
                downstream.send_trailers(trailers)
            else:
                downstream.end()
        except (ConnectionError, OSError, StreamReset):
            if downstream.failed:  # the client went away
                raise
            downstream.reset(ErrorCode.INTERNAL_ERROR)
            return False
        await exchange.finish(True)
        return True

    def discard(self) -> None:
        self.exchange.discard()


class InboundHttp2:
    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound
        self._pools: dict[int, Http2Pool] = {}

    async def handle(self, stream: Stream, *, client: Client, port: int) -> None:
        inbound = self.inbound
        request = MatchableRequest.from_http2(stream.headers)
        authority = (header_value(stream.headers, b":authority") or b"").decode("latin-1")
        target = inbound.admit_http(port, client, request, authority)
        if target is None:
            await answer_error(stream, 403, f"unauthorized request on port {port}")
            return
        inbound.metrics.request(target)
        started = inbound.clock()
        answer: Upstream | Http1Response
        try:
            if is_downgradable(stream.headers):
                answer = await self._over_http1(stream, port)
            else:
                answer = await exchange(
                    self._pool(port), stream.headers, await request_body(stream), stream
                )
        except (StreamReset, ConnectionError, OSError, TimeoutError):
            await answer_error(stream, 502, f"the application refused port {port}")
            return
        latency_ms = (inbound.clock() - started) * 1000
        if inbound.tap.watched:
            method = (header_value(stream.headers, b":method") or b"").decode("latin-1")
            path = (header_value(stream.headers, b":path") or b"").decode("latin-1")
            path = path.split("?", 1)[0]
            inbound.publish_tap(method, path, answer.status, latency_ms, client, port, authority)
        complete = False
        try:
            complete = await answer.relay(stream)
        finally:
            answer.discard()
            grpc = answer.grpc_status
            classification = (
                classify_response((), answer.status, grpc) if complete else Classification.FAILURE
            )
            inbound.metrics.response(target, answer.status, classification.value, latency_ms, grpc)

    async def _over_http1(self, stream: Stream, port: int) -> Http1Response:
        request = http1_request(stream.headers)
        body = await request_body(stream)
        # HTTP/2 frames the body itself: HTTP/1 needs a length, or chunks (for one still
        # arriving, or one with trailers).
        headers = [(k, v) for k, v in request.headers if k != b"content-length"]
        if not isinstance(body, bytes) or stream.trailers:
            request.framing, request.headers = Framing.CHUNKED, headers
        elif body or request.method not in ("GET", "HEAD"):
            request.framing, request.length = Framing.LENGTH, len(body)
            request.headers = [*headers, (b"content-length", b"%d" % len(body))]
        pool = self.inbound.http1_pool(port)
        return Http1Response(await Exchange.start(pool, request, body, stream))

    def _pool(self, port: int) -> Http2Pool:
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = Http2Pool(APP_HOST, port)
        return pool
