"""MeshIndex: the operator's in-memory view of every watched object, by namespace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from weft_operator.index.references import references_of
from weft_resources.base import Kind, ObjectKey, Resource

R = TypeVar("R", bound=Resource)


@dataclass
class Reads:
    """What one computation read from the index, so that its result can be recomputed
    when (and only when) one of those objects changes.

    `used`: objects it looked up, found or not, and objects lookups handed it;
    `listed`: (kind, namespace) listings it scanned (namespace None: all of them), which
    any new object of that kind and namespace may change.
    """

    used: set[ObjectKey] = field(default_factory=set)
    listed: set[tuple[Kind, str | None]] = field(default_factory=set)


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
        self._reads: Reads | None = None
        # (kind, namespace) -> its objects sorted by name; dropped when one changes, so
        # the catalog's many reads between two changes sort once
        self._sorted: dict[tuple[Kind, str], list[Resource]] = {}

    @contextmanager
    def recording(self) -> Iterator[Reads]:
        """Record the reads made inside the block (recordings do not nest)."""
        if self._reads is not None:
            raise RuntimeError("index reads are already being recorded")
        self._reads = reads = Reads()
        try:
            yield reads
        finally:
            self._reads = None

    def note_used(self, found: Iterable[R]) -> list[R]:
        """Lookups that filter a listing name what they hand out (see `Reads.used`)."""
        found = list(found)
        if self._reads is not None:
            self._reads.used.update(resource.key for resource in found)
        return found

    def apply(self, resource: Resource) -> bool:
        """Add or replace an object; False when it was already there unchanged."""
        namespaced = self._objects[resource.KIND][resource.namespace]
        previous = namespaced.get(resource.name)
        if previous == resource:
            return False
        if previous is not None:
            self._forget_references(previous)
        namespaced[resource.name] = resource
        self._sorted.pop((resource.KIND, resource.namespace), None)
        for reference in references_of(resource):
            self._referrers[reference.target].add(resource.key)
        return True

    def delete(self, kind: Kind, namespace: str, name: str) -> Resource | None:
        """Remove an object; returns what was there, if anything."""
        namespaced = self._objects[kind][namespace]
        removed = namespaced.pop(name, None)
        if removed is not None:
            self._sorted.pop((kind, namespace), None)
            self._forget_references(removed)
        return removed

    def get(self, model: type[R], namespace: str, name: str) -> R | None:
        if self._reads is not None:
            self._reads.used.add(ObjectKey(model.KIND, namespace, name))
        found = self._objects[model.KIND][namespace].get(name)
        return found if isinstance(found, model) else None

    def contains(self, key: ObjectKey) -> bool:
        if self._reads is not None:
            self._reads.used.add(key)
        return key.name in self._objects[key.kind][key.namespace]

    def objects(self, model: type[R], namespace: str | None = None) -> list[R]:
        """Objects of one kind, in one namespace or all, sorted by namespace and name."""
        if self._reads is not None:
            self._reads.listed.add((model.KIND, namespace))
        by_namespace = self._objects[model.KIND]
        namespaces = [namespace] if namespace is not None else sorted(by_namespace)
        return [
            found
            for ns in namespaces
            for found in self._in(model.KIND, ns)
            if isinstance(found, model)
        ]

    def _in(self, kind: Kind, namespace: str) -> list[Resource]:
        cached = self._sorted.get((kind, namespace))
        if cached is None:
            named = self._objects[kind][namespace]
            cached = self._sorted[(kind, namespace)] = [named[n] for n in sorted(named)]
        return cached

    def count(self, kind: Kind) -> int:
        return sum(len(named) for named in self._objects[kind].values())

    def referring(self, model: type[R], target: ObjectKey) -> list[R]:
        """Objects of one kind that name `target`, sorted by namespace and name.

        For kinds whose referrers live in the target's namespace (slices, splits):
        recorded as a listing of that namespace."""
        if self._reads is not None:
            self._reads.listed.add((model.KIND, target.namespace))
        found = (
            self._objects[model.KIND][key.namespace].get(key.name)
            for key in self.referrers(target)
            if key.kind == model.KIND
        )
        return [resource for resource in found if isinstance(resource, model)]

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
