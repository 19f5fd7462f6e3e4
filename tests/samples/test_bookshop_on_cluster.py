"""The bookshop's manifests on the real local cluster: the policy resources pass the CRDs'
schemas, and the services run as the node agent's pods, calling each other by name.

No proxy here (the mesh's own tests inject one), and without kube-proxy a ClusterIP
leads nowhere: the Services are made headless, so names resolve to the pods.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_cli.sample_app import documents
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.nodeagent import locate
from weft_localcluster.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def in_test_namespace(docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    moved = []
    for doc in docs:
        if doc["kind"] == "Namespace":
            continue
        doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        if doc["kind"] == "Service":
            doc["spec"] = {**doc["spec"], "clusterIP": "None"}
        moved.append(doc)
    return moved


async def kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        f"{cluster.bin_dir}/kubectl", f"--kubeconfig={cluster.kubeconfig}", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(stdin.encode() if stdin else None)
    assert process.returncode == 0, err.decode()
    return out.decode()


def test_the_manifests_name_only_images_the_node_agent_runs() -> None:
    from weft_localcluster.nodeagent.images import default_table

    table = default_table(Path(sys.executable).parent)
    images = {
        container["image"]
        for doc in documents()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == {
        "weft.dev/samples/web:v1",
        "weft.dev/samples/books:v1",
        "weft.dev/samples/books:v2",
        "weft.dev/samples/ratings:v1",
        "weft.dev/samples/traffic:v1",
    }
    for image in images:
        table.resolve(image)
    namespace = next(doc for doc in documents() if doc["kind"] == "Namespace")
    assert namespace["metadata"]["annotations"] == {"weft.dev/inject": "enabled"}


async def test_the_bookshop_runs_and_its_front_serves_books_with_ratings(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    await kubectl(cluster, "apply", "-f", str(ROOT / "crds"))
    manifest = "\n---\n".join(json.dumps(d) for d in in_test_namespace(documents(), namespace))
    applied = await kubectl(cluster, "apply", "-f", "-", stdin=manifest)
    for created in ("trafficsplit.split.smi-spec.io/books", "serviceprofile.linkerd.io/books"):
        assert created in applied

    apps = client.AppsV1Api(api)

    async def all_available() -> bool:
        deployments = (await apps.list_namespaced_deployment(namespace)).items
        return len(deployments) == 5 and all(
            d.status.ready_replicas == d.spec.replicas for d in deployments
        )

    await eventually(all_available, "every bookshop Deployment to be ready", within=90)
    pods = (
        await client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=traffic")
    ).items
    meta = pods[0].metadata
    netns = locate.pod_netns(Path(cluster.state_dir), namespace, meta.name, meta.uid)
    fetch = (
        "import json, urllib.request\n"
        "page = json.load(urllib.request.urlopen('http://web:8080/api/books', timeout=5))\n"
        "print(json.dumps(page))"
    )

    async def rated_page() -> dict[str, Any] | None:
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, sys.executable, "-c", fetch,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        page: dict[str, Any] = json.loads(out) if process.returncode == 0 else {}
        # A name resolves once its pods are ready; gRPC retries resolving with backoff.
        return page if all(book.get("rating") for book in page.get("books", [])) else None

    page = await eventually(rated_page, "the front's page with every rating", within=60)
    assert page["books_version"] in ("v1", "v2")
    assert len(page["books"]) == 4
    assert all(book["rating"]["stars"] > 4 for book in page["books"])  # over gRPC
