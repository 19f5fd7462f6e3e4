"""A retry chooses again, over real sockets: another endpoint of the backend first, then
another backend of the split. A 100%-failing canary behind a retryable route does not
reach users, and its failures still show in the per-attempt metrics a canary analysis
reads."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from proxy_configs import AUTHORITY, backend, books, config
from running import RunningProxy

from weft_api.config import OutboundService, RequestMatch, RetryBudget, Route

Start = Callable[..., Awaitable[RunningProxy]]
RETRYABLE = Route("GET /books", RequestMatch(method="GET"), is_retryable=True)
# Room for every retry of these tests: the point is where retries go, not their budget.
ROOMY = RetryBudget(retry_ratio=1.0, min_retries_per_second=100, ttl_ms=10_000)


class Servers:
    """aiohttp servers on loopback answering a fixed status, counting their hits."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.hits: collections.Counter[str] = collections.Counter()
        self.paths: collections.Counter[tuple[str, str]] = collections.Counter()

    async def start(self, name: str, status: int, delay_s: float = 0.0) -> int:
        async def handler(request: web.Request) -> web.Response:
            self.hits[name] += 1
            self.paths[(name, request.path)] += 1
            await asyncio.sleep(delay_s)
            return web.Response(status=status, text=name)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return port


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    found = Servers()
    yield found
    for runner in found.runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Host": AUTHORITY}) as session:
        yield session


def retryable(service: OutboundService) -> OutboundService:
    return dataclasses.replace(service, routes=(RETRYABLE,), retry_budget=ROOMY)


def total(proxy: RunningProxy, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        sample.value
        for family in proxy.proxy.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def statuses(
    http: aiohttp.ClientSession, proxy: RunningProxy, count: int
) -> collections.Counter[int]:
    seen: collections.Counter[int] = collections.Counter()
    for number in range(count):
        url = f"http://127.0.0.1:{proxy.outbound_port}/books/{number}"
        async with http.get(url) as response:
            seen[response.status] += 1
    return seen


async def test_a_failing_canary_at_weight_20_does_not_reach_users(
    servers: Servers, proxies: Start, http: aiohttp.ClientSession
) -> None:
    stable = await servers.start("stable", 200)
    canary = await servers.start("canary", 500)
    split = books(backend("books-stable", 80, [stable]), backend("books-canary", 20, [canary]))
    proxy = await proxies(config(retryable(split)))
    seen = await statuses(http, proxy, 200)
    assert seen[200] >= 198, seen  # >= 99%: a retry moves off the failing canary
    assert servers.hits["canary"] > 0  # it did get its share of first attempts
    assert max(servers.paths.values()) == 1, servers.paths.most_common(3)  # tried once each
    # What the canary did is in the per-attempt families, retries or not: its own 500s
    # (until failure accrual ejects it), then the proxy's 503s for it while ejected.
    canary_failures = total(proxy, "response_total", direction="outbound", classification="failure")
    assert canary_failures >= 10, canary_failures  # ~40 of 200 requests went to it first
    assert total(proxy, "response_total", dst_pod="books-canary-0", status_code="500") >= 7
    assert total(proxy, "response_total", dst_pod="books-stable-0", classification="failure") == 0
    rt = {"rt_route": "GET /books", "dst": f"{AUTHORITY}:80"}
    assert total(proxy, "route_response_total", **rt, classification="success") == seen[200]
    assert total(proxy, "route_actual_response_total", **rt, classification="failure") >= 7


async def test_a_retry_lands_on_the_other_endpoint_of_the_backend(
    servers: Servers, proxies: Start, http: aiohttp.ClientSession
) -> None:
    """The failing endpoint answers at once and the good one takes 20 ms, so the
    balancer (P2C over latency) prefers the failing one: only choosing again keeps a
    retry off it."""
    good = await servers.start("good", 200, delay_s=0.02)
    bad = await servers.start("bad", 500)
    proxy = await proxies(config(retryable(books(backend("books", 1, [good, bad])))))
    seen = await statuses(http, proxy, 100)
    assert seen == {200: 100}, seen
    bad_failures = total(proxy, "response_total", dst_pod="books-1", classification="failure")
    assert bad_failures == servers.hits["bad"] >= 1
    # Every request that tried the bad endpoint was retried on the good one, never on
    # the bad one again: each request reached each endpoint at most once.
    assert servers.hits["good"] == 100
    assert max(servers.paths.values()) == 1, servers.paths.most_common(3)


async def test_a_failing_split_with_nowhere_else_to_go_still_fails(
    servers: Servers, proxies: Start, http: aiohttp.ClientSession
) -> None:
    """With every backend failing, retries end and the client gets the failure."""
    first = await servers.start("first", 500)
    second = await servers.start("second", 500)
    split = books(backend("books-a", 50, [first]), backend("books-b", 50, [second]))
    proxy = await proxies(config(retryable(split)))
    seen = await statuses(http, proxy, 5)
    assert seen[200] == 0, seen


async def test_a_route_that_is_not_retryable_sends_once(
    servers: Servers, proxies: Start, http: aiohttp.ClientSession
) -> None:
    stable = await servers.start("stable", 200)
    canary = await servers.start("canary", 500)
    split = books(backend("books-stable", 80, [stable]), backend("books-canary", 20, [canary]))
    not_retryable = dataclasses.replace(RETRYABLE, is_retryable=False)
    proxy = await proxies(config(dataclasses.replace(split, routes=(not_retryable,))))
    seen = await statuses(http, proxy, 50)
    assert seen[200] + seen[500] + seen[503] == 50
    assert servers.hits["stable"] + servers.hits["canary"] == 50 - seen[503]


async def test_a_request_the_split_does_not_match_is_not_retried_on_its_backends(
    servers: Servers, proxies: Start, http: aiohttp.ClientSession
) -> None:
    """SMI v1alpha3+ matches: a request they leave out goes to the parent Service itself,
    and so do its retries; only the split's own requests may move among its backends."""
    root = await servers.start("root", 500)
    canary = await servers.start("canary", 200)
    service = dataclasses.replace(
        retryable(books(backend("books-canary", 100, [canary]))),
        split_matches=(RequestMatch(path_regex="^/canary"),),
        unmatched_backend=backend("books", 1, [root]),
    )
    proxy = await proxies(config(service))
    seen = await statuses(http, proxy, 5)
    assert seen[200] == 0, seen
    assert servers.hits["canary"] == 0
    url = f"http://127.0.0.1:{proxy.outbound_port}/canary/1"
    async with http.get(url) as response:
        assert response.status == 200
