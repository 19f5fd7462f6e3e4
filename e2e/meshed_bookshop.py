"""Fixtures of the e2e suite (conftest.py exposes them): the whole mesh on the local
cluster. Weft is installed as a user installs it and as `weft demo` does
(`weft install | kubectl apply -f -`: the operator and the webhooks run as pods, reached
through their Services), the bookshop sample is deployed meshed, and test pods are
driven from the host.

Deploying takes a while, so the mesh is set up once for the e2e session. Tests that
change shared state (weights, policy) put it back before they end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from weft_api import mesh
from weft_api.identity import identity_name
from weft_cli import local_install, sample_app
from weft_localcluster.cluster import ClusterInfo

HERE = Path(__file__).resolve().parent
CONTROL_PLANE = "weft"
OPERATOR = local_install.OPERATOR
OPERATOR_SELECTOR = f"app.kubernetes.io/name={OPERATOR}"
NAMESPACE = "bookshop-e2e"
STRANGER = "stranger"  # a meshed client no policy names


@dataclass
class ControlPlane:
    """Weft as installed in `namespace`, with the handles the tests need."""

    cluster: ClusterInfo
    namespace: str

    def kubectl(self, *args: str) -> str:
        return kubectl(self.cluster, "-n", self.namespace, *args)

    def kill_operator(self) -> None:
        """No operator left: the Deployment scaled to zero and its pod killed at once
        (no grace: the Lease stays until it expires, as after a crash)."""
        self.kubectl("scale", f"deployment/{OPERATOR}", "--replicas=0")
        self.kubectl(
            "delete", "pod", "-l", OPERATOR_SELECTOR, "--grace-period=0", "--force",
            "--ignore-not-found", "--wait=true", "--timeout=60s",
        )  # fmt: skip

    def restart_operator(self) -> None:
        self.kubectl("scale", f"deployment/{OPERATOR}", "--replicas=1")
        self.kubectl(
            "rollout", "status", f"deployment/{OPERATOR}",
            f"--timeout={local_install.ROLLOUT_TIMEOUT_S}s",
        )  # fmt: skip


@pytest.fixture(scope="session")
def control_plane(cluster: ClusterInfo) -> Iterator[ControlPlane]:
    local_install.install(cluster, CONTROL_PLANE)
    yield ControlPlane(cluster, CONTROL_PLANE)
    local_install.uninstall(cluster, CONTROL_PLANE)


def kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    return local_install.kubectl(cluster, *args, stdin=stdin)


def test_pod(name: str, account: str, script: str, port: int) -> list[dict[str, Any]]:
    """A ServiceAccount, a Deployment running one of e2e/'s scripts (image `python`,
    the tests' own files), and a Service for it."""
    labels = {"app": name}
    container = {
        "name": name,
        "image": "python",
        "command": ["python", str(HERE / script)],
        "ports": [{"name": "main", "containerPort": port}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"serviceAccountName": account, "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": port, "targetPort": port}]},
        },
    ]


class Bookshop:
    """The sample, meshed, with the handles the tests need."""

    def __init__(self, cluster: ClusterInfo, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def identity(self, account: str) -> str:
        return identity_name(account, self.namespace)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kubectl(self.cluster, "-n", self.namespace, *args, stdin=stdin)

    def apply(self, *objects: dict[str, Any]) -> None:
        listed = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(listed))

    def pod_ips(self, app: str) -> list[str]:
        listed = json.loads(self.kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))
        return [
            pod["status"]["podIP"]
            for pod in listed["items"]
            if pod["status"].get("podIP") and pod["metadata"].get("deletionTimestamp") is None
        ]

    async def proxy_metrics(self, session: aiohttp.ClientSession, app: str) -> list[str]:
        """The /metrics lines of every proxy of `app`'s pods (the admin port is not
        intercepted: the host reads it straight over the bridge)."""
        lines: list[str] = []
        for ip in self.pod_ips(app):
            async with session.get(f"http://{ip}:{mesh.PROXY_ADMIN_PORT}/metrics") as response:
                lines += (await response.text()).splitlines()
        return lines

    async def web(self, session: aiohttp.ClientSession) -> Any:
        """A request to the web front from the host (unmeshed, as a browser would be)."""
        ip = self.pod_ips("web")[0]
        async with session.get(f"http://{ip}:8080/api/books") as response:
            return response.status, await response.json(content_type=None)

    async def relay(self, session: aiohttp.ClientSession, kind: str, **query: str) -> Any:
        """A call made from the `stranger` pod, through its proxy."""
        ip = self.pod_ips("relay")[0]
        async with session.get(f"http://{ip}:8080/{kind}", params=query) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    def set_weights(self, weights: dict[str, int]) -> None:
        """The sample's `books` TrafficSplit, as a user writes it (v1alpha2)."""
        backends = [{"service": s, "weight": w} for s, w in weights.items()]
        self.apply(
            {
                "apiVersion": "split.smi-spec.io/v1alpha2",
                "kind": "TrafficSplit",
                "metadata": {"name": "books", "namespace": self.namespace},
                "spec": {"service": "books", "backends": backends},
            }
        )


@pytest.fixture(scope="session")
def bookshop(cluster: ClusterInfo, control_plane: ControlPlane) -> Bookshop:
    sample_app.deploy(cluster, NAMESPACE)
    shop = Bookshop(cluster, NAMESPACE)
    shop.apply(*test_pod("relay", STRANGER, "relay.py", 8080))
    shop.apply(*test_pod("echo", "echo", "echo.py", 7000))
    for name in ("relay", "echo"):
        shop.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s")
    return shop


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session
