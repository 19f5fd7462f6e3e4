"""A mesh in memory (a Reconciler fed manifests) with the config server on loopback:
builders and helpers for the config tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from weft_api.config import ProxyIdentity
from weft_operator.config_server.hub import ConfigHub
from weft_operator.config_server.server import ConfigServer
from weft_operator.reconciler import Action, Reconciler
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.client import ConfigClient
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND

NAMESPACE = "shop"
T = TypeVar("T")


def service(name: str, cluster_ip: str, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"clusterIP": cluster_ip, "ports": [{"port": port, "name": "http"}]},
    }


def endpoint_slice(service_name: str, *addresses: str, port: int = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abcde",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address]} for address in addresses],
        "ports": [{"name": "http", "port": port}],
    }


def split(service_name: str, generation: int = 1, **weights: int) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {
            "name": service_name,
            "namespace": NAMESPACE,
            "uid": f"uid-{service_name}",
            "generation": generation,
        },
        "spec": {
            "service": service_name,
            "backends": [{"service": name, "weight": w} for name, w in weights.items()],
        },
    }


@dataclass
class Mesh:
    reconciler: Reconciler
    server: ConfigServer
    port: int
    written: list[Action]

    @property
    def hub(self) -> ConfigHub:
        return self.server.hub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def apply(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.written += self.reconciler.observe(BY_KIND[Kind(body["kind"])], "MODIFIED", body)

    def delete(self, body: dict[str, Any]) -> None:
        self.reconciler.observe(BY_KIND[Kind(body["kind"])], "DELETED", body)

    def client(self, pod: str = "web-0", **options: Any) -> ConfigClient:
        identity = ProxyIdentity(pod=pod, namespace=NAMESPACE, service_account="web")
        options.setdefault("backoff", Backoff(base=0.05, cap=0.2))
        return ConfigClient(self.address, identity, **options)


async def start_mesh(port: int = 0, **server_options: Any) -> Mesh:
    reconciler = Reconciler()
    server = ConfigServer(ConfigHub(reconciler.index), batch_window=0.02, **server_options)
    reconciler.add_listener(server.on_change)
    port = await server.start("127.0.0.1", port)
    mesh = Mesh(reconciler, server, port, [])
    mesh.apply(
        service("web", "10.96.0.10"),
        service("web-v1", "10.96.0.11"),
        service("web-v2", "10.96.0.12"),
        endpoint_slice("web", "10.0.0.1"),
        endpoint_slice("web-v1", "10.0.1.1", "10.0.1.2"),
        endpoint_slice("web-v2", "10.0.2.1"),
    )
    return mesh


async def soon(
    probe: Callable[[], T | Awaitable[T | None] | None], what: str, within: float = 5.0
) -> T:
    """Poll until `probe` gives something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = probe()
        if isinstance(found, Awaitable):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
