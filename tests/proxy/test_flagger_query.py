"""Flagger's linkerd queries, run by a real Prometheus (Debian's) scraping a real proxy,
compute the success rate and latency the traffic really had."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from proxy_configs import allow_all, config

from weft_proxy.proxy import Proxy

# Flagger's queries for provider linkerd (docs/proxy.md, "Metrics"), as it sends them.
SUCCESS_RATE = (
    'sum(rate(response_total{namespace="shop",deployment=~"books",'
    'classification!="failure",direction="inbound"}[1m])) / '
    'sum(rate(response_total{namespace="shop",deployment=~"books",direction="inbound"}[1m]))'
    " * 100"
)
LATENCY_P99 = (
    "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket"
    '{namespace="shop",deployment=~"books",direction="inbound"}[1m])) by (le))'
)


def query(url: str, expression: str) -> float | None:
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            result = json.load(response)["data"]["result"]
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


async def app_failing_one_in_four() -> AsyncIterator[int]:
    count = [0]

    async def handler(request: web.Request) -> web.Response:
        count[0] += 1
        await asyncio.sleep(0.002)
        return web.Response(status=500 if count[0] % 4 == 0 else 200)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def test_flaggers_success_rate_and_latency_queries(
    prometheus: Callable[[list[dict[str, Any]]], str],
) -> None:
    apps = app_failing_one_in_four()
    app_port = await anext(apps)
    proxy = Proxy("shop", inbound_fallback_port=app_port)
    proxy.apply(config(inbound=(allow_all(app_port),)))
    servers = await proxy.listen("127.0.0.1", 0, 0, 0)
    inbound, admin = (servers[i].sockets[0].getsockname()[1] for i in (0, 2))
    try:
        # Labelled as a pod of deployment `books` in namespace `shop`, as Kubernetes
        # service discovery would.
        labels = {"namespace": "shop", "deployment": "books"}
        url = prometheus([{"targets": [f"127.0.0.1:{admin}"], "labels": labels}])
        async with aiohttp.ClientSession() as http:
            rate = None
            for _ in range(120):  # traffic until Prometheus has two scrapes of it
                for _ in range(8):
                    async with http.get(f"http://127.0.0.1:{inbound}/") as response:
                        await response.read()
                rate = await asyncio.to_thread(query, url, SUCCESS_RATE)
                if rate is not None:
                    break
                await asyncio.sleep(0.2)
            assert rate is not None, "Prometheus never computed the success rate"
            assert 70 <= rate <= 80  # every fourth request fails
            p99 = await asyncio.to_thread(query, url, LATENCY_P99)
            assert p99 is not None
            # The app sleeps 2 ms: the query reads real latencies (no upper bound: a
            # loaded machine may take any time).
            assert p99 >= 2
    finally:
        for server in servers:
            server.close()
        await anext(apps, None)
