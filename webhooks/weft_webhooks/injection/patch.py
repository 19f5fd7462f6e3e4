"""JSON Patch (RFC 6902) `add` operations on a pod, and applying them to a document.

The webhook returns these operations to the API server; `weft inject` applies the same
operations to pod templates itself, so both produce the same pod.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

Operation = dict[str, Any]


def pointer(*parts: str | int) -> str:
    """A JSON pointer; `/` and `~` inside a part are escaped (annotation names hold `/`)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def add_annotations(pod: Mapping[str, Any], annotations: Mapping[str, str]) -> list[Operation]:
    metadata = pod.get("metadata")
    if metadata is None:
        return [_add(pointer("metadata"), {"annotations": dict(annotations)})]
    if metadata.get("annotations") is None:
        return [_add(pointer("metadata", "annotations"), dict(annotations))]
    return [_add(pointer("metadata", "annotations", k), v) for k, v in annotations.items()]


def add_labels(pod: Mapping[str, Any], labels: Mapping[str, str]) -> list[Operation]:
    """Only the labels the pod lacks or has with another value."""
    metadata = pod.get("metadata") or {}
    present = metadata.get("labels")
    wanted = {k: v for k, v in labels.items() if (present or {}).get(k) != v}
    if not wanted:
        return []
    if "metadata" not in pod:
        return [_add(pointer("metadata"), {"labels": wanted})]
    if present is None:
        return [_add(pointer("metadata", "labels"), wanted)]
    return [_add(pointer("metadata", "labels", k), v) for k, v in wanted.items()]


def insert_init_containers(
    pod: Mapping[str, Any], containers: Iterable[Mapping[str, Any]]
) -> list[Operation]:
    """Ahead of the pod's own init containers, in the given order."""
    if not pod["spec"].get("initContainers"):
        return [_add(pointer("spec", "initContainers"), list(containers))]
    return [
        _add(pointer("spec", "initContainers", position), container)
        for position, container in enumerate(containers)
    ]


def append_volumes(pod: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]) -> list[Operation]:
    if not pod["spec"].get("volumes"):
        return [_add(pointer("spec", "volumes"), list(volumes))]
    return [_add(pointer("spec", "volumes", "-"), volume) for volume in volumes]


def apply_patch(document: MutableMapping[str, Any], operations: Iterable[Operation]) -> None:
    """Apply `add` operations in place, as the API server does."""
    for operation in operations:
        if operation["op"] != "add":
            raise ValueError(f"only 'add' operations are applied here, not {operation['op']!r}")
        *parents, last = [_unescape(part) for part in operation["path"].split("/")[1:]]
        target: Any = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        value = copy.deepcopy(operation["value"])  # documents never share nodes
        if isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), value)
        else:
            target[last] = value


def _add(path: str, value: Any) -> Operation:
    return {"op": "add", "path": path, "value": value}


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
