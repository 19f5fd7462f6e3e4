"""Plain HTTP/2 peers for the proxy's socket tests, written straight on h2's state machine
(none of the proxy's own session code): a server whose handlers see whole requests or
stream them, and a client that can send big bodies, trailers and RST_STREAM."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

Headers = list[tuple[bytes, bytes]]


def header(headers: Headers, name: bytes) -> bytes | None:
    return next((v for k, v in headers if k == name), None)


@dataclass
class Message:
    """A request or response as one side of a stream received it."""

    headers: Headers = field(default_factory=list)
    body: bytes = b""
    trailers: Headers | None = None
    reset: int | None = None  # RST_STREAM code, if the stream was reset

    def header(self, name: bytes) -> bytes | None:
        return header(self.headers, name)


class Peer:
    """One HTTP/2 connection over asyncio streams, either side."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, client: bool
    ) -> None:
        config = h2.config.H2Configuration(client_side=client, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.reader, self.writer = reader, writer
        self.events: dict[int, asyncio.Queue[h2.events.Event]] = collections.defaultdict(
            asyncio.Queue
        )
        self.window = asyncio.Event()
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = asyncio.Event()
        self.on_request: Callable[[int], None] | None = None
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.writer.write(data)

    async def run(self) -> None:
        """Read until the connection ends (the preface is sent at once, on creation)."""
        try:
            while data := await self.reader.read(65536):
                for event in self.h2.receive_data(data):
                    self._dispatch(event)
                self.flush()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()
            self.window.set()
            for queue in self.events.values():
                queue.put_nowait(h2.events.ConnectionTerminated())

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            self.window.set()
            for queue in self.events.values():
                queue.put_nowait(event)
        elif (stream_id := getattr(event, "stream_id", None)) is not None:
            if isinstance(event, h2.events.RequestReceived) and self.on_request is not None:
                self.on_request(stream_id)
            self.events[stream_id].put_nowait(event)

    async def send_data(self, stream_id: int, data: bytes, end_stream: bool = True) -> None:
        view = memoryview(data)
        while view:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                self.window.clear()
                await self.window.wait()
                if self.closed.is_set() or self.goaway is not None:
                    raise ConnectionError("connection went away")
                continue
            part, view = view[:window], view[window:]
            self.h2.send_data(stream_id, bytes(part), end_stream=end_stream and not view)
            self.flush()
            await self.writer.drain()
        if not data and end_stream:
            self.h2.end_stream(stream_id)
            self.flush()

    async def receive(self, stream_id: int, message: Message) -> Message:
        """Collect a stream's message (head, body, trailers) until it ends."""
        queue = self.events[stream_id]
        while True:
            event = await queue.get()
            if isinstance(event, h2.events.RequestReceived | h2.events.ResponseReceived):
                message.headers = list(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                message.body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                self.flush()
            elif isinstance(event, h2.events.TrailersReceived):
                message.trailers = list(event.headers)
            elif isinstance(event, h2.events.StreamReset):
                message.reset = int(event.error_code)
                return message
            elif isinstance(event, h2.events.ConnectionTerminated):
                message.reset = -1
                return message
            if isinstance(event, h2.events.StreamEnded):
                return message

    def close(self) -> None:
        self.writer.close()


Reply = tuple[Headers, bytes, Headers | None]  # response head, body, trailers
ServerHandler = Callable[[Message, "ServerStream"], Awaitable[Reply | None]]


@dataclass
class ServerStream:
    """What a handler may do besides replying: answer in parts, or watch for a reset."""

    peer: Peer
    stream_id: int

    async def send_head(self, headers: Headers) -> None:
        self.peer.h2.send_headers(self.stream_id, headers)
        self.peer.flush()

    async def send(self, data: bytes, end_stream: bool = False) -> None:
        await self.peer.send_data(self.stream_id, data, end_stream)


class H2Server:
    """An h2c (prior knowledge) server on loopback; records what it saw."""

    def __init__(self, handler: ServerHandler, max_concurrent_streams: int = 100) -> None:
        self.handler = handler
        self.max_concurrent_streams = max_concurrent_streams
        self.requests: list[Message] = []
        self.peers: list[Peer] = []
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer, client=False)
        peer.h2.update_settings(
            {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams}
        )
        peer.flush()
        self.peers.append(peer)

        def spawn(stream_id: int) -> None:
            task = asyncio.create_task(self._stream(peer, stream_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        peer.on_request = spawn
        await peer.run()

    async def _stream(self, peer: Peer, stream_id: int) -> None:
        request = Message()
        self.requests.append(request)
        with contextlib.suppress(ConnectionError, h2.exceptions.H2Error):
            reply = await self.handler(request, ServerStream(peer, stream_id))
            if reply is None:
                return
            head, body, trailers = reply
            peer.h2.send_headers(stream_id, head, end_stream=not body and trailers is None)
            peer.flush()
            if body:
                await peer.send_data(stream_id, body, end_stream=trailers is None)
            if trailers is not None:
                peer.h2.send_headers(stream_id, trailers, end_stream=True)
                peer.flush()

    def go_away(self) -> None:
        for peer in self.peers:
            with contextlib.suppress(h2.exceptions.H2Error):
                peer.h2.close_connection()
                peer.flush()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for peer in self.peers:
            peer.close()
        for task in list(self._tasks):
            task.cancel()


async def read_request(request: Message, stream: ServerStream) -> Message:
    """A handler's first step: the whole request."""
    return await stream.peer.receive(stream.stream_id, request)


class H2Client:
    """An h2c client of one connection."""

    def __init__(self, peer: Peer, task: asyncio.Task[None]) -> None:
        self.peer = peer
        self._task = task

    @classmethod
    async def connect(cls, port: int) -> H2Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = Peer(reader, writer, client=True)
        return cls(peer, asyncio.create_task(peer.run()))

    def start(self, headers: Headers, *, end_stream: bool = False) -> int:
        stream_id = self.peer.h2.get_next_available_stream_id()
        self.peer.h2.send_headers(stream_id, headers, end_stream=end_stream)
        self.peer.flush()
        return stream_id

    async def request(
        self,
        headers: Headers,
        body: bytes = b"",
        trailers: Headers | None = None,
    ) -> Message:
        stream_id = self.start(headers, end_stream=not body and trailers is None)
        if body:
            await self.peer.send_data(stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            self.peer.h2.send_headers(stream_id, trailers, end_stream=True)
            self.peer.flush()
        return await self.peer.receive(stream_id, Message())

    def reset(self, stream_id: int, code: int = 8) -> None:
        self.peer.h2.reset_stream(stream_id, code)
        self.peer.flush()

    async def close(self) -> None:
        self.peer.close()
        with contextlib.suppress(BaseException):
            await self._task


def request_head(
    authority: str, path: str = "/", method: str = "GET", extra: Headers | None = None
) -> Headers:
    return [
        (b":method", method.encode()),
        (b":scheme", b"http"),
        (b":authority", authority.encode()),
        (b":path", path.encode()),
        *(extra or []),
    ]


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
