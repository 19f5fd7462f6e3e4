"""Protocol detection over the first bytes a client sends, for both listeners.

The I/O layer peeks at a connection's first bytes without consuming them, calls `detect`
after each read, and hands the whole buffer on to the stack for the protocol found. It
reads until `detect` stops answering `NeedMore`, the client closes its side, or
`DETECT_TIMEOUT_S` passes; in the last two cases it calls `detect(..., final=True)`, which
always decides. Server-first protocols (MySQL, SMTP) send nothing until the server speaks,
so they wait out the timeout; Linkerd lets such ports be marked opaque to skip detection.

Every decision is stable: once `detect(data)` returns `Detected`, any longer input starting
with `data` gives the same answer, so the I/O layer may stop reading at the first one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from weft_proxy.protocols.tls_client_hello import (
    MAX_CLIENT_HELLO_BYTES,
    ClientHello,
    Incomplete,
    parse_client_hello,
)

DETECT_TIMEOUT_S: Final = 10.0
"""How long to wait for enough bytes to decide (Linkerd's default), then decide as is."""

MAX_REQUEST_LINE_BYTES: Final = 8 * 1024
"""An HTTP/1 request line must end (CRLF included) within this many bytes."""

MAX_DETECT_BYTES: Final = max(MAX_CLIENT_HELLO_BYTES, MAX_REQUEST_LINE_BYTES)
"""`NeedMore.at_least` never exceeds this: the most the I/O layer need ever buffer."""

HTTP2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9112 3: method SP request-target SP HTTP-version CRLF, with a token method (RFC 9110
# 5.6.2) and a target of visible ASCII; single spaces and CRLF only, as strict parsers want.
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_REQUEST_LINE = re.compile(rb"(%s) (%s) HTTP/(1\.[01])\r\n" % (_METHOD.pattern, _TARGET.pattern))
_VERSIONS_WITH_CR = (b"HTTP/1.1\r", b"HTTP/1.0\r")


class Protocol(Enum):
    TLS = "tls"
    HTTP1 = "http/1"
    HTTP2 = "h2"
    OPAQUE = "opaque"


@dataclass(frozen=True, slots=True)
class Detected:
    """The protocol decided on, with what detection learnt on the way.

    TLS fills `sni` (lower-cased; None if the client sent none) and `alpn` (in the
    client's order); HTTP/1 fills `method`, `target` (as sent) and `version` ("1.0" or
    "1.1", as httptools' get_http_version() spells it).
    """

    protocol: Protocol
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    method: str | None = None
    target: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class NeedMore:
    """Undecided; the answer cannot change before the buffer holds `at_least` bytes."""

    at_least: int


_OPAQUE: Final = Detected(Protocol.OPAQUE)


def detect(data: bytes, *, final: bool = False) -> Detected | NeedMore:
    """Decide the protocol of a connection whose first bytes are `data`.

    `final` means no more bytes will come (EOF, or the detection timeout): what could
    still have become TLS or HTTP is then opaque. Never raises.
    """
    at_least: int | None = None
    for outcome in (_detect_tls(data), _detect_http2(data), _detect_http1(data)):
        if isinstance(outcome, Detected):
            return outcome
        if outcome is not None:
            at_least = outcome.at_least if at_least is None else min(at_least, outcome.at_least)
    if at_least is None or final:
        return _OPAQUE
    return NeedMore(at_least)


def _detect_tls(data: bytes) -> Detected | NeedMore | None:
    hello = parse_client_hello(data)
    if isinstance(hello, ClientHello):
        return Detected(Protocol.TLS, sni=hello.server_name, alpn=hello.alpn_protocols)
    if isinstance(hello, Incomplete):
        return NeedMore(hello.at_least)
    return None


def _detect_http2(data: bytes) -> Detected | NeedMore | None:
    if data.startswith(HTTP2_PREFACE):
        return Detected(Protocol.HTTP2)
    if HTTP2_PREFACE.startswith(data):
        return NeedMore(len(HTTP2_PREFACE))
    return None


def _detect_http1(data: bytes) -> Detected | NeedMore | None:
    # Only the request line is checked, as Linkerd does: it is enough to tell HTTP/1 from
    # anything else, and headers are the HTTP/1 stack's (httptools') business. httptools
    # itself would not help here: it is a streaming parser (one per call, as detect() is
    # pure), reports no "request line done" event, and knows only llhttp's method list.
    line_end = data.find(b"\r\n", 0, MAX_REQUEST_LINE_BYTES)
    if line_end >= 0:
        line = _REQUEST_LINE.fullmatch(data, 0, line_end + 2)
        if line is None:
            return None
        method, target, version = (part.decode("ascii") for part in line.groups())
        return Detected(Protocol.HTTP1, method=method, target=target, version=version)
    if len(data) >= MAX_REQUEST_LINE_BYTES or not _starts_request_line(data):
        return None
    return NeedMore(len(data) + 1)


def _starts_request_line(data: bytes) -> bool:
    """Whether `data`, which holds no CRLF, could be the start of a request line."""
    match data.split(b" "):
        case [method]:
            return not method or _METHOD.fullmatch(method) is not None
        case [method, target]:
            return _METHOD.fullmatch(method) is not None and (
                not target or _TARGET.fullmatch(target) is not None
            )
        case [method, target, version]:
            return (
                _METHOD.fullmatch(method) is not None
                and _TARGET.fullmatch(target) is not None
                and any(whole.startswith(version) for whole in _VERSIONS_WITH_CR)
            )
        case _:
            return False
