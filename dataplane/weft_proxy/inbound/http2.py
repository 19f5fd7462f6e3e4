"""Inbound HTTP/2 and gRPC: each request stream authorized by the admission, then
forwarded to the application on the pod's loopback over HTTP/2 (h2c, prior knowledge)."""

from __future__ import annotations

import functools

from weft_proxy.inbound.admission import APP_HOST, Admission
from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.io.http2_forward import exchange, request_body
from weft_proxy.io.http2_server import answer_error
from weft_proxy.io.http2_session import Stream, StreamReset
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.policies.authorize import Client
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.protocols.http2 import header_value


class InboundHttp2:
    def __init__(self, admission: Admission, metrics: ProxyMetrics, clock: Clock) -> None:
        self.admission = admission
        self.metrics = metrics
        self.clock = clock
        self._pools: dict[int, Http2Pool] = {}

    async def handle(self, stream: Stream, *, client: Client, port: int) -> None:
        admission = self.admission
        request = functools.partial(MatchableRequest.from_http2, stream.headers)
        authority = (header_value(stream.headers, b":authority") or b"").decode("latin-1")
        target = admission.admit_http(port, client, request, authority)
        if target is None:
            await answer_error(stream, 403, f"unauthorized request on port {port}")
            return
        self.metrics.request(target)
        started = self.clock()
        try:
            answer = await exchange(
                self._pool(port), stream.headers, await request_body(stream), stream
            )
        except (StreamReset, ConnectionError, OSError, TimeoutError):
            await answer_error(stream, 502, f"the application refused port {port}")
            return
        latency_ms = (self.clock() - started) * 1000
        if admission.tap.watched:
            method = (header_value(stream.headers, b":method") or b"").decode("latin-1")
            path = (header_value(stream.headers, b":path") or b"").decode("latin-1")
            path = path.split("?", 1)[0]
            admission.publish_tap(method, path, answer.status, latency_ms, client, port, authority)
        complete = False
        try:
            complete = await answer.relay(stream)
        finally:
            answer.discard()
            grpc = answer.grpc_status
            classification = (
                classify_response((), answer.status, grpc) if complete else Classification.FAILURE
            )
            self.metrics.response(target, answer.status, classification.value, latency_ms, grpc)

    def _pool(self, port: int) -> Http2Pool:
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = Http2Pool(APP_HOST, port)
        return pool
