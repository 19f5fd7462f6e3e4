"""Inbound authorization: networks, authentication levels, identities, route limits."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_api.config import (
    ALL_NETWORKS,
    Authentication,
    Authorization,
    AuthorizationKind,
    DefaultPolicy,
    InboundServer,
    Network,
    Protocol,
    ProxyConfig,
    ProxyIdentity,
    RequestMatch,
    ServerKind,
)
from weft_api.identity import identity_name, namespace_identities
from weft_proxy.policies.authorize import Client, InboundPolicy, ServerPolicy
from weft_proxy.policies.request_match import RequestHead

EVERYWHERE = tuple(Network(cidr) for cidr in ALL_NETWORKS)
WEB = identity_name("web", "shop")
ADMIN = identity_name("admin", "ops")


def authorization(
    name: str,
    authentication: Authentication = Authentication.UNAUTHENTICATED,
    identities: tuple[str, ...] = (),
    networks: tuple[Network, ...] = EVERYWHERE,
    routes: tuple[RequestMatch, ...] = (),
) -> Authorization:
    kind = AuthorizationKind.AUTHORIZATION_POLICY
    return Authorization(kind, name, networks, authentication, identities, routes)


def server(*authorizations: Authorization, port: int = 8080) -> InboundServer:
    return InboundServer(
        "api", ServerKind.SERVER, port, Protocol.HTTP1, authorizations, DefaultPolicy.DENY
    )


def permit(policy: ServerPolicy, client: Client, request: RequestHead | None = None) -> str | None:
    """The name of the authorization that admits the client, None if denied."""
    verdict = policy.authorize(client, request)
    return verdict.authorization.name if verdict.authorization else None


def allowed_by(
    policy: Authorization, client: Client, request: RequestHead | None = None
) -> str | None:
    return permit(ServerPolicy(server(policy)), client, request)


PLAIN = Client.of("10.1.2.3")
TLS_NO_ID = Client.of("10.1.2.3", tls=True)
MESHED_WEB = Client.of("10.1.2.3", tls=True, identity=WEB)


def test_a_server_without_authorizations_denies() -> None:
    verdict = ServerPolicy(server()).authorize(MESHED_WEB)
    assert not verdict.allowed
    assert verdict.authorization is None
    assert verdict.server.name == "api"


def test_networks_and_their_exceptions() -> None:
    pods = authorization("pods", networks=(Network("10.0.0.0/8", ("10.9.0.0/16",)),))
    assert allowed_by(pods, PLAIN) == "pods"
    assert allowed_by(pods, Client.of("10.9.0.1")) is None
    assert allowed_by(pods, Client.of("192.168.1.1")) is None
    assert allowed_by(pods, Client.of("fd00::1")) is None


def test_an_ipv4_client_of_a_dual_stack_listener_counts_as_ipv4() -> None:
    pods = authorization("pods", networks=(Network("10.0.0.0/8"),))
    assert allowed_by(pods, Client.of("::ffff:10.1.2.3")) == "pods"


@pytest.mark.parametrize(
    ("authentication", "identities", "admitted"),
    [
        (Authentication.UNAUTHENTICATED, (), {"plain", "tls", "web"}),
        (Authentication.TLS_UNAUTHENTICATED, (), {"tls", "web"}),
        (Authentication.TLS_AUTHENTICATED, ("*",), {"web"}),
        (Authentication.TLS_AUTHENTICATED, (WEB,), {"web"}),
        (Authentication.TLS_AUTHENTICATED, (ADMIN,), set()),
        (Authentication.TLS_AUTHENTICATED, (namespace_identities("shop"),), {"web"}),
        (Authentication.TLS_AUTHENTICATED, (namespace_identities("ops"),), set()),
    ],
)
def test_authentication_levels_and_identities(
    authentication: Authentication, identities: tuple[str, ...], admitted: set[str]
) -> None:
    policy = authorization("p", authentication, identities)
    clients = {"plain": PLAIN, "tls": TLS_NO_ID, "web": MESHED_WEB}
    assert {name for name, client in clients.items() if allowed_by(policy, client)} == admitted


def test_a_suffix_needs_one_more_label() -> None:
    policy = authorization("p", Authentication.TLS_AUTHENTICATED, ("*.cluster.local",))
    assert allowed_by(policy, Client.of("10.0.0.1", True, "a.b.cluster.local")) == "p"
    assert allowed_by(policy, Client.of("10.0.0.1", True, "cluster.local")) is None
    assert allowed_by(policy, Client.of("10.0.0.1", True, "evilcluster.local")) is None


def test_identities_compare_without_case() -> None:
    policy = authorization("p", Authentication.TLS_AUTHENTICATED, (WEB.upper(),))
    assert allowed_by(policy, MESHED_WEB) == "p"


def test_an_identity_without_tls_proves_nothing() -> None:
    policy = authorization("p", Authentication.TLS_AUTHENTICATED, ("*",))
    assert allowed_by(policy, Client.of("10.0.0.1", tls=False, identity=WEB)) is None


HEALTH = RequestMatch(all=(RequestMatch(method="GET"), RequestMatch(path_regex="^/healthz$")))


def test_route_limited_authorizations_admit_matching_requests_only() -> None:
    probes = authorization("probe", routes=(HEALTH,))
    assert allowed_by(probes, PLAIN, RequestHead("GET", "/healthz")) == "probe"
    assert allowed_by(probes, PLAIN, RequestHead("POST", "/healthz")) is None
    assert allowed_by(probes, PLAIN, RequestHead("GET", "/orders")) is None
    assert allowed_by(probes, PLAIN, None) is None  # never an opaque connection


def test_the_first_admitting_authorization_names_the_permit() -> None:
    policy = ServerPolicy(
        server(
            authorization("web-only", Authentication.TLS_AUTHENTICATED, (WEB,)),
            authorization("anyone"),
        )
    )
    assert permit(policy, MESHED_WEB) == "web-only"
    assert permit(policy, PLAIN) == "anyone"


def test_undeclared_ports_get_the_default_server() -> None:
    default = InboundServer(
        "all-unauthenticated", ServerKind.DEFAULT, 0, Protocol.UNKNOWN,
        (authorization("all-unauthenticated"),), DefaultPolicy.ALL_UNAUTHENTICATED,
    )  # fmt: skip
    config = ProxyConfig(ProxyIdentity("api-0", "shop", "api"), (server(),), default, ())
    inbound = InboundPolicy.of(config)
    assert not inbound.server_for(8080).authorize(PLAIN).allowed
    assert inbound.server_for(9999).authorize(PLAIN).allowed
    assert inbound.server_for(9999).server is default


def test_an_invalid_network_is_refused_when_compiled() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        ServerPolicy(server(authorization("p", networks=(Network("10.0.0.0/33"),))))


ipv4_addresses = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv4_networks = st.tuples(ipv4_addresses, st.integers(min_value=0, max_value=32)).map(
    lambda pair: ipaddress.IPv4Network(f"{pair[0]}/{pair[1]}", strict=False)
)
request_heads = st.none() | st.builds(
    RequestHead, st.sampled_from(["GET", "POST"]), st.sampled_from(["/healthz", "/orders"])
)


@given(
    network=ipv4_networks,
    excepted=st.lists(ipv4_networks, max_size=2),
    address=ipv4_addresses,
    authentication=st.sampled_from(list(Authentication)),
    tls=st.booleans(),
    identity=st.sampled_from([None, WEB, ADMIN]),
    request=request_heads,
)
def test_a_client_outside_the_networks_is_never_admitted(
    network: ipaddress.IPv4Network,
    excepted: list[ipaddress.IPv4Network],
    address: ipaddress.IPv4Address,
    authentication: Authentication,
    tls: bool,
    identity: str | None,
    request: RequestHead | None,
) -> None:
    policy = authorization(
        "p",
        authentication,
        ("*",),
        networks=(Network(str(network), tuple(map(str, excepted))),),
    )
    client = Client(address, tls, identity)
    outside = address not in network or any(address in net for net in excepted)
    if outside:
        assert allowed_by(policy, client, request) is None
    elif authentication is Authentication.UNAUTHENTICATED:
        assert allowed_by(policy, client, request) == "p"
