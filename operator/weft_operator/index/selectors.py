"""Kubernetes label selectors, evaluated against a set of labels."""

from __future__ import annotations

from collections.abc import Mapping

from weft_resources.base import LabelSelector, LabelSelectorRequirement


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """All of matchLabels and matchExpressions hold; the empty selector matches all."""
    return all(labels.get(key) == value for key, value in selector.match_labels.items()) and all(
        _requirement_holds(requirement, labels) for requirement in selector.match_expressions
    )


def _requirement_holds(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    value = labels.get(requirement.key)
    match requirement.operator:
        case "In":
            return value in requirement.values
        case "NotIn":
            return value not in requirement.values
        case "Exists":
            return value is not None
        case "DoesNotExist":
            return value is None
