"""gRPC over HTTP/2, what a proxy reads and writes of it: whether a request is gRPC, the
status a response ended with, and trailers-only responses for the proxy's own errors."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

from weft_proxy.protocols.http2 import Headers, header_value

CONTENT_TYPE: Final = b"application/grpc"


class GrpcStatus(enum.IntEnum):
    """The codes the proxy itself answers with (gRPC's statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    DEADLINE_EXCEEDED = 4
    PERMISSION_DENIED = 7
    INTERNAL = 13
    UNAVAILABLE = 14


# For errors the proxy produces, by the HTTP status it would answer an HTTP client with.
_FOR_PROXY_ERROR: Final = {
    403: GrpcStatus.PERMISSION_DENIED,
    502: GrpcStatus.UNAVAILABLE,
    503: GrpcStatus.UNAVAILABLE,
    504: GrpcStatus.DEADLINE_EXCEEDED,
}

# grpc-message is percent-encoded: anything outside printable ASCII, and '%' itself.
_PLAIN: Final = frozenset(range(0x20, 0x7F)) - {ord("%")}


def is_grpc(headers: Headers) -> bool:
    """A gRPC request or response (content-type application/grpc, +proto, +json...)."""
    content_type = header_value(headers, b"content-type")
    return content_type is not None and content_type.startswith(CONTENT_TYPE)


def grpc_status(headers: Headers | None) -> int | None:
    """The `grpc-status` in trailers (or a trailers-only head); None if absent or invalid."""
    if headers is None:
        return None
    value = header_value(headers, b"grpc-status")
    # The codes are small numbers; a long run of digits is junk, not a number to parse.
    if value is None or not 0 < len(value) <= 3 or not value.isdigit():
        return None
    return int(value)


def status_for_proxy_error(http_status: int) -> GrpcStatus:
    return _FOR_PROXY_ERROR.get(http_status, GrpcStatus.UNKNOWN)


def encode_message(message: str) -> bytes:
    return b"".join(
        bytes((byte,)) if byte in _PLAIN else b"%%%02X" % byte for byte in message.encode()
    )


def status_headers(status: GrpcStatus, message: str) -> Headers:
    """grpc-status and grpc-message: the trailers that end a call, or their part of a
    trailers-only response."""
    return [(b"grpc-status", b"%d" % status), (b"grpc-message", encode_message(message))]


def trailers_only(
    status: GrpcStatus, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> Headers:
    """A complete gRPC response in one HEADERS frame (sent with END_STREAM)."""
    return [
        (b":status", b"200"),
        (b"content-type", CONTENT_TYPE),
        *status_headers(status, message),
        *extra,
    ]
