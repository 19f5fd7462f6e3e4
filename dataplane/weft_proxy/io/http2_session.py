"""One HTTP/2 connection over asyncio streams: the core that the server side (one per
client connection) and the client side (one per endpoint) share.

`Session.run` feeds the socket's bytes to the sans-IO `Connection` and routes its events
to `Stream`s. What the state machine queues is written once per loop iteration (one
write for a head, its data and trailers); data waits for the socket to drain and for
flow-control window. Received data is acknowledged
(WINDOW_UPDATE) only when the stream's consumer comes back for more, so a consumer stuck
behind a slow receiver stops the peer at its window: back-pressure, end to end through
the proxy, with at most a window of data held per connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

from weft_proxy.protocols.http2 import (
    Connection,
    Data,
    ErrorCode,
    FrameCutter,
    GoAway,
    Headers,
    ProtocolError,
    Request,
    Reset,
    Response,
    SettingsChanged,
    StreamClosed,
    Trailers,
    WindowOpened,
)

READ_SIZE = 64 * 1024
# Frames the state machine takes in one go: a peer flooding the connection with small
# frames holds the event loop for about a millisecond before other connections get a
# turn, while a read of big DATA frames still goes in whole.
FRAMES_PER_TURN = 8
LINGER_S = 1.0  # after an error GOAWAY: how long its peer has to read it and hang up
SMALL_DATA = 16 * 1024  # data up to this size waits for the next flush, with other frames
LOST: int = ErrorCode.INTERNAL_ERROR
"""The code a stream fails with when its connection is gone."""

log = logging.getLogger(__name__)


class StreamReset(Exception):
    """A stream ended abnormally: reset by the peer (`code`), refused by the peer's GOAWAY
    (REFUSED_STREAM), or lost with its connection (`LOST`)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stream reset with code {code}")
        self.code = code


class Stream:
    """One stream, as its owner sees it: a server's request handler, or a client.

    `headers` is the request head (server side) or, once `response()` returned, the
    response head (client side). The owner must `close()` the stream when done with it.
    """

    __slots__ = (
        "_error",
        "_held",
        "_inbox",
        "_local_ended",
        "_reader",
        "_session",
        "_writer",
        "headers",
        "headers_ended",
        "headers_sent",
        "id",
        "remote_ended",
        "trailers",
    )

    def __init__(
        self, session: Session, stream_id: int, headers: Headers | None = None, ended: bool = False
    ) -> None:
        self.id = stream_id
        self.headers: Headers = headers if headers is not None else []
        self.headers_ended = ended  # END_STREAM came with the head: there is no body
        self.headers_sent = False
        self.remote_ended = ended  # the peer's END_STREAM arrived (perhaps not yet consumed)
        self.trailers: Headers | None = None
        self._session = session
        self._inbox: deque[Response | Data | Trailers] = deque()
        self._reader: asyncio.Future[None] | None = None  # the owner waiting for events
        self._writer: asyncio.Future[None] | None = None  # the owner waiting for window
        self._error: int | None = None
        self._held = 0  # flow-controlled bytes the consumer holds: acknowledged when it returns
        self._local_ended = False

    # --- receiving ----------------------------------------------------------------

    async def response(self) -> Headers:
        """The final response head (client side)."""
        event = await self._next()
        if not isinstance(event, Response):  # h2 lets no DATA precede the head
            raise StreamReset(ErrorCode.PROTOCOL_ERROR)
        self.headers, self.headers_ended = event.headers, event.end_stream
        return event.headers

    async def body(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; `trailers` is set when it ends with some. A chunk is
        acknowledged to the peer when the consumer asks for the next one."""
        if self.headers_ended:
            return
        while True:
            event = await self._next()
            if isinstance(event, Trailers):
                self.trailers = event.headers
                return
            assert isinstance(event, Data)  # one head per stream: h2 checks it
            if event.data:
                self._held = event.flow_length
                yield event.data
                self._acknowledge_held()
            else:
                self._session.connection.consumed(self.id, event.flow_length)
            if event.end_stream:
                return

    async def read_body(self) -> bytes:
        """The whole body, for bodies the caller knows are small (or has bounded)."""
        return b"".join([data async for data in self.body()])

    @property
    def failed(self) -> bool:
        """Reset (by either side), or lost with its connection."""
        return self._error is not None

    def body_complete(self) -> bool:
        """Whether the whole body has already arrived (a buffer of it costs nothing more)."""
        return self.headers_ended or (self.remote_ended and self._error is None)

    async def _next(self) -> Response | Data | Trailers:
        while not self._inbox:
            if self._error is not None:
                raise StreamReset(self._error)
            self._reader = self._session.loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        return self._inbox.popleft()

    # --- sending ------------------------------------------------------------------

    def send_headers(self, headers: Headers, end_stream: bool = False) -> None:
        """A head (or, with `end_stream` after the head, trailers)."""
        self._check()
        try:
            self._session.connection.send_headers(self.id, headers, end_stream)
        except StreamClosed:
            self._closed_under_us()
        self.headers_sent = True
        self._local_ended = end_stream
        self._session.flush()

    def send_trailers(self, trailers: Headers) -> None:
        self.send_headers(trailers, end_stream=True)

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        """Send `data` as the peer's window allows, waiting for it (and the socket)."""
        if not data and not end_stream:
            return
        connection = self._session.connection
        sent, size = 0, len(data)
        while True:
            self._check()
            try:
                window = connection.send_window(self.id)
            except StreamClosed:
                self._closed_under_us()
            if window <= 0 and sent < size:
                await self._window_opens()
                continue
            part = data if sent == 0 and window >= size else data[sent : sent + window]
            sent += len(part)
            last = sent >= size
            try:
                connection.send_data(self.id, part, end_stream and last)
            except StreamClosed:
                self._closed_under_us()
            if size > SMALL_DATA:  # written now, so that the drain below measures it
                self._session.flush_now()
            else:
                self._session.flush()
            await self._session.drain()
            if last:
                self._local_ended = end_stream
                return

    def end(self) -> None:
        """End our side without trailers."""
        self._check()
        try:
            self._session.connection.end_stream(self.id)
        except StreamClosed:
            self._closed_under_us()
        self._local_ended = True
        self._session.flush()

    def reset(self, code: int = ErrorCode.CANCEL) -> None:
        if self._error is None:
            self._session.connection.reset(self.id, code)
            self._session.flush()
            self.fail(code)
        self._session.forget(self)

    def close(self, code: int = ErrorCode.CANCEL) -> None:
        """The owner is done: a stream still open is reset with `code`, or NO_ERROR when
        only the peer's side is (RFC 9113 8.1: a complete response ends the request)."""
        if self._error is None and not (self._local_ended and self.remote_ended):
            self.reset(ErrorCode.NO_ERROR if self._local_ended else code)
        self._release()
        self._session.forget(self)

    def _check(self) -> None:
        if self._error is not None:
            raise StreamReset(self._error)

    def _closed_under_us(self) -> None:
        self.fail(ErrorCode.STREAM_CLOSED)
        raise StreamReset(ErrorCode.STREAM_CLOSED)

    async def _window_opens(self) -> None:
        self._writer = self._session.loop.create_future()
        try:
            await self._writer
        finally:
            self._writer = None

    # --- driven by the session ----------------------------------------------------

    def deliver(self, event: Response | Data | Trailers) -> None:
        self._inbox.append(event)
        if event.end_stream:
            self.remote_ended = True
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def window_opened(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def fail(self, code: int, *, keep_received: bool = False) -> None:
        """End the stream with `code`. What the peer sent before it ended stays readable
        with `keep_received` (a response cut short is relayed as far as it went)."""
        if self._error is None:
            self._error = code
        if not keep_received:
            self._release()
        for waiter in (self._reader, self._writer):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _acknowledge_held(self) -> None:
        held, self._held = self._held, 0
        self._session.connection.consumed(self.id, held)
        self._session.flush()

    def _release(self) -> None:
        """Hand back the window of data nobody will consume."""
        unread = self._held + sum(e.flow_length for e in self._inbox if isinstance(e, Data))
        self._inbox.clear()
        self._held = 0
        if unread and not self._session.closed:
            self._session.connection.consumed(self.id, unread)
            self._session.flush()


class Session:
    """An HTTP/2 connection and its open streams."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        self.streams: dict[int, Stream] = {}
        self.closed = False
        self.peer_went_away = False  # no new streams: the peer sent GOAWAY
        self.draining = False  # no new streams: we sent GOAWAY
        self._flush_scheduled = False
        # A server's peer starts with the 24-byte client magic before its first frame.
        self._cutter = FrameCutter(FRAMES_PER_TURN, preface=0 if connection.client else 24)
        connection.start()  # now, so that a client's first stream follows its preface
        self.flush()

    async def run(self, first_bytes: bytes = b"") -> None:
        """Serve the connection until it ends; then every stream still open fails."""
        try:
            data = first_bytes
            while not self.closed:
                if data:
                    await self._receive_all(data)
                data = await self.read()
                if not data:
                    break
        except ProtocolError as error:
            # One line per connection, whatever the peer keeps sending.
            log.warning("HTTP/2 %s: %s (GOAWAY %s)", self.peer_name(), error, error.code.name)
            if error.code == ErrorCode.ENHANCE_YOUR_CALM:
                self.on_flood()
            await self._linger()
        except asyncio.CancelledError:
            self.connection.go_away()
            raise
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()

    async def _receive_all(self, data: bytes) -> None:
        """Feed `data` a few frames at a time, letting other connections run in between."""
        end, size = self._cutter.cut(data), len(data)
        if end == size:
            self._receive(data)
            self.flush()
            return
        start = 0
        while True:
            self._receive(data[start:end])
            self.flush()
            if end == size or self.closed:
                return
            await asyncio.sleep(0)
            start, end = end, self._cutter.cut(data, end)

    async def _linger(self) -> None:
        """Make sure the GOAWAY reaches the peer: write it, end our side, and read what
        the peer still sends until it hangs up (closing with unread data would reset the
        connection, and the GOAWAY with it), for at most LINGER_S."""
        self.close(socket=False)
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
            async with asyncio.timeout(LINGER_S):
                while await self.reader.read(READ_SIZE):
                    pass
        except (ConnectionError, OSError, RuntimeError, TimeoutError):
            pass
        finally:
            self.writer.close()

    def peer_name(self) -> str:
        peer = self.writer.get_extra_info("peername")
        return f"peer {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "peer"

    async def read(self) -> bytes:
        return await self.reader.read(READ_SIZE)

    def flush(self) -> None:
        """Write what the state machine queued, soon: the frames a loop iteration makes
        (a head, its data, window updates, other streams' frames) go in one write."""
        if not self._flush_scheduled and not self.closed:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush_now)

    def flush_now(self) -> None:
        self._flush_scheduled = False
        data = self.connection.data_to_send()
        if data and not self.closed:
            self.writer.write(data)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.close()

    def close(self, *, socket: bool = True) -> None:
        """Close the connection now (the socket too, unless told not to); streams still
        open fail with `LOST`."""
        if self.closed:
            return
        self.flush_now()  # a GOAWAY saying why, say
        self.closed = True
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            stream.fail(LOST, keep_received=True)
            self.on_stream_failed(stream)
        if socket:
            self.writer.close()

    def go_away(self) -> None:
        """Graceful shutdown: no new streams; the connection closes once those open end."""
        if not self.closed and not self.draining:
            self.draining = True
            self.connection.go_away()
            self.flush()
            self._close_if_done()

    def forget(self, stream: Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self.on_stream_gone()
            self._close_if_done()

    def _close_if_done(self) -> None:
        if (self.draining or self.peer_went_away) and not self.streams:
            self.close()

    def _receive(self, data: bytes) -> None:
        for event in self.connection.feed(data):
            if isinstance(event, Data | Trailers | Response):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.deliver(event)
                elif isinstance(event, Data):  # for a stream already forgotten
                    self.connection.consumed(event.stream_id, event.flow_length)
            elif isinstance(event, Request):
                self.on_request(event)
            elif isinstance(event, WindowOpened):
                if event.stream_id:
                    opened = self.streams.get(event.stream_id)
                    if opened is not None:
                        opened.window_opened()
                else:
                    self._all_windows_opened()
            elif isinstance(event, Reset):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.fail(event.code, keep_received=True)
                    self.on_stream_failed(stream)
                    self.forget(stream)
            elif isinstance(event, SettingsChanged):
                self._all_windows_opened()
                self.on_settings_changed()
            elif isinstance(event, GoAway):
                self.peer_went_away = True
                if event.code != ErrorCode.NO_ERROR:
                    self.close()
                else:
                    self._close_if_done()

    def _all_windows_opened(self) -> None:
        for stream in self.streams.values():
            stream.window_opened()

    # --- what the server and client sides add ------------------------------------

    def on_request(self, event: Request) -> None:
        """A peer opened a stream (only a server accepts them)."""
        self.connection.reset(event.stream_id, ErrorCode.REFUSED_STREAM)

    def on_stream_failed(self, stream: Stream) -> None:
        """The peer reset `stream`, or the connection was lost."""

    def on_stream_gone(self) -> None:
        """A stream left `streams`."""

    def on_settings_changed(self) -> None:
        """The peer's settings changed (its stream limit, for one)."""

    def on_flood(self) -> None:
        """The peer sent more than its limits allow and was told to calm down."""
