"""Inbound HTTP/1 and TCP: authorize each request or connection against the port's
server policy, then forward it to the application on the pod's loopback."""

from __future__ import annotations

import asyncio
import time

from weft_api.config import ProxyConfig
from weft_proxy.errors import error_response
from weft_proxy.io.connect import CONNECT_TIMEOUT_S
from weft_proxy.io.http1_client import Http1Pool, MalformedResponse
from weft_proxy.io.http1_exchange import Exchange, client_body, relay_counted
from weft_proxy.io.http1_server import ClientGone, ClientStream
from weft_proxy.io.tcp import forward_counted, reset
from weft_proxy.metrics import BoundedValues, ProxyMetrics, Target
from weft_proxy.policies.authorize import Client, InboundPolicy, Verdict
from weft_proxy.policies.classify import Classification, classify_response
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.protocols.http1 import RequestHead
from weft_proxy.tap.hub import TapEvent, TapHub

APP_HOST = "127.0.0.1"


MAX_TARGETS = 1024


def _target(verdict: Verdict, client: Client, port: int, authority: str = "") -> Target:
    labels = {
        "direction": "inbound",
        "authority": authority,
        "target_addr": f"{APP_HOST}:{port}",
        "srv_kind": verdict.server.kind.value,
        "srv_name": verdict.server.name,
        "tls": "true" if client.tls else "no_identity",
        "no_tls_reason": "" if client.tls else "no_tls_from_remote",
        "client_id": client.identity or "",
    }
    if verdict.authorization is not None:
        labels["authz_kind"] = verdict.authorization.kind.value
        labels["authz_name"] = verdict.authorization.name
    return Target(labels)


class Inbound:
    def __init__(self, metrics: ProxyMetrics, clock: Clock, tap: TapHub | None = None) -> None:
        self.metrics = metrics
        self.clock = clock
        self.tap = tap or TapHub()
        self.policy: InboundPolicy | None = None
        self._pools: dict[int, Http1Pool] = {}
        self._targets: dict[tuple[object, ...], Target] = {}
        self._authorities = BoundedValues()  # remote clients choose them

    def apply(self, config: ProxyConfig) -> None:
        self.policy = InboundPolicy.of(config)
        self._targets.clear()  # keyed by the identity of the old policy's objects

    def _target(self, verdict: Verdict, client: Client, port: int, authority: str = "") -> Target:
        """Labels of a request or connection, kept per distinct label set (bounded)."""
        key = (id(verdict.server), id(verdict.authorization), client.tls, client.identity,
               port, authority)  # fmt: skip
        found = self._targets.get(key)
        if found is None:
            found = _target(verdict, client, port, self._authorities(authority))
            if len(self._targets) < MAX_TARGETS:
                self._targets[key] = found
        return found

    def _authorize(
        self, port: int, client: Client, request: MatchableRequest | None
    ) -> Verdict | None:
        if self.policy is None:  # no config yet: nothing is known to be allowed
            return None
        return self.policy.server_for(port).authorize(client, request)

    def admit_http(
        self, port: int, client: Client, request: MatchableRequest, authority: str
    ) -> Target | None:
        """Authorize an HTTP request, counted as allowed or denied: its metric labels if
        allowed, None if not."""
        verdict = self._authorize(port, client, request)
        if verdict is None or not verdict.allowed:
            if verdict is not None:
                target = self._target(verdict, client, port, authority)
                self.metrics.inbound_http_authz_deny_total.labels(*target.values()).inc()
            return None
        target = self._target(verdict, client, port, authority)
        self.metrics.inbound_http_authz_allow_total.labels(*target.values()).inc()
        return target

    def http1_pool(self, port: int) -> Http1Pool:
        """Keep-alive connections to the application's `port`."""
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = Http1Pool(APP_HOST, port)
        return pool

    async def http1(
        self,
        head: RequestHead,
        stream: ClientStream,
        writer: ClientStream,
        *,
        client: Client,
        port: int,
    ) -> bool:
        authority = (head.header(b"host") or b"").decode("latin-1")
        request = MatchableRequest.from_http1(head)
        target = self.admit_http(port, client, request, authority)
        if target is None:
            if head.upgrade:
                stream.switch_refused()  # no switch: HTTP/1 goes on after the request
            writer.write(error_response(403, f"unauthorized request on port {port}"))
            await writer.drain()
            return head.keep_alive
        self.metrics.request(target)
        started = self.clock()
        try:
            answer = await Exchange.start(
                self.http1_pool(port), head, client_body(head, stream), stream, writer
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
            if writer.is_closing():
                return False
            writer.write(error_response(502, message))
            await writer.drain()
            return head.keep_alive
        latency_ms = (self.clock() - started) * 1000
        if self.tap.watched:
            path = head.target.split(b"?", 1)[0].decode("latin-1")
            self.publish_tap(head.method, path, answer.status, latency_ms, client, port, authority)

        def count(complete: bool | None) -> None:
            classification = (
                classify_response((), answer.status) if complete else Classification.FAILURE
            )
            self.metrics.response(target, answer.status, classification.value, latency_ms)

        return await relay_counted(answer, stream, writer, count) and head.keep_alive

    def publish_tap(
        self,
        method: str,
        path: str,
        status: int,
        latency_ms: float,
        client: Client,
        port: int,
        authority: str,
    ) -> None:
        self.tap.publish(
            TapEvent(
                direction="inbound",
                method=method,
                authority=authority,
                path=path,
                status=status,
                latency_ms=latency_ms,
                tls=client.tls,
                source=str(client.address),
                source_identity=client.identity or "",
                destination=f"{APP_HOST}:{port}",
                timestamp=time.time(),
            )
        )

    async def tcp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_bytes: bytes,
        client: Client,
        port: int,
    ) -> None:
        verdict = self._authorize(port, client, None)
        if verdict is None or not verdict.allowed:
            if verdict is not None:
                target = self._target(verdict, client, port)
                self.metrics.inbound_tcp_authz_deny_total.labels(*target.values()).inc()
            reset(writer)  # denied TCP is refused at once
            return
        target = self._target(verdict, client, port)
        self.metrics.inbound_tcp_authz_allow_total.labels(*target.values()).inc()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                upstream = await asyncio.open_connection(APP_HOST, port)
        except (OSError, TimeoutError):
            reset(writer)
            return
        await forward_counted(self.metrics, target, (reader, writer), upstream, first_bytes)
