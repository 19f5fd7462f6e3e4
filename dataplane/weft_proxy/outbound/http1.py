"""Outbound HTTP/1: each request routed to its parent's route, split to a backend,
balanced to an endpoint, retried within budget, timed out, classified and counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from weft_api.config import OutboundService, Route
from weft_proxy.errors import error_response
from weft_proxy.io.http1_client import Http1Pool, UpstreamConnection
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.io.tcp import splice
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound.state import EndpointGroup, OutboundState, ServiceState
from weft_proxy.policies import request_match
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.retry import MAX_RETRYABLE_BODY_BYTES, RetryDecision, decide_retry
from weft_proxy.policies.timeouts import GRPC_TIMEOUT_HEADER, TIMEOUT_HEADER, request_deadline
from weft_proxy.protocols.http1 import (
    RequestHead,
    ResponseHead,
    forwarded_headers,
    response_head_bytes,
)

ADDRESS_PORT = tuple[str, int]


class _Fail(Exception):
    """Answer the client with a proxy error (`weft-proxy-error`) and this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
            found = self._parent(authority, original_dst)
            if found is None:
                if original_dst is None:
                    raise _Fail(502, f"no service known for authority {authority!r}")
                return await self._pass_through(head, stream, client, original_dst, authority)
            service, port = found
            return await self._routed(head, stream, client, service, port, authority)
        except _Fail as failure:
            client.write(error_response(failure.status, str(failure)))
            await client.drain()
            return head.keep_alive

    def _parent(
        self, authority: str, original_dst: ADDRESS_PORT | None
    ) -> tuple[OutboundService, int] | None:
        destinations = self.state.destinations
        found = destinations.by_authority(authority) if authority else None
        if found is None and original_dst is not None:
            service = destinations.by_address(*original_dst)
            if service is not None:
                found = service, original_dst[1]
        return found

    async def _routed(
        self,
        head: RequestHead,
        stream: ClientStream,
        client: asyncio.StreamWriter,
        service: OutboundService,
        port: int,
        authority: str,
    ) -> bool:
        state = self.state.state_of(service)
        # Building the matchable request costs; most parents have no routes to match.
        request = request_match.RequestHead.from_http1(head) if state.matches_requests else None
        route = state.routes.route_for(request, port) if request is not None else None
        backend = state.split.pick(request)
        group = state.group(backend, port) if backend is not None else None
        if group is None or not group.endpoints:
            raise _Fail(503, f"no endpoints for {service.name}.{service.namespace}:{port}")
        clock = self.state.clock
        headers = request.headers if request is not None else _timeout_headers(head)
        deadline = request_deadline(route.timeout_ms if route else None, headers, clock)
        body, body_bytes = await _body_for(head, stream, route)
        state.budget.record_request()
        attempts = self._attempts(
            head, body, body_bytes, stream, client, state, group, route, authority
        )
        if deadline is None:
            return await attempts
        try:
            async with asyncio.timeout(deadline.remaining(clock)):
                return await attempts
        except TimeoutError:
            timeout = route.timeout_ms if route and route.timeout_ms else None
            raise _Fail(504, f"request timed out after {timeout} ms") from None

    async def _attempts(
        self,
        head: RequestHead,
        body: bytes | AsyncIterator[bytes],
        body_bytes: int | None,
        stream: ClientStream,
        client: asyncio.StreamWriter,
        state: ServiceState,
        group: EndpointGroup,
        route: Route | None,
        authority: str,
    ) -> bool:
        classes = route.response_classes if route else ()
        while True:
            key = group.pick()
            if key is None:
                raise _Fail(503, "every endpoint is failing; it will be probed again shortly")
            target = group.target(key, authority, state.service)
            self.metrics.request(target)
            group.accrual.on_dispatch(key)
            in_flight = group.balancer.start(key)
            started = self.state.clock()
            pool = group.pool(key)
            response: ResponseHead | None = None
            connection: UpstreamConnection | None = None
            try:
                connection = await pool.acquire()
                await connection.send_request(head, body)
                response = await connection.response_head()
            except (ConnectionError, OSError, TimeoutError):
                if connection is not None:
                    connection.close()
            in_flight.finish()
            if response is None:
                classification = Classification.FAILURE
            else:
                classification = classify_response(classes, response.status)
            failed = classification is Classification.FAILURE
            group.accrual.record(key, failed=failed)
            decision = decide_retry(
                route, failed=failed, body_bytes=body_bytes, budget=state.budget
            )
            if decision is RetryDecision.RETRY:
                state.budget.record_retry()
                if connection is not None:
                    connection.close()  # its response is not read: the connection is spent
                continue
            if response is None or connection is None:
                raise _Fail(502, f"connection to {key[0]}:{key[1]} failed")
            latency_ms = (self.state.clock() - started) * 1000
            self.metrics.response(target, response.status, classification.value, latency_ms)
            if response.upgrade:
                await _tunnel(response, connection, stream, client)
                return False
            reusable = await connection.relay_response(response, client, head.method)
            pool.release(connection, reusable)
            return head.keep_alive

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
            raise _Fail(502, f"connection to {destination[0]}:{destination[1]} failed") from error
        latency_ms = (self.state.clock() - started) * 1000
        classification = classify_response((), response.status)
        self.metrics.response(target, response.status, classification.value, latency_ms)
        if response.upgrade:
            await _tunnel(response, connection, stream, client)
            return False
        pool.release(connection, await connection.relay_response(response, client, head.method))
        return head.keep_alive


def _timeout_headers(head: RequestHead) -> list[tuple[str, str]]:
    """Only the headers a client may shorten its deadline with."""
    return [
        (name, value.decode("latin-1"))
        for key, value in head.headers
        if (name := key.decode("latin-1").lower()) in (TIMEOUT_HEADER, GRPC_TIMEOUT_HEADER)
    ]


async def _body_for(
    head: RequestHead, stream: ClientStream, route: Route | None
) -> tuple[bytes | AsyncIterator[bytes], int | None]:
    """The request body, buffered whole when a retry may need it again (and it is small)."""
    if route is None or not route.is_retryable or head.upgrade:
        return stream.body(), None
    buffered = bytearray()
    chunks = stream.body()
    async for data in chunks:
        buffered += data
        if len(buffered) > MAX_RETRYABLE_BODY_BYTES:
            return _prepend(bytes(buffered), chunks), None
    return bytes(buffered), len(buffered)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for data in rest:
        yield data


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
