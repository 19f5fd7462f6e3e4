"""One HTTP/1 connection, client's or upstream's, as an asyncio Protocol: bytes are
parsed into events the moment they arrive, and a coroutine waits only when it needs an
event that has not come yet; an exchange served in callbacks (`http1_callbacks`) sets
`listener` instead, called at each arrival. The connection is also its own writer.

Streams (asyncio.StreamReader and StreamWriter) cost a copy into a buffer, a read call
and a future per arrival; here an arrival is one parse and, if somebody waits, one
wake-up. A connection opened as streams (by a listener, or by detection that read its
first bytes) is taken over by `adopt`.

Flow control both ways: reading pauses while more than `MAX_UNREAD` body bytes wait to
be taken, and `drain` waits only while the transport's write buffer is full. After a
protocol switch, `tunnel` joins two connections byte for byte with the same back-
pressure, half-closes included where the transport can.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Self

from weft_proxy.protocols.http1 import Body, Event, ProtocolError

MAX_UNREAD = 256 * 1024  # body bytes parsed and not yet taken, before reading pauses

Feed = Callable[[bytes], list[Event]]


class Http1Connection(asyncio.Protocol):
    __slots__ = (
        "_drain_waiter",
        "_feed",
        "_loop",
        "_paused_reading",
        "_paused_writing",
        "_peer",
        "_streams",
        "_unread",
        "_waiter",
        "eof",
        "events",
        "failed",
        "listener",
        "lost",
        "transport",
        "tunnel_done",
    )

    _feed: Feed  # the subclass's parser

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # connection_made
        self._loop = asyncio.get_running_loop()  # for the futures `arrival` makes
        self.events: deque[Event] = deque()
        self.failed: ProtocolError | None = None  # the bytes after `events` broke HTTP/1
        self.eof = False  # the peer sent its FIN (or the connection is gone)
        self.lost = False
        self._unread = 0
        self._paused_reading = False
        self._paused_writing = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._peer: Http1Connection | None = None  # a tunnel's other end
        self._streams: asyncio.StreamWriter | None = None
        self.tunnel_done: asyncio.Future[None] | None = None
        # Called, in place of a wake-up, at each arrival: an exchange served in callbacks.
        self.listener: Callable[[], None] | None = None

    @classmethod
    def adopt(
        cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes = b""
    ) -> Self:
        """Take over a connection opened as streams: `first` (what was read from it
        already), then what its reader holds, are its first bytes."""
        connection = cls()
        # Held, not used: a StreamWriter closes its transport when it is collected.
        connection._streams = writer
        transport = writer.transport
        transport.set_protocol(connection)
        connection.connection_made(transport)
        # StreamReader has no public way to hand its buffer on.
        held: bytearray = reader._buffer  # type: ignore[attr-defined]
        if first or held:
            connection.data_received(first + bytes(held))
            held.clear()
        if reader._paused:  # type: ignore[attr-defined]  # it stopped the transport
            connection.transport.resume_reading()
        if reader.at_eof() or reader.exception() is not None:
            connection.eof_received()
        return connection

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self._peer
        if peer is not None:  # a tunnel: the bytes go on as they are
            if not peer.transport.is_closing():
                peer.transport.write(data)
            return
        if self.failed is not None:
            return  # nothing after bad bytes is HTTP/1
        try:
            events = self._feed(data)
        except ProtocolError as error:
            self.failed = error
            self._wake()
            return
        if events:
            self.events.extend(events)
            for event in events:
                if type(event) is Body:
                    self._unread += len(event.data)
            if self._unread > MAX_UNREAD and not self._paused_reading:
                self._paused_reading = True
                self.transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        peer = self._peer
        if peer is not None:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
            else:
                # TLS: Python's ssl transport cannot half-close, and a connection left
                # open one way would never end if the peer waits for our EOF: close it
                # (after what is buffered). A half-closing client gets no answer over mTLS.
                peer.transport.close()
            self._tunnel_check()
        self._wake()
        # Keep the transport open to write the answer (TLS closes regardless).
        return self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # drain() sees `lost` and raises
        peer = self._peer
        if peer is not None:
            if exc is not None:
                peer.transport.abort()  # a reset on one side resets the other
            else:
                peer.transport.close()
            self._tunnel_check()

    def pause_writing(self) -> None:
        self._paused_writing = True
        peer = self._peer
        if peer is not None:
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        peer = self._peer
        if peer is not None and not peer.eof:
            peer.transport.resume_reading()

    # --- reading ---------------------------------------------------------------------------
    def _wake(self) -> None:
        listener = self.listener
        if listener is not None:
            listener()
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def arrival(self) -> None:
        """Wait until something arrives: an event, the end, or bytes that break HTTP/1."""
        if self._paused_reading:
            self._paused_reading = False
            self._unread = 0
            self.transport.resume_reading()
        waiter = self._waiter = self._loop.create_future()
        await waiter

    def resume(self) -> None:
        """For a listener that took what was parsed: reading goes on if it was paused
        (as `arrival` does for a coroutine)."""
        if self._paused_reading and self._unread <= MAX_UNREAD:
            self._paused_reading = False
            self.transport.resume_reading()

    def took(self, event: Event) -> None:
        """`event` was taken from `events` (its body bytes no longer count as unread)."""
        if type(event) is Body:
            self._unread -= len(event.data)

    # --- writing ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.transport.write(data)

    @property
    def must_drain(self) -> bool:
        """Whether `drain` would wait or raise: skipping it otherwise saves a coroutine."""
        return self._paused_writing or self.lost

    async def drain(self) -> None:
        """Wait while the write buffer is full; ConnectionResetError once it is gone."""
        if self.lost:
            raise ConnectionResetError("connection lost")
        if not self._paused_writing:
            return
        waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await waiter
        if self.lost:
            raise ConnectionResetError("connection lost")

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    # --- tunnels ---------------------------------------------------------------------------
    def _tunnel_check(self) -> None:
        peer = self._peer
        done = self.tunnel_done
        if peer is None or done is None or done.done():
            return
        if (self.eof and peer.eof) or self.lost or peer.lost:
            if self.eof and peer.eof:
                self.transport.close()
                peer.transport.close()
            done.set_result(None)


async def tunnel(a: Http1Connection, b: Http1Connection) -> None:
    """Bytes both ways between `a` and `b` as they come, until both directions ended
    (or one connection is gone); then both are closed."""
    done = asyncio.get_running_loop().create_future()
    a._peer, b._peer = b, a
    a.tunnel_done = b.tunnel_done = done
    for source, sink in ((a, b), (b, a)):
        if source._paused_reading:
            source._paused_reading = False
            source.transport.resume_reading()
        if sink._paused_writing:
            source.transport.pause_reading()
    for source in (a, b):
        if source.lost:
            source.connection_lost(None)
        elif source.eof:
            source.eof_received()
    try:
        await done
    finally:
        a.transport.close()
        b.transport.close()
