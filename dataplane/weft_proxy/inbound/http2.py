"""Inbound HTTP/2 and gRPC: each request stream authorized against the port's server
policy, then forwarded to the application on the pod's loopback: over HTTP/2 (h2c, prior
knowledge), or over HTTP/1 when an outbound proxy upgraded it from HTTP/1 for the hop
between the two proxies (`weft-orig-proto`)."""

from __future__ import annotations

from weft_proxy.inbound.forward import APP_HOST, Inbound
from weft_proxy.io.http1_client import Http1Pool, UpstreamConnection
from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.io.http2_forward import Upstream, exchange, request_body
from weft_proxy.io.http2_server import answer_error
from weft_proxy.io.http2_session import Stream, StreamReset
from weft_proxy.policies.authorize import Client
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.protocols.h1_h2 import h2_response, http1_request, is_downgradable
from weft_proxy.protocols.http1 import RequestHead, ResponseHead
from weft_proxy.protocols.http2 import ErrorCode, header_value


class Http1Response:
    """The application's HTTP/1 response to a downgraded request, for an HTTP/2 client."""

    __slots__ = ("connection", "head", "method", "pool", "released")
    grpc_status = None

    def __init__(
        self,
        pool: Http1Pool,
        connection: UpstreamConnection,
        request: RequestHead,
        head: ResponseHead,
    ) -> None:
        self.pool = pool
        self.connection = connection
        self.method = request.method
        self.head = head
        self.released = False

    @property
    def status(self) -> int:
        return self.head.status

    async def relay(self, downstream: Stream) -> bool:
        """Relay the response; True if complete (a broken one resets the stream)."""
        try:
            downstream.send_headers(h2_response(self.head))
            async for data in self.connection.body(self.head, self.method):
                await downstream.send_data(data)
            downstream.end()
        except (ConnectionError, OSError, StreamReset):
            if downstream.failed:  # the client went away
                raise
            downstream.reset(ErrorCode.INTERNAL_ERROR)
            return False
        self.released = True
        self.pool.release(self.connection, self.connection.reusable_after(self.head))
        return True

    def discard(self) -> None:
        if not self.released:
            self.released = True
            self.connection.close()


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
        pool = self.inbound.http1_pool(port)
        request = http1_request(stream.headers)
        connection = await pool.acquire()
        try:
            await connection.send_request(request, await request_body(stream))
            return Http1Response(pool, connection, request, await connection.response_head())
        except BaseException:
            connection.close()
            raise

    def _pool(self, port: int) -> Http2Pool:
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = Http2Pool(APP_HOST, port)
        return pool
