"""The installed webhook configurations and RBAC: the deliberate choices, pinned."""

from __future__ import annotations

from typing import Any

import yaml

from weft_api.mesh import TRUST_ROOTS
from weft_cli import manifests
from weft_resources.kinds import WATCHED
from weft_webhooks.conversion import CONVERTERS
from weft_webhooks.endpoints import CONVERTED_CRDS

URL = "https://127.0.0.1:9443"


def configurations() -> dict[str, Any]:
    rendered = yaml.safe_load_all(manifests.webhook_configurations("weft", URL, "Q0E="))
    return {doc["kind"]: doc["webhooks"][0] for doc in rendered}


def test_injection_fails_open_fast_and_validation_fails_closed() -> None:
    webhooks = configurations()
    mutating, validating = (
        webhooks["MutatingWebhookConfiguration"],
        webhooks["ValidatingWebhookConfiguration"],
    )
    assert mutating["failurePolicy"] == "Ignore"
    assert mutating["timeoutSeconds"] <= 2
    assert mutating["clientConfig"] == {"url": f"{URL}/inject", "caBundle": "Q0E="}
    assert validating["failurePolicy"] == "Fail"
    assert validating["timeoutSeconds"] <= 5
    assert validating["clientConfig"]["url"] == f"{URL}/validate"
    for webhook in (mutating, validating):
        assert webhook["sideEffects"] == "None"
        excluded = webhook["namespaceSelector"]["matchExpressions"][0]
        assert excluded["key"] == "kubernetes.io/metadata.name"
        assert excluded["operator"] == "NotIn"
        assert excluded["values"] == ["kube-system", "weft"]


def test_validation_covers_exactly_weft_kinds_and_not_their_status() -> None:
    rules = configurations()["ValidatingWebhookConfiguration"]["rules"]
    covered = {
        (group, resource)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert covered == {(w.group, w.plural) for w in WATCHED if w.reports_status}
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in rules)


def test_the_converted_crds_are_those_with_a_converter() -> None:
    plurals = {w.plural: (w.group, w.kind.value) for w in WATCHED}
    assert {plurals[crd.split(".")[0]] for crd in CONVERTED_CRDS} == set(CONVERTERS)


def test_the_webhooks_may_patch_only_their_own_registrations() -> None:
    rbac = [doc for doc in yaml.safe_load_all(manifests.webhooks_rbac("weft")) if doc]
    (role,) = [doc for doc in rbac if doc["kind"] == "ClusterRole"]
    patching = [rule for rule in role["rules"] if "patch" in rule["verbs"]]
    assert all(rule.get("resourceNames") for rule in patching)
    assert not any("create" in rule["verbs"] for rule in role["rules"])


def test_in_weft_namespace_the_webhooks_read_the_trust_roots_and_keep_their_ca() -> None:
    """The trust roots ConfigMap and the webhooks' own CA Secret, by name; creating a
    Secret cannot be limited to a name, so it is allowed in Weft's namespace only."""
    rbac = [doc for doc in yaml.safe_load_all(manifests.webhooks_rbac("mesh")) if doc]
    (role,) = [doc for doc in rbac if doc["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "mesh"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [TRUST_ROOTS],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["weft-webhooks-ca"],
            "verbs": ["get", "update"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        },
    ]
    (binding,) = [doc for doc in rbac if doc["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "weft-webhooks", "namespace": "mesh"}
    ]
