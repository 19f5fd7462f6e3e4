"""Argo CD's health (the shipped Lua check) and Flux's (kstatus, built from Go modules)
for real Weft objects on the local cluster, in each state the operator reports: the
operator runs as its ServiceAccount with its config server, and writes the status.

States: every kind as users write it (crds/examples); a split whose backends resolve
(Healthy / Current); a split to a missing Service (Progressing / InProgress, until it
appears); an invalid ServiceProfile (Degraded / Failed); a split a subscribed proxy has
not acknowledged (Progressing / InProgress: not yet Programmed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from argocd_health import SCRIPT, SNIPPET, health
from kstatus_tool import kstatus

from weft_api import config_proto
from weft_api.config import ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_api.proto import discovery_pb2_grpc as dpb_grpc
from weft_cli import local_install, manifests
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually
from weft_resources.kinds import WATCHED

OPERATOR_NAMESPACE = "weft-health"
# Argo CD's health status -> the kstatus status Flux reads for the same object.
SAME_HEALTH = {"Healthy": "Current", "Progressing": "InProgress", "Degraded": "Failed"}
WEFT_KINDS = ",".join(f"{w.plural}.{w.group}" for w in WATCHED if w.reports_status)


@pytest.fixture(scope="module")
def config_port(cluster: ClusterInfo) -> Iterator[int]:
    port = ports.pick_free()
    record = local_install.start_operator(
        cluster,
        OPERATOR_NAMESPACE,
        ports.pick_free(),
        name="weft-operator-health",
        config_port=port,
    )
    yield port
    processes.stop(record, Path(cluster.state_dir))


def kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    return local_install.kubectl(cluster, *args, stdin=stdin)


def apply(cluster: ClusterInfo, namespace: str, *objects: dict[str, Any]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(listed))


def objects(cluster: ClusterInfo, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        kubectl(cluster, "get", WEFT_KINDS, "-n", namespace, "-o", "json")
    )["items"]
    return found


def seen(obj: dict[str, Any]) -> bool:
    """The operator wrote the status of the object's current generation."""
    status = obj.get("status") or {}
    return bool(status.get("conditions")) and status.get("observedGeneration") == obj[
        "metadata"
    ].get("generation")


def health_of(found: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """`Kind/name` -> (Argo CD's health, kstatus's status), for the same objects."""
    flux = kstatus(found)
    return {
        f"{o['kind']}/{o['metadata']['name']}": (
            health(o).status,
            flux[f"{o['kind']}/{o['metadata']['name']}"],
        )
        for o in found
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def split(name: str, *backends: str) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": name},
        "spec": {"service": name, "backends": [{"service": b, "weight": 1} for b in backends]},
    }


@pytest.fixture
async def lagging_proxy(config_port: int, namespace: str) -> AsyncIterator[str]:
    """A proxy that subscribes to `api` and never acknowledges what it is sent: one that
    has not applied its config yet, as the config server sees it. The server drops it
    after its ack timeout (30 s); it reconnects, as a proxy does, and lags again."""
    authority = f"api.{namespace}.svc.cluster.local:80"
    identity = ProxyIdentity(pod="lagging-0", namespace=namespace, service_account="default")
    hello = dpb.Hello(identity=config_proto.identity_to_proto(identity), targets=[authority])

    async def lag() -> None:
        while True:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{config_port}") as channel:
                call = dpb_grpc.ConfigDiscoveryStub(channel).Stream()
                try:
                    await call.write(dpb.ProxyRequest(hello=hello))
                    async for _update in call:
                        pass  # received, never acknowledged
                except grpc.aio.AioRpcError:
                    pass  # dropped for not acknowledging: connect again

    lagging = asyncio.create_task(lag())
    try:
        yield authority
    finally:
        lagging.cancel()
        await asyncio.gather(lagging, return_exceptions=True)


async def test_every_kind_has_the_same_health_for_argo_cd_and_flux(
    cluster: ClusterInfo, namespace: str, config_port: int
) -> None:
    kubectl(cluster, "apply", "-n", namespace, "-f", str(manifests.crd_dir() / "examples"))

    async def all_seen() -> list[dict[str, Any]] | None:
        found = objects(cluster, namespace)
        return found if found and all(seen(o) for o in found) else None

    found = await eventually(all_seen, "the operator to write the status of every example")
    assert {o["kind"] for o in found} == {w.kind.value for w in WATCHED if w.reports_status}
    healths = health_of(found)
    differ = {name: h for name, h in healths.items() if SAME_HEALTH[h[0]] != h[1]}
    assert not differ, differ
    # The examples name Services that do not exist here: in progress, none failed.
    assert {argo for argo, _ in healths.values()} <= {"Healthy", "Progressing"}


async def test_each_state_the_operator_reports_reads_the_same_in_argo_cd_and_flux(
    cluster: ClusterInfo, namespace: str, lagging_proxy: str
) -> None:
    profile = {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": f"books.{namespace}.svc.cluster.local"},
        "spec": {"routes": [{"name": "GET /books", "condition": {"pathRegex": "/books/[0-9+"}}]},
    }
    apply(
        cluster, namespace,
        *(service(name) for name in ("web", "web-v1", "web-v2", "shop", "api", "api-v1")),
        split("web", "web-v1", "web-v2"),  # resolves
        split("shop", "web-v1", "shop-canary"),  # shop-canary does not exist
        split("api", "api-v1"),  # the lagging proxy subscribed to api
        profile,
    )  # fmt: skip
    expected = {
        "TrafficSplit/web": ("Healthy", "Current"),
        "TrafficSplit/shop": ("Progressing", "InProgress"),
        "TrafficSplit/api": ("Progressing", "InProgress"),
        f"ServiceProfile/books.{namespace}.svc.cluster.local": ("Degraded", "Failed"),
    }
    last: dict[str, Any] = {}

    async def reported() -> list[dict[str, Any]] | None:
        found = objects(cluster, namespace)
        last.update({f"{o['kind']}/{o['metadata']['name']}": o.get("status") for o in found})
        if len(found) != len(expected) or not all(seen(o) for o in found):
            return None
        return found if health_of(found) == expected else None

    try:
        found = await eventually(reported, "each object to reach its health in both tools")
    except AssertionError as exc:
        raise AssertionError(f"statuses: {json.dumps(last, indent=1)}") from exc
    api = next(o for o in found if o["metadata"]["name"] == "api")
    conditions = {c["type"]: c for c in api["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"  # valid and resolved, only not programmed
    assert conditions["Programmed"]["status"] == "False"

    apply(cluster, namespace, service("shop-canary"))

    async def recovered() -> tuple[str, str] | None:
        shop = next(o for o in objects(cluster, namespace) if o["metadata"]["name"] == "shop")
        pair = health_of([shop])["TrafficSplit/shop"]
        return pair if pair == ("Healthy", "Current") else None

    await eventually(recovered, "the split to be Healthy and Current once its backend exists")


def test_kubectl_reads_the_argocd_cm_snippet_as_one_script_per_kind(cluster: ClusterInfo) -> None:
    """The snippet's YAML anchor, as kubectl (Go's YAML) expands it: what Argo CD gets."""
    kubectl(cluster, "create", "namespace", "argocd")
    try:
        kubectl(cluster, "apply", "-f", str(SNIPPET))
        stored = json.loads(
            kubectl(cluster, "-n", "argocd", "get", "configmap", "argocd-cm", "-o", "json")
        )
        assert len(stored["data"]) == len([w for w in WATCHED if w.reports_status])
        assert all(script == SCRIPT.read_text() for script in stored["data"].values())
    finally:
        kubectl(cluster, "delete", "namespace", "argocd", "--wait=false")
