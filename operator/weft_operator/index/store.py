"""MeshIndex: the operator's in-memory view of every watched object, by namespace."""

from __future__ import annotations

from collections import defaultdict
from typing import TypeVar

from weft_operator.index.references import references_of
from weft_operator.models.base import Kind, ObjectKey, Resource

R = TypeVar("R", bound=Resource)


class MeshIndex:
    """Objects by kind, namespace and name, plus who refers to whom.

    Pure and synchronous: the handlers apply what they parsed and delete what
    disappeared; the catalog and the reference checks read.
    """

    def __init__(self) -> None:
        self._objects: defaultdict[Kind, defaultdict[str, dict[str, Resource]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        # target -> the objects whose references name it, present or not
        self._referrers: defaultdict[ObjectKey, set[ObjectKey]] = defaultdict(set)

    def apply(self, resource: Resource) -> bool:
        """Add or replace an object; False when it was already there unchanged."""
        namespaced = self._objects[resource.KIND][resource.namespace]
        previous = namespaced.get(resource.name)
        if previous == resource:
            return False
        if previous is not None:
            self._forget_references(previous)
        namespaced[resource.name] = resource
        for reference in references_of(resource):
            self._referrers[reference.target].add(resource.key)
        return True

    def delete(self, kind: Kind, namespace: str, name: str) -> Resource | None:
        """Remove an object; returns what was there, if anything."""
        namespaced = self._objects[kind][namespace]
        removed = namespaced.pop(name, None)
        if removed is not None:
            self._forget_references(removed)
        return removed

    def get(self, model: type[R], namespace: str, name: str) -> R | None:
        found = self._objects[model.KIND][namespace].get(name)
        return found if isinstance(found, model) else None

    def contains(self, key: ObjectKey) -> bool:
        return key.name in self._objects[key.kind][key.namespace]

    def objects(self, model: type[R], namespace: str | None = None) -> list[R]:
        """Objects of one kind, in one namespace or all, sorted by namespace and name."""
        by_namespace = self._objects[model.KIND]
        namespaces = [namespace] if namespace is not None else sorted(by_namespace)
        return [
            found
            for ns in namespaces
            for _, found in sorted(by_namespace[ns].items())
            if isinstance(found, model)
        ]

    def referrers(self, target: ObjectKey) -> list[ObjectKey]:
        """Objects that name `target`, sorted; `target` need not exist."""
        return sorted(self._referrers.get(target, ()))

    def _forget_references(self, resource: Resource) -> None:
        for reference in references_of(resource):
            referrers = self._referrers.get(reference.target)
            if referrers is not None:
                referrers.discard(resource.key)
                if not referrers:
                    del self._referrers[reference.target]
