"""The local cluster is a real Kubernetes control plane: these talk to it, not to a mock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_localcluster.waiting import eventually


async def test_api_server_reports_kubernetes_1_36(api: ApiClient) -> None:
    version = await client.VersionApi(api).get_code()
    assert version.git_version.startswith("v1.36.")
    assert (version.major, version.minor) == ("1", "36")


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


async def test_a_crd_is_served_and_a_watch_sees_a_created_object(
    api: ApiClient, namespace: str
) -> None:
    group = f"{namespace}.test.weft.dev"
    await client.ApiextensionsV1Api(api).create_custom_resource_definition(widget_crd(group))
    custom = client.CustomObjectsApi(api)

    async def served() -> bool:
        try:
            await custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")
        except ApiException as exc:
            if exc.status in (404, 429):  # not yet served, or its storage still starting
                return False
            raise
        return True

    await eventually(served, "the CRD to be served")
    seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def watch_widgets() -> None:
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object, group, "v1", namespace, "widgets"
        )
        async for event in stream:
            await seen.put(event)

    watcher = asyncio.create_task(watch_widgets())
    try:
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        }
        await custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
        event = await asyncio.wait_for(seen.get(), timeout=30)
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["name"] == "w1"
        assert event["object"]["spec"] == {"size": 3}
    finally:
        watcher.cancel()
        await client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"widgets.{group}")


async def test_the_api_server_rejects_an_invalid_object(api: ApiClient, namespace: str) -> None:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="bad"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=70000)]),
    )
    with pytest.raises(ApiException) as rejected:
        await client.CoreV1Api(api).create_namespaced_service(namespace, service)
    assert rejected.value.status == 422
    assert "spec.ports[0].port" in rejected.value.body


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="weft.dev/sample:dev")],
                    tolerations=[client.V1Toleration(operator="Exists")],
                ),
            ),
        ),
    )


async def test_a_deployment_yields_a_replicaset_and_pods(api: ApiClient, namespace: str) -> None:
    await client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("web", 2))

    async def replica_sets() -> list[Any]:
        found = await client.AppsV1Api(api).list_namespaced_replica_set(namespace)
        return list(found.items)

    async def pods() -> list[Any]:
        found = await client.CoreV1Api(api).list_namespaced_pod(namespace)
        return found.items if len(found.items) == 2 else []

    (replica_set,) = await eventually(replica_sets, "the Deployment's ReplicaSet")
    assert replica_set.metadata.owner_references[0].name == "web"
    for pod in await eventually(pods, "two Pods from the ReplicaSet"):
        assert pod.metadata.owner_references[0].name == replica_set.metadata.name


async def test_the_scheduler_binds_pods_to_a_ready_node(api: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    node_name = f"node-{namespace}"[:63]
    await core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=node_name)))
    try:
        await core.patch_node_status(
            node_name,
            {
                "status": {
                    "capacity": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                    "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Test"}],
                }
            },
        )
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name="scheduled"),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="app", image="weft.dev/sample:dev")],
                node_selector={"kubernetes.io/hostname": node_name},
                tolerations=[client.V1Toleration(operator="Exists")],
            ),
        )
        await core.patch_node(
            node_name, {"metadata": {"labels": {"kubernetes.io/hostname": node_name}}}
        )
        await core.create_namespaced_pod(namespace, pod)

        async def bound() -> str | None:
            found = await core.read_namespaced_pod("scheduled", namespace)
            node: str | None = found.spec.node_name
            return node

        assert await eventually(bound, "the scheduler to bind the pod") == node_name
    finally:
        await core.delete_node(node_name)
