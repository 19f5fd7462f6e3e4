"""The client side of HTTP/1: pooled connections to one endpoint, one exchange at a time
(`http1_exchange` makes the exchanges)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from weft_proxy.io.connect import CONNECT_TIMEOUT_S, Opener, plain
from weft_proxy.io.http1_connection import Http1Connection
from weft_proxy.io.http1_errors import MalformedResponse, UpstreamClosed
from weft_proxy.protocols.http1 import Body, Event, ResponseReader, tunnel_bytes

log = logging.getLogger(__name__)


class UpstreamConnection(Http1Connection):
    """One connection to an endpoint: its responses' events as they arrive."""

    __slots__ = ("responses",)

    def __init__(self) -> None:
        super().__init__()
        self.responses = ResponseReader()
        self._feed = self.responses.feed

    @property
    def usable(self) -> bool:
        """Open, and provably between messages with nothing parsed or pending: it may
        carry another exchange. Bytes past the end of a response (more than it declared,
        or an unsolicited one, with the response or while idle) say not."""
        return (
            not (self.eof or self.events or self.failed or self.transport.is_closing())
            and self.responses.between_messages
        )

    async def next_event(self) -> Event:
        """The next response event. UpstreamClosed at the end of the connection,
        MalformedResponse for bytes that are not HTTP/1 (both ConnectionErrors)."""
        events = self.events
        while not events:
            self.raise_ended()
            await self.arrival()
        event = events.popleft()
        if type(event) is Body:
            self.took(event)
        return event

    def raise_ended(self) -> None:
        """With no event left to take: raise if no more will come (as `next_event`)."""
        failed = self.failed
        if failed is not None:
            if not self.transport.is_closing():
                peer = self.transport.get_extra_info("peername") or ("?", 0)
                # One line per connection: it is closed after this.
                log.warning("malformed HTTP/1 response from %s:%s: %s", peer[0], peer[1], failed)
                self.transport.abort()
            raise MalformedResponse(str(failed))
        if self.eof:
            raise UpstreamClosed("upstream closed the connection")

    def tunnel_bytes(self) -> bytes:
        """After a switch: whatever followed the response head, for the tunnel."""
        held = tunnel_bytes(self.events)
        self.events.clear()
        return held

    def close(self) -> None:
        """At once: nothing more is owed to a connection taken out of use."""
        self.transport.abort()


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

    def idle(self) -> UpstreamConnection | None:
        """A usable idle connection, if there is one (no coroutine: most exchanges)."""
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    async def acquire(self) -> UpstreamConnection:
        connection = self.idle()
        if connection is not None:
            return connection
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await self._open()
        return UpstreamConnection.adopt(reader, writer)

    def release(self, connection: UpstreamConnection, reusable: bool) -> None:
        """Back to the pool if `reusable` and at a message boundary; else closed."""
        if reusable and connection.usable and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connection in self._idle:
            with contextlib.suppress(Exception):
                connection.close()
        self._idle.clear()
