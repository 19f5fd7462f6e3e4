"""HTTP/1 messages as HTTP/2 ones and back, for a hop between two Weft proxies over one
HTTP/2 connection (an endpoint whose protocol hint is H2): the outbound proxy upgrades an
HTTP/1 request and marks it with `weft-orig-proto`, so that the inbound proxy downgrades
it again for its application; responses go back the same way.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from weft_proxy.protocols.http1 import Headers, RequestHead, ResponseHead, forwarded_headers
from weft_proxy.protocols.http2 import header_value, response_status

ORIG_PROTO_HEADER: Final = b"weft-orig-proto"
ORIG_PROTO_HTTP1: Final = b"HTTP/1.1"


def h2_request(head: RequestHead, authority: bytes) -> Headers:
    """The HTTP/2 head of an HTTP/1 request (not an upgrade: those stay HTTP/1)."""
    target = head.target
    if not target.startswith(b"/") and b"://" in target:  # absolute form
        target = b"/" + target.partition(b"://")[2].partition(b"/")[2]
    headers = [
        (b":method", head.method.encode("ascii")),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", target),
    ]
    headers += (
        (name.lower(), value)
        for name, value in forwarded_headers(head.headers)
        if name.lower() != b"host"
    )
    headers.append((ORIG_PROTO_HEADER, ORIG_PROTO_HTTP1))
    return headers


def is_downgradable(headers: Headers) -> bool:
    """An HTTP/2 request an outbound proxy upgraded from HTTP/1."""
    return header_value(headers, ORIG_PROTO_HEADER) == ORIG_PROTO_HTTP1


def http1_request(headers: Headers) -> RequestHead:
    """The HTTP/1 request an upgraded HTTP/2 request came from."""
    method = header_value(headers, b":method") or b"GET"
    target = header_value(headers, b":path") or b"/"
    authority = header_value(headers, b":authority")
    plain = [(k, v) for k, v in headers if not k.startswith(b":") and k != ORIG_PROTO_HEADER]
    if authority is not None and header_value(plain, b"host") is None:
        plain.insert(0, (b"host", authority))
    return RequestHead(method.decode("ascii"), target, "1.1", plain, True, False)


def http1_response(headers: Headers) -> tuple[int, bytes, Headers]:
    """Status, reason and headers of an HTTP/2 response head, for an HTTP/1 client."""
    status = response_status(headers) or 502
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b"Unknown"
    return status, reason, [(k, v) for k, v in headers if not k.startswith(b":")]


def h2_response(head: ResponseHead) -> Headers:
    """The HTTP/2 head of an HTTP/1 response (framing headers go: HTTP/2 frames it)."""
    headers = [(b":status", b"%d" % head.status)]
    headers += ((name.lower(), value) for name, value in forwarded_headers(head.headers))
    return headers
