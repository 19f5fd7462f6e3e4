"""SMI access control with meshed pods on the local cluster (the `access` namespace of
meshed_bookshop.py: `server`, and the clients `client` and `other`): IdentityBinding
subjects of TrafficTargets (traffic-access v1alpha4), and SMI's or Linkerd's default.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from meshed_bookshop import AccessNamespace, ControlPlane, kubectl

from weft_cli import local_install
from weft_localcluster.waiting import eventually


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


ACCESS_MODEL = "config.weft.dev/access-model"


def set_access_model(access: AccessNamespace, model: str | None) -> None:
    """The namespace's access-model annotation (None: removed)."""
    key = ACCESS_MODEL  # the name users write, spelled out
    value = f"{key}={model}" if model else f"{key}-"
    kubectl(access.cluster, "annotate", "namespace", access.name, value, "--overwrite")


async def conformance(access: AccessNamespace, http: aiohttp.ClientSession, open_: bool) -> None:
    """SMI's traffic-access scenarios: without a TrafficTarget every client gets 200 if
    `open_` (Linkerd's default) or 403 (SMI's); with one, exactly what it allows: its
    source on its route, and no other client or route."""
    without = 200 if open_ else 403

    async def no_target() -> bool:
        return await access.statuses(http) == {"client": without, "other": without}

    await eventually(no_target, f"every client to get {without} without a TrafficTarget", 60)
    server = {"kind": "ServiceAccount", "name": "server"}
    client = {"kind": "ServiceAccount", "name": "client"}
    access.apply(ready_routes(), target("client-to-server", server, client))
    try:

        async def exactly_the_target() -> bool:
            return await access.statuses(http) == {"client": 200, "other": 403}

        await eventually(exactly_the_target, "only the target's source to be admitted", 60)
        assert await access.status(http, "client", "/elsewhere") == 403  # not its route
    finally:
        access.kubectl("delete", "traffictarget,httproutegroup", "--all", "--wait=true")
    await eventually(no_target, f"every client to get {without} once the target is gone", 60)


@pytest.mark.parametrize("model", ["smi", "linkerd"])
async def test_the_namespace_annotation_chooses_smis_or_linkerds_default(
    access: AccessNamespace, http: aiohttp.ClientSession, model: str
) -> None:
    set_access_model(access, model)
    try:
        await conformance(access, http, open_=model == "linkerd")
    finally:
        set_access_model(access, None)


async def test_weft_install_access_model_smi_denies_by_default_and_a_namespace_may_opt_out(
    control_plane: ControlPlane, access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    """`weft install --access-model smi` (the same value as --set accessModel=smi), applied
    over the running install, then put back."""
    local_install.install(control_plane.cluster, control_plane.namespace, ["accessModel=smi"])
    try:
        await conformance(access, http, open_=False)
        set_access_model(access, "linkerd")
        await conformance(access, http, open_=True)
    finally:
        set_access_model(access, None)
        local_install.install(control_plane.cluster, control_plane.namespace)

    async def open_again() -> bool:
        return await access.statuses(http) == {"client": 200, "other": 200}

    await eventually(open_again, "the default install to allow every client again", 90)
