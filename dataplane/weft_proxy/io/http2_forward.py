"""One HTTP/2 request forwarded on a new upstream stream, and its response relayed back:
what the outbound stack (per endpoint attempt) and the inbound stack (to the application)
both do with a request stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.io.http2_session import Stream, StreamReset
from weft_proxy.protocols.grpc import grpc_status
from weft_proxy.protocols.http2 import ErrorCode, Headers, response_status

Body = bytes | AsyncIterator[bytes]


async def request_body(stream: Stream) -> Body:
    """The body of a request stream: whole when all of it has arrived already (sending
    it needs no task of its own), else a stream of it."""
    if stream.body_complete():
        return await stream.read_body()
    return stream.body()


class Upstream:
    """An upstream stream whose response head has arrived, while the request body may
    still flow to it (a bidi gRPC call talks both ways at once)."""

    __slots__ = ("_pump", "status", "stream")

    def __init__(self, stream: Stream, pump: asyncio.Task[None] | None) -> None:
        self.stream = stream
        self._pump = pump
        self.status = response_status(stream.headers) or 502  # `exchange` checked it

    @property
    def grpc_status(self) -> int | None:
        """The gRPC status, once trailers (or a trailers-only head) said it."""
        stream = self.stream
        return grpc_status(stream.trailers if stream.trailers is not None else stream.headers)

    async def relay(self, downstream: Stream) -> bool:
        """Relay the response as fast as the downstream window allows: True if complete,
        False if the upstream cut it short (the downstream stream is then reset with the
        same code). StreamReset if the downstream went away."""
        stream = self.stream
        try:
            downstream.send_headers(stream.headers, end_stream=stream.headers_ended)
            if stream.headers_ended:
                return True
            async for data in stream.body():
                await downstream.send_data(data)
            if stream.trailers is not None:
                downstream.send_trailers(stream.trailers)
            else:
                downstream.end()
        except StreamReset as reset:
            if downstream.failed:
                raise
            downstream.reset(reset.code)
            return False
        return True

    def discard(self) -> None:
        """Done with it (or giving up on it): stop sending, close the stream."""
        if self._pump is not None:
            self._pump.cancel()
        self.stream.close()


async def exchange(pool: Http2Pool, head: Headers, body: Body, source: Stream | None) -> Upstream:
    """Send a request (`source` gives its trailers, if any) on a new stream of `pool` and
    wait for the response head. Raises StreamReset, OSError or TimeoutError when the
    upstream does not answer."""
    whole = isinstance(body, bytes)
    upstream = await pool.open_stream(head, end_stream=whole and not body and not _trailers(source))
    pump = None
    try:
        if isinstance(body, bytes):
            if body or _trailers(source):
                await _send_rest(upstream, body, source)
        else:
            pump = asyncio.create_task(_pump(body, upstream, source))
        if response_status(await upstream.response()) is None:
            # Malformed (RFC 9113 8.1.1): a stream error, which the caller answers with 502.
            upstream.reset(ErrorCode.PROTOCOL_ERROR)
            raise StreamReset(ErrorCode.PROTOCOL_ERROR)
    except BaseException:
        if pump is not None:
            pump.cancel()
        upstream.close()
        raise
    return Upstream(upstream, pump)


def _trailers(source: Stream | None) -> Headers | None:
    return source.trailers if source is not None else None


async def _send_rest(upstream: Stream, body: bytes, source: Stream | None) -> None:
    trailers = _trailers(source)
    await upstream.send_data(body, end_stream=trailers is None)
    if trailers is not None:
        upstream.send_trailers(trailers)


async def _pump(body: AsyncIterator[bytes], upstream: Stream, source: Stream | None) -> None:
    try:
        async for data in body:
            await upstream.send_data(data)
        await _send_rest(upstream, b"", source)
    except (StreamReset, ConnectionError, OSError):
        # A request cut short cannot complete upstream either (a no-op if the upstream
        # stream is the one that ended); the response side sees the reset.
        upstream.reset()
