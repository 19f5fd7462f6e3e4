"""Fields Weft used to accept and ignore, with meshed pods on the local cluster (the
`access` namespace of meshed_bookshop.py): a ServiceProfile's dstOverrides and an
HTTPRoute's backendRefs split their Service; a Service port's appProtocol
`linkerd.io/opaque` lets a server speak first; what Weft cannot do is refused at
admission with the reason."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from meshed_bookshop import AccessNamespace

from weft_cli.local_install import InstallError
from weft_localcluster.waiting import eventually


async def answered_by(access: AccessNamespace, http: aiohttp.ClientSession, query: str = "") -> Any:
    """Which relay answers `client`'s GET of the server's Service /who."""
    url = f"http://server.{access.name}.svc.cluster.local:8080/who{query}"
    found = await access.get(http, "client", url)
    return found["body"] if found["status"] == 200 else found


def profile(access: AccessNamespace, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": f"server.{access.name}.svc.cluster.local"},
        "spec": spec,
    }


async def test_a_profiles_dst_overrides_split_its_service(
    access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    assert await answered_by(access, http) == "server"
    authority = f"other.{access.name}.svc.cluster.local:8080"
    access.apply(profile(access, dstOverrides=[{"authority": authority, "weight": 1}]))
    try:

        async def overridden() -> bool:
            return await answered_by(access, http) == "other"

        await eventually(overridden, "the dstOverride to take the Service's traffic", 60)
    finally:
        access.kubectl("delete", "serviceprofile", "--all", "--wait=true")

    async def back() -> bool:
        return await answered_by(access, http) == "server"

    await eventually(back, "the Service's own endpoints once the profile is gone", 60)


async def test_an_http_routes_backend_refs_take_what_its_rule_matches(
    access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    parent = {"kind": "Service", "group": "core", "name": "server", "port": 8080}
    route = {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "HTTPRoute",
        "metadata": {"name": "canary"},
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"queryParams": [{"name": "canary", "value": "1"}]}],
                    "backendRefs": [{"name": "other", "port": 8080}],
                },
                {"backendRefs": [{"name": "server", "port": 8080}]},
            ],
        },
    }
    access.apply(route)
    try:

        async def canary_to_other() -> bool:
            return await answered_by(access, http, "?canary=1") == "other"

        await eventually(canary_to_other, "matching requests to go to the route's backend", 60)
        assert await answered_by(access, http) == "server"  # the rest: the parent
    finally:
        access.kubectl("delete", "httproute.policy.linkerd.io", "--all", "--wait=true")


async def test_app_protocol_linkerd_opaque_lets_a_server_speak_first(
    access: AccessNamespace, http: aiohttp.ClientSession
) -> None:
    """relay.py's port 7001 greets first. Without the declaration the client's proxy
    waits for the client's first bytes (detection, 10 s) before it connects, and the
    client, which waits for the greeting, gives up at 8 s."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "banner"},
        "spec": {
            "selector": {"app": "server"},
            "ports": [{"port": 7001, "targetPort": 7001, "appProtocol": "linkerd.io/opaque"}],
        },
    }
    access.apply(service)
    try:
        host = f"banner.{access.name}.svc.cluster.local"

        async def greeted() -> Any:
            ip = access.pod_ip("client")
            params = {"host": host, "port": "7001"}
            async with http.get(f"http://{ip}:8080/banner", params=params) as response:
                found = await response.json()
            return found["banner"] == "hello from server\n" or None

        # Retried until the client's proxy knows the Service: a first connection made
        # before discovery would be detected like any unknown destination.
        await eventually(greeted, "the server's greeting through both proxies", 60)
    finally:
        access.kubectl("delete", "service", "banner", "--wait=true")


def refusal(access: AccessNamespace, manifest: dict[str, Any]) -> str:
    with pytest.raises(InstallError) as refused:
        access.apply(manifest)
    return str(refused.value)


def test_what_weft_cannot_do_is_refused_at_admission_with_the_reason(
    access: AccessNamespace,
) -> None:
    parent = {"kind": "Service", "group": "core", "name": "server", "port": 8080}

    def route(**spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "HTTPRoute",
            "metadata": {"name": "refused"},
            "spec": {"parentRefs": [parent], **spec},
        }

    hostnames = refusal(access, route(hostnames=["server.example.com"]))
    assert "spec.hostnames: Weft does not match routes on hostnames" in hostnames
    modifier = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}}
    filtered = refusal(access, route(rules=[{"filters": [modifier]}]))
    assert "spec.rules[0].filters: Weft's proxies apply no filters (RequestHeaderModifier)" in (
        filtered
    )
    two = [{"backendRefs": [{"name": "other", "port": 8080}]}] * 2
    assert "in one rule only" in refusal(access, route(rules=two))
    external = profile(access, dstOverrides=[{"authority": "api.example.com:443", "weight": 1}])
    assert "is not a Service of the cluster" in refusal(access, external)
