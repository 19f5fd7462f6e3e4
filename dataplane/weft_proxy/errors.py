"""Responses the proxy itself produces: they carry `weft-proxy-error`, so a client (and
a person reading its logs) can tell a mesh failure from the application's own answer."""

from __future__ import annotations

from http import HTTPStatus

from weft_proxy.protocols import grpc
from weft_proxy.protocols.http1 import Headers, response_head_bytes

PROXY_ERROR_HEADER = b"weft-proxy-error"


class ProxyError(Exception):
    """Answer the client with a proxy error: this HTTP status, or its gRPC status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str, *, close: bool = False) -> bytes:
    body = f"{message}\n".encode()
    headers = [
        (PROXY_ERROR_HEADER, message.encode("ascii", "replace")),
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"Connection", b"close"))
    return response_head_bytes(status, HTTPStatus(status).phrase.encode(), headers) + body


def h2_error_response(status: int, message: str, *, is_grpc: bool) -> tuple[Headers, bytes]:
    """An HTTP/2 error response as (head, body). A gRPC client gets a trailers-only
    response, the gRPC status standing for `status`, as gRPC clients read no HTTP status."""
    marker = (PROXY_ERROR_HEADER, message.encode("ascii", "replace"))
    if is_grpc:
        return grpc.trailers_only(grpc.status_for_proxy_error(status), message, [marker]), b""
    body = f"{message}\n".encode()
    head = [
        (b":status", b"%d" % status),
        marker,
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    return head, body
