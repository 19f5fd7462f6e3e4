"""Inbound opaque TCP: each connection authorized by the admission, then spliced to the
application's port on the pod's loopback (denied ones are reset at once)."""

from __future__ import annotations

import asyncio

from weft_proxy.inbound.admission import APP_HOST, Admission
from weft_proxy.io.connect import CONNECT_TIMEOUT_S
from weft_proxy.io.tcp import forward_counted, reset
from weft_proxy.metrics import ProxyMetrics
from weft_proxy.policies.authorize import Client


class InboundTcp:
    def __init__(self, admission: Admission, metrics: ProxyMetrics) -> None:
        self.admission = admission
        self.metrics = metrics

    async def forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_bytes: bytes,
        client: Client,
        port: int,
    ) -> None:
        target = self.admission.admit_tcp(port, client)
        if target is None:
            reset(writer)  # denied TCP is refused at once
            return
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                upstream = await asyncio.open_connection(APP_HOST, port)
        except (OSError, TimeoutError):
            reset(writer)
            return
        await forward_counted(self.metrics, target, (reader, writer), upstream, first_bytes)
