"""Inbound HTTP/1: each request authorized by the admission, then forwarded to the
application on the pod's loopback over a pooled connection."""

from __future__ import annotations

import functools

from weft_proxy.errors import error_response
from weft_proxy.inbound.admission import APP_HOST, Admission
from weft_proxy.io.http1_client import Http1Pool, MalformedResponse
from weft_proxy.io.http1_exchange import Exchange, client_body, relay_counted
from weft_proxy.io.http1_server import ClientGone, ClientStream
from weft_proxy.metrics import ProxyMetrics
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
        authority = (head.header(b"host") or b"").decode("latin-1")
        request = functools.partial(MatchableRequest.from_http1, head)
        target = self.admission.admit_http(port, client, request, authority)
        if target is None:
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            stream.write(error_response(403, f"unauthorized request on port {port}"))
            await stream.drain()
            return head.keep_alive
        self.metrics.request(target)
        started = self.clock()
        try:
            answer = await Exchange.start(
                self.pool(port), head, client_body(head, stream), stream, stream
            )
        except ClientGone:
            raise
        except (ConnectionError, OSError, TimeoutError) as error:
            if isinstance(error, MalformedResponse):
                message = f"malformed response from the application on port {port}"
            else:
                message = f"the application refused port {port}"
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            if stream.is_closing():
                return False
            stream.write(error_response(502, message))
            await stream.drain()
            return head.keep_alive
        latency_ms = (self.clock() - started) * 1000
        admission = self.admission
        if admission.tap.watched:
            path = head.target.split(b"?", 1)[0].decode("latin-1")
            admission.publish_tap(head.method, path, answer.status, latency_ms, client, port,
                                  authority)  # fmt: skip

        def count(complete: bool | None) -> None:
            classification = (
                classify_response((), answer.status) if complete else Classification.FAILURE
            )
            self.metrics.response(target, answer.status, classification, latency_ms)

        return await relay_counted(answer, stream, count) and head.keep_alive
