"""Every served version of a kind parses into the same internal form."""

from __future__ import annotations

from typing import Any

import pytest

from weft_resources import (
    HTTPRouteGroup,
    InvalidResource,
    Kind,
    ServiceProfile,
    TCPRoute,
    TrafficSplit,
    TrafficTarget,
    kind_of,
    parse_resource,
)
from weft_resources.httproute import HTTPRoute
from weft_resources.policy import ProxyProtocol, Server
from weft_resources.serviceprofile import RequestCondition


def manifest(api_version: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "books", "namespace": "booksapp"},
        **body,
    }


def split(version: str, weights: tuple[Any, Any]) -> TrafficSplit:
    backends = [
        {"service": "books-v1", "weight": weights[0]},
        {"service": "books-v2", "weight": weights[1]},
    ]
    body = {"spec": {"service": "books", "backends": backends}}
    parsed = parse_resource(manifest(f"split.smi-spec.io/{version}", "TrafficSplit", body))
    assert isinstance(parsed, TrafficSplit)
    return parsed


def test_v1alpha1_quantities_equal_later_integers() -> None:
    quantities = split("v1alpha1", ("1", "500m"))
    assert quantities == split("v1alpha1", (1, "0.5"))
    for version in ("v1alpha2", "v1alpha3", "v1alpha4"):
        assert split(version, (1000, 500)) == quantities


@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha3", "v1alpha4"])
def test_strings_read_back_at_later_versions_are_quantities(version: str) -> None:
    # Written at v1alpha1, served unconverted at a later apiVersion.
    assert split(version, ("1", "500m")) == split("v1alpha1", ("1", "500m"))


def test_split_matches_name_route_groups() -> None:
    body = {
        "spec": {
            "service": "books",
            "backends": [{"service": "books-v2", "weight": 100}],
            "matches": [{"kind": "HTTPRouteGroup", "name": "testers"}],
        }
    }
    parsed = parse_resource(manifest("split.smi-spec.io/v1alpha4", "TrafficSplit", body))
    assert isinstance(parsed, TrafficSplit)
    assert [match.name for match in parsed.spec.matches] == ["testers"]


def named_split(service: str, *backends: str) -> dict[str, Any]:
    body = {
        "spec": {
            "service": service,
            "backends": [{"service": backend, "weight": 1} for backend in backends],
        }
    }
    return manifest("split.smi-spec.io/v1alpha4", "TrafficSplit", body)


@pytest.mark.parametrize(
    ("written", "domain"),
    [
        ("bookstore", None),
        ("bookstore.booksapp", None),
        ("bookstore.booksapp.svc", None),
        ("bookstore.booksapp.svc.cluster.local", "cluster.local"),
        ("bookstore.booksapp.svc.corp.example", "corp.example"),
    ],
)
def test_split_services_may_be_written_as_dns_names(written: str, domain: str | None) -> None:
    """OSM's examples write `bookstore.bookstore`; SMI calls spec.service "the FQDN
    that applications will use"."""
    parsed = parse_resource(named_split(written, written, "books-v2"))
    assert isinstance(parsed, TrafficSplit)
    assert parsed.spec.service == "bookstore"
    assert [backend.service for backend in parsed.spec.backends] == ["bookstore", "books-v2"]
    expected = (
        () if domain is None else (("spec.service", domain), ("spec.backends[0].service", domain))
    )
    assert parsed.written_domains == expected


def test_a_split_service_of_another_namespace_is_invalid() -> None:
    with pytest.raises(InvalidResource) as invalid:
        parse_resource(named_split("books", "books-v2.shop.svc.cluster.local"))
    assert str(invalid.value) == (
        "TrafficSplit booksapp/books: spec.backends[0].service: 'books-v2.shop.svc.cluster.local' "
        "names a Service in namespace 'shop', but a TrafficSplit splits between Services of "
        "its own namespace ('booksapp'); create the split in 'shop'"
    )


@pytest.mark.parametrize("written", ["books.booksapp.cluster.local", "Books.booksapp", "books."])
def test_a_dotted_split_service_of_no_known_shape_is_invalid(written: str) -> None:
    with pytest.raises(InvalidResource) as invalid:
        parse_resource(named_split(written, "books-v2"))
    assert f"spec.service: {written!r} is not a Service name" in str(invalid.value)


MATCHES = [{"name": "android", "methods": ["GET"], "headers": {"User-Agent": ".*Android.*"}}]


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"])
@pytest.mark.parametrize("at_top_level", [True, False])
def test_route_groups_read_matches_wherever_the_shape_puts_them(
    version: str, at_top_level: bool
) -> None:
    body = {"matches": MATCHES} if at_top_level else {"spec": {"matches": MATCHES}}
    parsed = parse_resource(manifest(f"specs.smi-spec.io/{version}", "HTTPRouteGroup", body))
    assert isinstance(parsed, HTTPRouteGroup)
    assert parsed.spec.matches[0].headers[0].name == "user-agent"


def test_headers_as_a_map_or_a_list_of_one_header_maps_are_the_same() -> None:
    def group(headers: Any) -> HTTPRouteGroup:
        body = {"spec": {"matches": [{"name": "m", "headers": headers}]}}
        parsed = parse_resource(manifest("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup", body))
        assert isinstance(parsed, HTTPRouteGroup)
        return parsed

    as_map = group({"X-Debug": "1", "User-Agent": ".*curl.*"})
    as_list = group([{"X-Debug": "1"}, {"User-Agent": ".*curl.*"}])
    assert as_map == as_list


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"])
def test_tcp_routes_without_matches_admit_every_port(version: str) -> None:
    parsed = parse_resource(manifest(f"specs.smi-spec.io/{version}", "TCPRoute", {"spec": {}}))
    assert isinstance(parsed, TCPRoute)
    assert parsed.spec.matches.admits(7002)


TARGET_PARTS = {
    "destination": {"kind": "ServiceAccount", "name": "books", "namespace": "booksapp"},
    "sources": [{"kind": "ServiceAccount", "name": "webapp", "namespace": "booksapp"}],
}
RULES = [{"kind": "HTTPRouteGroup", "name": "books-api", "matches": ["list"]}]


@pytest.mark.parametrize("api_version", ["v1alpha1", "v1alpha2", "v1alpha3"])
def test_traffic_targets_of_every_shape_agree(api_version: str) -> None:
    old_shape = manifest(
        f"access.smi-spec.io/{api_version}", "TrafficTarget", {**TARGET_PARTS, "specs": RULES}
    )
    new_shape = manifest(
        f"access.smi-spec.io/{api_version}",
        "TrafficTarget",
        {"spec": {**TARGET_PARTS, "rules": RULES}},
    )
    old, new = parse_resource(old_shape), parse_resource(new_shape)
    assert isinstance(old, TrafficTarget)
    assert old == new
    assert old.spec.rules[0].matches == ("list",)


def profile(version: str, condition: dict[str, Any]) -> ServiceProfile:
    body = {
        "metadata": {"name": "books.booksapp.svc.cluster.local", "namespace": "booksapp"},
        "spec": {"routes": [{"name": "r", "condition": condition, "timeout": "1m30s"}]},
    }
    parsed = parse_resource({**manifest(f"linkerd.io/{version}", "ServiceProfile", {}), **body})
    assert isinstance(parsed, ServiceProfile)
    return parsed


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_not_as_an_object_or_a_one_item_list_is_the_same(version: str) -> None:
    as_object = profile(version, {"not": {"method": "GET"}})
    as_list = profile(version, {"not": [{"method": "GET"}]})
    assert as_object == as_list
    assert as_object.spec.routes[0].condition == RequestCondition(
        not_=RequestCondition(method="GET")
    )
    assert as_object.spec.routes[0].timeout_ms == 90_000
    assert as_object.service.name == "books"
    assert as_object.service.cluster_domain == "cluster.local"


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2", "v1beta3"])
@pytest.mark.parametrize("port", [7002, "http"])
def test_servers_of_every_version(version: str, port: int | str) -> None:
    body = {"spec": {"podSelector": {"matchLabels": {"app": "books"}}, "port": port}}
    parsed = parse_resource(manifest(f"policy.linkerd.io/{version}", "Server", body))
    assert isinstance(parsed, Server)
    assert parsed.spec.port == port
    assert parsed.spec.proxy_protocol is ProxyProtocol.UNKNOWN
    assert parsed.spec.access_policy == "deny"


def test_unknown_fields_and_nulls_are_tolerated() -> None:
    body = {
        "spec": {
            "podSelector": {"matchLabels": None, "matchExpressions": None},
            "port": 7002,
            "proxyProtocol": None,
            "futureField": {"anything": [1, 2]},
        },
        "status": {"conditions": []},
    }
    parsed = parse_resource(manifest("policy.linkerd.io/v1beta3", "Server", body))
    assert isinstance(parsed, Server)
    assert parsed.spec.pod_selector.match_labels == {}


def test_http_routes_default_like_the_gateway_api() -> None:
    body = {
        "spec": {
            "parentRefs": [{"name": "books", "kind": "Service", "group": "core", "port": 7002}],
            "rules": [{"matches": [{"path": {}}], "timeouts": {"request": "10s"}}],
        }
    }
    parsed = parse_resource(manifest("policy.linkerd.io/v1beta3", "HTTPRoute", body))
    assert isinstance(parsed, HTTPRoute)
    path = parsed.spec.rules[0].matches[0].path
    assert path is not None
    assert (path.type, path.value) == ("PathPrefix", "/")
    assert parsed.spec.parent_refs[0].is_service
    timeouts = parsed.spec.rules[0].timeouts
    assert timeouts is not None
    assert timeouts.request_ms == 10_000


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("v1", "Pod", Kind.POD),
        ("discovery.k8s.io/v1", "EndpointSlice", Kind.ENDPOINT_SLICE),
        ("split.smi-spec.io/v1alpha1", "TrafficSplit", Kind.TRAFFIC_SPLIT),
        ("policy.linkerd.io/v1beta3", "HTTPRoute", Kind.HTTP_ROUTE),
    ],
)
def test_kind_of_reads_group_and_kind(api_version: str, kind: str, expected: Kind) -> None:
    assert kind_of({"apiVersion": api_version, "kind": kind}) is expected


def test_not_as_a_list_of_several_means_none_of_them() -> None:
    parsed = profile("v1alpha2", {"not": [{"method": "GET"}, {"pathRegex": "/admin/.*"}]})
    assert parsed.spec.routes[0].condition == RequestCondition(
        not_=RequestCondition(
            any=(RequestCondition(method="GET"), RequestCondition(path_regex="/admin/.*"))
        )
    )


def test_traffic_targets_are_read_at_v1alpha4_with_identity_binding_subjects() -> None:
    spec = {
        "destination": {"kind": "ServiceAccount", "name": "books", "group": ""},
        "rules": [{"kind": "TCPRoute", "name": "books-port"}],
        "sources": [{"kind": "ServiceAccount", "name": "webapp"}],
    }
    v4 = parse_resource(manifest("access.smi-spec.io/v1alpha4", "TrafficTarget", {"spec": spec}))
    v3 = parse_resource(manifest("access.smi-spec.io/v1alpha3", "TrafficTarget", {"spec": spec}))
    assert isinstance(v4, TrafficTarget)
    assert isinstance(v3, TrafficTarget)
    assert v4.spec == v3.spec
    bound = {**spec, "sources": [{"kind": "IdentityBinding", "name": "webapp"}]}
    parsed = parse_resource(
        manifest("access.smi-spec.io/v1alpha4", "TrafficTarget", {"spec": bound})
    )
    assert isinstance(parsed, TrafficTarget)
    assert parsed.spec.sources[0].kind == "IdentityBinding"
    unknown = {**spec, "sources": [{"kind": "Group", "name": "webapp"}]}
    with pytest.raises(InvalidResource) as invalid:
        parse_resource(manifest("access.smi-spec.io/v1alpha4", "TrafficTarget", {"spec": unknown}))
    assert "spec.sources[0].kind" in str(invalid.value)
