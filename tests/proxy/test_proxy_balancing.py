"""Balancing and failure accrual over real sockets: a slow endpoint gets less traffic, a
failing one is ejected, probed after its backoff, and restored once it answers well."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from proxy_configs import AUTHORITY, backend, books, config

from weft_proxy.proxy import Proxy


async def serve(handler: web.StreamResponse | object) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(headers={"Host": AUTHORITY}, connector=connector) as s:
        yield s


async def start(*ports: int) -> tuple[Proxy, str, list[asyncio.Server]]:
    proxy = Proxy("shop")
    proxy.apply(config(books(backend("books", 1, list(ports)))))
    servers = await proxy.listen("127.0.0.1", 0, 0, 0)
    return proxy, f"http://127.0.0.1:{servers[1].sockets[0].getsockname()[1]}", servers


async def test_the_slow_endpoint_gets_measurably_less_traffic(
    http: aiohttp.ClientSession,
) -> None:
    hits: collections.Counter[str] = collections.Counter()

    def endpoint(name: str, delay: float) -> object:
        async def handler(request: web.Request) -> web.Response:
            hits[name] += 1
            await asyncio.sleep(delay)
            return web.Response(text=name)

        return handler

    fast_runner, fast = await serve(endpoint("fast", 0.002))
    slow_runner, slow = await serve(endpoint("slow", 0.050))
    _, url, servers = await start(fast, slow)

    async def client() -> None:
        for _ in range(25):
            async with http.get(f"{url}/") as response:
                assert response.status == 200

    await asyncio.gather(*(client() for _ in range(8)))
    total = hits["fast"] + hits["slow"]
    assert total == 200
    assert hits["slow"] < 0.3 * total, hits  # round robin would give it half
    for server in servers:
        server.close()
    await fast_runner.cleanup()
    await slow_runner.cleanup()


async def test_a_failing_endpoint_is_ejected_probed_and_restored(
    http: aiohttp.ClientSession,
) -> None:
    failing = {"now": True}
    hits: collections.Counter[str] = collections.Counter()

    async def flaky(request: web.Request) -> web.Response:
        hits["flaky"] += 1
        return web.Response(status=500 if failing["now"] else 200)

    async def steady(request: web.Request) -> web.Response:
        hits["steady"] += 1
        return web.Response()

    flaky_runner, flaky_port = await serve(flaky)
    steady_runner, steady_port = await serve(steady)
    _, url, servers = await start(flaky_port, steady_port)

    async def burst(count: int) -> list[int]:
        statuses = []
        for _ in range(count):
            async with http.get(f"{url}/") as response:
                statuses.append(response.status)
        return statuses

    started = time.monotonic()
    await burst(60)  # 7 consecutive failures eject the flaky endpoint
    before = hits["flaky"]
    statuses = await burst(30)
    # Ejected: it would get half the traffic; now only a probe each time its backoff
    # (1 s, then doubling: probes at 1, 3, 7, 15 s...) runs out, each failing and
    # re-ejecting it. How many fit depends on how long the bursts took on this machine.
    probes = math.floor(math.log2(time.monotonic() - started + 1)) + 1
    assert statuses.count(500) <= probes, (statuses.count(500), probes)
    assert hits["flaky"] - before <= probes
    failing["now"] = False
    restored = hits["flaky"]
    for _ in range(30):  # until the backoff (1 s, doubled by failed probes) runs out
        # Concurrent load: with requests pending on the steady endpoint, P2C spreads them.
        results = await asyncio.gather(*(burst(15) for _ in range(8)))
        assert all(status == 200 for statuses in results for status in statuses)
        if hits["flaky"] > restored + 10:
            break
        await asyncio.sleep(0.5)
    assert hits["flaky"] > restored + 10  # probed, succeeded, restored to the pool
    for server in servers:
        server.close()
    await flaky_runner.cleanup()
    await steady_runner.cleanup()
