"""Tap events as the CLI shows them: one request and its response, seen by one proxy."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from weft_api.proto import tap_pb2


@dataclass(frozen=True)
class Observed:
    proxy: str  # namespace/pod of the proxy that saw it
    direction: str
    method: str
    authority: str
    path: str
    status: int
    latency_ms: float
    tls: bool
    source: str
    source_identity: str
    destination: str
    destination_service: str
    destination_identity: str
    grpc_status: int | None
    dropped_before: int
    timestamp: float

    @property
    def success(self) -> bool:
        """As the proxy classifies responses: 5xx, and gRPC errors, are failures."""
        return self.status < 500 and self.grpc_status in (None, 0)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["time"] = _time(self.timestamp)
        return found


def from_message(proxy: str, message: tap_pb2.TapEvent) -> Observed:
    return Observed(
        proxy=proxy,
        direction=message.direction,
        method=message.method,
        authority=message.authority,
        path=message.path,
        status=message.status,
        latency_ms=message.latency_ms,
        tls=message.tls,
        source=message.source,
        source_identity=message.source_identity,
        destination=message.destination,
        destination_service=message.destination_service,
        destination_identity=message.destination_identity,
        grpc_status=message.grpc_status if message.has_grpc_status else None,
        dropped_before=message.dropped_before,
        timestamp=message.timestamp,
    )


def _time(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def host(address: str) -> str:
    """`10.0.0.5:40000` -> `10.0.0.5` (`[::1]:80` -> `::1`)."""
    hostname = address.rsplit(":", 1)[0] if ":" in address else address
    return hostname.strip("[]")


def peer(address: str, identity: str, names: Mapping[str, str]) -> str:
    """The pod at `address` when known, else the address; with its identity if any."""
    shown = names.get(host(address), address)
    return f"{shown} ({identity})" if identity else shown


def line(event: Observed, names: Mapping[str, str]) -> str:
    """One line per request, for a terminal or a log."""
    grpc = f" grpc-status={event.grpc_status}" if event.grpc_status is not None else ""
    destination = peer(event.destination, event.destination_identity, names)
    if event.destination_service:
        destination += f" svc={event.destination_service}"
    return (
        f"{_time(event.timestamp)} {event.proxy} {event.direction:<8} "
        f"{event.method} {event.authority}{event.path} -> {event.status}{grpc} "
        f"{event.latency_ms:.1f}ms src={peer(event.source, event.source_identity, names)} "
        f"dst={destination} tls={'true' if event.tls else 'false'}"
    )
