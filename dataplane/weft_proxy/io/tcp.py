"""Byte forwarding between two connections, with half-close and back-pressure."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from weft_proxy.metrics import ProxyMetrics, Target

READ_SIZE = 64 * 1024


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, not a FIN: the peer learns at once that it was refused."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counted: Callable[[int], None] | None = None,
) -> None:
    """Copy until EOF, then half-close the other side so it sees the EOF too.

    `drain` after each write is the back-pressure: a slow receiver stops us reading.
    """
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            if counted is not None:
                counted(len(data))
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            # TLS: Python's ssl transport cannot half-close, and a connection left open
            # one way would never end if the peer waits for our EOF: close it (after
            # what is buffered). A half-closing client gets no answer over mTLS.
            writer.close()
    except (ConnectionError, OSError):
        writer.transport.abort()  # a reset on one side resets the other


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    a_to_b: Callable[[int], None] | None = None,
    b_to_a: Callable[[int], None] | None = None,
) -> None:
    """Forward both ways until both directions ended, then close both connections."""
    try:
        await asyncio.gather(pump(a[0], b[1], a_to_b), pump(b[0], a[1], b_to_a))
    finally:
        for _, writer in (a, b):
            writer.close()
        for _, writer in (a, b):
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def forward_counted(
    metrics: ProxyMetrics,
    target: Target,
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    first_bytes: bytes,
) -> None:
    """Splice the two connections, counting them in Linkerd's tcp_* metrics."""
    values = (*target.values(), "dst")
    metrics.tcp_open_total.labels(*values).inc()
    open_now = metrics.tcp_open_connections.labels(*values)
    open_now.inc()
    written = metrics.tcp_write_bytes_total.labels(*values)
    read = metrics.tcp_read_bytes_total.labels(*values)
    if first_bytes:
        upstream[1].write(first_bytes)
        written.inc(len(first_bytes))
    try:
        await splice(client, upstream, written.inc, read.inc)
    finally:
        open_now.dec()
        metrics.tcp_close_total.labels(*values).inc()
