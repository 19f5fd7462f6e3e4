"""The program of a meshed pod for the CLI's tests, run by the local cluster's node agent
(image `python`): a real Weft proxy (admin port 4191) in front of an app that fails one
request in four, traffic through the proxy, and a Tap service on port 4190.

The proxy's stacks do not publish tap events yet, so this program publishes one per
request it sends: the CLI's side of tap (pod IP, gRPC stream, filters) is what is tested.
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
from aiohttp import web
from live_mesh import proxy_config  # the pod's PYTHONPATH holds this folder

from weft_api import mesh
from weft_proxy.proxy import Proxy
from weft_proxy.tap.hub import TapEvent, TapHub
from weft_proxy.tap.service import TapService, start_tap_server

APP_PORT = 8080


async def app() -> None:
    served = [0]

    async def handler(request: web.Request) -> web.Response:
        served[0] += 1
        return web.Response(status=500 if served[0] % 4 == 0 else 200, text="book")

    application = web.Application()
    application.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", APP_PORT).start()


async def main() -> None:
    namespace, pod = os.environ["POD_NAMESPACE"], os.environ["POD_NAME"]
    await app()
    proxy = Proxy(namespace, inbound_fallback_port=APP_PORT)
    proxy.apply(proxy_config(namespace, pod, "default"))
    await proxy.listen(
        "0.0.0.0", mesh.PROXY_INBOUND_PORT, mesh.PROXY_OUTBOUND_PORT, mesh.PROXY_ADMIN_PORT
    )
    hub = TapHub()
    await start_tap_server(TapService(hub), "0.0.0.0", mesh.PROXY_TAP_PORT)
    inbound = f"http://127.0.0.1:{mesh.PROXY_INBOUND_PORT}"
    async with aiohttp.ClientSession() as http:
        sent = 0
        while True:
            path = f"/books/{sent % 3}"
            started = time.monotonic()
            async with http.get(inbound + path) as response:
                await response.read()
            sent += 1
            if hub.watched:
                hub.publish(
                    TapEvent(
                        direction="inbound",
                        method="GET",
                        authority="books",
                        path=path,
                        status=response.status,
                        latency_ms=(time.monotonic() - started) * 1000,
                        tls=False,
                        source="127.0.0.1:50000",
                        destination=f"127.0.0.1:{APP_PORT}",
                        timestamp=time.time(),
                    )
                )
            await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main())
