"""Splits of a parent that come from a ServiceProfile's dstOverrides or an HTTPRoute's
backendRefs, and protocols a Service port declares."""

from __future__ import annotations

from typing import Any

import pytest

from weft_api.config import Protocol
from weft_operator.catalog import build_outbound_service
from weft_operator.index import MeshIndex
from weft_resources import InvalidResource, parse_resource

NS = "shop"


def service(name: str, *ports: int, app_protocol: str | None = None) -> dict[str, Any]:
    declared = {"appProtocol": app_protocol} if app_protocol else {}
    specs = [{"port": port, **declared} for port in ports]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"clusterIP": "10.96.0.10", "ports": specs},
    }


def profile(*overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": f"books.{NS}.svc.cluster.local", "namespace": NS},
        "spec": {"dstOverrides": list(overrides)},
    }


def route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "HTTPRoute",
        "metadata": {"name": "books", "namespace": NS},
        "spec": {
            "parentRefs": [{"kind": "Service", "group": "core", "name": "books", "port": 80}],
            "rules": list(rules),
        },
    }


def index_of(*bodies: dict[str, Any]) -> MeshIndex:
    index = MeshIndex()
    for body in bodies:
        index.apply(parse_resource(body))
    return index


SERVICES = (service("books", 80), service("books-v2", 80), service("books-v3", 8080))


def test_dst_overrides_split_the_parent_by_weight_and_port() -> None:
    overrides = (
        {"authority": f"books.{NS}.svc.cluster.local:80", "weight": "900m"},
        {"authority": f"books-v2.{NS}.svc.cluster.local", "weight": "100m"},
        {"authority": f"books-v3.{NS}:8080", "weight": 1},  # every port sent to 8080
        {"authority": "gone.shop.svc.cluster.local", "weight": 1},  # missing: skipped
    )
    found = build_outbound_service(index_of(*SERVICES, profile(*overrides)), NS, "books")
    assert found is not None
    assert [(b.name, b.weight, [p.port for p in b.ports]) for b in found.backends] == [
        ("books", 900, [80]),
        ("books-v2", 100, [80]),
        ("books-v3", 1000, [80]),
    ]


def test_a_dst_override_outside_the_cluster_is_refused() -> None:
    with pytest.raises(InvalidResource, match="is not a Service of the cluster"):
        parse_resource(profile({"authority": "api.example.com:443", "weight": 1}))


def test_a_route_rule_with_matches_splits_what_it_matches_and_the_rest_goes_to_the_parent() -> None:
    canary = {
        "matches": [{"headers": [{"name": "x-canary", "value": "1"}]}],
        "backendRefs": [{"name": "books-v2", "port": 80}],
    }
    found = build_outbound_service(index_of(*SERVICES, route(canary)), NS, "books")
    assert found is not None
    assert [b.name for b in found.backends] == ["books-v2"]
    assert found.split_matches
    assert found.unmatched_backend is not None
    assert found.unmatched_backend.name == "books"


def test_a_route_rule_without_matches_splits_everything() -> None:
    weighted = {
        "backendRefs": [
            {"name": "books", "port": 80, "weight": 9},
            {"name": "books-v2", "weight": 1},
        ]
    }
    found = build_outbound_service(index_of(*SERVICES, route(weighted)), NS, "books")
    assert found is not None
    assert [(b.name, b.weight) for b in found.backends] == [("books", 9), ("books-v2", 1)]
    assert found.split_matches == ()
    assert found.unmatched_backend is None


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"hostnames": ["books.example.com"]}, "spec.hostnames: Weft does not match"),
        ({"rules": [{"filters": [{"type": "RequestRedirect"}]}]}, "apply no filters"),
        (
            {"rules": [{"backendRefs": [{"name": "books-v2"}]}] * 2},
            "in one rule only",
        ),
    ],
)
def test_route_fields_weft_cannot_take_are_refused(spec: dict[str, Any], reason: str) -> None:
    body = route()
    body["spec"] = {**body["spec"], **spec}
    with pytest.raises(InvalidResource, match=reason):
        parse_resource(body)


@pytest.mark.parametrize(
    ("app_protocol", "protocol"),
    [
        ("linkerd.io/opaque", Protocol.OPAQUE),
        ("kubernetes.io/h2c", Protocol.HTTP2),
        ("http", Protocol.HTTP1),
        ("example.com/other", Protocol.UNKNOWN),
    ],
)
def test_app_protocol_declares_the_ports_protocol(app_protocol: str, protocol: Protocol) -> None:
    found = build_outbound_service(
        index_of(service("books", 80, app_protocol=app_protocol)), NS, "books"
    )
    assert found is not None
    assert found.ports[0].protocol is protocol
