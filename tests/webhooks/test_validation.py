"""Validation: what admission refuses beyond the schemas, with messages a person acts on."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from weft_operator.index.selectors import selector_matches
from weft_resources import LabelSelector, Server, parse_resource
from weft_webhooks.validation import ValidationContext, needs_servers, problems, warnings
from weft_webhooks.validation.checks import MAX_SPLIT_BACKENDS
from weft_webhooks.validation.selectors import can_overlap

EXAMPLES = Path(__file__).parents[2] / "crds" / "examples"
CONTEXT = ValidationContext()


def split(*weights: Any, version: str = "v1alpha4", root: str = "books") -> dict[str, Any]:
    backends = [{"service": f"books-{i}", "weight": w} for i, w in enumerate(weights)]
    return {
        "apiVersion": f"split.smi-spec.io/{version}",
        "kind": "TrafficSplit",
        "metadata": {"name": "books", "namespace": "shop"},
        "spec": {"service": root, "backends": backends},
    }


def server(name: str, port: int | str, selector: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "Server",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"podSelector": selector, "port": port},
    }


def parsed_server(name: str, port: int | str, selector: dict[str, Any]) -> Server:
    resource = parse_resource(server(name, port, selector))
    assert isinstance(resource, Server)
    return resource


def test_every_example_users_write_is_admitted() -> None:
    bodies = [
        body
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for body in yaml.safe_load_all(path.read_text())
        if body
    ]
    for body in bodies:
        body["metadata"]["namespace"] = "demo"
    servers = [parse_resource(body) for body in bodies if body["kind"] == "Server"]
    context = ValidationContext(servers=servers)  # type: ignore[arg-type]
    refused = {body["metadata"]["name"]: problems(body, context) for body in bodies}
    assert {name: found for name, found in refused.items() if found} == {}


@pytest.mark.parametrize(
    ("weights", "version"), [((0, 0), "v1alpha4"), (("0", "0m"), "v1alpha1"), ((0,), "v1alpha2")]
)
def test_a_split_whose_weights_add_up_to_zero_is_refused(
    weights: tuple[Any, ...], version: str
) -> None:
    (message,) = problems(split(*weights, version=version), CONTEXT)
    assert message.startswith("TrafficSplit shop/books: spec.backends: every weight is 0")


def test_a_split_may_give_one_backend_no_traffic() -> None:
    assert problems(split("1", "0", version="v1alpha1"), CONTEXT) == []


def test_a_backend_that_is_its_own_root_service_is_admitted() -> None:
    """Linkerd's booksapp and Argo Rollouts' stable Service do it (as linkerd-smi allows)."""
    assert problems(split(90, 10, root="books-1"), CONTEXT) == []


def test_split_services_written_for_this_cluster_domain_are_admitted() -> None:
    body = split(90, 10, root="books.shop")
    body["spec"]["backends"][0]["service"] = "books-0.shop.svc"
    body["spec"]["backends"][1]["service"] = "books-1.shop.svc.cluster.local"
    assert problems(body, CONTEXT) == []


def test_a_split_service_of_another_cluster_domain_is_refused() -> None:
    body = split(90, 10, root="books.shop.svc.corp.example")
    (message,) = problems(body, CONTEXT)
    assert message == (
        "TrafficSplit shop/books: spec.service: ends in cluster domain 'corp.example', but "
        "this cluster's domain is 'cluster.local'; write .svc.cluster.local, or the "
        "Service's name alone"
    )
    assert problems(body, ValidationContext(cluster_domain="corp.example")) == []


def test_a_split_service_of_another_namespace_is_refused() -> None:
    (message,) = problems(split(90, 10, root="books.other"), CONTEXT)
    assert message.startswith(
        "TrafficSplit shop/books: spec.service: 'books.other' names a Service in namespace "
        "'other', but a TrafficSplit splits between Services of its own namespace ('shop')"
    )


def test_a_split_over_more_backends_than_weft_accepts_is_refused_with_the_limit() -> None:
    assert problems(split(*[1] * MAX_SPLIT_BACKENDS), CONTEXT) == []
    (message,) = problems(split(*[1] * 412), CONTEXT)
    assert message.startswith(
        "TrafficSplit shop/books: spec.backends: 412 backends, more than the 100 Weft accepts "
        "in one TrafficSplit"
    )


def test_what_does_not_parse_is_refused_with_the_parsers_message() -> None:
    (message,) = problems(split("-1", version="v1alpha1"), CONTEXT)
    assert message.startswith("TrafficSplit shop/books: spec.backends[0].weight: '-1' is negative")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "apiVersion": "specs.smi-spec.io/v1alpha4",
                "kind": "HTTPRouteGroup",
                "metadata": {"name": "routes"},
                "spec": {"matches": [{"name": "books", "pathRegex": "/books/(\\d+"}]},
            },
            "spec.matches[0].pathRegex",
        ),
        (
            {
                "apiVersion": "specs.smi-spec.io/v1alpha4",
                "kind": "HTTPRouteGroup",
                "metadata": {"name": "routes"},
                "spec": {"matches": [{"name": "h", "headers": [{"x-tenant": "[a-"}]}]},
            },
            "spec.matches[0].headers",
        ),
        (
            {
                "apiVersion": "linkerd.io/v1alpha2",
                "kind": "ServiceProfile",
                "metadata": {"name": "books.shop.svc.cluster.local"},
                "spec": {"routes": [{"name": "r", "condition": {"pathRegex": "*books"}}]},
            },
            "spec.routes[0].condition.pathRegex",
        ),
        (
            {
                "apiVersion": "policy.linkerd.io/v1beta3",
                "kind": "HTTPRoute",
                "metadata": {"name": "r"},
                "spec": {
                    "parentRefs": [{"kind": "Server", "group": "policy.linkerd.io", "name": "s"}],
                    "rules": [
                        {"matches": [{"path": {"type": "RegularExpression", "value": "(?P<"}}]}
                    ],
                },
            },
            "spec.rules[0].matches[0].path",
        ),
    ],
    ids=["httproutegroup-path", "httproutegroup-header", "serviceprofile", "httproute"],
)
def test_a_regex_that_does_not_compile_is_refused_naming_its_field(
    body: dict[str, Any], field: str
) -> None:
    (message,) = problems(body, CONTEXT)
    assert f"{field}" in message
    assert "is not a valid regular expression" in message


def _regex_bodies(pattern: str) -> list[tuple[dict[str, Any], str]]:
    """One manifest per kind with a regex field set to `pattern`, and that field's path."""
    regex = {"type": "RegularExpression", "value": pattern}
    return [
        (
            {
                "apiVersion": "linkerd.io/v1alpha2",
                "kind": "ServiceProfile",
                "metadata": {"name": "books.shop.svc.cluster.local", "namespace": "shop"},
                "spec": {"routes": [{"name": "r", "condition": {"pathRegex": pattern}}]},
            },
            "ServiceProfile shop/books.shop.svc.cluster.local: spec.routes[0].condition.pathRegex",
        ),
        (
            {
                "apiVersion": "specs.smi-spec.io/v1alpha4",
                "kind": "HTTPRouteGroup",
                "metadata": {"name": "routes", "namespace": "shop"},
                "spec": {"matches": [{"name": "m", "headers": [{"x-tenant": pattern}]}]},
            },
            "HTTPRouteGroup shop/routes: spec.matches[0].headers: header 'x-tenant'",
        ),
        (
            {
                "apiVersion": "policy.linkerd.io/v1beta3",
                "kind": "HTTPRoute",
                "metadata": {"name": "r", "namespace": "shop"},
                "spec": {
                    "parentRefs": [{"kind": "Server", "group": "policy.linkerd.io", "name": "s"}],
                    "rules": [{"matches": [{"path": regex}, {"path": {"value": "/"}}]}],
                },
            },
            "HTTPRoute shop/r: spec.rules[0].matches[0].path.value",
        ),
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/books/(\\d+)/\\1", "invalid escape sequence: \\1 (backreferences are not supported"),
        ("/books(?=/)", "invalid perl operator: (?= (lookahead is not supported"),
        ("(?<!admin)/books", "invalid perl operator: (?<! (lookbehind is not supported"),
    ],
    ids=["backreference", "lookahead", "lookbehind"],
)
def test_a_regex_the_proxys_engine_cannot_run_is_refused_with_field_and_reason(
    pattern: str, reason: str
) -> None:
    for body, field in _regex_bodies(pattern):
        (message,) = problems(body, CONTEXT)
        assert message.startswith(f"{field}: {pattern!r} is not a valid regular expression: ")
        assert reason in message
        assert "Weft matches with RE2, in linear time" in message


def test_a_regex_that_would_only_make_a_backtracking_engine_hang_is_admitted() -> None:
    for pattern in ("(a+)+$", "/api/(\\w+/?)+$"):
        for body, _ in _regex_bodies(pattern):
            assert problems(body, CONTEXT) == []


def test_a_profile_named_for_another_cluster_domain_is_refused() -> None:
    body = {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": "books.shop.svc.cluster.lcoal", "namespace": "shop"},
        "spec": {},
    }
    (message,) = problems(body, CONTEXT)
    assert "ends in cluster domain 'cluster.lcoal'" in message
    assert "name it 'books.shop.svc.cluster.local'" in message
    assert problems(body, ValidationContext(cluster_domain="cluster.lcoal")) == []


def test_a_profile_whose_name_is_not_a_service_name_is_refused() -> None:
    body = {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": "books"},
        "spec": {},
    }
    (message,) = problems(body, CONTEXT)
    assert "must be <service>.<namespace>.svc.<cluster-domain>" in message


def test_a_server_on_the_same_port_of_the_same_pods_is_refused() -> None:
    existing = [parsed_server("web-http", 8080, {"matchLabels": {"app": "web"}})]
    body = server(
        "web-too",
        8080,
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
    )
    (message,) = problems(body, ValidationContext(servers=existing))
    assert message == (
        "Server shop/web-too: spec.port: Server shop/web-http already governs port 8080 of "
        "pods this Server selects too; a pod port takes one Server: choose another port or "
        "pod selectors that cannot match the same pod"
    )


@pytest.mark.parametrize(
    ("port", "selector"),
    [
        (8080, {"matchLabels": {"app": "api"}}),  # other pods
        (9090, {"matchLabels": {"app": "web"}}),  # other port
        ("http", {"matchLabels": {"app": "web"}}),  # a name: resolved per pod, not compared
        (8080, {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
    ],
)
def test_servers_that_cannot_meet_are_admitted(port: int | str, selector: dict[str, Any]) -> None:
    existing = [parsed_server("web-http", 8080, {"matchLabels": {"app": "web"}})]
    assert problems(server("other", port, selector), ValidationContext(servers=existing)) == []


def test_a_server_does_not_conflict_with_its_previous_self() -> None:
    existing = [parsed_server("web-http", 8080, {"matchLabels": {"app": "web"}})]
    body = server("web-http", 8080, {})
    assert problems(body, ValidationContext(servers=existing)) == []
    assert needs_servers(body)
    assert not needs_servers(split(1))


def test_identities_that_do_not_parse_are_refused() -> None:
    body = {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": "clients", "namespace": "shop"},
        "spec": {
            "identities": [
                "*",
                "*.shop.serviceaccount.identity.cluster.local",
                "web shop",
                "Web.shop",
            ]
        },
    }
    found = problems(body, CONTEXT)
    assert len(found) == 2
    assert "spec.identities[2]: 'web shop' is not an identity" in found[0]
    assert found[1].startswith("spec.identities[3]: 'Web.shop'")


def test_a_wildcard_inside_an_identity_is_refused_by_the_parser() -> None:
    body = {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": "clients"},
        "spec": {"identities": ["web.*.serviceaccount"]},
    }
    (message,) = problems(body, CONTEXT)
    assert "'web.*.serviceaccount' is not an identity" in message


def network_authentication(*networks: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "NetworkAuthentication",
        "metadata": {"name": "nets", "namespace": "shop"},
        "spec": {"networks": list(networks)},
    }


def test_cidrs_that_do_not_parse_are_refused() -> None:
    (message,) = problems(network_authentication({"cidr": "10.0.0.0/33"}), CONTEXT)
    assert "spec.networks[0].cidr: '10.0.0.0/33' is not a CIDR" in message


def test_exceptions_must_lie_inside_their_network_and_leave_some_of_it() -> None:
    body = network_authentication(
        {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "192.168.0.0/16", "fd00::/8"]},
        {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/8"]},
    )
    found = problems(body, CONTEXT)
    assert found == [
        "NetworkAuthentication shop/nets: spec.networks[0].except: 192.168.0.0/16 is not inside "
        "cidr 10.0.0.0/8",
        "spec.networks[0].except: fd00::/8 is not inside cidr 10.0.0.0/8",
        "spec.networks[1].except: 10.0.0.0/8 excludes all of cidr 10.0.0.0/16, so it admits no one",
    ]


def test_server_authorizations_networks_and_identities_are_checked() -> None:
    body = {
        "apiVersion": "policy.linkerd.io/v1beta1",
        "kind": "ServerAuthorization",
        "metadata": {"name": "authz", "namespace": "shop"},
        "spec": {
            "server": {"name": "web-http"},
            "client": {
                "networks": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/8"]}],
                "meshTLS": {"identities": ["bad identity"]},
            },
        },
    }
    found = problems(body, CONTEXT)
    assert [problem.split(": ")[-2] for problem in found] == [
        "spec.client.networks[0].except",
        "spec.client.meshTLS.identities[0]",
    ]


# --- selectors: overlap decided exactly, checked against matching every possible pod ---

KEYS, VALUES = ("app", "tier"), ("web", "api")
requirements = st.one_of(
    st.builds(
        lambda key, operator, values: {"key": key, "operator": operator, "values": values},
        st.sampled_from(KEYS),
        st.sampled_from(["In", "NotIn"]),
        st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True),
    ),
    st.builds(
        lambda key, operator: {"key": key, "operator": operator},
        st.sampled_from(KEYS),
        st.sampled_from(["Exists", "DoesNotExist"]),
    ),
)
selectors = st.builds(
    lambda labels, expressions: LabelSelector.model_validate(
        {"matchLabels": labels, "matchExpressions": expressions}
    ),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2),
    st.lists(requirements, max_size=3),
)


def every_pod_labels() -> list[dict[str, str]]:
    # Each key absent, or one of the values, or a value neither selector names.
    choices = [None, *VALUES, "other"]
    return [
        {key: value for key, value in zip(KEYS, combo, strict=True) if value is not None}
        for combo in itertools.product(choices, repeat=len(KEYS))
    ]


@given(selectors, selectors)
def test_selectors_overlap_exactly_when_some_pod_matches_both(
    left: LabelSelector, right: LabelSelector
) -> None:
    some_pod_matches_both = any(
        selector_matches(left, labels) and selector_matches(right, labels)
        for labels in every_pod_labels()
    )
    assert can_overlap(left, right) == some_pod_matches_both


def test_fields_read_but_not_acted_on_are_admitted_with_a_warning() -> None:
    route = {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "HTTPRoute",
        "metadata": {"name": "books", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"kind": "Service", "group": "core", "name": "books"}],
            "rules": [{"timeouts": {"request": "10s", "backendRequest": "2s"}}],
        },
    }
    assert problems(route, ValidationContext()) == []
    assert warnings(route) == [
        "weft: HTTPRoute shop/books: spec.rules[0].timeouts.backendRequest is ignored: the "
        "proxy applies `request` to the whole request, retries included"
    ]
    route["spec"]["rules"] = [{"timeouts": {"request": "10s"}}]
    assert warnings(route) == []
