"""Container environments as the kubelet builds them: envFrom then env, $(VAR),
ConfigMaps and Secrets (optional or not), and the downward API."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from weft_localcluster.nodeagent.downward import PodFields, quantity
from weft_localcluster.nodeagent.env import ConfigError, container_env, expand

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "shop",
        "uid": "1234",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {
        "nodeName": "weft-local",
        "serviceAccountName": "web",
        "containers": [{"name": "app", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}],
    },
}
FIELDS = PodFields(POD, pod_ip="10.244.0.7", host_ip="10.244.0.1")
OBJECTS: dict[tuple[str, str], Mapping[str, Any]] = {
    ("ConfigMap", "settings"): {"data": {"COLOR": "blue", "SIZE": "L"}},
    ("Secret", "creds"): {"data": {"password": base64.b64encode(b"s3cret").decode()}},
}
ALLOCATABLE = {"cpu": "2", "memory": "4Gi"}


def lookup(kind: str, name: str) -> Mapping[str, Any] | None:
    return OBJECTS.get((kind, name))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return container_env({"name": "app", **container}, FIELDS, lookup, ALLOCATABLE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("cost: $5", "cost: $5"),
        ("end$", "end$"),
    ],
)
def test_expansion_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_env_from_then_env_with_references_to_earlier_variables() -> None:
    env = env_of(
        {
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "UI_"}],
            "env": [
                {"name": "UI_SIZE", "value": "XL"},
                {"name": "LABEL", "value": "$(UI_COLOR)/$(UI_SIZE)/$(LATER)"},
                {"name": "LATER", "value": "x"},
            ],
        }
    )
    assert env == {"UI_COLOR": "blue", "UI_SIZE": "XL", "LABEL": "blue/XL/$(LATER)", "LATER": "x"}


def test_key_references_and_optional_ones() -> None:
    env = env_of(
        {
            "env": [
                {
                    "name": "C",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "COLOR"}},
                },
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {
                    "name": "GONE",
                    "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
                },
            ]
        }
    )
    assert env == {"C": "blue", "P": "s3cret"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        ({"configMapKeyRef": {"name": "settings", "key": "k"}}, "couldn't find key k"),
        ({"fieldRef": {"fieldPath": "spec.unknown"}}, "not supported"),
    ],
)
def test_what_cannot_be_resolved_is_a_config_error(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        env_of({"env": [{"name": "X", "valueFrom": source}]})


def test_the_downward_api() -> None:
    def field(path: str) -> str:
        return env_of({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": path}}}]})["X"]

    assert field("metadata.name") == "web-1"
    assert field("metadata.namespace") == "shop"
    assert field("metadata.uid") == "1234"
    assert field("metadata.labels['tier']") == "front"
    assert field("spec.serviceAccountName") == "web"
    assert field("spec.nodeName") == "weft-local"
    assert field("status.podIP") == "10.244.0.7"
    assert field("status.hostIP") == "10.244.0.1"
    assert FIELDS.field("metadata.annotations") == 'note="say \\"hi\\""\n'

    def resource(name: str, divisor: str | None = None) -> str:
        ref = {"resource": name, **({"divisor": divisor} if divisor else {})}
        return env_of({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": ref}}]})["X"]

    assert resource("limits.cpu") == "1"  # 500m rounded up
    assert resource("limits.cpu", "1m") == "500"
    assert resource("limits.memory", "1Mi") == "64"
    assert resource("requests.memory") == str(4 * 2**30)  # unset: the node's allocatable


def test_quantities() -> None:
    assert quantity("250m") * 4 == 1
    assert quantity("1Gi") == 2**30
    assert quantity("1e3") == 1000
