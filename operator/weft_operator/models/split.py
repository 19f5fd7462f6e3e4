"""SMI `split.smi-spec.io`: TrafficSplit, served at v1alpha1 to v1alpha4."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from weft_operator.models.base import Frozen, Kind, Resource
from weft_operator.models.fields import milli_weight
from weft_operator.models.manifest import Manifest

_QUANTITY_WEIGHTS = "quantity_weights"


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


def parse_traffic_split(body: Mapping[str, Any]) -> TrafficSplit:
    manifest = Manifest.read(body, TrafficSplit)
    context = {_QUANTITY_WEIGHTS: manifest.version == "v1alpha1"}
    return TrafficSplit(meta=manifest.meta, spec=manifest.part(TrafficSplitSpec, context=context))
