"""HTTPRouteGroup: `matches` at the top level (v1alpha1, v1alpha2) <-> under `spec` (v1alpha3+).

The matches themselves have the same fields in every version.
"""

from __future__ import annotations

from typing import Any

_TOP_LEVEL = ("v1alpha1", "v1alpha2")


def to_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """Any served version -> the v1alpha4 layout (`spec.matches`).

    Objects stored before conversion existed may hold the old layout at any version.
    """
    top_level = obj.pop("matches", None)
    if top_level is not None and "matches" not in (obj.get("spec") or {}):
        obj.setdefault("spec", {})["matches"] = top_level
    return obj


def from_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    if version in _TOP_LEVEL:
        spec = obj.pop("spec", None) or {}
        if "matches" in spec:
            obj["matches"] = spec["matches"]
    return obj
