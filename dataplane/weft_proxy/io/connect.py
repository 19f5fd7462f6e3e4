"""Opening connections to endpoints: mutual TLS to a meshed endpoint (the peer must
prove the identity discovery names for it), plain TCP to any other."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from weft_api.mesh import PROXY_INBOUND_PORT
from weft_proxy.identity.credentials import MeshTls

log = logging.getLogger(__name__)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Opener = Callable[[], Awaitable[Streams]]
"""Opens one more connection to a fixed endpoint (what a connection pool holds)."""

CONNECT_TIMEOUT_S = 1.0


class NoIdentityYet(ConnectionError):
    """A meshed endpoint before this proxy has a certificate: meshed traffic is never
    sent in plain text, so it waits (fails) until the identity service answers."""


def describe(error: BaseException) -> str:
    """An exception for a log line: some (resets, timeouts) have no message of their own."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def plain(host: str, port: int) -> Opener:
    return functools.partial(asyncio.open_connection, host, port)


class Connector:
    """Opens connections with the proxy's current credentials (`tls`, replaced at each
    renewal; None until the first certificate arrives)."""

    def __init__(self, peer_port: int = PROXY_INBOUND_PORT) -> None:
        self.tls: MeshTls | None = None
        self.peer_port = peer_port  # where meshed pods' proxies listen (for opaque TCP)

    def opener(self, host: str, port: int, identity: str | None, alpn: str) -> Opener:
        if identity is None:
            return plain(host, port)
        return functools.partial(self.open_tls, host, port, identity, alpn)

    async def open_tls(self, host: str, port: int, identity: str, alpn: str) -> Streams:
        tls = self.tls
        if tls is None:
            raise NoIdentityYet(f"no certificate yet to reach {identity} at {host}:{port}")
        try:
            return await asyncio.open_connection(
                host,
                port,
                ssl=tls.clients[alpn],
                server_hostname=identity,
                ssl_handshake_timeout=CONNECT_TIMEOUT_S,
            )
        except OSError as error:  # ssl.SSLError included: say why the peer was refused
            log.warning("mTLS to %s at %s:%d failed: %s", identity, host, port, describe(error))
            raise
