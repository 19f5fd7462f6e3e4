"""Convert one object of Weft's multi-version kinds to another served version.

Each kind converts through its storage version's layout (the hub): version A -> hub
-> version B, so n versions need 2n functions, not n².
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from weft_webhooks.conversion import httproutegroup, trafficsplit, traffictarget

Step = Callable[[dict[str, Any], str], dict[str, Any]]


class ConversionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Converter:
    versions: tuple[str, ...]
    to_hub: Step  # (object, the version it is at) -> the hub layout
    from_hub: Step  # (hub layout, the wanted version) -> that version


CONVERTERS: dict[tuple[str, str], Converter] = {
    ("split.smi-spec.io", "TrafficSplit"): Converter(
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        trafficsplit.to_hub,
        trafficsplit.from_hub,
    ),
    ("specs.smi-spec.io", "HTTPRouteGroup"): Converter(
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        httproutegroup.to_hub,
        httproutegroup.from_hub,
    ),
    ("access.smi-spec.io", "TrafficTarget"): Converter(
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        traffictarget.to_hub,
        traffictarget.from_hub,
    ),
}


def convert(obj: Mapping[str, Any], desired_api_version: str) -> dict[str, Any]:
    """A converted copy of `obj`; raises ConversionError naming what is not convertible."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    desired_group, _, desired_version = desired_api_version.rpartition("/")
    converter = CONVERTERS.get((group, str(obj.get("kind"))))
    if converter is None:
        raise ConversionError(f"{obj.get('apiVersion')} {obj.get('kind')} is not converted by Weft")
    if desired_group != group:
        raise ConversionError(f"cannot convert {group} objects to {desired_api_version}")
    for wanted in (version, desired_version):
        if wanted not in converter.versions:
            raise ConversionError(f"{group}/{wanted} {obj['kind']} is not a served version")
    converted = copy.deepcopy(dict(obj))
    if version != desired_version:
        converted = converter.from_hub(converter.to_hub(converted, version), desired_version)
    converted["apiVersion"] = desired_api_version
    return converted
