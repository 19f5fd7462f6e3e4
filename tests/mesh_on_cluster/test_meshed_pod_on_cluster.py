"""A meshed pod on the real local cluster, end to end: the webhook injects the proxy, the
node agent runs it, and the proxy gets its certificate from the operator's identity
server (its token checked by TokenReview) and its config from the config server.

The control plane runs as `weft demo` runs it (`local_install.start_mesh_control_plane`):
processes on the host, listening on the cluster bridge's address, named for the pods by
headless Services. The proxy's admin port is read from the host over the bridge.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from weft_api import mesh
from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import local_install
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually

CONTROL_PLANE = "weft-mesh"  # its own: no other test's operator Lease to wait out
APP_PORT = 8080


@pytest.fixture(scope="module")
def control_plane(cluster: ClusterInfo) -> Iterator[str]:
    operator = local_install.start_mesh_control_plane(
        cluster, CONTROL_PLANE, ports.pick_free(), name="weft-operator-mesh"
    )
    try:
        webhooks = local_install.start_webhooks(
            cluster, CONTROL_PLANE, ports.pick_free(), name="weft-webhooks-mesh"
        )
        try:
            yield CONTROL_PLANE
        finally:
            local_install.stop_webhooks(cluster, webhooks)
    finally:
        processes.stop(operator, Path(cluster.state_dir))


@pytest.fixture
async def meshed_namespace(api: ApiClient, control_plane: str) -> AsyncIterator[str]:
    """Annotated from its creation, so the webhook cannot see it without the annotation."""
    core = client.CoreV1Api(api)
    name = f"meshed-{uuid.uuid4().hex[:6]}"
    annotations = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    await core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, annotations=annotations))
    )
    yield name
    await core.delete_namespace(name)


def web(namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "web"}
    container = {
        "name": "app",
        "image": "python",
        "command": ["python", "-m", "http.server", str(APP_PORT)],
        "ports": [{"containerPort": APP_PORT}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {  # headless: no kube-proxy here, names resolve to the pods
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": APP_PORT}]},
    }
    return [deployment, service]


def admin_get(pod_ip: str, path: str) -> tuple[int, str]:
    url = f"http://{pod_ip}:{mesh.PROXY_ADMIN_PORT}{path}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(exposition: str, name: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


async def test_an_injected_pod_gets_its_certificate_and_config_from_the_operator(
    cluster: ClusterInfo, api: ApiClient, meshed_namespace: str
) -> None:
    core = client.CoreV1Api(api)
    for manifest in web(meshed_namespace):
        local_install.kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(manifest))

    async def ready_pod() -> Any:
        pods = (await core.list_namespaced_pod(meshed_namespace, label_selector="app=web")).items
        conditions = {c.type: c.status for pod in pods for c in pod.status.conditions or ()}
        return pods[0] if len(pods) == 1 and conditions.get("Ready") == "True" else None

    pod = await eventually(ready_pod, "the meshed pod to be Ready", within=60)
    proxy = next(c for c in pod.spec.init_containers if c.name == mesh.PROXY_CONTAINER)
    env = {e.name: e.value for e in proxy.env}
    roots = await core.read_namespaced_config_map(TRUST_ROOTS, CONTROL_PLANE)
    assert env[mesh.ProxyEnv.TRUST_ANCHORS].strip() == roots.data[TRUST_ROOTS_KEY].strip()
    assert env[mesh.ProxyEnv.IDENTITY_ADDR].startswith(f"{mesh.IDENTITY_SERVICE}.{CONTROL_PLANE}.")

    # From the host, over the bridge: the proxy's admin port bypasses proxy-init's rules.
    status, _ = await asyncio.to_thread(admin_get, pod.status.pod_ip, "/ready")
    assert status == 200  # it has a config from the config server
    _, exposition = await asyncio.to_thread(admin_get, pod.status.pod_ip, "/metrics")
    # A certificate obtained with the pod's token, which the operator checked by TokenReview.
    assert metric(exposition, "identity_cert_refresh_count") >= 1
