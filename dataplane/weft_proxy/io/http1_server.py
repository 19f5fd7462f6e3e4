"""The server side of an HTTP/1 connection: requests in order, each handed to a handler
with a body that streams from the client as the handler reads it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from weft_proxy.errors import error_response
from weft_proxy.io.http1_body import request_body
from weft_proxy.io.http1_connection import Http1Connection
from weft_proxy.protocols.http1 import (
    Body,
    EndOfMessage,
    Event,
    Headers,
    ProtocolError,
    RequestHead,
    RequestReader,
)

log = logging.getLogger(__name__)

# Between requests: a client must send its next request head within this; a slow-loris
# client trickling one in gets a 408 and the connection closed.
IDLE_TIMEOUT_S = 90.0


class ClientStream(Http1Connection):
    """One client connection: its requests' events as they arrive, and its writer.

    Requests are served in the connection's own callbacks where the listener's `fast`
    handler can (most requests: no task wakes, no coroutine is made), else by the
    serving task (`serve_http1`). The serving loop's states: parked (the task waits for
    whatever the callbacks leave to it), in callbacks (one request is served there; it
    owns the connection until `served`), handed off (a request begun in callbacks goes
    on in the task: `hand_off`), ended.
    """

    __slots__ = (
        "_in_serve",
        "_parser",
        "ended",
        "fast",
        "handoff",
        "idle",
        "in_callbacks",
        "parked",
        "trailers",
    )

    def __init__(self) -> None:
        super().__init__()
        self._parser = RequestReader()
        self._feed = self._parser.feed
        self.trailers: Headers | None = None  # of the body `body()` read last
        self.fast: FastHandler | None = None
        self.idle: _IdleTimer | None = None  # set by the serving loop
        self.in_callbacks = False  # a request is being served in callbacks
        self.handoff: Callable[[], Awaitable[bool]] | None = None  # for the task to go on with
        self.parked = False  # the serving task waits for an arrival
        self.ended = False  # no more requests on this connection
        self._in_serve = False  # `serve_parsed` runs (a request served at once returns to it)

    # --- serving in callbacks --------------------------------------------------------------
    def _wake(self) -> None:
        if self.in_callbacks:
            return  # the request served in callbacks looks at what came once it is done
        if self.parked and self.fast is not None and not self._in_serve:
            self.serve_parsed()
            if self.in_callbacks or not self._for_the_task():
                return
        Http1Connection._wake(self)

    def _for_the_task(self) -> bool:
        """Whether the parked serving task has something to do."""
        return bool(
            self.events
            or self.eof
            or self.failed is not None
            or self.handoff is not None
            or self.ended
            or self._paused_reading
            or (self.idle is not None and self.idle.draining)
        )

    def serve_parsed(self) -> None:
        """Serve the requests parsed so far in callbacks, one at a time, while `fast`
        takes them; what it declines is left to the serving task."""
        fast, events, idle = self.fast, self.events, self.idle
        if fast is None or idle is None:
            return
        self._in_serve = True
        try:
            while events and not (
                self.in_callbacks or self.ended or idle.draining or self.handoff is not None
            ):
                head = events.popleft()
                if type(head) is not RequestHead:  # a request's end, or a body not read
                    if type(head) is Body:
                        self.took(head)
                    continue
                idle.idle_since = None
                self.in_callbacks = True
                try:
                    taken = fast(head, self)
                except Exception:  # a fault: the connection ends, as a failed task's would
                    log.exception("serving a request in callbacks")
                    self.served(False)
                    break
                if not taken:
                    self.in_callbacks = False
                    events.appendleft(head)
                    break
        finally:
            self._in_serve = False

    def served(self, keep_alive: bool) -> None:
        """The request served in callbacks is over: the next may begin (`keep_alive`),
        or the connection ends."""
        self.in_callbacks = False
        idle = self.idle
        if idle is not None:
            idle.idle_since = idle.loop_time()
            keep_alive = keep_alive and not idle.draining
        if not keep_alive:
            self.ended = True
            self.close()
        if self._in_serve:
            return  # (it goes on with what is parsed)
        if self._for_the_task():
            self._wake()

    def hand_off(self, rest: Callable[[], Awaitable[bool]]) -> None:
        """The request served in callbacks goes on in the serving task: `rest` finishes
        it there and says, as a handler does, whether the connection may carry another."""
        self.in_callbacks = False
        self.handoff = rest
        if not self._in_serve:
            Http1Connection._wake(self)

    def refuse(self, response: bytes, keep_alive: bool) -> None:
        """Answer the request served in callbacks with the proxy's own `response`."""
        if self.is_closing():
            self.served(False)
            return
        self.write(response)
        if self.must_drain:
            self.hand_off(functools.partial(self.drained, keep_alive))
        else:
            self.served(keep_alive)

    async def drained(self, keep_alive: bool) -> bool:
        """For a hand-off once the answer is written: its drain, then `keep_alive`."""
        await self.drain()
        return keep_alive

    async def next_event(self) -> Event | None:
        """The next event; None once the client has closed (after every event before
        its close); ProtocolError once the bytes after the last event break HTTP/1."""
        events = self.events
        while not events:
            failed = self.failed
            if failed is not None:  # the messages before it have all been served
                raise failed
            if self.eof:
                return None
            await self.arrival()
        event = events.popleft()
        if type(event) is Body:
            self.took(event)
        return event

    def body(self) -> AsyncIterator[bytes]:
        """The current request's body, up to its end; its trailers then in `trailers`."""
        return request_body(self)

    def buffered_body(self) -> bytes | None:
        """The current request's whole body if all of it has arrived already (and has no
        trailers), taken from the stream; else None. Sending it needs no task."""
        parts = []
        for event in self.events:
            if isinstance(event, Body):
                parts.append(event.data)
            elif isinstance(event, EndOfMessage):
                break
            else:
                return None
        else:
            return None
        for _ in range(len(parts) + 1):
            self.took(self.events.popleft())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def draining(self) -> bool:
        """The proxy is shutting down: this connection ends after the current request."""
        return self.idle is not None and self.idle.draining

    def took_end(self) -> None:
        """The current request has no body: its end, if parsed, is taken."""
        events = self.events
        if events and type(events[0]) is EndOfMessage:
            events.popleft()

    @property
    def mid_head(self) -> bool:
        """A request head has begun to arrive and is not complete."""
        return self._parser.mid_head

    def tunnel_bytes(self) -> bytes:
        """The server agreed to switch protocols: what the client sent after its
        request, for the tunnel."""
        self.events.clear()  # the switching request's end
        self._unread = 0
        return self._parser.switched()

    def switch_refused(self) -> None:
        """The server did not switch protocols: HTTP/1 goes on after the request."""
        self.events.extend(self._parser.refused())


# The handler answers one request (its body and answer go through the stream); it
# returns whether the connection may serve another.
Handler = Callable[[RequestHead, ClientStream], Awaitable[bool]]
# A handler in callbacks: False declines the request (nothing of it done or taken: the
# task's handler serves it); True takes it, and it ends in `served` or `hand_off`.
FastHandler = Callable[[RequestHead, ClientStream], bool]


class _IdleTimer:
    """Ends a connection left between requests for longer than IDLE_TIMEOUT_S, or at once
    when a drain begins while it waits for one.

    One timer per connection, re-armed lazily when it fires: far cheaper than a timeout
    around every wait for a request (a third of a small request's cost).
    """

    __slots__ = (
        "_handle",
        "_loop",
        "_stream",
        "_timeout",
        "_writer",
        "draining",
        "idle_since",
        "loop_time",
    )

    def __init__(self, stream: ClientStream) -> None:
        self._loop = asyncio.get_running_loop()
        self.loop_time = self._loop.time
        self._stream = stream
        self._writer = stream
        self._timeout = IDLE_TIMEOUT_S
        # Set by the serving loop: when the wait for the next request began; None while
        # a request is served.
        self.idle_since: float | None = self._loop.time()
        self.draining = False
        self._handle = self._loop.call_later(self._timeout, self._check)

    def _check(self) -> None:
        since = self.idle_since
        remaining = self._timeout if since is None else since + self._timeout - self._loop.time()
        if remaining > 0:
            self._handle = self._loop.call_later(remaining, self._check)
            return
        if self._stream.mid_head:
            self._writer.write(error_response(408, "request head not received in time", close=True))
        self._writer.close()  # the reader sees the end, and the serving loop with it

    def drain(self) -> None:
        """End the connection once it is between requests: now, if it is."""
        self.draining = True
        if self.idle_since is not None and not self._stream.mid_head:
            self._writer.close()

    def cancel(self) -> None:
        self._handle.cancel()


class Http1Connections:
    """The HTTP/1 client connections being served, so that a graceful shutdown can end
    each one between requests: the request in flight finishes, no new one starts."""

    def __init__(self) -> None:
        self._open: set[_IdleTimer] = set()
        self.draining = False

    def drain(self) -> None:
        self.draining = True
        for connection in list(self._open):
            connection.drain()

    def add(self, connection: _IdleTimer) -> None:
        self._open.add(connection)
        if self.draining:
            connection.drain()

    def discard(self, connection: _IdleTimer) -> None:
        self._open.discard(connection)


async def serve_http1(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    first_bytes: bytes,
    handle: Handler,
    connections: Http1Connections | None = None,
    fast: FastHandler | None = None,
) -> None:
    """Serve one client connection: each request in callbacks by `fast` where it takes
    it, else by `handle` in this task."""
    stream = ClientStream.adopt(reader, writer, first_bytes)
    idle = _IdleTimer(stream)
    stream.idle = idle
    stream.fast = fast
    if connections is not None:
        connections.add(idle)
    try:
        time = idle.loop_time
        events = stream.events
        while not (idle.draining or stream.ended):
            rest = stream.handoff
            if rest is not None:  # a request begun in callbacks goes on here
                stream.handoff = None
                if not await rest():
                    break
                idle.idle_since = time()
                continue
            if not stream.in_callbacks and events:
                event = events[0]
                if type(event) is not RequestHead:
                    events.popleft()
                    if type(event) is Body:
                        stream.took(event)
                    continue  # the rest of a body the handler chose not to read
                if fast is not None:
                    stream.serve_parsed()
                    if stream.in_callbacks or not events or events[0] is not event:
                        continue  # taken (and maybe done): see what is left
                events.popleft()
                idle.idle_since = None  # serving
                if not await handle(event, stream):
                    break
                idle.idle_since = time()  # waiting for the next request
                continue
            if not stream.in_callbacks:
                if stream.failed is not None:  # the requests before it have been served
                    raise stream.failed
                if stream.eof:
                    break
            stream.parked = True
            try:
                await stream.arrival()
            finally:
                stream.parked = False
    except ProtocolError as error:
        if not stream.is_closing():
            stream.write(error_response(error.status, str(error), close=True))
    except (ConnectionError, OSError, TimeoutError):
        pass
    finally:
        idle.cancel()
        if connections is not None:
            connections.discard(idle)
        stream.close()
