"""The server side of HTTP/2: one session per client connection, each request stream
handled in a task of its own, cancelled if the client resets the stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from weft_api.http2_limits import DEFAULT_LIMITS, FloodLimits
from weft_proxy.errors import h2_error_response
from weft_proxy.io.http2_session import Session, Stream, StreamReset
from weft_proxy.protocols.grpc import is_grpc
from weft_proxy.protocols.http2 import Connection, ErrorCode, Request

IDLE_TIMEOUT_S = 90.0  # with no stream open; then GOAWAY, as HTTP/1 closes idle connections

Handler = Callable[[Stream], Awaitable[None]]
"""Answers one request stream; the stream is closed (reset if unfinished) after it."""

log = logging.getLogger(__name__)


class ServerSession(Session):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handle: Handler,
        limits: FloodLimits = DEFAULT_LIMITS,
        on_flood: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(reader, writer, Connection(client=False, limits=limits))
        self._handle = handle
        self._on_flood = on_flood
        self._max_handlers = limits.max_handlers
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def read(self) -> bytes:
        if self.streams:
            return await super().read()
        try:
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                return await super().read()
        except TimeoutError:
            self.go_away()
            return b""

    def on_request(self, event: Request) -> None:
        if len(self._tasks) >= self._max_handlers:
            # Reset streams whose handlers have not finished yet count too: a peer that
            # opens and resets streams faster than they unwind is flooding.
            self.connection.calm_down(f"more than {self._max_handlers} requests in flight")
        stream = Stream(self, event.stream_id, event.headers, event.end_stream)
        self.streams[event.stream_id] = stream
        task = asyncio.create_task(self._serve(stream))
        self._tasks[event.stream_id] = task
        task.add_done_callback(lambda _: self._handled(stream))

    async def _serve(self, stream: Stream) -> None:
        try:
            await self._handle(stream)
        except (StreamReset, asyncio.CancelledError):
            pass  # the client reset the stream, or the connection is gone
        except Exception:
            log.exception("HTTP/2 handler failed on stream %d", stream.id)

    def _handled(self, stream: Stream) -> None:
        # Here and not in _serve's finally: a task cancelled before it started never
        # runs that, and its stream must still hand back the window its data took.
        self._tasks.pop(stream.id, None)
        stream.close(ErrorCode.INTERNAL_ERROR)

    def on_flood(self) -> None:
        if self._on_flood is not None:
            self._on_flood()

    def on_stream_failed(self, stream: Stream) -> None:
        # The client gave up on it: so does whatever serves it (an upstream stream, say).
        task = self._tasks.get(stream.id)
        if task is not None:
            task.cancel()


async def serve_http2(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    first_bytes: bytes,
    handle: Handler,
    sessions: set[ServerSession] | None = None,
    limits: FloodLimits = DEFAULT_LIMITS,
    on_flood: Callable[[], None] | None = None,
) -> None:
    """Serve a connection whose first bytes (the preface at least) were read already;
    `sessions` holds it while it runs, so a proxy shutting down can GOAWAY it.
    `on_flood` is told when the client exceeded `limits` (it was sent GOAWAY)."""
    session = ServerSession(reader, writer, handle, limits, on_flood)
    if sessions is not None:
        sessions.add(session)
    try:
        await session.run(first_bytes)
    finally:
        if sessions is not None:
            sessions.discard(session)


async def answer_error(stream: Stream, status: int, message: str) -> None:
    """Answer a request with a proxy error (a gRPC one with its gRPC status), or, once
    a response head is out, cut the response short with RST_STREAM."""
    if stream.headers_sent:
        stream.reset(ErrorCode.INTERNAL_ERROR)
        return
    head, body = h2_error_response(status, message, is_grpc=is_grpc(stream.headers))
    stream.send_headers(head, end_stream=not body)
    if body:
        await stream.send_data(body, end_stream=True)
