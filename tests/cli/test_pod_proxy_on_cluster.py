"""The observability commands on a meshed pod the local cluster really runs (its node
agent): `weft stat` reads the proxy's metrics through the API server's pod proxy,
`weft tap` and `weft top` stream from the proxy's tap port at the pod's IP, with no
proxies file: as a user runs them. The pod's program is meshed_pod.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from weft_runner import Ran, weft

from weft_api import mesh
from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo

HERE = Path(__file__).parent


def deployment(namespace: str) -> dict[str, object]:
    labels = {"app": "books"}
    container = {
        "name": "books",
        "image": "python",
        "command": ["python", str(HERE / "meshed_pod.py")],
        "env": [
            {"name": "PYTHONPATH", "value": str(HERE)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": mesh.PROXY_ADMIN_PORT}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "books", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                # What injection writes: the CLI finds meshed pods by it.
                "metadata": {
                    "labels": labels,
                    "annotations": {mesh.PROXY_VERSION_ANNOTATION: mesh.PROXY_VERSION},
                },
                "spec": {"containers": [container]},
            },
        },
    }


def ready(cluster: ClusterInfo, namespace: str) -> bool:
    listed = json.loads(
        local_install.kubectl(cluster, "get", "pods", "-n", namespace, "-o", "json")
    )
    conditions = [c for pod in listed["items"] for c in pod.get("status", {}).get("conditions", [])]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def books(cluster: ClusterInfo) -> Iterator[str]:
    namespace = f"pod-proxy-{int(time.time())}"
    local_install.kubectl(cluster, "create", "namespace", namespace)
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(deployment(namespace)))
    try:
        deadline = time.monotonic() + 90
        while not ready(cluster, namespace):
            assert time.monotonic() < deadline, local_install.kubectl(cluster, "get", "pods", "-A")
            time.sleep(0.5)
        yield namespace
    finally:
        local_install.kubectl(cluster, "delete", "namespace", namespace, "--wait=false")


def run(cluster: ClusterInfo, *args: str) -> Ran:
    return weft(*args, kubeconfig=str(cluster.kubeconfig))


def test_stat_reads_a_pods_proxy_through_the_api_server(cluster: ClusterInfo, books: str) -> None:
    ran = run(cluster, "stat", "deploy", "-n", books, "-w", "2s", "-o", "json")
    assert ran.code == 0, ran.stderr
    (row,) = json.loads(ran.stdout)
    assert (row["name"], row["meshed_pods"], row["pods"]) == ("books", 1, 1)
    assert row["rps"] > 5
    assert 0.65 <= row["success"] <= 0.85  # the app fails one request in four
    table = run(cluster, "stat", "pod", "-n", books, "-w", "1s")
    _, line = table.stdout.splitlines()
    assert line.split()[0].startswith("books-")
    assert line.split()[1] == "1/1"


def test_tap_and_top_stream_from_the_pods_tap_port(cluster: ClusterInfo, books: str) -> None:
    ran = run(
        cluster,
        "tap",
        "deploy/books",
        "-n",
        books,
        "--path",
        "/books/1",
        "--limit",
        "3",
        "-o",
        "json",
    )
    assert ran.code == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [event["path"] for event in events] == ["/books/1"] * 3
    assert all(event["proxy"].startswith(f"{books}/books-") for event in events)
    top = run(cluster, "top", "-n", books, "--duration", "2s", "-o", "json")
    assert top.code == 0, top.stderr
    assert {row["path"] for row in json.loads(top.stdout)} == {"/books/0", "/books/1", "/books/2"}


def test_a_proxy_that_does_not_answer_the_pod_proxy_is_one_line(
    cluster: ClusterInfo, namespace: str
) -> None:
    """A pod marked meshed whose proxy is not listening: the API server's answer."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "silent",
            "namespace": namespace,
            "annotations": {mesh.PROXY_VERSION_ANNOTATION: mesh.PROXY_VERSION},
        },
        "spec": {"containers": [{"name": "app", "image": "python", "command": ["sleep", "600"]}]},
    }
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(pod))
    deadline = time.monotonic() + 60
    while not ready(cluster, namespace):
        assert time.monotonic() < deadline, "the pod never ran"
        time.sleep(0.5)
    ran = run(cluster, "stat", "pod", "silent", "-n", namespace, "-w", "1s")
    error = ran.one_line_error
    assert f"the proxy of pod {namespace}/silent did not answer through the API server" in error
