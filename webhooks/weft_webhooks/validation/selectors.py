"""Whether two label selectors can select the same pod, decided exactly.

Keys are independent, so two selectors overlap when, key by key, some value (or the
key's absence) satisfies every requirement both put on that key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from weft_resources.base import LabelSelector, LabelSelectorRequirement


@dataclass(slots=True)
class _KeyConstraint:
    allowed: set[str] | None = None  # None: any value
    excluded: set[str] = field(default_factory=set)
    must_exist: bool = False
    must_not_exist: bool = False

    def add(self, requirement: LabelSelectorRequirement) -> None:
        values = set(requirement.values)
        if requirement.operator == "In":
            self.allowed = values if self.allowed is None else self.allowed & values
            self.must_exist = True
        elif requirement.operator == "NotIn":  # also met by a pod without the key
            self.excluded |= values
        elif requirement.operator == "Exists":
            self.must_exist = True
        else:
            self.must_not_exist = True

    def satisfiable(self) -> bool:
        if self.must_not_exist:
            return not self.must_exist
        if self.allowed is None:
            return True  # a value outside `excluded` always exists
        return bool(self.allowed - self.excluded)


def can_overlap(*selectors: LabelSelector) -> bool:
    constraints: dict[str, _KeyConstraint] = defaultdict(_KeyConstraint)
    for requirement in _requirements(selectors):
        constraints[requirement.key].add(requirement)
    return all(constraint.satisfiable() for constraint in constraints.values())


def _requirements(selectors: Iterable[LabelSelector]) -> Iterable[LabelSelectorRequirement]:
    for selector in selectors:
        for key, value in selector.match_labels.items():
            yield LabelSelectorRequirement(key=key, operator="In", values=(value,))
        yield from selector.match_expressions
