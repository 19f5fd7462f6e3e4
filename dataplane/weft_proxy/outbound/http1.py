"""Outbound HTTP/1: each request routed to its parent's route, split to a backend,
balanced to an endpoint, retried within budget, timed out, classified and counted."""

from __future__ import annotations

import functools

from weft_api.config import OutboundService
from weft_proxy.errors import ProxyError, error_response
from weft_proxy.io.http1_client import Http1Pool
from weft_proxy.io.http1_exchange import Exchange, client_body, relay_counted
from weft_proxy.io.http1_server import ClientGone, ClientStream
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
            return await self._routed(head, stream, service, port, authority)
        except ProxyError as failure:
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            if stream.is_closing():
                return False
            stream.write(error_response(failure.status, str(failure)))
            await stream.drain()
            return head.keep_alive

    async def _routed(
        self,
        head: RequestHead,
        stream: ClientStream,
        service: OutboundService,
        port: int,
        authority: str,
    ) -> bool:
        plan = attempts.plan_request(
            self.state,
            service,
            port,
            authority,
            lambda: request_match.RequestHead.from_http1(head),
            head.headers,
        )
        retryable = plan.route is not None and plan.route.is_retryable and not head.upgrade
        body = RequestBody(client_body(head, stream), retryable=retryable)
        exchange = functools.partial(self._exchange, plan, head, stream, body)
        chosen: attempts.Attempt[Exchange] = await attempts.attempt(
            plan, exchange, body.retryable_bytes, self.metrics, self.state.clock
        )
        if self.state.tap.watched:  # the path and peer cost: only for a watcher
            path = head.target.split(b"?", 1)[0].decode("latin-1")
            attempts.tap(self.state.tap, plan, chosen, head.method, path, _peer(stream))

        def settle(complete: bool | None) -> None:
            chosen.settle(self.metrics, ending=_ENDINGS[complete])

        keep_alive = await relay_counted(chosen.answer, stream, settle)
        return keep_alive and head.keep_alive

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
