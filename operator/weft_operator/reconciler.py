"""From watch events to the index and to the status each object should carry.

No I/O and no kopf: `observe` takes one event and returns the writes to make (status
patches, Warning Events), so the whole loop is testable without an API server.

An object that stops parsing keeps its last valid form in the index (bad input loses
nothing: the mesh keeps routing as before) while its status says why it is not
accepted. When an object appears, changes or goes, the objects that refer to it are
re-checked, so `ResolvedRefs` recovers by itself once a missing object appears.

Listeners (the config server) hear of every change as a `Change`, synchronously; the
config server reports back how far the proxies have converged (`report_convergence`),
which becomes the `Programmed` condition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weft_operator import metrics
from weft_operator.conditions import READY, Convergence, Verdict, status_patch
from weft_operator.index.resolution import dependents, missing_references
from weft_operator.index.store import MeshIndex
from weft_resources.base import ObjectKey
from weft_resources.errors import InvalidResource
from weft_resources.kinds import ObjectRef, Watched
from weft_resources.registry import RESOURCE_TYPES, parse_resource


@dataclass(frozen=True)
class StatusWrite:
    ref: ObjectRef
    status: dict[str, Any]


@dataclass(frozen=True)
class WarningEvent:
    ref: ObjectRef
    reason: str
    message: str


Action = StatusWrite | WarningEvent


@dataclass(frozen=True)
class Change:
    """What one watch event did to the index, told to listeners.

    `revision` numbers the index's states (each change adds one) and is the one after
    this event. For objects whose status Weft writes, `generation` is the object's
    current generation and `content_revision` the revision holding its current content
    (earlier when this event changed nothing; None when its content never parsed).
    """

    key: ObjectKey
    revision: int
    index_changed: bool
    deleted: bool = False
    generation: int | None = None
    content_revision: int | None = None


ChangeListener = Callable[[Change], None]


@dataclass
class _Reported:
    """What we know of an object whose status Weft writes."""

    ref: ObjectRef
    generation: int
    status: dict[str, Any] | None  # as last seen on the server or last written
    invalid: str | None
    problem: str | None  # the problem last announced with an Event
    revision: int | None = None  # the index revision holding its current content
    convergence: Convergence | None = None  # as the config server last reported it


def _now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(self, index: MeshIndex | None = None, clock: Callable[[], datetime] = _now):
        self.index = index or MeshIndex()
        self._clock = clock
        self._reported: dict[ObjectKey, _Reported] = {}
        self._invalid: set[ObjectKey] = set()
        self._listeners: list[ChangeListener] = []
        self.revision = 0  # of the index: one more for each change

    def add_listener(self, listener: ChangeListener) -> None:
        """Call `listener` with every Change, synchronously, after the index has it."""
        self._listeners.append(listener)

    def report_convergence(self, key: ObjectKey, convergence: Convergence) -> list[Action]:
        """The status writes that show how far proxies have converged on `key`."""
        reported = self._reported.get(key)
        if reported is None or reported.convergence == convergence:
            return []
        reported.convergence = convergence
        return self._recheck([key])

    def observe(
        self, watched: Watched, event_type: str | None, body: Mapping[str, Any]
    ) -> list[Action]:
        meta = body.get("metadata") or {}
        key = ObjectKey(watched.kind, meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            if self.index.delete(*key) is not None:
                self.revision += 1
                self._tell(Change(key, self.revision, index_changed=True, deleted=True))
            self._reported.pop(key, None)
            self._invalid.discard(key)
            self._count(watched)
            return self._recheck(dependents(self.index, key))
        changed, invalid = self._apply(watched, body)
        if changed:
            self.revision += 1
        affected: list[ObjectKey] = []
        if watched.reports_status:
            before = self._reported.get(key)
            reported = self._remember(key, watched, body, invalid, changed)
            affected.append(key)
            if changed or before is None or before.generation != reported.generation:
                self._tell(
                    Change(
                        key,
                        self.revision,
                        changed,
                        generation=reported.generation,
                        content_revision=reported.revision,
                    )
                )
        elif changed:
            self._tell(Change(key, self.revision, index_changed=True))
        if changed:
            affected += dependents(self.index, key)
        return self._recheck(affected)

    def _tell(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def _apply(self, watched: Watched, body: Mapping[str, Any]) -> tuple[bool, str | None]:
        try:
            resource = parse_resource(body)
        except InvalidResource as exc:
            return False, exc.message
        changed = self.index.apply(resource)
        self._count(watched)
        return changed, None

    def _count(self, watched: Watched) -> None:
        metrics.OBJECTS.labels(kind=watched.kind.value).set(self.index.count(watched.kind))

    def _remember(
        self,
        key: ObjectKey,
        watched: Watched,
        body: Mapping[str, Any],
        invalid: str | None,
        changed: bool,
    ) -> _Reported:
        meta = body.get("metadata") or {}
        status = body.get("status") or None
        previous = self._reported.get(key)
        self._reported[key] = reported = _Reported(
            ref=ObjectRef(watched, key.namespace, key.name, str(meta.get("uid", ""))),
            generation=int(meta.get("generation") or 1),
            status=dict(status) if status else None,
            invalid=invalid,
            problem=previous.problem if previous else _announced_problem(status),
            revision=self.revision if changed else previous.revision if previous else None,
            convergence=previous.convergence if previous else None,
        )
        if invalid:
            self._invalid.add(key)
        else:
            self._invalid.discard(key)
        invalid_of_kind = sum(1 for k in self._invalid if k.kind == key.kind)
        metrics.INVALID_OBJECTS.labels(kind=watched.kind.value).set(invalid_of_kind)
        return reported

    def _recheck(self, keys: Iterable[ObjectKey]) -> list[Action]:
        actions: list[Action] = []
        for key in dict.fromkeys(keys):  # each once, in order
            reported = self._reported.get(key)
            if reported is None:
                continue
            verdict = Verdict(
                reported.generation,
                reported.invalid,
                self._missing(key, reported),
                reported.convergence,
            )
            patch = status_patch(verdict, reported.status, self._clock())
            if patch is not None:
                actions.append(StatusWrite(reported.ref, patch))
                reported.status = patch
            problem = verdict.problem
            if problem is not None and problem != reported.problem:
                reason = "Invalid" if reported.invalid else "RefNotFound"
                actions.append(WarningEvent(reported.ref, reason, problem))
            reported.problem = problem
        return actions

    def _missing(self, key: ObjectKey, reported: _Reported) -> tuple[str, ...]:
        if reported.invalid:
            return ()
        resource = self.index.get(RESOURCE_TYPES[key.kind], key.namespace, key.name)
        if resource is None:
            return ()
        return tuple(str(m) for m in missing_references(self.index, resource))


def _announced_problem(status: Mapping[str, Any] | None) -> str | None:
    """The problem a previous run already reported, so a restart does not repeat its Event."""
    for condition in (status or {}).get("conditions") or []:
        if condition.get("type") == READY and condition.get("status") == "False":
            message: str | None = condition.get("message")
            return message
    return None
