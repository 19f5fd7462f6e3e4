"""`weft inject` and `weft uninject` output, applied with kubectl on the installed mesh:
both forms of injection (the annotation the webhook acts on, and `--manual`, which reads
the installed settings from the cluster) run meshed pods, 2/2 with an mTLS edge between
them; uninjected, the same workloads run unmeshed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import yaml
from meshed_bookshop import HERE, ControlPlane

from weft_api import mesh
from weft_api.identity import identity_name
from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually

SERVER_PORT = 8080


def weft(plane: ControlPlane, *args: str, stdin: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(plane.cluster.kubeconfig)}
    done = subprocess.run(
        [sys.executable, "-m", "weft_cli", *args],
        input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def workloads(namespace: str) -> list[dict[str, Any]]:
    """`site` (an HTTP server) and `caller` (e2e/relay.py), as a user writes them: no
    Weft in sight. The Service first: a pod's hosts file names the Services it starts with."""

    def deployment(name: str, command: list[str], port: int) -> dict[str, Any]:
        labels = {"app": name}
        container = {
            "name": name,
            "image": "python",
            "command": command,
            "ports": [{"containerPort": port}],
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"serviceAccountName": name, "containers": [container]},
                },
            },
        }

    site_command = ["python", "-m", "http.server", str(SERVER_PORT)]
    return [
        *(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": n, "namespace": namespace},
            }
            for n in ("site", "caller")
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "site", "namespace": namespace},
            "spec": {"selector": {"app": "site"}, "ports": [{"port": SERVER_PORT}]},
        },
        deployment("site", site_command, SERVER_PORT),
        deployment("caller", ["python", str(HERE / "relay.py")], 8080),
    ]


@pytest.fixture
def plain_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """Not annotated for injection: only what `weft inject` writes can mesh its pods."""
    name = f"inject-{uuid.uuid4().hex[:6]}"
    local_install.kubectl(control_plane.cluster, "create", "namespace", name)
    yield name
    local_install.kubectl(control_plane.cluster, "delete", "namespace", name, "--wait=false")


def apply(cluster: ClusterInfo, namespace: str, text: str) -> None:
    local_install.kubectl(cluster, "apply", "-f", "-", stdin=text)
    for name in ("site", "caller"):
        local_install.kubectl(
            cluster, "-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=180s"
        )


def running_pod(cluster: ClusterInfo, namespace: str, app: str) -> dict[str, Any] | None:
    """The one pod of `app`, once the rollout's old pods are gone."""
    listed = json.loads(
        local_install.kubectl(
            cluster, "-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json"
        )
    )["items"]
    return dict(listed[0]) if len(listed) == 1 else None


def ready_containers(pod: dict[str, Any]) -> tuple[int, int]:
    """kubectl's READY column: app containers and native sidecars (restartPolicy Always)."""
    sidecars = {
        c["name"]
        for c in pod["spec"].get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    statuses = [
        *(pod["status"].get("containerStatuses") or ()),
        *(s for s in pod["status"].get("initContainerStatuses") or () if s["name"] in sidecars),
    ]
    total = len(pod["spec"]["containers"]) + len(sidecars)
    return sum(bool(s.get("ready")) for s in statuses), total


async def call_site(http: aiohttp.ClientSession, caller_ip: str, namespace: str) -> int:
    """`caller` GETs `site` by its Service name: through its proxy, when it has one. 0
    while caller does not listen yet (it has no readiness probe)."""
    url = f"http://site.{namespace}.svc.cluster.local:{SERVER_PORT}/"
    try:
        async with http.get(f"http://{caller_ip}:8080/http", params={"url": url}) as response:
            assert response.status == 200
            return int((await response.json())["status"])
    except aiohttp.ClientConnectionError:
        return 0


async def mtls_requests(http: aiohttp.ClientSession, site_ip: str, client_id: str) -> float:
    """Requests `site`'s proxy served over mTLS from `client_id`."""
    async with http.get(f"http://{site_ip}:{mesh.PROXY_ADMIN_PORT}/metrics") as response:
        lines = (await response.text()).splitlines()
    wanted = ('direction="inbound"', 'tls="true"', f'client_id="{client_id}"')
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("request_total{") and all(label in line for label in wanted)
    )


async def settled(cluster: ClusterInfo, namespace: str, meshed: bool) -> dict[str, Any]:
    """Each workload's single pod, all its containers ready, with or without the proxy."""

    async def pods() -> dict[str, Any] | None:
        found = {app: running_pod(cluster, namespace, app) for app in ("site", "caller")}
        if any(pod is None for pod in found.values()):
            return None
        for pod in found.values():
            assert pod is not None
            ready, total = ready_containers(pod)
            if (ready, total) != ((2, 2) if meshed else (1, 1)):
                return None
        return found

    return await eventually(pods, f"the pods to run {'meshed' if meshed else 'unmeshed'}", 180)


@pytest.mark.parametrize("form", ["annotation", "manual"])
async def test_injected_manifests_run_meshed_and_uninjected_ones_unmeshed(
    control_plane: ControlPlane, plain_namespace: str, http: aiohttp.ClientSession, form: str
) -> None:
    cluster, namespace = control_plane.cluster, plain_namespace
    source = yaml.safe_dump_all(workloads(namespace))
    args = ["--manual", f"--weft-namespace={control_plane.namespace}"] if form == "manual" else []
    injected = weft(control_plane, "inject", "-", *args, stdin=source)
    apply(cluster, namespace, injected)
    pods = await settled(cluster, namespace, meshed=True)
    proxy = next(
        c for c in pods["site"]["spec"]["initContainers"] if c["name"] == mesh.PROXY_CONTAINER
    )
    assert proxy["image"] == f"{mesh.PROXY_IMAGE}:{mesh.PROXY_VERSION}"
    caller_ip, site_ip = pods["caller"]["status"]["podIP"], pods["site"]["status"]["podIP"]
    caller = identity_name("caller", namespace)

    async def over_mtls() -> bool:
        return await call_site(http, caller_ip, namespace) == 200 and (
            await mtls_requests(http, site_ip, caller) > 0
        )

    await eventually(over_mtls, "caller's requests to reach site over mTLS", 60)

    apply(cluster, namespace, weft(control_plane, "uninject", "-", stdin=injected))
    pods = await settled(cluster, namespace, meshed=False)
    caller_ip = pods["caller"]["status"]["podIP"]

    async def plaintext() -> bool:
        return await call_site(http, caller_ip, namespace) == 200

    await eventually(plaintext, "caller to reach site without proxies", 60)
    site = pods["site"]
    assert mesh.PROXY_CONTAINER not in {c["name"] for c in site["spec"].get("initContainers") or ()}
