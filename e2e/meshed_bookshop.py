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
import uuid
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


ACCESS_APPS = ("server", "client", "other")


class AccessNamespace:
    """A meshed namespace of its own with three pods running `relay.py`: `server` (its
    `/ready` answers 200), and the clients `client` and `other`, each under a
    ServiceAccount of its name. A call made from a client pod leaves through that pod's
    proxy and reaches the server's proxy over mTLS; the server's proxy answers 403
    itself when no authorization admits it. The clients' own ports admit the host,
    which drives them, in every access model."""

    def __init__(self, control_plane: ControlPlane, name: str) -> None:
        self.cluster = control_plane.cluster
        self.name = name

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kubectl(self.cluster, "-n", self.name, *args, stdin=stdin)

    def apply(self, *objects: dict[str, Any]) -> None:
        listed = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(listed))

    def pod_ip(self, app: str) -> str:
        listed = json.loads(self.kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))
        return next(
            pod["status"]["podIP"]
            for pod in listed["items"]
            if pod["status"].get("podIP") and pod["metadata"].get("deletionTimestamp") is None
        )

    async def get(self, http: aiohttp.ClientSession, client: str, url: str) -> Any:
        """`client`'s pod GETs `url`, through its proxy: {"status": S, "body": B}."""
        async with http.get(f"http://{self.pod_ip(client)}:8080/http", params={"url": url}) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def status(self, http: aiohttp.ClientSession, client: str, path: str) -> int:
        """The status `client`'s pod gets for GET `path` on the server's Service."""
        url = f"http://server.{self.name}.svc.cluster.local:8080{path}"
        async with http.get(f"http://{self.pod_ip(client)}:8080/http", params={"url": url}) as r:
            assert r.status == 200, await r.text()
            found: int = (await r.json())["status"]
            return found

    async def statuses(self, http: aiohttp.ClientSession, path: str = "/ready") -> dict[str, int]:
        return {client: await self.status(http, client, path) for client in ("client", "other")}


def relay_pod(app: str) -> list[dict[str, Any]]:
    """`relay.py` as `app` (it answers /who with it). The clients' own ports admit
    anyone (the host drives them) whatever the namespace's access model: a pod's
    explicit default policy wins."""
    objects = test_pod(app, app, "relay.py", 8080)
    template = objects[1]["spec"]["template"]
    template["spec"]["containers"][0]["env"] = [{"name": "WHO", "value": app}]
    if app != "server":
        template["metadata"]["annotations"] = {
            mesh.DEFAULT_INBOUND_POLICY_ANNOTATION: "all-unauthenticated"
        }
    return objects


@pytest.fixture(scope="module")
def access(control_plane: ControlPlane) -> Iterator[AccessNamespace]:
    name = f"smi-access-{uuid.uuid4().hex[:6]}"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}},
    }
    kubectl(control_plane.cluster, "apply", "-f", "-", stdin=json.dumps(namespace))
    shop = AccessNamespace(control_plane, name)
    shop.apply(*(item for app in ACCESS_APPS for item in relay_pod(app)))
    for app in ACCESS_APPS:
        shop.kubectl("rollout", "status", f"deployment/{app}", "--timeout=180s")
    yield shop
    kubectl(control_plane.cluster, "delete", "namespace", name, "--wait=false")
