"""A proxy in a process of its own, for tests that need its RSS and its event loop apart
from the test's: the `Proxy` that `python -m weft_proxy` runs (uvloop, the same
listeners), on a static config instead of a config stream. Inbound, everything is
allowed and goes to the application port; outbound knows `books` on that port.

Usage: python proxy_process.py APP_PORT [HTTP2_LIMITS]
Prints one JSON line once listening: {"inbound": port, "outbound": port}.
"""

from __future__ import annotations

import asyncio
import json
import sys

import uvloop
from proxy_configs import backend, books, config

from weft_api import http2_limits
from weft_proxy.main import freeze_startup_objects
from weft_proxy.proxy import Proxy


async def main(app_port: int, limits: str) -> None:
    proxy = Proxy("shop", inbound_fallback_port=app_port, http2_limits=http2_limits.parse(limits))
    proxy.apply(config(books(backend("books", 1, [app_port]))))
    servers = await proxy.listen("127.0.0.1", 0, 0, 0)
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    freeze_startup_objects()
    print(json.dumps({"inbound": ports[0], "outbound": ports[1]}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""))
