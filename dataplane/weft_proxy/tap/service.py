"""The Tap gRPC service over a TapHub.

With identity, the tap port is mTLS (the proxy's own leaf, renewed in place; client
certificates required and verified against the trust roots) and admits only the
identities the install names (`weft-cli.<control-plane>.serviceaccount.identity...`,
the CLI's; docs/mtls.md); anyone else gets PERMISSION_DENIED. Without identity (tests),
plain text and open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping

import grpc

from weft_api.proto import tap_pb2, tap_pb2_grpc
from weft_proxy.identity.credentials import Credentials
from weft_proxy.tap.hub import TapEvent, TapFilter, TapHub


def _certificate_configuration(credentials: Credentials) -> object:
    return grpc.ssl_server_certificate_configuration(
        [(credentials.key_pem(), credentials.certificates_pem())],
        root_certificates=credentials.trust_roots_pem,
    )


def tap_server_credentials(current: Callable[[], Credentials]) -> grpc.ServerCredentials:
    """mTLS with the proxy's current leaf: each handshake asks whether it was renewed."""
    served = current()

    def fetch() -> object | None:
        nonlocal served
        latest = current()
        if latest is served:
            return None  # keep the configuration in use
        served = latest
        return _certificate_configuration(latest)

    return grpc.dynamic_ssl_server_credentials(
        _certificate_configuration(served),  # type: ignore[arg-type]
        fetch,  # type: ignore[arg-type]
        require_client_authentication=True,
    )


def peer_identities(auth_context: Mapping[str, Iterable[bytes]]) -> tuple[str, ...]:
    """The SANs of the caller's verified certificate (DNS and URI alike)."""
    names = auth_context.get("x509_subject_alternative_name", [])
    return tuple(bytes(name).decode(errors="replace") for name in names)


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


class TapService(tap_pb2_grpc.TapServicer):
    def __init__(self, hub: TapHub, clients: frozenset[str] | None = None) -> None:
        self.hub = hub
        self.clients = clients  # identities allowed to tap; None: anyone (no identity)

    async def Observe(
        self,
        request: tap_pb2.ObserveRequest,
        context: grpc.aio.ServicerContext[tap_pb2.ObserveRequest, tap_pb2.TapEvent],
    ) -> AsyncIterator[tap_pb2.TapEvent]:
        if self.clients is not None:
            caller = peer_identities(context.auth_context())
            if not self.clients.intersection(caller):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"tap: {', '.join(caller) or 'a caller without identity'} may not tap "
                    f"this proxy (allowed: {', '.join(sorted(self.clients))})",
                )
        await context.send_initial_metadata(())  # admitted: the caller knows before events
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
                yield to_message(event, dropped)
                sent += 1
        finally:
            self.hub.unwatch(watcher)
