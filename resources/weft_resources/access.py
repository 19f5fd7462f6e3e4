"""SMI `access.smi-spec.io`: TrafficTarget, served at v1alpha1 to v1alpha4, and
IdentityBinding (v1alpha4), which a v1alpha4 subject may name instead of a
ServiceAccount. What a binding selects or admits is the catalog's (`authorizations`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from weft_resources.base import Frozen, Kind, LabelSelector, Resource
from weft_resources.fields import PortNumber
from weft_resources.manifest import Manifest


class Subject(Frozen):
    """A ServiceAccount or (v1alpha4) an IdentityBinding; `namespace` defaults to the
    TrafficTarget's."""

    kind: Literal["ServiceAccount", "IdentityBinding"]
    group: str = ""  # v1alpha4: "" for a ServiceAccount, access.smi-spec.io for a binding
    name: str
    namespace: str | None = None
    port: PortNumber | None = None  # destination only, before v1alpha3

    @model_validator(mode="after")
    def _group_fits_kind(self) -> Self:
        expected = IdentityBinding.API_GROUP if self.kind == "IdentityBinding" else ""
        if self.group not in ("", expected):
            raise ValueError(f"a {self.kind} is in group {expected or 'core (empty)'!r}")
        return self


class TrafficTargetRule(Frozen):
    """A route resource whose traffic is allowed; `matches` narrows an HTTPRouteGroup."""

    kind: Literal["HTTPRouteGroup", "TCPRoute", "UDPRoute"]
    name: str
    namespace: str | None = None  # v1alpha1 only
    matches: tuple[str, ...] = ()


class TrafficTargetSpec(Frozen):
    destination: Subject
    rules: tuple[TrafficTargetRule, ...] = ()
    sources: tuple[Subject, ...] = ()


class _TrafficTargetV1alpha1(TrafficTargetSpec):
    """v1alpha1 keeps these fields at the top level and calls the rules `specs`."""

    rules: tuple[TrafficTargetRule, ...] = Field((), alias="specs")


class TrafficTarget(Resource):
    KIND: ClassVar[Kind] = Kind.TRAFFIC_TARGET
    API_GROUP: ClassVar[str] = "access.smi-spec.io"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    spec: TrafficTargetSpec

    @property
    def destination_namespace(self) -> str:
        return self.spec.destination.namespace or self.namespace


class PodLabelSelector(LabelSelector):
    name: str = ""  # a label for the selector, with no meaning to policy


class IdentitySchemes(Frozen):
    """Ways of naming a workload's identity, ORed together."""

    pod_label_selectors: tuple[PodLabelSelector, ...] = ()
    spiffe_identities: tuple[str, ...] = ()
    service_account: str = ""  # in the binding's namespace

    @model_validator(mode="after")
    def _one_way_or_more(self) -> Self:
        if self.service_account and self.pod_label_selectors:
            raise ValueError("serviceAccount and podLabelSelectors exclude each other")
        if not (self.service_account or self.pod_label_selectors or self.spiffe_identities):
            raise ValueError("name podLabelSelectors, spiffeIdentities or serviceAccount")
        return self


class IdentityBindingSpec(Frozen):
    schemes: IdentitySchemes


class IdentityBinding(Resource):
    """The identities of workloads of its own namespace, and only of those."""

    KIND: ClassVar[Kind] = Kind.IDENTITY_BINDING
    API_GROUP: ClassVar[str] = "access.smi-spec.io"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha4",)
    spec: IdentityBindingSpec


def parse_identity_binding(body: Mapping[str, Any]) -> IdentityBinding:
    manifest = Manifest.read(body, IdentityBinding)
    return IdentityBinding(meta=manifest.meta, spec=manifest.part(IdentityBindingSpec))


def parse_traffic_target(body: Mapping[str, Any]) -> TrafficTarget:
    manifest = Manifest.read(body, TrafficTarget)
    # v1alpha1 keeps its fields at the top level. Without a conversion webhook such
    # objects come back at any apiVersion unchanged, so read the shape.
    if "spec" in body or "destination" not in body:
        return TrafficTarget(meta=manifest.meta, spec=manifest.part(TrafficTargetSpec))
    old = manifest.part(_TrafficTargetV1alpha1, at="")
    spec = TrafficTargetSpec(destination=old.destination, rules=old.rules, sources=old.sources)
    return TrafficTarget(meta=manifest.meta, spec=spec)
