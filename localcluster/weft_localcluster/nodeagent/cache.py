"""An informer's local copy of one kind of object, kept by list and watch events (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (namespace, name)
Event = tuple[str, dict[str, Any]]  # (ADDED | MODIFIED | DELETED, object)


def key_of(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace", ""), metadata.get("name", "")


@dataclass
class ObjectCache:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.objects.pop(key_of(obj), None)
        else:
            self.objects[key_of(obj)] = obj

    def replace(self, items: Iterable[dict[str, Any]]) -> list[Event]:
        """Take a fresh list as the truth; return the events that turn the old into it."""
        fresh = {key_of(obj): obj for obj in items}
        events: list[Event] = [
            ("DELETED", obj) for key, obj in self.objects.items() if key not in fresh
        ]
        for key, obj in fresh.items():
            old = self.objects.get(key)
            if old is None:
                events.append(("ADDED", obj))
            elif _version(old) != _version(obj):
                events.append(("MODIFIED", obj))
        self.objects = fresh
        return events


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
