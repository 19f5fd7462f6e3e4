"""The Tap gRPC service over a TapHub.

With identity, the tap port is mTLS (the proxy's own leaf, renewed in place; client
certificates required and verified against the trust roots) and admits only the
identities the install names (`weft-cli.<control-plane>.serviceaccount.identity...`,
the CLI's; docs/mtls.md); anyone else gets PERMISSION_DENIED. Without identity (tests),
plain text and open. A grpclib server (on h2), so the proxy loads no grpcio; the CLI's
grpcio client speaks to it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from weft_api.proto import tap_grpc, tap_pb2
from weft_proxy.identity.credentials import ALPN_H2, Credentials
from weft_proxy.tap.hub import TapEvent, TapFilter, TapHub


def tap_server_context(current: Callable[[], Credentials]) -> ssl.SSLContext:
    """mTLS with the proxy's current leaf, a client certificate required: each
    handshake takes the context of the latest renewal (built once per renewal)."""
    built: dict[int, ssl.SSLContext] = {}

    def context_of(credentials: Credentials) -> ssl.SSLContext:
        if id(credentials) not in built:
            built.clear()  # the previous leaf's: connections open keep theirs
            context = credentials.server_context((ALPN_H2,), ssl.CERT_REQUIRED)
            context.sni_callback = renewed
            built[id(credentials)] = context
        return built[id(credentials)]

    def renewed(connection: ssl.SSLObject, _name: str | None, _: ssl.SSLContext) -> None:
        # OpenSSL asks on every ClientHello (with or without SNI): switch contexts there
        connection.context = context_of(current())

    return context_of(current())


def peer_identities(certificate: dict[str, Any] | None) -> tuple[str, ...]:
    """The SANs of the caller's verified certificate (DNS and URI alike)."""
    if not certificate:
        return ()
    return tuple(str(value) for _, value in certificate.get("subjectAltName", ()))


async def start_tap_server(
    service: TapService, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[Server, int]:
    """Serve Tap on host:port (0: a free one); returns the server and its port."""
    server = Server([service])
    await server.start(host, port, ssl=tls)
    bound: int = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return server, bound


def to_message(event: TapEvent, dropped_before: int) -> tap_pb2.TapEvent:
    return tap_pb2.TapEvent(
        direction=event.direction,
        method=event.method,
        authority=event.authority,
        path=event.path,
        status=event.status,
        latency_ms=event.latency_ms,
        tls=event.tls,
        source=event.source,
        source_identity=event.source_identity,
        destination=event.destination,
        destination_service=event.destination_service,
        destination_identity=event.destination_identity,
        grpc_status=event.grpc_status or 0,
        has_grpc_status=event.grpc_status is not None,
        dropped_before=dropped_before,
        timestamp=event.timestamp,
    )


class TapService(tap_grpc.TapBase):
    def __init__(self, hub: TapHub, clients: frozenset[str] | None = None) -> None:
        self.hub = hub
        self.clients = clients  # identities allowed to tap; None: anyone (no identity)

    async def Observe(self, stream: Stream[tap_pb2.ObserveRequest, tap_pb2.TapEvent]) -> None:
        if self.clients is not None:
            caller = peer_identities(stream.peer.cert())
            if not self.clients.intersection(caller):
                raise GRPCError(
                    Status.PERMISSION_DENIED,
                    f"tap: {', '.join(caller) or 'a caller without identity'} may not tap "
                    f"this proxy (allowed: {', '.join(sorted(self.clients))})",
                )
        request = await stream.recv_message()
        if request is None:
            raise GRPCError(Status.INVALID_ARGUMENT, "tap: no ObserveRequest")
        await stream.send_initial_metadata()  # admitted: the caller knows before events
        wanted = TapFilter(
            direction=request.direction,
            authority=request.authority,
            path_prefix=request.path_prefix,
            method=request.method,
            source_identity=request.source_identity,
            destination=request.destination,
        )
        watcher = self.hub.watch(wanted)
        try:
            sent = 0
            while not request.limit or sent < request.limit:
                event, dropped = await watcher.next()
                await stream.send_message(to_message(event, dropped))
                sent += 1
        finally:
            self.hub.unwatch(watcher)
