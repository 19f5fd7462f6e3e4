"""Outbound HTTP/2 and gRPC: the HTTP/1 request path, per stream. Each request stream is
routed by its :authority, split, balanced, retried within budget, timed out (grpc-timeout
honoured), classified by its gRPC status when it has one, and counted."""

from __future__ import annotations

import functools

from weft_api.config import OutboundService
from weft_proxy.errors import ProxyError
from weft_proxy.io.http2_forward import Upstream, exchange, request_body
from weft_proxy.io.http2_server import answer_error
from weft_proxy.io.http2_session import Stream, StreamReset
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.outbound import attempts
from weft_proxy.outbound.request_body import RequestBody
from weft_proxy.outbound.state import EndpointKey, OutboundState
from weft_proxy.policies import request_match
from weft_proxy.protocols.http2 import header_value

ADDRESS_PORT = tuple[str, int]


def request_authority(stream: Stream) -> str:
    authority = header_value(stream.headers, b":authority") or header_value(stream.headers, b"host")
    return (authority or b"").decode("latin-1")


class OutboundHttp2:
    def __init__(self, state: OutboundState, metrics: ProxyMetrics) -> None:
        self.state = state
        self.metrics = metrics

    async def handle(self, stream: Stream, original_dst: ADDRESS_PORT | None) -> None:
        authority = request_authority(stream)
        try:
            found = await self.state.find_parent(authority, original_dst)
            if found is None:
                raise ProxyError(502, f"no service known for authority {authority!r}")
            await self._routed(stream, *found, authority)
        except ProxyError as failure:
            await answer_error(stream, failure.status, str(failure))

    async def _routed(
        self, stream: Stream, service: OutboundService, port: int, authority: str
    ) -> None:
        plan = attempts.plan_request(
            self.state,
            service,
            port,
            authority,
            lambda: request_match.RequestHead.from_http2(stream.headers),
            stream.headers,
        )
        retryable = plan.route is not None and plan.route.is_retryable
        body = RequestBody(await request_body(stream), retryable=retryable)
        chosen: attempts.Attempt[Upstream] = await attempts.attempt(
            plan,
            functools.partial(self._exchange, plan, stream, body),
            body.retryable_bytes,
            self.metrics,
            self.state.clock,
        )
        ending = attempts.Ending.CANCELLED  # unless the relay returns
        try:
            complete = await chosen.answer.relay(stream)
            ending = attempts.Ending.COMPLETE if complete else attempts.Ending.BROKEN
        finally:
            chosen.answer.discard()
            chosen.settle(self.metrics, grpc_status=chosen.answer.grpc_status, ending=ending)
            if self.state.tap.watched:  # the method and path cost: only for a watcher
                method = (header_value(stream.headers, b":method") or b"").decode("latin-1")
                path = (header_value(stream.headers, b":path") or b"").decode("latin-1")
                attempts.tap(self.state.tap, plan, chosen, method, path.split("?", 1)[0], "")

    async def _exchange(
        self, plan: attempts.Plan, stream: Stream, body: RequestBody, key: EndpointKey
    ) -> Upstream | None:
        pool = plan.group.h2_pool(key)
        try:
            return await exchange(pool, stream.headers, body.for_attempt(), stream)
        except (StreamReset, OSError, TimeoutError):
            return None
