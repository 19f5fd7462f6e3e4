"""The ConfigMaps and Secrets a pod names, in env and volumes: fetched before it starts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Reference = tuple[str, str]  # (ConfigMap | Secret, name)


def referenced_objects(pod: Mapping[str, Any]) -> set[Reference]:
    spec = pod.get("spec") or {}
    found: set[Reference] = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        found.update(_env_references(container))
    for volume in spec.get("volumes") or []:
        found.update(_volume_references(volume))
    return found


def _env_references(container: Mapping[str, Any]) -> Iterator[Reference]:
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            yield "ConfigMap", source["configMapRef"]["name"]
        if "secretRef" in source:
            yield "Secret", source["secretRef"]["name"]
    for variable in container.get("env") or []:
        source = variable.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            yield "ConfigMap", source["configMapKeyRef"]["name"]
        if "secretKeyRef" in source:
            yield "Secret", source["secretKeyRef"]["name"]


def _volume_references(volume: Mapping[str, Any]) -> Iterator[Reference]:
    if "configMap" in volume:
        yield "ConfigMap", volume["configMap"]["name"]
    if "secret" in volume:
        yield "Secret", volume["secret"]["secretName"]
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in source:
            yield "ConfigMap", source["configMap"]["name"]
        if "secret" in source:
            yield "Secret", source["secret"]["name"]
