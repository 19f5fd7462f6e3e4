"""Sockets opened inside a pod's network namespace, for probes run from the agent.

A socket belongs to the namespace it was created in, whichever thread uses it later.
setns(2) switches only the calling thread, so each socket is made on a fresh thread
that enters the pod's namespace and ends there: no thread of ours is left inside it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace: Path) -> None:
    fd = os.open(namespace, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({namespace}): {os.strerror(error)}")
    finally:
        os.close(fd)


async def socket_in(namespace: Path, family: int = socket.AF_INET) -> socket.socket:
    """A non-blocking TCP socket of `namespace` (a /run/netns/<name> file)."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[socket.socket] = loop.create_future()

    def deliver(sock: socket.socket | None, error: OSError | None) -> None:
        if made.done():  # the probe was cancelled meanwhile
            if sock is not None:
                sock.close()
        elif sock is not None:
            made.set_result(sock)
        else:
            made.set_exception(error or OSError("no socket"))

    def make() -> None:
        try:
            _enter(namespace)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
        except OSError as error:
            loop.call_soon_threadsafe(deliver, None, error)
        else:
            loop.call_soon_threadsafe(deliver, sock, None)

    threading.Thread(target=make, name="netns-socket", daemon=True).start()
    return await made
