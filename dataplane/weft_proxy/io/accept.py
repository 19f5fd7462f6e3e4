"""A listener that hands each accepted socket on untouched: the inbound proxy peeks at
the first bytes (mesh TLS for this pod, or not?) before anything reads them, then opens
streams over the socket, with TLS terminated or not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

from weft_proxy.io.connect import CONNECT_TIMEOUT_S, Streams

log = logging.getLogger(__name__)

Handler = Callable[[socket.socket], Awaitable[None]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ACCEPT_RETRY_S = 0.1  # after EMFILE and the like: let connections close first


class SocketServer:
    """Closing it stops accepting; connections already accepted go on (as asyncio's)."""

    def __init__(self, listener: socket.socket, handle: Handler) -> None:
        self.sockets = (listener,)
        self._handle = handle
        self._connections: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.create_task(self._accept())

    @classmethod
    async def start(cls, handle: Handler, host: str, port: int) -> SocketServer:
        listener = socket.create_server((host, port), backlog=1024)
        listener.setblocking(False)
        return cls(listener, handle)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        listener = self.sockets[0]
        while True:
            try:
                connection, _ = await loop.sock_accept(listener)
            except OSError as error:
                log.warning("accept failed: %s", error)
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            connection.setblocking(False)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(self._serve(connection))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await self._handle(connection)
        except Exception:
            log.exception("connection handler failed")
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        self._accepting.cancel()
        self.sockets[0].close()


async def open_accepted(sock: socket.socket, context: ssl.SSLContext | None = None) -> Streams:
    """Streams over an accepted socket; with `context`, once the TLS handshake is done
    (ssl.SSLError, OSError or TimeoutError if it fails)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol,
        sock,
        ssl=context,
        ssl_handshake_timeout=CONNECT_TIMEOUT_S if context is not None else None,
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def ended_quietly(handle: StreamHandler) -> StreamHandler:
    """`handle` for `asyncio.start_server`, ending without a traceback when the process
    exits under it: Python 3.11's streams log a cancelled connection task as an error."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except asyncio.CancelledError:
            writer.close()

    return serve
