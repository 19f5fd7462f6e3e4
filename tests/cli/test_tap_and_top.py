"""`weft tap` and `weft top` against the proxies' real Tap gRPC service on loopback.

The events are published into each service's hub by the test, as the proxy's stacks
publish them; the filters are applied by the service, as in a proxy. (Tests of the
proxy itself cover its hub and service; these cover the CLI's streams, merging,
filters and output.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from grpclib.server import Server
from weft_runner import Ran, weft_async

from weft_proxy.tap.hub import TapEvent, TapHub
from weft_proxy.tap.service import TapService, start_tap_server


@dataclass
class TappedProxy:
    pod: str
    hub: TapHub
    server: Server
    port: int


@pytest.fixture
async def tapped() -> AsyncIterator[list[TappedProxy]]:
    proxies = []
    for pod in ("web-0", "books-0"):
        hub = TapHub()
        server, port = await start_tap_server(TapService(hub), "127.0.0.1", 0)
        proxies.append(TappedProxy(pod, hub, server, port))
    yield proxies
    for proxy in proxies:
        proxy.server.close()
        await proxy.server.wait_closed()


def proxies_file(path: Path, proxies: list[TappedProxy], tap_port: int | None = None) -> Path:
    entries = [
        {
            "namespace": "shop",
            "pod": proxy.pod,
            "deployment": proxy.pod.rsplit("-", 1)[0],
            "admin": "127.0.0.1:1",
            "tap": f"127.0.0.1:{tap_port or proxy.port}",
        }
        for proxy in proxies
    ]
    path.write_text(yaml.safe_dump({"proxies": entries}))
    return path


def request(
    path: str, method: str = "GET", status: int = 200, direction: str = "outbound"
) -> TapEvent:
    return TapEvent(
        direction=direction,
        method=method,
        authority="books.shop.svc.cluster.local",
        path=path,
        status=status,
        latency_ms=2.5,
        tls=False,
        source="10.244.0.5:40000",
        destination="10.244.0.7:8080",
        destination_service="shop/books",
        timestamp=time.time(),
    )


async def publish_while(
    command: asyncio.Task[Ran], proxies: list[TappedProxy], *events: TapEvent
) -> Ran:
    """Once every proxy has a watcher, publish the events (again and again, as traffic
    would) until the command ends."""
    while not command.done():
        if all(proxy.hub.watched for proxy in proxies):
            for proxy in proxies:
                for event in events:
                    proxy.hub.publish(event)
        await asyncio.sleep(0.05)
    return await command


async def test_tap_streams_the_filtered_requests_of_every_proxy(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    command = asyncio.create_task(
        weft_async(
            "tap",
            "-n",
            "shop",
            "--proxies-file",
            str(file),
            "--method",
            "get",
            "--limit",
            "6",
            "-o",
            "json",
        )
    )
    ran = await publish_while(command, tapped, request("/books", "POST"), request("/books/1"))
    assert ran.code == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(events) == 6
    assert {event["method"] for event in events} == {"GET"}  # POSTs filtered at the proxies
    assert {event["proxy"] for event in events} == {"shop/web-0", "shop/books-0"}
    assert events[0]["time"].endswith("Z")


async def test_tap_to_a_service_and_from_an_account(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped[:1])
    elsewhere = request("/authors")
    elsewhere.destination_service = "shop/authors"
    command = asyncio.create_task(
        weft_async(
            "tap",
            "deploy/web",
            "-n",
            "shop",
            "--proxies-file",
            str(file),
            "--to",
            "books",
            "--limit",
            "3",
        )
    )
    ran = await publish_while(
        command, tapped[:1], elsewhere, request("/books/2"), request("/in", direction="inbound")
    )
    assert ran.code == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == 3
    assert all("outbound GET books.shop.svc.cluster.local/books/2 -> 200" in line for line in lines)
    assert all("svc=shop/books" in line for line in lines)


async def test_top_counts_the_busiest_paths(tapped: list[TappedProxy], tmp_path: Path) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    command = asyncio.create_task(
        weft_async(
            "top", "-n", "shop", "--proxies-file", str(file), "--duration", "2s", "-o", "json"
        )
    )
    ran = await publish_while(
        command, tapped, request("/books"), request("/books"), request("/fail", status=503)
    )
    assert ran.code == 0, ran.stderr
    busiest, failing = json.loads(ran.stdout)
    assert (busiest["path"], busiest["destination"], busiest["success"]) == (
        "/books",
        "shop/books",
        1.0,
    )
    # Two /books per /fail in every batch; the window may end mid-batch, once per proxy.
    assert 2 * failing["count"] <= busiest["count"] <= 2 * failing["count"] + 2 * len(tapped)
    assert (failing["path"], failing["success"]) == ("/fail", 0.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_proxy_that_cannot_be_tapped_is_one_line(
    tapped: list[TappedProxy], tmp_path: Path
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped[:1], tap_port=closed_port())
    ran = await weft_async("tap", "-n", "shop", "--proxies-file", str(file), "--limit", "1")
    error = ran.one_line_error
    assert "cannot tap the proxy of pod shop/web-0" in error
    assert "port-forward" in error


async def test_tap_refuses_contradicting_and_unknown_targets(
    tmp_path: Path, tapped: list[TappedProxy]
) -> None:
    file = proxies_file(tmp_path / "proxies.yaml", tapped)
    ran = await weft_async(
        "tap", "--proxies-file", str(file), "-n", "shop", "--to", "books", "--direction", "inbound"
    )
    assert "--to watches outbound requests" in ran.one_line_error
    ran = await weft_async("tap", "svc/books", "--proxies-file", str(file), "-n", "shop")
    assert "is not deploy/NAME, rollout/NAME, rs/NAME, pod/NAME or ns/NAME" in ran.one_line_error
    ran = await weft_async("tap", "deploy/nothing", "--proxies-file", str(file), "-n", "shop")
    assert "no running meshed pods in deploy/nothing" in ran.one_line_error
