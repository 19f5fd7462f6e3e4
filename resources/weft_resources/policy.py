"""Linkerd `policy.linkerd.io` inbound policy: Server, ServerAuthorization,
AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication (HTTPRoute: httproute.py).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from weft_api.config import DefaultPolicy
from weft_resources.base import Frozen, Kind, LabelSelector, Resource
from weft_resources.fields import Cidr, PortReference
from weft_resources.manifest import Manifest

POLICY_GROUP = "policy.linkerd.io"


def _identity_pattern(pattern: str) -> str:
    # `*` is any identity; `*.suffix` any identity ending so; no other wildcard.
    named_part = pattern.removeprefix("*.")
    if pattern == "*" or (named_part and "*" not in named_part):
        return pattern
    raise ValueError(f"{pattern!r} is not an identity, '*' or a '*.<suffix>' wildcard")


IdentityPattern = Annotated[str, AfterValidator(_identity_pattern)]


class _PolicyResource(Resource):
    API_GROUP: ClassVar[str] = POLICY_GROUP
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1",)


class ProxyProtocol(enum.StrEnum):
    UNKNOWN = "unknown"
    HTTP1 = "HTTP/1"
    HTTP2 = "HTTP/2"
    GRPC = "gRPC"
    OPAQUE = "opaque"
    TLS = "TLS"


class ServerSpec(Frozen):
    """`accessPolicy` exists from v1beta3; a Server without it denies by default."""

    pod_selector: LabelSelector
    port: PortReference
    proxy_protocol: ProxyProtocol = ProxyProtocol.UNKNOWN
    access_policy: DefaultPolicy = DefaultPolicy.DENY


class Server(_PolicyResource):
    KIND: ClassVar[Kind] = Kind.SERVER
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1beta2", "v1beta3")
    spec: ServerSpec


class NetworkSpec(Frozen):
    cidr: Cidr
    except_: tuple[Cidr, ...] = Field((), alias="except")


class ServiceAccountRef(Frozen):
    """`namespace` defaults to the referring object's."""

    name: str
    namespace: str | None = None


class ServerSelector(Frozen):
    name: str | None = None
    selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.name is None) == (self.selector is None):
            raise ValueError("set exactly one of name and selector")
        return self


class MeshTLSClient(Frozen):
    unauthenticated_tls: bool = Field(False, alias="unauthenticatedTLS")
    identities: tuple[IdentityPattern, ...] = ()
    service_accounts: tuple[ServiceAccountRef, ...] = ()

    @model_validator(mode="after")
    def _authorizes_someone(self) -> Self:
        named = bool(self.identities or self.service_accounts)
        if self.unauthenticated_tls and named:
            raise ValueError(
                "unauthenticatedTLS admits any client; drop identities and serviceAccounts"
            )
        if not self.unauthenticated_tls and not named:
            raise ValueError("set unauthenticatedTLS, identities or serviceAccounts")
        return self


class ClientSpec(Frozen):
    """No networks means every network."""

    networks: tuple[NetworkSpec, ...] = ()
    unauthenticated: bool = False
    mesh_tls: MeshTLSClient | None = Field(None, alias="meshTLS")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if self.unauthenticated == (self.mesh_tls is not None):
            raise ValueError("set exactly one of unauthenticated and meshTLS")
        return self


class ServerAuthorizationSpec(Frozen):
    server: ServerSelector
    client: ClientSpec


class ServerAuthorization(_PolicyResource):
    KIND: ClassVar[Kind] = Kind.SERVER_AUTHORIZATION
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1",)
    spec: ServerAuthorizationSpec


class PolicyTarget(Frozen):
    """What an AuthorizationPolicy protects, in its own namespace."""

    group: str | None = None
    kind: Literal["Server", "Namespace", "HTTPRoute"]
    name: str


class AuthenticationRef(Frozen):
    group: str | None = None
    kind: Literal["MeshTLSAuthentication", "NetworkAuthentication", "ServiceAccount"]
    name: str
    namespace: str | None = None


class AuthorizationPolicySpec(Frozen):
    """Every required authentication must hold; none at all admits anyone."""

    target_ref: PolicyTarget
    required_authentication_refs: tuple[AuthenticationRef, ...] = ()

    @field_validator("required_authentication_refs")
    @classmethod
    def _one_of_each(cls, refs: tuple[AuthenticationRef, ...]) -> tuple[AuthenticationRef, ...]:
        kinds = [ref.kind for ref in refs]
        if kinds.count("MeshTLSAuthentication") + kinds.count("ServiceAccount") > 1:
            raise ValueError("name at most one MeshTLSAuthentication or ServiceAccount")
        if kinds.count("NetworkAuthentication") > 1:
            raise ValueError("name at most one NetworkAuthentication")
        return refs


class AuthorizationPolicy(_PolicyResource):
    KIND: ClassVar[Kind] = Kind.AUTHORIZATION_POLICY
    spec: AuthorizationPolicySpec


class IdentityRef(Frozen):
    """A ServiceAccount, or a Namespace standing for all its ServiceAccounts."""

    group: str | None = None
    kind: Literal["ServiceAccount", "Namespace"]
    name: str
    namespace: str | None = None


class MeshTLSAuthenticationSpec(Frozen):
    identities: tuple[IdentityPattern, ...] = ()
    identity_refs: tuple[IdentityRef, ...] = ()

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if bool(self.identities) == bool(self.identity_refs):
            raise ValueError(
                "set exactly one of identities and identityRefs, with one item or more"
            )
        return self


class MeshTLSAuthentication(_PolicyResource):
    KIND: ClassVar[Kind] = Kind.MESH_TLS_AUTHENTICATION
    spec: MeshTLSAuthenticationSpec


class NetworkAuthenticationSpec(Frozen):
    networks: tuple[NetworkSpec, ...] = Field(min_length=1)


class NetworkAuthentication(_PolicyResource):
    KIND: ClassVar[Kind] = Kind.NETWORK_AUTHENTICATION
    spec: NetworkAuthenticationSpec


def parse_server(body: Mapping[str, Any]) -> Server:
    manifest = Manifest.read(body, Server)
    return Server(meta=manifest.meta, spec=manifest.part(ServerSpec))


def parse_server_authorization(body: Mapping[str, Any]) -> ServerAuthorization:
    manifest = Manifest.read(body, ServerAuthorization)
    return ServerAuthorization(meta=manifest.meta, spec=manifest.part(ServerAuthorizationSpec))


def parse_authorization_policy(body: Mapping[str, Any]) -> AuthorizationPolicy:
    manifest = Manifest.read(body, AuthorizationPolicy)
    return AuthorizationPolicy(meta=manifest.meta, spec=manifest.part(AuthorizationPolicySpec))


def parse_mesh_tls_authentication(body: Mapping[str, Any]) -> MeshTLSAuthentication:
    manifest = Manifest.read(body, MeshTLSAuthentication)
    spec = manifest.part(MeshTLSAuthenticationSpec)
    return MeshTLSAuthentication(meta=manifest.meta, spec=spec)


def parse_network_authentication(body: Mapping[str, Any]) -> NetworkAuthentication:
    manifest = Manifest.read(body, NetworkAuthentication)
    spec = manifest.part(NetworkAuthenticationSpec)
    return NetworkAuthentication(meta=manifest.meta, spec=spec)
