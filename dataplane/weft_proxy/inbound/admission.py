"""Who may reach this pod, and how what comes in is labelled: the inbound policy of the
current config, the metric labels of each verdict, and tap events of inbound requests.

The HTTP/1, HTTP/2 and TCP servers beside it (`http1`, `http2`, `tcp`) ask it for a
verdict before they forward anything; the proxy asks it how a port is served.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from weft_api.config import Protocol, ProxyConfig
from weft_proxy.metrics import BoundedValues, ProxyMetrics, Target
from weft_proxy.policies.authorize import Client, InboundPolicy, Verdict
from weft_proxy.policies.request_match import RequestHead as MatchableRequest
from weft_proxy.tap.hub import TapEvent, TapHub

APP_HOST = "127.0.0.1"  # the application, on the pod's loopback
MAX_TARGETS = 1024  # label sets kept; remote clients choose some of the values


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


class Admission:
    def __init__(self, metrics: ProxyMetrics, tap: TapHub | None = None) -> None:
        self.metrics = metrics
        self.tap = tap or TapHub()
        self._policy: InboundPolicy | None = None  # None: no config yet, nothing allowed
        self._targets: dict[tuple[object, ...], Target] = {}
        self._authorities = BoundedValues()  # remote clients choose them

    def apply(self, config: ProxyConfig) -> None:
        self._policy = InboundPolicy.of(config)
        self._targets.clear()  # keyed by the identity of the old policy's objects

    def opaque(self, port: int) -> bool:
        """Whether `port` is served as opaque TCP (no protocol detection)."""
        policy = self._policy
        return policy is not None and policy.server_for(port).server.protocol is Protocol.OPAQUE

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
        self, port: int, client: Client, request: Callable[[], MatchableRequest] | None
    ) -> Verdict | None:
        """`request` builds an HTTP request for matching (None: a connection), which
        costs: it is called only when an authorization of the port's server is limited
        to routes."""
        if self._policy is None:
            return None
        server = self._policy.server_for(port)
        matched = request() if request is not None and server.matches_requests else None
        return server.authorize(client, matched)

    def admit_http(
        self,
        port: int,
        client: Client,
        request: Callable[[], MatchableRequest],
        authority: str,
    ) -> Target | None:
        """Authorize an HTTP request, counted as allowed or denied: its metric labels if
        allowed, None if not."""
        verdict = self._authorize(port, client, request)
        if verdict is None or not verdict.allowed:
            if verdict is not None:
                target = self._target(verdict, client, port, authority)
                self.metrics.http_authz_deny(target)
            return None
        target = self._target(verdict, client, port, authority)
        self.metrics.http_authz_allow(target)
        return target

    def admit_tcp(self, port: int, client: Client) -> Target | None:
        """Authorize a TCP connection, counted as allowed or denied: its metric labels if
        allowed, None if not."""
        verdict = self._authorize(port, client, None)
        if verdict is None or not verdict.allowed:
            if verdict is not None:
                target = self._target(verdict, client, port)
                self.metrics.inbound_tcp_authz_deny_total.labels(*target.values()).inc()
            return None
        target = self._target(verdict, client, port)
        self.metrics.inbound_tcp_authz_allow_total.labels(*target.values()).inc()
        return target

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
