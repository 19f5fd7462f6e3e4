"""Outbound opaque TCP: a connection to a mesh Service's cluster IP is balanced over its
endpoints per connection; any other destination is reached as addressed."""

from __future__ import annotations

import asyncio

from weft_proxy.io.tcp import CONNECT_TIMEOUT_S, forward_counted, reset
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound.state import OutboundState


class OutboundTcp:
    def __init__(self, state: OutboundState, metrics: ProxyMetrics) -> None:
        self.state = state
        self.metrics = metrics

    def _endpoint(self, destination: tuple[str, int]) -> tuple[str, int]:
        service = self.state.destinations.by_address(*destination)
        if service is None:
            return destination
        state = self.state.state_of(service)
        backend = state.split.pick(None)
        group = state.group(backend, destination[1]) if backend is not None else None
        key = group.pick() if group is not None else None
        return key if key is not None else destination

    async def forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_bytes: bytes,
        destination: tuple[str, int],
    ) -> None:
        endpoint = self._endpoint(destination)
        target = Target({"direction": "outbound", "target_addr": f"{endpoint[0]}:{endpoint[1]}"})
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                upstream = await asyncio.open_connection(*endpoint)
        except (OSError, TimeoutError):
            reset(writer)  # the client sees the refusal as a reset
            return
        await forward_counted(self.metrics, target, (reader, writer), upstream, first_bytes)
