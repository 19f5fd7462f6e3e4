"""The webhooks on the real local cluster: the real API server calls them over HTTPS.

They run as `weft demo` runs them: a process on loopback, with its ServiceAccount's
token and the shipped RBAC, registered by `local_install.start_webhooks`. The tests
read the Pod specs the API server stored: what admission decided.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_api import mesh
from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import local_install
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually
from weft_operator.identity.server import serving_identity
from weft_resources import HTTPRouteGroup, parse_resource

WEFT_NAMESPACE = "weft"
SPLITS = ("split.smi-spec.io", "trafficsplits")


@pytest.fixture(scope="module")
def webhooks(cluster: ClusterInfo) -> Iterator[processes.ProcessRecord]:
    record = local_install.start_webhooks(cluster, WEFT_NAMESPACE, ports.pick_free())
    yield record
    local_install.stop_webhooks(cluster, record)


@pytest.fixture
async def injected_namespace(
    api: ApiClient, webhooks: processes.ProcessRecord
) -> AsyncIterator[str]:
    """A namespace annotated for injection from its creation."""
    core = client.CoreV1Api(api)
    name = f"injected-{uuid.uuid4().hex[:6]}"
    annotations = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    metadata = client.V1ObjectMeta(name=name, annotations=annotations)
    await core.create_namespace(client.V1Namespace(metadata=metadata))
    yield name
    await core.delete_namespace(name)


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "app",
        "image": "ghcr.io/example/web:1.0",
        "ports": [{"containerPort": 8080}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def pod(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/web:1.0"}], **spec},
    }


async def pods_of(api: ApiClient, namespace: str, app: str, count: int) -> list[Any]:
    async def created() -> list[Any] | None:
        found = await client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"app={app}"
        )
        return found.items if len(found.items) == count else None

    return await eventually(created, f"{count} pods of {app} from the controller-manager")


def init_container_names(created: Any) -> list[str]:
    return [c.name for c in created.spec.init_containers or ()]


def weft_inject(
    cluster: ClusterInfo, manifest: str, *args: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "weft_cli", "inject", "-", *args]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(argv, input=manifest, capture_output=True, text=True, check=True, env=env)


def refusal(error: ApiException) -> str:
    assert error.body is not None
    message: str = json.loads(error.body)["message"]
    return message


async def test_a_deployment_in_an_injected_namespace_gets_pods_with_the_proxy(
    api: ApiClient, injected_namespace: str
) -> None:
    await client.AppsV1Api(api).create_namespaced_deployment(injected_namespace, deployment("web"))
    created = await pods_of(api, injected_namespace, "web", count=2)
    # start_webhooks installed the mesh identity, as `weft install` does.
    roots = await client.CoreV1Api(api).read_namespaced_config_map(TRUST_ROOTS, WEFT_NAMESPACE)
    for each in created:
        assert init_container_names(each) == [mesh.INIT_CONTAINER, mesh.PROXY_CONTAINER]
        init, proxy = each.spec.init_containers
        assert proxy.restart_policy == "Always"  # a native sidecar
        assert proxy.security_context.run_as_user == mesh.PROXY_UID
        assert proxy.readiness_probe.http_get.port == mesh.PROXY_ADMIN_PORT
        assert f"--proxy-uid={mesh.PROXY_UID}" in init.args
        assert [c.name for c in each.spec.containers] == ["app"]
        token = next(v for v in each.spec.volumes if v.name == mesh.IDENTITY_TOKEN_VOLUME)
        assert token.projected.sources[0].service_account_token.audience == "identity.weft.dev"
        assert each.metadata.annotations[mesh.PROXY_VERSION_ANNOTATION] == mesh.PROXY_VERSION
        env = {e.name: e.value for e in proxy.env}
        assert env[mesh.ProxyEnv.INBOUND_PORTS] == "8080"
        assert env[mesh.ProxyEnv.TRUST_ANCHORS].strip() == roots.data[TRUST_ROOTS_KEY].strip()
        assert env[mesh.ProxyEnv.IDENTITY_SERVER_NAME] == serving_identity(
            WEFT_NAMESPACE, "cluster.local"
        )


async def test_new_pods_get_the_trust_anchors_the_configmap_holds_now(
    api: ApiClient, injected_namespace: str
) -> None:
    """The webhooks watch the ConfigMap: a rotated bundle reaches the next pod."""
    core = client.CoreV1Api(api)
    before = (await core.read_namespaced_config_map(TRUST_ROOTS, WEFT_NAMESPACE)).data
    rotated = before[TRUST_ROOTS_KEY] + before[TRUST_ROOTS_KEY]  # old and new anchor
    patch = {"data": {TRUST_ROOTS_KEY: rotated}}
    await core.patch_namespaced_config_map(TRUST_ROOTS, WEFT_NAMESPACE, patch)
    try:

        async def injected_with_rotated() -> bool:
            name = f"web-{uuid.uuid4().hex[:6]}"
            created = await core.create_namespaced_pod(injected_namespace, pod(name))
            proxy = created.spec.init_containers[1]
            anchors = next(e.value for e in proxy.env if e.name == mesh.ProxyEnv.TRUST_ANCHORS)
            return bool(anchors.strip() == rotated.strip())

        await eventually(injected_with_rotated, "a pod injected with the rotated anchors", 10)
    finally:
        await core.patch_namespaced_config_map(TRUST_ROOTS, WEFT_NAMESPACE, {"data": before})


async def test_opted_out_host_network_and_other_namespaces_pods_are_left_as_they_are(
    api: ApiClient, injected_namespace: str, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    opted_out = {mesh.INJECT_ANNOTATION: mesh.INJECT_DISABLED}
    created = [
        await core.create_namespaced_pod(injected_namespace, pod("opted-out", opted_out)),
        await core.create_namespaced_pod(injected_namespace, pod("host", hostNetwork=True)),
        await core.create_namespaced_pod(namespace, pod("elsewhere")),
    ]
    assert [init_container_names(each) for each in created] == [[], [], []]
    host_annotations = created[1].metadata.annotations
    assert "hostNetwork" in host_annotations[mesh.INJECT_SKIPPED_ANNOTATION]


async def test_an_invalid_traffic_split_is_refused_with_its_reason(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-primary", "weight": "0"},
                {"service": "podinfo-canary", "weight": "0m"},
            ],
        },
    }
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(
            SPLITS[0], "v1alpha1", namespace, SPLITS[1], split
        )
    assert refusal(refused.value) == (
        'admission webhook "validate.weft.dev" denied the request: '
        f"TrafficSplit {namespace}/podinfo: spec.backends: every weight is 0, so no backend "
        "would receive traffic; give at least one backend a weight above 0"
    )


async def test_a_server_claiming_a_port_another_server_governs_is_refused(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    def server(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "policy.linkerd.io/v1beta3",
            "kind": "Server",
            "metadata": {"name": name},
            "spec": {"podSelector": {"matchLabels": labels}, "port": 8080},
        }

    custom = client.CustomObjectsApi(api)
    args = ("policy.linkerd.io", "v1beta3", namespace, "servers")
    await custom.create_namespaced_custom_object(*args, server("web-http", {"app": "web"}))
    await custom.create_namespaced_custom_object(*args, server("api-http", {"app": "api"}))
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(*args, server("all-http", {}))
    assert f"Server {namespace}/api-http already governs port 8080" in refusal(refused.value)


async def test_a_flagger_split_reads_back_at_every_version(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    custom = client.CustomObjectsApi(api)
    written = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-primary", "weight": "500m"},
                {"service": "podinfo-canary", "weight": "1500m"},
            ],
        },
    }
    await custom.create_namespaced_custom_object(
        SPLITS[0], "v1alpha1", namespace, SPLITS[1], written
    )

    async def read(version: str) -> dict[str, Any]:
        found: dict[str, Any] = await custom.get_namespaced_custom_object(
            SPLITS[0], version, namespace, SPLITS[1], "podinfo"
        )
        return found

    def weights(found: dict[str, Any]) -> list[Any]:
        return [backend["weight"] for backend in found["spec"]["backends"]]

    assert weights(await read("v1alpha4")) == [500, 1500]
    assert weights(await read("v1alpha2")) == [500, 1500]
    assert weights(await read("v1alpha1")) == ["500m", "1500m"]

    # Flagger moves the canary to 90/10 through v1alpha1 again: read at v1alpha4.
    current = await read("v1alpha1")
    current["spec"]["backends"][0]["weight"] = "90"
    current["spec"]["backends"][1]["weight"] = "10"
    await custom.replace_namespaced_custom_object(
        SPLITS[0], "v1alpha1", namespace, SPLITS[1], "podinfo", current
    )
    assert weights(await read("v1alpha4")) == [90, 10]
    assert weights(await read("v1alpha1")) == ["90", "10"]


@pytest.mark.parametrize("manual", [False, True])
async def test_weft_inject_output_applies_with_kubectl_and_its_pods_carry_the_proxy(
    cluster: ClusterInfo,
    api: ApiClient,
    namespace: str,
    webhooks: processes.ProcessRecord,
    manual: bool,
) -> None:
    args = ["--manual", f"--weft-namespace={WEFT_NAMESPACE}"] if manual else []
    injected = weft_inject(cluster, yaml.safe_dump(deployment("offline", replicas=1)), *args)
    assert "deployment/offline: injected" in injected.stderr
    local_install.kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=injected.stdout)
    (created,) = await pods_of(api, namespace, "offline", count=1)
    # The namespace is not injected: the webhook acted on the template's annotation, or
    # (manual) the proxy came with the manifest, unchanged.
    assert init_container_names(created) == [mesh.INIT_CONTAINER, mesh.PROXY_CONTAINER]
    template = yaml.safe_load(injected.stdout)["spec"]["template"]
    if not manual:
        assert template["metadata"]["annotations"] == {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
        assert "initContainers" not in template["spec"]
        return
    assert created.spec.init_containers[1].image == template["spec"]["initContainers"][1]["image"]
    env = {e.name: e.value for e in created.spec.init_containers[1].env}
    roots = await client.CoreV1Api(api).read_namespaced_config_map(TRUST_ROOTS, WEFT_NAMESPACE)
    # Read from the cluster: without them the proxy would have no identity.
    assert env[mesh.ProxyEnv.TRUST_ANCHORS].strip() == roots.data[TRUST_ROOTS_KEY].strip()


def test_the_webhooks_have_no_more_rights_than_they_need(
    cluster: ClusterInfo, webhooks: processes.ProcessRecord
) -> None:
    who = f"--as=system:serviceaccount:{WEFT_NAMESPACE}:weft-webhooks"

    def can(*action: str) -> bool:
        result = local_install.kubectl_result(cluster, "auth", "can-i", *action, who)
        return result.stdout.strip() == "yes"

    assert can("watch", "namespaces")
    assert can("list", "servers.policy.linkerd.io", "-A")
    assert can("patch", "mutatingwebhookconfigurations/weft-proxy-injector")
    assert can("patch", "customresourcedefinitions/trafficsplits.split.smi-spec.io")
    assert not can("create", "mutatingwebhookconfigurations")
    assert not can("patch", "mutatingwebhookconfigurations/someone-elses")
    assert not can("patch", "customresourcedefinitions/servers.policy.linkerd.io")
    assert not can("create", "pods", "-A")
    assert not can("get", "secrets", "-A")
    # Their shared CA, by name; never the mesh issuer beside it.
    assert can("update", "secrets/weft-webhooks-ca", "-n", WEFT_NAMESPACE)
    assert not can("get", "secrets/weft-identity-issuer", "-n", WEFT_NAMESPACE)
    for verb in ("get", "list", "watch"):
        assert can(verb, f"configmaps/{TRUST_ROOTS}", "-n", WEFT_NAMESPACE)
    assert not can("get", "configmaps/kube-root-ca.crt", "-n", WEFT_NAMESPACE)
    assert not can("get", f"configmaps/{TRUST_ROOTS}", "-n", "default")


def generated_profile(namespace: str, routes: int) -> dict[str, Any]:
    """A ServiceProfile as `linkerd profile --open-api` writes one for a large API."""
    entries = [
        {
            "name": f"GET /api/v1/items/{i}/{{name}}",
            "condition": {"method": "GET", "pathRegex": f"/api/v1/items/{i}/[^/]*"},
            "isRetryable": True,
        }
        for i in range(routes)
    ]
    name = f"api.{namespace}.svc.cluster.local"
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": name},
        "spec": {"routes": entries},
    }


async def test_a_profile_of_600_kb_can_be_updated(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    """An update's review holds the object twice: past aiohttp's default of 1 MiB, the
    API server said only "failed calling webhook ... status code 413"."""
    custom = client.CustomObjectsApi(api)
    args = ("linkerd.io", "v1alpha2", namespace, "serviceprofiles")
    profile = generated_profile(namespace, 5_000)
    assert len(json.dumps(profile, separators=(",", ":"))) > 600 * 1024  # as Go writes it
    created = await custom.create_namespaced_custom_object(*args, profile)
    created["spec"]["routes"][0]["isRetryable"] = False
    updated = await custom.replace_namespaced_custom_object(
        *args, profile["metadata"]["name"], created
    )
    assert updated["spec"]["routes"][0]["isRetryable"] is False

    updated["spec"]["routes"][1]["condition"]["pathRegex"] = "/api/v1/items/[0-9+"
    with pytest.raises(ApiException) as refused:
        await custom.replace_namespaced_custom_object(*args, profile["metadata"]["name"], updated)
    assert "spec.routes[1].condition.pathRegex" in refusal(refused.value)


async def test_a_pod_of_a_megabyte_gets_the_proxy(api: ApiClient, injected_namespace: str) -> None:
    """The injector fails open: past 1 MiB such a pod was created silently unmeshed."""
    big = pod("big")
    big["spec"]["containers"][0]["env"] = [
        {"name": f"BLOB_{i}", "value": "x" * 100_000} for i in range(11)
    ]
    assert len(json.dumps(big)) > 1_100_000
    created = await client.CoreV1Api(api).create_namespaced_pod(injected_namespace, big)
    assert init_container_names(created) == [mesh.INIT_CONTAINER, mesh.PROXY_CONTAINER]


async def test_a_split_over_more_backends_than_weft_accepts_is_refused_with_the_limit(
    cluster: ClusterInfo, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    backends = [{"service": f"podinfo-{i}", "weight": 1} for i in range(412)]
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo"},
        "spec": {"service": "podinfo", "backends": backends},
    }
    applied = local_install.kubectl_result(
        cluster, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(split)
    )
    assert applied.returncode != 0
    assert (
        'admission webhook "validate.weft.dev" denied the request: '
        f"TrafficSplit {namespace}/podinfo: spec.backends: 412 backends, more than the 100 "
        "Weft accepts in one TrafficSplit"
    ) in applied.stderr


async def test_a_split_whose_root_is_also_a_backend_is_admitted(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    """Linkerd's booksapp sample and Argo Rollouts' default SMI setup: the root (stable)
    Service is a backend too."""
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "webapp"},
        "spec": {
            "service": "webapp",
            "backends": [
                {"service": "webapp", "weight": "900m"},
                {"service": "webapp-canary", "weight": "100m"},
            ],
        },
    }
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(SPLITS[0], "v1alpha1", namespace, SPLITS[1], split)
    stored = await custom.get_namespaced_custom_object(
        SPLITS[0], "v1alpha4", namespace, SPLITS[1], "webapp"
    )
    assert [b["service"] for b in stored["spec"]["backends"]] == ["webapp", "webapp-canary"]


async def test_split_services_as_dns_names_are_admitted_and_other_namespaces_refused(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    def split(name: str, root: str, backend: str) -> dict[str, Any]:
        return {
            "apiVersion": "split.smi-spec.io/v1alpha2",
            "kind": "TrafficSplit",
            "metadata": {"name": name},
            "spec": {
                "service": root,
                "backends": [{"service": backend, "weight": 100}],
            },
        }

    custom = client.CustomObjectsApi(api)
    args = (SPLITS[0], "v1alpha2", namespace, SPLITS[1])
    await custom.create_namespaced_custom_object(
        *args, split("osm", f"bookstore.{namespace}", f"bookstore-v2.{namespace}")
    )
    await custom.create_namespaced_custom_object(
        *args, split("fqdn", f"books.{namespace}.svc.cluster.local", "books-v2")
    )
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(
            *args, split("elsewhere", "books", "books-v2.other-namespace")
        )
    assert refusal(refused.value) == (
        'admission webhook "validate.weft.dev" denied the request: '
        f"TrafficSplit {namespace}/elsewhere: spec.backends[0].service: "
        "'books-v2.other-namespace' names a Service in namespace 'other-namespace', but a "
        "TrafficSplit splits between Services of its own namespace "
        f"({namespace!r}); create the split in 'other-namespace'"
    )
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(
            *args, split("domain", f"books.{namespace}.svc.corp.example", "books-v2")
        )
    assert "ends in cluster domain 'corp.example'" in refusal(refused.value)


async def test_traffic_targets_are_served_at_v1alpha4_and_convert(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    target: dict[str, Any] = {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "TrafficTarget",
        "metadata": {"name": "books"},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": "books", "namespace": namespace},
            "rules": [{"kind": "HTTPRouteGroup", "name": "books-routes", "matches": ["list"]}],
            "sources": [{"kind": "ServiceAccount", "name": "webapp", "namespace": namespace}],
        },
    }
    custom = client.CustomObjectsApi(api)
    args = ("access.smi-spec.io", "v1alpha4", namespace, "traffictargets")
    await custom.create_namespaced_custom_object(*args, target)
    old = await custom.get_namespaced_custom_object(
        "access.smi-spec.io", "v1alpha1", namespace, "traffictargets", "books"
    )
    assert old["destination"]["name"] == "books"
    assert old["specs"] == target["spec"]["rules"]
    again = await custom.get_namespaced_custom_object(*args, "books")
    assert again["spec"] == target["spec"]

    bound = {**target, "metadata": {"name": "bound"}}
    source = {"kind": "IdentityBinding", "group": "access.smi-spec.io", "name": "web"}
    bound["spec"] = {**target["spec"], "sources": [source]}
    await custom.create_namespaced_custom_object(*args, bound)
    wrong = {**target, "metadata": {"name": "wrong"}}
    wrong["spec"] = {**target["spec"], "sources": [{**source, "group": "example.com"}]}
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(*args, wrong)
    assert "spec.sources[0]" in refusal(refused.value)
    binding = {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "IdentityBinding",
        "metadata": {"name": "web"},
        "spec": {"schemes": {"serviceAccount": "web", "podLabelSelectors": [{}]}},
    }
    bindings = ("access.smi-spec.io", "v1alpha4", namespace, "identitybindings")
    with pytest.raises(ApiException) as refused:
        await custom.create_namespaced_custom_object(*bindings, binding)
    assert "exclude each other" in refusal(refused.value)
    binding["spec"] = {"schemes": {"serviceAccount": "web"}}
    await custom.create_namespaced_custom_object(*bindings, binding)


async def test_a_route_group_with_top_level_matches_is_taken_at_v1alpha3_as_at_v1alpha4(
    api: ApiClient, namespace: str, webhooks: processes.ProcessRecord
) -> None:
    """SMI's A/B example writes top-level matches; v1alpha3 refused what v1alpha4 took."""
    matches = [{"name": "firefox-users", "headers": [{"user-agent": ".*Firefox.*"}]}]
    custom = client.CustomObjectsApi(api)
    for version in ("v1alpha3", "v1alpha4"):
        group = {
            "apiVersion": f"specs.smi-spec.io/{version}",
            "kind": "HTTPRouteGroup",
            "metadata": {"name": f"ab-test-{version}"},
            "matches": matches,
        }
        args = ("specs.smi-spec.io", version, namespace, "httproutegroups")
        await custom.create_namespaced_custom_object(*args, group, field_validation="Strict")
        found = await custom.get_namespaced_custom_object(
            "specs.smi-spec.io", "v1alpha4", namespace, "httproutegroups", f"ab-test-{version}"
        )
        parsed = parse_resource(found)  # as the operator reads it, whichever layout it has
        assert isinstance(parsed, HTTPRouteGroup)
        assert [match.name for match in parsed.spec.matches] == ["firefox-users"]
