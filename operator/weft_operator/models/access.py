"""SMI `access.smi-spec.io`: TrafficTarget, served at v1alpha1 to v1alpha4.

v1alpha4 subjects may also be IdentityBindings, which Weft does not implement yet: a
target naming one is invalid, with the reason, rather than silently allowing nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from weft_operator.models.base import Frozen, Kind, Resource
from weft_operator.models.fields import PortNumber
from weft_operator.models.manifest import Manifest


class Subject(Frozen):
    """A ServiceAccount; `namespace` defaults to the TrafficTarget's."""

    kind: Literal["ServiceAccount"]
    group: str = ""  # v1alpha4; a ServiceAccount's is the core group, ""
    name: str
    namespace: str | None = None
    port: PortNumber | None = None  # destination only, before v1alpha3


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


def parse_traffic_target(body: Mapping[str, Any]) -> TrafficTarget:
    manifest = Manifest.read(body, TrafficTarget)
    # v1alpha1 keeps its fields at the top level. Without a conversion webhook such
    # objects come back at any apiVersion unchanged, so read the shape.
    if "spec" in body or "destination" not in body:
        return TrafficTarget(meta=manifest.meta, spec=manifest.part(TrafficTargetSpec))
    old = manifest.part(_TrafficTargetV1alpha1, at="")
    spec = TrafficTargetSpec(destination=old.destination, rules=old.rules, sources=old.sources)
    return TrafficTarget(meta=manifest.meta, spec=spec)
