"""A window of traffic from Prometheus: the increase of each series over the last
window. It expects Linkerd's scrape configuration, which labels each proxy's series
with its pod's `namespace`, `pod` and workload (`deployment`, ...)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp

from weft_cli.errors import CliError
from weft_cli.observe.golden import LATENCY_BUCKETS, RESPONSES, TCP_OPEN
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.routes import ACTUAL_FAMILY, ROUTE_FAMILY
from weft_cli.observe.window import Series, Window

QUERY_TIMEOUT = 15.0
MIN_WINDOW_SECONDS = 15  # Prometheus needs two scrapes in a window (15s: Linkerd's minimum)


# The counters a window reads (endpoint families, and ServiceProfile routes' for
# `weft routes` and the dashboard's routes page); the gauge is read as it is.
COUNTERS = (
    RESPONSES,
    LATENCY_BUCKETS,
    ROUTE_FAMILY + RESPONSES,
    ROUTE_FAMILY + LATENCY_BUCKETS,
    ACTUAL_FAMILY + RESPONSES,
)


def queries(namespaces: Sequence[str], seconds: int) -> dict[str, str]:
    """Metric name -> the PromQL query of its window. `weft stat` and the dashboard
    (weft_viz) both read Prometheus with these."""
    scope = f'{{namespace=~"{"|".join(sorted(namespaces))}"}}' if namespaces else ""
    return {
        **{name: f"increase({name}{scope}[{seconds}s])" for name in COUNTERS},
        TCP_OPEN: f"{TCP_OPEN}{scope}",
    }


def to_series(name: str, result: list[dict[str, Any]]) -> list[Series]:
    return [
        Series(
            name,
            {k: v for k, v in item["metric"].items() if k != "__name__"},
            float(item["value"][1]),
        )
        for item in result
    ]


class PrometheusWindow:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _query(self, session: aiohttp.ClientSession, expression: str) -> list[dict[str, Any]]:
        try:
            async with session.get(
                f"{self.url}/api/v1/query", params={"query": expression}
            ) as answer:
                body = await answer.json(content_type=None)
        except (aiohttp.ClientError, OSError, ValueError) as error:
            reason = str(error) or type(error).__name__
            raise CliError(f"cannot query Prometheus at {self.url}: {reason}") from None
        if body.get("status") != "success":
            raise CliError(f"Prometheus at {self.url} refused {expression!r}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def window(self, pods: Sequence[PodInfo], seconds: float) -> Window:
        whole = max(MIN_WINDOW_SECONDS, round(seconds))
        namespaces = sorted({pod.namespace for pod in pods})
        timeout = aiohttp.ClientTimeout(total=QUERY_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            named = queries(namespaces, whole)
            results = await asyncio.gather(*(self._query(session, q) for q in named.values()))
        series = [
            s for name, result in zip(named, results, strict=True) for s in to_series(name, result)
        ]
        return Window(float(whole), tuple(series))
