"""The admin server (port 4191): /metrics, /live, /ready, and /shutdown for a graceful drain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from weft_proxy.io.http1_server import ClientStream, serve_http1
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.protocols.http1 import RequestHead, response_head_bytes


class Admin:
    def __init__(
        self, metrics: ProxyMetrics, ready: Callable[[], bool], shutdown: Callable[[], None]
    ) -> None:
        self.metrics = metrics
        self.ready = ready
        self.shutdown = shutdown

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_http1(reader, writer, b"", self._handle)

    async def _handle(self, head: RequestHead, stream: ClientStream) -> bool:
        async for _ in stream.body():
            pass
        path = head.target.split(b"?")[0]
        content_type = b"text/plain"
        if path == b"/metrics":
            status, body = 200, generate_latest(self.metrics.registry)
            content_type = CONTENT_TYPE_LATEST.encode()
        elif path == b"/live":
            status, body = 200, b"live\n"
        elif path == b"/ready":
            status, body = (200, b"ready\n") if self.ready() else (503, b"not ready\n")
        elif path == b"/shutdown" and head.method == "POST":
            status, body = 202, b"shutting down\n"
            self.shutdown()
        else:
            status, body = 404, b"not found\n"
        reason = {200: b"OK", 202: b"Accepted", 404: b"Not Found", 503: b"Service Unavailable"}
        headers = [(b"Content-Type", content_type), (b"Content-Length", b"%d" % len(body))]
        stream.write(response_head_bytes(status, reason[status], headers) + body)
        await stream.drain()
        return head.keep_alive
