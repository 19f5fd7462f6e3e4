"""Whether a pod gets the proxy: its annotations first, then its namespace's."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import mesh


class Outcome(enum.StrEnum):
    INJECTED = "injected"
    ALREADY_INJECTED = "already injected"
    NOT_ENABLED = "injection not enabled"
    DISABLED = "injection disabled"
    HOST_NETWORK = "host network"
    NO_TRUST_ANCHORS = "no trust anchors"


# The pod's reason annotation when injection was asked for but refused.
SKIP_REASONS = {
    Outcome.HOST_NETWORK: (
        "pods with hostNetwork are not injected: proxy-init's iptables rules would "
        "redirect the node's own traffic"
    ),
    Outcome.NO_TRUST_ANCHORS: (
        "the mesh's trust anchors were not available to the injector (is Weft's operator "
        "running?): a proxy without them gets no identity, so the pod was left unmeshed; "
        "restart it once they exist"
    ),
}


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    warnings: tuple[str, ...] = ()


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def setting(
    key: str, pod_annotations: Mapping[str, str], namespace_annotations: Mapping[str, str]
) -> str | None:
    """A pod's own annotation wins over its namespace's."""
    if key in pod_annotations:
        return pod_annotations[key]
    return namespace_annotations.get(key)


def decide(pod: Mapping[str, Any], namespace_annotations: Mapping[str, str]) -> Decision:
    spec = pod.get("spec") or {}
    if _has_weft_containers(spec):
        return Decision(Outcome.ALREADY_INJECTED)
    pod_annotations = annotations_of(pod)
    value, key = _inject_value(pod_annotations, namespace_annotations)
    if value == mesh.INJECT_DISABLED:
        return Decision(Outcome.DISABLED)
    if value != mesh.INJECT_ENABLED:
        warnings = () if value is None else (_unknown_value(key, value),)
        return Decision(Outcome.NOT_ENABLED, warnings)
    if spec.get("hostNetwork"):
        return Decision(Outcome.HOST_NETWORK)
    return Decision(Outcome.INJECTED)


def _has_weft_containers(spec: Mapping[str, Any]) -> bool:
    names = {c.get("name") for c in (*spec.get("containers", ()), *spec.get("initContainers", ()))}
    return bool(names & {mesh.PROXY_CONTAINER, mesh.INIT_CONTAINER})


def _inject_value(
    pod_annotations: Mapping[str, str], namespace_annotations: Mapping[str, str]
) -> tuple[str | None, str]:
    # The pod decides before its namespace; at each level Weft's name before Linkerd's.
    for level in (pod_annotations, namespace_annotations):
        for key in (mesh.INJECT_ANNOTATION, mesh.LINKERD_INJECT_ANNOTATION):
            if key in level:
                return level[key], key
    return None, mesh.INJECT_ANNOTATION


def _unknown_value(key: str, value: str) -> str:
    return (
        f"{key}: {value!r} is neither {mesh.INJECT_ENABLED!r} nor {mesh.INJECT_DISABLED!r}; "
        "the pod is not injected"
    )
