"""Inbound authorization: whether a server admits a client, and which authorization did.

A server admits a client when any of its authorizations does (the first, in config order,
names the permit in metrics). An authorization admits a client whose address is in one of
its networks (and in none of that network's exceptions) and who proves what it requires:
- unauthenticated: nothing;
- tls_unauthenticated: a TLS connection the proxy terminated, with or without identity;
- tls_authenticated: that, with a client identity equal to one listed, or under a
  `*.<suffix>` wildcard (at least one more label), or any identity for `*`.
An authorization limited to routes admits only HTTP requests matching one of them: it
never admits an opaque connection, and an HTTP connection is checked request by request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from weft_api.config import (
    Authentication,
    Authorization,
    InboundServer,
    Network,
    ProxyConfig,
)
from weft_proxy.policies.request_match import RequestHead, compile_any_of

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Client:
    """Who is calling: `tls` when the proxy terminated the client's (mesh) TLS, and then
    `identity`, the name its certificate proves, if it sent one."""

    address: IPAddress
    tls: bool = False
    identity: str | None = None

    @classmethod
    def of(cls, address: str, tls: bool = False, identity: str | None = None) -> Client:
        """From the peer address a socket reports; an IPv4 client of a dual-stack listener
        (`::ffff:10.0.0.1`) counts as its IPv4 address, which policies name."""
        parsed = ipaddress.ip_address(address)
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        return cls(parsed, tls, identity)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision, with what metrics label it by: `srv_kind`/`srv_name` from `server`,
    `authz_kind`/`authz_name` from `authorization` (None when denied)."""

    server: InboundServer
    authorization: Authorization | None

    @property
    def allowed(self) -> bool:
        return self.authorization is not None


class _NetworkMatch:
    __slots__ = ("_excepted", "_network")

    def __init__(self, network: Network) -> None:
        self._network: IPNetwork = ipaddress.ip_network(network.cidr, strict=False)
        self._excepted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in network.except_
        )

    def contains(self, address: IPAddress) -> bool:
        # An address of the other IP version is in neither (`in` answers False).
        return address in self._network and not any(address in net for net in self._excepted)


class _IdentityMatch:
    __slots__ = ("_any", "_exact", "_suffixes")

    def __init__(self, identities: Iterable[str]) -> None:
        names = [identity.lower() for identity in identities]
        self._any = "*" in names
        self._exact = frozenset(name for name in names if not name.startswith("*"))
        # "*.ns.serviceaccount.identity.cluster.local" keeps ".ns.serviceaccount...":
        # a match needs a label before the dot, as Linkerd's suffixes do.
        self._suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def contains(self, identity: str) -> bool:
        identity = identity.lower()
        return self._any or identity in self._exact or identity.endswith(self._suffixes)


# Python 3.11's EnumType has a __getattr__, which makes each `Authentication.X` (a match
# case's value too) a slow lookup: a request's authorization compares with these.
_UNAUTHENTICATED = Authentication.UNAUTHENTICATED
_TLS_UNAUTHENTICATED = Authentication.TLS_UNAUTHENTICATED


class _CompiledAuthorization:
    __slots__ = ("_authentication", "_identities", "_networks", "_routes", "authorization")

    def __init__(self, authorization: Authorization) -> None:
        self.authorization = authorization
        self._networks = tuple(map(_NetworkMatch, authorization.networks))
        self._authentication = authorization.authentication
        self._identities = _IdentityMatch(authorization.identities)
        self._routes = compile_any_of(authorization.routes) if authorization.routes else None

    @property
    def matches_requests(self) -> bool:
        return self._routes is not None

    def admits(self, client: Client, request: RequestHead | None) -> bool:
        if not any(network.contains(client.address) for network in self._networks):
            return False
        if self._routes is not None and (request is None or not self._routes(request)):
            return False
        authentication = self._authentication
        if authentication == _UNAUTHENTICATED:
            return True
        if authentication == _TLS_UNAUTHENTICATED:
            return client.tls
        return (
            client.tls
            and client.identity is not None
            and self._identities.contains(client.identity)
        )


class ServerPolicy:
    """One inbound server's authorizations, compiled once per config."""

    __slots__ = ("_authorizations", "matches_requests", "server")

    def __init__(self, server: InboundServer) -> None:
        self.server = server
        self._authorizations = tuple(map(_CompiledAuthorization, server.authorizations))
        # Whether an HTTP request's head is looked at (an authorization limited to
        # routes); if not, `authorize` may be given None for it and answers the same.
        self.matches_requests = any(a.matches_requests for a in self._authorizations)

    def authorize(self, client: Client, request: RequestHead | None = None) -> Verdict:
        """For an HTTP `request`, or for a connection (None) that is not HTTP."""
        for compiled in self._authorizations:
            if compiled.admits(client, request):
                return Verdict(self.server, compiled.authorization)
        return Verdict(self.server, None)


class InboundPolicy:
    """The servers of every inbound port of a proxy; a port without one gets the default."""

    __slots__ = ("_by_port", "default")

    def __init__(self, servers: Iterable[InboundServer], default: InboundServer) -> None:
        self._by_port = {server.port: ServerPolicy(server) for server in servers}
        self.default = ServerPolicy(default)

    @classmethod
    def of(cls, config: ProxyConfig) -> InboundPolicy:
        return cls(config.inbound, config.inbound_default)

    def server_for(self, port: int) -> ServerPolicy:
        return self._by_port.get(port, self.default)
