"""Invalid manifests: one exception type, a message naming the field as written."""

from __future__ import annotations

from typing import Any

import pytest

from weft_resources import InvalidResource, parse_resource

META = {"name": "books", "namespace": "booksapp"}
PROFILE_META = {"name": "books.booksapp.svc.cluster.local", "namespace": "booksapp"}


def doc(api_version: str, kind: str, meta: dict[str, Any] = META, **body: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


def route(condition: Any, **extra: Any) -> dict[str, Any]:
    return {"routes": [{"name": "r", "condition": condition, **extra}]}


CASES = [
    pytest.param(
        doc(
            "split.smi-spec.io/v1alpha1",
            "TrafficSplit",
            spec={
                "service": "books",
                "backends": [{"service": "v1", "weight": "1"}, {"service": "v2", "weight": "5x"}],
            },
        ),
        "TrafficSplit booksapp/books: spec.backends[1].weight: '5x' is not a Kubernetes quantity",
        id="split-quantity",
    ),
    pytest.param(
        doc(
            "split.smi-spec.io/v1alpha4",
            "TrafficSplit",
            spec={"service": "books", "backends": [{"service": "v1", "weight": -5}]},
        ),
        "spec.backends[0].weight: -5 is negative; a weight must be 0 or more",
        id="split-negative",
    ),
    pytest.param(
        doc("split.smi-spec.io/v1alpha4", "TrafficSplit", spec={"backends": []}),
        "spec.service: is required; spec.backends: tuple should have at least 1 item after "
        "validation, not 0, got []",
        id="split-empty",
    ),
    pytest.param(
        doc(
            "split.smi-spec.io/v1alpha4",
            "TrafficSplit",
            spec={
                "service": "books",
                "backends": [{"service": "v1", "weight": 1}],
                "matches": [{"kind": "TCPRoute", "name": "x"}],
            },
        ),
        "spec.matches[0].kind: input should be 'HTTPRouteGroup', got 'TCPRoute'",
        id="split-match-kind",
    ),
    pytest.param(
        doc("split.smi-spec.io/v1beta1", "TrafficSplit", spec={}),
        "apiVersion: 'split.smi-spec.io/v1beta1' is not served; use split.smi-spec.io/v1alpha1, "
        "split.smi-spec.io/v1alpha2, split.smi-spec.io/v1alpha3, split.smi-spec.io/v1alpha4",
        id="unserved-version",
    ),
    pytest.param(
        doc("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup", spec={"matches": [{"pathRegex": "("}]}),
        "spec.matches[0].pathRegex: '(' is not a valid regular expression: missing ): (",
        id="route-group-regex",
    ),
    pytest.param(
        doc(
            "specs.smi-spec.io/v1alpha4",
            "HTTPRouteGroup",
            spec={"matches": [{"headers": [{"a": "1", "b": "2"}]}]},
        ),
        "spec.matches[0].headers: each item of a header list must be a map with exactly one header",
        id="route-group-header-list",
    ),
    pytest.param(
        doc(
            "specs.smi-spec.io/v1alpha2",
            "HTTPRouteGroup",
            matches=[{"headers": {"X-Version": "v[2"}}],
        ),
        "matches[0].headers: header 'X-Version': 'v[2' is not a valid regular expression",
        id="route-group-header-regex-top-level",
    ),
    pytest.param(
        doc("specs.smi-spec.io/v1alpha4", "TCPRoute", spec={"matches": {"ports": [0]}}),
        "spec.matches.ports[0]: input should be greater than or equal to 1, got 0",
        id="tcp-route-port",
    ),
    pytest.param(
        doc(
            "access.smi-spec.io/v1alpha3",
            "TrafficTarget",
            spec={
                "destination": {"kind": "ServiceAccount", "name": "books"},
                "sources": [{"kind": "Group", "name": "admins"}],
                "rules": [{"kind": "HTTPRoute", "name": "x"}],
            },
        ),
        "spec.rules[0].kind: input should be 'HTTPRouteGroup', 'TCPRoute' or 'UDPRoute', got "
        "'HTTPRoute'; spec.sources[0].kind: input should be 'ServiceAccount' or "
        "'IdentityBinding', got 'Group'",
        id="traffic-target-kinds",
    ),
    pytest.param(
        doc(
            "access.smi-spec.io/v1alpha1",
            "TrafficTarget",
            destination={"kind": "ServiceAccount", "name": "books", "port": "http"},
        ),
        "destination.port: input should be a valid integer, unable to parse string as an "
        "integer, got 'http'",
        id="traffic-target-v1alpha1-top-level-path",
    ),
    pytest.param(
        doc("linkerd.io/v1alpha2", "ServiceProfile", spec={}),
        "ServiceProfile booksapp/books: metadata.name: 'books' must be <service>.<namespace>"
        ".svc.<cluster-domain>, such as books.default.svc.cluster.local",
        id="profile-name",
    ),
    pytest.param(
        doc("linkerd.io/v1alpha2", "ServiceProfile", PROFILE_META, spec=route({})),
        "spec.routes[0].condition: a condition must set one of pathRegex, method, all, any, not",
        id="profile-empty-condition",
    ),
    pytest.param(
        doc(
            "linkerd.io/v1alpha2",
            "ServiceProfile",
            PROFILE_META,
            spec=route({"not": []}),
        ),
        "spec.routes[0].condition.not: a list for `not` must hold at least one condition",
        id="profile-not-list",
    ),
    pytest.param(
        doc(
            "linkerd.io/v1alpha1",
            "ServiceProfile",
            PROFILE_META,
            spec=route({"all": [{"pathRegex": "/books/(\\d+"}]}, timeout="10 seconds"),
        ),
        "spec.routes[0].condition.all[0].pathRegex: '/books/(\\\\d+' is not a valid regular "
        "expression: missing ): /books/(\\d+; spec.routes[0].timeout: "
        "'10 seconds' is not a duration such as '500ms', '10s' or '1m30s'",
        id="profile-regex-and-timeout",
    ),
    pytest.param(
        doc(
            "linkerd.io/v1alpha2",
            "ServiceProfile",
            PROFILE_META,
            spec={
                **route(
                    {"method": "GET"},
                    responseClasses=[{"condition": {"status": {"min": 500, "max": 400}}}],
                ),
                "retryBudget": {"ttl": "-1s"},
            },
        ),
        "spec.routes[0].responseClasses[0].condition.status: min 500 is greater than max 400; "
        "spec.retryBudget.ttl: '-1s' is negative; a duration here must be 0 or more",
        id="profile-status-and-ttl",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1beta3",
            "Server",
            spec={
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]
                },
                "port": 70000,
                "accessPolicy": "allow-all",
            },
        ),
        "spec.podSelector.matchExpressions[0]: operator Exists takes no values; spec.port: 70000 "
        "is not a port number (1 to 65535); spec.accessPolicy: input should be "
        "'all-unauthenticated', 'all-authenticated', 'cluster-unauthenticated', "
        "'cluster-authenticated' or 'deny', got 'allow-all'",
        id="server",
    ),
    pytest.param(
        doc("policy.linkerd.io/v1beta3", "Server", spec={"port": "HTTP_port"}),
        "spec.podSelector: is required; spec.port: 'HTTP_port' is neither a port number nor a "
        "port name",
        id="server-missing-selector",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1beta1",
            "ServerAuthorization",
            spec={
                "server": {"name": "books-http", "selector": {}},
                "client": {"unauthenticated": True, "networks": [{"cidr": "10.0.0.0/33"}]},
            },
        ),
        "spec.server: set exactly one of name and selector; spec.client.networks[0].cidr: "
        "'10.0.0.0/33' is not a CIDR such as '10.0.0.0/8' or 'fd00::/8'",
        id="server-authorization",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1beta1",
            "ServerAuthorization",
            spec={"server": {"name": "books-http"}, "client": {"meshTLS": {"identities": ["a*b"]}}},
        ),
        "spec.client.meshTLS.identities[0]: 'a*b' is not an identity, '*' or a '*.<suffix>' "
        "wildcard",
        id="server-authorization-identity",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1beta1",
            "ServerAuthorization",
            spec={"server": {"name": "books-http"}, "client": {}},
        ),
        "spec.client: set exactly one of unauthenticated and meshTLS",
        id="server-authorization-no-client",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1alpha1",
            "AuthorizationPolicy",
            spec={
                "targetRef": {"kind": "GRPCRoute", "name": "x"},
                "requiredAuthenticationRefs": [
                    {"kind": "NetworkAuthentication", "name": "a"},
                    {"kind": "NetworkAuthentication", "name": "b"},
                ],
            },
        ),
        "spec.targetRef.kind: input should be 'Server', 'Namespace' or 'HTTPRoute', got "
        "'GRPCRoute'; spec.requiredAuthenticationRefs: name at most one NetworkAuthentication",
        id="authorization-policy",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1alpha1",
            "MeshTLSAuthentication",
            spec={"identities": ["*"], "identityRefs": [{"kind": "ServiceAccount", "name": "a"}]},
        ),
        "spec: set exactly one of identities and identityRefs, with one item or more",
        id="mesh-tls-authentication",
    ),
    pytest.param(
        doc("policy.linkerd.io/v1alpha1", "NetworkAuthentication", spec={"networks": []}),
        "spec.networks: tuple should have at least 1 item after validation, not 0, got []",
        id="network-authentication",
    ),
    pytest.param(
        doc(
            "policy.linkerd.io/v1beta3",
            "HTTPRoute",
            spec={
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "PathPrefix", "value": "books"}},
                            {"headers": [{"name": "x", "type": "RegularExpression", "value": "*"}]},
                        ],
                        "timeouts": {"request": "10"},
                    }
                ]
            },
        ),
        "spec.rules[0].matches[0].path.value: 'books' must start with '/'; spec.rules[0]"
        ".matches[1].headers[0].value: '*' is not a valid regular expression: no argument for "
        "repetition operator: *; "
        "spec.rules[0].timeouts.request: '10' is not a duration such as '500ms', '10s' or '1m30s'",
        id="http-route",
    ),
    pytest.param(
        doc(
            "v1",
            "Service",
            spec={"ports": [{"port": 80, "targetPort": "not a name"}], "clusterIPs": "10.0.0.1"},
        ),
        "spec.clusterIPs: input should be a valid tuple, got '10.0.0.1'; spec.ports[0].targetPort: "
        "'not a name' is neither a port number nor a port name",
        id="service",
    ),
    pytest.param(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "booksapp"}},
        "Pod booksapp/(unnamed): metadata.name: is required",
        id="unnamed",
    ),
    pytest.param(
        doc("apps/v1", "Deployment"),
        "Deployment books: apps/v1 Deployment is not a kind Weft reads",
        id="unknown-kind",
    ),
]


@pytest.mark.parametrize(("body", "message"), CASES)
def test_invalid_manifests_say_where_and_why(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        parse_resource(body)
    assert message in str(raised.value)


def test_the_error_carries_kind_and_name() -> None:
    with pytest.raises(InvalidResource) as raised:
        parse_resource(doc("policy.linkerd.io/v1beta3", "Server", spec={}))
    assert (raised.value.kind, raised.value.name) == ("Server", "booksapp/books")
    assert raised.value.message.startswith("spec.podSelector: is required")
