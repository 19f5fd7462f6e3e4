"""Properties of the catalog beyond the golden cases: purity, order, edge cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weft_api.config import DefaultPolicy, ProxyIdentity, ServerKind
from weft_operator.catalog import MeshSettings, build_outbound_service, build_proxy_config
from weft_operator.index import MeshIndex
from weft_resources import Kind, parse_resource

GOLDEN = Path(__file__).parent / "golden"
BOOKS = ProxyIdentity(pod="books-7f6d5c4b3-z9wx1", namespace="booksapp", service_account="books")


def manifests(case: str) -> list[dict[str, Any]]:
    return [body for body in yaml.safe_load_all((GOLDEN / case / "input.yaml").read_text()) if body]


def index_of(bodies: list[dict[str, Any]]) -> MeshIndex:
    index = MeshIndex()
    for body in bodies:
        index.apply(parse_resource(body))
    return index


def identity_of(case: str) -> ProxyIdentity:
    proxy = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())["proxy"]
    return ProxyIdentity(proxy["pod"], proxy["namespace"], proxy["serviceAccount"])


@pytest.mark.parametrize("case", sorted(path.name for path in GOLDEN.iterdir() if path.is_dir()))
def test_the_order_objects_arrive_in_does_not_matter(case: str) -> None:
    bodies, identity = manifests(case), identity_of(case)
    forwards = build_proxy_config(index_of(bodies), identity)
    assert build_proxy_config(index_of(bodies[::-1]), identity) == forwards


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(manifests("authorizationpolicy")))
def test_any_arrival_order_gives_the_same_policy(bodies: list[dict[str, Any]]) -> None:
    expected = build_proxy_config(index_of(manifests("authorizationpolicy")), BOOKS)
    assert build_proxy_config(index_of(bodies), BOOKS) == expected


def test_deleting_an_object_undoes_it() -> None:
    bodies = manifests("split-v1alpha2")
    identity = identity_of("split-v1alpha2")
    without_split = [body for body in bodies if body["kind"] != "TrafficSplit"]
    index = index_of(bodies)
    index.delete(Kind.TRAFFIC_SPLIT, "booksapp", "books-rollout")
    assert build_proxy_config(index, identity) == build_proxy_config(
        index_of(without_split), identity
    )


def test_a_split_without_usable_backends_leaves_the_service_alone() -> None:
    bodies = [body for body in manifests("split-v1alpha2") if body["kind"] != "TrafficSplit"]
    broken = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "books", "namespace": "booksapp"},
        "spec": {
            "service": "books",
            "backends": [{"service": "books-v9", "weight": 100}],
        },
    }
    parent = build_outbound_service(index_of([*bodies, broken]), "booksapp", "books")
    assert parent is not None
    assert [(backend.name, backend.weight) for backend in parent.backends] == [("books", 1)]


def test_a_split_whose_route_groups_are_missing_is_ignored() -> None:
    bodies = [b for b in manifests("split-v1alpha3-matches") if b["kind"] != "HTTPRouteGroup"]
    parent = build_outbound_service(index_of(bodies), "booksapp", "books")
    assert parent is not None
    assert [backend.name for backend in parent.backends] == ["books"]
    assert parent.split_matches == ()
    assert parent.unmatched_backend is None


def test_no_outbound_entry_for_missing_or_external_name_services() -> None:
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments", "namespace": "booksapp"},
        "spec": {"type": "ExternalName", "externalName": "pay.example.com"},
    }
    index = index_of([external])
    assert build_outbound_service(index, "booksapp", "payments") is None
    assert build_outbound_service(index, "booksapp", "nothing") is None


def test_a_proxy_whose_pod_is_not_indexed_yet_gets_the_namespace_default() -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "booksapp",
            "annotations": {"config.weft.dev/default-inbound-policy": "all-authenticated"},
        },
    }
    config = build_proxy_config(index_of([namespace]), BOOKS)
    assert config.inbound == ()
    assert config.inbound_default.kind is ServerKind.DEFAULT
    assert config.inbound_default.default_policy is DefaultPolicy.ALL_AUTHENTICATED


@pytest.mark.parametrize(
    ("annotations", "cluster_model", "expected"),
    [
        ({}, "linkerd", DefaultPolicy.ALL_UNAUTHENTICATED),
        ({}, "smi", DefaultPolicy.DENY),
        ({"config.weft.dev/access-model": "smi"}, "linkerd", DefaultPolicy.DENY),
        ({"config.weft.dev/access-model": "linkerd"}, "smi", DefaultPolicy.ALL_UNAUTHENTICATED),
        ({"config.weft.dev/access-model": "open"}, "smi", DefaultPolicy.DENY),  # not a model
        (
            {
                "config.weft.dev/access-model": "smi",
                "config.weft.dev/default-inbound-policy": "all-authenticated",
            },
            "linkerd",
            DefaultPolicy.ALL_AUTHENTICATED,
        ),
    ],
)
def test_the_access_model_decides_the_default_without_a_traffic_target(
    annotations: dict[str, str], cluster_model: str, expected: DefaultPolicy
) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "booksapp", "annotations": annotations},
    }
    settings = MeshSettings(access_model=cluster_model)
    config = build_proxy_config(index_of([namespace]), BOOKS, settings)
    assert config.inbound_default.default_policy is expected


def test_settings_change_names_and_cluster_networks() -> None:
    bodies = manifests("server-v1beta2")
    custom = MeshSettings(
        trust_domain="example.org",
        cluster_domain="corp.internal",
        cluster_networks=("10.8.0.0/16",),
    )
    config = build_proxy_config(index_of(bodies), BOOKS, custom)
    books = config.outbound[0]
    assert books.authority == "books.booksapp.svc.corp.internal"
    endpoint = books.backends[0].ports[0].endpoints[0]
    assert endpoint.identity == "books.booksapp.serviceaccount.identity.example.org"
    networks = config.inbound_default.authorizations[0].networks
    assert [network.cidr for network in networks] == ["10.8.0.0/16"]


def _split_of(service: str, *backends: tuple[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "books-rollout", "namespace": "booksapp"},
        "spec": {
            "service": service,
            "backends": [{"service": name, "weight": weight} for name, weight in backends],
        },
    }


def test_a_backend_that_is_the_root_gets_the_roots_own_endpoints() -> None:
    """Linkerd's booksapp, Argo Rollouts' stable Service: the root's share goes to the
    root Service's EndpointSlices, as linkerd-smi does, not to the split again."""
    bodies = [body for body in manifests("split-v1alpha2") if body["kind"] != "TrafficSplit"]
    split = _split_of("books", ("books", 900), ("books-v2", 100))
    index = index_of([*bodies, split])
    parent = build_outbound_service(index, "booksapp", "books")
    unsplit = build_outbound_service(index_of(bodies), "booksapp", "books")
    assert parent is not None
    assert unsplit is not None
    (root_alone,) = unsplit.backends
    assert [(backend.name, backend.weight) for backend in parent.backends] == [
        ("books", 900),
        ("books-v2", 100),
    ]
    assert parent.backends[0].ports == root_alone.ports
    assert {e.address for port in parent.backends[0].ports for e in port.endpoints} == {
        "10.42.0.31",
        "10.42.0.32",
    }


@pytest.mark.parametrize(
    "written", ["books-v2.booksapp", "books-v2.booksapp.svc", "books-v2.booksapp.svc.cluster.local"]
)
def test_services_written_as_dns_names_resolve_as_plain_names(written: str) -> None:
    bodies = [body for body in manifests("split-v1alpha2") if body["kind"] != "TrafficSplit"]
    plain = build_outbound_service(
        index_of([*bodies, _split_of("books", ("books-v1", 1), ("books-v2", 1))]),
        "booksapp",
        "books",
    )
    root = written.replace("books-v2", "books")
    dotted = build_outbound_service(
        index_of([*bodies, _split_of(root, ("books-v1", 1), (written, 1))]), "booksapp", "books"
    )
    assert dotted == plain
    assert plain is not None
    assert [backend.name for backend in plain.backends] == ["books-v1", "books-v2"]
