"""A v1alpha1 TrafficSplit (Flagger's quantities) and a v1alpha4 one (integers) stored by
the real API server and read back as the operator reads them give the same catalog."""

from __future__ import annotations

import json
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo
from weft_operator.catalog import build_outbound_service
from weft_operator.index.store import MeshIndex
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND
from weft_resources.registry import parse_resource


def documents(namespace: str) -> list[dict[str, Any]]:
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 9898}]},
        }
        for name in ("old", "new", "primary", "canary")
    ]

    def split(name: str, api_version: str, weights: tuple[Any, Any]) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": "TrafficSplit",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "service": name,
                "backends": [
                    {"service": "primary", "weight": weights[0]},
                    {"service": "canary", "weight": weights[1]},
                ],
            },
        }

    return [
        *services,
        split("old", "split.smi-spec.io/v1alpha1", ("1", "500m")),
        split("new", "split.smi-spec.io/v1alpha4", (1000, 500)),
    ]


async def test_quantities_and_integers_give_the_same_split(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    local_install.install_crds(cluster)
    body = "\n---\n".join(json.dumps(d) for d in documents(namespace))
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=body)

    index = MeshIndex()
    services = await client.CoreV1Api(api).list_namespaced_service(namespace)
    for service in services.items:
        index.apply(parse_resource(api.sanitize_for_serialization(service) | _core("Service")))
    watched = BY_KIND[Kind.TRAFFIC_SPLIT]  # the version the operator reads
    splits = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        watched.group, watched.version, namespace, watched.plural
    )
    for item in splits["items"]:
        assert item["apiVersion"] == "split.smi-spec.io/v1alpha4"
        index.apply(parse_resource(item))

    old = build_outbound_service(index, namespace, "old")
    new = build_outbound_service(index, namespace, "new")
    assert old is not None
    assert new is not None
    assert [(b.name, b.weight) for b in old.backends] == [("primary", 1000), ("canary", 500)]
    assert old.backends == new.backends


def _core(kind: str) -> dict[str, str]:
    return {"apiVersion": "v1", "kind": kind}
