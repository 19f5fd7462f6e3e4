"""Responses the proxy itself produces: they carry `weft-proxy-error`, so a client (and
a person reading its logs) can tell a mesh failure from the application's own answer."""

from __future__ import annotations

from http import HTTPStatus

from weft_proxy.protocols.http1 import response_head_bytes

PROXY_ERROR_HEADER = b"weft-proxy-error"


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
