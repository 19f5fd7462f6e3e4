"""Per-parent runtime state, rebuilt when config changes while endpoints keep their load,
failure history and idle connections."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable

from weft_api.config import Backend, Endpoint, OutboundService
from weft_proxy.identity.credentials import ALPN_H2, ALPN_HTTP1
from weft_proxy.io.connect import Connector
from weft_proxy.io.http1_client import Http1Pool
from weft_proxy.io.http2_client import Http2Pool
from weft_proxy.metrics import ROUTE_LABELS, BoundedValues, Target
from weft_proxy.outbound.destinations import Destinations
from weft_proxy.policies.balance import P2cBalancer
from weft_proxy.policies.clock import Clock
from weft_proxy.policies.failure_accrual import FailureAccrual
from weft_proxy.policies.retry_budget import RetryBudgetTracker
from weft_proxy.policies.routes import RouteTable
from weft_proxy.policies.split import BackendSplit
from weft_proxy.tap.hub import TapHub

EndpointKey = tuple[str, int]
DISCOVERY_TIMEOUT_S = 3.0
MAX_TARGETS = 1024


def endpoint_target(
    service: OutboundService, authority: str, endpoint: Endpoint, route: str = ""
) -> Target:
    labels = dict(endpoint.labels)
    labels.update(
        direction="outbound",
        authority=authority,
        rt_route=route,  # the ServiceProfile route matched, for `weft routes`
        target_addr=f"{endpoint.address}:{endpoint.port}",
        server_id=endpoint.identity or "",
        # A meshed endpoint is reached over mTLS or not at all (io.connect).
        tls="true" if endpoint.identity else "no_identity",
        no_tls_reason="" if endpoint.identity else "not_provided_by_service_discovery",
    )
    labels.setdefault("dst_namespace", service.namespace)
    labels.setdefault("dst_service", service.name)
    return Target(labels)


class EndpointGroup:
    """The endpoints serving one parent port through one backend."""

    def __init__(
        self, clock: Clock, rng: random.Random, connector: Connector, backend: Backend
    ) -> None:
        self.connector = connector
        self.backend = backend
        self.balancer: P2cBalancer[EndpointKey] = P2cBalancer(clock, rng)
        self.accrual: FailureAccrual[EndpointKey] = FailureAccrual(clock, rng)
        self.endpoints: dict[EndpointKey, Endpoint] = {}
        self._pools: dict[EndpointKey, Http1Pool] = {}
        self._h2_pools: dict[EndpointKey, Http2Pool] = {}  # one connection per endpoint
        # By (endpoint, authority, route); endpoint None: the proxy's own answers.
        self._targets: dict[tuple[EndpointKey | None, str, str], Target] = {}
        self._authorities = BoundedValues()  # the app writes the Host header

    def update(self, endpoints: Iterable[Endpoint]) -> None:
        previous = self.endpoints
        self.endpoints = {(e.address, e.port): e for e in endpoints}
        for pools in (self._pools, self._h2_pools):
            for key in list(pools):
                now, before = self.endpoints.get(key), previous.get(key)
                # A pool's connections prove the identity the endpoint had: a new one
                # (another pod at the address) needs new connections.
                if now is None or before is None or now.identity != before.identity:
                    pools.pop(key).close()
        self._targets.clear()  # labels may have changed with the endpoints
        self.balancer.update(self.endpoints)

    def pick(self) -> EndpointKey | None:
        return self.balancer.pick(self.accrual.is_available)

    def pool(self, key: EndpointKey) -> Http1Pool:
        pool = self._pools.get(key)
        if pool is None:
            identity = self.endpoints[key].identity
            opener = self.connector.opener(*key, identity, ALPN_HTTP1)
            pool = self._pools[key] = Http1Pool(*key, opener=opener)
        return pool

    def target(
        self, key: EndpointKey, authority: str, service: OutboundService, route: str = ""
    ) -> Target:
        """The metric labels of requests to endpoint `key` under `authority`."""
        found = self._targets.get((key, authority, route))
        if found is not None:  # (without making the closure below, on every request)
            return found
        return self._target(
            (key, authority, route),
            lambda: endpoint_target(
                service, self._authorities(authority), self.endpoints[key], route
            ),
        )

    def failure_target(self, authority: str, route: str = "") -> Target:
        """The labels of an answer the proxy gave itself for this backend (every
        endpoint ejected, unreachable, timed out): no endpoint, the backend's Service."""

        def make() -> Target:
            labels = {
                "direction": "outbound",
                "authority": self._authorities(authority),
                "rt_route": route,
                "dst_namespace": self.backend.namespace,
                "dst_service": self.backend.name,
            }
            return Target(labels)

        return self._target((None, authority, route), make)

    def _target(
        self, key: tuple[EndpointKey | None, str, str], make: Callable[[], Target]
    ) -> Target:
        found = self._targets.get(key)
        if found is None:
            found = make()
            if len(self._targets) < MAX_TARGETS:  # authorities are client-chosen: bound them
                self._targets[key] = found
        return found

    def h2_pool(self, key: EndpointKey) -> Http2Pool:
        pool = self._h2_pools.get(key)
        if pool is None:
            opener = self.connector.opener(*key, self.endpoints[key].identity, ALPN_H2)
            pool = self._h2_pools[key] = Http2Pool(*key, opener=opener)
        return pool

    def close(self) -> None:
        for pools in (self._pools, self._h2_pools):
            for pool in pools.values():
                pool.close()


class ServiceState:
    def __init__(
        self,
        service: OutboundService,
        clock: Clock,
        rng: random.Random,
        connector: Connector,
        previous: ServiceState | None = None,
    ) -> None:
        self.service = service
        self.routes = RouteTable.of(service)
        self.split = BackendSplit(service, rng)
        self.matches_requests = bool(service.routes or service.split_matches)
        self.budget: RetryBudgetTracker
        if previous is not None and previous.service.retry_budget == service.retry_budget:
            self.budget = previous.budget  # keeps its window of recent requests
        else:
            self.budget = RetryBudgetTracker(service.retry_budget, clock)
        # By (port, route name): both come from config, so the map stays small.
        self._route_targets: dict[tuple[int, str], Target] = {}
        self._unrouted: dict[int, tuple[EndpointGroup | None, tuple[Backend, ...]]] = {}
        kept = previous.groups if previous is not None else {}
        self.groups: dict[tuple[str, str, int], EndpointGroup] = {}
        backends = list(service.backends)
        if service.unmatched_backend is not None:
            backends.append(service.unmatched_backend)
        for backend in backends:
            for backend_port in backend.ports:
                key = (backend.namespace, backend.name, backend_port.port)
                # The key names the backend: a kept group's backend is the same Service.
                group = kept.pop(key, None) or EndpointGroup(clock, rng, connector, backend)
                group.update(backend_port.endpoints)
                self.groups[key] = group
        for stale in kept.values():
            stale.close()

    def group(self, backend: Backend, port: int) -> EndpointGroup | None:
        return self.groups.get((backend.namespace, backend.name, port))

    def drawn(
        self, backend: Backend | None, port: int
    ) -> tuple[EndpointGroup | None, tuple[Backend, ...]]:
        """The group of the backend the split drew, and the backends a retry may draw
        again among (none when the request fell to the unmatched backend)."""
        service = self.service
        split_backends = service.backends if backend is not service.unmatched_backend else ()
        return (self.group(backend, port) if backend is not None else None), split_backends

    def unrouted(self, port: int) -> tuple[EndpointGroup | None, tuple[Backend, ...]]:
        """For a request that is not matched (the parent has no routes nor split
        matches): the group the split draws and the backends a retry may draw again
        among. Kept per port when the split has one backend, as most parents' do."""
        found = self._unrouted.get(port)
        if found is not None:
            return found
        found = self.drawn(self.split.pick(None), port)
        if self.split.fixed:
            self._unrouted[port] = found
        return found

    def route_target(self, port: int, route: str) -> Target | None:
        """The labels of the route_* families for a request on `port` that matched
        `route` ("": none did); None for a Service without routes (no ServiceProfile):
        it has no route metrics, as in Linkerd."""
        if not self.service.routes:
            return None
        found = self._route_targets.get((port, route))
        if found is None:
            labels = {
                "direction": "outbound",
                "dst": f"{self.service.authority}:{port}",
                "rt_route": route,
            }
            found = self._route_targets[(port, route)] = Target(labels, ROUTE_LABELS)
        return found


class OutboundState:
    """Everything the outbound stack knows; `apply` swaps in a new config atomically."""

    def __init__(self, namespace: str, clock: Clock, rng: random.Random | None = None) -> None:
        self.namespace = namespace
        self.clock = clock
        self.rng = rng or random.Random()
        self.destinations = Destinations((), namespace)
        self.services: dict[tuple[str, str], ServiceState] = {}
        # Subscribes to a target (an authority, or "ip:port") and returns once a config
        # that resolves it has been applied; None: the config is static (tests, benches).
        self.discover: Callable[[str], Awaitable[object]] | None = None
        self.tap = TapHub()
        self.connector = Connector()

    def apply(self, services: Iterable[OutboundService]) -> None:
        services = list(services)
        previous = self.services
        self.services = {
            (s.namespace, s.name): ServiceState(
                s,
                self.clock,
                self.rng,
                self.connector,
                previous.pop((s.namespace, s.name), None),
            )
            for s in services
        }
        for gone in previous.values():
            for group in gone.groups.values():
                group.close()
        self.destinations = Destinations(services, self.namespace)

    async def find_parent(
        self, authority: str, original_dst: tuple[str, int] | None
    ) -> tuple[OutboundService, int] | None:
        """The parent of a request, subscribing to it on first use (as Linkerd's
        destination lookups) so no proxy holds the whole mesh."""
        found = self.destinations.parent(authority, original_dst)
        if found is not None or self.discover is None:
            return found
        targets = [authority] if authority else []
        if original_dst is not None:
            targets.append(f"{original_dst[0]}:{original_dst[1]}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DISCOVERY_TIMEOUT_S):
                await asyncio.gather(*(self.discover(target) for target in targets))
        return self.destinations.parent(authority, original_dst)

    async def resolve_address(self, destination: tuple[str, int]) -> OutboundService | None:
        """The mesh Service at `destination` (a cluster IP), discovered on first use:
        whether a connection is the mesh's (HTTP/2, opaque TCP) is decided by it."""
        found = self.destinations.by_address(*destination)
        if found is None and self.discover is not None:
            await self.find_parent("", destination)
            found = self.destinations.by_address(*destination)
        return found

    def state_of(self, service: OutboundService) -> ServiceState:
        return self.services[(service.namespace, service.name)]
