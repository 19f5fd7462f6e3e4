"""Config distribution on the real local cluster: the operator (as its ServiceAccount)
serves a simulated proxy, which gets the TrafficSplit; the split's status then shows
the data plane converged (Programmed, "1/1 proxies")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api.config import ProxyIdentity
from weft_cli import local_install
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.client import ConfigClient

OPERATOR_NAMESPACE = "weft-config"


@pytest.fixture(scope="module")
def config_operator(cluster: ClusterInfo) -> Iterator[int]:
    """The operator with its config server on a free loopback port; yields the port."""
    config_port = ports.pick_free()
    record = local_install.start_operator(
        cluster,
        OPERATOR_NAMESPACE,
        ports.pick_free(),
        name="weft-operator-config",
        config_port=config_port,
    )
    yield config_port
    processes.stop(record, Path(cluster.state_dir))


def manifests(namespace: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for index, name in enumerate(("web", "web-v1", "web-v2")):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }
        )
        docs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-1",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [f"10.244.{index}.7"]}],
                "ports": [{"name": "http", "port": 8080}],
            }
        )
    docs.append(
        {
            "apiVersion": "split.smi-spec.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "service": "web",
                "backends": [
                    {"service": "web-v1", "weight": "900m"},
                    {"service": "web-v2", "weight": "100m"},
                ],
            },
        }
    )
    return docs


async def test_a_proxy_gets_the_split_and_the_split_shows_it_programmed(
    cluster: ClusterInfo, api: ApiClient, namespace: str, config_operator: int
) -> None:
    body = "\n---\n".join(json.dumps(doc) for doc in manifests(namespace))
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=body)
    authority = f"web.{namespace}.svc.cluster.local:80"
    proxy = ConfigClient(
        f"127.0.0.1:{config_operator}",
        ProxyIdentity(pod="client-0", namespace=namespace, service_account="default"),
        backoff=Backoff(base=0.1, cap=1.0),
    )
    proxy.subscribe(authority)
    running = asyncio.create_task(proxy.run())
    try:

        async def split_received() -> dict[str, int] | None:
            snapshot = proxy.store.current
            service = snapshot.targets.get(authority) if snapshot else None
            if service is None:
                return None
            found = {backend.name: backend.weight for backend in service.backends}
            return found if "web-v2" in found else None

        weights = await eventually(split_received, "the proxy to receive the split")
        assert weights == {"web-v1": 900, "web-v2": 100}

        async def programmed() -> dict[str, Any] | None:
            split = await client.CustomObjectsApi(api).get_namespaced_custom_object(
                "split.smi-spec.io", "v1alpha4", namespace, "trafficsplits", "web"
            )
            status = split.get("status") or {}
            found = {c["type"]: c for c in status.get("conditions", [])}.get("Programmed")
            return status if found and found["status"] == "True" else None

        status = await eventually(programmed, "Programmed=True on the split")
        condition = next(c for c in status["conditions"] if c["type"] == "Programmed")
        assert condition["message"] == "1/1 proxies"
        assert status["proxies"] == {"acked": 1, "total": 1}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
