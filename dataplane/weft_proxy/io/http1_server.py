"""The server side of an HTTP/1 connection: requests in order, each handed to a handler
with a body that streams from the client as the handler reads it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from weft_proxy.errors import error_response
from weft_proxy.protocols.http1 import (
    Body,
    EndOfMessage,
    Event,
    ProtocolError,
    RequestHead,
    RequestReader,
    tunnel_bytes,
)

READ_SIZE = 64 * 1024
IDLE_TIMEOUT_S = 90.0  # between requests; a slow-loris client is cut off after it


class ClientStream:
    """The events of one client connection, read from the socket on demand."""

    def __init__(self, reader: asyncio.StreamReader, first_bytes: bytes) -> None:
        self.reader = reader
        self._parser = RequestReader()
        self._events: deque[Event] = deque(self._parser.feed(first_bytes))
        self.closed = False

    async def next_event(self) -> Event | None:
        while not self._events:
            if self.closed:
                return None
            data = await self.reader.read(READ_SIZE)
            if not data:
                self.closed = True
                return None
            self._events.extend(self._parser.feed(data))
        return self._events.popleft()

    async def body(self) -> AsyncIterator[bytes]:
        """The current request's body, up to its end."""
        while True:
            event = await self.next_event()
            if event is None:
                raise ConnectionError("client closed mid-body")
            if isinstance(event, EndOfMessage):
                return
            if isinstance(event, Body):
                yield event.data

    def tunnel_bytes(self) -> bytes:
        """After an upgrade: whatever the parser still held for the tunnel."""
        held = tunnel_bytes(self._events)
        self._events.clear()
        return held


# The handler answers one request; it returns whether the connection may serve another.
Handler = Callable[[RequestHead, ClientStream, asyncio.StreamWriter], Awaitable[bool]]


async def serve_http1(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    first_bytes: bytes,
    handle: Handler,
) -> None:
    stream = ClientStream(reader, first_bytes)
    try:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    event = await stream.next_event()
            except TimeoutError:
                break
            if event is None:
                break
            if not isinstance(event, RequestHead):
                continue  # the rest of a body the handler chose not to read
            if not await handle(event, stream, writer):
                break
    except ProtocolError as error:
        writer.write(error_response(error.status, str(error), close=True))
    except (ConnectionError, OSError, TimeoutError):
        pass
    finally:
        writer.close()
