"""The proxy's config model: plain, immutable, rendered deterministically."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from weft_api import identity
from weft_api.config import (
    Authentication,
    Authorization,
    AuthorizationKind,
    Endpoint,
    Network,
    ProtocolHint,
    RequestMatch,
    ResponseMatch,
    RetryBudget,
    StatusRange,
    ValueMatch,
    to_dict,
)


def test_identity_names_follow_linkerd() -> None:
    assert identity.identity_name("web", "shop") == "web.shop.serviceaccount.identity.cluster.local"
    assert identity.identity_name("web", "shop", "example.org") == (
        "web.shop.serviceaccount.identity.example.org"
    )
    assert identity.spiffe_id("web", "shop") == "spiffe://cluster.local/ns/shop/sa/web"
    assert identity.namespace_identities("shop") == "*.shop.serviceaccount.identity.cluster.local"


def test_to_dict_drops_none_and_trailing_underscores_and_renders_enums() -> None:
    authorization = Authorization(
        kind=AuthorizationKind.TRAFFIC_TARGET,
        name="web-to-api",
        networks=(Network("10.0.0.0/8", except_=("10.1.0.0/16",)),),
        authentication=Authentication.TLS_AUTHENTICATED,
        identities=("web.shop.serviceaccount.identity.cluster.local",),
        routes=(RequestMatch(not_=RequestMatch(method="DELETE")),),
    )
    assert authorization.to_dict() == {
        "kind": "traffictarget",
        "name": "web-to-api",
        "networks": [{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}],
        "authentication": "tls_authenticated",
        "identities": ["web.shop.serviceaccount.identity.cluster.local"],
        "routes": [{"not": {"method": "DELETE"}}],
    }


def test_labels_render_as_a_mapping() -> None:
    endpoint = Endpoint(
        "10.42.0.7",
        8080,
        identity="api.shop.serviceaccount.identity.cluster.local",
        protocol_hint=ProtocolHint.H2,
        labels=(("dst_namespace", "shop"), ("dst_service", "api")),
    )
    assert to_dict(endpoint)["labels"] == {"dst_namespace": "shop", "dst_service": "api"}
    assert Endpoint("10.42.0.8", 8080).to_dict() == {
        "address": "10.42.0.8",
        "port": 8080,
        "labels": {},
    }


def test_retry_budget_defaults_are_linkerds() -> None:
    assert RetryBudget() == RetryBudget(retry_ratio=0.2, min_retries_per_second=10, ttl_ms=10_000)


def test_config_values_are_frozen_and_hashable() -> None:
    match = RequestMatch(header=ValueMatch("x-canary", "^(?:true)$"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.method = "GET"  # type: ignore[misc]
    assert hash(match) == hash(RequestMatch(header=ValueMatch("x-canary", "^(?:true)$")))


@pytest.mark.parametrize(
    "build",
    [
        lambda: RequestMatch(),
        lambda: RequestMatch(method="GET", path_regex="^/$"),
        lambda: ResponseMatch(),
        lambda: ResponseMatch(status=StatusRange(500, 599), not_=ResponseMatch(all=())),
    ],
)
def test_a_match_tree_node_holds_exactly_one_condition(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="exactly one field"):
        build()
