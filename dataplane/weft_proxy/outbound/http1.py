"""Outbound HTTP/1: each request routed to its parent's route, split to a backend,
balanced to an endpoint, retried within budget, timed out, classified and counted."""

from __future__ import annotations

import functools

from weft_api.config import OutboundService
from weft_proxy.errors import ProxyError, error_response
from weft_proxy.io.http1_callbacks import CallbackExchange, whole_body
from weft_proxy.io.http1_client import Http1Pool
from weft_proxy.io.http1_errors import ClientGone
from weft_proxy.io.http1_exchange import Exchange, client_body, relay_counted
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound import attempts
from weft_proxy.outbound.request_body import RequestBody
from weft_proxy.outbound.state import EndpointKey, OutboundState
from weft_proxy.policies import request_match
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.protocols.http1 import RequestHead, find_header

ADDRESS_PORT = tuple[str, int]
_ENDINGS = {
    True: attempts.Ending.COMPLETE,
    False: attempts.Ending.BROKEN,
    None: attempts.Ending.CANCELLED,
}


class OutboundHttp1:
    def __init__(self, state: OutboundState, metrics: ProxyMetrics) -> None:
        self.state = state
        self.metrics = metrics
        self._passthrough: dict[ADDRESS_PORT, Http1Pool] = {}

    async def handle(
        self,
        head: RequestHead,
        stream: ClientStream,
        original_dst: ADDRESS_PORT | None,
    ) -> bool:
        """Serve one request; True if the client connection may carry another."""
        authority = (find_header(head.headers, b"host") or b"").decode("latin-1")
        try:
            state = self.state
            # Known already (most requests): no coroutine for the discovery there is none of.
            found = state.destinations.parent(authority, original_dst)
            if found is None:
                found = await state.find_parent(authority, original_dst)
            if found is None:
                if original_dst is None:
                    raise ProxyError(502, f"no service known for authority {authority!r}")
                return await self._pass_through(head, stream, original_dst, authority)
            service, port = found
            plan = self._plan(head, service, port, authority)
            body = RequestBody(client_body(head, stream), retryable=_retryable(plan, head))
            return await self._attempted(plan, head, stream, body)
        except ProxyError as failure:
            return await _refused(head, stream, failure)

    def serve(
        self, original_dst: ADDRESS_PORT | None, head: RequestHead, stream: ClientStream
    ) -> bool:
        """`handle`'s work in callbacks, for a request to a known parent whose body has
        arrived whole (most requests): True once taken (`stream.served` or `hand_off`
        ends it), False to leave it to `handle`."""
        if head.upgrade:
            return False
        authority = (find_header(head.headers, b"host") or b"").decode("latin-1")
        state = self.state
        found = state.destinations.parent(authority, original_dst)
        if found is None:
            return False
        whole = whole_body(head, stream)
        if whole is None:
            return False
        service, port = found
        try:
            plan = self._plan(head, service, port, authority)
        except ProxyError as failure:
            stream.refuse(error_response(failure.status, str(failure)), head.keep_alive)
            return True
        body = RequestBody(whole, retryable=False)  # (whole: a retry sends it again)
        # A deadline's timer, an ejected backend: the task's.
        key = plan.group.pick() if plan.deadline is None else None
        if key is None:
            stream.hand_off(functools.partial(self._go_on, plan, head, stream, body, None))
            return True
        clock = state.clock
        started = attempts.begin(plan, self.metrics, clock)
        pool = plan.group.pool(key)
        connection = pool.idle()
        if connection is None:  # one to open: the task's, to the endpoint chosen
            resumed = attempts.Resumed(started, key, None)
            stream.hand_off(functools.partial(self._go_on, plan, head, stream, body, resumed))
            return True
        sent = attempts.dispatch(plan, key, None, self.metrics, clock)
        exchange = Exchange.sent(pool, connection, head, whole)
        _InCallbacks(stream, head, exchange, self, plan, body, sent, started)
        return True

    def _plan(
        self, head: RequestHead, service: OutboundService, port: int, authority: str
    ) -> attempts.Plan:
        return attempts.plan_request(
            self.state,
            service,
            port,
            authority,
            lambda: request_match.RequestHead.from_http1(head),
            head.headers,
        )

    async def _go_on(
        self,
        plan: attempts.Plan,
        head: RequestHead,
        stream: ClientStream,
        body: RequestBody,
        resumed: attempts.Resumed | None,
    ) -> bool:
        """A request begun in callbacks, served on by the task (`hand_off`)."""
        try:
            return await self._attempted(plan, head, stream, body, resumed)
        except ProxyError as failure:
            return await _refused(head, stream, failure)

    async def _attempted(
        self,
        plan: attempts.Plan,
        head: RequestHead,
        stream: ClientStream,
        body: RequestBody,
        resumed: attempts.Resumed | None = None,
    ) -> bool:
        exchange = functools.partial(self._exchange, plan, head, stream, body)
        chosen: attempts.Attempt[Exchange] = await attempts.attempt(
            plan, exchange, body.retryable_bytes, self.metrics, self.state.clock, resumed
        )
        if self.state.tap.watched:  # the path and peer cost: only for a watcher
            self._tap(plan, chosen, head, stream)

        def settle(complete: bool | None) -> None:
            chosen.settle(self.metrics, ending=_ENDINGS[complete])

        keep_alive = await relay_counted(chosen.answer, stream, settle)
        return keep_alive and head.keep_alive

    def _tap(
        self,
        plan: attempts.Plan,
        chosen: attempts.Attempt[Exchange],
        head: RequestHead,
        stream: ClientStream,
    ) -> None:
        path = head.target.split(b"?", 1)[0].decode("latin-1")
        attempts.tap(self.state.tap, plan, chosen, head.method, path, _peer(stream))

    async def _exchange(
        self,
        plan: attempts.Plan,
        head: RequestHead,
        stream: ClientStream,
        body: RequestBody,
        key: EndpointKey,
    ) -> Exchange | None:
        # A meshed endpoint's proxy takes HTTP/1 as it is, over mTLS (ALPN http/1.1): in
        # Python, h2 framing and HPACK cost more than a pooled HTTP/1 connection saves (a
        # meshed hop: 1.02x the plain hop's CPU kept HTTP/1, 1.84x upgraded;
        # docs/benchmarks.md). An endpoint hinted HTTP/2 takes HTTP/1 too: the hint comes
        # only with meshed endpoints, whose proxy serves both.
        try:
            return await Exchange.start(
                plan.group.pool(key), head, body.for_attempt(), stream, stream
            )
        except ClientGone:
            raise  # no fault of the endpoint's
        except (ConnectionError, OSError, TimeoutError):
            return None

    async def _pass_through(
        self,
        head: RequestHead,
        stream: ClientStream,
        destination: ADDRESS_PORT,
        authority: str,
    ) -> bool:
        """A destination outside the mesh: forwarded as addressed, without mesh policy."""
        pool = self._passthrough.get(destination)
        if pool is None:
            pool = self._passthrough[destination] = Http1Pool(*destination)
        address = f"{destination[0]}:{destination[1]}"
        target = Target({"direction": "outbound", "authority": authority, "target_addr": address})
        self.metrics.request(target)
        started = self.state.clock()
        try:
            answer = await Exchange.start(pool, head, client_body(head, stream), stream, stream)
        except ClientGone:
            raise
        except (ConnectionError, OSError, TimeoutError) as error:
            raise ProxyError(502, f"connection to {address} failed") from error
        latency_ms = (self.state.clock() - started) * 1000

        def count(complete: bool | None) -> None:
            classification = (
                classify_response((), answer.status) if complete else Classification.FAILURE
            )
            self.metrics.response(target, answer.status, classification, latency_ms)

        keep_alive = await relay_counted(answer, stream, count)
        return keep_alive and head.keep_alive


def _peer(writer: ClientStream) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else ""


def _retryable(plan: attempts.Plan, head: RequestHead) -> bool:
    return plan.route is not None and plan.route.is_retryable and not head.upgrade


async def _refused(head: RequestHead, stream: ClientStream, failure: ProxyError) -> bool:
    """The proxy's own answer, `failure`, to the request."""
    if head.upgrade:
        stream.switch_refused()  # no switch: HTTP/1 goes on after the request
    if stream.is_closing():
        return False
    stream.write(error_response(failure.status, str(failure)))
    await stream.drain()
    return head.keep_alive


class _InCallbacks(CallbackExchange):
    """A request's first attempt, in callbacks: its answer judged as `attempts.attempt`
    judges it; a retry goes on in the task."""

    __slots__ = ("body", "chosen", "owner", "plan", "sent", "started")

    def __init__(
        self,
        stream: ClientStream,
        head: RequestHead,
        exchange: Exchange,
        owner: OutboundHttp1,
        plan: attempts.Plan,
        body: RequestBody,
        sent: attempts.Dispatched,
        started: float,
    ) -> None:
        super().__init__(stream, head, exchange)
        self.owner = owner
        self.plan = plan
        self.body = body
        self.sent = sent
        self.started = started
        self.chosen: attempts.Attempt[Exchange] | None = None

    def answered(self, answer: Exchange | None, error: Exception | None) -> None:
        owner, plan, stream, head = self.owner, self.plan, self.stream, self.head
        metrics, clock = owner.metrics, owner.state.clock
        try:
            verdict = attempts.judge(
                plan, self.sent, answer, None, self.body.retryable_bytes, metrics, clock,
                self.started,
            )  # fmt: skip
        except ProxyError as failure:
            attempts.count_failure(plan, failure, metrics, clock, self.started)
            stream.refuse(error_response(failure.status, str(failure)), head.keep_alive)
            return
        if isinstance(verdict, attempts.Resumed):  # a retry: the task's
            rest = functools.partial(owner._go_on, plan, head, stream, self.body, verdict)
            stream.hand_off(rest)
            return
        self.chosen = verdict
        if owner.state.tap.watched:
            owner._tap(plan, verdict, head, stream)
        self.relay()

    def settle(self, complete: bool | None) -> None:
        if self.chosen is not None:
            self.chosen.settle(self.owner.metrics, ending=_ENDINGS[complete])

    def abandoned(self) -> None:
        self.sent.in_flight.finish()
        super().abandoned()
