"""The status Weft writes on each object: conditions that kubectl, kstatus and GitOps read.

Pure: from what the operator learned about an object (did it parse, which references
are missing) to the `status` it should carry. kstatus (Flux, Argo CD's health, kubectl
wait) reads `observedGeneration`, `Ready`, and the abnormal-true `Stalled` and
`Reconciling` conditions, which are present only while true.

When the config server runs, `Programmed` (and `status.proxies`) says whether every
proxy the object applies to has acknowledged a config holding its generation: the
data-plane convergence GitOps tools can wait for. While it is False on an otherwise
ready object, `Reconciling` is True too (reason `Pending`), so kstatus waits as well.

Every message is bounded (`MAX_MESSAGE_CHARS`), and a list in one names at most
`MAX_LISTED` items and then how many more, so the status of any object, however many
backends it lists and however long their names, is small enough for the API server to
take (the CRDs allow 32768 characters per message; a refused patch would leave the user
with no status at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
READY = "Ready"
STALLED = "Stalled"
RECONCILING = "Reconciling"
PROGRAMMED = "Programmed"

# One message fits a Warning Event too (kube_writer), so the Event says what Ready says.
MAX_MESSAGE_CHARS = 1024
MAX_LISTED = 10  # items of a list named in one message; then "and N more"
_MAX_ITEM_CHARS = 200  # one item; a reference names a string no schema bounds


@dataclass(frozen=True)
class Convergence:
    """Of the proxies an object applies to (`total`), how many (`acked`) have ACKed a
    config built from its `generation`."""

    generation: int
    acked: int
    total: int

    @property
    def complete(self) -> bool:
        return self.acked >= self.total


@dataclass(frozen=True)
class Verdict:
    """What the operator concluded about one generation of one object."""

    generation: int
    invalid: str | None = None  # why the object cannot be accepted, if it cannot
    missing: tuple[str, ...] = ()  # references that name no existing object
    convergence: Convergence | None = None  # None: no config server reports it

    @property
    def problem(self) -> str | None:
        if self.invalid:
            return bounded(self.invalid)
        if self.missing:
            return missing_message(self.missing)
        return None


def missing_message(missing: tuple[str, ...]) -> str:
    return listing("references not found: ", missing)


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`message` if it fits in `limit` characters, else its start and how much is left out."""
    if len(message) <= limit:
        return message
    longest_suffix = _cut_suffix(len(message))
    kept = max(limit - len(longest_suffix), 0)
    return message[:kept] + _cut_suffix(len(message) - kept)


def _cut_suffix(left_out: int) -> str:
    return f"... ({left_out} more characters)"


def listing(lead: str, items: Sequence[str], limit: int = MAX_MESSAGE_CHARS) -> str:
    """`lead` then the items, comma-separated: at most `MAX_LISTED` of them, as many as
    fit in `limit` characters, then how many more there are."""
    shortened = [bounded(item, _MAX_ITEM_CHARS) for item in items[:MAX_LISTED]]
    text = lead
    for shown in range(len(shortened), 0, -1):
        rest = len(items) - shown
        text = lead + ", ".join(shortened[:shown]) + (f", and {rest} more" if rest else "")
        if len(text) <= limit:
            return text
    return bounded(text, limit)  # only when `lead` alone nearly fills `limit`


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": bounded(message),
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
    programmed = programmed_condition(verdict)
    if programmed is not None:
        conditions.append(programmed)
        if programmed["status"] == "False" and verdict.problem is None:
            # kstatus (Flux) reads Reconciling, not Programmed: without it Flux would call
            # the object Current before its proxies run it, while Argo CD's check waits.
            message = programmed["message"]
            conditions.append(_condition(RECONCILING, True, "Pending", message, g))
    return conditions


def programmed_condition(verdict: Verdict) -> dict[str, Any] | None:
    """Whether the proxies run this generation; None when nothing reports convergence."""
    convergence, g = verdict.convergence, verdict.generation
    if convergence is None:
        return None
    if verdict.invalid:  # the index keeps the last valid generation, and so do proxies
        message = "this generation is not accepted; proxies keep the last accepted one"
        return _condition(PROGRAMMED, False, "Invalid", message, g)
    if convergence.generation != g:
        message = f"waiting for proxies to acknowledge generation {g}"
        return _condition(PROGRAMMED, False, "Pending", message, g)
    counted = f"{convergence.acked}/{convergence.total} proxies"
    if convergence.complete:
        return _condition(PROGRAMMED, True, "Programmed", counted, g)
    return _condition(PROGRAMMED, False, "Pending", counted, g)


def _proxies(verdict: Verdict) -> dict[str, int] | None:
    """`status.proxies`, once known for this generation."""
    convergence = verdict.convergence
    if convergence is None or convergence.generation != verdict.generation:
        return None
    return {"acked": convergence.acked, "total": convergence.total}


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
    proxies = _proxies(verdict)
    same_proxies = proxies is None or (current_status or {}).get("proxies") == proxies
    if same_generation and same_proxies and _essence(current) == _essence(desired):
        return None
    patch: dict[str, Any] = {
        "observedGeneration": verdict.generation,
        # A merge patch replaces lists whole: conditions we no longer set disappear.
        "conditions": merge_conditions(current, desired, now),
    }
    if proxies is not None:
        patch["proxies"] = proxies
    return patch
