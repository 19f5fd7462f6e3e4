"""Outbound opaque TCP: a connection to a mesh Service's cluster IP is balanced over its
endpoints per connection; any other destination is reached as addressed."""

from __future__ import annotations

import asyncio

from weft_proxy.identity.credentials import ALPN_OPAQUE
from weft_proxy.io.connect import CONNECT_TIMEOUT_S
from weft_proxy.io.tcp import forward_counted, reset
from weft_proxy.metrics import ProxyMetrics, Target
from weft_proxy.outbound.state import OutboundState
from weft_proxy.protocols import transport_header


class OutboundTcp:
    def __init__(self, state: OutboundState, metrics: ProxyMetrics) -> None:
        self.state = state
        self.metrics = metrics

    def _endpoint(self, destination: tuple[str, int]) -> tuple[tuple[str, int], str | None]:
        """The endpoint to connect to, and the identity it must prove (None: plain TCP)."""
        service = self.state.destinations.by_address(*destination)
        if service is None:
            return destination, None
        state = self.state.state_of(service)
        backend = state.split.pick(None)
        group = state.group(backend, destination[1]) if backend is not None else None
        key = group.pick() if group is not None else None
        if group is None or key is None:
            return destination, None
        return key, group.endpoints[key].identity

    async def forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_bytes: bytes,
        destination: tuple[str, int],
    ) -> None:
        endpoint, identity = self._endpoint(destination)
        labels = {"direction": "outbound", "target_addr": f"{endpoint[0]}:{endpoint[1]}"}
        if identity is not None:
            labels.update(server_id=identity, tls="true")
        connector = self.state.connector
        if identity is None:
            open_upstream = connector.opener(*endpoint, None, ALPN_OPAQUE)
        else:  # to the peer proxy's own port, which detects (transport_header says why)
            open_upstream = connector.opener(
                endpoint[0], connector.peer_port, identity, ALPN_OPAQUE
            )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                upstream = await open_upstream()
        except (OSError, TimeoutError):
            reset(writer)  # the client sees the refusal as a reset
            return
        if identity is not None:
            upstream[1].write(transport_header.encode(endpoint[1]))
        await forward_counted(self.metrics, Target(labels), (reader, writer), upstream, first_bytes)
