"""Conversion: an object written at any version reads back correctly at every other."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from weft_resources import TrafficSplit, TrafficTarget, parse_resource
from weft_webhooks.conversion import CONVERTERS, ConversionError, convert
from weft_webhooks.conversion.trafficsplit import MATCHES_ANNOTATION, WEIGHT_UNIT_ANNOTATION
from weft_webhooks.conversion.traffictarget import NAMED_PORT_ANNOTATION, UDP_RULES_ANNOTATION

EXAMPLES = Path(__file__).parents[2] / "crds" / "examples"


def served_versions(obj: dict[str, Any]) -> tuple[str, ...]:
    group = obj["apiVersion"].rpartition("/")[0]
    return tuple(f"{group}/{v}" for v in CONVERTERS[(group, obj["kind"])].versions)


def examples() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            group = str((body or {}).get("apiVersion", "")).rpartition("/")[0]
            if body and (group, body["kind"]) in CONVERTERS:
                found.append(body)
    return found


EXAMPLE_OBJECTS = examples()
UDP_TARGET = {
    "apiVersion": "access.smi-spec.io/v1alpha3",
    "kind": "TrafficTarget",
    "metadata": {"name": "dns", "namespace": "shop"},
    "spec": {
        "destination": {"kind": "ServiceAccount", "name": "dns"},
        "rules": [{"kind": "TCPRoute", "name": "tcp"}, {"kind": "UDPRoute", "name": "udp"}],
        "sources": [{"kind": "ServiceAccount", "name": "web"}],
    },
}
MATCHING_SPLIT = {
    "apiVersion": "split.smi-spec.io/v1alpha4",
    "kind": "TrafficSplit",
    "metadata": {"name": "books", "namespace": "shop", "annotations": {"team": "books"}},
    "spec": {
        "service": "books",
        "matches": [{"kind": "HTTPRouteGroup", "name": "beta-users"}],
        "backends": [{"service": "books-v1", "weight": 0}, {"service": "books-v2", "weight": 1}],
    },
}
OBJECTS = [*EXAMPLE_OBJECTS, UDP_TARGET, MATCHING_SPLIT]
IDS = [f"{o['kind']}-{o['apiVersion'].rpartition('/')[2]}-{o['metadata']['name']}" for o in OBJECTS]


def test_the_examples_cover_every_served_version() -> None:
    written = {(o["kind"], o["apiVersion"]) for o in EXAMPLE_OBJECTS}
    served = {(o["kind"], v) for o in EXAMPLE_OBJECTS for v in served_versions(o)}
    assert written == served


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server keeps: the object converted to the storage (last) version."""
    return convert(obj, served_versions(obj)[-1])


@pytest.mark.parametrize("obj", OBJECTS, ids=IDS)
def test_reading_through_any_version_gives_what_reading_directly_gives(obj: dict[str, Any]) -> None:
    versions = served_versions(obj)
    kept = stored(obj)
    for via, target in itertools.product(versions, versions):
        assert convert(convert(kept, via), target) == convert(kept, target), (via, target)


@pytest.mark.parametrize("obj", OBJECTS, ids=IDS)
def test_an_object_read_and_written_back_at_any_version_is_stored_unchanged(
    obj: dict[str, Any],
) -> None:
    kept = stored(obj)
    for via in served_versions(obj):
        assert stored(convert(kept, via)) == kept, via
    # Read at the version it was written: the same resource (values may be canonical:
    # a weight written "1000m" reads "1").
    assert parse_resource(convert(kept, obj["apiVersion"])) == parse_resource(obj)


@pytest.mark.parametrize("obj", OBJECTS, ids=IDS)
def test_every_version_parses_to_the_same_mesh_resource(obj: dict[str, Any]) -> None:
    original = parse_resource(obj)
    for version in served_versions(obj):
        read = parse_resource(convert(obj, version))
        if isinstance(original, TrafficSplit):
            assert isinstance(read, TrafficSplit)
            assert proportions(read) == proportions(original), version
            assert read.spec.service == original.spec.service
        elif isinstance(original, TrafficTarget):
            assert isinstance(read, TrafficTarget)
            assert read.spec.destination.name == original.spec.destination.name
            assert read.spec.sources == original.spec.sources
        else:
            assert read.model_dump() == original.model_dump(), version


def proportions(split: TrafficSplit) -> list[Fraction]:
    total = sum(backend.weight for backend in split.spec.backends)
    return [Fraction(backend.weight, total or 1) for backend in split.spec.backends]


def flagger_split(*weights: Any) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": f"podinfo-{name}", "weight": weight}
                for name, weight in zip(("primary", "canary"), weights, strict=False)
            ],
        },
    }


def weights(obj: dict[str, Any]) -> list[Any]:
    return [backend["weight"] for backend in obj["spec"]["backends"]]


def test_fractional_quantities_become_thousandths_and_come_back() -> None:
    stored = convert(flagger_split("900m", "100m"), "split.smi-spec.io/v1alpha4")
    assert weights(stored) == [900, 100]
    assert stored["metadata"]["annotations"] == {WEIGHT_UNIT_ANNOTATION: "milli"}
    back = convert(stored, "split.smi-spec.io/v1alpha1")
    assert weights(back) == ["900m", "100m"]
    assert "annotations" not in back["metadata"]


def test_whole_quantities_stay_whole_numbers() -> None:
    stored = convert(flagger_split("90", 10), "split.smi-spec.io/v1alpha2")
    assert weights(stored) == [90, 10]
    assert "annotations" not in stored["metadata"]
    assert weights(convert(stored, "split.smi-spec.io/v1alpha1")) == ["90", "10"]


def test_integer_weights_updated_at_a_newer_version_keep_their_unit() -> None:
    # Argo Rollouts at v1alpha2 rewrites the weights of a split Flagger wrote at v1alpha1.
    stored = convert(flagger_split("500m", "500m"), "split.smi-spec.io/v1alpha4")
    at_v1alpha2 = convert(stored, "split.smi-spec.io/v1alpha2")
    for backend, weight in zip(at_v1alpha2["spec"]["backends"], (250, 750), strict=True):
        backend["weight"] = weight
    assert weights(convert(at_v1alpha2, "split.smi-spec.io/v1alpha1")) == ["250m", "750m"]


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=5))
def test_quantity_weights_keep_their_exact_value_and_proportions(milli: list[int]) -> None:
    written = flagger_split()
    written["spec"]["backends"] = [
        {"service": f"b{i}", "weight": f"{m}m"} for i, m in enumerate(milli)
    ]
    stored = convert(written, "split.smi-spec.io/v1alpha4")
    integers = weights(stored)
    assert all(isinstance(w, int) for w in integers)
    assert [Fraction(w, sum(integers) or 1) for w in integers] == [
        Fraction(m, sum(milli) or 1) for m in milli
    ]
    read_back = weights(convert(stored, "split.smi-spec.io/v1alpha1"))
    assert [parse_resource_weight(w) for w in read_back] == milli


def parse_resource_weight(quantity: str) -> int:
    split = parse_resource({**flagger_split(quantity)})
    assert isinstance(split, TrafficSplit)
    return split.spec.backends[0].weight


def test_matches_survive_versions_without_them() -> None:
    at_v1alpha2 = convert(MATCHING_SPLIT, "split.smi-spec.io/v1alpha2")
    assert "matches" not in at_v1alpha2["spec"]
    assert MATCHES_ANNOTATION in at_v1alpha2["metadata"]["annotations"]
    assert at_v1alpha2["metadata"]["annotations"]["team"] == "books"
    assert convert(at_v1alpha2, "split.smi-spec.io/v1alpha4") == MATCHING_SPLIT


def test_traffic_target_v1alpha1_layout_and_string_port() -> None:
    v1alpha1 = next(o for o in EXAMPLE_OBJECTS if o["apiVersion"] == "access.smi-spec.io/v1alpha1")
    stored = convert(v1alpha1, "access.smi-spec.io/v1alpha3")
    assert set(stored) == {"apiVersion", "kind", "metadata", "spec"}
    assert stored["spec"]["destination"]["port"] == 8080
    assert stored["spec"]["rules"] == v1alpha1["specs"]
    assert convert(stored, "access.smi-spec.io/v1alpha1")["destination"]["port"] == "8080"


def test_a_named_port_written_at_v1alpha1_is_kept_for_v1alpha1() -> None:
    v1alpha1 = next(o for o in EXAMPLE_OBJECTS if o["apiVersion"] == "access.smi-spec.io/v1alpha1")
    named = {**v1alpha1, "destination": {**v1alpha1["destination"], "port": "http"}}
    stored = convert(named, "access.smi-spec.io/v1alpha3")
    assert "port" not in stored["spec"]["destination"]
    assert stored["metadata"]["annotations"] == {NAMED_PORT_ANNOTATION: '"http"'}
    assert convert(stored, "access.smi-spec.io/v1alpha1") == named


def test_udp_rules_are_kept_by_versions_that_cannot_name_them() -> None:
    at_v1alpha2 = convert(UDP_TARGET, "access.smi-spec.io/v1alpha2")
    assert at_v1alpha2["spec"]["rules"] == [{"kind": "TCPRoute", "name": "tcp"}]
    assert UDP_RULES_ANNOTATION in at_v1alpha2["metadata"]["annotations"]
    assert convert(at_v1alpha2, "access.smi-spec.io/v1alpha3") == UDP_TARGET


def test_http_route_group_matches_move_between_top_level_and_spec() -> None:
    v1alpha1 = next(o for o in EXAMPLE_OBJECTS if o["apiVersion"] == "specs.smi-spec.io/v1alpha1")
    stored = convert(v1alpha1, "specs.smi-spec.io/v1alpha4")
    assert "matches" not in stored
    assert stored["spec"]["matches"] == v1alpha1["matches"]


def test_objects_stored_before_conversion_existed_are_read_by_shape() -> None:
    # Written at v1alpha1 while the CRD converted with strategy None: stored as written.
    legacy = next(o for o in EXAMPLE_OBJECTS if o["apiVersion"] == "specs.smi-spec.io/v1alpha1")
    stored_as_written = {**legacy, "apiVersion": "specs.smi-spec.io/v1alpha4"}
    read = convert(stored_as_written, "specs.smi-spec.io/v1alpha3")
    assert read["spec"]["matches"] == legacy["matches"]


@pytest.mark.parametrize(
    ("obj", "desired", "message"),
    [
        (
            {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server"},
            "policy.linkerd.io/v1beta1",
            "is not converted by Weft",
        ),
        (MATCHING_SPLIT, "specs.smi-spec.io/v1alpha4", "cannot convert split.smi-spec.io"),
        (MATCHING_SPLIT, "split.smi-spec.io/v1beta1", "v1beta1 TrafficSplit is not a served"),
    ],
)
def test_what_cannot_be_converted_is_refused(
    obj: dict[str, Any], desired: str, message: str
) -> None:
    with pytest.raises(ConversionError, match=message):
        convert(obj, desired)


def test_the_input_is_not_modified() -> None:
    written = flagger_split("500m", "1500m")
    convert(written, "split.smi-spec.io/v1alpha4")
    assert written == flagger_split("500m", "1500m")
