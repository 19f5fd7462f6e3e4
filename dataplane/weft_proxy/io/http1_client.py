"""The client side of HTTP/1: pooled connections to one endpoint, one exchange at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from weft_proxy.io.connect import CONNECT_TIMEOUT_S, Opener, plain
from weft_proxy.protocols.http1 import (
    LAST_CHUNK,
    Body,
    EndOfMessage,
    Event,
    RequestHead,
    ResponseHead,
    ResponseReader,
    body_framing,
    chunk,
    forwarded_headers,
    request_head_bytes,
    response_head_bytes,
    tunnel_bytes,
)

READ_SIZE = 64 * 1024


class UpstreamConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.responses = ResponseReader()
        self._events: deque[Event] = deque()

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    async def send_request(
        self, head: RequestHead, body: bytes | AsyncIterator[bytes] | None
    ) -> None:
        """The request, re-framed: a known length is kept, any other body is chunked."""
        headers = forwarded_headers(head.headers, keep_upgrade=head.upgrade)
        length = body_framing(head.headers)
        if isinstance(body, bytes):
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            if body or length is not None or head.method not in ("GET", "HEAD"):
                headers.append((b"content-length", b"%d" % len(body)))
        elif body is not None and length is None:
            headers.append((b"transfer-encoding", b"chunked"))
        if head.method == "HEAD":
            self.responses.expect_no_body()
        request = request_head_bytes(head.method, head.target, headers)
        if isinstance(body, bytes):
            self.writer.write(request + body if body else request)  # one segment
        else:
            self.writer.write(request)
        if body is not None and not isinstance(body, bytes):
            async for data in body:
                self.writer.write(data if length is not None else chunk(data))
                await self.writer.drain()
            if length is None:
                self.writer.write(LAST_CHUNK)
        await self.writer.drain()

    async def next_event(self) -> Event:
        while not self._events:
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise ConnectionError("upstream closed the connection")
            self._events.extend(self.responses.feed(data))
        return self._events.popleft()

    async def response_head(self) -> ResponseHead:
        """The next final response head; 1xx interim responses are skipped."""
        while True:
            event = await self.next_event()
            if isinstance(event, ResponseHead) and (event.status >= 200 or event.status == 101):
                return event

    async def relay_response(
        self, head: ResponseHead, client: asyncio.StreamWriter, method: str
    ) -> bool:
        """Write `head` and its body to the client; True if this connection is reusable.

        A body of known length streams as is; any other is re-chunked. What has arrived
        is written in one go (a small response: head and body in one segment), and the
        wait for more comes only after it is flushed.
        """
        headers = forwarded_headers(head.headers)
        bodiless = _bodiless(head, method)
        length = body_framing(head.headers)
        close_delimited = length is None and head.header(b"transfer-encoding") is None
        rechunk = not bodiless and length is None
        if rechunk:
            headers.append((b"transfer-encoding", b"chunked"))
        out = [response_head_bytes(head.status, head.reason, headers)]
        while True:
            if not self._events and out:
                client.write(b"".join(out))
                out.clear()
                await client.drain()
            try:
                event = await self.next_event()
            except ConnectionError:
                if bodiless or not close_delimited:
                    raise
                break
            if isinstance(event, EndOfMessage):
                break
            if isinstance(event, Body) and event.data and not bodiless:
                out.append(chunk(event.data) if rechunk else event.data)
        if rechunk:
            out.append(LAST_CHUNK)
        if out:
            client.write(b"".join(out))
        await client.drain()
        return head.keep_alive and not close_delimited

    async def body(self, head: ResponseHead, method: str) -> AsyncIterator[bytes]:
        """The body of response `head` (to a `method` request), chunk by chunk. A response
        delimited by the upstream closing (no length, not chunked) ends at that close."""
        if _bodiless(head, method):
            await self.next_event()  # its EndOfMessage
            return
        while True:
            try:
                event = await self.next_event()
            except ConnectionError:
                if not _close_delimited(head):
                    raise
                return
            if isinstance(event, Body):
                if event.data:
                    yield event.data
            elif isinstance(event, EndOfMessage):
                return

    @staticmethod
    def reusable_after(head: ResponseHead) -> bool:
        """Whether the connection may carry another request once `head`'s body is read."""
        return head.keep_alive and not _close_delimited(head)

    def tunnel_bytes(self) -> bytes:
        """After a 101: whatever followed its head, for the tunnel."""
        held = tunnel_bytes(self._events)
        self._events.clear()
        return held

    def close(self) -> None:
        self.writer.transport.abort()


def _bodiless(head: ResponseHead, method: str) -> bool:
    return method == "HEAD" or head.status in (204, 304)


def _close_delimited(head: ResponseHead) -> bool:
    return body_framing(head.headers) is None and head.header(b"transfer-encoding") is None


class Http1Pool:
    """Idle keep-alive connections to one endpoint, reused most-recent first. Up to
    `max_idle` are kept: enough for a burst of concurrent requests not to open (and
    close) connections each time; the server closes those it no longer wants."""

    def __init__(
        self, host: str, port: int, max_idle: int = 256, opener: Opener | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._open = opener or plain(host, port)
        self._idle: list[UpstreamConnection] = []

    async def acquire(self) -> UpstreamConnection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
            connection.close()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await self._open()
        return UpstreamConnection(reader, writer)

    def release(self, connection: UpstreamConnection, reusable: bool) -> None:
        if reusable and connection.usable and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connection in self._idle:
            with contextlib.suppress(Exception):
                connection.close()
        self._idle.clear()
