"""One proxy: its listeners, detection, and the inbound and outbound stacks, driven by
the latest config snapshot."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable

from weft_api.config import Protocol as ConfigProtocol
from weft_api.config import ProxyConfig
from weft_proxy.admin import Admin
from weft_proxy.identity.credentials import Credentials
from weft_proxy.inbound.forward import Inbound
from weft_proxy.inbound.http2 import InboundHttp2
from weft_proxy.io.http1_server import serve_http1
from weft_proxy.io.http2_server import ServerSession, serve_http2
from weft_proxy.io.original_dst import original_destination
from weft_proxy.io.peek import detect_protocol
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.outbound.http1 import OutboundHttp1
from weft_proxy.outbound.http2 import OutboundHttp2
from weft_proxy.outbound.state import OutboundState
from weft_proxy.outbound.tcp import OutboundTcp
from weft_proxy.policies.authorize import Client, InboundPolicy
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.routes import RouteTable
from weft_proxy.policies.split import BackendSplit
from weft_proxy.protocols.detect import Protocol
from weft_proxy.tap.hub import TapHub


class Proxy:
    def __init__(
        self,
        namespace: str,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        metrics: ProxyMetrics | None = None,
        inbound_fallback_port: int | None = None,
    ) -> None:
        self.metrics = metrics or ProxyMetrics()
        self.rng = rng or random.Random()
        self.outbound_state = OutboundState(namespace, clock, self.rng)
        self.outbound_http1 = OutboundHttp1(self.outbound_state, self.metrics)
        self.outbound_http2 = OutboundHttp2(self.outbound_state, self.metrics)
        self.outbound_tcp = OutboundTcp(self.outbound_state, self.metrics)
        self.inbound = Inbound(self.metrics, clock, self.outbound_state.tap)
        self.inbound_http2 = InboundHttp2(self.inbound)
        self.h2_sessions: set[ServerSession] = set()  # GOAWAY'd on shutdown
        # Without iptables (a test connecting straight to 4143) there is no original
        # destination; inbound traffic then goes to this application port.
        self.inbound_fallback_port = inbound_fallback_port
        self.config: ProxyConfig | None = None
        self.credentials: Credentials | None = None
        self.stopping = asyncio.Event()
        self.admin = Admin(self.metrics, lambda: self.config is not None, self.shutdown)

    @property
    def tap(self) -> TapHub:
        return self.outbound_state.tap

    @property
    def discover(self) -> Callable[[str], Awaitable[object]] | None:
        return self.outbound_state.discover

    @discover.setter
    def discover(self, subscribe: Callable[[str], Awaitable[object]] | None) -> None:
        self.outbound_state.discover = subscribe

    def use_credentials(self, credentials: Credentials) -> None:
        """The current leaf from the identity service (renewed before expiry)."""
        self.credentials = credentials

    def apply(self, config: ProxyConfig) -> None:
        """Switch to `config`, or raise ValueError (and keep the current one) if invalid."""
        for service in config.outbound:  # compile everything first: all or nothing
            RouteTable.of(service)
            BackendSplit(service, self.rng)
        InboundPolicy.of(config)
        self.outbound_state.apply(config.outbound)
        self.inbound.apply(config)
        self.config = config

    def shutdown(self) -> None:
        """Begin a graceful drain: HTTP/2 clients get GOAWAY, so they stop opening streams
        here while those in flight finish."""
        self.stopping.set()
        for session in list(self.h2_sessions):
            session.go_away()

    def _opaque_outbound(self, destination: tuple[str, int] | None) -> bool:
        """Ports marked opaque skip detection: server-first protocols would wait it out."""
        if destination is None:
            return False
        service = self.outbound_state.destinations.by_address(*destination)
        return service is not None and any(
            p.port == destination[1] and p.protocol is ConfigProtocol.OPAQUE for p in service.ports
        )

    def _opaque_inbound(self, port: int) -> bool:
        policy = self.inbound.policy
        return (
            policy is not None and policy.server_for(port).server.protocol is ConfigProtocol.OPAQUE
        )

    async def on_outbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        destination = original_destination(writer.get_extra_info("socket"))
        if destination is not None and self._opaque_outbound(destination):
            await self.outbound_tcp.forward(reader, writer, b"", destination)
            return
        detected, first = await detect_protocol(reader)
        if detected.protocol is Protocol.HTTP1:
            handle = functools.partial(self.outbound_http1.handle, original_dst=destination)
            await serve_http1(reader, writer, first, handle)
        elif detected.protocol is Protocol.HTTP2 and self.outbound_http2.serves(destination):
            handle2 = functools.partial(self.outbound_http2.handle, original_dst=destination)
            await serve_http2(reader, writer, first, handle2, self.h2_sessions)
        elif destination is not None:
            # TLS, opaque bytes, and HTTP/2 leaving the mesh pass through, balanced per
            # connection.
            await self.outbound_tcp.forward(reader, writer, first, destination)
        else:
            writer.close()

    async def on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        destination = original_destination(writer.get_extra_info("socket"))
        port = destination[1] if destination else self.inbound_fallback_port
        if port is None:
            writer.close()
            return
        peer = writer.get_extra_info("peername")
        client = Client.of(peer[0])  # plain text until mTLS terminates here
        if self._opaque_inbound(port):
            await self.inbound.tcp(reader, writer, b"", client, port)
            return
        detected, first = await detect_protocol(reader)
        if detected.protocol is Protocol.HTTP1:
            handle = functools.partial(self.inbound.http1, client=client, port=port)
            await serve_http1(reader, writer, first, handle)
        elif detected.protocol is Protocol.HTTP2:
            handle2 = functools.partial(self.inbound_http2.handle, client=client, port=port)
            await serve_http2(reader, writer, first, handle2, self.h2_sessions)
        else:
            await self.inbound.tcp(reader, writer, first, client, port)

    async def listen(
        self, host: str, inbound_port: int, outbound_port: int, admin_port: int
    ) -> list[asyncio.Server]:
        return [
            await asyncio.start_server(self.on_inbound, host, inbound_port),
            await asyncio.start_server(self.on_outbound, host, outbound_port),
            await asyncio.start_server(self.admin.serve, host, admin_port),
        ]
