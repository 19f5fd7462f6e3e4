"""The downward API: pod fields and container resources as strings, for env and volumes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_SUFFIXES: dict[str, int | Decimal] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class FieldError(ValueError):
    """A field path or resource the downward API does not offer."""


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (`250m`, `64Mi`, `1e3`) as a number."""
    match = _QUANTITY.match(text.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise FieldError(f"{text!r} is not a quantity")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])


@dataclass(frozen=True)
class PodFields:
    """The pod as the downward API sees it: its object, plus what the node assigned."""

    pod: Mapping[str, Any]
    pod_ip: str
    host_ip: str

    def field(self, path: str) -> str:
        metadata = self.pod.get("metadata") or {}
        spec = self.pod.get("spec") or {}
        simple = {
            "metadata.name": metadata.get("name", ""),
            "metadata.namespace": metadata.get("namespace", ""),
            "metadata.uid": metadata.get("uid", ""),
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
            "status.podIP": self.pod_ip,
            "status.podIPs": self.pod_ip,
            "status.hostIP": self.host_ip,
            "status.hostIPs": self.host_ip,
        }
        if path in simple:
            return str(simple[path])
        if path in ("metadata.labels", "metadata.annotations"):
            values = metadata.get(path.split(".")[1]) or {}
            return "".join(f'{key}="{_escape(values[key])}"\n' for key in sorted(values))
        subscript = _SUBSCRIPT.match(path)
        if subscript:
            return str((metadata.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
        raise FieldError(f"fieldPath {path!r} is not supported")

    def resource(
        self, container: str, resource: str, divisor: str | None, allocatable: Mapping[str, str]
    ) -> str:
        """`limits.cpu` of `container`, in units of `divisor`, rounded up as the kubelet does.

        An unset limit is the node's allocatable amount, as in Kubernetes.
        """
        kind, _, name = resource.partition(".")
        if kind not in ("limits", "requests") or not name:
            raise FieldError(f"resource {resource!r} is not supported")
        spec_of_pod = self.pod.get("spec") or {}
        containers = [
            *(spec_of_pod.get("initContainers") or []),
            *(spec_of_pod.get("containers") or []),
        ]
        spec: Mapping[str, Any] = next((c for c in containers if c.get("name") == container), {})
        amounts = (spec.get("resources") or {}).get(kind) or {}
        text = amounts.get(name) or allocatable.get(name)
        if text is None:
            raise FieldError(f"no {resource} for container {container!r}")
        value = quantity(text) / quantity(divisor or "1")
        return str(math.ceil(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
