"""IdentityBinding subjects of TrafficTargets, in the inbound policy the catalog builds."""

from __future__ import annotations

from typing import Any

import pytest

from weft_api.config import AuthorizationKind, ProxyIdentity
from weft_operator.catalog import build_proxy_config
from weft_operator.index import MeshIndex
from weft_resources import InvalidResource, parse_resource

NS = "shop"


def pod(name: str, account: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "serviceAccountName": account,
            "containers": [{"name": "app", "ports": [{"containerPort": 8080}]}],
        },
    }


def binding(name: str, **schemes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "IdentityBinding",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"schemes": schemes},
    }


def bound(name: str) -> dict[str, str]:
    return {"kind": "IdentityBinding", "group": "access.smi-spec.io", "name": name}


TCP = {
    "apiVersion": "specs.smi-spec.io/v1alpha4",
    "kind": "TCPRoute",
    "metadata": {"name": "any-port", "namespace": NS},
    "spec": {"matches": {"ports": []}},
}


def target(destination: dict[str, str], *sources: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "access.smi-spec.io/v1alpha4",
        "kind": "TrafficTarget",
        "metadata": {"name": "to-server", "namespace": NS},
        "spec": {
            "destination": destination,
            "rules": [{"kind": "TCPRoute", "name": "any-port"}],
            "sources": list(sources),
        },
    }


def admitted(bodies: list[dict[str, Any]], server_pod: str = "server-1") -> tuple[str, ...] | None:
    """The identities the TrafficTarget admits on the server pod's port; None: no
    target governs the pod."""
    index = MeshIndex()
    for body in bodies:
        index.apply(parse_resource(body))
    config = build_proxy_config(index, ProxyIdentity(server_pod, NS, "server"))
    server = config.inbound[0]
    granted = [a for a in server.authorizations if a.kind is AuthorizationKind.TRAFFIC_TARGET]
    if not granted and server.default_policy.value != "deny":
        return None
    return tuple(identity for a in granted for identity in a.identities)


def identity(account: str) -> str:
    return f"{account}.{NS}.serviceaccount.identity.cluster.local"


PODS = [pod("server-1", "server", app="server"), pod("web-1", "web", app="web")]


def test_a_binding_by_labels_selects_the_destination_pods() -> None:
    bodies = [*PODS, TCP, binding("server", podLabelSelectors=[{"matchLabels": {"app": "server"}}])]
    bodies.append(target(bound("server"), {"kind": "ServiceAccount", "name": "web"}))
    assert admitted(bodies) == (identity("web"),)
    other = [*bodies, pod("server-2", "server", app="canary")]
    assert admitted(other, "server-2") is None  # not selected: the target does not govern it


def test_a_source_binding_admits_its_account_and_spiffe_ids_of_the_trust_domain() -> None:
    spiffe = [
        f"spiffe://cluster.local/ns/{NS}/sa/batch",
        f"cluster.local/ns/{NS}/sa/cron",
        "cluster.local/ns/elsewhere/sa/intruder",  # another namespace's: not this binding's
        "federated.example/ns/shop/sa/foreign",  # another trust domain: no workload here
    ]
    bodies = [*PODS, TCP, binding("clients", serviceAccount="web", spiffeIdentities=spiffe)]
    bodies.append(target({"kind": "ServiceAccount", "name": "server"}, bound("clients")))
    assert admitted(bodies) == (identity("batch"), identity("cron"), identity("web"))


def test_a_source_label_selector_admits_an_account_only_if_it_selects_all_its_pods() -> None:
    selector = binding("web", podLabelSelectors=[{"matchLabels": {"app": "web"}}])
    bodies = [*PODS, TCP, selector]
    bodies.append(target({"kind": "ServiceAccount", "name": "server"}, bound("web")))
    assert admitted(bodies) == (identity("web"),)
    # a pod running as `web` without the label would present the same identity
    assert admitted([*bodies, pod("web-debug", "web", app="debug")]) == ()


def test_a_missing_source_binding_admits_no_one() -> None:
    bodies = [*PODS, TCP, target({"kind": "ServiceAccount", "name": "server"}, bound("gone"))]
    assert admitted(bodies) == ()


@pytest.mark.parametrize(
    ("schemes", "reason"),
    [
        ({}, "name podLabelSelectors, spiffeIdentities or serviceAccount"),
        (
            {"serviceAccount": "web", "podLabelSelectors": [{"matchLabels": {"a": "b"}}]},
            "serviceAccount and podLabelSelectors exclude each other",
        ),
    ],
)
def test_a_binding_without_a_scheme_or_with_exclusive_ones_is_invalid(
    schemes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidResource, match=reason):
        parse_resource(binding("bad", **schemes))


def test_a_subject_of_a_binding_in_another_group_is_invalid() -> None:
    body = target({**bound("server"), "group": "example.com"}, bound("web"))
    with pytest.raises(InvalidResource, match=r"spec\.destination"):
        parse_resource(body)
