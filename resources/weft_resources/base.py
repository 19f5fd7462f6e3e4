"""What every kind shares: model settings, identity of objects, metadata, selectors."""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class Kind(enum.StrEnum):
    """Every kind the operator watches, spelled as in manifests."""

    NAMESPACE = "Namespace"
    SERVICE_ACCOUNT = "ServiceAccount"
    SERVICE = "Service"
    POD = "Pod"
    ENDPOINT_SLICE = "EndpointSlice"
    TRAFFIC_SPLIT = "TrafficSplit"
    HTTP_ROUTE_GROUP = "HTTPRouteGroup"
    TCP_ROUTE = "TCPRoute"
    UDP_ROUTE = "UDPRoute"
    TRAFFIC_TARGET = "TrafficTarget"
    IDENTITY_BINDING = "IdentityBinding"
    SERVICE_PROFILE = "ServiceProfile"
    SERVER = "Server"
    SERVER_AUTHORIZATION = "ServerAuthorization"
    AUTHORIZATION_POLICY = "AuthorizationPolicy"
    MESH_TLS_AUTHENTICATION = "MeshTLSAuthentication"
    NETWORK_AUTHENTICATION = "NetworkAuthentication"
    HTTP_ROUTE = "HTTPRoute"


class ObjectKey(NamedTuple):
    """Names one object; Namespaces have an empty `namespace`."""

    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        if not self.namespace:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"


class Frozen(BaseModel):
    """Immutable, camelCase on the wire, unknown fields ignored (as upstream does).

    An explicit `null` reads as an absent field, as the API server treats it.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class OwnerReference(Frozen):
    kind: str
    name: str
    controller: bool = False


class ObjectMeta(Frozen):
    name: str
    namespace: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    owner_references: tuple[OwnerReference, ...] = ()


class LabelSelectorRequirement(Frozen):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        needs_values = self.operator in ("In", "NotIn")
        if needs_values and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if not needs_values and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(Frozen):
    """A Kubernetes label selector; the empty selector selects everything."""

    match_labels: dict[str, str] = {}
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()


class Resource(Frozen):
    """The internal form of one object, whatever apiVersion it was read at."""

    KIND: ClassVar[Kind]
    API_GROUP: ClassVar[str]
    SERVED_VERSIONS: ClassVar[tuple[str, ...]]

    meta: ObjectMeta

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.meta.namespace, self.meta.name)

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name
