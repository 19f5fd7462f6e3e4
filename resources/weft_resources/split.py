"""SMI `split.smi-spec.io`: TrafficSplit, served at v1alpha1 to v1alpha4."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from weft_resources.base import Frozen, Kind, Resource
from weft_resources.fields import milli_weight
from weft_resources.manifest import Manifest

_QUANTITY_WEIGHTS = "quantity_weights"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# `spec.service` "is the FQDN that applications will use" (SMI): OSM's examples write
# `bookstore.bookstore`, others `bookstore.bookstore.svc.cluster.local`.
_DOTTED_SERVICE = re.compile(
    rf"(?P<name>{_DNS_LABEL})\.(?P<namespace>{_DNS_LABEL})(\.svc(\.(?P<domain>.+))?)?"
)


@dataclass(frozen=True, slots=True)
class ServiceName:
    """A Service as a split names it: `name`, `name.ns`, `name.ns.svc[.<domain>]`."""

    name: str
    namespace: str | None = None
    cluster_domain: str | None = None


def service_name(written: str) -> ServiceName | None:
    """The Service `written` names; None for a dotted name of no such shape. A name
    without a dot is taken as it is (a missing Service, not an invalid split)."""
    if "." not in written:
        return ServiceName(written)
    found = _DOTTED_SERVICE.fullmatch(written)
    if found is None:
        return None
    return ServiceName(found["name"], found["namespace"], found["domain"])


class SplitMatch(Frozen):
    """v1alpha3+: a route group whose requests are split; others go to the root."""

    api_group: str | None = None
    kind: Literal["HTTPRouteGroup"]
    name: str


class SplitBackend(Frozen):
    service: str
    weight: int

    @field_validator("weight", mode="before")
    @classmethod
    def _normalise_weight(cls, value: Any, info: ValidationInfo) -> int:
        # v1alpha1 weights are quantities ("500m", "1" = 1000m), kept in thousandths.
        # Later versions hold plain integers, kept as given. A string at a later
        # version was written at v1alpha1 and read back unconverted (no conversion
        # webhook yet), so it is a quantity too. Go clients always write quantities
        # as strings, so an integer read back at a later version is rare, and weights
        # are relative: proportions hold as long as a split does not mix the forms.
        written_as_quantity = bool(info.context and info.context.get(_QUANTITY_WEIGHTS))
        if isinstance(value, int) and not isinstance(value, bool) and not written_as_quantity:
            if value < 0:
                raise ValueError(f"{value} is negative; a weight must be 0 or more")
            return value
        return milli_weight(value)


class TrafficSplitSpec(Frozen):
    service: str
    backends: tuple[SplitBackend, ...] = Field(min_length=1)
    matches: tuple[SplitMatch, ...] = ()


class TrafficSplit(Resource):
    KIND: ClassVar[Kind] = Kind.TRAFFIC_SPLIT
    API_GROUP: ClassVar[str] = "split.smi-spec.io"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    spec: TrafficSplitSpec
    # (field, cluster domain) of each Service written as a full DNS name; the spec holds
    # plain names. The validator checks the domains against the cluster's.
    written_domains: tuple[tuple[str, str], ...] = ()


def parse_traffic_split(body: Mapping[str, Any]) -> TrafficSplit:
    manifest = Manifest.read(body, TrafficSplit)
    context = {_QUANTITY_WEIGHTS: manifest.version == "v1alpha1"}
    spec = manifest.part(TrafficSplitSpec, context=context)
    domains: list[tuple[str, str]] = []

    def resolve(written: str, field: str) -> str:
        named = service_name(written)
        if named is None:
            raise manifest.invalid(
                f"{field}: {written!r} is not a Service name; write the Service's name "
                "(books), or <name>.<namespace> or <name>.<namespace>.svc.<cluster-domain> "
                "(books.shop.svc.cluster.local)"
            )
        namespace = manifest.meta.namespace
        if named.namespace is not None and namespace and named.namespace != namespace:
            raise manifest.invalid(
                f"{field}: {written!r} names a Service in namespace {named.namespace!r}, "
                f"but a TrafficSplit splits between Services of its own namespace "
                f"({namespace!r}); create the split in {named.namespace!r}"
            )
        if named.cluster_domain is not None:
            domains.append((field, named.cluster_domain))
        return named.name

    root = resolve(spec.service, "spec.service")
    backends = tuple(
        backend.model_copy(
            update={"service": resolve(backend.service, f"spec.backends[{position}].service")}
        )
        for position, backend in enumerate(spec.backends)
    )
    spec = spec.model_copy(update={"service": root, "backends": backends})
    return TrafficSplit(meta=manifest.meta, spec=spec, written_domains=tuple(domains))
