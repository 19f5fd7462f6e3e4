"""`python -m weft_proxy` as a real process: it follows its config stream, reports ready
after the first config, subscribes to a Service on first traffic, routes to its
endpoints, and drains on /shutdown."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from config_mesh import NAMESPACE, Mesh, endpoint_slice, service, soon

from weft_api.mesh import ProxyEnv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def backend() -> AsyncIterator[int]:
    async def books(request: web.Request) -> web.Response:
        return web.Response(text=f"books {request.path}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", books)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def test_the_proxy_process_follows_its_config_and_routes_on_first_use(
    mesh: Mesh, backend: int
) -> None:
    slice_ = endpoint_slice("books", "127.0.0.1", port=backend)
    mesh.apply(service("books", "10.96.0.50"), slice_)
    ports = {name: free_port() for name in ("inbound", "outbound", "admin", "tap")}
    env = dict(
        os.environ,
        **{
            ProxyEnv.POD_NAME: "web-0",
            ProxyEnv.POD_NAMESPACE: NAMESPACE,
            ProxyEnv.POD_SERVICE_ACCOUNT: "web",
            ProxyEnv.CONFIG_ADDR: mesh.address,
            ProxyEnv.INBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['inbound']}",
            ProxyEnv.OUTBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['outbound']}",
            ProxyEnv.ADMIN_LISTEN_ADDR: f"127.0.0.1:{ports['admin']}",
            ProxyEnv.TAP_LISTEN_ADDR: f"127.0.0.1:{ports['tap']}",
        },
    )
    proxy = await asyncio.create_subprocess_exec(sys.executable, "-m", "weft_proxy", env=env)
    admin = f"http://127.0.0.1:{ports['admin']}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{admin}/ready") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await soon(ready, "the proxy to be ready after its first config", within=20)
            headers = {"Host": f"books.{NAMESPACE}.svc.cluster.local"}
            url = f"http://127.0.0.1:{ports['outbound']}/shelves/7"
            async with http.get(url, headers=headers) as response:
                assert response.status == 200
                assert await response.text() == "books /shelves/7"
            async with http.get(f"{admin}/metrics") as response:
                metrics = await response.text()
            assert 'dst_service="books"' in metrics
            async with http.post(f"{admin}/shutdown") as response:
                assert response.status == 202
        assert await asyncio.wait_for(proxy.wait(), timeout=15) == 0
    finally:
        if proxy.returncode is None:
            proxy.kill()
            await proxy.wait()
