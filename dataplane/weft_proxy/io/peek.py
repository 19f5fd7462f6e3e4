"""Read a connection's first bytes until detection decides, without losing them."""

from __future__ import annotations

import asyncio
import socket

from weft_proxy.protocols.detect import (
    DETECT_TIMEOUT_S,
    MAX_DETECT_BYTES,
    Detected,
    NeedMore,
    detect,
)

PEEK_PAUSE_MIN_S = 0.001
PEEK_PAUSE_MAX_S = 0.05


async def detect_protocol(
    reader: asyncio.StreamReader, patience: float = DETECT_TIMEOUT_S
) -> tuple[Detected, bytes]:
    """The protocol of the connection and every byte read to decide it.

    After `patience` seconds or at EOF the decision is taken with what arrived (`final`), so a
    server-first protocol falls back to opaque TCP after `patience`.
    """
    buffer = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        outcome = detect(buffer)
        if isinstance(outcome, Detected):
            return outcome, buffer
        assert isinstance(outcome, NeedMore)
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(outcome.at_least - len(buffer)), remaining)
        except TimeoutError:
            data = b""
        if not data:
            return _final(buffer), buffer
        buffer += data


async def peek_protocol(sock: socket.socket, patience: float = DETECT_TIMEOUT_S) -> Detected:
    """The protocol of an accepted socket's connection, from its first bytes left unread
    (MSG_PEEK), so that TLS can still be terminated on it.

    A peek cannot wait for more bytes than are buffered: while a partial ClientHello or
    request line sits there, it polls with a growing pause (they rarely come in pieces).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause = PEEK_PAUSE_MIN_S
    data = b""
    while True:
        try:
            data = sock.recv(MAX_DETECT_BYTES, socket.MSG_PEEK)
            if not data:  # closed before sending anything
                return _final(data)
            outcome = detect(data)
            if isinstance(outcome, Detected):
                return outcome
        except BlockingIOError:
            pass
        except OSError:  # reset
            return _final(data)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return _final(data)
        if data:
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, PEEK_PAUSE_MAX_S)
        else:
            await _readable(loop, sock, remaining)


def _final(data: bytes) -> Detected:
    final = detect(data, final=True)
    assert isinstance(final, Detected)
    return final


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, within: float) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await asyncio.wait_for(ready, within)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(sock.fileno())
