"""The configuration of one proxy, as the catalog computes it and the proxy applies it.

Plain frozen dataclasses (the proxy must not import pydantic): tuples instead of
lists, string enums, no behaviour beyond `to_dict()`, which renders any value of this
module as plain data (for golden tests, debugging and the protobuf mapping).

Vocabulary (see docs/architecture.md): inbound, a **server** (one port's policy) lists the
**authorizations** that admit a client; outbound, a **parent** Service has **routes**
and **backends**, and each backend port has **endpoints**.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any

ALL_NETWORKS = ("0.0.0.0/0", "::/0")


def to_dict(value: Any) -> Any:
    """Render a config value as plain data: dicts, lists, strings, numbers, booleans.

    Fields set to None are left out; a trailing underscore in a field name (`not_`,
    `except_`) is dropped; fields marked `as_mapping` (tuples of pairs) become dicts.
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [to_dict(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        rendered: dict[str, Any] = {}
        for spec in dataclasses.fields(value):
            item = getattr(value, spec.name)
            if item is None:
                continue
            key = spec.name.rstrip("_")
            if spec.metadata.get("as_mapping"):
                rendered[key] = {name: to_dict(entry) for name, entry in item}
            else:
                rendered[key] = to_dict(item)
        return rendered
    return value


class _Config:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        rendered: dict[str, Any] = to_dict(self)
        return rendered


def _require_exactly_one_field(tree_node: Any) -> None:
    """Match trees mirror protobuf oneofs: a node is one condition, never several."""
    set_fields = [
        f.name for f in dataclasses.fields(tree_node) if getattr(tree_node, f.name) is not None
    ]
    if len(set_fields) != 1:
        kind = type(tree_node).__name__
        raise ValueError(f"a {kind} sets exactly one field, not {set_fields}")


def _as_mapping() -> Any:
    return field(default=(), metadata={"as_mapping": True})


class Protocol(enum.StrEnum):
    """What a port speaks, when known without detection."""

    UNKNOWN = "unknown"
    HTTP1 = "http1"
    HTTP2 = "http2"
    GRPC = "grpc"
    OPAQUE = "opaque"
    TLS = "tls"


class DefaultPolicy(enum.StrEnum):
    """Linkerd's default inbound policies (and a Server's `accessPolicy`)."""

    ALL_UNAUTHENTICATED = "all-unauthenticated"
    ALL_AUTHENTICATED = "all-authenticated"
    CLUSTER_UNAUTHENTICATED = "cluster-unauthenticated"
    CLUSTER_AUTHENTICATED = "cluster-authenticated"
    DENY = "deny"


class ServerKind(enum.StrEnum):
    """`srv_kind` in metrics: a Server resource, or a default policy."""

    SERVER = "server"
    DEFAULT = "default"


class AuthorizationKind(enum.StrEnum):
    """`authz_kind` in metrics: which resource granted the access."""

    DEFAULT = "default"
    SERVER_AUTHORIZATION = "serverauthorization"
    AUTHORIZATION_POLICY = "authorizationpolicy"
    TRAFFIC_TARGET = "traffictarget"


class Authentication(enum.StrEnum):
    """What a client must prove."""

    UNAUTHENTICATED = "unauthenticated"  # nothing: plain text is fine
    TLS_UNAUTHENTICATED = "tls_unauthenticated"  # a TLS connection, any or no identity
    TLS_AUTHENTICATED = "tls_authenticated"  # mTLS with one of `identities`


class ProtocolHint(enum.StrEnum):
    """How the outbound proxy may talk to a meshed endpoint's proxy."""

    H2 = "h2"


@dataclass(frozen=True, slots=True)
class ProxyIdentity(_Config):
    """Who a proxy is: its pod, and the ServiceAccount its certificate names."""

    pod: str
    namespace: str
    service_account: str
    node: str | None = None


# --- requests and responses -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueMatch(_Config):
    """A header (name in lower case) or query parameter whose value matches `value_regex`."""

    name: str
    value_regex: str


@dataclass(frozen=True, slots=True)
class RequestMatch(_Config):
    """A tree of request conditions; exactly one field is set (a protobuf oneof).

    Every regex (`path_regex`, `value_regex`) is anchored by the catalog (`^(?:...)$`,
    or `^(?:...)` for SMI paths), so the proxy applies them all with a plain search.
    `all=()` matches every request; `any=()` matches none.
    """

    path_regex: str | None = None
    method: str | None = None
    header: ValueMatch | None = None
    query_param: ValueMatch | None = None
    all: tuple[RequestMatch, ...] | None = None
    any: tuple[RequestMatch, ...] | None = None
    not_: RequestMatch | None = None

    def __post_init__(self) -> None:
        _require_exactly_one_field(self)


@dataclass(frozen=True, slots=True)
class StatusRange(_Config):
    """HTTP status codes from `min` to `max`, both included."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class ResponseMatch(_Config):
    """A tree of response conditions; exactly one field is set."""

    status: StatusRange | None = None
    all: tuple[ResponseMatch, ...] | None = None
    any: tuple[ResponseMatch, ...] | None = None
    not_: ResponseMatch | None = None

    def __post_init__(self) -> None:
        _require_exactly_one_field(self)


@dataclass(frozen=True, slots=True)
class ResponseClass(_Config):
    """Responses matching `condition` count as failures (or successes) in metrics."""

    condition: ResponseMatch
    is_failure: bool


# --- inbound ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Network(_Config):
    """Client addresses in `cidr` but not in any of `except_`."""

    cidr: str
    except_: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Authorization(_Config):
    """One way for a client to be admitted; a server admits a client if any allows it.

    `identities` (for tls_authenticated) holds exact names, `*` (any identity) or
    `*.<suffix>` wildcards. `routes` limits the authorization to HTTP requests matching
    one of them; empty means every request (and every connection).
    """

    kind: AuthorizationKind
    name: str
    networks: tuple[Network, ...]
    authentication: Authentication
    identities: tuple[str, ...] = ()
    routes: tuple[RequestMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class InboundServer(_Config):
    """The policy of one inbound port (port 0 in `ProxyConfig.inbound_default`: any other).

    `default_policy` names where the fallback authorization came from: the default
    inbound policy (kind default) or the Server's `accessPolicy` (kind server); deny
    when SMI TrafficTargets govern the port. It is already part of `authorizations`.
    """

    name: str
    kind: ServerKind
    port: int
    protocol: Protocol
    authorizations: tuple[Authorization, ...]
    default_policy: DefaultPolicy


# --- outbound -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryBudget(_Config):
    """Retries allowed on top of original requests; Linkerd's defaults."""

    retry_ratio: float = 0.2
    min_retries_per_second: int = 10
    ttl_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class Route(_Config):
    """A named class of requests to a parent, with its timeout, retries and classes.

    Routes are evaluated in order; the first whose condition matches wins. `ports`
    limits the route to those parent ports; empty means all ports.
    """

    name: str
    condition: RequestMatch
    ports: tuple[int, ...] = ()
    timeout_ms: int | None = None
    is_retryable: bool = False
    response_classes: tuple[ResponseClass, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint(_Config):
    """One pod address; `identity` is set when the pod is meshed (mTLS expected)."""

    address: str
    port: int
    identity: str | None = None
    protocol_hint: ProtocolHint | None = None
    labels: tuple[tuple[str, str], ...] = _as_mapping()


def endpoint_order(address: str, port: int) -> tuple[int, int, str, int]:
    """The canonical order of endpoints: IPv4 before IPv6, numerically, then by port.
    The catalog sorts with it, and so does the proxy after applying endpoint deltas."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address, port)
    return (parsed.version, int(parsed), address, port)


@dataclass(frozen=True, slots=True)
class BackendPort(_Config):
    """The endpoints serving one parent port through a backend Service."""

    port: int
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class Backend(_Config):
    """A Service that receives `weight` parts of the parent's traffic."""

    name: str
    namespace: str
    authority: str
    weight: int
    ports: tuple[BackendPort, ...]


@dataclass(frozen=True, slots=True)
class ServicePort(_Config):
    """A port of the parent Service, and what it is known to speak."""

    port: int
    name: str = ""
    protocol: Protocol = Protocol.UNKNOWN


@dataclass(frozen=True, slots=True)
class OutboundService(_Config):
    """A parent: a Service a client may address, by cluster IP or by `authority`.

    Requests go to `backends` by weight. When `split_matches` is set, only requests
    matching one of them are split; the others go to `unmatched_backend` (the parent
    Service itself).
    """

    name: str
    namespace: str
    authority: str
    cluster_ips: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    routes: tuple[Route, ...]
    retry_budget: RetryBudget
    backends: tuple[Backend, ...]
    split_matches: tuple[RequestMatch, ...] = ()
    unmatched_backend: Backend | None = None


@dataclass(frozen=True, slots=True)
class ProxyConfig(_Config):
    """Everything one proxy needs: who it is, what it serves, what it may call."""

    identity: ProxyIdentity
    inbound: tuple[InboundServer, ...]
    inbound_default: InboundServer
    outbound: tuple[OutboundService, ...]
