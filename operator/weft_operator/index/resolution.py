"""Reference resolution for status: what an object names that does not exist, and
which objects to re-check when an object appears or disappears."""

from __future__ import annotations

from dataclasses import dataclass

from weft_operator.index.references import Reference, references_of
from weft_operator.index.store import MeshIndex
from weft_resources.base import Kind, ObjectKey, Resource
from weft_resources.specs import HTTPRouteGroup


@dataclass(frozen=True, slots=True)
class MissingReference:
    """One unresolved reference; `str()` is the phrase for a ResolvedRefs message."""

    field: str
    target: ObjectKey
    match_name: str | None = None

    def __str__(self) -> str:
        if self.match_name is not None:
            return f"match {self.match_name!r} of {self.target} ({self.field})"
        return f"{self.target} ({self.field})"


def missing_references(index: MeshIndex, resource: Resource) -> tuple[MissingReference, ...]:
    """References of `resource` naming no existing object (or no existing match)."""
    missing: list[MissingReference] = []
    for reference in references_of(resource):
        if not index.contains(reference.target):
            missing.append(MissingReference(reference.field, reference.target))
        else:
            missing.extend(_missing_matches(index, reference))
    return tuple(missing)


def dependents(index: MeshIndex, key: ObjectKey) -> list[ObjectKey]:
    """Objects whose resolution may change now that `key` appeared, changed or went."""
    return index.referrers(key)


def _missing_matches(index: MeshIndex, reference: Reference) -> list[MissingReference]:
    if reference.target.kind != Kind.HTTP_ROUTE_GROUP or not reference.match_names:
        return []
    group = index.get(HTTPRouteGroup, reference.target.namespace, reference.target.name)
    assert group is not None  # the caller checked that the target exists
    field = f"{reference.field}.matches"
    return [
        MissingReference(field, reference.target, name)
        for name in reference.match_names
        if group.spec.named(name) is None
    ]
