"""HTTP/1.x messages as events, over httptools (llhttp): bytes in, events out.

`RequestReader` and `ResponseReader` turn the bytes of one connection direction into
`RequestHead`/`ResponseHead`, `Body`, `Trailers`, `EndOfMessage` and `Upgraded` events,
pipelined messages included. Framing is decoded (chunked bodies arrive as plain `Body`
data, their trailer fields as `Trailers`), and each head says how its body is framed
(`Framing`), so a proxy re-frames what it forwards with `request_head_bytes`/
`response_head_bytes`, `chunk` and `last_chunk`. Header names are lower-cased as they are
parsed (HTTP/1 names are case-insensitive; linkerd2-proxy forwards them lower-case too),
so lookups compare bytes once.

Strict where RFC 9112 says so, as nginx is: a request with two `Host` headers, or an
HTTP/1.0 message with `Transfer-Encoding`, is refused; a transfer coding other than
`chunked` is not implemented (501; a response with one is malformed). A message that
breaks HTTP/1 raises `ProtocolError`, carrying the status to answer with: 4xx/5xx for a
request, 502 for a response (a proxy's answer to a malformed upstream). Messages that
that ended before the bad bytes are returned first: the error is raised by the next
`feed` (and `failed` holds it meanwhile).

A protocol switch is the caller's to confirm. A request asking for one (WebSocket, or
CONNECT) is body-less; what follows its head is held until `switched()` (the server
agreed: the held bytes go into the tunnel) or `refused()` (HTTP/1 goes on with them). An
`Upgrade` that is not passed on (`h2c`, which would let a client bypass the proxy's
per-request policy; HTTP/1.0; one on a request with a body) is dropped, and the request
is read as a plain one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

import httptools

Headers = list[tuple[bytes, bytes]]
_Parser: TypeAlias = httptools.HttpRequestParser | httptools.HttpResponseParser

MAX_HEAD_BYTES: Final = 64 * 1024  # request line (or status line) plus headers; trailers too
MAX_TARGET_BYTES: Final = 8 * 1024

# RFC 9110 7.6.1: these describe one hop and are never forwarded as they are. (`Trailer`
# is not one of them: it announces the trailers, which are passed on.)
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Never forwarded in trailers (RFC 9110 6.5.1: framing and routing belong in the head).
_NOT_TRAILERS: Final = HOP_BY_HOP | {b"content-length", b"host", b"trailer"}
_FRAMING: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})
LAST_CHUNK: Final = b"0\r\n\r\n"


class Framing(enum.Enum):
    """How a message's body is delimited (RFC 9112 6.3)."""

    NONE = "none"  # no body
    LENGTH = "length"  # Content-Length bytes
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"  # a response ending when its connection does
    TUNNEL = "tunnel"  # a response switching protocols (101, or 2xx to CONNECT)


@dataclass(slots=True)
class RequestHead:
    method: str
    target: bytes
    version: str  # "1.0" or "1.1"
    headers: Headers
    keep_alive: bool  # the client allows another request on this connection
    upgrade: bool  # a switch (WebSocket) or CONNECT to pass on: it may become a tunnel
    framing: Framing = Framing.NONE
    length: int | None = None  # for Framing.LENGTH

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
    framing: Framing = Framing.NONE
    length: int | None = None  # what Content-Length says (also for HEAD, 304)

    def header(self, name: bytes) -> bytes | None:
        return find_header(self.headers, name)


@dataclass(slots=True)
class Body:
    data: bytes


@dataclass(slots=True)
class Trailers:
    """The trailer fields of a chunked body (names lower case); before its end."""

    headers: Headers


@dataclass(slots=True)
class EndOfMessage:
    pass


@dataclass(slots=True)
class Upgraded:
    """The message switched protocols; `rest` is what followed its head in the input."""

    rest: bytes


Event = RequestHead | ResponseHead | Body | Trailers | EndOfMessage | Upgraded
END: Final = EndOfMessage()


class ProtocolError(Exception):
    """The peer broke HTTP/1; `status` is what a proxy answers (400, 414, 431, 501, 505
    for a request; 502 for a response)."""

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


class _Partial:
    """A head as its fields arrive. (A plain class: one is made per message, and a
    dataclass's default factories cost a call each.)"""

    __slots__ = ("coding", "head_bytes", "headers", "hosts", "length", "reason", "target")

    def __init__(self) -> None:
        # Bytes, added to: a target or reason comes in one piece but when a read splits
        # it (b"" + piece is the piece itself), and both are bounded by MAX_HEAD_BYTES.
        self.target = b""
        self.reason = b""
        self.headers: Headers = []
        self.head_bytes = 0
        self.hosts = 0
        self.length: bytes | None = None
        self.coding: bytes | None = None  # Transfer-Encoding, its fields joined


class _Mode(enum.Enum):
    HTTP = "http"
    PENDING = "pending"  # a switch was asked for: bytes are held until it is decided
    TUNNEL = "tunnel"  # switched: bytes are the tunnel's


# Python 3.11's EnumType has a __getattr__, which makes each `Framing.X` a slow lookup
# (a method wrapper made and freed): per-message code reads these instead.
_NO_BODY, _LENGTH, _CHUNKED = Framing.NONE, Framing.LENGTH, Framing.CHUNKED
_UNTIL_CLOSE, _TUNNEL = Framing.UNTIL_CLOSE, Framing.TUNNEL
_HTTP, _PENDING, _TUNNELLED = _Mode.HTTP, _Mode.PENDING, _Mode.TUNNEL


class _Reader:
    """Shared by both directions: httptools callbacks collected into an event list."""

    _parser: _Parser
    _bad_status = 400  # what a malformed message is answered with
    _synthetic = False  # the next head is the reader's own (see RequestReader._upgraded)

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._partial: _Partial | None = _Partial()
        self._trailers: Headers | None = None
        self._since_body = 0  # bytes fed past a head without body data: trailers, say
        self._in_message = False
        self._mode = _Mode.HTTP
        self._held = b""
        self.failed: ProtocolError | None = None  # raised by the next `feed`

    @property
    def mid_head(self) -> bool:
        """Part of a message head has arrived, not all of it."""
        return self._partial is not None and self._partial.head_bytes > 0

    @property
    def between_messages(self) -> bool:
        """Nothing of a next message has arrived, and the input is sound: a connection in
        this state may carry another exchange."""
        return (
            not self._in_message and not self._held and self.failed is None and self._mode is _HTTP
        )

    # httptools callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._partial = _Partial()
        self._in_message = True

    def on_url(self, url: bytes) -> None:
        assert self._partial is not None
        self._partial.target += url
        if len(self._partial.target) > MAX_TARGET_BYTES:
            raise ProtocolError(414, "request target too long")

    def on_status(self, reason: bytes) -> None:
        assert self._partial is not None
        self._partial.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        partial = self._partial
        if partial is None:  # past the head: a trailer field of a chunked body
            self._trailer(name.lower(), value)
            return
        name = name.lower()
        partial.headers.append((name, value))
        if name in _FRAMING:
            if name == b"host":
                partial.hosts += 1
            elif name == b"content-length":
                partial.length = value  # llhttp refuses a second one, and bad digits
            else:
                coding = partial.coding
                partial.coding = value if coding is None else coding + b"," + value

    def on_headers_complete(self) -> None:
        assert self._partial is not None
        if self._synthetic:  # our own head, to resume a body: no event
            self._synthetic = False
        else:
            self._events.append(self._head(self._partial))
        self._partial = None

    def on_body(self, data: bytes) -> None:
        self._events.append(Body(bytes(data)))
        self._since_body = 0

    def on_message_complete(self) -> None:
        if self._trailers is not None:
            self._events.append(Trailers(self._trailers))
            self._trailers = None
        self._events.append(END)
        self._in_message = False
        self._since_body = 0

    def _trailer(self, name: bytes, value: bytes) -> None:
        if self._trailers is None:
            self._trailers = []
        self._trailers.append((name, value))

    # ---------------------------------------------------------------------------------
    def _head(self, partial: _Partial) -> RequestHead | ResponseHead:
        raise NotImplementedError

    def _upgraded(self, rest: bytes) -> bool:
        """llhttp paused at a protocol switch; `rest` is the input after it. True: it is
        HTTP/1 still, for a new parser (`_parser`) to read."""
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Event]:
        mode = self._mode
        if mode is _TUNNELLED:  # past a protocol switch the bytes belong to the tunnel
            return [Body(data)] if data else []
        if mode is _PENDING:
            self._held += data
            return []
        failed = self.failed  # (a local: mypy would take the attribute as None below)
        if failed is not None:
            raise failed
        size = len(data)
        if self._in_message and self._partial is None:
            self._since_body += size  # (on_body sets it back)
        parser = self._parser
        try:
            while True:
                try:
                    parser.feed_data(data)
                    break
                except httptools.HttpParserUpgrade as switch:
                    data = data[switch.args[0] :]
                    if not self._upgraded(data) or not data:
                        break
                    parser = self._parser  # (a switch not passed on: read on)
        except httptools.HttpParserError as error:
            cause = error.__context__
            if isinstance(cause, ProtocolError):  # raised by one of our callbacks
                self._fail(cause)
            else:
                self._fail(ProtocolError(self._bad_status, f"malformed HTTP/1 message: {error}"))
        if self.failed is None:
            too_large = 431 if self._bad_status == 400 else 502
            if self._partial is not None:  # a head is still open: bound what it may take
                self._partial.head_bytes += size
                if self._partial.head_bytes > MAX_HEAD_BYTES:
                    self._fail(ProtocolError(too_large, "head too large"))
            elif self._since_body > MAX_HEAD_BYTES:  # trailers: httptools keeps them whole
                self._fail(ProtocolError(too_large, "trailers too large"))
        events, self._events = self._events, []
        return events

    def _fail(self, failure: ProtocolError) -> None:
        """Messages that ended before the bad bytes are sound: they are delivered first,
        and the error waits for the next feed; the message it belongs to never surfaces."""
        ends = [i for i, event in enumerate(self._events) if event is END]
        if not ends:
            self._events = []
            raise failure from None
        del self._events[ends[-1] + 1 :]
        self.failed = failure


def _framing(partial: _Partial, version: str, bad: int) -> tuple[Framing, int | None]:
    """The body framing a head's fields give (before the rules for its kind apply)."""
    if partial.coding is not None:
        if version == "1.0":  # RFC 9112 6.1: faulty framing; nginx refuses it too
            raise ProtocolError(bad, "Transfer-Encoding in an HTTP/1.0 message")
        if partial.coding.strip().lower() != b"chunked":
            raise ProtocolError(501 if bad == 400 else bad, "transfer coding not implemented")
        return _CHUNKED, None
    if partial.length is not None:
        return _LENGTH, int(partial.length)
    return _NO_BODY, None


class RequestReader(_Reader):
    _parser: httptools.HttpRequestParser

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpRequestParser(self)

    def _head(self, partial: _Partial) -> RequestHead:
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(505, f"HTTP/{version} is not supported")
        if partial.hosts > 1:
            raise ProtocolError(400, "more than one Host header")
        framing, length = _NO_BODY, None
        if partial.coding is not None or partial.length is not None:
            framing, length = _framing(partial, version, 400)
        method = parser.get_method().decode("ascii")
        upgrade = parser.should_upgrade()
        if upgrade and method != "CONNECT":
            upgrade = _passed_upgrade(partial.headers, version, framing, length)
        elif upgrade and (framing is Framing.CHUNKED or length):
            raise ProtocolError(400, "CONNECT with a body")  # RFC 9110 9.3.6: it has none
        # (Positional: keywords cost a dictionary's worth of matching, per request.)
        return RequestHead(
            method,
            partial.target,
            version,
            partial.headers,
            parser.should_keep_alive(),
            upgrade,
            framing,
            length,
        )

    def _upgraded(self, rest: bytes) -> bool:
        head = next(e for e in reversed(self._events) if isinstance(e, RequestHead))
        if head.upgrade:  # hold the rest until the server's answer decides
            self._mode = _Mode.PENDING
            self._held = rest
            return False
        # A switch not passed on: llhttp took the rest for the tunnel, so read it again
        # as HTTP/1, with the request's body first if it has one.
        self._parser = httptools.HttpRequestParser(self)
        self._in_message = False
        if head.framing is Framing.CHUNKED or head.length:
            self._events.pop()  # llhttp's end of the message, without its body
            self._synthetic = True
            framing = (
                b"transfer-encoding: chunked"
                if head.framing is Framing.CHUNKED
                else b"content-length: %d" % (head.length or 0)
            )
            self._parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        return True

    def switched(self) -> bytes:
        """The server agreed to the switch: what the client sent after its request, for
        the tunnel (later input is tunnel bytes too)."""
        held, self._held = self._held, b""
        self._mode = _Mode.TUNNEL
        return held

    def refused(self) -> list[Event]:
        """The server answered the switch with a plain response: HTTP/1 goes on with
        what the client sent after its request (a protocol error is left in `failed`)."""
        if self._mode is not _Mode.PENDING:
            return []
        held, self._held = self._held, b""
        self._mode = _Mode.HTTP
        self._parser = httptools.HttpRequestParser(self)
        self._in_message = False
        try:
            return self.feed(held) if held else []
        except ProtocolError as error:
            self.failed = error
            return []


def _passed_upgrade(headers: Headers, version: str, framing: Framing, length: int | None) -> bool:
    """Whether an `Upgrade` request is passed on as one (else it goes as a plain request)."""
    if version != "1.1" or framing is Framing.CHUNKED or length:
        return False  # RFC 9110 7.8: ignored in HTTP/1.0; a switch after a body: no
    tokens = b",".join(value for key, value in headers if key == b"upgrade").lower()
    return b"h2c" not in tokens  # h2c would carry requests past the proxy's policy


class ResponseReader(_Reader):
    """Reads responses; `expect(method, ...)` before each one, to say what it answers
    (llhttp cannot tell a response to HEAD or CONNECT by itself)."""

    _parser: httptools.HttpResponseParser
    _bad_status = 502

    def __init__(self) -> None:
        super().__init__()
        self._parser = httptools.HttpResponseParser(self)
        self._head_request = False  # the final response answers HEAD: no body
        self._connect = False  # ... answers CONNECT: a 2xx opens a tunnel
        self._switch_asked = False  # ... answers a request asking to switch protocols

    def expect(self, method: str, *, switch: bool = False) -> None:
        """The next final response answers a `method` request (asking for a protocol
        switch if `switch`)."""
        self._head_request = method == "HEAD"
        self._connect = method == "CONNECT"
        self._switch_asked = switch

    def expect_no_body(self) -> None:
        """The next response answers HEAD: its Content-Length describes no body."""
        self.expect("HEAD")

    def feed(self, data: bytes) -> list[Event]:
        if not (self._head_request or self._connect) or self._mode is not _HTTP:
            return _Reader.feed(self, data)
        # The head is cut out of the input and parsed alone; what follows is decided by
        # the status: after an interim one, the next head; after HEAD's answer, the next
        # response (on a parser restarted); after 2xx to CONNECT, the tunnel.
        buffer = self._held + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(502, "head too large")
            self._held = buffer
            return []
        self._held = b""
        head, rest = buffer[: end + 4], buffer[end + 4 :]
        events = _Reader.feed(self, head)
        response = next((e for e in events if isinstance(e, ResponseHead)), None)
        if response is None or self.failed is not None:
            return events
        if response.status < 200:  # interim: the final one is still to come
            return [*events, *self.feed(rest)] if rest else events
        if self._connect:
            self._connect = False
            if response.framing is Framing.TUNNEL:
                self._mode = _Mode.TUNNEL
                return [*events, Upgraded(rest)]
            return [*events, *_Reader.feed(self, rest)] if rest else events
        self._head_request = False
        self._parser = httptools.HttpResponseParser(self)
        self._partial = _Partial()
        self._in_message = False
        events = [e for e in events if not isinstance(e, EndOfMessage)]
        events.append(END)
        return [*events, *self.feed(rest)] if rest else events

    def _upgraded(self, rest: bytes) -> bool:
        self._mode = _Mode.TUNNEL
        self._events.append(Upgraded(rest))
        return False

    def _head(self, partial: _Partial) -> ResponseHead:
        parser = self._parser
        status = parser.get_status_code()
        if not 100 <= status <= 599:  # RFC 9110 15: three digits, 1xx to 5xx
            raise ProtocolError(502, f"invalid status code {status}")
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(502, f"HTTP/{version} response")
        framing, length = _NO_BODY, None
        if partial.coding is not None or partial.length is not None:
            framing, length = _framing(partial, version, 502)
        if status == 101:
            if not self._switch_asked:
                raise ProtocolError(502, "101 Switching Protocols to a request not asking")
            framing = _TUNNEL
        elif status < 200 or status == 204 or status == 304 or self._head_request:
            framing = _NO_BODY
        elif self._connect and status < 300:
            framing = _TUNNEL
        elif framing is _NO_BODY:
            framing = _UNTIL_CLOSE
        if status >= 200:
            self._switch_asked = False
        return ResponseHead(  # (positional, as RequestHead)
            status,
            partial.reason,
            version,
            partial.headers,
            parser.should_keep_alive(),
            framing is _TUNNEL,  # upgrade
            framing,
            length,
        )


# --- writing --------------------------------------------------------------------------


def forwarded_headers(headers: Headers, *, keep_upgrade: bool = False) -> Headers:
    """Headers minus hop-by-hop ones and any that `Connection` names.

    `keep_upgrade` keeps `Upgrade` (and `Connection: upgrade`) for a protocol switch
    the proxy passes through.
    """
    # (Pairs kept as they are: no tuple made per header.)
    kept = [pair for pair in headers if pair[0] not in HOP_BY_HOP]
    if len(kept) < len(headers):  # Connection may name more headers to drop
        named = _connection_options(headers)
        if named:
            kept = [pair for pair in kept if pair[0] not in named]
    if keep_upgrade:
        upgrade = find_header(headers, b"upgrade")
        if upgrade is not None:
            kept += [(b"Connection", b"upgrade"), (b"Upgrade", upgrade)]
    return kept


def _connection_options(headers: Headers) -> set[bytes]:
    """The header names `Connection` fields list, but for hop-by-hop ones (dropped in
    any case): `Connection: keep-alive` or `upgrade` names nothing more to drop."""
    named: set[bytes] = set()
    for key, value in headers:
        if key == b"connection":
            value = value.lower()
            if value not in _PLAIN_CONNECTION:  # (most heads: no split, no set)
                named.update(token.strip() for token in value.split(b","))
    return named - HOP_BY_HOP


_PLAIN_CONNECTION: Final = frozenset({b"keep-alive", b"close", b"upgrade"})


def _head_bytes(start_line: bytes, headers: Headers) -> bytes:
    # map(b": ".join, ...) joins each (name, value) pair in C; the two empty lines end
    # the head with its blank line.
    return b"\r\n".join([start_line, *map(b": ".join, headers), b"", b""])


def request_head_bytes(method: str, target: bytes, headers: Headers) -> bytes:
    return _head_bytes(method.encode("ascii") + b" " + target + b" HTTP/1.1", headers)


def response_head_bytes(status: int, reason: bytes, headers: Headers) -> bytes:
    return _head_bytes(b"HTTP/1.1 %d %s" % (status, reason), headers)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; never call with empty data (that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def forwarded_trailers(trailers: Headers) -> Headers:
    """The trailer fields that may be forwarded (none that frame or route a message)."""
    return [(key, value) for key, value in trailers if key not in _NOT_TRAILERS]


def last_chunk(trailers: Headers | None = None) -> bytes:
    """The end of a chunked body, with the trailer fields that may be forwarded."""
    fields = forwarded_trailers(trailers) if trailers else None
    if not fields:
        return LAST_CHUNK
    return b"0\r\n" + b"".join(key + b": " + value + b"\r\n" for key, value in fields) + b"\r\n"
