"""The Tap gRPC service over a TapHub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from weft_api.proto import tap_pb2, tap_pb2_grpc
from weft_proxy.tap.hub import TapEvent, TapFilter, TapHub


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
    def __init__(self, hub: TapHub) -> None:
        self.hub = hub

    async def Observe(
        self,
        request: tap_pb2.ObserveRequest,
        context: grpc.aio.ServicerContext[tap_pb2.ObserveRequest, tap_pb2.TapEvent],
    ) -> AsyncIterator[tap_pb2.TapEvent]:
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
