"""Inbound HTTP/1: each request authorized by the admission, then forwarded to the
application on the pod's loopback over a pooled connection."""

from __future__ import annotations

import functools

from weft_proxy.errors import error_response
from weft_proxy.inbound.admission import APP_HOST, Admission
from weft_proxy.io.http1_callbacks import CallbackExchange, whole_body
from weft_proxy.io.http1_client import Http1Pool
from weft_proxy.io.http1_errors import ClientGone, MalformedResponse
from weft_proxy.io.http1_exchange import Exchange, RequestBody, client_body, relay_counted
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.policies.authorize import Client
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.protocols.http1 import RequestHead


class InboundHttp1:
    def __init__(self, admission: Admission, metrics: ProxyMetrics, clock: Clock) -> None:
        self.admission = admission
        self.metrics = metrics
        self.clock = clock
        self._pools: dict[int, Http1Pool] = {}

    def pool(self, port: int) -> Http1Pool:
        """Keep-alive connections to the application's `port`."""
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = Http1Pool(APP_HOST, port)
        return pool

    async def handle(
        self, head: RequestHead, stream: ClientStream, *, client: Client, port: int
    ) -> bool:
        """Serve one request; True if the client connection may carry another."""
        admitted = self._admitted(head, client, port)
        if admitted is None:
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            stream.write(_unauthorized(port))
            await stream.drain()
            return head.keep_alive
        return await self._forwarded(admitted, stream, client_body(head, stream))

    def serve(self, client: Client, port: int, head: RequestHead, stream: ClientStream) -> bool:
        """`handle`'s work in callbacks, for a request whose body has arrived whole
        (most requests): True once taken (`stream.served` or `hand_off` ends it), False
        to leave it to `handle`."""
        if head.upgrade:
            return False
        whole = whole_body(head, stream)
        if whole is None:
            return False
        admitted = self._admitted(head, client, port)
        if admitted is None:
            stream.refuse(_unauthorized(port), head.keep_alive)
            return True
        pool = self.pool(port)
        connection = pool.idle()
        if connection is None:  # one to open: the task's
            stream.hand_off(functools.partial(self._forwarded, admitted, stream, whole))
            return True
        _InCallbacks(stream, Exchange.sent(pool, connection, head, whole), self, admitted)
        return True

    def _admitted(self, head: RequestHead, client: Client, port: int) -> _Admitted | None:
        """The request, if the admission lets it through (then counted); None if not."""
        authority = (head.header(b"host") or b"").decode("latin-1")
        request = functools.partial(MatchableRequest.from_http1, head)
        target = self.admission.admit_http(port, client, request, authority)
        if target is None:
            return None
        self.metrics.request(target)
        return _Admitted(head, client, port, authority, target, self.clock())

    async def _forwarded(
        self, admitted: _Admitted, stream: ClientStream, body: RequestBody
    ) -> bool:
        head = admitted.head
        try:
            answer = await Exchange.start(self.pool(admitted.port), head, body, stream, stream)
        except ClientGone:
            raise
        except (ConnectionError, OSError, TimeoutError) as error:
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            if stream.is_closing():
                return False
            stream.write(_unanswered(error, admitted.port))
            await stream.drain()
            return head.keep_alive
        latency_ms = self._answered(admitted, answer, stream)

        def count(complete: bool | None) -> None:
            self._count(admitted, answer, latency_ms, complete)

        return await relay_counted(answer, stream, count) and head.keep_alive

    def _answered(self, admitted: _Admitted, answer: Exchange, stream: ClientStream) -> float:
        """The answer's head has come: its latency, published to tap watchers."""
        latency_ms = (self.clock() - admitted.started) * 1000
        admission = self.admission
        if admission.tap.watched:
            head = admitted.head
            path = head.target.split(b"?", 1)[0].decode("latin-1")
            admission.publish_tap(head.method, path, answer.status, latency_ms, admitted.client,
                                  admitted.port, admitted.authority)  # fmt: skip
        return latency_ms

    def _count(
        self, admitted: _Admitted, answer: Exchange, latency_ms: float, complete: bool | None
    ) -> None:
        classification = classify_response((), answer.status) if complete else _FAILURE
        self.metrics.response(admitted.target, answer.status, classification, latency_ms)


_FAILURE = Classification.FAILURE


def _unauthorized(port: int) -> bytes:
    return error_response(403, f"unauthorized request on port {port}")


def _unanswered(error: BaseException, port: int) -> bytes:
    if isinstance(error, MalformedResponse):
        return error_response(502, f"malformed response from the application on port {port}")
    return error_response(502, f"the application refused port {port}")


class _Admitted:
    """A request the admission let through, on its way to the application."""

    __slots__ = ("authority", "client", "head", "port", "started", "target")

    def __init__(
        self,
        head: RequestHead,
        client: Client,
        port: int,
        authority: str,
        target: Target,
        started: float,
    ) -> None:
        self.head = head
        self.client = client
        self.port = port
        self.authority = authority
        self.target = target
        self.started = started


class _InCallbacks(CallbackExchange):
    """A request to the application, in callbacks."""

    __slots__ = ("admitted", "latency_ms", "owner")

    def __init__(
        self, stream: ClientStream, exchange: Exchange, owner: InboundHttp1, admitted: _Admitted
    ) -> None:
        super().__init__(stream, admitted.head, exchange)
        self.owner = owner
        self.admitted = admitted
        self.latency_ms = 0.0

    def answered(self, answer: Exchange | None, error: Exception | None) -> None:
        if answer is None:
            assert error is not None
            self.stream.refuse(_unanswered(error, self.admitted.port), self.head.keep_alive)
            return
        self.latency_ms = self.owner._answered(self.admitted, answer, self.stream)
        self.relay()

    def settle(self, complete: bool | None) -> None:
        self.owner._count(self.admitted, self.exchange, self.latency_ms, complete)
