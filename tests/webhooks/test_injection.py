"""Injection's rules, beyond the golden patches: what the injected pod looks like."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from weft_api import mesh
from weft_api.http2_limits import DEFAULT_LIMITS, Flood, Rate
from weft_api.identity import DEFAULT_TRUST_DOMAIN, identity_name
from weft_operator.identity.server import serving_identity
from weft_proxy.main import Settings as ProxySettings
from weft_webhooks.injection import InjectorSettings, Outcome, apply_patch, inject
from weft_webhooks.injection.patch import pointer

SETTINGS = InjectorSettings()
INJECTED_NAMESPACE = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "annotations": {}},
        "spec": {"containers": [{"name": "app", "image": "example/web:1"}], **spec},
    }


def injected(original: dict[str, Any], namespace: dict[str, str] | None = None) -> dict[str, Any]:
    result = copy.deepcopy(original)
    apply_patch(result, inject(original, namespace or INJECTED_NAMESPACE, SETTINGS).patch)
    return result


def test_the_proxy_is_a_native_sidecar_started_after_proxy_init() -> None:
    spec = injected(pod(initContainers=[{"name": "migrate", "image": "example/m:1"}]))["spec"]
    names = [container["name"] for container in spec["initContainers"]]
    assert names == [mesh.INIT_CONTAINER, mesh.PROXY_CONTAINER, "migrate"]
    proxy = spec["initContainers"][1]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["securityContext"]["runAsUser"] == mesh.PROXY_UID
    assert [c["name"] for c in spec["containers"]] == ["app"]


def test_proxy_init_redirects_to_the_proxy_ports_and_spares_its_uid_admin_and_tap_ports() -> None:
    init = injected(pod())["spec"]["initContainers"][0]
    assert init["command"] == ["python", "-m", "weft_proxy.init"]
    assert f"--inbound-port={mesh.PROXY_INBOUND_PORT}" in init["args"]
    assert f"--outbound-port={mesh.PROXY_OUTBOUND_PORT}" in init["args"]
    assert f"--proxy-uid={mesh.PROXY_UID}" in init["args"]
    # The tap port's mTLS is the proxy's own: the inbound listener must not take it.
    assert f"--skip-inbound-ports={mesh.PROXY_TAP_PORT},{mesh.PROXY_ADMIN_PORT}" in init["args"]
    assert init["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]


def test_the_proxy_gets_an_identity_token_for_its_own_audience() -> None:
    spec = injected(pod())["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == mesh.IDENTITY_TOKEN_VOLUME)
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == mesh.IDENTITY_TOKEN_AUDIENCE
    proxy = spec["initContainers"][1]
    mount = next(m for m in proxy["volumeMounts"] if m["name"] == mesh.IDENTITY_TOKEN_VOLUME)
    assert mount == {
        "name": mesh.IDENTITY_TOKEN_VOLUME,
        "mountPath": mesh.IDENTITY_TOKEN_DIR,
        "readOnly": True,
    }
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert (
        env[mesh.ProxyEnv.IDENTITY_NAME]
        == "$(_pod_sa).$(_pod_ns).serviceaccount.identity.cluster.local"
    )
    assert env[mesh.ProxyEnv.CONFIG_ADDR] == "weft-config.weft.svc.cluster.local.:8086"


def test_probes_and_resources_are_set() -> None:
    proxy = injected(pod())["spec"]["initContainers"][1]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": mesh.PROXY_ADMIN_PORT}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/live", "port": mesh.PROXY_ADMIN_PORT}
    assert set(proxy["resources"]) == {"requests", "limits"}


def test_the_pod_records_what_was_injected_and_the_version() -> None:
    annotations = injected(pod())["metadata"]["annotations"]
    assert annotations[mesh.PROXY_VERSION_ANNOTATION] == SETTINGS.version
    assert annotations[mesh.INJECTED_CONTAINERS_ANNOTATION] == "weft-init,weft-proxy"


def test_injecting_twice_is_a_no_op() -> None:
    once = injected(pod())
    again = inject(once, INJECTED_NAMESPACE, SETTINGS)
    assert again.outcome is Outcome.ALREADY_INJECTED
    assert again.patch == ()


def test_a_skipped_pod_is_annotated_once() -> None:
    skipped = injected(pod(hostNetwork=True))
    assert mesh.INJECT_SKIPPED_ANNOTATION in skipped["metadata"]["annotations"]
    assert "initContainers" not in skipped["spec"]
    assert inject(skipped, INJECTED_NAMESPACE, SETTINGS).patch == ()


@pytest.mark.parametrize(
    ("pod_annotations", "namespace_annotations", "outcome"),
    [
        ({}, {}, Outcome.NOT_ENABLED),
        ({}, {"weft.dev/inject": "enabled"}, Outcome.INJECTED),
        ({}, {"linkerd.io/inject": "enabled"}, Outcome.INJECTED),
        ({"weft.dev/inject": "enabled"}, {}, Outcome.INJECTED),
        ({"weft.dev/inject": "disabled"}, {"weft.dev/inject": "enabled"}, Outcome.DISABLED),
        ({"linkerd.io/inject": "disabled"}, {"weft.dev/inject": "enabled"}, Outcome.DISABLED),
        ({"weft.dev/inject": "enabled"}, {"weft.dev/inject": "disabled"}, Outcome.INJECTED),
        ({"weft.dev/inject": "ingress"}, {"weft.dev/inject": "enabled"}, Outcome.NOT_ENABLED),
    ],
)
def test_the_pod_decides_before_its_namespace(
    pod_annotations: dict[str, str], namespace_annotations: dict[str, str], outcome: Outcome
) -> None:
    subject = pod()
    subject["metadata"]["annotations"] = pod_annotations
    assert inject(subject, namespace_annotations, SETTINGS).outcome is outcome


def test_an_unknown_inject_value_is_reported() -> None:
    subject = pod()
    subject["metadata"]["annotations"] = {"weft.dev/inject": "yes"}
    (warning,) = inject(subject, {}, SETTINGS).warnings
    assert "'yes' is neither 'enabled' nor 'disabled'" in warning


def test_json_pointers_escape_annotation_names() -> None:
    assert (
        pointer("metadata", "annotations", "weft.dev/a~b") == "/metadata/annotations/weft.dev~1a~0b"
    )


def test_applying_a_patch_leaves_the_original_and_shares_no_nodes() -> None:
    original = pod()
    patch = inject(original, INJECTED_NAMESPACE, SETTINGS).patch
    first, second = copy.deepcopy(original), copy.deepcopy(original)
    apply_patch(first, patch)
    apply_patch(second, patch)
    assert first == second
    assert first["spec"]["initContainers"][0] is not second["spec"]["initContainers"][0]
    assert "initContainers" not in original["spec"]


ANCHORS = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
IN_A_CLUSTER = InjectorSettings(trust_anchors_pem=ANCHORS, require_trust_anchors=True)


def proxy_env(settings: InjectorSettings) -> dict[str, str]:
    result = inject(pod(), INJECTED_NAMESPACE, settings)
    spec = copy.deepcopy(pod())
    apply_patch(spec, result.patch)
    proxy = spec["spec"]["initContainers"][1]
    return {e["name"]: e["value"] for e in proxy["env"] if "value" in e}


def test_the_proxy_gets_the_trust_anchors_and_the_identity_servers_name() -> None:
    env = proxy_env(IN_A_CLUSTER)
    assert env[mesh.ProxyEnv.TRUST_ANCHORS] == ANCHORS
    # The name the operator's identity server certificate carries.
    server_name = serving_identity(mesh.DEFAULT_CONTROL_PLANE_NAMESPACE, DEFAULT_TRUST_DOMAIN)
    assert env[mesh.ProxyEnv.IDENTITY_SERVER_NAME] == server_name
    custom = InjectorSettings(control_plane_namespace="mesh-system", trust_domain="corp.example")
    assert proxy_env(custom)[mesh.ProxyEnv.IDENTITY_SERVER_NAME] == serving_identity(
        "mesh-system", "corp.example"
    )


def test_the_proxy_reads_the_injected_environment_as_injection_means_it() -> None:
    env = proxy_env(IN_A_CLUSTER)
    settings = ProxySettings.from_env(env)
    assert settings.trust_anchors_pem == ANCHORS.encode()
    assert settings.identity_server_name == IN_A_CLUSTER.identity_server_name
    assert settings.identity_addr == IN_A_CLUSTER.identity_address
    assert settings.config_addr == IN_A_CLUSTER.config_address


def test_without_trust_anchors_the_webhook_leaves_the_pod_unmeshed_and_says_why() -> None:
    unknown = InjectorSettings(require_trust_anchors=True)
    result = inject(pod(), INJECTED_NAMESPACE, unknown)
    assert result.outcome is Outcome.NO_TRUST_ANCHORS
    (warning,) = result.warnings
    assert warning.startswith("weft: not injected: the mesh's trust anchors were not available")
    skipped = copy.deepcopy(pod())
    apply_patch(skipped, result.patch)
    assert "initContainers" not in skipped["spec"]
    assert "trust anchors" in skipped["metadata"]["annotations"][mesh.INJECT_SKIPPED_ANNOTATION]
    assert inject(skipped, INJECTED_NAMESPACE, unknown).patch == ()  # recorded once


def test_pods_not_asking_for_the_proxy_are_not_told_about_trust_anchors() -> None:
    unknown = InjectorSettings(require_trust_anchors=True)
    assert inject(pod(), {}, unknown).outcome is Outcome.NOT_ENABLED
    assert inject(pod(), {}, unknown).warnings == ()


def test_offline_injection_without_anchors_still_injects_a_proxy_without_them() -> None:
    env = proxy_env(InjectorSettings())  # `weft inject`: the cluster's anchors are unknown
    assert mesh.ProxyEnv.TRUST_ANCHORS not in env


def test_the_http2_limits_annotation_reaches_the_proxy_and_a_bad_one_is_reported() -> None:
    limited = pod()
    limited["metadata"]["annotations"][mesh.HTTP2_LIMITS_ANNOTATION] = "resets=400:200"
    result = injected(limited)
    (proxy,) = [c for c in result["spec"]["initContainers"] if c["name"] == mesh.PROXY_CONTAINER]
    settings = ProxySettings.from_env({e["name"]: e["value"] for e in proxy["env"] if "value" in e})
    assert settings.http2_limits.rates[Flood.RESETS] == Rate(400, 200)
    assert settings.http2_limits.rates[Flood.PINGS] == DEFAULT_LIMITS.rates[Flood.PINGS]

    typo = pod()
    typo["metadata"]["annotations"][mesh.HTTP2_LIMITS_ANNOTATION] = "resets=lots"
    outcome = inject(typo, INJECTED_NAMESPACE, SETTINGS)
    assert any(mesh.HTTP2_LIMITS_ANNOTATION in warning for warning in outcome.warnings)
    assert outcome.outcome is Outcome.INJECTED  # a typo never stops a rollout


def tapper_env(annotations: dict[str, str], settings: InjectorSettings) -> dict[str, str]:
    annotated = pod()
    annotated["metadata"]["annotations"].update(annotations)
    result = copy.deepcopy(annotated)
    apply_patch(result, inject(annotated, INJECTED_NAMESPACE, settings).patch)
    (proxy,) = [c for c in result["spec"]["initContainers"] if c["name"] == mesh.PROXY_CONTAINER]
    return {e["name"]: e["value"] for e in proxy["env"] if "value" in e}


def test_the_tap_port_admits_the_clis_identity_unless_the_install_or_the_pod_says_otherwise() -> (
    None
):
    cli = identity_name(mesh.TAP_CLIENT_SERVICE_ACCOUNT, mesh.DEFAULT_CONTROL_PLANE_NAMESPACE)
    env = tapper_env({}, IN_A_CLUSTER)
    assert env[mesh.ProxyEnv.TAP_CLIENTS] == "cli"
    assert ProxySettings.from_env(env).tap_clients == {cli}  # what the proxy admits
    other = "debugger.ops.serviceaccount.identity.cluster.local"
    overridden = tapper_env({mesh.TAP_CLIENTS_ANNOTATION: f"cli,{other}"}, IN_A_CLUSTER)
    assert ProxySettings.from_env(overridden).tap_clients == {cli, other}
    # Open to the pod network: by the install's value, or by the pod's own annotation.
    assert mesh.ProxyEnv.TAP_CLIENTS not in tapper_env({}, replace(IN_A_CLUSTER, tap_clients=""))
    assert mesh.ProxyEnv.TAP_CLIENTS not in tapper_env(
        {mesh.TAP_CLIENTS_ANNOTATION: ""}, IN_A_CLUSTER
    )
