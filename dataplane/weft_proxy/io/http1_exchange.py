"""One request on a pooled HTTP/1 connection, and its response relayed: the one copy of
the exchange that outbound (each attempt, and traffic leaving the mesh) and inbound (to
the application) make.

- The request keeps the framing its client gave it: a length stays a length, a chunked
  body is re-chunked with its trailers, a body-less request goes body-less.
- A body that has not all arrived is sent by a task of its own while the response is
  awaited and relayed (both ways at once). 1xx responses reach an HTTP/1.1 client at
  once, so an `Expect: 100-continue` client gets the upstream's `100 Continue`; an
  upstream that answers before reading the body (401, 413) has its answer relayed, and
  if the client may be holding its body back for a 100 that will not come, the answer
  says `Connection: close`.
- A 101 to a switch the client asked for (or a 2xx to CONNECT) turns both connections
  into a tunnel; any other answer lets the client's HTTP/1 go on after its request.
- The upstream connection goes back to its pool only when the exchange ended provably
  at a message boundary: the request sent whole, the response read whole, nothing more
  buffered (more bytes than a response declared, or an unsolicited response, close it).
  Every other ending closes it, a failed relay included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from weft_proxy.io.http1_client import Http1Pool, UpstreamConnection
from weft_proxy.io.http1_connection import Http1Connection, tunnel
from weft_proxy.io.http1_errors import ClientGone, UpstreamClosed
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.protocols.http1 import (
    Body,
    EndOfMessage,
    Framing,
    Headers,
    ProtocolError,
    RequestHead,
    ResponseHead,
    Trailers,
    chunk,
    forwarded_headers,
    last_chunk,
    request_head_bytes,
    response_head_bytes,
)

RequestBody = bytes | AsyncIterator[bytes]

# Python 3.11's EnumType has a __getattr__, which makes each `Framing.X` a slow lookup
# (a method wrapper made and freed): per-message code reads these instead.
_NO_BODY, _LENGTH, _CHUNKED = Framing.NONE, Framing.LENGTH, Framing.CHUNKED
_UNTIL_CLOSE = Framing.UNTIL_CLOSE


class TrailerSource(Protocol):
    """Where a request's trailers are once its body has been read (either stream kind)."""

    @property
    def trailers(self) -> Headers | None: ...


class Relay(Protocol):
    """A response head, to relay to an HTTP/1 client (from HTTP/1 or HTTP/2)."""

    @property
    def upgrade(self) -> bool: ...

    @property
    def keep_client(self) -> bool:
        """After the relay: whether the client connection may carry another request."""
        ...

    async def relay(self, stream: ClientStream) -> bool:
        """True: the response went whole; False: the upstream cut it short (the client
        connection must then end). Raises when the client went away."""
        ...


def client_body(head: RequestHead, stream: ClientStream) -> RequestBody:
    """The body of an HTTP/1 client's request: none (b"") when its head says so, whole
    when all of it has arrived, else a stream of it as it arrives."""
    if head.framing is _NO_BODY or (head.framing is _LENGTH and not head.length):
        return b""
    whole = stream.buffered_body()
    return whole if whole is not None else stream.body()


async def relay_counted(
    answer: Relay, stream: ClientStream, count: Callable[[bool | None], None]
) -> bool:
    """Relay `answer` and count it once it is over: `count(True)` whole (a tunnel: when
    it opens), False cut short by the upstream, None when the client went away. True if
    the client connection may carry another request."""
    if answer.upgrade:
        count(True)
        await answer.relay(stream)
        return False
    outcome: bool | None = None
    try:
        outcome = await answer.relay(stream)
    finally:
        count(outcome)
    return outcome and answer.keep_client


def _expects_continue(request: RequestHead) -> bool:
    expect = request.header(b"expect")
    return expect is not None and request.version == "1.1" and expect.lower() == b"100-continue"


def _write(client: Http1Connection, data: bytes) -> None:
    try:
        client.write(data)
    except RuntimeError as error:  # uvloop's answer to a write on a closed transport
        raise ClientGone("the client went away") from error


_SPECIAL_METHODS = frozenset({"HEAD", "CONNECT"})  # their responses' framing differs


class Exchange:
    """A request sent on a pooled connection, and its final response head: an `Answer`
    for the attempt loop, then relayed (`relay`).

    Each phase is a step that takes what the upstream connection has parsed already
    and says whether the phase is over: sending (`_send`), awaiting the final head
    (`took_head`), relaying the body (`pour`). The coroutines only wait between
    steps, so a response that arrives whole costs one wait, not one per event.
    """

    __slots__ = (
        "_chunked",
        "_client_error",
        "_continued",
        "_done",
        "_out",
        "_pump",
        "_trailers",
        "connection",
        "head",
        "keep_client",
        "pool",
        "request",
        "status",
        "upgrade",
    )
    grpc_status = None

    def __init__(self, pool: Http1Pool, connection: UpstreamConnection, request: RequestHead):
        self.pool = pool
        self.connection = connection
        self.request = request
        self.head: ResponseHead
        self.status = 0  # the final response's (an attribute: read on every request)
        self.upgrade = False  # the response switches protocols: a tunnel follows
        self.keep_client = request.keep_alive
        self._pump: asyncio.Task[bool] | None = None
        self._client_error: BaseException | None = None  # the pump's, reading the client
        self._done = False  # released or closed
        self._continued = False  # a 100 Continue came before the final head
        # The relay's: what is to be written to the client next, and how.
        self._out: list[bytes] = []
        self._chunked = False
        self._trailers: Headers | None = None

    @classmethod
    async def start(
        cls,
        pool: Http1Pool,
        request: RequestHead,
        body: RequestBody,
        source: TrailerSource | None = None,
        client: Http1Connection | None = None,
    ) -> Exchange:
        """Send `request` (its trailers from `source`) and wait for the final response
        head, relaying 1xx ones to `client` (an HTTP/1 client's connection).

        Raises ConnectionError, OSError or TimeoutError when the upstream does not
        answer (MalformedResponse when it answers garbage); what the client's side
        raised (ClientGone, ProtocolError, StreamReset) when its body broke off.
        """
        connection = pool.idle() or await pool.acquire()
        exchange = cls(pool, connection, request)
        try:
            if exchange._send(body, source):
                await connection.drain()
            while not exchange.took_head(client):
                await connection.arrival()
        except BaseException as error:
            exchange.close()
            if exchange._pump is not None:  # no other reader of the client's stream
                await asyncio.wait((exchange._pump,))  # may start before it has stopped
            if isinstance(error, ConnectionError | OSError):
                failure = exchange._client_failure()
                if failure is not None:
                    raise failure from None
            raise
        pump = exchange._pump
        if (
            pump is not None
            and not exchange._continued
            and not pump.done()
            and _expects_continue(request)
        ):
            # The final answer came first: the client, waiting for a 100, may never send
            # its body. It is not sent, and the client connection ends with this answer.
            pump.cancel()
            exchange.keep_client = False
        return exchange

    def _send(self, body: RequestBody, source: TrailerSource | None) -> bool:
        """Send the request as its client framed it: a body in one segment at once, one
        still arriving by a task of its own. True if the writer must be drained."""
        request, connection = self.request, self.connection
        if request.upgrade or request.method in _SPECIAL_METHODS:
            connection.responses.expect(request.method, switch=request.upgrade)
        headers = forwarded_headers(request.headers, keep_upgrade=request.upgrade)
        chunked = request.framing is _CHUNKED
        if chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        head = request_head_bytes(request.method, request.target, headers)
        if isinstance(body, bytes):  # one segment
            if chunked:
                trailers = source.trailers if source is not None else None
                connection.write(head + (chunk(body) if body else b"") + last_chunk(trailers))
            else:
                connection.write(head + body if body else head)
            return connection.must_drain
        connection.write(head)
        self._pump = asyncio.create_task(self._send_body(body, chunked, source))
        return False

    @classmethod
    def sent(
        cls, pool: Http1Pool, connection: UpstreamConnection, request: RequestHead, body: bytes
    ) -> Exchange:
        """The request sent, with its whole `body`, on an idle `connection` of `pool`:
        for an exchange driven in callbacks (`took_head`, `relay_head`, `pour`)."""
        exchange = cls(pool, connection, request)
        exchange._send(body, None)
        return exchange

    def took_head(self, client: Http1Connection | None) -> bool:
        """Take the events parsed so far up to the final response head: True once it has
        come. Interim (1xx) heads go to an HTTP/1.1 client at once, never to HTTP/1.0.
        Raises as `UpstreamConnection.next_event` once no more will come."""
        connection = self.connection
        events = connection.events
        while events:
            event = events.popleft()
            if type(event) is not ResponseHead:
                if type(event) is Body:
                    connection.took(event)
                continue  # an interim response's end
            if event.status >= 200 or event.upgrade:
                self.head = event
                self.status = event.status
                self.upgrade = event.upgrade
                return True
            if client is not None and self.request.version == "1.1":
                interim = forwarded_headers(event.headers)
                _write(client, response_head_bytes(event.status, event.reason, interim))
            self._continued = self._continued or event.status == 100
        connection.raise_ended()
        return False

    def discard(self) -> None:
        """Give up on the response (a retry follows, or the relay is over): its
        connection is spent unless `finish` released it."""
        if not self._done:
            self.close()

    async def _send_body(
        self, body: AsyncIterator[bytes], chunked: bool, source: TrailerSource | None
    ) -> bool:
        """The body, as it arrives: True once all of it is sent, False if it was not.
        Runs beside the wait for the response and its relay."""
        writer = self.connection
        while True:
            try:
                data = await anext(body)
            except StopAsyncIteration:
                break
            except Exception as error:  # the client broke its body off, or sent a bad one
                self._client_error = error
                self.connection.close()  # it cannot complete upstream: end the wait there
                return False
            if data and not _sent(writer, chunk(data) if chunked else data):
                return False
            if not await _drained(writer):
                return False  # the upstream stopped reading: its answer may still come
        if chunked:
            trailers = source.trailers if source is not None else None
            return _sent(writer, last_chunk(trailers)) and await _drained(writer)
        return True

    def _client_failure(self) -> BaseException | None:
        """Why the exchange failed on the client's side, if it did."""
        error = self._client_error
        if error is None or isinstance(error, ClientGone | ProtocolError):
            return error
        if isinstance(error, ConnectionError | OSError):
            return ClientGone(str(error) or type(error).__name__)
        return error  # an HTTP/2 client's StreamReset, say: its stack knows it

    # --- the response --------------------------------------------------------------------
    async def relay(self, stream: ClientStream) -> bool:
        """Relay the response to an HTTP/1 client: True if whole. A tunnel, once agreed,
        lasts until both sides end it."""
        if self.upgrade:
            try:
                await self._tunnel(stream)
            except BaseException:
                self.connection.close()
                raise
            return True
        if self.request.upgrade:
            stream.switch_refused()
        self.relay_head(stream.draining)
        return await self.relay_rest(stream)

    async def relay_rest(self, stream: ClientStream) -> bool:
        """The relay, after its head (and what was poured since): as `relay`."""
        connection = self.connection
        try:
            while True:
                complete = self.pour(stream)
                if complete is not None:
                    if complete and stream.must_drain:
                        await stream.drain()  # before the next request
                    break
                if stream.must_drain:
                    await stream.drain()
                    continue  # what arrived meanwhile is poured first
                await connection.arrival()
        except BaseException:
            self.close()
            raise
        if self._pump is None:
            self.release(complete)  # (what `finish` does, without its coroutine)
        else:
            await self.finish(complete)
        return complete

    def relay_head(self, draining: bool) -> None:
        """The response head as the client gets it: a body of known length streams as
        is; a chunked one is re-chunked with its trailers, and one delimited by the
        upstream's close is chunked for an HTTP/1.1 client. `draining`: the client
        connection ends after this response, and the head says so (RFC 9112 9.6)."""
        head, request = self.head, self.request
        if draining:
            self.keep_client = False
        headers = forwarded_headers(head.headers)
        framing = head.framing
        if framing is _CHUNKED or framing is _UNTIL_CLOSE:
            if request.version == "1.1":
                self._chunked = True
                headers.append((b"transfer-encoding", b"chunked"))
            else:  # HTTP/1.0 has no chunks: the body ends where the connection does
                self.keep_client = False
        if not self.keep_client:
            headers.append((b"connection", b"close"))
        elif request.version == "1.0":
            headers.append((b"connection", b"keep-alive"))
        self._out.append(response_head_bytes(head.status, head.reason, headers))

    def pour(self, client: Http1Connection) -> bool | None:
        """Write to the client what has arrived of the response, in one go (a small
        response: head and body in one segment). True once all of it went, False if the
        upstream cut it short, None while more is to come."""
        connection = self.connection
        events, out, chunked = connection.events, self._out, self._chunked
        while events:
            event = events.popleft()
            if type(event) is Body:
                connection.took(event)
                if event.data:
                    out.append(chunk(event.data) if chunked else event.data)
            elif type(event) is EndOfMessage:
                return self._poured(client)
            elif type(event) is Trailers:
                self._trailers = event.headers
        if out:
            _write(client, b"".join(out))
            out.clear()
        try:
            connection.raise_ended()
        except (ConnectionError, OSError) as error:
            until_close = self.head.framing is _UNTIL_CLOSE
            if until_close and isinstance(error, UpstreamClosed) and not self._client_error:
                return self._poured(client)  # the end of a body delimited by the close
            return self._cut(client, out)
        return None

    def _poured(self, client: Http1Connection) -> bool:
        """The response's end: the rest of it, and the last chunk if chunked."""
        out = self._out
        if self._chunked:
            out.append(last_chunk(self._trailers))
        _write(client, b"".join(out))
        out.clear()
        return True

    def _cut(self, client: Http1Connection, out: list[bytes]) -> bool:
        """The upstream cut the response short: the client gets what came, then its
        connection ends (HTTP/1 has no other way to say so)."""
        failure = self._client_failure()
        if failure is not None:  # it was the client breaking its body off
            raise failure
        if out:
            _write(client, b"".join(out))
        self.keep_client = False
        return False

    async def finish(self, complete: bool) -> None:
        """The response is over (`complete`: read whole): the connection goes back to
        its pool if the exchange ended at a message boundary, else it is closed."""
        if self._done:
            return
        pump = self._pump
        if pump is not None:
            if not pump.done():  # the upstream answered before the body ended
                pump.cancel()
                await asyncio.wait((pump,))  # it no longer reads the client's stream
                complete = False
            elif pump.cancelled() or pump.exception() is not None or not pump.result():
                complete = False  # the request did not go whole
        self.release(complete)

    def release(self, complete: bool) -> None:
        """The response is over, with no body still being sent: as `finish`."""
        head = self.head
        self._done = True
        reusable = complete and head.keep_alive and head.framing is not _UNTIL_CLOSE
        self.pool.release(self.connection, reusable)

    async def _tunnel(self, client: ClientStream) -> None:
        """After 101 Switching Protocols (WebSocket), or 2xx to CONNECT: bytes both ways,
        as they are, until both sides have ended."""
        head, connection = self.head, self.connection
        self._done = True
        self.keep_client = False
        headers = forwarded_headers(head.headers, keep_upgrade=True)
        _write(client, response_head_bytes(head.status, head.reason, headers))
        held = connection.tunnel_bytes()
        if held:
            client.write(held)
        held = client.tunnel_bytes()
        if held:
            connection.write(held)
        await tunnel(client, connection)

    def close(self) -> None:
        self._done = True
        if self._pump is not None:
            self._pump.cancel()
        self.connection.close()


def _sent(writer: Http1Connection, data: bytes) -> bool:
    if writer.is_closing():
        return False
    writer.write(data)
    return True


async def _drained(writer: Http1Connection) -> bool:
    try:
        await writer.drain()
    except (ConnectionError, OSError):
        return False
    return True
