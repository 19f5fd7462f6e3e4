"""The status Weft writes on each object: conditions that kubectl, kstatus and GitOps read.

Pure: from what the operator learned about an object (did it parse, which references
are missing) to the `status` it should carry. kstatus (Flux, Argo CD's health, kubectl
wait) reads `observedGeneration`, `Ready`, and the abnormal-true `Stalled` and
`Reconciling` conditions, which are present only while true.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
READY = "Ready"
STALLED = "Stalled"
RECONCILING = "Reconciling"


@dataclass(frozen=True)
class Verdict:
    """What the operator concluded about one generation of one object."""

    generation: int
    invalid: str | None = None  # why the object cannot be accepted, if it cannot
    missing: tuple[str, ...] = ()  # references that name no existing object

    @property
    def problem(self) -> str | None:
        if self.invalid:
            return self.invalid
        if self.missing:
            return missing_message(self.missing)
        return None


def missing_message(missing: tuple[str, ...]) -> str:
    return "references not found: " + ", ".join(missing)


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def desired_conditions(verdict: Verdict) -> list[dict[str, Any]]:
    """Conditions without timestamps; `merge_conditions` adds lastTransitionTime."""
    g = verdict.generation
    if verdict.invalid:
        accepted = _condition(ACCEPTED, False, "Invalid", verdict.invalid, g)
    else:
        accepted = _condition(ACCEPTED, True, "Accepted", "the object is valid", g)
    if verdict.missing:
        refs = _condition(RESOLVED_REFS, False, "RefNotFound", missing_message(verdict.missing), g)
    else:
        refs = _condition(RESOLVED_REFS, True, "ResolvedRefs", "all references resolved", g)
    if verdict.problem is None:
        ready = _condition(READY, True, "Ready", "accepted and all references resolved", g)
    else:
        reason = "Invalid" if verdict.invalid else "RefNotFound"
        ready = _condition(READY, False, reason, verdict.problem, g)
    conditions = [accepted, refs, ready]
    if verdict.invalid:  # no retry helps: the object must be changed
        conditions.append(_condition(STALLED, True, "Invalid", verdict.invalid, g))
    elif verdict.missing:  # resolves by itself once the referenced object appears
        conditions.append(
            _condition(RECONCILING, True, "RefNotFound", missing_message(verdict.missing), g)
        )
    return conditions


def merge_conditions(
    current: list[dict[str, Any]], desired: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Keep lastTransitionTime where a condition's status did not change."""
    previous = {c.get("type"): c for c in current}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = []
    for condition in desired:
        before = previous.get(condition["type"])
        unchanged = before is not None and before.get("status") == condition["status"]
        since = before.get("lastTransitionTime") if unchanged and before else None
        merged.append({**condition, "lastTransitionTime": since or stamp})
    return merged


def _essence(conditions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("type", "status", "reason", "message", "observedGeneration")
    return sorted(tuple(c.get(k) for k in keys) for c in conditions)


def status_patch(
    verdict: Verdict, current_status: dict[str, Any] | None, now: datetime
) -> dict[str, Any] | None:
    """The merge patch for `status`, or None when the object already says this."""
    current = list((current_status or {}).get("conditions") or [])
    desired = desired_conditions(verdict)
    same_generation = (current_status or {}).get("observedGeneration") == verdict.generation
    if same_generation and _essence(current) == _essence(desired):
        return None
    return {
        "observedGeneration": verdict.generation,
        # A merge patch replaces lists whole: conditions we no longer set disappear.
        "conditions": merge_conditions(current, desired, now),
    }
