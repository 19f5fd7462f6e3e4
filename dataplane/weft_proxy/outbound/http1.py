"""Outbound HTTP/1: each request routed to its parent's route, split to a backend,
balanced to an endpoint, retried within budget, timed out, classified and counted."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from weft_api.config import OutboundService, ProtocolHint
from weft_proxy.errors import ProxyError, error_response
from weft_proxy.io.http1_client import Http1Pool, UpstreamConnection
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.io.tcp import splice
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound import attempts
from weft_proxy.outbound.http1_over_h2 import H2Answer, exchange_over_h2
from weft_proxy.outbound.request_body import RequestBody
from weft_proxy.outbound.state import EndpointKey, OutboundState
from weft_proxy.policies import request_match
from weft_proxy.policies.classify import classify_response
from weft_proxy.protocols.http1 import (
    RequestHead,
    ResponseHead,
    forwarded_headers,
    response_head_bytes,
)

ADDRESS_PORT = tuple[str, int]


class Http1Answer:
    """An HTTP/1 response head on the pooled connection it came on."""

    __slots__ = ("connection", "head", "pool")
    grpc_status = None

    def __init__(self, pool: Http1Pool, connection: UpstreamConnection, head: ResponseHead):
        self.pool = pool
        self.connection = connection
        self.head = head

    @property
    def status(self) -> int:
        return self.head.status

    def discard(self) -> None:
        self.connection.close()  # its response is not read: the connection is spent

    async def relay(self, stream: ClientStream, client: asyncio.StreamWriter, method: str) -> bool:
        """Write the response to the client; True: the client connection stays usable."""
        if self.head.upgrade:
            await _tunnel(self.head, self.connection, stream, client)
            return False
        try:
            reusable = await self.connection.relay_response(self.head, client, method)
        except BaseException:
            self.connection.close()  # cut mid-response: the connection is spent
            raise
        self.pool.release(self.connection, reusable)
        return True


class OutboundHttp1:
    def __init__(self, state: OutboundState, metrics: ProxyMetrics) -> None:
        self.state = state
        self.metrics = metrics
        self._passthrough: dict[ADDRESS_PORT, Http1Pool] = {}

    async def handle(
        self,
        head: RequestHead,
        stream: ClientStream,
        client: asyncio.StreamWriter,
        original_dst: ADDRESS_PORT | None,
    ) -> bool:
        """Serve one request; True if the client connection may carry another."""
        authority = (head.header(b"host") or b"").decode("latin-1")
        try:
            found = await self.state.find_parent(authority, original_dst)
            if found is None:
                if original_dst is None:
                    raise ProxyError(502, f"no service known for authority {authority!r}")
                return await self._pass_through(head, stream, client, original_dst, authority)
            service, port = found
            return await self._routed(head, stream, client, service, port, authority)
        except ProxyError as failure:
            client.write(error_response(failure.status, str(failure)))
            await client.drain()
            return head.keep_alive

    async def _routed(
        self,
        head: RequestHead,
        stream: ClientStream,
        client: asyncio.StreamWriter,
        service: OutboundService,
        port: int,
        authority: str,
    ) -> bool:
        plan = attempts.plan_request(
            self.state,
            service,
            port,
            authority,
            lambda: request_match.RequestHead.from_http1(head),
            lambda: attempts.timeout_headers(head.headers),
        )
        retryable = plan.route is not None and plan.route.is_retryable and not head.upgrade
        body = RequestBody(_body_source(head, stream), retryable=retryable)
        exchange = functools.partial(self._exchange, plan, head, body)
        chosen: attempts.Attempt[Http1Answer | H2Answer] = await attempts.attempt(
            plan, exchange, body.retryable_bytes, self.metrics, self.state.clock
        )
        chosen.settle(self.metrics)
        if self.state.tap.watched:  # the path and peer cost: only for a watcher
            path = head.target.split(b"?", 1)[0].decode("latin-1")
            attempts.tap(self.state.tap, plan, chosen, head.method, path, _peer(client))
        keep_alive = await chosen.answer.relay(stream, client, head.method)
        return keep_alive and head.keep_alive

    async def _exchange(
        self, plan: attempts.Plan, head: RequestHead, body: RequestBody, key: EndpointKey
    ) -> Http1Answer | H2Answer | None:
        endpoint = plan.group.endpoints[key]
        # An endpoint hinted HTTP/2 that is not meshed speaks only HTTP/2: upgrade. A
        # meshed one's proxy takes HTTP/1 as it is, over mTLS (ALPN http/1.1): in Python,
        # h2 framing and HPACK cost more than a pooled HTTP/1 connection saves (a meshed
        # hop: 1.02x the plain hop's CPU kept HTTP/1, 1.84x upgraded; docs/benchmarks.md).
        upgrade = endpoint.protocol_hint is ProtocolHint.H2 and endpoint.identity is None
        if upgrade and not head.upgrade:
            h2_pool = plan.group.h2_pool(key)
            return await exchange_over_h2(h2_pool, head, body.for_attempt(), plan.authority)
        pool = plan.group.pool(key)
        connection: UpstreamConnection | None = None
        try:
            connection = await pool.acquire()
            await connection.send_request(head, body.for_attempt())
            return Http1Answer(pool, connection, await connection.response_head())
        except BaseException as error:  # cancelled too: the connection is mid-exchange
            if connection is not None:
                connection.close()
            if isinstance(error, ConnectionError | OSError | TimeoutError):
                return None
            raise

    async def _pass_through(
        self,
        head: RequestHead,
        stream: ClientStream,
        client: asyncio.StreamWriter,
        destination: ADDRESS_PORT,
        authority: str,
    ) -> bool:
        """A destination outside the mesh: forwarded as addressed, without mesh policy."""
        pool = self._passthrough.get(destination)
        if pool is None:
            pool = self._passthrough[destination] = Http1Pool(*destination)
        address = f"{destination[0]}:{destination[1]}"
        target = Target({"direction": "outbound", "authority": authority, "target_addr": address})
        self.metrics.request(target)
        started = self.state.clock()
        try:
            connection = await pool.acquire()
            await connection.send_request(head, stream.body())
            response = await connection.response_head()
        except (ConnectionError, OSError, TimeoutError) as error:
            raise ProxyError(502, f"connection to {address} failed") from error
        latency_ms = (self.state.clock() - started) * 1000
        classification = classify_response((), response.status)
        self.metrics.response(target, response.status, classification.value, latency_ms)
        keep_alive = await Http1Answer(pool, connection, response).relay(
            stream, client, head.method
        )
        return keep_alive and head.keep_alive


def _body_source(head: RequestHead, stream: ClientStream) -> bytes | AsyncIterator[bytes]:
    """The request body's chunks as they arrive; none (b"") when the head says so, which
    spares an HTTP/2 upstream an empty DATA frame."""
    framed = head.header(b"content-length") not in (None, b"0")
    if framed or head.header(b"transfer-encoding") is not None or head.upgrade:
        return stream.body()
    return b""


async def _tunnel(
    response: ResponseHead,
    upstream: UpstreamConnection,
    stream: ClientStream,
    client: asyncio.StreamWriter,
) -> None:
    """After 101 Switching Protocols (WebSocket): bytes both ways, as they are."""
    headers = forwarded_headers(response.headers, keep_upgrade=True)
    client.write(response_head_bytes(response.status, response.reason, headers))
    client.write(upstream.tunnel_bytes())
    upstream.writer.write(stream.tunnel_bytes())
    await splice((stream.reader, client), (upstream.reader, upstream.writer))


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else ""
