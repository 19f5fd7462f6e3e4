"""The operator on the real local cluster: users' manifests in, conditions and Events out.

The operator runs as a process with its own ServiceAccount token and the shipped
least-privilege RBAC, exactly as `weft demo` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from weft_cli import local_install, manifests
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually
from weft_operator.catalog import build_outbound_service
from weft_operator.index.store import MeshIndex
from weft_resources.registry import parse_resource

SPLIT = ("split.smi-spec.io", "v1alpha4", "trafficsplits")
PROFILE = ("linkerd.io", "v1alpha2", "serviceprofiles")
OPERATOR_NAMESPACE = "weft"


@pytest.fixture(scope="module")
def weft_operator(cluster: ClusterInfo) -> Iterator[processes.ProcessRecord]:
    record = local_install.start_operator(cluster, OPERATOR_NAMESPACE, ports.pick_free())
    yield record
    processes.stop(record, Path(cluster.state_dir))


def kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    return local_install.kubectl(cluster, *args, stdin=stdin)


async def conditions(
    api: ApiClient, resource: tuple[str, str, str], namespace: str, name: str
) -> dict[str, dict[str, Any]]:
    group, version, plural = resource
    found = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, namespace, plural, name
    )
    return {c["type"]: c for c in (found.get("status") or {}).get("conditions", [])}


async def service(api: ApiClient, namespace: str, name: str) -> None:
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=9898)]),
    )
    await client.CoreV1Api(api).create_namespaced_service(namespace, body)


def flagger_split(name: str, primary: str, canary: str) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": name},
        "spec": {
            "service": name,
            "backends": [
                {"service": primary, "weight": "900m"},
                {"service": canary, "weight": "100m"},
            ],
        },
    }


def test_the_operator_has_no_more_rights_than_it_needs(
    cluster: ClusterInfo, weft_operator: processes.ProcessRecord
) -> None:
    who = f"--as=system:serviceaccount:{OPERATOR_NAMESPACE}:weft-operator"
    can = {
        action: kubectl(cluster, "auth", "can-i", *action.split(), who, "-A").strip() == "yes"
        for action in (
            "watch trafficsplits.split.smi-spec.io",
            "patch trafficsplits.split.smi-spec.io --subresource=status",
            "watch endpointslices.discovery.k8s.io",
        )
    }
    assert all(can.values()), can
    for forbidden in ("delete pods", "create secrets", "patch trafficsplits.split.smi-spec.io"):
        result = local_install.kubectl_result(cluster, "auth", "can-i", *forbidden.split(), who)
        assert result.stdout.strip() == "no", forbidden


async def test_every_kind_as_users_write_it_is_accepted(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    examples = manifests.crd_dir() / "examples"
    kubectl(cluster, "apply", "-n", namespace, "-f", str(examples))
    applied = json.loads(
        kubectl(cluster, "get", ",".join(_custom_kinds()), "-n", namespace, "-o", "json")
    )["items"]
    assert {item["kind"] for item in applied} >= {
        "TrafficSplit", "HTTPRouteGroup", "TCPRoute", "UDPRoute", "TrafficTarget",
        "ServiceProfile", "Server", "ServerAuthorization", "AuthorizationPolicy",
        "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute",
    }  # fmt: skip

    pending: list[str] = []

    async def all_accepted() -> list[str] | None:
        found = json.loads(
            kubectl(cluster, "get", ",".join(_custom_kinds()), "-n", namespace, "-o", "json")
        )["items"]
        pending[:] = [f"{i['kind']}/{i['metadata']['name']}: {_accepted(i)}" for i in found]
        pending[:] = [p for p in pending if not p.endswith(": True")]
        return None if pending else [i["metadata"]["name"] for i in found]

    try:
        accepted = await eventually(all_accepted, "every example to be Accepted", within=60)
    except AssertionError as exc:
        raise AssertionError(f"not Accepted: {pending}") from exc
    assert len(accepted) == len(applied)


def _custom_kinds() -> list[str]:
    return [
        "trafficsplits.split.smi-spec.io",
        "httproutegroups.specs.smi-spec.io",
        "tcproutes.specs.smi-spec.io",
        "udproutes.specs.smi-spec.io",
        "traffictargets.access.smi-spec.io",
        "serviceprofiles.linkerd.io",
        "servers.policy.linkerd.io",
        "serverauthorizations.policy.linkerd.io",
        "authorizationpolicies.policy.linkerd.io",
        "meshtlsauthentications.policy.linkerd.io",
        "networkauthentications.policy.linkerd.io",
        "httproutes.policy.linkerd.io",
    ]


def _accepted(item: dict[str, Any]) -> str:
    for condition in item.get("status", {}).get("conditions", []):
        if condition["type"] == "Accepted":
            generation_seen = condition["observedGeneration"] == item["metadata"]["generation"]
            if not generation_seen:
                return "stale"
            return "True" if condition["status"] == "True" else condition["message"]
    return "no status"


async def test_a_missing_backend_is_named_and_recovers_when_it_appears(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    await service(api, namespace, "podinfo")
    await service(api, namespace, "podinfo-primary")
    kubectl(
        cluster, "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps(flagger_split("podinfo", "podinfo-primary", "podinfo-canary")),
    )  # fmt: skip

    async def unresolved() -> dict[str, Any] | None:
        found = await conditions(api, SPLIT, namespace, "podinfo")
        refs = found.get("ResolvedRefs")
        # The operator may see the split before podinfo-primary's watch event (a loaded
        # machine): it then names both, and corrects itself once the Service arrives.
        settled = refs and refs["status"] == "False" and "podinfo-primary" not in refs["message"]
        return found if settled else None

    found = await eventually(unresolved, "ResolvedRefs=False naming only the missing Service")
    assert found["Accepted"]["status"] == "True"
    message = found["ResolvedRefs"]["message"]
    assert f"Service {namespace}/podinfo-canary (spec.backends[1].service)" in message
    assert "podinfo-primary" not in message
    assert found["Ready"]["status"] == "False"
    assert found["Reconciling"]["status"] == "True"  # kstatus: in progress, not failed

    async def warned() -> bool:  # the Event follows the status patch
        events = await client.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector="involvedObject.name=podinfo,reason=RefNotFound"
        )
        return any("podinfo-canary" in e.message for e in events.items)

    await eventually(warned, "a Warning Event naming the missing Service", within=60)

    await service(api, namespace, "podinfo-canary")

    async def resolved() -> dict[str, Any] | None:
        found = await conditions(api, SPLIT, namespace, "podinfo")
        return found if found["ResolvedRefs"]["status"] == "True" else None

    found = await eventually(resolved, "ResolvedRefs=True once the Service exists")
    assert found["Ready"]["status"] == "True"
    assert "Reconciling" not in found
    kubectl(
        cluster, "wait", "-n", namespace, "--for=condition=Ready", "ts/podinfo", "--timeout=60s"
    )


async def test_an_invalid_object_is_reported_and_recovers_when_fixed(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    name = f"books.{namespace}.svc.cluster.local"
    profile: dict[str, Any] = {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": name},
        "spec": {"routes": [{"name": "GET /books", "condition": {"pathRegex": "/books/[0-9+"}}]},
    }
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(profile))

    async def rejected() -> dict[str, Any] | None:
        found = await conditions(api, PROFILE, namespace, name)
        return found if found.get("Accepted", {}).get("status") == "False" else None

    found = await eventually(rejected, "Accepted=False for a regex that does not compile")
    assert "spec.routes[0].condition.pathRegex" in found["Accepted"]["message"]
    assert found["Accepted"]["reason"] == "Invalid"
    assert found["Stalled"]["status"] == "True"  # kstatus: failed until the object changes

    profile["spec"]["routes"][0]["condition"]["pathRegex"] = "/books/[0-9]+"
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(profile))

    async def accepted() -> dict[str, Any] | None:
        found = await conditions(api, PROFILE, namespace, name)
        ok = found["Accepted"]["status"] == "True" and found["Accepted"]["observedGeneration"] == 2
        return found if ok else None

    found = await eventually(accepted, "Accepted=True at generation 2 once fixed")
    assert "Stalled" not in found


async def test_a_split_over_hundreds_of_missing_backends_still_says_what_is_wrong(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    """Without the validator (or from before it): naming all 422 in a message, three
    times, was more than the CRD allows (32768 characters), so every status patch was
    refused and the split showed no status at all."""
    names = [f"podinfo-canary-{i:03d}-of-a-generated-manifest-gone-wrong" for i in range(422)]
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo"},
        "spec": {"service": "podinfo", "backends": [{"service": n, "weight": 1} for n in names]},
    }
    await service(api, namespace, "podinfo")
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(split))

    async def unresolved() -> dict[str, Any] | None:
        found = await conditions(api, SPLIT, namespace, "podinfo")
        refs = found.get("ResolvedRefs")
        return found if refs and refs["status"] == "False" else None

    found = await eventually(unresolved, "ResolvedRefs=False on a split of 422 backends")
    message = found["ResolvedRefs"]["message"]
    first = f"Service {namespace}/{names[0]} (spec.backends[0].service)"
    assert message.startswith(f"references not found: {first}, ")
    shown = message.count(f"Service {namespace}/")
    assert message.endswith(f", and {422 - shown} more")
    assert found["Ready"]["message"] == message
    kubectl(
        cluster,
        "wait",
        "-n",
        namespace,
        "--for=condition=Reconciling",
        "ts/podinfo",
        "--timeout=60s",
    )


async def ready(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    found = await conditions(api, SPLIT, namespace, name)
    return found if found.get("Ready", {}).get("status") == "True" else None


async def test_a_split_whose_root_is_a_backend_sends_its_share_to_the_roots_endpoints(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    """Linkerd's booksapp: `webapp` is the root and a backend. Its share goes to the
    webapp Service's own EndpointSlices (as linkerd-smi does), not to the split again."""
    await service(api, namespace, "webapp")
    await service(api, namespace, "webapp-canary")
    root_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "webapp-1", "labels": {"kubernetes.io/service-name": "webapp"}},
        "addressType": "IPv4",
        "ports": [{"port": 9898, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.7.21"], "conditions": {"ready": True}}],
    }
    split = flagger_split("webapp", "webapp", "webapp-canary")
    body = "\n---\n".join(json.dumps(d) for d in (root_slice, split))
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=body)
    found = await eventually(lambda: ready(api, namespace, "webapp"), "Ready=True")
    assert found["ResolvedRefs"]["status"] == "True"

    index = MeshIndex()
    for kind in ("services", "endpointslices", "trafficsplits"):
        listed = json.loads(kubectl(cluster, "get", kind, "-n", namespace, "-o", "json"))
        for item in listed["items"]:
            index.apply(parse_resource(item))
    parent = build_outbound_service(index, namespace, "webapp")
    assert parent is not None
    assert [(b.name, b.weight) for b in parent.backends] == [
        ("webapp", 900),
        ("webapp-canary", 100),
    ]
    root_endpoints = [e.address for port in parent.backends[0].ports for e in port.endpoints]
    assert root_endpoints == ["10.244.7.21"]


async def test_split_services_written_as_dns_names_resolve(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    """OSM writes `bookstore.bookstore`; SMI calls spec.service "the FQDN that
    applications will use". Taken literally they resolved nothing, silently."""
    for name in ("bookstore", "bookstore-v1", "bookstore-v2"):
        await service(api, namespace, name)
    split: dict[str, Any] = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "bookstore-split"},
        "spec": {
            "service": f"bookstore.{namespace}",
            "backends": [
                {"service": "bookstore-v1", "weight": 50},
                {"service": f"bookstore-v2.{namespace}.svc.cluster.local", "weight": 50},
            ],
        },
    }
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(split))
    found = await eventually(lambda: ready(api, namespace, "bookstore-split"), "Ready=True")
    assert found["ResolvedRefs"]["status"] == "True"

    elsewhere = {**split, "metadata": {"name": "elsewhere"}}
    elsewhere["spec"] = {**split["spec"], "service": "bookstore.other-namespace"}
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(elsewhere))

    async def rejected() -> dict[str, Any] | None:
        found = await conditions(api, SPLIT, namespace, "elsewhere")
        return found if found.get("Accepted", {}).get("status") == "False" else None

    found = await eventually(rejected, "Accepted=False for another namespace's Service")
    assert "names a Service in namespace 'other-namespace'" in found["Accepted"]["message"]


async def test_kubectl_get_shows_ready_and_programmed(
    cluster: ClusterInfo, api: ApiClient, namespace: str, weft_operator: processes.ProcessRecord
) -> None:
    """ACCEPTED alone read True on a split that resolved nothing."""
    await service(api, namespace, "podinfo")
    await service(api, namespace, "podinfo-primary")
    split = flagger_split("podinfo", "podinfo-primary", "podinfo-canary")
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(split))

    async def unresolved() -> dict[str, Any] | None:
        found = await conditions(api, SPLIT, namespace, "podinfo")
        return found if found.get("Ready", {}).get("status") == "False" else None

    await eventually(unresolved, "Ready=False while podinfo-canary is missing")
    header, row = kubectl(cluster, "get", "ts", "-n", namespace).splitlines()
    assert header.split() == [
        "NAME", "SERVICE", "READY", "PROGRAMMED", "AGE",
    ]  # fmt: skip
    assert row.split()[:3] == ["podinfo", "podinfo", "False"]
    wide = kubectl(cluster, "get", "ts", "-n", namespace, "-o", "wide").splitlines()[0]
    assert "ACCEPTED" in wide.split()
