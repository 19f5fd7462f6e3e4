"""The client side of HTTP/2: one multiplexed connection per endpoint, opened on first
use and again once it went away, within the peer's limit on concurrent streams."""

from __future__ import annotations

import asyncio

from weft_proxy.io.connect import CONNECT_TIMEOUT_S, Opener, plain
from weft_proxy.io.http2_session import Session, Stream, StreamReset
from weft_proxy.protocols.http2 import Connection, ErrorCode, Headers


class ClientSession(Session):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer, Connection(client=True))
        self._slot_freed: asyncio.Future[None] | None = None
        # Until the server's SETTINGS arrive its stream limit is unknown: wait for them.
        self.settled: asyncio.Future[None] = self.loop.create_future()
        self._task = asyncio.create_task(self.run())

    @property
    def usable(self) -> bool:
        return not (self.closed or self.peer_went_away or self.draining)

    async def open(self, headers: Headers, end_stream: bool = False) -> Stream:
        """A new stream carrying request head `headers`; it waits while the peer's limit
        on concurrent streams is reached."""
        while True:
            if not self.usable:
                raise StreamReset(ErrorCode.REFUSED_STREAM)
            stream_id = self.connection.next_stream_id()
            if stream_id is not None:
                break
            if self._slot_freed is None:
                self._slot_freed = self.loop.create_future()
            await asyncio.shield(self._slot_freed)  # shared by every waiter
        stream = Stream(self, stream_id)
        self.streams[stream_id] = stream
        stream.send_headers(headers, end_stream)
        return stream

    def _wake_openers(self) -> None:
        if self._slot_freed is not None:
            self._slot_freed.set_result(None)
            self._slot_freed = None

    def _receive(self, data: bytes) -> None:
        super()._receive(data)
        self._wake_openers()  # an END_STREAM received may have freed a slot

    def on_stream_gone(self) -> None:
        self._wake_openers()

    def on_settings_changed(self) -> None:
        if not self.settled.done():
            self.settled.set_result(None)
        self._wake_openers()

    def close(self, *, socket: bool = True) -> None:
        super().close(socket=socket)
        if not self.settled.done():
            self.settled.set_result(None)  # its openers fail rather than wait
        self._wake_openers()


class Http2Pool:
    """The connection to one endpoint. One that went away (GOAWAY, or closed) finishes
    its streams on its own while new streams go to a new connection."""

    def __init__(self, host: str, port: int, opener: Opener | None = None) -> None:
        self.host = host
        self.port = port
        self._open = opener or plain(host, port)
        self._session: ClientSession | None = None
        self._connecting: asyncio.Task[ClientSession] | None = None
        self._closed = False

    async def open_stream(self, headers: Headers, end_stream: bool = False) -> Stream:
        """Raises OSError or TimeoutError if the endpoint cannot be reached, StreamReset if
        the connection went away meanwhile."""
        session = self._session
        if session is None or not session.usable:
            session = await self._connect()
        return await session.open(headers, end_stream)

    async def _connect(self) -> ClientSession:
        # Requests arriving together share one attempt, which a request cancelled while
        # it waits (its client reset the stream) does not cancel for the others.
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._new_session())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    async def _new_session(self) -> ClientSession:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await self._open()
            session = ClientSession(reader, writer)
            try:
                await session.settled
            except BaseException:
                session.close()
                raise
        return session

    def _connected(self, attempt: asyncio.Task[ClientSession]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._session = attempt.result()
            if self._closed:  # the pool closed meanwhile: the streams it opened may end
                self.close()

    def close(self) -> None:
        self._closed = True
        if self._session is not None:
            self._session.go_away()
            self._session = None
