"""One proxy: its listeners, detection, and the inbound and outbound stacks, driven by
the latest config snapshot."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable

from weft_api import mesh
from weft_api.config import OutboundService, ProxyConfig
from weft_api.config import Protocol as ConfigProtocol
from weft_api.http2_limits import DEFAULT_LIMITS, FloodLimits
from weft_proxy.admin import Admin
from weft_proxy.identity.credentials import (
    ALPN_H2,
    ALPN_HTTP1,
    ALPN_OPAQUE,
    Credentials,
    MeshTls,
    peer_identity,
)
from weft_proxy.inbound.admission import Admission
from weft_proxy.inbound.http1 import InboundHttp1
from weft_proxy.inbound.http2 import InboundHttp2
from weft_proxy.inbound.tcp import InboundTcp
from weft_proxy.io.accept import SocketServer, ended_quietly, open_accepted
from weft_proxy.io.connect import CONNECT_TIMEOUT_S, describe
from weft_proxy.io.http1_server import Http1Connections, serve_http1
from weft_proxy.io.http2_server import ServerSession, serve_http2
from weft_proxy.io.original_dst import original_destination
from weft_proxy.io.peek import detect_protocol, peek_protocol
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.outbound.http1 import OutboundHttp1
from weft_proxy.outbound.http2 import OutboundHttp2
from weft_proxy.outbound.state import OutboundState
from weft_proxy.outbound.tcp import OutboundTcp
from weft_proxy.policies.authorize import Client
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.penalty import PENALTY_S, PenaltyBox
from weft_proxy.policies.routes import RouteTable
from weft_proxy.policies.split import BackendSplit
from weft_proxy.protocols import transport_header
from weft_proxy.protocols.detect import Protocol
from weft_proxy.tap.hub import TapHub

log = logging.getLogger(__name__)
PROXY_PORTS = frozenset(
    (mesh.PROXY_INBOUND_PORT, mesh.PROXY_OUTBOUND_PORT, mesh.PROXY_ADMIN_PORT, mesh.PROXY_TAP_PORT)
)


def _opaque_port(service: OutboundService, port: int) -> bool:
    return any(p.port == port and p.protocol is ConfigProtocol.OPAQUE for p in service.ports)


class Proxy:
    def __init__(
        self,
        namespace: str,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        metrics: ProxyMetrics | None = None,
        inbound_fallback_port: int | None = None,
        requires_identity: bool = False,
        http2_limits: FloodLimits = DEFAULT_LIMITS,
        flood_penalty_s: float = PENALTY_S,
    ) -> None:
        self.metrics = metrics or ProxyMetrics()
        self.rng = rng or random.Random()
        self.outbound_state = OutboundState(namespace, clock, self.rng)
        self.outbound_http1 = OutboundHttp1(self.outbound_state, self.metrics)
        self.outbound_http2 = OutboundHttp2(self.outbound_state, self.metrics)
        self.outbound_tcp = OutboundTcp(self.outbound_state, self.metrics)
        # Inbound: one admission (policy, labels, tap), and a server per protocol.
        self.admission = Admission(self.metrics, self.outbound_state.tap)
        self.inbound_http1 = InboundHttp1(self.admission, self.metrics, clock)
        self.inbound_http2 = InboundHttp2(self.admission, self.metrics, clock)
        self.inbound_tcp = InboundTcp(self.admission, self.metrics)
        self.h2_sessions: set[ServerSession] = set()  # GOAWAY'd on shutdown
        self.http1_connections = Http1Connections()  # ended between requests on shutdown
        self._connections: set[asyncio.Task[object]] = set()  # waited for by `drained`
        # Without iptables (a test connecting straight to 4143) there is no original
        # destination; inbound traffic then goes to this application port.
        self.inbound_fallback_port = inbound_fallback_port
        self.config: ProxyConfig | None = None
        self.requires_identity = requires_identity
        self.http2_limits = http2_limits  # per client connection, both directions
        self.penalties = PenaltyBox(clock, flood_penalty_s)  # inbound addresses that flooded
        self.stopping = asyncio.Event()
        self.admin = Admin(self.metrics, self._ready, self.shutdown)

    @property
    def tap(self) -> TapHub:
        return self.outbound_state.tap

    @property
    def discover(self) -> Callable[[str], Awaitable[object]] | None:
        return self.outbound_state.discover

    @discover.setter
    def discover(self, subscribe: Callable[[str], Awaitable[object]] | None) -> None:
        self.outbound_state.discover = subscribe

    @property
    def tls(self) -> MeshTls | None:
        """The TLS contexts of the current credentials, for both directions."""
        return self.outbound_state.connector.tls

    def use_credentials(self, credentials: Credentials) -> None:
        """The current leaf from the identity service (renewed before expiry) and trust
        bundle: new connections, both ways, use them; open ones keep theirs."""
        self.outbound_state.connector.tls = MeshTls.of(credentials)

    def _ready(self) -> bool:
        """Config applied, and a certificate if the proxy is to have one."""
        return self.config is not None and (self.tls is not None or not self.requires_identity)

    def apply(self, config: ProxyConfig) -> None:
        """Switch to `config`, or raise ValueError (and keep the current one) if invalid."""
        for service in config.outbound:  # compile everything first: all or nothing
            RouteTable.of(service)
            BackendSplit(service, self.rng)
        self.admission.apply(config)  # the last that may raise
        self.outbound_state.apply(config.outbound)
        self.config = config

    def shutdown(self) -> None:
        """Begin a graceful drain: HTTP/2 clients get GOAWAY, so they stop opening streams
        here while those in flight finish."""
        self.stopping.set()
        for session in list(self.h2_sessions):
            session.go_away()
        self.http1_connections.drain()

    async def drained(self, within: float) -> bool:
        """After `shutdown`: wait up to `within` seconds for the connections being served
        to finish; True if they all did. Long-lived ones (opaque TCP) may not."""
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=within)
        return not self._connections

    def _track(self) -> None:
        """Count the connection this task serves until it ends, for `drained`."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def on_outbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        destination = original_destination(writer.get_extra_info("socket"))
        # Whether a connection is the mesh's is decided per connection, by the Service at
        # its destination: discovered first, so a cluster IP seen for the first time counts.
        service = None
        if destination is not None:
            service = await self.outbound_state.resolve_address(destination)
            if service is not None and _opaque_port(service, destination[1]):
                # Server-first protocols would wait detection out.
                await self.outbound_tcp.forward(reader, writer, b"", destination)
                return
        detected, first = await detect_protocol(reader)
        if detected.protocol is Protocol.HTTP1:
            handle = functools.partial(self.outbound_http1.handle, original_dst=destination)
            fast = functools.partial(self.outbound_http1.serve, destination)
            await serve_http1(reader, writer, first, handle, self.http1_connections, fast)
        elif detected.protocol is Protocol.HTTP2 and (destination is None or service is not None):
            handle2 = functools.partial(self.outbound_http2.handle, original_dst=destination)
            await serve_http2(reader, writer, first, handle2, self.h2_sessions, self.http2_limits)
        elif destination is not None:
            # TLS, opaque bytes, and HTTP/2 leaving the mesh (one connection, one address)
            # pass through, balanced per connection.
            await self.outbound_tcp.forward(reader, writer, first, destination)
        else:
            writer.close()

    async def on_inbound(self, sock: socket.socket) -> None:
        self._track()
        destination = original_destination(sock)
        # None: a meshed client's opaque TCP to this port (its header names the port),
        # or no interception at all.
        port = destination[1] if destination else self.inbound_fallback_port
        address = sock.getpeername()[0]
        plain = Client.of(address)  # as it stands until TLS may name its identity
        penalty = self.penalties.wait(str(plain.address))
        if penalty:
            await asyncio.sleep(penalty)  # it flooded a connection a moment ago
        if port is not None and self.admission.opaque(port):
            reader, writer = await open_accepted(sock)
            await self.inbound_tcp.forward(reader, writer, b"", plain, port)
            return
        detected = await peek_protocol(sock)
        tls = self.tls
        if detected.protocol is Protocol.TLS and tls is not None and detected.sni == tls.identity:
            await self._terminate_tls(sock, address, port, tls)
        elif port is None:
            sock.close()
        else:  # anything else, TLS for another name included, goes on as it came
            reader, writer = await open_accepted(sock)
            await self._serve_inbound(reader, writer, detected.protocol, plain, port)

    async def _terminate_tls(
        self, sock: socket.socket, address: str, port: int | None, tls: MeshTls
    ) -> None:
        """Mesh TLS addressed to this pod's identity: terminate it, learn the client's
        identity, and serve what ALPN says it carries."""
        try:
            reader, writer = await open_accepted(sock, tls.server)
        except (OSError, TimeoutError) as error:  # ssl.SSLError included
            log.warning("refused mTLS from %s: %s", address, describe(error))
            return
        ssl_object = writer.get_extra_info("ssl_object")
        client = Client.of(address, tls=True, identity=peer_identity(ssl_object))
        alpn = ssl_object.selected_alpn_protocol()
        if alpn == ALPN_OPAQUE:
            port = await self._transport_header(reader, address)
            if port is None:
                writer.transport.abort()
                return
            await self.inbound_tcp.forward(reader, writer, b"", client, port)
        elif port is None:
            writer.transport.abort()
        elif alpn in (ALPN_H2, ALPN_HTTP1):
            protocol = Protocol.HTTP2 if alpn == ALPN_H2 else Protocol.HTTP1
            await self._serve_inbound(reader, writer, protocol, client, port)
        else:
            detected, first = await detect_protocol(reader)
            await self._serve_inbound(reader, writer, detected.protocol, client, port, first)

    async def _transport_header(self, reader: asyncio.StreamReader, address: str) -> int | None:
        """The application port a meshed client's opaque TCP is for (None: refused)."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                port = transport_header.decode(await reader.readexactly(transport_header.SIZE))
        except (transport_header.BadHeader, OSError, EOFError, TimeoutError) as error:
            log.warning("opaque mTLS from %s without a valid header: %s", address, describe(error))
            return None
        if port in PROXY_PORTS:  # the proxy's own listeners: a loop, not a target
            log.warning("opaque mTLS from %s names proxy port %d", address, port)
            return None
        return port

    async def _serve_inbound(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: Protocol,
        client: Client,
        port: int,
        first: bytes = b"",
    ) -> None:
        if protocol is Protocol.HTTP1:
            handle = functools.partial(self.inbound_http1.handle, client=client, port=port)
            fast = functools.partial(self.inbound_http1.serve, client, port)
            await serve_http1(reader, writer, first, handle, self.http1_connections, fast)
        elif protocol is Protocol.HTTP2:
            handle2 = functools.partial(self.inbound_http2.handle, client=client, port=port)
            flooded = functools.partial(self.penalties.punish, str(client.address))
            await serve_http2(
                reader, writer, first, handle2, self.h2_sessions, self.http2_limits, flooded
            )
        else:
            await self.inbound_tcp.forward(reader, writer, first, client, port)

    async def listen(
        self, host: str, inbound_port: int, outbound_port: int, admin_port: int
    ) -> list[asyncio.Server | SocketServer]:
        return [
            await SocketServer.start(self.on_inbound, host, inbound_port),
            await asyncio.start_server(ended_quietly(self.on_outbound), host, outbound_port),
            await asyncio.start_server(ended_quietly(self.admin.serve), host, admin_port),
        ]
