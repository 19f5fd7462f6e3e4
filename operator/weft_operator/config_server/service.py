"""The config server inside the operator process: started beside kopf, fed by the
Reconciler, writing convergence back through the same status path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from weft_operator.catalog import MeshSettings
from weft_operator.config_server.hub import ConfigHub
from weft_operator.config_server.reporter import CarryOut, ConvergenceReporter
from weft_operator.config_server.server import ConfigServer, ServerTls
from weft_operator.reconciler import Change, Reconciler

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def config_service(
    reconciler: Reconciler,
    carry_out: CarryOut,
    address: str,
    port: int,
    *,
    quiet: float = 1.0,
    most: float = 30.0,
    tls: ServerTls | None = None,
    settings: MeshSettings | None = None,
) -> AsyncIterator[ConfigServer]:
    """Serve configs on `address:port` until the block ends; first configs go out once
    the index is warm (see `_serve_when_warm`). With `tls`, over mTLS to proxies whose
    identity may read the config they ask for (`server`)."""
    hub = ConfigHub(reconciler.index, serving=False, settings=settings)
    server = ConfigServer(hub, tls=tls)
    warmup = _Warmup()
    reconciler.add_listener(server.on_change)
    reconciler.add_listener(warmup.on_change)
    await server.start(address, port)
    reporter = ConvergenceReporter(hub, reconciler, carry_out)
    tasks = [
        asyncio.create_task(_serve_when_warm(server, warmup, quiet, most)),
        asyncio.create_task(reporter.run()),
    ]
    try:
        yield server
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()


class _Warmup:
    def __init__(self) -> None:
        self.changes = 0
        self.last_change = 0.0

    def on_change(self, change: Change) -> None:
        self.changes += 1
        self.last_change = asyncio.get_running_loop().time()


async def _serve_when_warm(
    server: ConfigServer, warmup: _Warmup, quiet: float, most: float
) -> None:
    """kopf says nothing when its first listings are in: serve once the index has taken
    changes and then none for `quiet` seconds (or after `most` seconds, on a cluster
    that never goes quiet), so no proxy gets a config built from half the cluster."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        await asyncio.sleep(quiet / 4)
        now = loop.time()
        settled = warmup.changes > 0 and now - warmup.last_change >= quiet
        if settled or now - started >= most:
            break
    log.info("index warm after %.1fs (%d changes): serving configs", now - started, warmup.changes)
    server.begin_serving()
