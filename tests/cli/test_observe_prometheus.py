"""`weft stat --prometheus`: the same figures from a real Prometheus (Debian's) scraping
real proxies, labelled with their pods as Linkerd's scrape configuration labels them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from live_mesh import LiveMesh, live_mesh
from weft_runner import weft_async

from weft_localcluster import ports


def scrape_targets(mesh: LiveMesh) -> list[dict[str, Any]]:
    """Every proxy of `mesh`, labelled with its pod as Linkerd's scrape config does."""
    return [
        {
            "targets": [proxy.admin_address],
            "labels": {
                "namespace": proxy.namespace,
                "pod": proxy.pod,
                "deployment": proxy.deployment,
            },
        }
        for proxy in mesh.proxies
    ]


async def test_stat_reads_the_same_figures_from_prometheus(
    tmp_path: Path, prometheus: Callable[[list[dict[str, Any]]], str]
) -> None:
    async with live_mesh("shop") as mesh:
        url = prometheus(scrape_targets(mesh))
        stop = asyncio.Event()
        traffic = asyncio.create_task(mesh.traffic(stop, per_second=100))
        try:
            # The pods from a file (no cluster here); their series from Prometheus.
            pods = mesh.write_proxies_file(tmp_path / "proxies.yaml")
            args = ("-n", "shop", "--prometheus", url, "--proxies-file", str(pods))
            rows: dict[str, Any] = {}
            for _ in range(120):  # until Prometheus has scraped the traffic twice
                await asyncio.sleep(1)
                ran = await weft_async("stat", "deploy", *args, "-o", "json")
                assert ran.code == 0, ran.stderr
                rows = {row["name"]: row for row in json.loads(ran.stdout)}
                # Both deployments' proxies scraped (they are scraped independently).
                deployments = ("books-stable", "books-canary")
                if all(rows.get(name, {}).get("success") is not None for name in deployments):
                    break
        finally:
            stop.set()
            await traffic
    stable, canary = rows["books-stable"], rows["books-canary"]
    assert stable["success"] == 1.0
    assert 0.6 <= canary["success"] <= 0.9  # one request in four fails
    assert stable["rps"] > canary["rps"] > 0
    assert stable["latency_ms_p50"] is not None


async def test_an_unreachable_prometheus_is_one_line(tmp_path: Path) -> None:
    proxies = tmp_path / "proxies.yaml"
    proxies.write_text("proxies: [{namespace: shop, pod: web-0, admin: 127.0.0.1:1}]\n")
    url = f"http://127.0.0.1:{ports.pick_free()}"
    ran = await weft_async("stat", "ns", "--prometheus", url, "--proxies-file", str(proxies))
    assert f"cannot query Prometheus at {url}" in ran.one_line_error
