"""HTTP/1.x messages as events, over httptools (llhttp): bytes in, events out.

`RequestReader` and `ResponseReader` turn the bytes of one connection direction into
`RequestHead`/`ResponseHead`, `Body`, `EndOfMessage` and `Upgraded` events, pipelined
messages included. Framing is decoded (chunked bodies arrive as plain `Body` data), so
a proxy re-frames what it forwards with `request_head_bytes`/`response_head_bytes` and
`chunk`. Header names are lower-cased as they are parsed (HTTP/1 names are
case-insensitive; linkerd2-proxy forwards them lower-case too), so lookups compare
bytes once. Malformed or oversized input raises `ProtocolError` carrying the status a
server should answer with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import httptools

Headers = list[tuple[bytes, bytes]]
_Parser = httptools.HttpRequestParser | httptools.HttpResponseParser

MAX_HEAD_BYTES: Final = 64 * 1024  # request line (or status line) plus headers
MAX_TARGET_BYTES: Final = 8 * 1024

# RFC 9110 7.6.1: these describe one hop and are never forwarded as they are.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
LAST_CHUNK: Final = b"0\r\n\r\n"


@dataclass(slots=True)
class RequestHead:
    method: str
    target: bytes
    version: str  # "1.0" or "1.1"
    headers: Headers
    keep_alive: bool  # the client allows another request on this connection
    upgrade: bool  # Upgrade (e.g. WebSocket) or CONNECT: the connection becomes a tunnel

    def header(self, name: bytes) -> bytes | None:
        return find_header(self.headers, name)


@dataclass(slots=True)
class ResponseHead:
    status: int
    reason: bytes
    version: str
    headers: Headers
    keep_alive: bool
    upgrade: bool  # 101 Switching Protocols (or 2xx to CONNECT): a tunnel follows

    def header(self, name: bytes) -> bytes | None:
        return find_header(self.headers, name)


@dataclass(slots=True)
class Body:
    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    pass


@dataclass(slots=True)
class Upgraded:
    """The message switched protocols; `rest` is what followed its head in the input."""

    rest: bytes


Event = RequestHead | ResponseHead | Body | EndOfMessage | Upgraded
END: Final = EndOfMessage()


class ProtocolError(Exception):
    """The peer broke HTTP/1; `status` is what a server answers (400, 414, 431, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def tunnel_bytes(events: Iterable[Event]) -> bytes:
    """After a protocol switch: the bytes parsed events still hold, for the tunnel."""
    return b"".join(
        e.rest if isinstance(e, Upgraded) else e.data
        for e in events
        if isinstance(e, Upgraded | Body)
    )


def find_header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case, as parsed names are), if present."""
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(slots=True)
class _Partial:
    target: bytearray = field(default_factory=bytearray)
    reason: bytearray = field(default_factory=bytearray)
    headers: Headers = field(default_factory=list)
    head_bytes: int = 0


class _Reader:
    """Shared by both directions: httptools callbacks collected into an event list."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._partial: _Partial | None = _Partial()
        self._upgraded = False

    @property
    def mid_head(self) -> bool:
        """Part of a message head has arrived, not all of it."""
        return self._partial is not None and self._partial.head_bytes > 0

    # httptools callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._partial = _Partial()

    def on_url(self, url: bytes) -> None:
        assert self._partial is not None
        self._partial.target += url
        if len(self._partial.target) > MAX_TARGET_BYTES:
            raise ProtocolError(414, "request target too long")

    def on_status(self, reason: bytes) -> None:
        assert self._partial is not None
        self._partial.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._partial is not None
        self._partial.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._partial is not None
        self._events.append(self._head(self._partial))
        self._partial = None

    def on_body(self, data: bytes) -> None:
        self._events.append(Body(bytes(data)))

    def on_message_complete(self) -> None:
        self._events.append(END)

    # ---------------------------------------------------------------------------------
    def _head(self, partial: _Partial) -> RequestHead | ResponseHead:
        raise NotImplementedError

    def _feed(self, parser: _Parser, data: bytes) -> list[Event]:
        if self._upgraded:  # past a protocol switch the bytes belong to the tunnel
            return [Body(data)] if data else []
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as switch:
            self._upgraded = True
            self._events.append(Upgraded(data[switch.args[0] :]))
        except httptools.HttpParserError as error:
            cause = error.__context__
            if isinstance(cause, ProtocolError):  # raised by one of our callbacks
                raise cause from None
            raise ProtocolError(400, f"malformed HTTP/1 message: {error}") from None
        if self._partial is not None:  # a head is still open: bound what it may take
            self._partial.head_bytes += len(data)
            if self._partial.head_bytes > MAX_HEAD_BYTES:
                raise ProtocolError(431, "message head too large")
        events, self._events = self._events, []
        return events


class RequestReader(_Reader):
    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpRequestParser(self)

    def feed(self, data: bytes) -> list[Event]:
        return self._feed(self._parser, data)

    def _head(self, partial: _Partial) -> RequestHead:
        parser = self._parser
        return RequestHead(
            method=parser.get_method().decode("ascii"),
            target=bytes(partial.target),
            version=parser.get_http_version(),
            headers=partial.headers,
            keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade(),
        )


class ResponseReader(_Reader):
    """Reads responses; `expect_no_body()` before each response to a HEAD request."""

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpResponseParser(self)
        self._bodiless = 0
        self._held = b""

    def expect_no_body(self) -> None:
        """The next response answers HEAD: its Content-Length describes no body.

        llhttp cannot be told so, so the head is cut out of the input here and the
        parser is restarted after it.
        """
        self._bodiless += 1

    def feed(self, data: bytes) -> list[Event]:
        if not self._bodiless:
            return self._feed(self._parser, data)
        buffer = self._held + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(431, "message head too large")
            self._held = buffer
            return []
        self._held = b""
        head, rest = buffer[: end + 4], buffer[end + 4 :]
        events = [e for e in self._feed(self._parser, head) if not isinstance(e, EndOfMessage)]
        self._bodiless -= 1
        self._parser = httptools.HttpResponseParser(self)
        self._partial = _Partial()
        return [*events, END, *self.feed(rest)] if rest else [*events, END]

    def _head(self, partial: _Partial) -> ResponseHead:
        parser = self._parser
        status = parser.get_status_code()
        return ResponseHead(
            status=status,
            reason=bytes(partial.reason),
            version=parser.get_http_version(),
            headers=partial.headers,
            keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade() or status == 101,
        )


# --- writing --------------------------------------------------------------------------


def forwarded_headers(headers: Headers, *, keep_upgrade: bool = False) -> Headers:
    """Headers minus hop-by-hop ones and any that `Connection` names.

    `keep_upgrade` keeps `Upgrade` (and `Connection: upgrade`) for a protocol switch
    the proxy passes through.
    """
    kept = [(key, value) for key, value in headers if key not in HOP_BY_HOP]
    if len(kept) < len(headers):  # Connection may name more headers to drop
        named = {
            token.strip().lower()
            for key, value in headers
            if key == b"connection"
            for token in value.split(b",")
        }
        if named:
            kept = [(key, value) for key, value in kept if key not in named]
    if keep_upgrade:
        upgrade = find_header(headers, b"upgrade")
        if upgrade is not None:
            kept += [(b"Connection", b"upgrade"), (b"Upgrade", upgrade)]
    return kept


def _head_bytes(start_line: bytes, headers: Headers) -> bytes:
    lines = [start_line]
    lines += [key + b": " + value for key, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def request_head_bytes(method: str, target: bytes, headers: Headers) -> bytes:
    return _head_bytes(method.encode("ascii") + b" " + target + b" HTTP/1.1", headers)


def response_head_bytes(status: int, reason: bytes, headers: Headers) -> bytes:
    return _head_bytes(b"HTTP/1.1 %d %s" % (status, reason), headers)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; never call with empty data (that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def body_framing(headers: Headers) -> int | None:
    """The Content-Length to forward with, or None to re-frame the body as chunked."""
    length = find_header(headers, b"content-length")
    if length is None or find_header(headers, b"transfer-encoding") is not None:
        return None
    return int(length)
