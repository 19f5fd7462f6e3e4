"""The config model survives the wire: dataclass -> protobuf -> bytes -> protobuf -> dataclass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weft_api import config_proto
from weft_api.config import (
    Authentication,
    Authorization,
    AuthorizationKind,
    Backend,
    BackendPort,
    DefaultPolicy,
    Endpoint,
    InboundServer,
    Network,
    OutboundService,
    Protocol,
    ProtocolHint,
    ProxyIdentity,
    RequestMatch,
    ResponseClass,
    ResponseMatch,
    RetryBudget,
    Route,
    ServerKind,
    ServicePort,
    StatusRange,
    ValueMatch,
    endpoint_order,
)
from weft_api.proto import config_pb2 as pb

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # UTF-8 encodable
names = st.text("abcdef-", min_size=1, max_size=6)
uint32 = st.integers(0, 2**32 - 1)
ports = st.integers(1, 65535)


def tuples(elements: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(elements, max_size=max_size).map(tuple)


value_matches = st.builds(ValueMatch, text, text)
request_matches = st.recursive(
    st.one_of(
        st.builds(lambda r: RequestMatch(path_regex=r), text),
        st.builds(lambda m: RequestMatch(method=m), text),
        st.builds(lambda v: RequestMatch(header=v), value_matches),
        st.builds(lambda v: RequestMatch(query_param=v), value_matches),
    ),
    lambda inner: st.one_of(
        st.builds(lambda ms: RequestMatch(all=ms), tuples(inner)),
        st.builds(lambda ms: RequestMatch(any=ms), tuples(inner)),
        st.builds(lambda m: RequestMatch(not_=m), inner),
    ),
    max_leaves=6,
)
response_matches = st.recursive(
    st.builds(lambda lo, hi: ResponseMatch(status=StatusRange(lo, hi)), uint32, uint32),
    lambda inner: st.one_of(
        st.builds(lambda ms: ResponseMatch(all=ms), tuples(inner)),
        st.builds(lambda ms: ResponseMatch(any=ms), tuples(inner)),
        st.builds(lambda m: ResponseMatch(not_=m), inner),
    ),
    max_leaves=4,
)
authorizations = st.builds(
    Authorization,
    kind=st.sampled_from(AuthorizationKind),
    name=text,
    networks=tuples(st.builds(Network, text, tuples(text))),
    authentication=st.sampled_from(Authentication),
    identities=tuples(text),
    routes=tuples(request_matches),
)
servers = st.builds(
    InboundServer,
    name=text,
    kind=st.sampled_from(ServerKind),
    port=uint32,
    protocol=st.sampled_from(Protocol),
    authorizations=tuples(authorizations),
    default_policy=st.sampled_from(DefaultPolicy),
)
endpoints = st.builds(
    Endpoint,
    address=text,
    port=uint32,
    identity=st.none() | text,
    protocol_hint=st.none() | st.just(ProtocolHint.H2),
    labels=st.dictionaries(text, text, max_size=3).map(lambda d: tuple(sorted(d.items()))),
)
routes = st.builds(
    Route,
    name=text,
    condition=request_matches,
    ports=tuples(ports),
    timeout_ms=st.none() | uint32,
    is_retryable=st.booleans(),
    response_classes=tuples(st.builds(ResponseClass, response_matches, st.booleans())),
)
retry_budgets = st.builds(RetryBudget, st.floats(0, 10, allow_nan=False), uint32, uint32) | st.just(
    RetryBudget()
)


@st.composite
def outbound_services(draw: st.DrawFn) -> OutboundService:
    """Backends of distinct Services: one Service port has one endpoint set."""
    namespace = draw(names)
    backend_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    service_ports = draw(st.lists(ports, min_size=1, max_size=2, unique=True))
    sets = {
        (name, port): draw(tuples(endpoints)) for name in backend_names for port in service_ports
    }

    def backend(name: str) -> Backend:
        return Backend(
            name=name,
            namespace=namespace,
            authority=f"{name}.{namespace}.svc.cluster.local",
            weight=draw(uint32),
            ports=tuple(BackendPort(port, sets[name, port]) for port in service_ports),
        )

    split_matches = draw(tuples(request_matches))
    return OutboundService(
        name=backend_names[0],
        namespace=namespace,
        authority=draw(text),
        cluster_ips=draw(tuples(text)),
        ports=tuple(
            ServicePort(port, draw(text), draw(st.sampled_from(Protocol))) for port in service_ports
        ),
        routes=draw(tuples(routes)),
        retry_budget=draw(retry_budgets),
        backends=tuple(backend(name) for name in backend_names),
        split_matches=split_matches,
        unmatched_backend=backend(backend_names[0]) if split_matches else None,
    )


def over_the_wire(message: Any) -> Any:
    """Serialize and parse, as the stream does."""
    return type(message).FromString(message.SerializeToString())


@given(st.builds(ProxyIdentity, text, text, text, st.none() | text))
def test_identity_round_trips(identity: ProxyIdentity) -> None:
    message = over_the_wire(config_proto.identity_to_proto(identity))
    assert config_proto.identity_from_proto(message) == identity


@given(tuples(servers), servers)
def test_inbound_round_trips(listed: tuple[InboundServer, ...], default: InboundServer) -> None:
    message = over_the_wire(config_proto.inbound_to_proto(listed, default))
    assert config_proto.inbound_from_proto(message) == (listed, default)


@given(outbound_services())
def test_outbound_round_trips_with_endpoints_split_out(service: OutboundService) -> None:
    message, sets = config_proto.outbound_to_proto(service)
    wire = over_the_wire(message)
    assert list(sets) == config_proto.backend_endpoint_names(wire)
    assert config_proto.outbound_from_proto(wire, sets) == service


@given(endpoints)
def test_endpoint_round_trips(endpoint: Endpoint) -> None:
    message = over_the_wire(config_proto.endpoint_to_proto(endpoint))
    assert config_proto.endpoint_from_proto(message) == endpoint


def test_endpoint_sets_are_named_by_service_port() -> None:
    assert config_proto.endpoints_name("shop", "web-v2", 8080) == "shop/web-v2:8080"


def test_a_backend_without_its_endpoints_does_not_decode() -> None:
    service = pb.OutboundService(
        name="web", backends=[pb.Backend(name="web", namespace="shop", ports=[80])]
    )
    with pytest.raises(config_proto.DecodeError, match="no endpoints shop/web:80"):
        config_proto.outbound_from_proto(service, {})


def test_unset_enums_and_empty_matches_do_not_decode() -> None:
    unset_kind = pb.Inbound(default_server=pb.InboundServer(name="x"))
    with pytest.raises(config_proto.DecodeError, match=r"InboundServer\.kind"):
        config_proto.inbound_from_proto(unset_kind)
    with pytest.raises(config_proto.DecodeError, match="none of its conditions"):
        config_proto.request_match_from_proto(pb.RequestMatch())
    with pytest.raises(config_proto.DecodeError, match="no default_server"):
        config_proto.inbound_from_proto(pb.Inbound())


def test_endpoint_order_is_numeric_and_puts_ipv4_first() -> None:
    addresses = ["10.0.0.10", "fd00::1", "10.0.0.9", "not-an-ip"]
    ordered = sorted(addresses, key=lambda address: endpoint_order(address, 80))
    assert ordered == ["10.0.0.9", "10.0.0.10", "fd00::1", "not-an-ip"]
