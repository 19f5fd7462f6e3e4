"""MeshIndex: storage, selectors, lookups, reference resolution and dependents."""

from __future__ import annotations

from typing import Any

import pytest

from weft_operator.index import (
    MeshIndex,
    dependents,
    lookups,
    missing_references,
    selector_matches,
)
from weft_resources import (
    Kind,
    LabelSelector,
    ObjectKey,
    Pod,
    Resource,
    Service,
    parse_resource,
)


def parsed(
    api_version: str, kind: str, name: str, namespace: str = "booksapp", **body: Any
) -> Resource:
    metadata = {"name": name, "namespace": namespace, **body.pop("metadata", {})}
    return parse_resource({"apiVersion": api_version, "kind": kind, "metadata": metadata, **body})


def service(name: str, namespace: str = "booksapp") -> Resource:
    return parsed(
        "v1", "Service", name, namespace, spec={"ports": [{"name": "http", "port": 7002}]}
    )


def pod(name: str, labels: dict[str, str]) -> Resource:
    return parsed("v1", "Pod", name, metadata={"labels": labels}, spec={"containers": []})


def split(*backends: str) -> Resource:
    return parsed(
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "books",
        spec={"service": "books", "backends": [{"service": b, "weight": 1} for b in backends]},
    )


def index_of(*resources: Resource) -> MeshIndex:
    index = MeshIndex()
    for resource in resources:
        index.apply(resource)
    return index


LABELS = {"app": "books", "version": "v2"}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({}, True),
        ({"matchLabels": {"app": "books"}}, True),
        ({"matchLabels": {"app": "books", "version": "v1"}}, False),
        (
            {"matchExpressions": [{"key": "version", "operator": "In", "values": ["v1", "v2"]}]},
            True,
        ),
        ({"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v2"]}]}, False),
        ({"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "track", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]}, True),
        (
            {
                "matchLabels": {"app": "books"},
                "matchExpressions": [{"key": "version", "operator": "DoesNotExist"}],
            },
            False,
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any], selected: bool) -> None:
    assert selector_matches(LabelSelector.model_validate(selector), LABELS) is selected


def test_apply_reports_changes_and_delete_returns_what_was_there() -> None:
    index = MeshIndex()
    books = service("books")
    assert index.apply(books)
    assert not index.apply(service("books"))
    assert index.contains(ObjectKey(Kind.SERVICE, "booksapp", "books"))
    assert index.delete(Kind.SERVICE, "booksapp", "books") == books
    assert index.delete(Kind.SERVICE, "booksapp", "books") is None
    assert not index.contains(ObjectKey(Kind.SERVICE, "booksapp", "books"))


def test_objects_are_listed_by_namespace_then_name() -> None:
    index = index_of(service("b", "z"), service("a", "z"), service("c", "a"))
    assert [(s.namespace, s.name) for s in index.objects(Service)] == [
        ("a", "c"),
        ("z", "a"),
        ("z", "b"),
    ]
    assert [s.name for s in index.objects(Service, "z")] == ["a", "b"]
    assert index.objects(Service, "nowhere") == []


def test_pods_selected_and_servers_selecting_a_pod() -> None:
    server = parsed(
        "policy.linkerd.io/v1beta3",
        "Server",
        "books-http",
        spec={"podSelector": {"matchLabels": {"app": "books"}}, "port": 7002},
    )
    v2 = pod("books-v2", LABELS)
    index = index_of(v2, pod("authors", {"app": "authors"}), server)
    selector = LabelSelector.model_validate({"matchLabels": {"app": "books"}})
    assert [p.name for p in lookups.pods_selected_by(index, "booksapp", selector)] == ["books-v2"]
    assert isinstance(v2, Pod)
    assert [s.name for s in lookups.servers_selecting(index, v2)] == ["books-http"]


def test_profiles_are_found_in_the_clients_namespace_first() -> None:
    def profile(namespace: str) -> Resource:
        return parsed(
            "linkerd.io/v1alpha2", "ServiceProfile", "books.booksapp.svc.cluster.local", namespace
        )

    index = index_of(profile("booksapp"), profile("frontend"))
    found = lookups.profile_for(index, "booksapp", "books", "frontend", "cluster.local")
    assert found is not None
    assert found.namespace == "frontend"
    found = lookups.profile_for(index, "booksapp", "books", "other", "cluster.local")
    assert found is not None
    assert found.namespace == "booksapp"
    assert lookups.profile_for(index, "booksapp", "books", "other", "example.org") is None


def test_traffic_targets_only_count_in_the_destinations_namespace() -> None:
    def target(namespace: str) -> Resource:
        return parsed(
            "access.smi-spec.io/v1alpha3",
            "TrafficTarget",
            "to-books",
            namespace,
            spec={
                "destination": {"kind": "ServiceAccount", "name": "books", "namespace": "booksapp"}
            },
        )

    index = index_of(target("booksapp"), target("elsewhere"))
    found = lookups.traffic_targets_for(index, "booksapp", "books", None, "cluster.local")
    assert [t.namespace for t in found] == ["booksapp"]


def missing(index: MeshIndex, resource: Resource) -> list[str]:
    return [str(reference) for reference in missing_references(index, resource)]


def test_a_split_reports_its_missing_services() -> None:
    the_split = split("books-v1", "books-v3")
    index = index_of(service("books"), service("books-v1"), the_split)
    assert missing(index, the_split) == ["Service booksapp/books-v3 (spec.backends[1].service)"]
    index.apply(service("books-v3"))
    assert missing(index, the_split) == []


def test_dependents_are_the_objects_waiting_for_a_key() -> None:
    the_split = split("books-v1", "books-v3")
    index = index_of(the_split)
    books_v3 = ObjectKey(Kind.SERVICE, "booksapp", "books-v3")
    assert dependents(index, books_v3) == [the_split.key]
    index.apply(split("books-v1"))  # the new version no longer names books-v3
    assert dependents(index, books_v3) == []
    index.delete(Kind.TRAFFIC_SPLIT, "booksapp", "books")
    assert dependents(index, ObjectKey(Kind.SERVICE, "booksapp", "books-v1")) == []


def test_a_traffic_target_reports_missing_groups_and_match_names() -> None:
    target = parsed(
        "access.smi-spec.io/v1alpha3",
        "TrafficTarget",
        "to-books",
        spec={
            "destination": {"kind": "ServiceAccount", "name": "books"},
            "sources": [{"kind": "ServiceAccount", "name": "webapp"}],
            "rules": [
                {"kind": "HTTPRouteGroup", "name": "books-api", "matches": ["list", "metrics"]},
                {"kind": "TCPRoute", "name": "books-tcp"},
            ],
        },
    )
    group = parsed(
        "specs.smi-spec.io/v1alpha4",
        "HTTPRouteGroup",
        "books-api",
        spec={"matches": [{"name": "list"}]},
    )
    accounts = [parsed("v1", "ServiceAccount", name) for name in ("books", "webapp")]
    index = index_of(target, group, *accounts)
    assert missing(index, target) == [
        "match 'metrics' of HTTPRouteGroup booksapp/books-api (spec.rules[0].matches)",
        "TCPRoute booksapp/books-tcp (spec.rules[1])",
    ]
    assert dependents(index, group.key) == [target.key]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            parsed(
                "policy.linkerd.io/v1beta1",
                "ServerAuthorization",
                "books-clients",
                spec={"server": {"name": "books-http"}, "client": {"unauthenticated": True}},
            ),
            ["Server booksapp/books-http (spec.server.name)"],
        ),
        (
            parsed(
                "policy.linkerd.io/v1alpha1",
                "AuthorizationPolicy",
                "books-policy",
                spec={
                    "targetRef": {
                        "group": "policy.linkerd.io",
                        "kind": "HTTPRoute",
                        "name": "read",
                    },
                    "requiredAuthenticationRefs": [
                        {"kind": "MeshTLSAuthentication", "name": "clients"},
                        {"kind": "NetworkAuthentication", "name": "pods", "namespace": "infra"},
                    ],
                },
            ),
            [
                "HTTPRoute booksapp/read (spec.targetRef)",
                "MeshTLSAuthentication booksapp/clients (spec.requiredAuthenticationRefs[0])",
                "NetworkAuthentication infra/pods (spec.requiredAuthenticationRefs[1])",
            ],
        ),
        (
            parsed(
                "policy.linkerd.io/v1alpha1",
                "MeshTLSAuthentication",
                "clients",
                spec={
                    "identityRefs": [
                        {"kind": "ServiceAccount", "name": "webapp"},
                        {"kind": "Namespace", "name": "frontend"},
                    ]
                },
            ),
            [
                "ServiceAccount booksapp/webapp (spec.identityRefs[0])",
                "Namespace frontend (spec.identityRefs[1])",
            ],
        ),
        (
            parsed(
                "linkerd.io/v1alpha2",
                "ServiceProfile",
                "books.booksapp.svc.cluster.local",
                "frontend",
            ),
            ["Service booksapp/books (metadata.name)"],
        ),
        (
            parsed(
                "policy.linkerd.io/v1beta3",
                "HTTPRoute",
                "books-timeouts",
                spec={
                    "parentRefs": [
                        {"kind": "Service", "group": "core", "name": "books"},
                        {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "edge"},
                    ]
                },
            ),
            ["Service booksapp/books (spec.parentRefs[0])"],
        ),
    ],
    ids=["server-authorization", "authorization-policy", "mesh-tls", "profile", "http-route"],
)
def test_missing_references_name_the_object_and_the_field(
    resource: Resource, expected: list[str]
) -> None:
    assert missing(index_of(resource), resource) == expected
