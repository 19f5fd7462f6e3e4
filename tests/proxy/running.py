"""A proxy listening on loopback for socket tests, with its ports and metrics at hand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client import generate_latest

from weft_api.config import ProxyConfig
from weft_proxy.proxy import Proxy


@dataclass
class RunningProxy:
    proxy: Proxy
    servers: list[asyncio.Server]

    def _port(self, which: int) -> int:
        port: int = self.servers[which].sockets[0].getsockname()[1]
        return port

    @property
    def inbound_port(self) -> int:
        return self._port(0)

    @property
    def outbound_port(self) -> int:
        return self._port(1)

    def metric_lines(self, name: str) -> list[str]:
        text = generate_latest(self.proxy.metrics.registry).decode()
        return [line for line in text.splitlines() if line.startswith(name + "{")]

    def close(self) -> None:
        for server in self.servers:
            server.close()


async def start_proxy(cfg: ProxyConfig | None, **kwargs: Any) -> RunningProxy:
    proxy = Proxy("shop", **kwargs)
    if cfg is not None:
        proxy.apply(cfg)
    return RunningProxy(proxy, await proxy.listen("127.0.0.1", 0, 0, 0))


def metric_value(line: str) -> float:
    return float(line.rsplit(" ", 1)[1])
