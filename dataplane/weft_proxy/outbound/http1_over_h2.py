"""Outbound HTTP/1 requests to an endpoint that speaks HTTP/2 (protocol hint H2, i.e. the
proxy of a meshed pod): each goes as a stream of the endpoint's one multiplexed
connection, and its response comes back to the client as HTTP/1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from weft_proxy.io.http1_server import ClientStream
from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.io.http2_forward import Upstream, exchange
from weft_proxy.io.http2_session import StreamReset
from weft_proxy.protocols.h1_h2 import h2_request, http1_response
from weft_proxy.protocols.http1 import RequestHead, chunk, last_chunk, response_head_bytes
from weft_proxy.protocols.http2 import header_value


class H2Answer:
    """An HTTP/2 response head, to relay to an HTTP/1 client."""

    __slots__ = ("keep_client", "request", "upstream")
    grpc_status = None  # gRPC does not come over HTTP/1
    upgrade = False  # switches stay HTTP/1

    def __init__(self, upstream: Upstream, request: RequestHead) -> None:
        self.upstream = upstream
        self.request = request
        self.keep_client = request.keep_alive

    @property
    def status(self) -> int:
        return self.upstream.status

    def discard(self) -> None:
        self.upstream.discard()

    async def relay(self, stream: ClientStream, client: asyncio.StreamWriter) -> bool:
        """Write the response to the client: True if whole, False if the upstream reset
        it (HTTP/1 has no way to say so but to end the connection mid-body)."""
        upstream = self.upstream.stream
        status, reason, headers = http1_response(upstream.headers)
        bodiless = self.request.method == "HEAD" or status in (204, 304)
        chunked = not bodiless and header_value(headers, b"content-length") is None
        if chunked and self.request.version != "1.1":
            chunked = self.keep_client = False  # HTTP/1.0: the body ends with the connection
        if chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        if not self.keep_client:
            headers.append((b"connection", b"close"))
        client.write(response_head_bytes(status, reason, headers))
        try:
            async for data in upstream.body():
                client.write(chunk(data) if chunked else data)
                await client.drain()
        except StreamReset:
            self.keep_client = False
            return False
        finally:
            self.upstream.discard()
        if chunked:
            client.write(last_chunk(upstream.trailers))
        await client.drain()
        return True


async def exchange_over_h2(
    pool: Http2Pool, head: RequestHead, body: bytes | AsyncIterator[bytes], authority: str
) -> H2Answer | None:
    """Send the request over HTTP/2; None if the endpoint could not be reached."""
    try:
        upstream = await exchange(pool, h2_request(head, authority.encode("latin-1")), body, None)
    except (StreamReset, OSError, TimeoutError):
        return None
    return H2Answer(upstream, head)
