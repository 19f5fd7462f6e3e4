"""TrafficSplit: v1alpha1 quantity weights <-> integer weights; matches from v1alpha3.

Integer weights keep the quantities' proportions exactly: whole quantities ("90",
"10") stay as they are; if any is fractional ("500m"), every weight is counted in
thousandths and the `split.weft.dev/weight-unit: milli` annotation says so, so that
v1alpha1 reads "500m" again. Weights are relative, so a reader that ignores the
annotation still splits correctly. `spec.matches` (v1alpha3+) is stashed in an
annotation by v1alpha1 and v1alpha2.
"""

from __future__ import annotations

from typing import Any

from weft_resources.units import quantity_to_milli
from weft_webhooks.conversion.stash import pop_annotation, set_annotation, stash, unstash

WEIGHT_UNIT_ANNOTATION = "split.weft.dev/weight-unit"
MATCHES_ANNOTATION = "split.weft.dev/matches"
_MILLI = "milli"
_WITHOUT_MATCHES = ("v1alpha1", "v1alpha2")


def to_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """Any served version -> the v1alpha4 layout."""
    spec = obj.setdefault("spec", {})
    if version in _WITHOUT_MATCHES:
        matches = unstash(obj, MATCHES_ANNOTATION)
        if matches:
            spec["matches"] = matches
    if version == "v1alpha1":
        _quantities_to_integers(obj)
    return obj


def from_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """The v1alpha4 layout -> any served version."""
    spec = obj.setdefault("spec", {})
    if version in _WITHOUT_MATCHES and spec.get("matches"):
        stash(obj, MATCHES_ANNOTATION, spec.pop("matches"))
    elif version in _WITHOUT_MATCHES:
        spec.pop("matches", None)
    if version == "v1alpha1":
        _integers_to_quantities(obj)
    return obj


def _quantities_to_integers(obj: dict[str, Any]) -> None:
    backends = obj["spec"].get("backends") or []
    try:
        milli = [quantity_to_milli(backend["weight"]) for backend in backends]
    except (KeyError, TypeError, ValueError):
        return  # not a valid split: kept as written, for validation to explain
    pop_annotation(obj, WEIGHT_UNIT_ANNOTATION)
    whole = all(value % 1000 == 0 for value in milli)
    for backend, value in zip(backends, milli, strict=True):
        backend["weight"] = value // 1000 if whole else value
    if not whole:
        set_annotation(obj, WEIGHT_UNIT_ANNOTATION, _MILLI)


def _integers_to_quantities(obj: dict[str, Any]) -> None:
    in_milli = pop_annotation(obj, WEIGHT_UNIT_ANNOTATION) == _MILLI
    for backend in obj["spec"].get("backends") or []:
        weight = backend.get("weight")
        if isinstance(weight, int) and not isinstance(weight, bool):
            backend["weight"] = _milli_quantity(weight) if in_milli else str(weight)


def _milli_quantity(milli: int) -> str:
    """Kubernetes' canonical form: "500m", and "2" rather than "2000m"."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
