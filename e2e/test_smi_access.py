"""SMI access control with meshed pods on the local cluster: IdentityBinding subjects
of TrafficTargets (traffic-access v1alpha4).

A namespace of its own holds three meshed pods running `relay.py`: `server` (the
destination; its `/ready` answers 200), and the clients `client` and `other`, each
under a ServiceAccount of its name. A call is made from a client pod, so it leaves
through that pod's proxy and reaches the server's proxy over mTLS; the server's proxy
answers 403 itself when no authorization admits the call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from meshed_bookshop import ControlPlane, kubectl, test_pod

from weft_api import mesh
from weft_localcluster.waiting import eventually

APPS = ("server", "client", "other")


class AccessNamespace:
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

    async def status(self, http: aiohttp.ClientSession, client: str, path: str) -> int:
        """The status `client`'s pod gets for GET `path` on the server's Service."""
        url = f"http://server.{self.name}.svc.cluster.local:8080{path}"
        async with http.get(f"http://{self.pod_ip(client)}:8080/http", params={"url": url}) as r:
            assert r.status == 200, await r.text()
            found: int = (await r.json())["status"]
            return found

    async def statuses(self, http: aiohttp.ClientSession, path: str = "/ready") -> dict[str, int]:
        return {client: await self.status(http, client, path) for client in ("client", "other")}


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
    shop.apply(*(item for app in APPS for item in test_pod(app, app, "relay.py", 8080)))
    for app in APPS:
        shop.kubectl("rollout", "status", f"deployment/{app}", "--timeout=180s")
    yield shop
    kubectl(control_plane.cluster, "delete", "namespace", name, "--wait=false")


def ready_routes() -> dict[str, Any]:
    return {
        "apiVersion": "specs.smi-spec.io/v1alpha4",
        "kind": "HTTPRouteGroup",
        "metadata": {"name": "server-routes"},
        "spec": {"matches": [{"name": "ready", "pathRegex": "/ready", "methods": ["GET"]}]},
    }


def binding(name: str, **schemes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "IdentityBinding",
        "metadata": {"name": name},
        "spec": {"schemes": schemes},
    }


def bound(name: str) -> dict[str, str]:
    return {"kind": "IdentityBinding", "group": "access.smi-spec.io", "name": name}


def target(name: str, destination: dict[str, str], *sources: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "TrafficTarget",
        "metadata": {"name": name},
        "spec": {
            "destination": destination,
            "rules": [{"kind": "HTTPRouteGroup", "name": "server-routes"}],
            "sources": list(sources),
        },
    }


async def test_identity_bindings_name_a_traffic_targets_destination_and_sources(
    access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    """The spec's example: the destination bound by pod labels, the source by its
    ServiceAccount (and the other client by a SPIFFE ID once a second binding names it)."""
    assert await access.statuses(http) == {"client": 200, "other": 200}  # Linkerd's default
    access.apply(
        ready_routes(),
        binding("server", podLabelSelectors=[{"name": "pods", "matchLabels": {"app": "server"}}]),
        binding("client", serviceAccount="client"),
        target("client-to-server", bound("server"), bound("client")),
    )
    try:

        async def only_client() -> bool:
            return await access.statuses(http) == {"client": 200, "other": 403}

        await eventually(only_client, "the bound client alone to be admitted", 60)
        assert await access.status(http, "client", "/elsewhere") == 403  # not in the rules
        spiffe = f"spiffe://cluster.local/ns/{access.name}/sa/other"
        access.apply(binding("other", spiffeIdentities=[spiffe]))
        access.apply(target("other-to-server", bound("server"), bound("other")))

        async def both() -> bool:
            return await access.statuses(http) == {"client": 200, "other": 200}

        await eventually(both, "the client bound by SPIFFE ID to be admitted too", 60)
    finally:
        access.kubectl(
            "delete", "traffictarget,identitybinding,httproutegroup", "--all", "--wait=true"
        )

    async def open_again() -> bool:
        return await access.statuses(http) == {"client": 200, "other": 200}

    await eventually(open_again, "no target left: the default policy again", 60)


async def test_a_target_whose_binding_is_missing_denies_and_says_so(
    access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    access.apply(
        ready_routes(),
        binding("server", serviceAccount="server"),
        target("from-nobody", bound("server"), bound("missing")),
    )
    try:

        async def denied() -> bool:
            return await access.statuses(http) == {"client": 403, "other": 403}

        await eventually(denied, "a target with an unresolved source to admit no one", 60)

        async def unresolved() -> str | None:
            found = json.loads(access.kubectl("get", "traffictarget", "from-nobody", "-o", "json"))
            for condition in found.get("status", {}).get("conditions", []):
                if condition["type"] == "ResolvedRefs" and condition["status"] == "False":
                    return str(condition["message"])
            return None

        message = await eventually(unresolved, "ResolvedRefs=False on the target", 30)
        assert f"IdentityBinding {access.name}/missing" in message
    finally:
        access.kubectl(
            "delete", "traffictarget,identitybinding,httproutegroup", "--all", "--wait=true"
        )
