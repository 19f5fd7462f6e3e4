"""Fields a version cannot hold, kept in annotations until a version that can reads them.

Kubernetes' own answer to lossy conversions: an object written at a newer version and
updated at an older one keeps what the older version has no field for.
"""

from __future__ import annotations

import json
from typing import Any


def set_annotation(obj: dict[str, Any], key: str, value: str) -> None:
    obj.setdefault("metadata", {}).setdefault("annotations", {})[key] = value


def pop_annotation(obj: dict[str, Any], key: str) -> str | None:
    """Remove and return an annotation; an emptied map is removed too (exact round trips)."""
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations")
    if not annotations or key not in annotations:
        return None
    value: str = annotations.pop(key)
    if not annotations:
        del metadata["annotations"]
    return value


def stash(obj: dict[str, Any], key: str, value: Any) -> None:
    set_annotation(obj, key, json.dumps(value, separators=(",", ":"), sort_keys=True))


def unstash(obj: dict[str, Any], key: str) -> Any:
    """The stashed value (removed from the object), or None."""
    text = pop_annotation(obj, key)
    return None if text is None else json.loads(text)
